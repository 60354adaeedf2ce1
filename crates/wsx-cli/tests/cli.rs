//! Drives the `wsx` binary: `serve` echoes, `connect` pipes stdin/stdout.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{free_port, serve, stripping_proxy, WSX};

fn connect(url: &str, stdin: &[u8]) -> (i32, String, String) {
    let mut child = Command::new(WSX)
        .args(["connect", url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wsx connect");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("wsx connect did not exit");
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

#[test]
fn connect_pipes_lines_through_the_echo_server_and_exits_0() {
    let server = serve(&[]);
    let lines: String = (0..200).map(|i| format!("line {i} ✓\n")).collect();
    let (code, out, err) = connect(
        &format!("ws://127.0.0.1:{}/any/path?x=1", server.port),
        lines.as_bytes(),
    );
    assert_eq!(code, 0, "stderr: {err}");
    assert_eq!(out, lines);
}

#[test]
fn connect_to_nothing_exits_2_and_says_why() {
    let port = free_port();
    let (code, out, err) = connect(&format!("ws://127.0.0.1:{port}/"), b"");
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(err.contains("nothing is listening"), "{err}");
}

#[test]
fn connect_to_a_plain_http_server_explains_the_proxy_fix() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf).unwrap();
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
            .unwrap();
    });
    let (code, _, err) = connect(&format!("ws://127.0.0.1:{port}/"), b"");
    t.join().unwrap();
    assert_eq!(code, 2);
    assert!(err.contains("200"), "{err}");
    assert!(err.contains("proxy_set_header Upgrade"), "{err}");
}

#[test]
fn invalid_url_is_a_usage_error() {
    let (code, _, err) = connect("http//nope", b"");
    assert_eq!(code, 2);
    assert!(err.contains("invalid WebSocket URL"), "{err}");
}

#[test]
fn serve_answers_a_plain_get_with_the_page_or_426() {
    let server = serve(&[]);
    let get = |path: &str| {
        let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        resp
    };
    let page = get("/");
    assert!(page.starts_with("HTTP/1.1 200 "), "{page}");
    assert!(page.contains("new WebSocket("), "{page}");
    let other = get("/chat");
    assert!(other.starts_with("HTTP/1.1 426 "), "{other}");
    assert!(other.contains("Upgrade: websocket"), "{other}");
    assert!(!other.contains("proxy"), "{other}");
}

#[test]
fn serve_answers_a_handshake_that_lost_its_upgrade_header_with_426_and_the_fix() {
    let server = serve(&[]);
    // What nginx forwards without the Upgrade/Connection lines: a GET that
    // still has the key and version, at the page's path and elsewhere.
    for path in ["/", "/chat"] {
        let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.0\r\nHost: x\r\nConnection: close\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        assert!(resp.starts_with("HTTP/1.1 426 "), "{path}: {resp}");
        assert!(!resp.contains("new WebSocket("), "{path}: {resp}");
        assert!(
            resp.contains(
                "a reverse proxy in front of the server did not forward the Upgrade header"
            ),
            "{path}: {resp}"
        );
        for line in [
            "proxy_http_version 1.1;",
            "proxy_set_header Upgrade $http_upgrade;",
            "proxy_set_header Connection \"upgrade\";",
        ] {
            assert!(resp.contains(line), "{path}: {line} missing from {resp}");
        }
    }
}

#[test]
fn connect_through_a_proxy_that_strips_upgrade_names_the_cause_and_the_nginx_lines() {
    let server = serve(&[]);
    let proxy = stripping_proxy(server.port, 2);
    for path in ["/", "/chat"] {
        let (code, out, err) = connect(&format!("ws://127.0.0.1:{proxy}{path}"), b"hi\n");
        assert_eq!(code, 2, "{path}: {err}");
        assert!(out.is_empty(), "{path}: {out}");
        assert!(err.contains("426 Upgrade Required"), "{path}: {err}");
        assert!(
            err.contains("a reverse proxy in between did not forward the Upgrade header"),
            "{path}: {err}"
        );
        for line in [
            "proxy_http_version 1.1;",
            "proxy_set_header Upgrade $http_upgrade;",
            "proxy_set_header Connection \"upgrade\";",
        ] {
            assert!(err.contains(line), "{path}: {line} missing from {err}");
        }
    }
}

#[test]
fn completions_for_bash_mention_every_subcommand() {
    let out = Command::new(WSX)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let script = String::from_utf8(out.stdout).unwrap();
    for sub in ["serve", "connect", "probe", "bench"] {
        assert!(
            script.contains(sub),
            "{sub} missing from the completion script"
        );
    }
}
