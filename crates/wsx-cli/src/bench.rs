//! `wsx bench`: a WebSocket load generator that checks every echo.
//!
//! It speaks the protocol through `wsx-proto` (handshake, frame headers) but
//! keeps its own lean loop: each connection pre-encodes its masked frame once,
//! writes a whole batch of frames per syscall, and checks echoes in place.
//!
//! With `--deflate` it offers permessage-deflate with
//! `client_no_context_takeover`, so every compressed frame it sends stands
//! alone: each distinct payload is compressed (and masked) once, through a
//! `wsx-proto` [`Connection`] with the negotiated parameters, and the same
//! bytes are resent. The server compresses its echoes however it negotiated;
//! they go through a `Connection` per connection (inflated, UTF-8 checked)
//! and are compared with the payload.
//!
//! `--payload json` cycles through several distinct payloads, at least
//! 64 KiB of them (twice deflate's largest window), so a server that keeps
//! its compression context cannot just point back at an identical earlier
//! message: it sees similar, not repeated, messages, like real traffic.

use bytes::{Buf, BytesMut};
use hdrhistogram::Histogram;
use std::collections::VecDeque;
use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::time::Instant;
use wsx::wsx_proto::deflate::{DeflateConfig, DeflateParams};
use wsx::wsx_proto::frame::{FrameHeader, OpCode};
use wsx::wsx_proto::handshake::{ClientHandshake, ClientRequest};
use wsx::wsx_proto::mask::apply_mask;
use wsx::wsx_proto::{Config, Connection, Event, Message};
use wsx::MaybeTlsStream;

/// What the messages contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Payload {
    /// Pseudo-random bytes (letters with `--text`): incompressible.
    Random,
    /// JSON-like text (an array of records with repeated keys and varying
    /// numbers and strings; deterministic), sent as text messages.
    Json,
}

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Send messages and time their echoes.
    Echo,
    /// Open, handshake and close connections as fast as possible.
    Handshake,
    /// Open connections and hold them idle (for memory per connection).
    Idle,
}

/// Examples shown by `wsx bench --help`.
pub const EXAMPLES: &str = "Every echo is checked (length and content); mismatches count as errors and make the exit code 1.

Examples:
  wsx bench ws://127.0.0.1:9001/ -c 100 -s 20 --depth 16 -d 10
  wsx bench ws://127.0.0.1:9001/ -c 10 -s 65536 --depth 4 --json
  wsx bench ws://127.0.0.1:9001/ -c 50 --rate 20000 -d 30      # open loop, latency from schedule
  wsx bench ws://127.0.0.1:9001/ -c 8 --mode handshake -d 5    # connections per second
  wsx bench ws://127.0.0.1:9001/ -c 10000 --mode idle -d 10    # hold idle connections
  wsx bench ws://127.0.0.1:9001/ -c 50 -s 16384 --payload json --deflate   # compression ratio
  wsx bench wss://127.0.0.1:9443/ --ca cert.pem -c 10 -s 1024   # over TLS (--insecure: no checks)";

/// Options of `wsx bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// The ws:// or wss:// URL of an echo server.
    pub url: String,
    /// Headers, subprotocols, credentials, wss:// trust and client
    /// certificate (--proxy is refused: measure the server, not a proxy).
    #[command(flatten)]
    pub request: crate::request_args::RequestArgs,
    /// Concurrent connections.
    #[arg(short = 'c', long, default_value_t = 10)]
    pub connections: usize,
    /// Message payload size in bytes.
    #[arg(short = 's', long, default_value_t = 20)]
    pub size: usize,
    /// Messages in flight per connection (closed loop).
    #[arg(long, default_value_t = 1)]
    pub depth: usize,
    /// Open loop: total messages per second across all connections, sent on
    /// schedule whether or not echoes came back; latency counts from the
    /// scheduled time (corrects coordinated omission).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Measured duration in seconds (after warm-up).
    #[arg(short = 'd', long, default_value_t = 10.0)]
    pub duration: f64,
    /// Stop after this many echoed messages (handshakes in `--mode
    /// handshake`) in total, warm-up included, instead of after a duration.
    #[arg(short = 'n', long)]
    pub messages: Option<u64>,
    /// Warm-up seconds before measuring.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Send text messages (default binary).
    #[arg(long)]
    pub text: bool,
    /// Message content; `json` implies text messages.
    #[arg(long, value_enum, default_value_t = Payload::Random)]
    pub payload: Payload,
    /// Offer permessage-deflate (RFC 7692) with client_no_context_takeover,
    /// so each connection compresses its payload once and resends it; fails
    /// if the server does not accept it. Reports bytes on the wire per message.
    #[arg(long)]
    pub deflate: bool,
    /// What to measure.
    #[arg(long, value_enum, default_value_t = Mode::Echo)]
    pub mode: Mode,
    /// Load-generator threads (each runs a single-threaded runtime).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Spread connections over this many source addresses 127.0.0.1..N
    /// (loopback targets only; default: one per 20,000 connections).
    #[arg(long)]
    pub source_ips: Option<u8>,
    /// The target is a raw TCP echo, not WebSocket: no handshake, and the
    /// exact frame bytes must come back (the floor for comparisons).
    #[arg(long)]
    pub raw_tcp: bool,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Default)]
