#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| scimgate_fuzz::token_parse(data));
