#![no_main]
//! See portwatch_capture::fuzz::quic.

libfuzzer_sys::fuzz_target!(|data: &[u8]| portwatch_capture::fuzz::quic(data));
