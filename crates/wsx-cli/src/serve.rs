//! `wsx serve`: echo, broadcast rooms, a program per connection (or one for
//! all), static files, a test page, metrics, Origin checks, graceful shutdown.

use bytes::Bytes;
use http::StatusCode;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use wsx::MaybeTlsStream;
use wsx::{CloseCode, CloseFrame, Message, PreparedMessage, WebSocket};

/// Examples shown by `wsx serve --help`.
pub const EXAMPLES: &str = "Examples:
  wsx serve                                   # echo on ws://127.0.0.1:9001, any path; a test page at /
  wsx serve --listen 0.0.0.0:8080
  wsx serve --broadcast                       # a chat room per path
  wsx serve --exec 'sh -c \"while read l; do echo \\\"got $l\\\"; done\"'   # a program per connection
  wsx serve --exec-shared 'tail -f /var/log/syslog'                 # one program, output to all
  wsx serve --static ./public --origin https://example.com
  curl http://127.0.0.1:9001/metrics          # Prometheus metrics
  wsx serve --console                         # type /close 4001 bye, /drop, /ping, or text for every client
  wsx serve --send-frame-size 1024            # echoes longer than 1 KiB leave fragmented

SIGINT/SIGTERM: stop accepting, close every connection with 1001, wait up to --drain seconds.";

/// Options of `wsx serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9001", value_name = "HOST:PORT")]
    pub listen: SocketAddr,
    /// Largest accepted message, in bytes.
    #[arg(long, default_value_t = crate::default_max_message())]
    pub max_message: usize,
    /// Worker threads (default: one per CPU core; 1 runs a single-threaded runtime).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Every message from a client goes to all clients on the same path (a
    /// room per path), the sender included.
    #[arg(long, conflicts_with_all = ["exec", "exec_shared"])]
    pub broadcast: bool,
    /// Messages a slow client may have queued in broadcast modes before it
    /// is disconnected (1008), so that it cannot stall or bloat the others.
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub queue: usize,
    /// Run CMD (with `sh -c`) per connection: its stdout lines become text
    /// messages, messages become its stdin lines.
    #[arg(long, value_name = "CMD", conflicts_with = "exec_shared")]
    pub exec: Option<String>,
    /// Run ONE CMD for all clients: its stdout lines go to every client,
    /// every client's messages become its stdin lines.
    #[arg(long, value_name = "CMD")]
    pub exec_shared: Option<String>,
    /// Serve files from DIR for plain HTTP GETs (index.html for directories).
    #[arg(long, value_name = "DIR")]
    pub r#static: Option<PathBuf>,
    /// Also allow this Origin (repeatable): `https://example.com` or
    /// `https://*.example.com`. Same-origin browsers (Origin host equal to
    /// Host) and non-browser clients (no Origin) are always accepted.
    #[arg(long, value_name = "PATTERN")]
    pub origin: Vec<String>,
    /// Accept any Origin (disables cross-site WebSocket hijacking protection).
    #[arg(long)]
    pub allow_any_origin: bool,
    /// Refuse connections past this many (503 with Retry-After).
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// Keepalive: ping every SECS seconds, drop peers that do not answer
    /// within 10 s (0: off). Keeps load balancers from closing idle
    /// connections and finds clients that vanished without a FIN.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub ping_interval: f64,
    /// Serve wss:// with this certificate chain (PEM; with --tls-key). SIGHUP
    /// reloads both files (renewals) without dropping connections.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        conflicts_with = "tls_self_signed"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve wss:// with a self-signed certificate generated at start (for
    /// development): its SHA-256 fingerprint is printed and the certificate
    /// written to a file to give clients (`wsx connect --ca FILE`).
    #[arg(long)]
    pub tls_self_signed: bool,
    /// Do not accept permessage-deflate (compression is negotiated whenever
    /// the client offers it otherwise, as browsers do).
    #[arg(long)]
    pub no_deflate: bool,
    /// Compression level for permessage-deflate: 0 (none) to 9 (smallest,
    /// slowest). 6 is zlib's default; 1 costs far less CPU per message.
    #[arg(long, value_name = "0-9", default_value_t = 6, value_parser = clap::value_parser!(u32).range(0..=9))]
    pub deflate_level: u32,
    /// Close connections (1001) that sent and received no message for SECS
    /// seconds (0: never; pings do not count).
    #[arg(long, value_name = "SECS", default_value_t = 0.0)]
    pub idle_timeout: f64,
    /// On SIGINT/SIGTERM, wait up to SECS for clients to answer the 1001 close.
    #[arg(long, default_value_t = 5.0, value_name = "SECS")]
    pub drain: f64,
    /// Split sent messages longer than BYTES into frames of at most BYTES
    /// (for intermediaries that limit frame size, or to test how clients
    /// handle fragmented messages). Below 16, clients that guard against
    /// fragment floods (wsx does) may refuse long messages with 1009.
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    pub send_frame_size: Option<u64>,
    /// Read commands from stdin for every open connection (echo mode):
    /// `/close [CODE [REASON]]`, `/drop` (no close frame: clients see 1006),
    /// `/ping [DATA]`, `/send TEXT` (or any line not starting with `/`),
    /// `/list`, `/help`. To test how clients handle server-side closes.
    #[arg(long, conflicts_with_all = ["broadcast", "exec", "exec_shared"])]
    pub console: bool,
}

/// A `--console` command, sent to every echo connection.
#[derive(Debug, Clone, PartialEq)]
enum ConsoleCmd {
    Close(CloseFrame),
    Drop,
    Ping(Bytes),
    Send(String),
}

