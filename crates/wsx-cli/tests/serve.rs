//! `wsx serve` modes, driven through the binary with the wsx library as client.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};
use wsx::{
    client::{ClientConfig, ClientRequest},
    CloseCode, Message,
};

mod common;

use common::serve;

async fn client(port: u16, path: &str) -> wsx::WebSocket<wsx::MaybeTlsStream> {
    wsx::connect(&format!("ws://127.0.0.1:{port}{path}"))
        .await
        .unwrap()
}

async fn recv_text(ws: &mut wsx::WebSocket<wsx::MaybeTlsStream>) -> String {
    let m = tokio::time::timeout(Duration::from_secs(10), ws.recv())
        .await
        .expect("timed out waiting for a message")
        .unwrap();
    match m {
        Some(Message::Text(t)) => t.to_string(),
        other => panic!("expected text, got {other:?}"),
    }
}

/// Reads until the end and returns the close code.
async fn close_code(ws: &mut wsx::WebSocket<wsx::MaybeTlsStream>) -> u16 {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.recv())
            .await
            .expect("timed out waiting for the close")
        {
            Ok(Some(_)) => continue,
            Ok(None) => return ws.close_info().unwrap().code.0,
            Err(e) => return e.close_code().map_or(0, |c| c.0),
        }
    }
}

