#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| imgbuild::fuzzing::wheel_entry_points(data));
