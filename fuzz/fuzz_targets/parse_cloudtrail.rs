//! One record through the `cloudtrail` parser (forced), detection and splitting; see README.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| acta_fuzz::parse_as("cloudtrail", data));
