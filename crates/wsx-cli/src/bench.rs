//! `wsx bench`: a WebSocket load generator that checks every echo.
//!
//! It speaks the protocol through `wsx-proto` (handshake, frame headers) but
//! keeps its own lean loop: each connection pre-encodes its masked frame once,
//! writes a whole batch of frames per syscall, and checks echoes in place.

use bytes::{Buf, BytesMut};
use hdrhistogram::Histogram;
use std::collections::VecDeque;
use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;
use wsx::wsx_proto::frame::{FrameHeader, OpCode};
use wsx::wsx_proto::handshake::{ClientHandshake, ClientRequest};
use wsx::wsx_proto::mask::apply_mask;

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
  wsx bench ws://127.0.0.1:9001/ -c 10000 --mode idle -d 10    # hold idle connections";

/// Options of `wsx bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// The ws:// URL of an echo server.
    pub url: String,
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
    /// Stop after this many echoed messages in total (warm-up included)
    /// instead of after a duration.
    #[arg(short = 'n', long)]
    pub messages: Option<u64>,
    /// Warm-up seconds before measuring.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Send text messages (default binary).
    #[arg(long)]
    pub text: bool,
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
}

struct Plan {
    addr: SocketAddr,
    req: ClientRequest,
    frame: Arc<Vec<u8>>,
    payload: Arc<Vec<u8>>,
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
    let req = ClientRequest::new(&args.url).map_err(|e| e.to_string())?;
    if req.is_secure() {
        return Err("wss:// is not supported by wsx bench yet".into());
    }
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(req.host(), req.port()))
        .map_err(|e| format!("cannot resolve {}: {e}", req.host()))?
        .next()
        .ok_or("host resolves to no address")?;
    let payload = make_payload(args.size, args.text);
    let frame = Arc::new(encode_frame(&payload, args.text));
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
        frame,
        payload: Arc::new(payload),
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

async fn connect_tcp(plan: &Plan, i: usize) -> Result<TcpStream, String> {
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    if let Some(src) = source_addr(plan, i) {
        socket.bind(src).map_err(|e| format!("bind {src}: {e}"))?;
    }
    let tcp = socket
        .connect(plan.addr)
        .await
        .map_err(|e| format!("connect {}: {e}", plan.addr))?;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

async fn open_raw(plan: &Plan, i: usize) -> Result<(TcpStream, BytesMut), String> {
    Ok((
        connect_tcp(plan, i).await?,
        BytesMut::with_capacity(64 * 1024),
    ))
}

async fn open(plan: &Plan, i: usize) -> Result<(TcpStream, BytesMut), String> {
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
            return Ok((tcp, rest));
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
    let (mut tcp, _) = open(plan, i).await?;
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
    loop {
        let t = Instant::now();
        if t >= clock.end {
            return Ok(());
        }
        let (mut tcp, _) = open(plan, i).await?;
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

async fn echo(plan: &Plan, i: usize, hist: &mut Histogram<u64>) -> Result<(), String> {
    let (mut tcp, mut rbuf) = if plan.args.raw_tcp {
        open_raw(plan, i).await?
    } else {
        open(plan, i).await?
    };
    plan.stats.connected.fetch_add(1, Relaxed);
    let clock = plan.clock().await;
    tokio::time::sleep_until(clock.start).await;
    let frame = &plan.frame[..];
    let payload = &plan.payload[..];
    let mut wbuf: Vec<u8> = Vec::with_capacity(frame.len() * plan.args.depth);
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
                wbuf.extend_from_slice(frame);
                sent_at.push_back(now);
                sent += 1;
            }
        }
        tcp.write_all(&wbuf).await.map_err(|e| e.to_string())?;
        wbuf.clear();
    }
    let mut stop_sending = false;
    loop {
        if rbuf.capacity() - rbuf.len() < 16 * 1024 {
            rbuf.reserve(64 * 1024);
        }
        let n = match interval {
            None => tcp.read_buf(&mut rbuf).await.map_err(|e| e.to_string())?,
            Some(iv) => {
                tokio::select! {
                    r = tcp.read_buf(&mut rbuf) => r.map_err(|e| e.to_string())?,
                    _ = tokio::time::sleep_until(next_send), if !stop_sending => {
                        let now = Instant::now();
                        while next_send <= now && sent_at.len() < 100_000 && may_send(sent) {
                            wbuf.extend_from_slice(frame);
                            sent_at.push_back(next_send);
                            next_send += iv;
                            sent += 1;
                        }
                        if now >= clock.end || !may_send(sent) {
                            stop_sending = true;
                        }
                        tcp.write_all(&wbuf).await.map_err(|e| e.to_string())?;
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
        let now = Instant::now();
        let measuring = now >= clock.measure_from;
        let mut new_echoes = 0u64;
        while let Some((consumed, echo_ok)) = next_echo(&rbuf, plan.args.raw_tcp, frame, payload)? {
            rbuf.advance(consumed);
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
                wbuf.extend_from_slice(frame);
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
        if !wbuf.is_empty() {
            tcp.write_all(&wbuf).await.map_err(|e| e.to_string())?;
            wbuf.clear();
        }
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
            "text": args.text,
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
    let kind = if args.text { "text" } else { "binary" };
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
