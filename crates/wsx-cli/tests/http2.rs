//! `wsx serve`, `connect`, `probe` and `bench` over HTTP/2 (RFC 8441),
//! through the binary.

use std::io::Read;
use std::net::TcpStream;
use std::process::{Command, Stdio};

mod common;

use common::{serve, WSX};

/// /metrics of a `wsx serve`, over HTTP/1.1.
fn metrics(port: u16) -> String {
    use std::io::Write;
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{series} not in /metrics:\n{text}"))
}

fn run(args: &[&str], stdin: &str) -> (i32, String, String) {
    use std::io::Write;
    let mut child = Command::new(WSX)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `wsx serve --h2c`: probe --http2 sees the SETTINGS, the CONNECT and its
/// 200 and says HTTP/2 carried the socket; connect --http2 echoes over it;
/// /metrics counts them under http="2" and none under http="1.1".
#[test]
fn probe_and_connect_over_h2c() {
    let server = serve(&["--h2c"]);
    let url = server.url();
    let (code, out, err) = run(&["probe", "--http2", &url], "");
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("SETTINGS_ENABLE_CONNECT_PROTOCOL 1"), "{out}");
    assert!(out.contains("> :protocol: websocket"), "{out}");
    assert!(out.contains("< :status: 200"), "{out}");
    assert!(out.contains("carried by: HTTP/2"), "{out}");

    let (code, out, err) = run(&["connect", "--http2", "--once", &url], "hello over h2\n");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "hello over h2");
    assert!(err.contains("http: HTTP/2"), "{err}");

    let m = metrics(server.port);
    assert_eq!(metric(&m, "wsx_websockets_total{http=\"2\"}"), 2, "{m}");
    assert_eq!(metric(&m, "wsx_websockets_total{http=\"1.1\"}"), 0, "{m}");
    assert_eq!(metric(&m, "wsx_http2_connections_total"), 2, "{m}");
}

/// Without --h2c, connect --http2 falls back to HTTP/1.1 and says so;
/// probe --http2 fails with the reason and the remedy; with
/// --no-extended-connect, probe says the setting is absent.
#[test]
fn fallbacks_and_diagnoses() {
    let plain = serve(&[]);
    let (code, out, err) = run(&["connect", "--http2", "--once", &plain.url()], "hi\n");
    assert_eq!((code, out.trim()), (0, "hi"), "{err}");
    assert!(err.contains("falling back to HTTP/1.1"), "{err}");
    assert!(err.contains("http: HTTP/1.1"), "{err}");
    let (code, _, err) = run(&["probe", "--http2", &plain.url()], "");
    assert_eq!(code, 2);
    assert!(err.contains("--h2c"), "{err}");

    let no_8441 = serve(&["--h2c", "--no-extended-connect"]);
    let (code, out, err) = run(&["probe", "--http2", &no_8441.url()], "");
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("SETTINGS_ENABLE_CONNECT_PROTOCOL absent"),
        "{out}"
    );
    assert!(err.contains("RFC 8441"), "{err}");
    let (code, out, err) = run(&["connect", "--http2", "--once", &no_8441.url()], "hi\n");
    assert_eq!((code, out.trim()), (0, "hi"), "{err}");
    assert!(err.contains("SETTINGS_ENABLE_CONNECT_PROTOCOL"), "{err}");
}

/// bench --http2 -c 120: the sockets share two HTTP/2 connections (the
/// server allows 100 streams each), every echo checked, no errors.
#[test]
fn bench_puts_sockets_on_shared_connections() {
    let server = serve(&["--h2c"]);
    let (code, out, err) = run(
        &[
            "bench",
            "--http2",
            "-c",
            "120",
            "--duration",
            "1",
            "--warmup",
            "0.2",
            &server.url(),
        ],
        "",
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("HTTP/2 (RFC 8441): 120 sockets on 2 connection(s)"),
        "{out}"
    );
    assert!(out.contains("errors      0"), "{out}");
    let m = metrics(server.port);
    assert_eq!(metric(&m, "wsx_websockets_total{http=\"2\"}"), 120, "{m}");
    assert_eq!(metric(&m, "wsx_http2_connections_total"), 2, "{m}");
}
