//! The binding against the encodings found in the wild (fixtures in `testdata/wire/`), the
//! exact shape of what we write, and the errors for what is not a CloudEvent.

use cloudevents::{AttributesReader, AttributesWriter, Data, Event, EventBuilder, EventBuilderV10};
use hyperfleet_tracing::binding::{BindingError, Encoding, decode, encode};
use hyperfleet_tracing::transport::Message;
use serde_json::{Value, json};

/// A fixture: attributes plus data (a JSON value, sent as its serialization).
fn fixture(name: &str) -> Message {
    let path = format!("{}/testdata/wire/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let fixture: Value = serde_json::from_str(&text).unwrap();
    let mut message = Message::new(serde_json::to_vec(&fixture["data"]).unwrap());
    for (k, v) in fixture["attributes"].as_object().unwrap() {
        message = message.with_attribute(k, v.as_str().unwrap());
    }
    message
}

fn expected_cluster_event() -> Event {
    EventBuilderV10::new()
        .id("00000000-0000-0000-0000-000000000000")
        .source("/hyperfleet/service/sentinel")
        .ty("com.redhat.hyperfleet.cluster.reconcile.v1")
        .time("2025-10-23T12:00:00Z")
        .extension("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        .data(
            "application/json",
            json!({"id":"11111111-1111-1111-1111-111111111111","kind":"Cluster","href":"https://api.hyperfleet.com/v1/clusters/11111111-1111-1111-1111-111111111111","generation":5}),
        )
        .build()
        .unwrap()
}

#[test]
fn reads_every_encoding_found_in_the_wild() {
    for name in [
        "broker-structured.json",
        "sdk-go-binary.json",
        "google-structured.json",
        "google-binary.json",
    ] {
        let event = decode(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(event, expected_cluster_event(), "{name}");
    }
}

#[test]
fn structured_encoding_is_the_event_json_with_the_cloudevents_content_type() {
    let event = expected_cluster_event();
    let message = encode(&event, Encoding::Structured).unwrap();
    assert_eq!(
        message.attributes.iter().collect::<Vec<_>>(),
        vec![(
            &"content-type".to_owned(),
            &"application/cloudevents+json; charset=UTF-8".to_owned()
        )]
    );
    let body: Value = serde_json::from_slice(&message.data).unwrap();
    assert_eq!(
        body["traceparent"],
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    );
    assert_eq!(body["data"]["kind"], "Cluster");
    assert_eq!(body["specversion"], "1.0");
}

#[test]
fn binary_encoding_writes_ce_attributes_and_the_data() {
    let message = encode(&expected_cluster_event(), Encoding::Binary).unwrap();
    let keys: Vec<&str> = message.attributes.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        vec![
            "ce-id",
            "ce-source",
            "ce-specversion",
            "ce-time",
            "ce-traceparent",
            "ce-type",
            "content-type"
        ]
    );
    assert_eq!(message.attributes["content-type"], "application/json");
    assert_eq!(message.attributes["ce-specversion"], "1.0");
    assert_eq!(
        message.attributes["ce-traceparent"],
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    );
    let data: Value = serde_json::from_slice(&message.data).unwrap();
    assert_eq!(data["generation"], 5);
}

#[test]
fn binary_data_is_typed_by_its_content_type() {
    let text = Message::new("plain words")
        .with_attribute("ce-specversion", "1.0")
        .with_attribute("ce-id", "1")
        .with_attribute("ce-source", "s")
        .with_attribute("ce-type", "t")
        .with_attribute("content-type", "text/plain");
    assert_eq!(
        decode(&text).unwrap().data(),
        Some(&Data::String("plain words".into()))
    );
    let mut bytes = text.clone();
    bytes
        .attributes
        .insert("content-type".into(), "application/octet-stream".into());
    assert_eq!(
        decode(&bytes).unwrap().data(),
        Some(&Data::Binary(b"plain words".to_vec()))
    );
    let mut broken_json = text.clone();
    broken_json
        .attributes
        .insert("content-type".into(), "application/json".into());
    assert_eq!(
        decode(&broken_json).unwrap().data(),
        Some(&Data::Binary(b"plain words".to_vec())),
        "data that is not JSON stays bytes"
    );
    let mut no_data = text;
    no_data.data = Default::default();
    let event = decode(&no_data).unwrap();
    assert_eq!(event.data(), None);
    assert_eq!(event.datacontenttype(), Some("text/plain"));
}

#[test]
fn binary_keys_are_read_ignoring_case() {
    let message = Message::new("{}")
        .with_attribute("CE-SpecVersion", "1.0")
        .with_attribute("Ce-Id", "1")
        .with_attribute("ce-source", "s")
        .with_attribute("ce-type", "t")
        .with_attribute(
            "ce-TraceParent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .with_attribute("CONTENT-TYPE", "application/json");
    let event = decode(&message).unwrap();
    assert_eq!(event.id(), "1");
    assert!(event.extension("traceparent").is_some());
    assert_eq!(event.data(), Some(&Data::Json(json!({}))));
}

#[test]
fn what_is_not_a_cloudevent_is_a_typed_error() {
    type Expect = fn(&BindingError) -> bool;
    let cases: Vec<(Message, Expect)> = vec![
        (Message::new("hello"), |e| {
            matches!(e, BindingError::NotACloudEvent { .. })
        }),
        (Message::new(""), |e| {
            matches!(e, BindingError::NotACloudEvent { .. })
        }),
        (Message::new(r#"{"id":"1"}"#), |e| {
            matches!(e, BindingError::NotACloudEvent { .. })
        }),
        (
            Message::new("{}").with_attribute("content-type", "application/json"),
            |e| matches!(e, BindingError::NotACloudEvent { .. }),
        ),
        (
            Message::new("[]").with_attribute("content-type", "application/cloudevents-batch+json"),
            |e| matches!(e, BindingError::Batch(_)),
        ),
        (
            Message::new("x").with_attribute("Content-Type", "application/cloudevents+avro"),
            |e| matches!(e, BindingError::UnsupportedFormat(_)),
        ),
        (
            Message::new("{not json")
                .with_attribute("content-type", "application/cloudevents+json"),
            |e| matches!(e, BindingError::Structured(_)),
        ),
        (
            Message::new(vec![0xff, 0xfe, 0x00])
                .with_attribute("content-type", "application/cloudevents+json"),
            |e| matches!(e, BindingError::Structured(_)),
        ),
        (Message::new(r#"{"specversion":"1.0","id":"1"}"#), |e| {
            matches!(e, BindingError::Structured(_))
        }),
        (
            Message::new("").with_attribute("ce-specversion", "9.9"),
            |e| matches!(e, BindingError::SpecVersion(v) if v == "9.9"),
        ),
        (
            Message::new("")
                .with_attribute("ce-specversion", "1.0")
                .with_attribute("ce-source", "s"),
            |e| matches!(e, BindingError::Binary(_)),
        ),
        (
            Message::new("")
                .with_attribute("ce-specversion", "1.0")
                .with_attribute("ce-id", "1")
                .with_attribute("ce-source", "s")
                .with_attribute("ce-type", "t")
                .with_attribute("ce-time", "yesterday"),
            |e| matches!(e, BindingError::Binary(_)),
        ),
    ];
    for (message, expected) in cases {
        let error = decode(&message).expect_err(&format!("{message:?} decoded"));
        assert!(expected(&error), "{message:?} gave {error:?}");
        assert!(!error.to_string().is_empty());
    }
}

#[test]
fn extension_names_that_break_the_rules_are_not_encoded() {
    for name in [
        "TraceParent",
        "trace_parent",
        "id",
        "source",
        "time",
        "data",
    ] {
        let mut event = expected_cluster_event();
        event.set_extension(name, "x");
        for encoding in [Encoding::Structured, Encoding::Binary] {
            let error = encode(&event, encoding).expect_err("encoded an invalid extension name");
            assert!(
                matches!(error, BindingError::ExtensionName(ref n) if n == name),
                "{name}: {error:?}"
            );
        }
    }
}

#[test]
fn binary_mode_refuses_a_cloudevents_data_content_type() {
    let mut event = expected_cluster_event();
    event.set_datacontenttype(Some("application/cloudevents+json"));
    let error = encode(&event, Encoding::Binary).expect_err("ambiguous on the wire");
    assert!(
        matches!(error, BindingError::BinaryContentType(_)),
        "{error:?}"
    );
    assert!(encode(&event, Encoding::Structured).is_ok());
}

#[test]
fn binary_attributes_differing_in_case_are_read_once_first_wins() {
    // Keys sort upper case first: `Content-Type` decides the mode and is the content type.
    let message = Message::new("hi")
        .with_attribute("Content-Type", "text/plain")
        .with_attribute("content-type", "application/cloudevents+json")
        .with_attribute("ce-specversion", "1.0")
        .with_attribute("CE-ID", "first")
        .with_attribute("ce-id", "second")
        .with_attribute("ce-source", "s")
        .with_attribute("ce-type", "t");
    let event = decode(&message).unwrap();
    assert_eq!(event.id(), "first");
    assert_eq!(event.datacontenttype(), Some("text/plain"));
    let again = decode(&encode(&event, Encoding::Binary).unwrap()).unwrap();
    assert_eq!(again, event);
}

#[test]
fn bytes_without_a_content_type_stay_bytes_in_structured_mode() {
    // Binary mode without `content-type`: the data is opaque bytes, here bytes that look like
    // JSON, in both spec versions.
    for version in ["1.0", "0.3"] {
        let message = Message::new(r#"{"not": "json to us"}"#)
            .with_attribute("ce-specversion", version)
            .with_attribute("ce-id", "1")
            .with_attribute("ce-source", "s")
            .with_attribute("ce-type", "t");
        let event = decode(&message).unwrap();
        assert!(matches!(event.data(), Some(Data::Binary(_))), "{version}");
        let again = decode(&encode(&event, Encoding::Structured).unwrap()).unwrap();
        assert_eq!(
            again.datacontenttype(),
            Some("application/octet-stream"),
            "{version}"
        );
        assert_eq!(again.data(), event.data(), "{version}");
    }
}

#[test]
fn bytes_typed_json_that_are_not_json_have_no_0_3_structured_form() {
    let message = Message::new(vec![b'{', 0x8f, b'}'])
        .with_attribute("ce-specversion", "0.3")
        .with_attribute("ce-id", "1")
        .with_attribute("ce-source", "s")
        .with_attribute("ce-type", "t")
        .with_attribute("content-type", "application/json");
    let event = decode(&message).expect("kept as bytes");
    assert!(matches!(event.data(), Some(Data::Binary(_))));
    let error = encode(&event, Encoding::Structured).expect_err("unreadable in 0.3 JSON");
    assert!(matches!(error, BindingError::NotJsonData(_)), "{error:?}");
    let again = decode(&encode(&event, Encoding::Binary).unwrap()).unwrap();
    assert_eq!(again, event, "binary mode carries them");
}

#[test]
fn untyped_json_data_is_declared_json_in_binary_mode() {
    // A structured event with JSON data and no `datacontenttype`, which the format allows.
    let event = decode(&Message::new(
        r#"{"specversion":"1.0","id":"1","source":"s","type":"t","data":{"id":"c1"}}"#,
    ))
    .unwrap();
    assert_eq!(event.datacontenttype(), None);
    let message = encode(&event, Encoding::Binary).unwrap();
    assert_eq!(message.attributes["content-type"], "application/json");
    let again = decode(&message).unwrap();
    assert_eq!(again.data(), event.data(), "JSON, not bytes");
}
