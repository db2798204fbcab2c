#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| imgbuild::fuzzing::base_layer_tar(data));
