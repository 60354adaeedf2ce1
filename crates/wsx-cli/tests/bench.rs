//! `wsx bench` against `wsx serve` and against a server that corrupts echoes.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};

mod common;

use common::{serve, WSX};

fn bench(args: &[&str]) -> (i32, serde_json::Value, String) {
    let out = Command::new(WSX)
        .arg("bench")
        .args(args)
        .arg("--json")
        .stdin(Stdio::null())
        .output()
        .expect("run wsx bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let v = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("bad JSON ({e}): {stdout} / {stderr}"));
    (out.status.code().unwrap_or(-1), v, stderr)
}

#[test]
fn counts_add_up_against_wsx_serve() {
    let server = serve(&[]);
    let url = server.url();
    for (size, depth, text) in [
        ("20", "1", false),
        ("1024", "16", true),
        ("70000", "2", false),
    ] {
        let mut args = vec![
            url.as_str(),
            "-c",
            "4",
            "-s",
            size,
            "--depth",
            depth,
            "-n",
            "400",
            "--warmup",
            "0",
        ];
        if text {
            args.push("--text");
        }
        let (code, v, err) = bench(&args);
        assert_eq!(code, 0, "{v} {err}");
        assert_eq!(v["errors"], 0, "{v}");
        assert_eq!(v["connected"], 4, "{v}");
        // 4 connections x 100 echoes each, all measured (no warm-up).
        assert_eq!(v["messages"], 400, "{v}");
        assert!(v["latency_ms"]["p50"].as_f64().unwrap() > 0.0, "{v}");
    }
    // Handshake mode counts connections.
    let (code, v, _) = bench(&[
        &url,
        "-c",
        "2",
        "--mode",
        "handshake",
        "-d",
        "0.5",
        "--warmup",
        "0",
    ]);
    assert_eq!(code, 0);
    assert!(v["handshakes"].as_u64().unwrap() > 10, "{v}");
}

/// `--deflate --payload json` against `wsx serve` (which accepts deflate):
/// negotiated, every echo inflated and verified, far fewer bytes on the wire
/// than payload bytes both ways; without `--deflate` the wire carries the
/// payload plus frame headers.
#[test]
fn deflate_json_against_wsx_serve() {
    let server = serve(&[]);
    let url = server.url();
    for size in ["1024", "16384"] {
        let (code, v, err) = bench(&[
            &url,
            "-c",
            "4",
            "-s",
            size,
            "--depth",
            "4",
            "-n",
            "400",
            "--warmup",
            "0",
            "--payload",
            "json",
            "--deflate",
        ]);
        assert_eq!(code, 0, "{v} {err}");
        assert_eq!(v["errors"], 0, "{v}");
        assert_eq!(v["connected"], 4, "{v}");
        assert_eq!(v["messages"], 400, "{v}");
        assert_eq!(v["messages_total"], 400, "{v}");
        assert_eq!(v["text"], true, "{v}");
        assert_eq!(v["deflate"]["offered"], true, "{v}");
        assert_eq!(v["deflate"]["negotiated"], true, "{v}");
        assert_eq!(
            v["deflate"]["params"]["client_no_context_takeover"], true,
            "{v}"
        );
        // JSON-like text compresses to well under half, both ways.
        for way in ["sent", "received"] {
            let r = v["wire_ratio"][way].as_f64().unwrap();
            assert!(r > 0.01 && r < 0.5, "{way}: {r} {v}");
        }
    }
    // Compression off: payload + header (+ 4-byte mask key when sent).
    let (code, v, err) = bench(&[
        &url,
        "-c",
        "2",
        "-s",
        "1024",
        "-n",
        "100",
        "--warmup",
        "0",
        "--payload",
        "json",
    ]);
    assert_eq!(code, 0, "{v} {err}");
    assert_eq!(v["deflate"]["negotiated"], false, "{v}");
    assert_eq!(v["wire_bytes_per_message"]["sent"], 1032.0, "{v}");
    assert_eq!(v["wire_bytes_per_message"]["received"], 1028.0, "{v}");
}

/// `--deflate` against a server that does not accept it: a clear failure.
#[test]
fn deflate_declined_is_an_error() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            std::thread::spawn(move || corrupting_echo(&mut s));
        }
    });
    let url = format!("ws://127.0.0.1:{port}/");
    let (code, v, _) = bench(&[&url, "-c", "2", "-n", "10", "--warmup", "0", "--deflate"]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["deflate"]["negotiated"], false, "{v}");
    assert_eq!(v["messages"], 0, "{v}");
    assert!(
        v["first_error"]
            .as_str()
            .unwrap()
            .contains("declined permessage-deflate"),
        "{v}"
    );
}