const CONSOLE_HELP: &str = "console commands (applied to every open connection):
  /close [CODE [REASON]]   close handshake (default 1000)
  /drop                    drop the TCP connections without a close frame (clients see 1006)
  /ping [DATA]             a ping
  /send TEXT, or TEXT      a text message
  /list                    how many connections are open
  /help                    this list";

/// Parses one console line: `Ok(None)` for commands answered by the console
/// itself (`/list`, `/help`, blank lines).
fn parse_console(line: &str) -> Result<Option<ConsoleCmd>, String> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() {
        return Ok(None);
    }
    let Some(cmd) = line.strip_prefix('/') else {
        return Ok(Some(ConsoleCmd::Send(line.to_string())));
    };
    let (word, rest) = cmd.split_once(' ').unwrap_or((cmd, ""));
    let rest = rest.trim_start();
    match word {
        "close" => {
            // Stricter than the REPL: a word where the code goes is a typo,
            // not a reason.
            let first = rest.split_whitespace().next().unwrap_or("");
            if !first.is_empty() && first.parse::<u16>().is_err() {
                return Err(format!(
                    "/close: {first:?} is not a close code (a number such as 1000 or 4001)"
                ));
            }
            crate::parse_close(rest)
                .map(|f| Some(ConsoleCmd::Close(f)))
                .map_err(|e| format!("/close: {e}"))
        }
        "drop" => Ok(Some(ConsoleCmd::Drop)),
        "ping" if rest.len() > 125 => Err(format!(
            "/ping: {} bytes; a ping carries at most 125",
            rest.len()
        )),
        "ping" => Ok(Some(ConsoleCmd::Ping(Bytes::copy_from_slice(
            rest.as_bytes(),
        )))),
        "send" => Ok(Some(ConsoleCmd::Send(rest.to_string()))),
        "list" | "help" => Ok(None),
        _ => Err(format!("unknown command /{word} (/help lists them)")),
    }
}

/// Reads console commands from stdin until it ends.
async fn console_loop(state: Arc<State>, tx: tokio::sync::broadcast::Sender<ConsoleCmd>) {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        let line = match lines.next_line().await {
            Ok(Some(l)) => l,
            Ok(None) => break,
            Err(e) => {
                eprintln!("console: cannot read stdin: {e}");
                break;
            }
        };
        match parse_console(&line) {
            Ok(Some(cmd)) => {
                let what = match &cmd {
                    ConsoleCmd::Close(f) => format!("close {} {:?}", f.code.0, f.reason),
                    ConsoleCmd::Drop => "drop".into(),
                    ConsoleCmd::Ping(p) => format!("ping ({} bytes)", p.len()),
                    ConsoleCmd::Send(t) => format!("text ({} bytes)", t.len()),
                };
                let n = tx.send(cmd).unwrap_or(0);
                eprintln!("console: {what} sent to {n} connection(s)");
            }
            Ok(None) if line.trim() == "/help" => eprintln!("{CONSOLE_HELP}"),
            Ok(None) if line.trim().starts_with("/list") => eprintln!(
                "console: {} connection(s) open",
                state.metrics.open.load(Relaxed)
            ),
            Ok(None) => {}
            Err(e) => eprintln!("console: {e}"),
        }
    }
    tracing::debug!("console: stdin closed");
}

/// The next console command; never resolves without a console.
async fn next_console(rx: &mut Option<tokio::sync::broadcast::Receiver<ConsoleCmd>>) -> ConsoleCmd {
    use tokio::sync::broadcast::error::RecvError;
    if let Some(r) = rx {
        loop {
            match r.recv().await {
                Ok(c) => return c,
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => break,
            }
        }
    }
    *rx = None;
    std::future::pending().await
}

#[derive(Default)]
struct Metrics {
    open: AtomicUsize,
    total: AtomicU64,
    rejected: AtomicU64,
    msgs_in: AtomicU64,
    msgs_out: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    dropped_slow: AtomicU64,
    pongs: AtomicU64,
    close_codes: Mutex<HashMap<u16, u64>>,
}

impl Metrics {
    fn render(&self) -> String {
        let mut s = String::new();
        let table: [(&str, &str, &str, u64); 9] = [
            (
                "wsx_connections_open",
                "Open WebSocket connections.",
                "gauge",
                self.open.load(Relaxed) as u64,
            ),
            (
                "wsx_connections_total",
                "WebSocket connections accepted.",
                "counter",
                self.total.load(Relaxed),
            ),
            (
                "wsx_connections_rejected_total",
                "Upgrades refused (origin, limits, bad handshakes).",
                "counter",
                self.rejected.load(Relaxed),
            ),
            (
                "wsx_messages_received_total",
                "Text and binary messages received.",
                "counter",
                self.msgs_in.load(Relaxed),
            ),
            (
                "wsx_messages_sent_total",
                "Text and binary messages sent.",
                "counter",
                self.msgs_out.load(Relaxed),
            ),
            (
                "wsx_bytes_received_total",
                "Payload bytes received.",
                "counter",
                self.bytes_in.load(Relaxed),
            ),
            (
                "wsx_bytes_sent_total",
                "Payload bytes sent.",
                "counter",
                self.bytes_out.load(Relaxed),
            ),
            (
                "wsx_slow_consumers_dropped_total",
                "Clients disconnected for not keeping up (broadcast).",
                "counter",
                self.dropped_slow.load(Relaxed),
            ),
            (
                "wsx_pongs_received_total",
                "Pongs received (answers to keepalive and console pings).",
                "counter",
                self.pongs.load(Relaxed),
            ),
        ];
        for (name, help, kind, v) in table {
            s.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"
            ));
        }
        s.push_str("# HELP wsx_close_codes_total Connections ended, by close code (1006: no close frame).\n# TYPE wsx_close_codes_total counter\n");
        let codes = self.close_codes.lock().unwrap_or_else(|e| e.into_inner());
        let mut sorted: Vec<_> = codes.iter().collect();
        sorted.sort();
        for (code, n) in sorted {
            s.push_str(&format!("wsx_close_codes_total{{code=\"{code}\"}} {n}\n"));
        }
        s
    }

    /// Pongs are few (one per ping): counted at once, not batched.
    fn pong(&self) {
        self.pongs.fetch_add(1, Relaxed);
    }

    fn closed(&self, code: u16) {
        *self
            .close_codes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(code)
            .or_default() += 1;
    }
}