struct Stats {
    connected: AtomicU64,
    messages: AtomicU64,
    /// Echoes including warm-up.
    total: AtomicU64,
    errors: AtomicU64,
    handshakes: AtomicU64,
    /// Bytes written / read on echo connections after the handshake
    /// (warm-up included; the final close frame excluded).
    wire_out: AtomicU64,
    wire_in: AtomicU64,
    /// Messages sent (warm-up included).
    sent: AtomicU64,
    /// The first connection's permessage-deflate agreement.
    deflate: std::sync::OnceLock<DeflateParams>,
}

struct Plan {
    addr: SocketAddr,
    req: ClientRequest,
    /// For wss://.
    tls: Option<Arc<wsx::tls::rustls::ClientConfig>>,
    /// The masked frames (plain) and payloads, sent in turn.
    frames: Vec<Vec<u8>>,
    payloads: Vec<Vec<u8>>,
    /// The compressed masked frames, made by the first connection that
    /// negotiated deflate, with its parameters.
    deflate_frames: std::sync::OnceLock<(DeflateParams, Vec<Vec<u8>>)>,
    /// Text messages (`--text` or `--payload json`).
    text: bool,
    /// What we offer with `--deflate`.
    deflate: Option<DeflateConfig>,
    args: BenchArgs,
    /// Set once every connection is open: when measuring starts and ends.
    clock: tokio::sync::watch::Receiver<Option<Clock>>,
    per_conn_limit: Option<u64>,
    stats: Arc<Stats>,
}

#[derive(Debug, Clone, Copy)]
struct Clock {
    /// Sending starts here; until `measure_from` it is warm-up.
    start: Instant,
    measure_from: Instant,
    end: Instant,
}

impl Plan {
    /// Waits until the main thread starts the clock (all connections open).
    async fn clock(&self) -> Clock {
        let mut rx = self.clock.clone();
        let c = *rx
            .wait_for(Option::is_some)
            .await
            .expect("clock sender lives");
        c.expect("some")
    }
}

struct Outcome {
    hist: Histogram<u64>,
    first_error: Option<String>,
}

/// Runs the benchmark; prints the report. Returns the process exit code.
pub fn run(args: BenchArgs) -> u8 {
    match run_inner(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("wsx bench: {e}");
            2
        }
    }
}

