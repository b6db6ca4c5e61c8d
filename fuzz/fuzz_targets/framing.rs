//! Arbitrary bytes through the framer; see README.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| acta_fuzz::frame(data));
