//! A terminal server in the test's process (the library's `serve` on the
//! server core, as `wsx term` runs it) and a viewer that keeps its own
//! screen (vt100) from what it receives, as a browser's xterm.js does.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use wsx::client::{ClientConfig, ClientRequest};
use wsx::{MaybeTlsStream, Message, WebSocket};
use wsx_term::protocol::ServerMsg;
use wsx_term::{SpawnOptions, TermConfig, Terminals};

pub const TOKEN: &str = "test-token-0123456789abcdef";

pub struct Server {
    pub addr: SocketAddr,
    pub terminals: Arc<Terminals>,
}

pub async fn start(config: TermConfig) -> Server {
    let server = wsx::Server::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    let config = config.api_base(Some(format!("http://{addr}")));
    let terminals = Terminals::new(config, TOKEN.to_string());
    tokio::spawn(wsx_term::serve(server, terminals.clone()));
    Server { addr, terminals }
}

/// A shell with a short, known prompt and no rc files.
pub fn shell() -> SpawnOptions {
    SpawnOptions::new(["bash", "--norc", "--noprofile", "-i"]).env("PS1", "$ ")
}

pub fn command(argv: &[&str]) -> SpawnOptions {
    SpawnOptions::new(argv.iter().copied())
}

pub struct Viewer {
    pub ws: WebSocket<MaybeTlsStream>,
    pub screen: vt100::Parser,
    pub msgs: Vec<ServerMsg>,
    pub closed: Option<(u16, String)>,
    pub output_bytes: u64,
    /// Binary frames received (output and snapshots).
    pub frames: u64,
    /// Scrollback lines of `screen` (from the next snapshot on).
    pub scrollback: usize,
    snapshot_next: bool,
}

pub async fn try_attach(addr: SocketAddr, id: &str, query: &str) -> wsx::Result<Viewer> {
    let url = format!("ws://{addr}/api/ws/sessions/{id}{query}");
    let req = ClientRequest::new(&url).unwrap().protocol("wsx.term.v1");
    let (ws, done) = wsx::client::connect_with(&req, &ClientConfig::default()).await?;
    assert_eq!(done.protocol.as_deref(), Some("wsx.term.v1"));
    Ok(Viewer {
        ws,
        screen: vt100::Parser::new(24.try_into().unwrap(), 80.try_into().unwrap(), 10_000),
        msgs: Vec::new(),
        closed: None,
        output_bytes: 0,
        frames: 0,
        scrollback: 10_000,
        snapshot_next: false,
    })
}

pub async fn attach(addr: SocketAddr, id: &str) -> Viewer {
    try_attach(addr, id, &format!("?token={TOKEN}"))
        .await
        .unwrap()
}

impl Viewer {
    /// Receives one message (false: closed or nothing within `wait`).
    pub async fn step(&mut self, wait: Duration) -> bool {
        if self.closed.is_some() {
            return false;
        }
        let msg = match tokio::time::timeout(wait, self.ws.recv()).await {
            Err(_) => return false,
            Ok(Ok(Some(m))) => m,
            Ok(Ok(None)) | Ok(Err(_)) => {
                let c = self.ws.close_info().cloned();
                self.closed = Some(c.map_or((1006, String::new()), |c| (c.code.0, c.reason)));
                return false;
            }
        };
        match msg {
            Message::Text(t) => {
                let m: ServerMsg = serde_json::from_str(t.as_str()).expect("protocol message");
                if let ServerMsg::Snapshot { cols, rows, reason } = &m {
                    let (rows, cols) = ((*rows).try_into().unwrap(), (*cols).try_into().unwrap());
                    // As the page does: a reset on attach; a lagged
                    // viewer's screen is drawn over, at the session's size.
                    if reason == "attach" {
                        self.screen = vt100::Parser::new(rows, cols, self.scrollback);
                    } else {
                        self.screen.set_size(rows, cols);
                    }
                    self.snapshot_next = true;
                }
                if let ServerMsg::Resize { cols, rows } = &m {
                    self.screen
                        .set_size((*rows).try_into().unwrap(), (*cols).try_into().unwrap());
                }
                self.msgs.push(m);
            }
            Message::Binary(b) => {
                self.frames += 1;
                if !self.snapshot_next {
                    self.output_bytes += b.len() as u64;
                }
                self.snapshot_next = false;
                self.screen.process(&b);
            }
            _ => {}
        }
        true
    }

    /// Receives until `pred` holds (true) or `wait` passes (false).
    pub async fn until(&mut self, wait: Duration, pred: impl Fn(&Viewer) -> bool) -> bool {
        let deadline = Instant::now() + wait;
        while !pred(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || (!self.step(left).await && self.closed.is_some()) {
                return pred(self);
            }
        }
        true
    }

    /// Receives until nothing arrives for `quiet`.
    pub async fn settle(&mut self, quiet: Duration) {
        while self.step(quiet).await {}
    }

    pub fn text(&self) -> String {
        self.screen.screen().contents()
    }

    /// Every line the viewer's terminal holds: its scrollback, then the screen.
    pub fn all_text(&self) -> String {
        let mut screen = self.screen.screen().clone();
        let cols: u16 = screen.size().1.into();
        let mut lines = Vec::new();
        for back in (1..=screen.scrollback_len()).rev() {
            screen.set_scrollback(back);
            lines.extend(screen.rows(0, cols).next());
        }
        screen.set_scrollback(0);
        lines.extend(screen.rows(0, cols));
        lines.join("\n")
    }

    pub async fn type_str(&mut self, s: &str) {
        self.ws
            .send(Message::binary(s.as_bytes().to_vec()))
            .await
            .unwrap();
    }

    pub async fn resize(&mut self, cols: u16, rows: u16) {
        let m = serde_json::json!({"type": "resize", "cols": cols, "rows": rows});
        self.ws.send(Message::text(m.to_string())).await.unwrap();
    }

    pub fn errors(&self) -> Vec<String> {
        self.msgs
            .iter()
            .filter_map(|m| match m {
                ServerMsg::Error { message } => Some(message.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn exit(&self) -> Option<(Option<u32>, Option<String>)> {
        self.msgs.iter().find_map(|m| match m {
            ServerMsg::Exit { code, signal } => Some((*code, signal.clone())),
            _ => None,
        })
    }
}

/// This process's resident set (KiB), from /proc.
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A raw HTTP/1.1 request; the status and the body.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_string());
    (status, body)
}

pub fn bearer() -> (&'static str, String) {
    ("Authorization", format!("Bearer {TOKEN}"))
}
