#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| imgbuild::fuzzing::sbom_layer(data));
