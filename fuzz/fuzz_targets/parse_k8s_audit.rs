//! One record through the `k8s-audit` parser (forced), detection and splitting; see README.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| acta_fuzz::parse_as("k8s-audit", data));
