#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| scimgate_fuzz::patch_path_value(data));
