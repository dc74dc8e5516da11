//! `extract` on arbitrary CloudEvent extension values.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    hyperfleet_tracing::testing::fuzz::extract_extensions(input);
});