/// Per-connection counts, added to the shared metrics in batches so the
/// hot path touches no shared cache line per message.
#[derive(Default)]
struct Counts {
    msgs_in: u64,
    msgs_out: u64,
    bytes_in: u64,
    bytes_out: u64,
}

impl Counts {
    fn flush(&mut self, m: &Metrics) {
        m.msgs_in.fetch_add(self.msgs_in, Relaxed);
        m.msgs_out.fetch_add(self.msgs_out, Relaxed);
        m.bytes_in.fetch_add(self.bytes_in, Relaxed);
        m.bytes_out.fetch_add(self.bytes_out, Relaxed);
        *self = Counts::default();
    }
    fn maybe_flush(&mut self, m: &Metrics) {
        if self.msgs_in + self.msgs_out >= 256 {
            self.flush(m);
        }
    }
}

/// What a client's writer task is told to do.
#[derive(Clone)]
enum Out {
    Msg(PreparedMessage),
    Close(CloseFrame),
}

type Room = HashMap<u64, mpsc::Sender<Out>>;

/// Drains a client's queue to its socket, flushing when the queue runs dry.
/// A dropped queue means the client was too slow (1008); shutdown sends 1001.
async fn writer_loop(
    mut writer: wsx::WsWriter<MaybeTlsStream>,
    mut rx: mpsc::Receiver<Out>,
    mut shutdown: watch::Receiver<bool>,
    sent: Arc<AtomicU64>,
) {
    loop {
        let first = tokio::select! {
            m = rx.recv() => m,
            _ = shutdown.changed(), if !*shutdown.borrow() => Some(Out::Close(
                CloseFrame::new(CloseCode::GOING_AWAY, "server shutting down"),
            )),
        };
        let Some(mut next) = first else {
            let _ = writer
                .close(Some(CloseFrame::new(
                    CloseCode::POLICY_VIOLATION,
                    "too slow: the outgoing queue overflowed",
                )))
                .await;
            return;
        };
        loop {
            match next {
                Out::Msg(m) => {
                    if writer.feed_prepared(&m).await.is_err() {
                        return;
                    }
                    sent.fetch_add(1, Relaxed);
                }
                Out::Close(frame) => {
                    let _ = writer.close(Some(frame)).await;
                    return;
                }
            }
            match rx.try_recv() {
                Ok(m) => next = m,
                Err(_) => break,
            }
        }
        if writer.flush().await.is_err() {
            return;
        }
    }
}

struct State {
    /// Set for wss://.
    tls: Option<wsx::tls::tokio_rustls::TlsAcceptor>,
    args: ServeArgs,
    config: wsx::ServerConfig,
    metrics: Metrics,
    rooms: Mutex<HashMap<String, Room>>,
    next_id: AtomicU64,
    shutdown: watch::Receiver<bool>,
    shared_exec: tokio::sync::Mutex<Option<SharedExec>>,
    /// Connection tasks still running (for the shutdown drain).
    tasks: AtomicUsize,
    /// `--console` commands.
    console: Option<tokio::sync::broadcast::Sender<ConsoleCmd>>,
}

/// One program for all clients (`--exec-shared`).
struct SharedExec {
    stdin: mpsc::Sender<Bytes>,
    clients: Arc<Mutex<Room>>,
}

