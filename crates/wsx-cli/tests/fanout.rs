//! `wsx serve --broadcast --redis`: two server processes on one
//! redis-server (Debian's, started by scripts/redis.sh on a free port),
//! a bare client on one and a `wsx.pubsub.v1` client on the other.

use std::process::Command;
use std::time::Duration;
use wsx::client::{ClientConfig, ClientRequest};
use wsx::Message;

mod common;

use common::{free_port, serve};

struct Redis {
    port: u16,
    dir: std::path::PathBuf,
}

fn redis_sh(cmd: &str) -> bool {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    Command::new("bash")
        .arg("-c")
        .arg(format!("source '{root}/scripts/redis.sh'; {cmd}"))
        .status()
        .is_ok_and(|s| s.success())
}

impl Redis {
    fn start() -> Redis {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("wsx-cli-redis-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(
            redis_sh(&format!("redis_start {port} '{}'", dir.display())),
            "redis_start failed (scripts/test installs redis-server)"
        );
        Redis { port, dir }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        redis_sh(&format!("redis_stop '{}'", self.dir.display()));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

async fn next(ws: &mut wsx::WebSocket<wsx::MaybeTlsStream>) -> Message {
    tokio::time::timeout(Duration::from_secs(10), ws.recv())
        .await
        .expect("timed out")
        .unwrap()
        .expect("a message")
}

#[tokio::test]
async fn two_serve_processes_share_rooms_presence_and_positions_on_redis() {
    let redis = Redis::start();
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let one = serve(&["--broadcast", "--redis", &url]);
    let two = serve(&["--broadcast", "--redis", &url]);
    let mut bare = wsx::connect(&format!("ws://127.0.0.1:{}/chat", one.port))
        .await
        .unwrap();
    let req = ClientRequest::new(&format!("ws://127.0.0.1:{}/chat", two.port))
        .unwrap()
        .protocol("wsx.pubsub.v1");
    let (mut env, done) = wsx::client::connect_with(&req, &ClientConfig::default())
        .await
        .unwrap();
    assert_eq!(done.protocol.as_deref(), Some("wsx.pubsub.v1"));
    let Message::Text(hello) = next(&mut env).await else {
        panic!()
    };
    let hello: serde_json::Value = serde_json::from_str(hello.as_str()).unwrap();
    assert_eq!(
        (hello["type"].as_str(), hello["recovery"].as_str()),
        (Some("subscribed"), Some("fresh"))
    );

    // A bare message on node one: bare on one, an envelope on two.
    bare.send(Message::text("hello")).await.unwrap();
    assert_eq!(next(&mut bare).await, Message::text("hello"));
    let Message::Text(m) = next(&mut env).await else {
        panic!()
    };
    let m: serde_json::Value = serde_json::from_str(m.as_str()).unwrap();
    assert_eq!(
        (m["type"].as_str(), m["text"].as_str(), m["offset"].as_u64()),
        (Some("message"), Some("hello"), Some(1))
    );
    let epoch = m["epoch"].as_str().unwrap().to_string();

    // Presence from either node counts both.
    let body = http_get(one.port, "/presence?room=/chat");
    let json: serde_json::Value =
        serde_json::from_str(body.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(json["count"], 2, "{body}");
    let metrics = http_get(two.port, "/metrics");
    assert!(metrics.contains("wsx_fanout_backend_up 1"), "{metrics}");

    // The enveloped client leaves, misses two, and resumes on node one.
    drop(env);
    bare.send(Message::text("two")).await.unwrap();
    bare.send(Message::text("three")).await.unwrap();
    next(&mut bare).await;
    next(&mut bare).await;
    let req = ClientRequest::new(&format!(
        "ws://127.0.0.1:{}/chat?since=1&epoch={epoch}",
        one.port
    ))
    .unwrap()
    .protocol("wsx.pubsub.v1");
    let (mut back, _) = wsx::client::connect_with(&req, &ClientConfig::default())
        .await
        .unwrap();
    let Message::Text(hello) = next(&mut back).await else {
        panic!()
    };
    assert!(
        hello
            .as_str()
            .contains(r#""recovery":"recovered","missed":2"#),
        "{hello}"
    );
    for (offset, text) in [(2, "two"), (3, "three")] {
        let Message::Text(m) = next(&mut back).await else {
            panic!()
        };
        let m: serde_json::Value = serde_json::from_str(m.as_str()).unwrap();
        assert_eq!(
            (m["offset"].as_u64(), m["text"].as_str()),
            (Some(offset), Some(text))
        );
    }
}

#[test]
fn redis_that_does_not_answer_is_a_clear_start_up_error() {
    let port = free_port();
    let out = Command::new(env!("CARGO_BIN_EXE_wsx"))
        .args(["serve", "--broadcast", "--listen", "127.0.0.1:0"])
        .args(["--redis", &format!("redis://127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is unavailable") && err.contains("redis-cli"),
        "{err}"
    );
}
