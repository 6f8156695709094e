#![no_main]
//! See portwatch_capture::fuzz::tls.

libfuzzer_sys::fuzz_target!(|data: &[u8]| portwatch_capture::fuzz::tls(data));
