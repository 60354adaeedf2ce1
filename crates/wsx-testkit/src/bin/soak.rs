//! Soak test: one process, a `wsx::Server` on 127.0.0.1 under many
//! connections that open, send and close abnormally, then a graceful
//! shutdown; exits non-zero on a panic, a leaked task or file descriptor,
//! a connection left open, or any client that saw an unexpected result.
//!
//! ```text
//! cargo run --release -p wsx-testkit --bin soak -- --secs 120 [--clients 200]
//!     [--max-connections 200] [--seed N]
//! ```
//! `cargo test -p wsx-testkit --test soak` runs the same scenario for 10 s.

use wsx_testkit::soak as scenario;

fn main() {
    let mut opts = scenario::Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| -> u64 {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| usage(&format!("{name} needs a number")))
        };
        match arg.as_str() {
            "--secs" => opts.secs = value("--secs"),
            "--clients" => opts.clients = value("--clients") as usize,
            "--max-connections" => opts.max_connections = value("--max-connections") as usize,
            "--seed" => opts.seed = value("--seed"),
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    let report = scenario::run(&opts);
    print!("{report}");
    if !report.passed() {
        std::process::exit(1);
    }
}

fn usage(problem: &str) -> ! {
    if !problem.is_empty() {
        eprintln!("soak: {problem}");
    }
    eprintln!(
        "usage: soak [--secs 60] [--clients 200] [--max-connections 200] [--seed N]\n\
         Loopback only (127.0.0.x); exits non-zero if any check fails."
    );
    std::process::exit(2)
}
