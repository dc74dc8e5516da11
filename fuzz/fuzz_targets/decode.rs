//! `binding::decode` on arbitrary Pub/Sub messages.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    hyperfleet_tracing::testing::fuzz::decode_message(input);
});
