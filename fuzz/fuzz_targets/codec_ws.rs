#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| protocols::fuzz::codec_ws(data));