/// A server that flips one byte of every 10th echo: each must be counted.
#[test]
fn corrupted_echoes_are_errors() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            std::thread::spawn(move || corrupting_echo(&mut s));
        }
    });
    let url = format!("ws://127.0.0.1:{port}/");
    let (code, v, _) = bench(&[&url, "-c", "2", "-s", "32", "-n", "200", "--warmup", "0"]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["errors"], 20, "{v}");
}

fn corrupting_echo(s: &mut TcpStream) {
    use wsx::wsx_proto::handshake::{ServerHandshake, Upgrade};
    let mut hs = ServerHandshake::new();
    let mut buf = vec![0u8; 65536];
    let (req, rest) = loop {
        let n = s.read(&mut buf).unwrap();
        if let Some(done) = hs.handle_data(&buf[..n]).unwrap() {
            break done;
        }
    };
    let up = Upgrade::new(req).unwrap();
    s.write_all(&up.accept(&Default::default()).unwrap())
        .unwrap();
    let mut pending = rest.to_vec();
    let mut count = 0u32;
    loop {
        // Decode masked client frames by hand and echo them unmasked.
        while let Ok(Some((h, hl))) = wsx::wsx_proto::frame::FrameHeader::decode(&pending) {
            let len = h.payload_len as usize;
            if pending.len() < hl + len {
                break;
            }
            let mut payload = pending[hl..hl + len].to_vec();
            wsx::wsx_proto::mask::apply_mask(&mut payload, h.mask.unwrap(), 0);
            pending.drain(..hl + len);
            if h.opcode == wsx::wsx_proto::OpCode::CLOSE {
                let _ = s.write_all(&[0x88, 0x02, 0x03, 0xe8]);
                return;
            }
            count += 1;
            if count.is_multiple_of(10) {
                payload[0] ^= 0xff;
            }
            let mut frame = vec![0x80 | h.opcode.as_u8(), len as u8];
            frame.extend_from_slice(&payload);
            if s.write_all(&frame).is_err() {
                return;
            }
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
        }
    }
}

#[test]
fn wss_with_the_servers_certificate() {
    let server = serve(&["--tls-self-signed"]);
    let pem = std::env::temp_dir().join(format!("wsx-self-signed-{}.pem", server.port));
    let url = format!("wss://localhost:{}/", server.port);
    let ca = pem.to_str().unwrap();
    let common = ["-c", "2", "-s", "3000", "-n", "200", "--warmup", "0"];
    let mut args = vec!["--ca", ca, url.as_str()];
    args.extend(common);
    let (code, v, err) = bench(&args);
    assert_eq!(code, 0, "{v} {err}");
    assert_eq!(v["errors"], 0, "{v}");
    assert_eq!(v["messages"], 200, "{v}");
    // Handshakes include TLS; -n counts them.
    let (code, v, err) = bench(&[
        "--ca",
        ca,
        &url,
        "-c",
        "2",
        "--mode",
        "handshake",
        "-n",
        "20",
        "--warmup",
        "0",
    ]);
    assert_eq!(code, 0, "{v} {err}");
    assert_eq!(v["errors"], 0, "{v}");
    assert_eq!(v["handshakes"], 20, "{v}");
    // Without --ca the certificate is refused, in words.
    let mut args = vec![url.as_str()];
    args.extend(common);
    let (code, v, _) = bench(&args);
    assert_ne!(code, 0, "{v}");
    assert!(
        v["first_error"]
            .as_str()
            .unwrap_or("")
            .contains("unknown CA"),
        "{v}"
    );
}

/// The open loop (`--rate`) with messages larger than the server can echo
/// at that rate: it must end on time. It used to write everything due
/// before reading, while the server (rightly) stopped reading until its
/// echoes were read: both waited for ever.
#[test]
fn open_loop_past_the_servers_pace_ends_on_time() {
    let server = serve(&[]);
    let url = server.url();
    let mut child = Command::new(WSX)
        .args([
            "bench", &url, "-c", "4", "-s", "65536", "--rate", "20000", "-d", "2", "--warmup", "0",
            "--json",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run wsx bench");
    let started = std::time::Instant::now();
    // 2 s of sending, then at most 10 s for the echoes still due.
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > std::time::Duration::from_secs(30) {
            let _ = child.kill();
            panic!("wsx bench --rate still running after 30 s (a 2 s run)");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("bad JSON ({e}): {stdout}"));
    assert_eq!(v["errors"], 0, "{v}");
    assert!(v["messages"].as_u64().unwrap() > 0, "{v}");
    // Latency counts from the schedule: past the server's pace it grows.
    assert!(v["latency_ms"]["p50"].as_f64().unwrap() > 0.0, "{v}");
}
