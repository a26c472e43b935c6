#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| protocols::fuzz::output_queue(data));
