//! Shared by the CLI integration tests: a `wsx serve` child on a free port.

// Each test binary uses a different subset of these.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `wsx` binary under test.
pub const WSX: &str = env!("CARGO_BIN_EXE_wsx");

/// A running `wsx serve`, killed and reaped on drop.
pub struct Server {
    pub child: Child,
    pub port: u16,
}

impl Server {
    /// `ws://127.0.0.1:PORT/`
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (up to 10 s) until something accepts TCP connections on `port`.
pub fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "server on port {port} did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `wsx serve --listen 127.0.0.1:PORT ARGS...` and waits until it listens.
pub fn serve(args: &[&str]) -> Server {
    let port = free_port();
    let child = Command::new(WSX)
        .arg("serve")
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(args)
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn wsx serve");
    let server = Server { child, port };
    wait_listening(port);
    server
}
