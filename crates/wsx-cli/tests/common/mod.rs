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
    // A connect to a port nobody listens on can still succeed when the
    // kernel picks that same port as the source (TCP self-connect): that
    // probe proves nothing, so it counts as not listening yet.
    let listening = || {
        TcpStream::connect(("127.0.0.1", port))
            .is_ok_and(|s| s.local_addr().ok() != s.peer_addr().ok())
    };
    while !listening() {
        assert!(
            Instant::now() < deadline,
            "server on port {port} did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Spawns `cmd`, which listens on `127.0.0.1:0`, and returns it with the
/// port it says (on stderr) the kernel gave it. A port picked free and
/// released before the child binds it can be taken in between (by another
/// test's server or a client's source port: CI saw "connection refused"
/// right after such a start); a port the kernel picks at bind cannot.
/// Its stderr is drained on a thread, so it never blocks on a full pipe.
pub fn spawn_listening(cmd: &mut Command) -> (Child, u16) {
    use std::io::BufRead;
    let mut child = cmd.stderr(Stdio::piped()).spawn().expect("spawn");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        let mut seen = String::new();
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let Some(t) = &tx else { continue };
            match logged_port(&line) {
                Some(port) => {
                    let _ = t.send(Ok(port));
                    tx = None;
                }
                None => seen.push_str(&format!("{line}\n")),
            }
        }
        if let Some(t) = tx {
            let _ = t.send(Err(seen));
        }
    });
    let fail = |child: &mut Child, why: String| -> ! {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{why}")
    };
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(Ok(port)) => (child, port),
        Ok(Err(log)) => fail(
            &mut child,
            format!("exited before listening; stderr:\n{log}"),
        ),
        Err(_) => fail(
            &mut child,
            "did not say where it listens within 10 s".into(),
        ),
    }
}

/// The port in `... listening on ws://127.0.0.1:PORT, ...` (wsx serve) or
/// `wsx proxy: ws://127.0.0.1:PORT -> ...`.
fn logged_port(line: &str) -> Option<u16> {
    if !(line.contains(" listening on ") || line.starts_with("wsx proxy: ")) {
        return None;
    }
    let rest = &line[line.find("://127.0.0.1:")? + "://127.0.0.1:".len()..];
    let digits = rest.split(|c: char| !c.is_ascii_digit()).next()?;
    digits.parse().ok().filter(|p| *p != 0)
}

/// Starts `wsx serve --listen 127.0.0.1:0 ARGS...` and waits until it listens.
pub fn serve(args: &[&str]) -> Server {
    let (child, port) = spawn_listening(
        Command::new(WSX)
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args),
    );
    Server { child, port }
}

/// A reverse proxy that forwards like nginx without the WebSocket lines:
/// each request goes to `127.0.0.1:upstream` without its hop-by-hop
/// `Upgrade` and `Connection` headers (and with `Connection: close`), and
/// the answer comes back as is. Serves `conns` connections; returns the port.
pub fn stripping_proxy(upstream: u16, conns: usize) -> u16 {
    use std::io::{Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for _ in 0..conns {
            let Ok((mut client, _)) = listener.accept() else {
                return;
            };
            let _ = client.set_read_timeout(Some(Duration::from_secs(5)));
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match client.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            let head = String::from_utf8_lossy(&head);
            let mut forwarded: String = head
                .split_inclusive("\r\n")
                .filter(|l| {
                    let l = l.to_ascii_lowercase();
                    !l.starts_with("upgrade:") && !l.starts_with("connection:") && l != "\r\n"
                })
                .collect();
            forwarded.push_str("Connection: close\r\n\r\n");
            let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                return;
            };
            let _ = server.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = server.write_all(forwarded.as_bytes());
            let mut answer = Vec::new();
            let _ = server.read_to_end(&mut answer);
            let _ = client.write_all(&answer);
        }
    });
    port
}
