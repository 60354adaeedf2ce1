//! `wsx proxy`: a WebSocket-aware relay between clients and one upstream
//! server that shows every frame both ways (decoded: opcode, FIN/RSV bits,
//! length, masking, close codes, text or hex, compressed messages
//! inflated), records them as JSON lines, and injects faults on purpose
//! (delay, throttle, drops, closes, a dead path, a corrupt frame, a
//! stripped `Upgrade` header).
//!
//! Frame for frame: the client's handshake goes to the upstream with its
//! headers (hop-by-hop ones aside), so the two ends negotiate subprotocol
//! and compression with each other; every frame is passed on as it came
//! (same fragmentation, control frames, RSV bits), re-masked with a fresh
//! key toward the server (RFC 6455 §5.3). Memory per connection is bounded
//! (`max_frame` plus a read buffer each way; a frame is written before the
//! next is read, so a slow side slows its sender down).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use wsx_proxy::{Output, ProxyConfig, Upstream};
//! let upstream = Upstream::parse("ws://127.0.0.1:9001", None)?;
//! let server = wsx::Server::bind("127.0.0.1:9002").await?;
//! let output = Output::lines(false);
//! wsx_proxy::serve(server, ProxyConfig::new(upstream), output).await?;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod ca;
pub mod event;
pub mod faults;
mod messages;
mod relay;
pub mod replay;

use event::{ConnEvent, FrameEvent};
use faults::Faults;
use std::io::Write;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// What the proxy reports.
#[derive(Debug, Clone)]
pub enum Event {
    /// A frame.
    Frame(FrameEvent),
    /// A connection opened, was refused by the upstream, or ended.
    Conn(ConnEvent),
}

/// The server every client is relayed to.
#[derive(Clone)]
pub struct Upstream {
    /// As given.
    pub url: String,
    /// `host:port` for the `Host` header.
    pub authority: String,
    host: String,
    port: u16,
    /// A path prefix from the URL (`/api` in `ws://h/api`), before the
    /// client's own path.
    prefix: String,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream").field("url", &self.url).finish()
    }
}

impl Upstream {
    /// `ws://host:port[/prefix]` or `wss://...` (with `tls`, the client
    /// TLS settings; by default the system's and Mozilla's roots).
    ///
    /// # Errors
    /// Not a ws:// or wss:// URL, or TLS settings that do not build.
    pub fn parse(url: &str, tls: Option<Arc<rustls::ClientConfig>>) -> Result<Upstream, String> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| format!("--to {url}: not a URL ({e})"))?;
        let secure = match uri.scheme_str() {
            Some("ws") => false,
            Some("wss") => true,
            _ => return Err(format!("--to {url}: use ws://HOST:PORT or wss://HOST:PORT")),
        };
        let host = uri
            .host()
            .ok_or_else(|| format!("--to {url}: no host"))?
            .trim_matches(|c| c == '[' || c == ']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
        let tls = if secure {
            Some(match tls {
                Some(t) => t,
                None => wsx::tls::TlsClientOptions::default()
                    .build()
                    .map_err(|e| e.to_string())?,
            })
        } else {
            None
        };
        Ok(Upstream {
            url: url.to_string(),
            authority: uri
                .authority()
                .map_or_else(|| format!("{host}:{port}"), |a| a.as_str().to_string()),
            host,
            port,
            prefix: uri.path().trim_end_matches('/').to_string(),
            tls,
        })
    }

    fn path_for(&self, client_path: &str) -> String {
        format!("{}{client_path}", self.prefix)
    }

    async fn connect(&self) -> Result<Box<dyn relay::Io>, String> {
        let tcp = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| "no answer within 10 s".to_string())?
        .map_err(|e| e.to_string())?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => Ok(Box::new(tcp)),
            Some(config) => {
                let tls = wsx::tls::handshake(config.clone(), &self.host, tcp)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(Box::new(tls))
            }
        }
    }
}

/// How a proxy relays.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProxyConfig {
    /// Where every client goes.
    pub upstream: Upstream,
    /// Faults to inject.
    pub faults: Faults,
    /// The largest frame payload passed on (default 64 MiB); a larger one
    /// ends the connection.
    pub max_frame: u64,
    /// Frame events carry the whole payload (recordings; off with
    /// `--no-payload`).
    pub record_payloads: bool,
    /// Frames are reported at all (set by [`serve`] from the output).
    pub report_frames: bool,
    /// Relay whole messages (each side its own WebSocket) instead of
    /// frames as they are.
    pub by_message: bool,
    /// Connections at once (default 1,024); more wait to be accepted.
    pub max_connections: usize,
    /// Terminate TLS from clients (wss://) with this configuration,
    /// usually [`ca::LocalCa::server_config`].
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl ProxyConfig {
    /// To `upstream`, without faults.
    pub fn new(upstream: Upstream) -> ProxyConfig {
        ProxyConfig {
            upstream,
            faults: Faults::default(),
            max_frame: 64 << 20,
            record_payloads: false,
            report_frames: true,
            by_message: false,
            max_connections: 1024,
            tls: None,
        }
    }

    /// Sets `faults`.
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }
}

/// Where events go: lines or JSON on stdout, and a recording.
pub struct Output {
    out: std::io::BufWriter<std::io::Stdout>,
    stdout: Option<bool>,
    json: bool,
    record: Option<(std::io::BufWriter<std::fs::File>, bool)>,
}