/// Runs the server; returns the exit code.
pub async fn run(args: ServeArgs) -> u8 {
    let ping = Some(args.ping_interval)
        .filter(|s| *s > 0.0)
        .map(Duration::from_secs_f64);
    let idle = Some(args.idle_timeout)
        .filter(|s| *s > 0.0)
        .map(Duration::from_secs_f64);
    let send_frame = args.send_frame_size.map(|n| n as usize);
    let protocol = match crate::protocol_config(args.max_message, ping, idle, send_frame) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wsx: {e}");
            return 2;
        }
    };
    if let Some(dir) = &args.r#static {
        if !dir.is_dir() {
            eprintln!("wsx: --static {}: not a directory", dir.display());
            return 2;
        }
    }
    let mut origin = if args.allow_any_origin {
        tracing::warn!("--allow-any-origin: any web site can open WebSockets to this server with its visitors' cookies (cross-site WebSocket hijacking protection is off)");
        wsx::OriginPolicy::allow_any()
    } else {
        wsx::OriginPolicy::same_origin()
    };
    for p in &args.origin {
        origin = match origin.allow(p) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("wsx: --origin: {e}");
                return 2;
            }
        };
    }
    let listen = args.listen;
    let server = match wsx::Server::bind(listen).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("wsx: cannot listen on {listen}: {e} (is another server using the port? pick another with --listen)");
            return 2;
        }
    };
    let config = wsx::ServerConfig {
        protocol,
        origin,
        deflate: (!args.no_deflate).then(|| wsx::wsx_proto::deflate::DeflateConfig {
            level: args.deflate_level,
            ..Default::default()
        }),
        ..Default::default()
    };
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let tls = match tls_acceptor(&args, listen) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("wsx: {e}");
            return 2;
        }
    };
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    let http = if tls.is_some() { "https" } else { "http" };
    let state = Arc::new(State {
        tls,
        config,
        metrics: Metrics::default(),
        rooms: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(1),
        shutdown: shutdown_rx,
        shared_exec: tokio::sync::Mutex::new(None),
        tasks: AtomicUsize::new(0),
        console: args.console.then(|| tokio::sync::broadcast::channel(64).0),
        args,
    });
    if let Some(tx) = &state.console {
        tokio::spawn(console_loop(state.clone(), tx.clone()));
    }
    let mode = if state.args.broadcast {
        "broadcast"
    } else if state.args.exec.is_some() {
        "exec"
    } else if state.args.exec_shared.is_some() {
        "exec-shared"
    } else {
        "echo"
    };
    tracing::info!(
        "{mode} server listening on {scheme}://{listen} (test page: {http}://{listen}/, metrics: {http}://{listen}/metrics)"
    );
    let signal = shutdown_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            _ = &mut signal => break,
            accepted = server.accept_tcp() => {
                let (tcp, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // E.g. out of file descriptors: back off briefly, keep serving.
                        tracing::warn!("accept failed: {e} (raise the fd limit with `ulimit -n`)");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let state = state.clone();
                tokio::spawn(async move {
                    state.tasks.fetch_add(1, Relaxed);
                    handle(state.clone(), tcp, peer).await;
                    state.tasks.fetch_sub(1, Relaxed);
                });
            }
        }
    }
    let open = state.metrics.open.load(Relaxed);
    tracing::info!("shutting down: closing {open} connection(s) with 1001");
    let _ = shutdown_tx.send(true);
    let drain = Duration::from_secs_f64(state.args.drain.max(0.0));
    // Connection tasks count themselves; wait for them to finish closing.
    if tokio::time::timeout(drain + Duration::from_secs(1), async {
        while state.tasks.load(Relaxed) > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .is_err()
    {
        tracing::warn!("drain deadline passed; dropping the remaining connections");
    }
    0
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn handle(state: Arc<State>, tcp: TcpStream, peer: SocketAddr) {
    let stream = match &state.tls {
        None => MaybeTlsStream::Plain(tcp),
        Some(acceptor) => {
            // The TLS handshake counts against the handshake deadline too.
            match tokio::time::timeout(state.config.handshake_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => MaybeTlsStream::TlsServer(Box::new(tls)),
                Ok(Err(e)) => {
                    tracing::debug!(%peer, "TLS handshake failed: {e}");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            }
        }
    };
    let incoming = match wsx::read_request(stream, &state.config).await {
        Ok(i) => i,
        Err(e) => {
            tracing::debug!(%peer, "bad request: {e}");
            return;
        }
    };
    if !incoming.is_upgrade() {
        return http_response(&state, incoming).await;
    }
    if let Some(max) = state.args.max_connections {
        if state.metrics.open.load(Relaxed) >= max {
            state.metrics.rejected.fetch_add(1, Relaxed);
            tracing::warn!(%peer, "refused: at --max-connections {max}");
            let _ = incoming
                .respond(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &[("Retry-After", "5"), ("Content-Type", "text/plain")],
                    format!("server is at its connection limit ({max}); retry later\n").as_bytes(),
                )
                .await;
            return;
        }
    }
    let path = incoming.request().uri().path().to_string();
    // Only --exec needs the request's details after the handshake; keeping
    // them for every connection would cost an idle connection ~1 KiB.
    let exec_env = state.args.exec.as_ref().map(|_| {
        let req = incoming.request();
        let query = req.uri().query().unwrap_or("");
        cgi_env(&state, peer, &path, query, req.headers())
    });
    let ws = match incoming.accept(|_| Ok(Default::default())).await {
        Ok(ws) => ws,
        Err(e) => {
            state.metrics.rejected.fetch_add(1, Relaxed);
            match e.server_handshake() {
                Some(he) if he.status() == StatusCode::FORBIDDEN => {
                    tracing::warn!(%peer, "refused: {}", crate::diagnose::one_line(&e))
                }
                _ => tracing::debug!(%peer, "handshake failed: {e}"),
            }
            return;
        }
    };
    state.metrics.open.fetch_add(1, Relaxed);
    state.metrics.total.fetch_add(1, Relaxed);
    let extensions = ws.deflate().map_or("none", |d| d.response.as_str());
    tracing::info!(%peer, path, extensions, "open");
    let end = if state.args.broadcast {
        broadcast(&state, ws, &path).await
    } else if let (Some(cmd), Some(env)) = (&state.args.exec, exec_env) {
        exec_one(&state, ws, cmd, env).await
    } else if state.args.exec_shared.is_some() {
        exec_shared(&state, ws).await
    } else {
        echo(&state, ws).await
    };
    state.metrics.open.fetch_sub(1, Relaxed);
    state.metrics.closed(end.code);
    tracing::info!(%peer, path, code = end.code, reason = %end.reason, "close");
}

/// How a connection ended, for the log and the metrics.
struct End {
    code: u16,
    reason: String,
}

fn end_of<S>(ws: &WebSocket<S>, result: Result<(), wsx::Error>) -> End
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    match result {
        Ok(()) => match ws.close_info() {
            Some(c) => End {
                code: c.code.0,
                reason: c.reason.clone(),
            },
            None => End {
                code: 1006,
                reason: "connection dropped".into(),
            },
        },
        Err(e) => End {
            code: e.close_code().map_or(1006, |c| c.0),
            reason: e.to_string(),
        },
    }
}

async fn echo(state: &State, mut ws: WebSocket<MaybeTlsStream>) -> End {
    let mut shutdown = state.shutdown.clone();
    let mut console = state.console.as_ref().map(|c| c.subscribe());
    let mut counts = Counts::default();
    let result = loop {
        tokio::select! {
            biased;
            cmd = next_console(&mut console) => {
                let r = match cmd {
                    ConsoleCmd::Close(f) => ws.close(Some(f)).await,
                    ConsoleCmd::Drop => {
                        counts.flush(&state.metrics);
                        // Dropping the socket sends a FIN without a close frame.
                        return End { code: 1006, reason: "dropped by the console (/drop)".into() };
                    }
                    ConsoleCmd::Ping(p) => ws.send(Message::Ping(p)).await,
                    ConsoleCmd::Send(t) => ws.send(Message::text(t)).await,
                };
                // A close already under way refuses further sends: not an error here.
                if let Err(e) = r {
                    tracing::debug!("console command not sent: {e}");
                }
            }
            r = ws.recv() => match r {
                Ok(Some(msg @ (Message::Text(_) | Message::Binary(_)))) => {
                    counts.msgs_in += 1;
                    counts.msgs_out += 1;
                    counts.bytes_in += msg.len() as u64;
                    counts.bytes_out += msg.len() as u64;
                    counts.maybe_flush(&state.metrics);
                    // Queue without flushing: recv() flushes before it waits,
                    // so pipelined echoes leave together.
                    if let Err(e) = ws.feed(msg).await {
                        break Err(e);
                    }
                }
                Ok(Some(Message::Pong(_))) => state.metrics.pong(),
                Ok(Some(_)) => {}
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            },
            _ = shutdown.changed(), if !*shutdown.borrow() => {
                let _ = ws.close(Some(CloseFrame::new(CloseCode::GOING_AWAY, "server shutting down"))).await;
            }
        }
    };
    counts.flush(&state.metrics);
    end_of(&ws, result)
}

/// `--broadcast`: a room per path; each message is encoded once and queued
/// to every member, each with a bounded queue.
async fn broadcast(state: &State, ws: WebSocket<MaybeTlsStream>, path: &str) -> End {
    let id = state.next_id.fetch_add(1, Relaxed);
    let (tx, rx) = mpsc::channel::<Out>(state.args.queue.max(1));
    state
        .rooms
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(path.to_string())
        .or_default()
        .insert(id, tx);
    let (mut reader, writer) = ws.split();
    let mut shutdown = state.shutdown.clone();
    let mut counts = Counts::default();
    let sent = Arc::new(AtomicU64::new(0));
    let writer_handle = tokio::spawn(writer_loop(
        writer,
        rx,
        state.shutdown.clone(),
        sent.clone(),
    ));
    let result = loop {
        tokio::select! {
            r = reader.recv() => match r {
                Ok(Some(msg @ (Message::Text(_) | Message::Binary(_)))) => {
                    counts.msgs_in += 1;
                    counts.bytes_in += msg.len() as u64;
                    counts.maybe_flush(&state.metrics);
                    let Ok(prepared) = PreparedMessage::new(msg) else { continue };
                    let mut slow = Vec::new();
                    {
                        let rooms = state.rooms.lock().unwrap_or_else(|e| e.into_inner());
                        if let Some(room) = rooms.get(path) {
                            for (member, q) in room {
                                if q.try_send(Out::Msg(prepared.clone())).is_err() {
                                    slow.push(*member);
                                }
                            }
                        }
                    }
                    if !slow.is_empty() {
                        let mut rooms = state.rooms.lock().unwrap_or_else(|e| e.into_inner());
                        if let Some(room) = rooms.get_mut(path) {
                            for member in slow {
                                if room.remove(&member).is_some() {
                                    state.metrics.dropped_slow.fetch_add(1, Relaxed);
                                    tracing::warn!(path, member, "disconnecting a slow client (1008): its queue of {} messages is full", state.args.queue);
                                }
                            }
                        }
                    }
                }
                Ok(Some(Message::Pong(_))) => state.metrics.pong(),
                Ok(Some(_)) => {}
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            },
            // The writer task closes with 1001; keep reading until the reply.
            _ = shutdown.changed(), if !*shutdown.borrow() => leave_room(state, path, id),
        }
    };
    leave_room(state, path, id);
    counts.msgs_out = sent.load(Relaxed);
    counts.flush(&state.metrics);
    let _ = writer_handle.await;
    reader_end(&reader, result)
}

fn reader_end(reader: &wsx::WsReader<MaybeTlsStream>, result: Result<(), wsx::Error>) -> End {
    match result {
        Ok(()) => {
            let c = reader.close_info();
            End {
                code: c.as_ref().map_or(1006, |c| c.code.0),
                reason: c.map(|c| c.reason).unwrap_or_default(),
            }
        }
        Err(e) => End {
            code: e.close_code().map_or(1006, |c| c.0),
            reason: e.to_string(),
        },
    }
}

fn leave_room(state: &State, path: &str, id: u64) {
    let mut rooms = state.rooms.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(room) = rooms.get_mut(path) {
        room.remove(&id);
        if room.is_empty() {
            rooms.remove(path);
        }
    }
}

/// CGI-style variables describing the connection, as websocketd sets them.
fn cgi_env(
    state: &State,
    peer: SocketAddr,
    path: &str,
    query: &str,
    headers: &http::HeaderMap,
) -> Vec<(String, String)> {
    let mut env = vec![
        ("GATEWAY_INTERFACE".into(), "websocketd-CGI/0.1".into()),
        (
            "SERVER_SOFTWARE".into(),
            format!("wsx/{}", env!("CARGO_PKG_VERSION")),
        ),
        ("SERVER_PROTOCOL".into(), "HTTP/1.1".into()),
        ("SERVER_NAME".into(), state.args.listen.ip().to_string()),
        ("SERVER_PORT".into(), state.args.listen.port().to_string()),
        ("REMOTE_ADDR".into(), peer.ip().to_string()),
        ("REMOTE_HOST".into(), peer.ip().to_string()),
        ("REMOTE_PORT".into(), peer.port().to_string()),
        ("REQUEST_METHOD".into(), "GET".into()),
        ("SCRIPT_NAME".into(), path.to_string()),
        ("PATH_INFO".into(), path.to_string()),
        ("QUERY_STRING".into(), query.to_string()),
        (
            "REQUEST_URI".into(),
            if query.is_empty() {
                path.to_string()
            } else {
                format!("{path}?{query}")
            },
        ),
    ];
    for (name, value) in headers {
        let key = format!(
            "HTTP_{}",
            name.as_str().to_ascii_uppercase().replace('-', "_")
        );
        env.push((key, String::from_utf8_lossy(value.as_bytes()).into_owned()));
    }
    env
}

fn spawn_child(cmd: &str, env: &[(String, String)]) -> std::io::Result<tokio::process::Child> {
    tokio::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        // The child dies with its connection, whatever ends it.
        .kill_on_drop(true)
        .spawn()
}

/// The close frame for a child's exit: 1000 on success, 1011 otherwise.
fn exit_close(status: Option<std::process::ExitStatus>) -> CloseFrame {
    match status {
        Some(s) if s.success() => CloseFrame::new(CloseCode::NORMAL, "program exited"),
        Some(s) => CloseFrame::new(CloseCode::INTERNAL_ERROR, format!("program failed: {s}")),
        None => CloseFrame::new(CloseCode::INTERNAL_ERROR, "program could not be waited for"),
    }
}

/// `--exec`: one program per connection.
async fn exec_one(
    state: &State,
    mut ws: WebSocket<MaybeTlsStream>,
    cmd: &str,
    env: Vec<(String, String)>,
) -> End {
    let mut child = match spawn_child(cmd, &env) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("cannot run {cmd:?}: {e}");
            let _ = ws
                .close(Some(CloseFrame::new(
                    CloseCode::INTERNAL_ERROR,
                    "cannot start the program",
                )))
                .await;
            while let Ok(Some(_)) = ws.recv().await {}
            return end_of(&ws, Ok(()));
        }
    };
    let mut stdin = child.stdin.take();
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let mut shutdown = state.shutdown.clone();
    let mut counts = Counts::default();
    let mut stdout_open = true;
    let result = loop {
        tokio::select! {
            r = ws.recv() => match r {
                Ok(Some(Message::Text(t))) => {
                    counts.msgs_in += 1;
                    counts.bytes_in += t.len() as u64;
                    if let Some(w) = stdin.as_mut() {
                        let mut line = t.as_bytes().to_vec();
                        line.push(b'\n');
                        if w.write_all(&line).await.is_err() || w.flush().await.is_err() {
                            stdin = None; // the program stopped reading
                        }
                    }
                }
                Ok(Some(Message::Binary(b))) => {
                    counts.msgs_in += 1;
                    counts.bytes_in += b.len() as u64;
                    if let Some(w) = stdin.as_mut() {
                        let mut line = b.to_vec();
                        line.push(b'\n');
                        if w.write_all(&line).await.is_err() || w.flush().await.is_err() {
                            stdin = None;
                        }
                    }
                }
                Ok(Some(Message::Pong(_))) => state.metrics.pong(),
                Ok(Some(_)) => {}
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            },
            line = lines.next_line(), if stdout_open => match line {
                Ok(Some(l)) => {
                    counts.msgs_out += 1;
                    counts.bytes_out += l.len() as u64;
                    if let Err(e) = ws.send(Message::text(l)).await {
                        break Err(e);
                    }
                }
                Ok(None) | Err(_) => {
                    // The program closed its output: wait for it, then close.
                    stdout_open = false;
                    let status = child.wait().await.ok();
                    let _ = ws.close(Some(exit_close(status))).await;
                }
            },
            _ = shutdown.changed(), if !*shutdown.borrow() => {
                let _ = ws.close(Some(CloseFrame::new(CloseCode::GOING_AWAY, "server shutting down"))).await;
            }
        }
    };
    counts.flush(&state.metrics);
    // Connection over: kill the program if it still runs, and reap it.
    drop(stdin);
    let _ = child.start_kill();
    let _ = child.wait().await;
    end_of(&ws, result)
}

