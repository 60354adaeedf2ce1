//! A client-side `Connection` fed arbitrary server bytes (see
//! `wsx_fuzz::fuzz_connection` for the input layout and the oracles), and
//! read in place against read owned (`wsx_fuzz::fuzz_in_place`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wsx_fuzz::fuzz_connection(wsx_proto::Role::Client, data);
    wsx_fuzz::fuzz_in_place(wsx_proto::Role::Client, data);
});
