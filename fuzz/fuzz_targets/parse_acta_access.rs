//! One record through the `acta-access` parser (forced), detection and splitting; see README.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| acta_fuzz::parse_as("acta-access", data));
