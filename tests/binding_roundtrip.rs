//! Property: encode → decode gives the event back, in both encodings, for events with
//! extensions of all three types and every kind of data.

use cloudevents::event::ExtensionValue;
use cloudevents::{Data, Event, EventBuilder, EventBuilderV10};
use hyperfleet_tracing::binding::{CONTEXT_ATTRIBUTE_NAMES, Encoding, decode, encode};
use proptest::prelude::*;
use serde_json::json;

fn extension_value() -> impl Strategy<Value = ExtensionValue> {
    prop_oneof![
        "[ -~]{1,40}".prop_map(ExtensionValue::String),
        any::<bool>().prop_map(ExtensionValue::Boolean),
        any::<i64>().prop_map(ExtensionValue::Integer),
    ]
}

/// Valid extension names: not a context attribute's name (those are refused on encode).
fn extension_name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9]{0,19}".prop_filter("a context attribute's name", |name| {
        !CONTEXT_ATTRIBUTE_NAMES.contains(&name.as_str())
    })
}

/// Data whose kind matches its content type, as a producer would send it.
fn data() -> impl Strategy<Value = Option<(&'static str, Data)>> {
    prop_oneof![
        Just(None),
        ("[a-z0-9-]{1,20}", any::<i64>(), any::<bool>()).prop_map(|(id, generation, flag)| Some((
            "application/json",
            Data::Json(json!({"id": id, "kind": "Cluster", "generation": generation, "ok": flag, "tags": [id]}))
        ))),
        "\\PC{1,60}".prop_map(|s| Some(("text/plain", Data::String(s)))),
        proptest::collection::vec(any::<u8>(), 1..64)
            .prop_map(|b| Some(("application/octet-stream", Data::Binary(b)))),
    ]
}

prop_compose! {
    fn event()(
        id in "[a-zA-Z0-9-]{1,36}",
        source in "/[a-z]{1,10}(/[a-z0-9]{1,10}){0,2}",
        ty in "com\\.[a-z]{1,10}\\.[a-z.]{1,20}",
        subject in proptest::option::of("[a-z0-9/]{1,20}"),
        time in proptest::option::of((0i64..4_000_000_000, 0u32..1_000_000_000)),
        extensions in proptest::collection::btree_map(extension_name(), extension_value(), 0..5),
        data in data(),
    ) -> Event {
        let mut builder = EventBuilderV10::new().id(id).source(source).ty(ty);
        if let Some(subject) = subject {
            builder = builder.subject(subject);
        }
        if let Some((secs, nanos)) = time {
            builder = builder.time(chrono::DateTime::from_timestamp(secs, nanos).unwrap());
        }
        for (name, value) in extensions {
            builder = builder.extension(&name, value);
        }
        if let Some((content_type, data)) = data {
            builder = builder.data(content_type, data);
        }
        builder.build().unwrap()
    }
}

/// Binary mode carries every attribute as a string.
fn with_string_extensions(event: &Event) -> Event {
    let mut expected = event.clone();
    for (name, value) in event.iter_extensions() {
        expected.set_extension(name, ExtensionValue::String(value.to_string()));
    }
    expected
}

proptest! {
    #[test]
    fn structured_round_trips(event in event()) {
        let message = encode(&event, Encoding::Structured).unwrap();
        prop_assert_eq!(decode(&message).unwrap(), event);
    }

    #[test]
    fn binary_round_trips(event in event()) {
        let message = encode(&event, Encoding::Binary).unwrap();
        prop_assert_eq!(decode(&message).unwrap(), with_string_extensions(&event));
    }
}
