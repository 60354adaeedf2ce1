//! Nodes for the tests: a private redis-server (scripts/redis.sh), wsx
//! servers running `serve_member` on a `Fanout` each, and clients that
//! speak `wsx.pubsub.v1` and check what they get.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use tokio::time::Instant;
use wsx::client::{ClientConfig, ClientRequest};
use wsx::{MaybeTlsStream, Message, WebSocket};
use wsx_fanout::{Fanout, FanoutConfig, JoinOptions, ServerMsg, SUBPROTOCOL};

pub const WAIT: Duration = Duration::from_secs(10);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A redis-server of our own on a free loopback port, stopped on drop.
pub struct Redis {
    pub port: u16,
    pub dir: PathBuf,
    extra: Vec<String>,
}

fn redis_sh(cmd: &str) -> bool {
    let script = format!("source '{}/scripts/redis.sh'; {cmd}", root().display());
    Command::new("bash")
        .arg("-c")
        .arg(script)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Redis {
    /// `extra`: redis-server options (e.g. persistence).
    pub fn start(extra: &[&str]) -> Redis {
        assert!(
            Command::new("redis-server").arg("--version").output().is_ok(),
            "redis-server is not installed: scripts/test installs it (Debian's redis-server), or: source scripts/redis.sh; redis_install"
        );
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("wsx-fanout-redis-{port}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let r = Redis {
            port,
            dir,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        r.up();
        r
    }

    fn up(&self) {
        let extra = self.extra.join(" ");
        assert!(
            redis_sh(&format!(
                "redis_start {} '{}' {extra}",
                self.port,
                self.dir.display()
            )),
            "redis_start failed"
        );
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops it (SIGTERM) and starts it again on the same port and
    /// directory: empty without persistence.
    pub fn restart(&self, down_for: Duration) {
        assert!(redis_sh(&format!("redis_stop '{}'", self.dir.display())));
        std::thread::sleep(down_for);
        self.up();
    }

    /// SIGKILL, `down_for`, start again (same directory: with
    /// `--appendonly yes` the data comes back).
    pub fn kill9(&self, down_for: Duration) {
        let pid = std::fs::read_to_string(self.dir.join("redis.pid")).unwrap();
        let pid = pid.trim();
        assert!(Command::new("kill")
            .args(["-9", pid])
            .status()
            .unwrap()
            .success());
        std::thread::sleep(down_for);
        self.up();
    }

    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        redis_sh(&format!("redis_stop '{}'", self.dir.display()));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A wsx server whose connections are members of the room named by their path.
pub struct Node {
    pub addr: SocketAddr,
    pub fanout: Fanout,
    handle: wsx::server::ServerHandle,
}

impl Node {
    pub async fn start(fanout: Fanout) -> Node {
        let server = wsx::Server::bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr().unwrap();
        let handle = server.handle();
        let mut config = wsx::ServerConfig::default();
        config.subprotocols.push(SUBPROTOCOL.to_string());
        let f = fanout.clone();
        tokio::spawn(server.with_config(config).serve_with(
            |_| Ok(()),
            move |ws, accepted| {
                let f = f.clone();
                async move {
                    let path = accepted.uri.path().to_string();
                    let since =
                        wsx_fanout::resume_from_query(accepted.uri.query().unwrap_or("")).unwrap();
                    let opts = JoinOptions::default()
                        .envelope(ws.protocol() == Some(SUBPROTOCOL))
                        .since(since)
                        .name(accepted.peer.to_string());
                    let _ = wsx_fanout::serve_member(&f, ws, &path, opts).await;
                }
            },
        ));
        Node {
            addr,
            fanout,
            handle,
        }
    }

    pub async fn redis(redis: &Redis, config: FanoutConfig) -> Node {
        Node::start(Fanout::redis(&redis.url(), config).await.unwrap()).await
    }

    /// Stops accepting and closes its connections.
    pub fn stop(&self) {
        self.handle.shutdown();
    }
}

/// A `wsx.pubsub.v1` client: what it was told and the messages it got.
pub struct Client {
    pub ws: WebSocket<MaybeTlsStream>,
    pub subscribed: Option<ServerMsg>,
    /// `(epoch, offset, text)` in arrival order.
    pub got: Vec<(String, u64, String)>,
    /// When each of `got` arrived.
    pub arrived: Vec<Instant>,
    pub acks: Vec<ServerMsg>,
    pub errors: Vec<ServerMsg>,
    pub closed: Option<(u16, String)>,
}

impl Client {
    pub async fn join(node: &Node, room: &str, query: &str) -> Client {
        Client::join_addr(node.addr, room, query).await
    }

    /// Resumes from its own last message.
    pub fn resume_query(&self) -> String {
        let (epoch, offset, _) = self.got.last().expect("a message to resume from");
        format!("?since={offset}&epoch={epoch}")
    }

    pub async fn step(&mut self, wait: Duration) -> bool {
        if self.closed.is_some() {
            return false;
        }
        let msg = match tokio::time::timeout(wait, self.ws.recv()).await {
            Err(_) => return false,
            Ok(Ok(Some(m))) => m,
            Ok(_) => {
                let c = self.ws.close_info().cloned();
                self.closed = Some(c.map_or((1006, String::new()), |c| (c.code.0, c.reason)));
                return false;
            }
        };
        if let Message::Text(t) = msg {
            let m: ServerMsg = serde_json::from_str(t.as_str()).expect("a wsx.pubsub.v1 message");
            match &m {
                ServerMsg::Subscribed { .. } => self.subscribed = Some(m),
                ServerMsg::Message {
                    epoch,
                    offset,
                    text,
                    ..
                } => {
                    self.got
                        .push((epoch.clone(), *offset, text.clone().unwrap_or_default()));
                    self.arrived.push(Instant::now());
                }
                ServerMsg::Ack { .. } => self.acks.push(m),
                ServerMsg::Error { .. } => self.errors.push(m),
            }
        }
        true
    }

    pub async fn until(&mut self, wait: Duration, pred: impl Fn(&Client) -> bool) -> bool {
        let deadline = Instant::now() + wait;
        while !pred(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || (!self.step(left).await && self.closed.is_some()) {
                return pred(self);
            }
        }
        true
    }

    /// Waits for `n` messages in all.
    pub async fn wait_for(&mut self, n: usize) {
        let ok = self.until(WAIT, |c| c.got.len() >= n).await;
        assert!(
            ok,
            "got {} of {n} messages (closed: {:?})",
            self.got.len(),
            self.closed
        );
    }

    pub async fn publish(&mut self, text: &str, key: Option<&str>) {
        let mut req = serde_json::json!({"type": "publish", "text": text});
        if let Some(k) = key {
            req["key"] = k.into();
        }
        self.ws.send(Message::text(req.to_string())).await.unwrap();
    }

    /// Offsets received, checked contiguous and of one epoch.
    pub fn offsets(&self) -> Vec<u64> {
        self.got.iter().map(|(_, o, _)| *o).collect()
    }

    pub fn recovery(&self) -> (String, u64, Option<String>) {
        match self.subscribed.as_ref().unwrap() {
            ServerMsg::Subscribed {
                recovery,
                missed,
                reason,
                ..
            } => (recovery.clone(), *missed, reason.clone()),
            _ => unreachable!(),
        }
    }
}

/// Asserts `offsets` is `from..=to` exactly.
pub fn assert_contiguous(offsets: &[u64], from: u64, to: u64) {
    let want: Vec<u64> = (from..=to).collect();
    if offsets != want.as_slice() {
        let dup = offsets.windows(2).find(|w| w[1] <= w[0]);
        let gap = offsets.windows(2).find(|w| w[1] > w[0] + 1);
        panic!(
            "expected offsets {from}..={to} in order ({} messages), got {} (first duplicate/reorder {dup:?}, first gap {gap:?})",
            want.len(),
            offsets.len()
        );
    }
}

pub async fn publish_n(f: &Fanout, room: &str, from: usize, n: usize) {
    for i in from..from + n {
        f.publish(
            room,
            wsx_fanout::Payload {
                text: true,
                data: format!("m{i}").into(),
            },
            None,
        )
        .await
        .unwrap();
    }
}

/// A node in a process of its own (examples/node.rs), to be killed.
pub struct ProcessNode {
    pub child: std::process::Child,
    pub addr: SocketAddr,
}

impl ProcessNode {
    pub fn start(redis: &Redis, presence_ttl_ms: u64) -> ProcessNode {
        use std::io::BufRead;
        // Integration tests run from target/debug/deps; cargo test builds
        // the examples into target/debug/examples.
        let exe = std::env::current_exe().unwrap();
        let bin = exe
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("examples/node");
        if !bin.exists() {
            // `cargo test --test redis` builds no examples: build it.
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let ok = Command::new(cargo)
                .args(["build", "-q", "-p", "wsx-fanout", "--example", "node"])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok && bin.exists(), "cannot build {}", bin.display());
        }
        let mut child = Command::new(bin)
            .args(["--redis", &redis.url(), "--listen", "127.0.0.1:0"])
            .args(["--presence-ttl-ms", &presence_ttl_ms.to_string()])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("the node said {line:?}"))
            .parse()
            .unwrap();
        ProcessNode { child, addr }
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ProcessNode {
    fn drop(&mut self) {
        self.kill9();
    }
}

impl Client {
    pub async fn join_addr(addr: SocketAddr, room: &str, query: &str) -> Client {
        let url = format!("ws://{addr}{room}{query}");
        let req = ClientRequest::new(&url).unwrap().protocol(SUBPROTOCOL);
        let (ws, _) = wsx::client::connect_with(&req, &ClientConfig::default())
            .await
            .unwrap();
        let mut c = Client {
            ws,
            subscribed: None,
            got: Vec::new(),
            arrived: Vec::new(),
            acks: Vec::new(),
            errors: Vec::new(),
            closed: None,
        };
        assert!(
            c.until(WAIT, |c| c.subscribed.is_some()).await,
            "no subscribed message"
        );
        c
    }
}
