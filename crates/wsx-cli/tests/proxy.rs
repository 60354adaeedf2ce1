//! `wsx proxy` through the binary: the lines it prints in a pipe, its
//! JSON, and the stripped-Upgrade fault as `wsx connect` reports it.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

use common::{free_port, serve, spawn_listening, wait_listening, WSX};

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn proxy(to: u16, extra: &[&str]) -> (Child, u16) {
    let (child, port) = spawn_listening(
        Command::new(WSX)
            .args(["proxy", "--listen", "127.0.0.1:0"])
            .args(["--to", &format!("ws://127.0.0.1:{to}")])
            .args(extra)
            .stdout(Stdio::piped()),
    );
    (Child(child), port)
}

fn connect(port: u16, input: &str) -> std::process::Output {
    use std::io::Write;
    let mut c = Command::new(WSX)
        .args(["connect", &format!("ws://127.0.0.1:{port}/room?x=1")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    c.wait_with_output().unwrap()
}

/// What the proxy printed, once it printed `lines` lines (or 10 s passed).
fn printed(mut p: Child, lines: usize) -> String {
    let mut out = p.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut all = String::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.push_str(&String::from_utf8_lossy(&buf[..n]));
            let _ = tx.send(all.clone());
        }
    });
    let mut last = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if let Ok(s) = rx.recv_timeout(Duration::from_millis(100)) {
            // Only whole lines: a read can end inside one.
            last = s[..s.rfind('\n').map_or(0, |i| i + 1)].to_string();
            if last.lines().count() >= lines {
                break;
            }
        }
    }
    last
}

#[test]
fn in_a_pipe_it_prints_one_plain_line_per_frame() {
    let server = serve(&[]);
    let (p, port) = proxy(server.port, &[]);
    let out = connect(port, "hello\n");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");
    // The test's own probe that the port listens is usually connection #1,
    // but the numbering is the proxy's: take the number from the open line.
    let text = printed(p, 6);
    let lines: Vec<&str> = text.lines().collect();
    let open = lines
        .iter()
        .find(|l| l.contains("open /room?x=1"))
        .expect(&text);
    let conn = open.split(' ').next().unwrap();
    assert!(
        open.starts_with(&format!("{conn} ══")) && open.contains("extensions=permessage-deflate"),
        "{text}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with(&format!("{conn} →"))
            && l.contains("TEXT fin len=5 masked \"hello\"")),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("{conn} ←")) && l.contains("TEXT fin len=5 \"hello\"")),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("CLOSE") && l.contains("code=1000")),
        "{text}"
    );
    assert!(!text.contains('\x1b'), "no colour in a pipe: {text:?}");
}

#[test]
fn json_is_one_object_per_frame() {
    let server = serve(&[]);
    let (p, port) = proxy(server.port, &["--json"]);
    connect(port, "a\nb\n");
    let text = printed(p, 8);
    let objs: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ups: Vec<&str> = objs
        .iter()
        .filter(|o| o["dir"] == "up" && o["opcode"] == "text")
        .map(|o| o["text"].as_str().unwrap())
        .collect();
    assert_eq!(ups, ["a", "b"], "{text}");
    assert!(
        objs.iter().all(|o| o.get("payload").is_none()),
        "stdout carries no payloads"
    );
}

#[test]
fn a_stripped_upgrade_header_gets_wsx_connects_proxy_diagnosis() {
    let server = serve(&[]);
    let (_p, port) = proxy(server.port, &["--strip-upgrade"]);
    let out = connect(port, "hello\n");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Upgrade header"), "{err}");
    assert!(err.contains("proxy"), "{err}");
}

fn connect_args(args: &[&str], input: &str) -> std::process::Output {
    use std::io::Write;
    let mut c = Command::new(WSX)
        .arg("connect")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    c.wait_with_output().unwrap()
}

#[test]
fn wss_through_the_proxy_with_its_ca_trusted_and_refused_without() {
    // A wss:// server the proxy trusts with --ca; clients speak wss:// to
    // the proxy, whose CA is created on first use.
    let server = serve(&["--tls-self-signed"]);
    let server_pem = std::env::temp_dir().join(format!("wsx-self-signed-{}.pem", server.port));
    let ca_dir = std::env::temp_dir().join(format!("wsx-proxy-ca-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&ca_dir);
    let port = free_port();
    let mut p = Command::new(WSX)
        .args(["proxy", "--listen", &format!("127.0.0.1:{port}"), "--tls"])
        .args(["--ca-dir", ca_dir.to_str().unwrap()])
        .args(["--to", &format!("wss://localhost:{}", server.port)])
        .args(["--ca", server_pem.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_listening(port);
    let ca = ca_dir.join("ca.pem");
    assert!(ca.exists(), "the proxy's CA is created on first use");
    let url = format!("wss://localhost:{port}/secure");
    let out = connect_args(
        &["--ca", ca.to_str().unwrap(), &url],
        "over wss both ways\n",
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "over wss both ways\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Without trusting it: refused, in words.
    let out = connect_args(&[&url], "x\n");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown CA") && err.contains("--ca"), "{err}");
    let _ = p.kill();
    let out = p.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("created now") && log.contains("trust it for testing only"),
        "{log}"
    );
    let frames = String::from_utf8_lossy(&out.stdout);
    assert!(
        frames.contains("\"over wss both ways\""),
        "the proxy saw the frames in the clear: {frames}"
    );
    assert!(
        frames.contains("TLS handshake with the client failed"),
        "{frames}"
    );
    let _ = std::fs::remove_dir_all(&ca_dir);
}