/// The shared program of `--exec-shared`, started on first use (and again
/// after it exits).
async fn shared_program(state: &State) -> Option<(mpsc::Sender<Bytes>, Arc<Mutex<Room>>)> {
    let mut slot = state.shared_exec.lock().await;
    if let Some(s) = slot.as_ref() {
        if !s.stdin.is_closed() {
            return Some((s.stdin.clone(), s.clients.clone()));
        }
    }
    let cmd = state.args.exec_shared.clone()?;
    let env = vec![
        (
            "SERVER_SOFTWARE".to_string(),
            format!("wsx/{}", env!("CARGO_PKG_VERSION")),
        ),
        (
            "SERVER_PORT".to_string(),
            state.args.listen.port().to_string(),
        ),
    ];
    let mut child = match spawn_child(&cmd, &env) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("cannot run {cmd:?}: {e}");
            return None;
        }
    };
    let clients: Arc<Mutex<Room>> = Arc::default();
    let (stdin_tx, mut stdin_rx) = mpsc::channel::<Bytes>(1024);
    let mut stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    let out_clients = clients.clone();
    let queue = state.args.queue;
    tokio::spawn(async move {
        while let Some(line) = stdin_rx.recv().await {
            if stdin.write_all(&line).await.is_err() || stdin.flush().await.is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            let Ok(prepared) = PreparedMessage::new(Message::text(l)) else {
                continue;
            };
            let mut clients = out_clients.lock().unwrap_or_else(|e| e.into_inner());
            clients.retain(|id, q| {
                let ok = q.try_send(Out::Msg(prepared.clone())).is_ok();
                if !ok {
                    tracing::warn!(
                        id,
                        "disconnecting a slow client (1008): its queue of {queue} messages is full"
                    );
                }
                ok
            });
        }
        let status = child.wait().await.ok();
        tracing::info!(?status, "shared program exited; closing its clients");
        let close = exit_close(status);
        let mut clients = out_clients.lock().unwrap_or_else(|e| e.into_inner());
        for (_, q) in clients.drain() {
            let _ = q.try_send(Out::Close(close.clone()));
        }
    });
    *slot = Some(SharedExec {
        stdin: stdin_tx.clone(),
        clients: clients.clone(),
    });
    Some((stdin_tx, clients))
}

