//! Drives `wsx probe` against `wsx serve` and against raw TCP servers that
//! answer the handshake wrongly in the usual ways.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{free_port, serve, stripping_proxy, WSX};

/// A one-connection server: reads the request head, sends `answer`, ends
/// its side and waits for the client to go. Returns the port.
fn raw_server(answer: impl FnOnce(&str) -> Vec<u8> + Send + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        let request = read_head(&mut s);
        let _ = s.write_all(&answer(&request));
        let _ = s.shutdown(Shutdown::Write);
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let mut sink = [0u8; 1024];
        while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
    });
    port
}

fn read_head(s: &mut TcpStream) -> String {
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Runs `wsx probe ARGS`; returns (exit code, stdout, stderr).
fn probe(args: &[&str]) -> (i32, String, String) {
    let mut child = Command::new(WSX)
        .arg("probe")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wsx probe");
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("wsx probe {args:?} did not exit");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.code().unwrap_or(-1), out, err)
}

fn url(port: u16) -> String {
    format!("ws://127.0.0.1:{port}/")
}

/// Asserts that the combined output contains each of `words`.
fn assert_says(out: &str, err: &str, words: &[&str]) {
    let all = format!("{out}\n{err}");
    for w in words {
        assert!(
            all.contains(w),
            "expected {w:?} in the output:\n--- stdout\n{out}\n--- stderr\n{err}"
        );
    }
}