/// One GET, read to the end: the server keeps HTTP/1.1 connections alive
/// unless asked not to, so this asks (`Connection: close`).
fn http_get(port: u16, path: &str, extra: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n{extra}\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[tokio::test]
async fn broadcast_reaches_every_client_on_the_same_path_only() {
    let server = serve(&["--broadcast"]);
    let mut a = client(server.port, "/room").await;
    let mut b = client(server.port, "/room").await;
    let mut c = client(server.port, "/room").await;
    let mut other = client(server.port, "/elsewhere").await;
    // Let the joins register before sending.
    tokio::time::sleep(Duration::from_millis(100)).await;
    a.send(Message::text("hello room")).await.unwrap();
    for ws in [&mut a, &mut b, &mut c] {
        assert_eq!(recv_text(ws).await, "hello room");
    }
    b.send(Message::text("from b")).await.unwrap();
    for ws in [&mut a, &mut b, &mut c] {
        assert_eq!(recv_text(ws).await, "from b");
    }
    // The other room heard nothing.
    other.send(Message::text("alone")).await.unwrap();
    assert_eq!(recv_text(&mut other).await, "alone");
}

#[tokio::test]
async fn exec_runs_a_program_per_connection() {
    let server = serve(&["--exec", "cat"]);
    let mut ws = client(server.port, "/").await;
    ws.send(Message::text("line one")).await.unwrap();
    assert_eq!(recv_text(&mut ws).await, "line one");
    ws.send(Message::text("line two")).await.unwrap();
    assert_eq!(recv_text(&mut ws).await, "line two");
    ws.close(None).await.unwrap();
    assert_eq!(close_code(&mut ws).await, 1005);
}

#[tokio::test]
async fn exec_sees_the_connection_in_its_environment_and_its_exit_closes() {
    let server = serve(&[
        "--exec",
        "echo \"$REMOTE_ADDR $PATH_INFO $QUERY_STRING $HTTP_X_TOKEN\"; exit 0",
    ]);
    let req = ClientRequest::new(&format!("ws://127.0.0.1:{}/env?a=1", server.port))
        .unwrap()
        .header("X-Token", "t0k")
        .unwrap();
    let (mut ws, _) = wsx::client::connect_with(&req, &ClientConfig::default())
        .await
        .unwrap();
    assert_eq!(recv_text(&mut ws).await, "127.0.0.1 /env a=1 t0k");
    assert_eq!(close_code(&mut ws).await, 1000);

    let failing = serve(&["--exec", "echo bye; exit 3"]);
    let mut ws = client(failing.port, "/").await;
    assert_eq!(recv_text(&mut ws).await, "bye");
    assert_eq!(close_code(&mut ws).await, 1011);
}

#[tokio::test]
async fn exec_shared_runs_one_program_for_everyone() {
    // One `cat` for all: what any client sends, every client receives.
    let server = serve(&["--exec-shared", "cat"]);
    let mut a = client(server.port, "/").await;
    let mut b = client(server.port, "/").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    a.send(Message::text("from a")).await.unwrap();
    assert_eq!(recv_text(&mut a).await, "from a");
    assert_eq!(recv_text(&mut b).await, "from a");
    b.send(Message::text("from b")).await.unwrap();
    assert_eq!(recv_text(&mut a).await, "from b");
    assert_eq!(recv_text(&mut b).await, "from b");
}

/// Sends an upgrade request with `origin` and returns the response head
/// (a 101 keeps the connection open, so read only up to the blank line).
fn upgrade_with_origin(port: u16, origin: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: {origin}\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    // A refusal has a body that names the problem: read it too.
    if !head.starts_with(b"HTTP/1.1 101") {
        let _ = s.read_to_end(&mut head);
    }
    String::from_utf8_lossy(&head).into_owned()
}

#[test]
fn cross_origin_upgrades_get_403_unless_allowed() {
    let server = serve(&[]);
    let port = server.port;
    let r = upgrade_with_origin(port, "http://evil.example");
    assert!(r.starts_with("HTTP/1.1 403 "), "{r}");
    assert!(r.contains("not allowed"), "{r}");
    // Same origin (the page served by wsx itself) is fine.
    let r = upgrade_with_origin(port, &format!("http://127.0.0.1:{port}"));
    assert!(r.starts_with("HTTP/1.1 101 "), "{r}");

    let listed = serve(&[
        "--origin",
        "https://*.example.com",
        "--origin",
        "http://exact.test",
    ]);
    for (origin, ok) in [
        ("https://app.example.com", true),
        ("https://example.com.evil.net", false),
        ("http://exact.test", true),
        ("http://exact.test.evil", false),
        ("http://app.example.com", false),
    ] {
        let r = upgrade_with_origin(listed.port, origin);
        let want = if ok { "HTTP/1.1 101 " } else { "HTTP/1.1 403 " };
        assert!(r.starts_with(want), "{origin}: {r}");
    }
}

#[test]
fn page_metrics_static_files_and_426() {
    let dir = std::env::temp_dir().join(format!("wsx-static-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("hello.txt"), "hello file\n").unwrap();
    std::fs::write(dir.join("sub/index.html"), "<p>sub</p>").unwrap();
    let server = serve(&["--static", dir.to_str().unwrap()]);
    let port = server.port;
    let r = http_get(port, "/hello.txt", "");
    assert!(
        r.starts_with("HTTP/1.1 200 ") && r.ends_with("hello file\n"),
        "{r}"
    );
    assert!(r.contains("text/plain"), "{r}");
    let r = http_get(port, "/sub/", "");
    assert!(r.contains("<p>sub</p>") && r.contains("text/html"), "{r}");
    let r = http_get(port, "/../../etc/passwd", "");
    assert!(!r.contains("root:"), "{r}");
    let r = http_get(port, "/", "");
    assert!(
        r.starts_with("HTTP/1.1 200 ") && r.contains("new WebSocket("),
        "{r}"
    );
    let r = http_get(port, "/metrics", "");
    assert!(r.contains("wsx_connections_open 0"), "{r}");
    let _ = std::fs::remove_dir_all(&dir);

    let plain = serve(&[]);
    let r = http_get(plain.port, "/chat", "");
    assert!(r.starts_with("HTTP/1.1 426 "), "{r}");
    assert!(r.contains("WebSocket endpoint"), "{r}");
}

#[tokio::test]
async fn metrics_count_messages_and_close_codes() {
    let server = serve(&[]);
    let mut ws = client(server.port, "/").await;
    for i in 0..3 {
        ws.send(Message::text(format!("m{i}"))).await.unwrap();
        recv_text(&mut ws).await;
    }
    ws.close(Some(wsx::CloseFrame::new(CloseCode(4001), "done")))
        .await
        .unwrap();
    assert_eq!(close_code(&mut ws).await, 4001);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let port = server.port;
    let r = tokio::task::spawn_blocking(move || http_get(port, "/metrics", ""))
        .await
        .unwrap();
    assert!(r.contains("wsx_messages_received_total 3"), "{r}");
    assert!(r.contains("wsx_messages_sent_total 3"), "{r}");
    assert!(r.contains("wsx_close_codes_total{code=\"4001\"} 1"), "{r}");
}

#[tokio::test]
async fn max_connections_answers_503_with_retry_after() {
    let server = serve(&["--max-connections", "1"]);
    let _first = client(server.port, "/").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let err = wsx::connect(&format!("ws://127.0.0.1:{}/", server.port))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("503"), "{text}");
    let rejection = err.client_handshake().unwrap().to_string();
    assert!(rejection.contains("retry later"), "{rejection}");
}

#[tokio::test]
async fn sigterm_closes_every_client_with_1001_and_exits() {
    let mut server = serve(&["--drain", "2"]);
    let mut a = client(server.port, "/").await;
    let mut b = client(server.port, "/").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let pid = server.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert_eq!(close_code(&mut a).await, 1001);
    assert_eq!(close_code(&mut b).await, 1001);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "server did not exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn idle_timeout_closes_quiet_connections_with_1001() {
    let server = serve(&["--idle-timeout", "0.3"]);
    let mut ws = client(server.port, "/").await;
    let t0 = Instant::now();
    assert_eq!(close_code(&mut ws).await, 1001);
    assert!(ws.close_info().unwrap().reason.contains("idle"));
    assert!(
        t0.elapsed() >= Duration::from_millis(250),
        "{:?}",
        t0.elapsed()
    );
}

#[tokio::test]
async fn origin_flags_allow_listed_sites_and_refuse_others() {
    let server = serve(&["--origin", "https://*.example.com"]);
    let upgrade = |origin: &str| {
        let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        write!(
            s,
            "GET / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n",
            server.port
        )
        .unwrap();
        let mut head = [0u8; 12];
        s.read_exact(&mut head).unwrap();
        String::from_utf8_lossy(&head).into_owned()
    };
    assert_eq!(upgrade("https://app.example.com"), "HTTP/1.1 101");
    assert_eq!(
        upgrade(&format!("http://127.0.0.1:{}", server.port)),
        "HTTP/1.1 101"
    );
    assert_eq!(upgrade("https://evil.test"), "HTTP/1.1 403");
    let bad = Command::new(env!("CARGO_BIN_EXE_wsx"))
        .args(["serve", "--origin", "example.com"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("expected scheme://host"));
}

#[tokio::test]
async fn deflate_is_negotiated_unless_turned_off() {
    for (flags, want) in [(&[][..], true), (&["--no-deflate"][..], false)] {
        let server = serve(flags);
        let mut ws = client(server.port, "/").await;
        assert_eq!(ws.deflate().is_some(), want, "{flags:?}");
        let big = "{\"k\":1}".repeat(1000);
        ws.send(Message::text(big.clone())).await.unwrap();
        assert_eq!(recv_text(&mut ws).await, big);
    }
}

/// `wsx serve --console ARGS...` with a pipe on its stdin.
fn serve_console(args: &[&str]) -> (common::Server, std::process::ChildStdin) {
    let (mut child, port) = common::spawn_listening(
        Command::new(common::WSX)
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--console"])
            .args(args)
            .stdin(std::process::Stdio::piped()),
    );
    let stdin = child.stdin.take().unwrap();
    (common::Server { child, port }, stdin)
}

#[tokio::test]
async fn console_sends_closes_with_a_code_and_drops() {
    let (server, mut console) = serve_console(&[]);
    let mut a = client(server.port, "/").await;
    // An echo first: the connection's handler is then listening to the console.
    a.send(Message::text("hi")).await.unwrap();
    assert_eq!(recv_text(&mut a).await, "hi");

    writeln!(console, "hello from the console").unwrap();
    assert_eq!(recv_text(&mut a).await, "hello from the console");
    // A bad command is reported and changes nothing.
    writeln!(console, "/close 1006").unwrap();
    writeln!(console, "/send still here").unwrap();
    assert_eq!(recv_text(&mut a).await, "still here");

    writeln!(console, "/close 4001 bye from the console").unwrap();
    assert_eq!(close_code(&mut a).await, 4001);
    let info = a.close_info().unwrap();
    assert_eq!(info.reason, "bye from the console");

    let mut b = client(server.port, "/").await;
    b.send(Message::text("hi")).await.unwrap();
    assert_eq!(recv_text(&mut b).await, "hi");
    writeln!(console, "/drop").unwrap();
    assert_eq!(
        close_code(&mut b).await,
        1006,
        "no close frame: abnormal closure"
    );
}

/// The value of an unlabelled metric.
fn metric(port: u16, name: &str) -> Option<u64> {
    let r = http_get(port, "/metrics", "");
    r.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_count_pongs_to_keepalive_and_console_pings() {
    let (server, mut console) = serve_console(&["--ping-interval", "0.2"]);
    let port = server.port;
    let mut ws = client(port, "/").await;
    ws.send(Message::text("hi")).await.unwrap();
    assert_eq!(recv_text(&mut ws).await, "hi");
    writeln!(console, "/ping from-the-console").unwrap();
    // recv() answers every ping; count the keepalive ones (8-byte counters).
    let (mut keepalive, mut console_ping) = (0, false);
    while keepalive < 2 || !console_ping {
        match tokio::time::timeout(Duration::from_secs(5), ws.recv())
            .await
            .expect("timed out waiting for pings")
            .unwrap()
        {
            Some(Message::Ping(p)) if &p[..] == b"from-the-console" => console_ping = true,
            Some(Message::Ping(_)) => keepalive += 1,
            other => panic!("expected pings, got {other:?}"),
        }
    }
    ws.flush().await.unwrap(); // the last pong
    let want = keepalive + 1;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = tokio::task::spawn_blocking(move || metric(port, "wsx_pongs_received_total"))
            .await
            .unwrap();
        // More keepalive pings may have come and gone meanwhile: at least.
        if got.is_some_and(|n| n >= want) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "wsx_pongs_received_total {got:?}, want >= {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads one frame header and payload from a raw socket (server frames are unmasked).
fn read_frame(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).unwrap();
    let len = match h[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            s.read_exact(&mut b).unwrap();
            u16::from_be_bytes(b) as usize
        }
        127 => {
            let mut b = [0u8; 8];
            s.read_exact(&mut b).unwrap();
            u64::from_be_bytes(b) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).unwrap();
    (h[0], payload)
}

#[test]
fn send_frame_size_fragments_the_echo() {
    let server = serve(&["--send-frame-size", "1000"]);
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // No Sec-WebSocket-Extensions: plain frames, payload sizes exact.
    write!(
        s,
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    let text: Vec<u8> = (0..2500u32).map(|i| b'a' + (i % 26) as u8).collect();
    let key = [1u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x80 | 126, (2500u16 >> 8) as u8, 2500u16 as u8];
    frame.extend_from_slice(&key);
    frame.extend(text.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    s.write_all(&frame).unwrap();
    let frames: Vec<(u8, Vec<u8>)> = (0..3).map(|_| read_frame(&mut s)).collect();
    let b0: Vec<u8> = frames.iter().map(|f| f.0).collect();
    // TEXT without FIN, CONTINUATION, CONTINUATION with FIN.
    assert_eq!(b0, [0x01, 0x00, 0x80]);
    let sizes: Vec<usize> = frames.iter().map(|f| f.1.len()).collect();
    assert_eq!(sizes, [1000, 1000, 500]);
    let joined: Vec<u8> = frames.into_iter().flat_map(|f| f.1).collect();
    assert_eq!(joined, text);
}

#[test]
fn serve_raises_a_low_soft_file_limit_to_hold_its_connections() {
    // Started with a soft limit of 64 descriptors (the hard one untouched),
    // it must still hold 300 connections: it raises the soft limit itself.
    let (mut child, port) = common::spawn_listening(std::process::Command::new("sh").args([
        "-c",
        &format!(
            "ulimit -Sn 64 && exec {} serve --listen 127.0.0.1:0",
            common::WSX
        ),
    ]));
    let out = std::process::Command::new(common::WSX)
        .args([
            "bench",
            &format!("ws://127.0.0.1:{port}/"),
            "--mode",
            "idle",
            "-c",
            "300",
            "-d",
            "1",
            "--warmup",
            "0",
            "--json",
        ])
        .output()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(text.lines().last().unwrap_or("{}")).unwrap();
    assert_eq!(
        v["connected"],
        300,
        "{v} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(v["errors"], 0, "{v}");
}