fn run_inner(args: BenchArgs) -> Result<u8, String> {
    if args.connections == 0 || args.depth == 0 || args.threads == 0 {
        return Err("connections, depth and threads must be at least 1".into());
    }
    if args.request.proxy.is_some() {
        return Err(
            "--proxy is not supported by wsx bench: it measures the server, not a proxy".into(),
        );
    }
    // The proxy variables are not read either (`config.proxy` is unused).
    let (mut req, config) = crate::request_args::build_request(&args.url, &args.request)?;
    if args.deflate && args.raw_tcp {
        return Err("--deflate needs a WebSocket server, not --raw-tcp".into());
    }
    if args.messages.is_some() && args.mode == Mode::Idle {
        return Err("--mode idle holds connections for --duration; -n does not apply".into());
    }
    let tls = if req.is_secure() {
        if args.raw_tcp {
            return Err("--raw-tcp needs a ws:// URL".into());
        }
        Some(match config.tls {
            Some(c) => c,
            None => wsx::tls::TlsClientOptions::default()
                .build()
                .map_err(|e| crate::diagnose::chain(&e))?,
        })
    } else {
        None
    };
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(req.host(), req.port()))
        .map_err(|e| format!("cannot resolve {}: {e}", req.host()))?
        .next()
        .ok_or("host resolves to no address")?;
    let text = args.text || args.payload == Payload::Json;
    let payloads: Vec<Vec<u8>> = match args.payload {
        Payload::Random => vec![make_payload(args.size, text)],
        Payload::Json => (0..json_payloads(args.size))
            .map(|k| make_json(args.size, k as u64))
            .collect(),
    };
    let frames = payloads.iter().map(|p| encode_frame(p, text)).collect();
    // Every compressed frame must stand alone for it to be resent as is.
    let deflate = args.deflate.then(|| DeflateConfig {
        no_context_takeover: true,
        ..DeflateConfig::default()
    });
    if let Some(d) = &deflate {
        req = req.extensions(d.offer());
    }
    let stats = Arc::new(Stats::default());

    // Connections first, then the clock starts for everyone at once.
    let warm = Duration::from_secs_f64(args.warmup.max(0.0));
    let dur = Duration::from_secs_f64(args.duration.max(0.0));
    let (clock_tx, clock_rx) = tokio::sync::watch::channel(None);
    let make_clock = || {
        let start = Instant::now();
        let measure_from = start + warm;
        let end = if args.messages.is_some() {
            measure_from + Duration::from_secs(3600)
        } else {
            measure_from + dur
        };
        Clock {
            start,
            measure_from,
            end,
        }
    };
    let per_conn_limit = args
        .messages
        .map(|n| n.div_ceil(args.connections as u64).max(1));
    let plan = Arc::new(Plan {
        addr,
        req,
        tls,
        frames,
        payloads,
        deflate_frames: std::sync::OnceLock::new(),
        text,
        deflate,
        args: args.clone(),
        clock: clock_rx,
        per_conn_limit,
        stats: stats.clone(),
    });

    let progress = progress_bar(&args);
    let mut threads = Vec::new();
    for t in 0..args.threads {
        let plan = plan.clone();
        threads.push(std::thread::spawn(move || -> Vec<Outcome> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let local = tokio::task::LocalSet::new();
                local
                    .run_until(async move {
                        let mut handles = Vec::new();
                        let mut i = t;
                        while i < plan.args.connections {
                            handles.push(tokio::task::spawn_local(connection(plan.clone(), i)));
                            i += plan.args.threads;
                        }
                        let mut out = Vec::new();
                        for h in handles {
                            if let Ok(o) = h.await {
                                out.push(o);
                            }
                        }
                        out
                    })
                    .await
            })
        }));
    }

    // Progress while the threads work.
    let t0 = std::time::Instant::now();
    let mut last = (std::time::Instant::now(), 0u64);
    let mut cpu0 = None;
    let mut clock: Option<Clock> = None;
    let setup_deadline = Instant::now() + Duration::from_secs(30 + args.connections as u64 / 500);
    while threads.iter().any(|t| !t.is_finished()) {
        std::thread::sleep(Duration::from_millis(20));
        let ready =
            stats.connected.load(Relaxed) + stats.errors.load(Relaxed) >= args.connections as u64;
        if clock.is_none()
            && (args.mode == Mode::Handshake || ready || Instant::now() > setup_deadline)
        {
            let c = make_clock();
            clock = Some(c);
            let _ = clock_tx.send(Some(c));
        }
        if cpu0.is_none() && clock.is_some_and(|c| Instant::now() >= c.measure_from) {
            cpu0 = Some((cpu_seconds(), Instant::now()));
        }
        if last.0.elapsed() < Duration::from_millis(250) {
            continue;
        }
        if let Some(pb) = &progress {
            let now = std::time::Instant::now();
            let m = stats.messages.load(Relaxed) + stats.handshakes.load(Relaxed);
            let rate = (m - last.1) as f64 / (now - last.0).as_secs_f64();
            last = (now, m);
            pb.set_message(format!(
                "{:5.1} s  {} connected  {} msg/s  {} errors",
                t0.elapsed().as_secs_f64(),
                stats.connected.load(Relaxed),
                fmt_int(rate as u64),
                stats.errors.load(Relaxed)
            ));
        }
    }
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("histogram");
    let mut first_error = None;
    for t in threads {
        for o in t.join().map_err(|_| "a load-generator thread panicked")? {
            let _ = hist.add(&o.hist);
            if first_error.is_none() {
                first_error = o.first_error;
            }
        }
    }
    let measure_from = clock.map_or_else(Instant::now, |c| c.measure_from);
    let measured = if args.messages.is_some() {
        // Count-limited runs end when the last echo arrives.
        (Instant::now() - measure_from).as_secs_f64()
    } else {
        dur.as_secs_f64()
    };
    // Our own CPU over the measured window, as a share of it.
    let cpu_share = match cpu0 {
        Some((c, t)) => (cpu_seconds() - c) / (Instant::now() - t).as_secs_f64().max(1e-9),
        None => 0.0,
    };
    report(
        &args,
        &stats,
        &hist,
        measured,
        cpu_share,
        first_error.as_deref(),
    );
    Ok(if stats.errors.load(Relaxed) > 0 { 1 } else { 0 })
}

fn progress_bar(args: &BenchArgs) -> Option<indicatif::ProgressBar> {
    if args.json || !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = indicatif::ProgressBar::new_spinner();
    pb.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg}").expect("valid template"),
    );
    pb.enable_steady_tick(Duration::from_millis(100));
    Some(pb)
}

fn make_payload(size: usize, text: bool) -> Vec<u8> {
    // Deterministic, non-repeating enough that a shifted or mixed-up echo is caught.
    let mut x: u32 = 0x9e37_79b9;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if text {
                b'a' + (x % 26) as u8
            } else {
                x as u8
            }
        })
        .collect()
}

/// How many distinct JSON payloads: at least 64 KiB in all (twice the
/// largest deflate window), between 4 and 256.
fn json_payloads(size: usize) -> usize {
    (64 * 1024usize).div_ceil(size.max(1)).clamp(4, 256)
}

