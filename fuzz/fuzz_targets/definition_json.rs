#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| imgbuild::fuzzing::definition_json(data));