impl Output {
    /// Lines on stdout (`colour`: ANSI colours, for a terminal).
    pub fn lines(colour: bool) -> Output {
        Output {
            out: std::io::BufWriter::with_capacity(64 << 10, std::io::stdout()),
            stdout: Some(colour),
            json: false,
            record: None,
        }
    }

    /// One JSON object per event on stdout.
    pub fn json() -> Output {
        Output {
            out: std::io::BufWriter::with_capacity(64 << 10, std::io::stdout()),
            stdout: Some(false),
            json: true,
            record: None,
        }
    }

    /// Nothing on stdout (e.g. to measure the relay, or only record).
    pub fn quiet() -> Output {
        Output {
            out: std::io::BufWriter::with_capacity(64 << 10, std::io::stdout()),
            stdout: None,
            json: false,
            record: None,
        }
    }

    /// Also writes every event to `file` as JSON lines (`payloads`: with
    /// each frame's whole payload, base64).
    pub fn record(mut self, file: std::fs::File, payloads: bool) -> Output {
        self.record = Some((std::io::BufWriter::new(file), payloads));
        self
    }

    fn flush(&mut self) {
        let _ = self.out.flush();
        if let Some((file, _)) = &mut self.record {
            let _ = file.flush();
        }
    }

    fn write(&mut self, e: &Event) {
        if let Some(colour) = self.stdout {
            let line = match (e, self.json) {
                (Event::Frame(f), false) => f.line(colour),
                (Event::Conn(c), false) => c.line(colour),
                (Event::Frame(f), true) => serde_json::to_string(&FrameEvent {
                    payload: None,
                    ..f.clone()
                })
                .unwrap_or_default(),
                (Event::Conn(c), true) => serde_json::to_string(c).unwrap_or_default(),
            };
            write_line(&mut self.out, line);
        }
        if let Some((file, payloads)) = &mut self.record {
            let json = match e {
                Event::Frame(f) => {
                    let mut f = f.clone();
                    if !*payloads {
                        f.payload = None;
                    }
                    if f.ts.is_none() {
                        f.ts = Some(
                            std::time::SystemTime::now()
                                .duration_since(std::time::UNIX_EPOCH)
                                .map_or(0.0, |d| d.as_secs_f64()),
                        );
                    }
                    serde_json::to_string(&f)
                }
                Event::Conn(c) => serde_json::to_string(c),
            };
            if let Ok(j) = json {
                write_line(file, j);
            }
        }
    }
}

/// Writes `line` and its newline with one `write_all`: the buffer then
/// reaches the file only at line ends, so a reader following the file
/// (`tail -f | jq`) never sees half an event (`writeln!` writes in
/// pieces, and a full buffer went out mid-line).
fn write_line(to: &mut impl Write, mut line: String) {
    line.push('\n');
    let _ = to.write_all(line.as_bytes());
}

/// Relays every connection `server` accepts to `config.upstream`, reporting
/// to `output`, until the task is dropped (it does not return otherwise).
///
/// # Errors
/// None today: a failed accept is logged and retried.
pub async fn serve(
    server: wsx::Server,
    mut config: ProxyConfig,
    mut output: Output,
) -> std::io::Result<()> {
    if output.record.as_ref().is_some_and(|(_, p)| *p) {
        config.record_payloads = true;
    }
    config.report_frames = output.stdout.is_some() || output.record.is_some();
    let config = Arc::new(config);
    let (tx, mut rx) = mpsc::channel::<Event>(1024);
    // Events are written in order on a thread of their own: a slow
    // terminal slows the relay down (bounded), never reorders or drops.
    std::thread::spawn(move || {
        // Everything queued is written, then flushed once: one write per
        // burst of frames, not per line.
        while let Some(e) = rx.blocking_recv() {
            output.write(&e);
            while let Ok(e) = rx.try_recv() {
                output.write(&e);
            }
            output.flush();
        }
    });
    let slots = Arc::new(tokio::sync::Semaphore::new(config.max_connections.max(1)));
    let mut next = 0u64;
    loop {
        let permit = slots.clone().acquire_owned().await.expect("never closed");
        let (tcp, _peer) = match server.accept_tcp().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        next += 1;
        let (config, tx) = (config.clone(), tx.clone());
        tokio::spawn(async move {
            relay::handle(next, tcp, config, tx).await;
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::write_line;
    use std::io::{BufWriter, Write};

    /// Records each write that reaches it, as a file would see them.
    #[derive(Debug, Default)]
    struct Writes(Vec<Vec<u8>>);

    impl Write for Writes {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn events_reach_the_file_only_as_whole_lines() {
        // A small buffer, lines shorter and longer than it.
        let mut out = BufWriter::with_capacity(64, Writes::default());
        let mut expected = Vec::new();
        for n in [10usize, 50, 30, 100, 5, 63, 64, 200, 1] {
            let line = format!("{{\"n\":\"{}\"}}", "x".repeat(n));
            expected.extend_from_slice(line.as_bytes());
            expected.push(b'\n');
            write_line(&mut out, line);
        }
        let writes = out.into_inner().unwrap().0;
        assert!(writes.len() > 1, "the buffer filled and was written out");
        for w in &writes {
            assert_eq!(
                w.last(),
                Some(&b'\n'),
                "a write ended mid-line: {:?}",
                String::from_utf8_lossy(w)
            );
        }
        assert_eq!(writes.concat(), expected);
    }
}