/// JSON-like text of exactly `size` bytes: an array of event records with
/// the same keys each time and varying numbers and strings (deterministic
/// for a `seed`), the remainder filled by one `{"n":"..."}` record or
/// spaces. Compresses roughly like real API traffic (repeated keys, digits,
/// short words).
pub fn make_json(size: usize, seed: u64) -> Vec<u8> {
    const USERS: [&str; 8] = [
        "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
    ];
    const KINDS: [&str; 4] = ["trade", "quote", "cancel", "fill"];
    const SYMBOLS: [&str; 6] = ["BTC-USD", "ETH-USD", "SOL-USD", "EUR-USD", "AAPL", "MSFT"];
    let mut x: u64 = 0x2545_f491_4f6c_dd1d ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut out = String::with_capacity(size + 256);
    out.push('[');
    let mut ts: u64 = 1_767_225_600_000 + seed * 60_000;
    for id in seed * 1000.. {
        ts += rnd() % 50;
        let r = rnd();
        let rec = format!(
            r#"{{"id":{},"ts":{ts},"type":"{}","user":"{}_{:03}","symbol":"{}","price":{}.{:02},"qty":{}.{:04},"side":"{}","ok":{}}}"#,
            100_000 + id * 7 + r % 5,
            KINDS[(r >> 8) as usize % KINDS.len()],
            USERS[(r >> 12) as usize % USERS.len()],
            (r >> 16) % 1000,
            SYMBOLS[(r >> 26) as usize % SYMBOLS.len()],
            100 + (r >> 30) % 60_000,
            (r >> 46) % 100,
            (r >> 53) % 20,
            rnd() % 10_000,
            if r & 1 == 0 { "buy" } else { "sell" },
            r & 2 == 0,
        );
        let sep = usize::from(out.len() > 1);
        // Room for this record and the closing bracket.
        if out.len() + sep + rec.len() + 1 > size {
            break;
        }
        if sep == 1 {
            out.push(',');
        }
        out.push_str(&rec);
    }
    // Fill the rest: a record with a string of the right length, else spaces.
    let sep = usize::from(out.len() > 1);
    let filler = r#"{"n":""}"#.len() + sep;
    let room = size.saturating_sub(out.len() + 1);
    if room >= filler {
        if sep == 1 {
            out.push(',');
        }
        out.push_str(r#"{"n":""#);
        for _ in 0..room - filler {
            out.push((b'a' + (rnd() % 26) as u8) as char);
        }
        out.push_str(r#""}"#);
    }
    out.push(']');
    let mut b = out.into_bytes();
    b.resize(size.max(b.len()), b' ');
    if b.len() > size {
        // Below 2 bytes no JSON fits: spaces.
        b = vec![b' '; size];
    }
    b
}

fn encode_frame(payload: &[u8], text: bool) -> Vec<u8> {
    let key = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0x5a5a_5a5a)
        | 1)
    .to_ne_bytes();
    let h = FrameHeader {
        fin: true,
        rsv: 0,
        opcode: if text { OpCode::TEXT } else { OpCode::BINARY },
        mask: Some(key),
        payload_len: payload.len() as u64,
    };
    let mut hb = [0u8; FrameHeader::MAX_LEN];
    let n = h.encode(&mut hb);
    let mut out = hb[..n].to_vec();
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], key, 0);
    out
}

fn source_addr(plan: &Plan, i: usize) -> Option<SocketAddr> {
    let IpAddr::V4(ip) = plan.addr.ip() else {
        return None;
    };
    if !ip.is_loopback() {
        return None;
    }
    let n = match plan.args.source_ips {
        Some(n) => n.max(1) as usize,
        None => plan.args.connections.div_ceil(20_000),
    };
    if n <= 1 {
        return None;
    }
    let k = (i % n) as u8 + 1;
    Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, k)), 0))
}

/// One echo at the front of `rbuf`: `(bytes consumed, Some(echo matches))`,
/// `(consumed, None)` for a control frame, `None` if incomplete.
fn next_echo(
    rbuf: &[u8],
    raw: bool,
    frame: &[u8],
    payload: &[u8],
) -> Result<Option<(usize, Option<bool>)>, String> {
    if raw {
        // A raw TCP echo returns our (masked) frame bytes as they were.
        if rbuf.len() < frame.len() {
            return Ok(None);
        }
        return Ok(Some((frame.len(), Some(&rbuf[..frame.len()] == frame))));
    }
    let Some((h, hl)) = FrameHeader::decode(rbuf).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let len = h.payload_len as usize;
    if rbuf.len() < hl + len {
        return Ok(None);
    }
    match h.opcode {
        OpCode::TEXT | OpCode::BINARY => {
            let ok = h.fin && h.mask.is_none() && &rbuf[hl..hl + len] == payload;
            Ok(Some((hl + len, Some(ok))))
        }
        OpCode::CLOSE => Err("server sent a close frame mid-benchmark".into()),
        _ => Ok(Some((hl + len, None))),
    }
}

/// TCP, then TLS for wss:// (its handshake counts in `--mode handshake`).
async fn connect_tcp(plan: &Plan, i: usize) -> Result<MaybeTlsStream, String> {
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    if let Some(src) = source_addr(plan, i) {
        socket.bind(src).map_err(|e| format!("bind {src}: {e}"))?;
    }
    let tcp = socket
        .connect(plan.addr)
        .await
        .map_err(|e| format!("connect {}: {e}", plan.addr))?;
    let _ = tcp.set_nodelay(true);
    match &plan.tls {
        None => Ok(MaybeTlsStream::Plain(tcp)),
        Some(config) => wsx::tls::handshake(config.clone(), plan.req.host(), tcp)
            .await
            .map(|s| MaybeTlsStream::Tls(Box::new(s)))
            .map_err(|e| crate::diagnose::one_line(&e)),
    }
}