/// `--exec-shared`: every client talks to the one program.
async fn exec_shared(state: &State, ws: WebSocket<MaybeTlsStream>) -> End {
    let Some((stdin, clients)) = shared_program(state).await else {
        let mut ws = ws;
        let _ = ws
            .close(Some(CloseFrame::new(
                CloseCode::INTERNAL_ERROR,
                "cannot start the program",
            )))
            .await;
        while let Ok(Some(_)) = ws.recv().await {}
        return end_of(&ws, Ok(()));
    };
    let id = state.next_id.fetch_add(1, Relaxed);
    let (tx, rx) = mpsc::channel::<Out>(state.args.queue.max(1));
    clients
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, tx);
    let (mut reader, writer) = ws.split();
    let sent = Arc::new(AtomicU64::new(0));
    let writer_handle = tokio::spawn(writer_loop(
        writer,
        rx,
        state.shutdown.clone(),
        sent.clone(),
    ));
    let mut counts = Counts::default();
    let result = loop {
        match reader.recv().await {
            Ok(Some(msg @ (Message::Text(_) | Message::Binary(_)))) => {
                counts.msgs_in += 1;
                counts.bytes_in += msg.len() as u64;
                let mut line = match msg {
                    Message::Text(t) => t.into_bytes().to_vec(),
                    Message::Binary(b) => b.to_vec(),
                    _ => continue,
                };
                line.push(b'\n');
                let _ = stdin.send(Bytes::from(line)).await;
            }
            Ok(Some(Message::Pong(_))) => state.metrics.pong(),
            Ok(Some(_)) => {}
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    clients
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&id);
    counts.msgs_out = sent.load(Relaxed);
    counts.flush(&state.metrics);
    let _ = writer_handle.await;
    reader_end(&reader, result)
}