#[test]
fn against_wsx_serve_shows_the_handshake_and_a_ping() {
    let server = serve(&[]);
    let (code, out, err) = probe(&[&url(server.port)]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert_says(
        &out,
        "",
        &[
            "> GET / HTTP/1.1",
            "> Sec-WebSocket-Key: ",
            "< HTTP/1.1 101",
            "< Sec-WebSocket-Accept: ",
            "status: 101",
            "ping: ",
            "close: sent 1000",
            "timings: dns ",
        ],
    );
    let ping = out.lines().find(|l| l.starts_with("ping: ")).unwrap();
    assert!(ping.ends_with(" ms"), "{ping}");

    let (code, out, err) = probe(&[&url(server.port), "--json", "-H", "X-Probe: 1"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["response"]["status"], 101, "{v}");
    assert!(v["rtt_ms"].as_f64().is_some(), "{v}");
    assert!(v["timings_ms"]["http"].as_f64().is_some(), "{v}");
    assert_eq!(v["close"]["code"], 1000, "{v}");
    let sent = v["request"]["headers"].as_array().unwrap();
    assert!(
        sent.iter()
            .any(|h| h["name"] == "X-Probe" && h["value"] == "1"),
        "{v}"
    );
}

#[test]
fn plain_http_200_suggests_the_proxy_upgrade_lines() {
    let port = raw_server(|_| {
        let body = "<html><body>Welcome to nginx!</body></html>";
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    });
    let (code, out, err) = probe(&[&url(port)]);
    assert_eq!(code, 2, "stdout:\n{out}\nstderr:\n{err}");
    assert_says(
        &out,
        &err,
        &[
            "< HTTP/1.1 200 OK",
            "Welcome to nginx!",
            "200",
            "proxy_http_version 1.1;",
            "proxy_set_header Upgrade $http_upgrade;",
        ],
    );

    let port = raw_server(|_| b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi".to_vec());
    let (code, out, _) = probe(&[&url(port), "--json"]);
    assert_eq!(code, 2);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!(v["ok"], false);
    assert_eq!(v["step"], "http");
    assert_eq!(v["response"]["status"], 200);
    assert_eq!(v["response"]["body"], "hi");
    assert!(v["error"].as_str().unwrap().contains("200"), "{v}");
    assert!(
        v["hint"]
            .as_str()
            .unwrap()
            .contains("proxy_set_header Upgrade"),
        "{v}"
    );
}

#[test]
fn through_a_proxy_that_strips_upgrade_names_the_cause_and_lists_the_nginx_lines() {
    let server = serve(&[]);
    let proxy = stripping_proxy(server.port, 1);
    let (code, out, err) = probe(&[&format!("ws://127.0.0.1:{proxy}/chat")]);
    assert_eq!(code, 2, "stdout:\n{out}\nstderr:\n{err}");
    assert_says(
        &out,
        &err,
        &[
            "< HTTP/1.1 426 Upgrade Required",
            "a reverse proxy in between did not forward the Upgrade header",
        ],
    );
    // The nginx lines one per line, ready to paste.
    for line in [
        "proxy_http_version 1.1;",
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection \"upgrade\";",
    ] {
        assert!(
            out.lines().chain(err.lines()).any(|l| l.trim() == line),
            "no line {line:?}:\n--- stdout\n{out}\n--- stderr\n{err}"
        );
    }
}

#[test]
fn bad_request_400_shows_the_body() {
    let port = raw_server(|_| {
        b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\nmissing the upgrade token".to_vec()
    });
    let (code, out, err) = probe(&[&url(port)]);
    assert_eq!(code, 2, "stdout:\n{out}\nstderr:\n{err}");
    assert_says(
        &out,
        &err,
        &[
            "< HTTP/1.1 400 Bad Request",
            "400",
            "missing the upgrade token",
            "proxy_set_header Upgrade",
        ],
    );
}

#[test]
fn redirect_shows_the_location() {
    let port = raw_server(|_| {
        b"HTTP/1.1 301 Moved Permanently\r\nLocation: https://example.com/socket\r\nContent-Length: 0\r\n\r\n"
            .to_vec()
    });
    let (code, out, err) = probe(&[&url(port)]);
    assert_eq!(code, 2, "stdout:\n{out}\nstderr:\n{err}");
    assert_says(&out, &err, &["301", "Location: https://example.com/socket"]);
}

#[test]
fn wrong_accept_shows_expected_and_got() {
    let port = raw_server(|_| {
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: bm90IHRoZSByaWdodCBrZXk=\r\n\r\n"
            .to_vec()
    });
    let (code, out, err) = probe(&[&url(port)]);
    assert_eq!(code, 2, "stdout:\n{out}\nstderr:\n{err}");
    assert_says(
        &out,
        &err,
        &[
            "wrong Sec-WebSocket-Accept",
            "expected: ",
            "bm90IHRoZSByaWdodCBrZXk=",
        ],
    );
}

#[test]
fn tls_bytes_are_recognized() {
    let port = raw_server(|_| b"\x15\x03\x01\x00\x02\x02\x46".to_vec());
    let (code, out, err) = probe(&[&url(port)]);
    assert_eq!(code, 2, "stdout:\n{out}\nstderr:\n{err}");
    assert_says(&out, &err, &["not an HTTP response", "TLS", "15 03 01"]);
}

#[test]
fn server_hanging_up_before_the_response() {
    let port = raw_server(|_| Vec::new());
    let (code, out, err) = probe(&[&url(port)]);
    assert_eq!(code, 2, "stdout:\n{out}\nstderr:\n{err}");
    assert_says(&out, &err, &["closed the connection without answering"]);
}

#[test]
fn connection_refused_says_nothing_is_listening() {
    let port = free_port();
    let (code, out, err) = probe(&[&url(port)]);
    assert_eq!(code, 2, "stdout:\n{out}\nstderr:\n{err}");
    assert_says(&out, &err, &["connection refused", "nothing is listening"]);
}

#[test]
fn silent_server_times_out_in_the_http_step() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        // Accept, read, never answer; hold the connection past the timeout.
        if let Ok((mut s, _)) = listener.accept() {
            let _ = read_head(&mut s);
            std::thread::sleep(Duration::from_secs(4));
        }
    });
    let start = Instant::now();
    let (code, out, err) = probe(&[&url(port), "--timeout", "1"]);
    assert_eq!(code, 2, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert_says(&out, &err, &["the HTTP step timed out", "within 1 s"]);
}

#[test]
fn wss_to_a_plain_port_fails_at_the_tls_step() {
    let server = common::serve(&[]);
    let (code, out, err) = probe(&[&format!("wss://127.0.0.1:{}/", server.port)]);
    assert_ne!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert_says(&out, &err, &["TLS handshake with 127.0.0.1"]);
}
