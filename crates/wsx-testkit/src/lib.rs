//! `wsx-testkit`: the harnesses that test wsx from the outside, kept out of
//! the library's `examples/` (which are for copying). Not published.
//!
//! Binaries (`cargo build --release -p wsx-testkit --bin NAME`):
//! - `autobahn_client`: the client under test in `scripts/autobahn`.
//! - `interop_client`: the wsx client in `scripts/interop`.
//! - `soak`: the soak test, for minutes ([`soak`] is its scenario;
//!   `tests/soak.rs` runs it for 10 s under `cargo test`).
//! - `tls_throughput`: echo throughput over wss:// as a fraction of ws://.
#![forbid(unsafe_code)]

pub mod soak;