async fn open_raw(plan: &Plan, i: usize) -> Result<Opened, String> {
    Ok((
        connect_tcp(plan, i).await?,
        BytesMut::with_capacity(64 * 1024),
        None,
    ))
}

/// The stream, bytes that came after the 101, and the deflate agreement.
type Opened = (
    MaybeTlsStream,
    BytesMut,
    Option<wsx::wsx_proto::deflate::Negotiated>,
);

async fn open(plan: &Plan, i: usize) -> Result<Opened, String> {
    let mut tcp = connect_tcp(plan, i).await?;
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&(i as u64).to_le_bytes());
    let (mut hs, request) = ClientHandshake::new(&plan.req, key);
    tcp.write_all(&request).await.map_err(|e| e.to_string())?;
    let mut buf = [0u8; 4096];
    loop {
        let n = tcp.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(hs.handle_eof().to_string());
        }
        if let Some(done) = hs.handle_data(&buf[..n]).map_err(|e| e.to_string())? {
            let mut rest = BytesMut::with_capacity(64 * 1024);
            rest.extend_from_slice(&done.leftover);
            let negotiated = match &plan.deflate {
                None => None,
                Some(d) => match d.negotiate_client(&done.extensions) {
                    Ok(Some(n)) => Some(n),
                    Ok(None) => {
                        return Err("--deflate: the server declined permessage-deflate \
                                    (no permessage-deflate in its Sec-WebSocket-Extensions)"
                            .into())
                    }
                    Err(e) => return Err(format!("--deflate: {e}")),
                },
            };
            if let Some(n) = &negotiated {
                let _ = plan.stats.deflate.set(n.params);
            }
            return Ok((tcp, rest, negotiated));
        }
    }
}

async fn connection(plan: Arc<Plan>, i: usize) -> Outcome {
    let mut out = Outcome {
        hist: Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram"),
        first_error: None,
    };
    let result = match plan.args.mode {
        Mode::Echo => echo(&plan, i, &mut out.hist).await,
        Mode::Handshake => handshakes(&plan, i, &mut out.hist).await,
        Mode::Idle => idle(&plan, i).await,
    };
    if let Err(e) = result {
        plan.stats.errors.fetch_add(1, Relaxed);
        out.first_error = Some(e);
    }
    out
}

async fn idle(plan: &Plan, i: usize) -> Result<(), String> {
    let (mut tcp, _, _) = open(plan, i).await?;
    plan.stats.connected.fetch_add(1, Relaxed);
    let clock = plan.clock().await;
    let mut buf = [0u8; 256];
    tokio::select! {
        _ = tokio::time::sleep_until(clock.end) => Ok(()),
        r = tcp.read(&mut buf) => match r {
            Ok(0) => Err("server closed an idle connection".into()),
            Ok(_) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }
}

async fn handshakes(plan: &Plan, i: usize, hist: &mut Histogram<u64>) -> Result<(), String> {
    let clock = plan.clock().await;
    let close = close_frame();
    let mut opened = 0u64;
    loop {
        let t = Instant::now();
        // -n counts handshakes here (per connection slot, warm-up included).
        if t >= clock.end || plan.per_conn_limit.is_some_and(|l| opened >= l) {
            return Ok(());
        }
        opened += 1;
        let (mut tcp, _, _) = open(plan, i).await?;
        let done = Instant::now();
        if t >= clock.measure_from {
            let _ = hist.record((done - t).as_nanos() as u64);
            plan.stats.handshakes.fetch_add(1, Relaxed);
        }
        // Close properly: our close frame, then wait for the server's end.
        tcp.write_all(&close).await.map_err(|e| e.to_string())?;
        let mut buf = [0u8; 256];
        while let Ok(n) = tcp.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    }
}

fn close_frame() -> Vec<u8> {
    let key = [1, 2, 3, 4];
    let mut f = vec![0x88, 0x82, 1, 2, 3, 4, 0x03, 0xe8];
    apply_mask(&mut f[6..], key, 0);
    f
}

/// Where echoes are parsed: in place (plain frames, raw TCP), or through a
/// `wsx-proto` connection (permessage-deflate: inflated, then compared).
enum Rx {
    Frames(BytesMut),
    Proto(Box<Connection>),
}

impl Rx {
    fn buffer(&mut self) -> &mut BytesMut {
        match self {
            Rx::Frames(b) => {
                if b.capacity() - b.len() < 16 * 1024 {
                    b.reserve(64 * 1024);
                }
                b
            }
            Rx::Proto(c) => c.recv_buffer(),
        }
    }

    fn received(&mut self, now: Instant) {
        if let Rx::Proto(c) = self {
            c.handle_received(now.into_std());
        }
    }

    /// The next echo: `Some(Some(matches))`, `Some(None)` for a control
    /// frame, `None` when no whole message is buffered.
    fn next_echo(
        &mut self,
        raw: bool,
        frame: &[u8],
        payload: &[u8],
    ) -> Result<Option<Option<bool>>, String> {
        match self {
            Rx::Frames(b) => Ok(next_echo(b, raw, frame, payload)?.map(|(consumed, ok)| {
                b.advance(consumed);
                ok
            })),
            Rx::Proto(c) => match c.poll_event() {
                None => Ok(None),
                Some(Event::Text(t)) => Ok(Some(Some(t.as_bytes()[..] == *payload))),
                Some(Event::Binary(b)) => Ok(Some(Some(b[..] == *payload))),
                Some(Event::Ping(_) | Event::Pong(_) | Event::Fragment(_)) => Ok(Some(None)),
                Some(Event::Closed(c)) => Err(format!(
                    "connection closed mid-benchmark: {} {}",
                    c.code.0, c.reason
                )),
            },
        }
    }

    /// Moves what the connection queued (pongs) to `out`.
    fn take_output(&mut self, out: &mut Vec<u8>) {
        if let Rx::Proto(c) = self {
            let t = c.transmit();
            while t.has_remaining() {
                let chunk = t.chunk();
                let n = chunk.len();
                out.extend_from_slice(chunk);
                t.advance(n);
            }
        }
    }
}

/// The compressed frames for `negotiated`: shared by every connection with
/// the same agreement (the first one makes them), else made for this one.
fn deflate_frames<'a>(
    plan: &'a Plan,
    conn: &mut Connection,
    negotiated: DeflateParams,
    own: &'a mut Vec<Vec<u8>>,
) -> Result<&'a [Vec<u8>], String> {
    let make = |conn: &mut Connection| -> Result<Vec<Vec<u8>>, String> {
        plan.payloads
            .iter()
            .map(|p| compressed_frame(conn, p, plan.text))
            .collect()
    };
    if plan.deflate_frames.get().is_none() {
        let frames = make(conn)?;
        let _ = plan.deflate_frames.set((negotiated, frames));
    }
    match plan.deflate_frames.get() {
        Some((p, frames)) if *p == negotiated => Ok(frames),
        _ => {
            *own = make(conn)?;
            Ok(own)
        }
    }
}

