#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ntheap_fuzz::walk_nt(data));
