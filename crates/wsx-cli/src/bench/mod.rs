//! `wsx bench`: a WebSocket load generator that checks every echo.
//!
//! It speaks the protocol through `wsx-proto` (handshake, frame headers; its
//! frames encoded and masked once by a client `Connection`) but keeps its own
//! lean loop: it resends those bytes, writes a whole batch of frames per
//! syscall, and checks echoes in place.
//!
//! With `--deflate` it offers permessage-deflate with
//! `client_no_context_takeover`, so every compressed frame it sends stands
//! alone: each distinct payload is compressed (and masked) once, through a
//! `wsx-proto` `Connection` with the negotiated parameters, and the same
//! bytes are resent. The server compresses its echoes however it negotiated;
//! they go through a `Connection` per connection (inflated, UTF-8 checked)
//! and are compared with the payload.
//!
//! `--payload json` cycles through several distinct payloads, at least
//! 64 KiB of them (twice deflate's largest window), so a server that keeps
//! its compression context cannot just point back at an identical earlier
//! message: it sees similar, not repeated, messages, like real traffic.
//!
//! Files: `args` (the flags), `plan` (checked once: target, TLS, frames;
//! the clock and the shared counters), `payload` (message contents),
//! `wire` (our frames and the echoes' parsing), `conn` (opening a
//! connection), `modes` (what a connection slot does per `--mode`), `echo`
//! (the echo loop), `runner` (threads, clock start, progress), `report`.

mod args;
mod conn;
mod echo;
mod modes;
mod payload;
mod plan;
mod report;
mod runner;
mod wire;

pub use args::{BenchArgs, EXAMPLES};

/// Runs the benchmark; prints the report. Returns the process exit code.
pub fn run(args: BenchArgs) -> u8 {
    match runner::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("wsx bench: {e}");
            2
        }
    }
}