/// A client connection with permessage-deflate on, fed what followed the 101.
fn deflate_connection(
    negotiated: wsx::wsx_proto::deflate::Negotiated,
    leftover: &[u8],
    i: usize,
) -> Connection {
    let mut seed = [7u8; 32];
    seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
    let now = std::time::Instant::now();
    let mut c = Connection::client(Config::default(), seed, now);
    c.enable_deflate(negotiated);
    if !leftover.is_empty() {
        c.handle_data(leftover, now);
    }
    c
}

/// Our message as the connection frames it: compressed (above the
/// threshold) and masked. Resent as is: client_no_context_takeover makes
/// each compressed message independent of the ones before it.
fn compressed_frame(c: &mut Connection, payload: &[u8], text: bool) -> Result<Vec<u8>, String> {
    let msg = if text {
        let s = std::str::from_utf8(payload).map_err(|e| e.to_string())?;
        Message::text(s.to_owned())
    } else {
        Message::binary(bytes::Bytes::copy_from_slice(payload))
    };
    c.send(msg).map_err(|e| e.to_string())?;
    let mut frame = Vec::new();
    let t = c.transmit();
    while t.has_remaining() {
        let chunk = t.chunk();
        let n = chunk.len();
        frame.extend_from_slice(chunk);
        t.advance(n);
    }
    Ok(frame)
}

