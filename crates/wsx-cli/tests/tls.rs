//! `wsx serve --tls-self-signed` / `--tls-cert --tls-key` and `wsx connect`
//! with `--ca`, `--insecure`, `--cert/--key`, through the binary.

use std::io::Write;
use std::process::{Command, Stdio};

mod common;

use common::{serve, WSX};

/// Runs `wsx connect ARGS` with `input` on stdin; (exit code, stdout, stderr).
fn connect(args: &[&str], input: &str) -> (i32, String, String) {
    let mut child = Command::new(WSX)
        .arg("connect")
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
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn self_signed_server_and_a_client_that_trusts_its_certificate() {
    let server = serve(&["--tls-self-signed"]);
    let url = format!("wss://localhost:{}/", server.port);
    let pem = std::env::temp_dir().join(format!("wsx-self-signed-{}.pem", server.port));
    assert!(pem.exists(), "the certificate is written for clients");
    let pem = pem.to_str().unwrap();
    let (code, out, err) = connect(&["--ca", pem, &url], "hello over wss\n");
    assert_eq!((code, out.as_str()), (0, "hello over wss\n"), "{err}");
    // The default roots do not know it: refused, in words.
    let (code, out, err) = connect(&[&url], "x\n");
    assert_ne!(code, 0);
    assert!(out.is_empty());
    assert!(err.contains("unknown CA") && err.contains("--ca"), "{err}");
    // --insecure skips verification, loudly.
    let (code, out, err) = connect(&["--insecure", &url], "y\n");
    assert_eq!((code, out.as_str()), (0, "y\n"), "{err}");
    assert!(err.contains("not checked"), "{err}");
}

#[test]
fn pem_files_and_bad_paths() {
    let dir = std::env::temp_dir().join(format!("wsx-tls-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
    let server = serve(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let url = format!("wss://localhost:{}/", server.port);
    let (code, out, err) = connect(&["--ca", cert.to_str().unwrap(), &url], "pem\n");
    assert_eq!((code, out.as_str()), (0, "pem\n"), "{err}");
    // A key file with no key: exit 2 and the file named.
    let bad = Command::new(WSX)
        .args([
            "serve",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            cert.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("private key"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A one-connection HTTP CONNECT proxy on a thread; returns its port and
/// the CONNECT target it saw.
fn one_shot_connect_proxy() -> (u16, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead, BufReader, Read};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (client, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(client.try_clone().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let target = line.split_whitespace().nth(1).unwrap().to_string();
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).unwrap();
            if h == "\r\n" {
                break;
            }
        }
        tx.send(target.clone()).unwrap();
        let upstream = std::net::TcpStream::connect(&target).unwrap();
        let mut c2 = client.try_clone().unwrap();
        c2.write_all(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
        let mut up2 = upstream.try_clone().unwrap();
        let t = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if up2.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = up2.shutdown(std::net::Shutdown::Write);
        });
        let mut up = upstream;
        let _ = std::io::copy(&mut up, &mut c2);
        let _ = c2.shutdown(std::net::Shutdown::Write);
        let _ = t.join();
    });
    (port, rx)
}

#[test]
fn connect_through_a_proxy_from_the_flag_and_the_environment() {
    let server = serve(&[]);
    let url = format!("ws://localhost:{}/", server.port);
    let (proxy, seen) = one_shot_connect_proxy();
    let (code, out, err) = connect(
        &["--proxy", &format!("http://127.0.0.1:{proxy}"), &url],
        "via flag\n",
    );
    assert_eq!((code, out.as_str()), (0, "via flag\n"), "{err}");
    assert_eq!(seen.recv().unwrap(), format!("localhost:{}", server.port));
    // From HTTP_PROXY, unless NO_PROXY covers the host.
    let (proxy, seen) = one_shot_connect_proxy();
    let run_env = |no_proxy: &str, input: &str| {
        let out = Command::new(WSX)
            .args(["connect", &url])
            .env("HTTP_PROXY", format!("http://127.0.0.1:{proxy}"))
            .env("NO_PROXY", no_proxy)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
                c.wait_with_output()
            })
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(run_env("localhost", "direct\n"), "direct\n");
    assert!(seen.try_recv().is_err(), "NO_PROXY honoured");
    assert_eq!(run_env("example.org", "via env\n"), "via env\n");
    assert_eq!(seen.recv().unwrap(), format!("localhost:{}", server.port));
    let (code, _, err) = connect(&["--proxy", "ftp://x", &url], "");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unsupported proxy scheme"), "{err}");
}

#[test]
fn sighup_reloads_the_certificate_and_keeps_connections() {
    use std::io::{BufRead, BufReader};
    let dir = std::env::temp_dir().join(format!("wsx-tls-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str| {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        std::fs::write(dir.join("cert.pem"), ck.cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), ck.key_pair.serialize_pem()).unwrap();
        let ca = dir.join(name);
        std::fs::write(&ca, ck.cert.pem()).unwrap();
        ca.to_str().unwrap().to_string()
    };
    let old = write("old.pem");
    let server = serve(&[
        "--tls-cert",
        dir.join("cert.pem").to_str().unwrap(),
        "--tls-key",
        dir.join("key.pem").to_str().unwrap(),
    ]);
    let url = format!("wss://localhost:{}/", server.port);
    // A connection that stays open across the reload.
    let mut open = Command::new(WSX)
        .args(["connect", "--ca", &old, &url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = open.stdin.take().unwrap();
    let mut lines = BufReader::new(open.stdout.take().unwrap()).lines();
    writeln!(stdin, "before").unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "before");

    let new = write("new.pem");
    let ok = Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    // New handshakes see the new certificate (give the signal a moment).
    let mut reloaded = false;
    for _ in 0..50 {
        if connect(&["--ca", &new, &url], "x\n").0 == 0 {
            reloaded = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(reloaded, "the new certificate was not served after SIGHUP");
    let (code, _, err) = connect(&["--ca", &old, &url], "x\n");
    assert_ne!(code, 0, "the old certificate is gone: {err}");
    // The open connection still works.
    writeln!(stdin, "after").unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "after");
    drop(stdin);
    let _ = open.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn probe_reports_tls_details_and_failures() {
    let server = serve(&["--tls-self-signed"]);
    let pem = std::env::temp_dir().join(format!("wsx-self-signed-{}.pem", server.port));
    let url = format!("wss://localhost:{}/", server.port);
    let out = Command::new(WSX)
        .args(["probe", "--ca", pem.to_str().unwrap(), &url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("* tls: TLSv1_3")
            && text.contains("key exchange X25519MLKEM768")
            && text.contains("ALPN http/1.1"),
        "{text}"
    );
    assert!(
        text.contains("certificate [0]") && text.contains("SHA-256"),
        "{text}"
    );
    // The certificate in words: its names and validity.
    assert!(
        text.contains("(self-signed)") && text.contains("names localhost"),
        "{text}"
    );
    assert!(text.contains(" day(s) left)"), "{text}");
    let out = Command::new(WSX).args(["probe", &url]).output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("unknown CA"), "{all}");
}

#[test]
fn probe_through_a_proxy() {
    let server = serve(&[]);
    let (proxy, seen) = one_shot_connect_proxy();
    let out = Command::new(WSX)
        .args([
            "probe",
            "--proxy",
            &format!("http://127.0.0.1:{proxy}"),
            &format!("ws://localhost:{}/", server.port),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("* proxy: tunnel to localhost:"), "{text}");
    assert_eq!(seen.recv().unwrap(), format!("localhost:{}", server.port));
    // A proxy that is not there: the proxy step fails, named.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    let out = Command::new(WSX)
        .args([
            "probe",
            "--proxy",
            &format!("http://127.0.0.1:{port}"),
            "ws://localhost:1/",
        ])
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(all.contains("cannot connect to the proxy"), "{all}");
}

/// A full TLS handshake with `wsx serve` offering only `group`; the group the
/// server chose.
fn negotiated_group(
    port: u16,
    pem: &str,
    group: &'static dyn wsx::tls::rustls::crypto::SupportedKxGroup,
) -> wsx::tls::rustls::NamedGroup {
    use std::sync::Arc;
    use wsx::tls::rustls::{self, crypto::aws_lc_rs};
    let provider = rustls::crypto::CryptoProvider {
        kx_groups: vec![group],
        ..aws_lc_rs::default_provider()
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in wsx::tls::load_certs(pem).unwrap() {
        roots.add(cert).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = "localhost".try_into().unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).unwrap();
    }
    conn.negotiated_key_exchange_group().unwrap().name()
}

#[test]
fn wss_takes_the_post_quantum_hybrid_x25519mlkem768_and_still_x25519() {
    use wsx::tls::rustls::{crypto::aws_lc_rs::kx_group, NamedGroup};
    let groups = wsx::tls::key_exchange_groups();
    assert_eq!(
        groups.first().map(String::as_str),
        Some("X25519MLKEM768"),
        "{groups:?}"
    );
    let server = serve(&["--tls-self-signed"]);
    let pem = std::env::temp_dir().join(format!("wsx-self-signed-{}.pem", server.port));
    let pem = pem.to_str().unwrap();
    // What Chromium and Firefox offer first.
    assert_eq!(
        negotiated_group(server.port, pem, kx_group::X25519MLKEM768),
        NamedGroup::X25519MLKEM768
    );
    // A client without it is not refused.
    assert_eq!(
        negotiated_group(server.port, pem, kx_group::X25519),
        NamedGroup::X25519
    );
}