/// Plain HTTP: the test page, metrics, static files, or 426.
async fn http_response(state: &State, incoming: wsx::Incoming<MaybeTlsStream>) {
    let req = incoming.request();
    let path = req.uri().path().to_string();
    if req.method() != http::Method::GET && req.method() != http::Method::HEAD {
        let _ = incoming
            .respond(
                StatusCode::METHOD_NOT_ALLOWED,
                &[("Allow", "GET, HEAD"), ("Content-Type", "text/plain")],
                b"method not allowed\n",
            )
            .await;
        return;
    }
    if wsx::wsx_proto::handshake::is_stripped_upgrade(req) {
        // Not a page request: a WebSocket client's handshake that a proxy
        // passed on without its Upgrade header. Say so to both ends.
        tracing::warn!(
            path,
            "a WebSocket handshake arrived without its Upgrade header: a reverse proxy in front did not forward it (answered 426 with the nginx lines to add)"
        );
        let _ = incoming
            .respond(
                StatusCode::UPGRADE_REQUIRED,
                &[
                    ("Upgrade", "websocket"),
                    ("Connection", "Upgrade"),
                    ("Content-Type", "text/plain"),
                ],
                wsx::wsx_proto::handshake::STRIPPED_UPGRADE_BODY.as_bytes(),
            )
            .await;
        return;
    }
    if path == "/metrics" {
        let body = state.metrics.render();
        let _ = incoming
            .respond(
                StatusCode::OK,
                &[("Content-Type", "text/plain; version=0.0.4")],
                body.as_bytes(),
            )
            .await;
        return;
    }
    if let Some(dir) = &state.args.r#static {
        if let Some((file, body)) = static_file(dir, &path).await {
            let _ = incoming
                .respond(
                    StatusCode::OK,
                    &[("Content-Type", content_type(&file))],
                    &body,
                )
                .await;
            return;
        }
    }
    if path == "/" || path == "/index.html" {
        let _ = incoming
            .respond(
                StatusCode::OK,
                &[("Content-Type", "text/html; charset=utf-8")],
                PAGE.as_bytes(),
            )
            .await;
        return;
    }
    let body = format!(
        "{path} is a WebSocket endpoint: connect with a WebSocket client, e.g. `wsx connect ws://HOST{path}`\n"
    );
    let status = if state.args.r#static.is_some() {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::UPGRADE_REQUIRED
    };
    let _ = incoming
        .respond(
            status,
            &[
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Content-Type", "text/plain"),
            ],
            body.as_bytes(),
        )
        .await;
}

/// A file under `dir` for a URL path, refusing anything that leaves `dir`.
async fn static_file(dir: &Path, url_path: &str) -> Option<(PathBuf, Vec<u8>)> {
    let mut p = dir.to_path_buf();
    for part in Path::new(url_path.trim_start_matches('/')).components() {
        match part {
            Component::Normal(s) => p.push(s),
            Component::CurDir => {}
            _ => return None,
        }
    }
    if p.is_dir() {
        p.push("index.html");
    }
    let body = tokio::fs::read(&p).await.ok()?;
    Some((p, body))
}

