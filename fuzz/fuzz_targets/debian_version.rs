#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| imgbuild::fuzzing::debian_version(data));