async fn echo(plan: &Plan, i: usize, hist: &mut Histogram<u64>) -> Result<(), String> {
    let (mut tcp, rbuf, negotiated) = if plan.args.raw_tcp {
        open_raw(plan, i).await?
    } else {
        open(plan, i).await?
    };
    // With deflate, a Connection decodes the echoes and made our frame.
    let mut rx = match negotiated {
        None => Rx::Frames(rbuf),
        Some(n) => Rx::Proto(Box::new(deflate_connection(n, &rbuf, i))),
    };
    let mut own_frames = Vec::new();
    let frames: &[Vec<u8>] = match &mut rx {
        Rx::Frames(_) => &plan.frames,
        Rx::Proto(conn) => {
            let params = conn.deflate().expect("deflate enabled").params;
            deflate_frames(plan, conn, params, &mut own_frames)?
        }
    };
    let payloads = &plan.payloads;
    let k = frames.len() as u64;
    let pick = |i: u64| (i % k) as usize;
    plan.stats.connected.fetch_add(1, Relaxed);
    let clock = plan.clock().await;
    tokio::time::sleep_until(clock.start).await;
    let (mut wire_out, mut wire_in, mut sent_reported) = (0u64, 0u64, 0u64);
    let mut wbuf: Vec<u8> = Vec::with_capacity(frames[0].len() * plan.args.depth);
    let mut sent_at: VecDeque<Instant> = VecDeque::with_capacity(plan.args.depth);
    let mut echoed: u64 = 0;
    let mut errors: u64 = 0;
    let mut total_echoes: u64 = 0;
    let limit = plan.per_conn_limit;

    // Open loop: a send schedule instead of a window.
    let interval = plan
        .args
        .rate
        .map(|r| Duration::from_secs_f64(plan.args.connections as f64 / r.max(1e-9)));
    let mut next_send = Instant::now();
    let mut sent: u64 = 0;
    let may_send = |sent: u64| limit.is_none_or(|l| sent < l);
    if interval.is_none() {
        let now = Instant::now();
        for _ in 0..plan.args.depth {
            if may_send(sent) {
                wbuf.extend_from_slice(&frames[pick(sent)]);
                sent_at.push_back(now);
                sent += 1;
            }
        }
        tcp.write_all(&wbuf).await.map_err(|e| e.to_string())?;
        wire_out += wbuf.len() as u64;
        wbuf.clear();
    }
    let mut stop_sending = false;
    loop {
        let n = match interval {
            None => tcp.read_buf(rx.buffer()).await.map_err(|e| e.to_string())?,
            Some(iv) => {
                tokio::select! {
                    r = tcp.read_buf(rx.buffer()) => r.map_err(|e| e.to_string())?,
                    _ = tokio::time::sleep_until(next_send), if !stop_sending => {
                        let now = Instant::now();
                        while next_send <= now && sent_at.len() < 100_000 && may_send(sent) {
                            wbuf.extend_from_slice(&frames[pick(sent)]);
                            sent_at.push_back(next_send);
                            next_send += iv;
                            sent += 1;
                        }
                        if now >= clock.end || !may_send(sent) {
                            stop_sending = true;
                        }
                        tcp.write_all(&wbuf).await.map_err(|e| e.to_string())?;
                        wire_out += wbuf.len() as u64;
                        wbuf.clear();
                        continue;
                    }
                }
            }
        };
        if n == 0 {
            return Err(format!(
                "server closed the connection with {} echoes outstanding",
                sent_at.len()
            ));
        }
        wire_in += n as u64;
        let now = Instant::now();
        let measuring = now >= clock.measure_from;
        let mut new_echoes = 0u64;
        rx.received(now);
        while let Some(echo_ok) = rx.next_echo(
            plan.args.raw_tcp,
            &frames[pick(echoed)],
            &payloads[pick(echoed)],
        )? {
            // Pings and pongs from the server are not echoes.
            let Some(ok) = echo_ok else { continue };
            if !ok {
                errors += 1;
            }
            let t = sent_at
                .pop_front()
                .ok_or("more echoes than messages sent")?;
            if measuring && t >= clock.measure_from {
                let _ = hist.record((now - t).as_nanos().max(1) as u64);
                new_echoes += 1;
            }
            echoed += 1;
            total_echoes += 1;
            let done = limit.is_some_and(|l| echoed >= l) || now >= clock.end;
            if interval.is_none() && !done && may_send(sent) {
                wbuf.extend_from_slice(&frames[pick(sent)]);
                sent_at.push_back(now);
                sent += 1;
            }
            if done {
                stop_sending = true;
            }
        }
        if new_echoes > 0 {
            plan.stats.messages.fetch_add(new_echoes, Relaxed);
        }
        if total_echoes > 0 {
            plan.stats.total.fetch_add(total_echoes, Relaxed);
            total_echoes = 0;
        }
        if errors > 0 {
            plan.stats.errors.fetch_add(errors, Relaxed);
            errors = 0;
        }
        // Pongs the Connection queued for the server's pings.
        rx.take_output(&mut wbuf);
        if !wbuf.is_empty() {
            tcp.write_all(&wbuf).await.map_err(|e| e.to_string())?;
            wire_out += wbuf.len() as u64;
            wbuf.clear();
        }
        plan.stats
            .wire_out
            .fetch_add(std::mem::take(&mut wire_out), Relaxed);
        plan.stats
            .wire_in
            .fetch_add(std::mem::take(&mut wire_in), Relaxed);
        plan.stats.sent.fetch_add(sent - sent_reported, Relaxed);
        sent_reported = sent;
        if stop_sending && sent_at.is_empty() {
            break;
        }
    }
    if !plan.args.raw_tcp {
        let _ = tcp.write_all(&close_frame()).await;
    } else {
        let _ = tcp.shutdown().await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let mut buf = [0u8; 1024];
        while let Ok(n) = tcp.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
    Ok(())
}

/// CPU seconds (user + system) used by this process so far, from
/// /proc/self/stat (Linux; USER_HZ is 100 there).
pub fn cpu_seconds() -> f64 {
    proc_cpu_seconds("/proc/self/stat").unwrap_or(0.0)
}

/// CPU seconds (user + system) of a process from its `stat` file.
pub fn proc_cpu_seconds(path: &str) -> Option<f64> {
    let s = std::fs::read_to_string(path).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn fmt_int(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

fn report(
    args: &BenchArgs,
    stats: &Stats,
    hist: &Histogram<u64>,
    secs: f64,
    cpu_share: f64,
    first_error: Option<&str>,
) {
    let messages = stats.messages.load(Relaxed);
    let handshakes = stats.handshakes.load(Relaxed);
    let errors = stats.errors.load(Relaxed);
    let connected = stats.connected.load(Relaxed);
    let count = if args.mode == Mode::Handshake {
        handshakes
    } else {
        messages
    };
    let rate = count as f64 / secs.max(1e-9);
    let mbps = rate * args.size as f64 / 1e6;
    // Bytes on the wire per message each way (warm-up included), and their
    // ratio to the payload: the compression ratio with --deflate.
    let sent = stats.sent.load(Relaxed);
    let total = stats.total.load(Relaxed);
    let per = |bytes: u64, n: u64| (n > 0).then(|| bytes as f64 / n as f64);
    let wire_sent = per(stats.wire_out.load(Relaxed), sent);
    let wire_recv = per(stats.wire_in.load(Relaxed), total);
    let ratio = |w: Option<f64>| w.filter(|_| args.size > 0).map(|w| w / args.size as f64);
    let deflate = stats.deflate.get();
    let q = |p: f64| {
        if hist.is_empty() {
            0
        } else {
            hist.value_at_quantile(p)
        }
    };
    if args.json {
        let v = serde_json::json!({
            "url": args.url,
            "mode": format!("{:?}", args.mode).to_lowercase(),
            "connections": args.connections,
            "connected": connected,
            "size": args.size,
            "depth": args.depth,
            "rate": args.rate,
            "text": args.text || args.payload == Payload::Json,
            "payload": format!("{:?}", args.payload).to_lowercase(),
            "deflate": {
                "offered": args.deflate,
                "negotiated": deflate.is_some(),
                "params": deflate.map(|p| serde_json::json!({
                    "server_no_context_takeover": p.server_no_context_takeover,
                    "client_no_context_takeover": p.client_no_context_takeover,
                    "server_max_window_bits": p.server_max_window_bits,
                    "client_max_window_bits": p.client_max_window_bits,
                })),
            },
            "wire_bytes_per_message": { "sent": wire_sent, "received": wire_recv },
            "wire_ratio": { "sent": ratio(wire_sent), "received": ratio(wire_recv) },
            "seconds": secs,
            "messages": messages,
            "messages_total": stats.total.load(Relaxed),
            "handshakes": handshakes,
            "per_second": rate,
            "payload_mb_per_s": mbps,
            "errors": errors,
            "first_error": first_error,
            "latency_ms": {
                "p50": ms(q(0.5)), "p90": ms(q(0.9)), "p99": ms(q(0.99)),
                "p999": ms(q(0.999)), "max": ms(if hist.is_empty() { 0 } else { hist.max() }),
            },
            "client_cpu_share": cpu_share,
        });
        println!("{v}");
        return;
    }
    let kind = match (args.payload, args.text) {
        (Payload::Json, _) => "JSON text",
        (Payload::Random, true) => "text",
        (Payload::Random, false) => "binary",
    };
    println!(
        "target      {}  ({:?} mode, {} connections, {} connected)",
        args.url, args.mode, args.connections, connected
    );
    match args.mode {
        Mode::Echo => {
            let load = match args.rate {
                Some(r) => format!("open loop at {} msg/s", fmt_int(r as u64)),
                None => format!("depth {}", args.depth),
            };
            println!(
                "load        {} B {kind} messages, {load}, {secs:.1} s measured",
                args.size
            );
            println!(
                "throughput  {} messages  {} msg/s  {:.2} MB/s payload",
                fmt_int(messages),
                fmt_int(rate as u64),
                mbps
            );
            match (args.deflate, deflate) {
                (false, _) => println!("deflate     off"),
                (true, None) => println!("deflate     offered, NOT negotiated"),
                (true, Some(p)) => println!(
                    "deflate     negotiated (server: window {}{}; client: window {}{})",
                    p.server_max_window_bits,
                    if p.server_no_context_takeover {
                        ", no context takeover"
                    } else {
                        ", context takeover"
                    },
                    p.client_max_window_bits,
                    if p.client_no_context_takeover {
                        ", no context takeover"
                    } else {
                        ", context takeover"
                    },
                ),
            }
            if let (Some(s), Some(r)) = (wire_sent, wire_recv) {
                let pct = |w: Option<f64>| {
                    w.map_or_else(String::new, |w| format!(" ({:.1}% of payload)", 100.0 * w))
                };
                println!(
                    "wire        sent {s:.1} B/msg{}  received {r:.1} B/msg{}  (payload {} B)",
                    pct(ratio(wire_sent)),
                    pct(ratio(wire_recv)),
                    args.size
                );
            }
        }
        Mode::Handshake => println!(
            "throughput  {} handshakes  {} handshakes/s",
            fmt_int(handshakes),
            fmt_int(rate as u64)
        ),
        Mode::Idle => println!("held        {connected} idle connections for {secs:.1} s"),
    }
    if !hist.is_empty() {
        println!(
            "latency     p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  max {:.3} ms",
            ms(q(0.5)),
            ms(q(0.9)),
            ms(q(0.99)),
            ms(q(0.999)),
            ms(hist.max())
        );
    }
    println!("client cpu  {:.0}% of one core", 100.0 * cpu_share);
    println!("errors      {errors}");
    if let Some(e) = first_error {
        println!("first error {e}");
    }
}
