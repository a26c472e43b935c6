#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| protocols::fuzz::chat_bus(data));