fn content_type(p: &Path) -> &'static str {
    match p.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

/// The test page at `/`: connects back to the server and shows the exchange.
const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>wsx</title>
<style>
 body{font:15px system-ui,sans-serif;max-width:46em;margin:2em auto;padding:0 1em}
 #log{border:1px solid #ccc;border-radius:6px;height:20em;overflow:auto;padding:.5em;font-family:ui-monospace,monospace;white-space:pre-wrap}
 .out{color:#05a}.in{color:#070}.sys{color:#888}
 form{display:flex;gap:.5em;margin-top:.5em} input{flex:1;padding:.4em}
</style></head><body>
<h1>wsx</h1>
<p>This page talks to the server over WebSocket at <code id="url"></code>.</p>
<div id="log"></div>
<form id="f"><input id="msg" autocomplete="off" placeholder="type a message, press Enter" autofocus><button>Send</button></form>
<script>
const log = document.getElementById('log');
function line(cls, text){const d=document.createElement('div');d.className=cls;d.textContent=text;log.appendChild(d);log.scrollTop=log.scrollHeight;}
const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/';
document.getElementById('url').textContent = url;
let ws;
function connect(){
  ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  ws.onopen = () => line('sys', 'connected' + (ws.extensions ? ' (' + ws.extensions + ')' : ''));
  ws.onmessage = e => line('in', '< ' + (typeof e.data === 'string' ? e.data : '[binary ' + e.data.byteLength + ' bytes]'));
  ws.onclose = e => { line('sys', 'closed: ' + e.code + (e.reason ? ' ' + e.reason : '') + '; reconnecting in 2 s'); setTimeout(connect, 2000); };
}
connect();
document.getElementById('f').onsubmit = ev => {
  ev.preventDefault();
  const m = document.getElementById('msg');
  if (ws.readyState === 1 && m.value) { ws.send(m.value); line('out', '> ' + m.value); m.value = ''; }
};
</script></body></html>
"#;

/// The TLS acceptor for `--tls-cert/--tls-key` or `--tls-self-signed`.
fn tls_acceptor(
    args: &ServeArgs,
    listen: SocketAddr,
) -> Result<Option<wsx::tls::tokio_rustls::TlsAcceptor>, String> {
    let config = if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let store = wsx::tls::CertStore::new();
        let load = {
            let (cert, key) = (cert.clone(), key.clone());
            move |store: &wsx::tls::CertStore| -> Result<(), wsx::Error> {
                store.set_default(wsx::tls::load_certs(&cert)?, wsx::tls::load_key(&key)?)
            }
        };
        load(&store).map_err(|e| crate::diagnose::chain(&e))?;
        // SIGHUP: load the files again (renewed certificates); open
        // connections keep theirs, and a bad file keeps the old one.
        #[cfg(unix)]
        {
            let store = store.clone();
            let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                .map_err(|e| format!("cannot listen for SIGHUP: {e}"))?;
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    match load(&store) {
                        Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                        Err(e) => tracing::error!(
                            "SIGHUP: TLS certificate not reloaded, keeping the old one: {}",
                            crate::diagnose::chain(&e)
                        ),
                    }
                }
            });
        }
        store
            .server_config(None)
            .map_err(|e| crate::diagnose::chain(&e))?
    } else if args.tls_self_signed {
        let ip = listen.ip().to_string();
        let mut names = vec!["localhost", ip.as_str()];
        names.dedup();
        let dev = wsx::tls::self_signed(&names).map_err(|e| crate::diagnose::chain(&e))?;
        let path = std::env::temp_dir().join(format!("wsx-self-signed-{}.pem", listen.port()));
        std::fs::write(&path, &dev.cert_pem)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        eprintln!(
            "wsx: self-signed certificate for {} (development only)\nwsx:   SHA-256 fingerprint {}\nwsx:   certificate: {} (clients: wsx connect --ca {} wss://localhost:{}/)",
            names.join(", "),
            dev.fingerprint,
            path.display(),
            path.display(),
            listen.port()
        );
        dev.config
    } else {
        return Ok(None);
    };
    Ok(Some(wsx::tls::tokio_rustls::TlsAcceptor::from(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_lines() {
        let close = |c: u16, r: &str| Ok(Some(ConsoleCmd::Close(CloseFrame::new(CloseCode(c), r))));
        assert_eq!(parse_console("/close"), close(1000, ""));
        assert_eq!(parse_console("/close 4001"), close(4001, ""));
        assert_eq!(
            parse_console("/close 4001 bye for now\r"),
            close(4001, "bye for now")
        );
        assert_eq!(parse_console("/drop"), Ok(Some(ConsoleCmd::Drop)));
        assert_eq!(
            parse_console("/ping abc"),
            Ok(Some(ConsoleCmd::Ping(Bytes::from_static(b"abc"))))
        );
        assert_eq!(
            parse_console("/send /not a command"),
            Ok(Some(ConsoleCmd::Send("/not a command".into())))
        );
        assert_eq!(
            parse_console("plain text"),
            Ok(Some(ConsoleCmd::Send("plain text".into())))
        );
        assert_eq!(parse_console("   "), Ok(None));
        assert_eq!(parse_console("/list"), Ok(None));
        for (bad, says) in [
            ("/close 1006", "may not be sent"),
            ("/close abc", "not a close code"),
            ("/close 70000", "not a close code"),
            ("/frobnicate", "unknown command /frobnicate"),
        ] {
            let e = parse_console(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let long = format!("/close 4000 {}", "x".repeat(124));
        assert!(parse_console(&long).unwrap_err().contains("123"));
        assert!(parse_console(&format!("/ping {}", "x".repeat(126)))
            .unwrap_err()
            .contains("125"));
    }
}
