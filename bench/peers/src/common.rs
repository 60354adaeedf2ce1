//! Shared command-line and runtime plumbing for every peer binary.
//!
//! Kept deliberately tiny (plain `std::env::args`, no clap) so the only thing
//! that differs between binaries is the WebSocket library under test.

use std::io::Write;
use std::process::exit;

/// Parses `--listen HOST:PORT` (or `--listen=HOST:PORT`) from the command line.
pub fn listen_addr(bin: &str, what: &str) -> String {
    let usage = format!("usage: {bin} --listen HOST:PORT\n\n{what}");
    let mut args = std::env::args().skip(1);
    let mut listen = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => match args.next() {
                Some(v) => listen = Some(v),
                None => {
                    eprintln!("{bin}: --listen needs a value\n{usage}");
                    exit(2);
                }
            },
            "-h" | "--help" => {
                println!("{usage}");
                exit(0);
            }
            other => {
                if let Some(v) = other.strip_prefix("--listen=") {
                    listen = Some(v.to_owned());
                } else {
                    eprintln!("{bin}: unknown argument {other:?}\n{usage}");
                    exit(2);
                }
            }
        }
    }
    listen.unwrap_or_else(|| {
        eprintln!("{bin}: --listen HOST:PORT is required\n{usage}");
        exit(2);
    })
}

/// A single-threaded (`current_thread`) tokio runtime. Only the IO driver is
/// enabled unless the library needs tokio timers (`enable_time`).
pub fn runtime(enable_time: bool) -> tokio::runtime::Runtime {
    let mut b = tokio::runtime::Builder::new_current_thread();
    b.enable_io();
    if enable_time {
        b.enable_time();
    }
    b.build().expect("failed to build tokio current_thread runtime")
}

/// Binds the listener and prints `listening on ADDR` (the real address, so
/// `--listen 127.0.0.1:0` works) to stdout for scripts to wait on.
pub async fn bind(bin: &str, addr: &str) -> tokio::net::TcpListener {
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{bin}: cannot listen on {addr}: {e}");
            exit(1);
        }
    };
    let local = listener.local_addr().map(|a| a.to_string()).unwrap_or_else(|_| addr.to_owned());
    println!("{bin}: listening on {local}");
    let _ = std::io::stdout().flush();
    listener
}

/// Accepts the next connection and sets TCP_NODELAY on it. Transient accept
/// errors (e.g. EMFILE, ECONNABORTED) are reported and skipped, never fatal.
pub async fn accept(bin: &str, listener: &tokio::net::TcpListener) -> tokio::net::TcpStream {
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                let _ = stream.set_nodelay(true);
                return stream;
            }
            Err(e) => {
                eprintln!("{bin}: accept error: {e}");
                tokio::task::yield_now().await;
            }
        }
    }
}
