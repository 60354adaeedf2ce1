//! A client-side `Connection` fed arbitrary server bytes (see
//! `wsx_fuzz::fuzz_connection` for the input layout and the oracles).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wsx_fuzz::fuzz_connection(wsx_proto::Role::Client, data);
});
