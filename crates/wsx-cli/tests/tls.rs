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
