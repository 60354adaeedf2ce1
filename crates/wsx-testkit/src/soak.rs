//! The soak scenario, shared by the `soak` binary (minutes, in release) and
//! `tests/soak.rs` (10 s under `cargo test`).
//!
//! One process, a multi-thread runtime, a [`wsx::Server`] on 127.0.0.1:0
//! with short limits (`serve_with` with an echo path, a broadcast room and a
//! refusing path), and `clients` workers that each loop over randomly chosen
//! behaviours, normal and abusive, from source addresses 127.0.0.2-251. A
//! few long-lived clients stay connected to the end and must see the 1001 of
//! the graceful shutdown. Afterwards: zero panics anywhere in the process,
//! zero open connections, tasks and file descriptors back to their baseline.

use bytes::Bytes;
use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;
use wsx::wsx_proto::handshake::ClientHandshakeError;
use wsx::{
    broadcast::{Broadcast, BroadcastConfig, SlowConsumer},
    client::{ClientConfig, ClientRequest},
    server::{Accepted, HandshakeError},
    CloseCode, CloseFrame, Message, Server, ServerConfig, WebSocket,
};

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long clients keep opening connections.
    pub secs: u64,
    /// Concurrent client workers (each replaces its connection when done).
    pub clients: usize,
    /// The server's `max_connections` (503 past it).
    pub max_connections: usize,
    /// Seeds the behaviour choices (timing is not reproducible).
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Options {
            secs: 60,
            clients: 200,
            max_connections: 200,
            seed,
        }
    }
}

// The server's limits, short so that every timer fires many times a run.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(1);
const PING_INTERVAL: Duration = Duration::from_secs(1);
const PONG_TIMEOUT: Duration = Duration::from_secs(2);
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
const IDLE_TIMEOUT: Duration = Duration::from_secs(3);
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3);
const MAX_MESSAGE: usize = 64 * 1024;
/// Broadcast: one message of this size every tick to the room.
const BCAST_LEN: usize = 4096;
const BCAST_TICK: Duration = Duration::from_millis(20);
/// Clients connected from start to end (they must get the shutdown's 1001).
const LONG_LIVED: usize = 10;
/// Any one client session must end within this.
const SESSION_LIMIT: Duration = Duration::from_secs(15);
/// How long tasks and fds get to return to their baseline after `serve`
/// returned (connection tasks are joined by `serve`; broadcast writer tasks
/// are not and may still be finishing a write).
const SETTLE: Duration = Duration::from_secs(2);
/// Allowed fd difference from the baseline. 0: the runtime's own fds
/// (epoll, eventfd, signal pipe) exist before the baseline is taken.
const FD_SLACK: usize = 0;
/// Allowed task difference from the baseline: the harness joins everything
/// it spawns before counting, so 0.
const TASK_SLACK: usize = 0;

static PANICS: AtomicU64 = AtomicU64::new(0);
static HOOK: Once = Once::new();

/// Counts every panic in the process (server tasks, client tasks, threads),
/// then runs the previous hook (which prints it).
fn install_panic_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Relaxed);
            previous(info);
        }));
    });
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Behaviour {
    /// Echo session (text and binary, 0-60 KiB), then a clean close.
    Echo,
    /// Echo a few, then drop the socket without a close frame.
    EchoThenDrop,
    /// Handshake, then part of a frame, then drop (or RST).
    AbortMidFrame,
    /// Part of the request head, then stall (or trickle): the server must
    /// cut it at the handshake timeout.
    Slowloris,
    /// Part of the request head, then drop.
    PartialHeadDrop,
    /// Random bytes instead of a request: 400.
    Garbage,
    /// A plain HTTP GET: 426.
    PlainHttp,
    /// The accept hook refuses `/denied`: 401.
    Unauthorized,
    /// A protocol violation: the right close code (1002/1007).
    Violation,
    /// Send without reading, then vanish with an RST.
    Vanish,
    /// A message over the limit: 1009.
    Oversize,
    /// Broadcast room: read and verify some messages, close cleanly.
    Subscriber,
    /// Broadcast room with a 4 KiB receive buffer, never read, then vanish.
    StalledSubscriber,
    /// Connect and say nothing: the server's idle timeout closes with 1001.
    Idle,
    /// Connected from start to end; sees the shutdown's 1001.
    LongLived,
}

const WEIGHTS: &[(Behaviour, u64)] = &[
    (Behaviour::Echo, 30),
    (Behaviour::EchoThenDrop, 10),
    (Behaviour::AbortMidFrame, 8),
    (Behaviour::Slowloris, 5),
    (Behaviour::PartialHeadDrop, 5),
    (Behaviour::Garbage, 5),
    (Behaviour::PlainHttp, 3),
    (Behaviour::Unauthorized, 3),
    (Behaviour::Violation, 10),
    (Behaviour::Vanish, 8),
    (Behaviour::Oversize, 5),
    (Behaviour::Subscriber, 5),
    (Behaviour::StalledSubscriber, 3),
    (Behaviour::Idle, 2),
];

/// SplitMix64: enough randomness for choosing behaviours and sizes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    fn pick(&mut self) -> Behaviour {
        let total: u64 = WEIGHTS.iter().map(|w| w.1).sum();
        let mut x = self.below(total);
        for &(b, w) in WEIGHTS {
            if x < w {
                return b;
            }
            x -= w;
        }
        Behaviour::Echo
    }
}

/// `Ok(label)`: an expected result; `Err(what)`: an unexpected one.
type Outcome = Result<String, String>;

#[derive(Default)]
struct Tally {
    outcomes: Mutex<BTreeMap<(Behaviour, String), u64>>,
    unexpected: Mutex<BTreeMap<(Behaviour, String), u64>>,
    messages_echoed: AtomicU64,
    bytes_echoed: AtomicU64,
    broadcasts_verified: AtomicU64,
    /// Close codes clients received from the server.
    client_close_codes: Mutex<BTreeMap<u16, u64>>,
    /// How the server's connection handlers saw their connections end.
    server_ends: Mutex<BTreeMap<String, u64>>,
}

fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K) {
    *map.lock().unwrap().entry(key).or_default() += 1;
}

impl Tally {
    fn record(&self, b: Behaviour, outcome: Outcome) {
        match outcome {
            Ok(label) => bump(&self.outcomes, (b, label)),
            Err(what) => {
                eprintln!("soak: UNEXPECTED {b:?}: {what}");
                bump(&self.unexpected, (b, what));
            }
        }
    }
    fn close_code(&self, code: CloseCode) {
        bump(&self.client_close_codes, code.0);
    }
}

struct Env {
    addr: SocketAddr,
    tally: Tally,
    deadline: Instant,
    /// Set just before the shutdown: long-lived clients expect the 1001.
    shutting_down: AtomicBool,
}

// ---------------------------------------------------------------- server

fn server_config(max_connections: usize) -> ServerConfig {
    ServerConfig::default()
        .limits(
            wsx::Config::builder()
                .max_frame_size(MAX_MESSAGE)
                .max_message_size(MAX_MESSAGE)
                .ping_interval(Some(PING_INTERVAL))
                .pong_timeout(PONG_TIMEOUT)
                .close_timeout(CLOSE_TIMEOUT)
                .idle_timeout(Some(IDLE_TIMEOUT))
                .build()
                .expect("valid soak config"),
        )
        .handshake_timeout(HANDSHAKE_TIMEOUT)
        .max_connections(Some(max_connections))
        .shutdown_timeout(SHUTDOWN_TIMEOUT)
}

fn end_label(r: &wsx::Result<Option<Message>>, ws_code: Option<CloseCode>) -> String {
    match r {
        Ok(_) => format!("clean close {}", ws_code.map_or(0, |c| c.0)),
        Err(e) => {
            let kind = if e.is_protocol() {
                "protocol error"
            } else if e.is_timeout() {
                "timeout"
            } else if e.is_closed() {
                "abnormal"
            } else if e.is_io() {
                "i/o error"
            } else {
                "other error"
            };
            format!("{kind} {}", e.close_code().map_or(0, |c| c.0))
        }
    }
}

async fn echo_handler(mut ws: WebSocket<wsx::ServerStream<TcpStream>>, env: Arc<Env>) {
    let end = loop {
        match ws.recv().await {
            Ok(Some(m @ (Message::Text(_) | Message::Binary(_)))) => {
                if let Err(e) = ws.send(m).await {
                    // The peer vanished mid-echo; read on to its end.
                    let r = loop {
                        match ws.recv().await {
                            Ok(Some(_)) => {}
                            r => break r,
                        }
                    };
                    let label = end_label(&r, ws.close_info().map(|c| c.code));
                    break format!("send failed ({}), then {label}", short(&e));
                }
            }
            Ok(Some(_)) => {}
            r => break end_label(&r, ws.close_info().map(|c| c.code)),
        }
    };
    bump(&env.tally.server_ends, end);
}

async fn room_handler(ws: WebSocket<wsx::ServerStream<TcpStream>>, hub: Broadcast, env: Arc<Env>) {
    let (mut reader, writer) = ws.split();
    let sub = hub.subscribe(writer);
    let r = loop {
        match reader.recv().await {
            Ok(Some(_)) => {}
            r => break r,
        }
    };
    let code = reader.close_info().map(|c| c.code);
    drop(sub);
    bump(
        &env.tally.server_ends,
        format!("room: {}", end_label(&r, code)),
    );
}

fn short(e: &wsx::Error) -> String {
    let s = e.to_string();
    s.split(':').next().unwrap_or("").to_string()
}

/// Broadcasts a numbered message to the room every tick until cancelled.
async fn ticker(hub: Broadcast, stop: CancellationToken) -> u64 {
    let mut seq = 0u64;
    let mut tick = tokio::time::interval(BCAST_TICK);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return seq,
            _ = tick.tick() => {}
        }
        seq += 1;
        let _ = hub.send(Message::binary(broadcast_payload(seq))).await;
    }
}

fn broadcast_payload(seq: u64) -> Bytes {
    let mut v = Vec::with_capacity(BCAST_LEN);
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend((8..BCAST_LEN).map(|i| (seq as u8).wrapping_add(i as u8)));
    v.into()
}

/// The sequence number of a broadcast message, if it is intact.
fn check_broadcast(m: &Message) -> Option<u64> {
    let Message::Binary(b) = m else { return None };
    let seq = u64::from_be_bytes(b.get(..8)?.try_into().ok()?);
    (b.len() == BCAST_LEN && b[..] == broadcast_payload(seq)[..]).then_some(seq)
}

// ---------------------------------------------------------------- clients

/// A TCP connection to the server from 127.0.0.2-251 (spreads the
/// four-tuples so that TIME_WAIT does not exhaust ports).
async fn dial(env: &Env, rng: &mut Rng, small_rcvbuf: bool) -> Result<TcpStream, String> {
    let sock = TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
    if small_rcvbuf {
        sock.set_recv_buffer_size(4096)
            .map_err(|e| format!("SO_RCVBUF: {e}"))?;
    }
    let src = Ipv4Addr::new(127, 0, 0, 2 + rng.below(250) as u8);
    sock.bind(SocketAddr::new(src.into(), 0))
        .map_err(|e| format!("bind {src}: {e}"))?;
    let tcp = tokio::time::timeout(Duration::from_secs(5), sock.connect(env.addr))
        .await
        .map_err(|_| "TCP connect took over 5 s".to_string())?
        .map_err(|e| format!("connect: {e}"))?;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

/// `Ok(Err(status))`: the server answered the handshake with `status`.
async fn ws_connect(
    env: &Env,
    rng: &mut Rng,
    path: &str,
    small_rcvbuf: bool,
) -> Result<Result<WebSocket<TcpStream>, u16>, String> {
    let tcp = dial(env, rng, small_rcvbuf).await?;
    let req = ClientRequest::new(&format!("ws://{}{path}", env.addr)).map_err(|e| e.to_string())?;
    let config = ClientConfig::default().handshake_timeout(Duration::from_secs(5));
    match wsx::client::handshake(&req, tcp, &config).await {
        Ok((ws, _)) => Ok(Ok(ws)),
        Err(e) => match e.client_handshake() {
            Some(ClientHandshakeError::Rejected(r)) => Ok(Err(r.status.as_u16())),
            _ => Err(format!("handshake: {e}")),
        },
    }
}

/// Connects or returns from the behaviour: 503 is an expected answer
/// (`max_connections`), anything else but 101 is not.
macro_rules! connect_or_return {
    ($conn:expr) => {
        match $conn? {
            Ok(ws) => ws,
            Err(503) => return Ok("refused 503 (busy)".into()),
            Err(status) => return Err(format!("handshake answered {status}")),
        }
    };
}

/// The next text or binary message (pings and pongs are skipped; `recv`
/// answers them).
async fn recv_data(
    ws: &mut WebSocket<TcpStream>,
    within: Duration,
) -> Result<Option<Message>, String> {
    let until = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(until, ws.recv()).await {
            Err(_) => return Err(format!("nothing received within {within:?}")),
            Ok(Ok(Some(Message::Ping(_) | Message::Pong(_)))) => {}
            Ok(Ok(m)) => return Ok(m),
            Ok(Err(e)) => return Err(format!("recv: {e}")),
        }
    }
}

fn random_message(rng: &mut Rng) -> Message {
    let len = match rng.below(20) {
        0 => rng.below(MAX_MESSAGE as u64 - 4096) as usize,
        1..=5 => rng.below(8192) as usize,
        _ => rng.below(256) as usize,
    };
    if rng.one_in(2) {
        const CHARS: &[char] = &['a', 'z', ' ', '0', 'é', '✓', '𝄞', 'ß', '\n'];
        let mut s = String::with_capacity(len);
        while s.len() < len {
            s.push(CHARS[rng.below(CHARS.len() as u64) as usize]);
        }
        Message::text(s)
    } else {
        Message::binary(rng.bytes(len))
    }
}

/// Reads what is left on `ws` after our close frame and checks the close
/// handshake completed with `expect`.
async fn finish_close(
    env: &Env,
    ws: &mut WebSocket<TcpStream>,
    expect: CloseCode,
) -> Result<(), String> {
    match recv_data(ws, Duration::from_secs(5)).await? {
        None => {}
        Some(m) => return Err(format!("a message after close: {} bytes", m.len())),
    }
    let info = ws.close_info().ok_or("no close info after the end")?;
    env.tally.close_code(info.code);
    if info.code != expect || !info.is_clean() {
        return Err(format!(
            "close {:?} {:?}, expected clean {}",
            info.code, info.cause, expect.0
        ));
    }
    Ok(())
}

async fn echo(env: &Env, rng: &mut Rng, drop_at_end: bool) -> Outcome {
    let mut ws = connect_or_return!(ws_connect(env, rng, "/echo", false).await);
    let n = 1 + rng.below(if drop_at_end { 5 } else { 20 });
    for _ in 0..n {
        let msg = random_message(rng);
        ws.send(msg.clone())
            .await
            .map_err(|e| format!("send: {e}"))?;
        match recv_data(&mut ws, Duration::from_secs(5)).await? {
            Some(m) if m == msg => {
                env.tally.messages_echoed.fetch_add(1, Relaxed);
                env.tally.bytes_echoed.fetch_add(m.len() as u64, Relaxed);
            }
            Some(m) => {
                return Err(format!(
                    "echo differs: sent {} bytes, got {}",
                    msg.len(),
                    m.len()
                ))
            }
            None => return Err(format!("closed before the echo: {:?}", ws.close_info())),
        }
        if rng.one_in(4) {
            tokio::time::sleep(Duration::from_millis(rng.below(50))).await;
        }
    }
    if drop_at_end {
        if rng.one_in(2) {
            // Unechoed messages in flight as the socket goes.
            for _ in 0..rng.below(4) {
                let _ = ws.feed(random_message(rng)).await;
            }
            let _ = ws.flush().await;
        }
        return Ok("dropped without a close frame".into());
    }
    ws.close(Some(CloseFrame::new(CloseCode::NORMAL, "bye")))
        .await
        .map_err(|e| format!("close: {e}"))?;
    finish_close(env, &mut ws, CloseCode::NORMAL).await?;
    Ok("echoed, closed 1000".into())
}

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn frame(first: u8, payload: &[u8], mask: bool) -> Vec<u8> {
    let mut out = vec![first];
    let m = if mask { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(m | n as u8),
        n if n <= 0xffff => {
            out.push(m | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(m | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if mask {
        out.extend_from_slice(&KEY);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

fn request(env: &Env, path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        env.addr
    )
    .into_bytes()
}

/// Reads an HTTP response head; returns its status and the bytes after it.
async fn read_status(tcp: &mut TcpStream) -> Result<(u16, Vec<u8>), String> {
    let mut buf = Vec::new();
    let read = async {
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                return Ok(end + 4);
            }
            if buf.len() > 16 * 1024 {
                return Err("response head over 16 KiB".to_string());
            }
            match tcp.read_buf(&mut buf).await {
                Ok(0) => return Err(format!("EOF after {} bytes of response head", buf.len())),
                Ok(_) => {}
                Err(e) => return Err(format!("reading the response: {e}")),
            }
        }
    };
    let end = tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .map_err(|_| "no response head within 5 s".to_string())??;
    let head = String::from_utf8_lossy(&buf[..end]);
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP response: {:?}", head.lines().next()))?;
    Ok((status, buf.split_off(end)))
}

/// A raw client past the handshake, with the bytes read after the 101.
async fn raw_connect(
    env: &Env,
    rng: &mut Rng,
    path: &str,
) -> Result<Result<(TcpStream, Vec<u8>), u16>, String> {
    let mut tcp = dial(env, rng, false).await?;
    tcp.write_all(&request(env, path))
        .await
        .map_err(|e| format!("writing the request: {e}"))?;
    match read_status(&mut tcp).await? {
        (101, rest) => Ok(Ok((tcp, rest))),
        (status, _) => Ok(Err(status)),
    }
}

/// Vanish with an RST (SO_LINGER 0) or a plain close.
fn vanish(tcp: TcpStream, rst: bool) {
    if rst {
        let _ = tcp.set_zero_linger();
    }
    drop(tcp);
}

async fn abort_mid_frame(env: &Env, rng: &mut Rng) -> Outcome {
    let (mut tcp, _) = connect_or_return!(raw_connect(env, rng, "/echo").await);
    let len = 200 + rng.below(MAX_MESSAGE as u64 - 200) as usize;
    let f = frame(0x82, &rng.bytes(len), true);
    let cut = 1 + rng.below(f.len() as u64 - 1) as usize;
    tcp.write_all(&f[..cut])
        .await
        .map_err(|e| format!("write: {e}"))?;
    tokio::time::sleep(Duration::from_millis(rng.below(200))).await;
    let rst = rng.one_in(2);
    vanish(tcp, rst);
    Ok(format!(
        "cut mid-frame, {}",
        if rst { "RST" } else { "FIN" }
    ))
}

/// Reads until EOF (or reset); returns what was read and how it ended.
async fn read_to_end(
    tcp: &mut TcpStream,
    within: Duration,
) -> Result<(Vec<u8>, &'static str), String> {
    let mut buf = Vec::new();
    let r = tokio::time::timeout(within, async {
        loop {
            match tcp.read_buf(&mut buf).await {
                Ok(0) => return "EOF",
                Ok(_) => {}
                Err(_) => return "reset",
            }
        }
    })
    .await;
    match r {
        Ok(how) => Ok((buf, how)),
        Err(_) => Err(format!(
            "connection still open after {within:?} ({} bytes read)",
            buf.len()
        )),
    }
}

async fn slowloris(env: &Env, rng: &mut Rng) -> Outcome {
    let mut tcp = dial(env, rng, false).await?;
    let req = request(env, "/echo");
    let part = &req[..1 + rng.below(req.len() as u64 - 5) as usize];
    let started = Instant::now();
    let trickle = rng.one_in(2);
    let (got, how) = if trickle {
        // One byte every 200 ms: alive, but never done in time.
        let mut got = Vec::new();
        let mut how = "EOF";
        for b in part {
            if tcp.write_all(&[*b]).await.is_err() {
                how = "write failed";
                break;
            }
            tokio::select! {
                r = tcp.read_buf(&mut got) => { how = if r.is_ok() { "EOF" } else { "reset" }; break }
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
        if how == "EOF" && started.elapsed() < HANDSHAKE_TIMEOUT {
            let (more, h) =
                read_to_end(&mut tcp, HANDSHAKE_TIMEOUT + Duration::from_secs(3)).await?;
            got.extend(more);
            how = h;
        }
        (got, how)
    } else {
        tcp.write_all(part)
            .await
            .map_err(|e| format!("write: {e}"))?;
        read_to_end(&mut tcp, HANDSHAKE_TIMEOUT + Duration::from_secs(3)).await?
    };
    let took = started.elapsed();
    if got.starts_with(b"HTTP/1.1 503") {
        return Ok("refused 503 (busy)".into());
    }
    if !got.is_empty() {
        return Err(format!(
            "unexpected answer to a partial head: {:?}",
            String::from_utf8_lossy(&got[..got.len().min(40)])
        ));
    }
    if took + Duration::from_millis(50) < HANDSHAKE_TIMEOUT {
        return Err(format!(
            "cut after {took:?}, before the handshake timeout ({how})"
        ));
    }
    Ok(format!(
        "{} cut at the handshake timeout",
        if trickle { "trickle" } else { "stall" }
    ))
}

async fn partial_head_drop(env: &Env, rng: &mut Rng) -> Outcome {
    let mut tcp = dial(env, rng, false).await?;
    let req = request(env, "/echo");
    let part = &req[..rng.below(req.len() as u64 - 4) as usize];
    tcp.write_all(part)
        .await
        .map_err(|e| format!("write: {e}"))?;
    let rst = rng.one_in(2);
    vanish(tcp, rst);
    Ok(format!(
        "dropped mid-head, {}",
        if rst { "RST" } else { "FIN" }
    ))
}

/// Sends `bytes` and expects an HTTP answer with `status` (or 503).
async fn expect_http(env: &Env, rng: &mut Rng, bytes: &[u8], status: u16) -> Outcome {
    let mut tcp = dial(env, rng, false).await?;
    tcp.write_all(bytes)
        .await
        .map_err(|e| format!("write: {e}"))?;
    match read_status(&mut tcp).await? {
        (503, _) => Ok("refused 503 (busy)".into()),
        (s, _) if s == status => {
            read_to_end(&mut tcp, Duration::from_secs(3)).await?;
            Ok(format!("answered {s}"))
        }
        (s, _) => Err(format!("answered {s}, expected {status}")),
    }
}

async fn garbage(env: &Env, rng: &mut Rng) -> Outcome {
    let n = 1 + rng.below(2000) as usize;
    let mut bytes = rng.bytes(n);
    // Never a valid method or an empty line first.
    bytes[0] = 0x01;
    bytes.extend_from_slice(b"\r\n\r\n");
    expect_http(env, rng, &bytes, 400).await
}

#[derive(Clone, Copy)]
enum Violation {
    Unmasked,
    BadUtf8,
    ReservedOpcode,
    Rsv1,
    LongPing,
    FragmentedPing,
    BadCloseCode,
    NewMessageMidFragment,
}

impl Violation {
    const ALL: [Violation; 8] = [
        Violation::Unmasked,
        Violation::BadUtf8,
        Violation::ReservedOpcode,
        Violation::Rsv1,
        Violation::LongPing,
        Violation::FragmentedPing,
        Violation::BadCloseCode,
        Violation::NewMessageMidFragment,
    ];
    fn name(self) -> &'static str {
        match self {
            Violation::Unmasked => "unmasked frame",
            Violation::BadUtf8 => "bad UTF-8",
            Violation::ReservedOpcode => "reserved opcode",
            Violation::Rsv1 => "RSV1 without extension",
            Violation::LongPing => "126-byte ping",
            Violation::FragmentedPing => "fragmented ping",
            Violation::BadCloseCode => "close code 999",
            Violation::NewMessageMidFragment => "text mid-fragment",
        }
    }
    fn bytes(self) -> (Vec<u8>, u16) {
        match self {
            Violation::Unmasked => (frame(0x81, b"hello", false), 1002),
            Violation::BadUtf8 => (frame(0x81, b"ok \xff\xfe", true), 1007),
            Violation::ReservedOpcode => (frame(0x83, b"x", true), 1002),
            Violation::Rsv1 => (frame(0xC1, b"x", true), 1002),
            Violation::LongPing => (frame(0x89, &[7; 126], true), 1002),
            Violation::FragmentedPing => (frame(0x09, b"p", true), 1002),
            Violation::BadCloseCode => (frame(0x88, &999u16.to_be_bytes(), true), 1002),
            Violation::NewMessageMidFragment => {
                let mut v = frame(0x01, b"part", true);
                v.extend(frame(0x81, b"new", true));
                (v, 1002)
            }
        }
    }
}

/// Parses one server frame (unmasked) from `buf`: opcode, payload, length.
fn parse_frame(buf: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    let (&b0, &b1) = (buf.first()?, buf.get(1)?);
    let (len, at) = match b1 & 0x7f {
        126 => (
            u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let payload = buf.get(at..at + len)?;
    Some((b0 & 0x0f, payload.to_vec(), at + len))
}

async fn violation(env: &Env, rng: &mut Rng) -> Outcome {
    let (mut tcp, mut buf) = connect_or_return!(raw_connect(env, rng, "/echo").await);
    let v = Violation::ALL[rng.below(Violation::ALL.len() as u64) as usize];
    let (bytes, expect) = v.bytes();
    // Sometimes after a valid message, whose echo must come first.
    let echo_first = rng.one_in(2);
    let mut out = Vec::new();
    if echo_first {
        out.extend(frame(0x81, b"before", true));
    }
    out.extend(bytes);
    tcp.write_all(&out)
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut echoed = false;
    let code = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some((op, payload, used)) = parse_frame(&buf) {
                buf.drain(..used);
                match op {
                    0x8 if payload.len() >= 2 => {
                        return Ok(u16::from_be_bytes([payload[0], payload[1]]))
                    }
                    0x8 => return Err("close frame without a code".to_string()),
                    0x1 if payload == b"before" => echoed = true,
                    0x9 | 0xA => {}
                    _ => return Err(format!("unexpected frame opcode {op:#x}")),
                }
                continue;
            }
            match tcp.read_buf(&mut buf).await {
                Ok(0) => return Err("EOF without a close frame".to_string()),
                Ok(_) => {}
                Err(e) => return Err(format!("read: {e} (no close frame)")),
            }
        }
    })
    .await
    .map_err(|_| format!("{}: no close frame within 5 s", v.name()))?
    .map_err(|e| format!("{}: {e}", v.name()))?;
    env.tally.close_code(CloseCode(code));
    if code != expect {
        return Err(format!("{}: close {code}, expected {expect}", v.name()));
    }
    if echo_first && !echoed {
        return Err(format!(
            "{}: the message before it was not echoed",
            v.name()
        ));
    }
    // Answer the close (or not); the server must end the TCP connection.
    if rng.one_in(2) {
        let _ = tcp.write_all(&frame(0x88, &code.to_be_bytes(), true)).await;
    }
    read_to_end(&mut tcp, CLOSE_TIMEOUT + Duration::from_secs(3))
        .await
        .map_err(|e| format!("{}: {e}", v.name()))?;
    Ok(format!("{}: close {code}", v.name()))
}

async fn vanish_unread(env: &Env, rng: &mut Rng) -> Outcome {
    let small_rcvbuf = rng.one_in(2);
    let mut ws = connect_or_return!(ws_connect(env, rng, "/echo", small_rcvbuf).await);
    for _ in 0..1 + rng.below(50) {
        let n = rng.below(16 * 1024) as usize;
        let m = Message::binary(rng.bytes(n));
        if tokio::time::timeout(Duration::from_secs(1), ws.send(m))
            .await
            .is_err()
        {
            break; // backed up: both directions are full
        }
    }
    tokio::time::sleep(Duration::from_millis(rng.below(1500))).await;
    let _ = ws.get_ref().set_zero_linger();
    drop(ws);
    Ok("sent unread, vanished with RST".into())
}

async fn oversize(env: &Env, rng: &mut Rng) -> Outcome {
    let mut ws = connect_or_return!(ws_connect(env, rng, "/echo", false).await);
    let len = MAX_MESSAGE + 1 + rng.below(64 * 1024) as usize;
    let fragmented = rng.one_in(2);
    let sent = if fragmented {
        // Frames under the frame limit, a message over the message limit.
        let data = rng.bytes(len);
        let mut r = Ok(());
        for (i, chunk) in data.chunks(16 * 1024).enumerate() {
            let last = (i + 1) * 16 * 1024 >= len;
            let f = wsx::Fragment {
                kind: wsx::DataKind::Binary,
                first: i == 0,
                fin: last,
                data: Bytes::copy_from_slice(chunk),
            };
            r = ws.send_fragment(f).await;
            if r.is_err() {
                break;
            }
        }
        r
    } else {
        ws.send(Message::binary(rng.bytes(len))).await
    };
    let r = match sent {
        Ok(()) => recv_data(&mut ws, Duration::from_secs(5)).await,
        Err(e) => Err(format!("send: {e}")),
    };
    let code = match (&r, ws.close_info()) {
        (Ok(None), Some(info)) => info.code,
        _ => {
            return Err(format!(
                "oversize ({len} bytes, fragmented: {fragmented}): {r:?}, close {:?}",
                ws.close_info()
            ))
        }
    };
    env.tally.close_code(code);
    if code != CloseCode::MESSAGE_TOO_BIG {
        return Err(format!("oversize: close {}, expected 1009", code.0));
    }
    Ok(format!(
        "close 1009 ({})",
        if fragmented { "fragments" } else { "one frame" }
    ))
}

async fn subscriber(env: &Env, rng: &mut Rng) -> Outcome {
    let mut ws = connect_or_return!(ws_connect(env, rng, "/room", false).await);
    let want = 3 + rng.below(20);
    let mut last = 0;
    for _ in 0..want {
        match recv_data(&mut ws, Duration::from_secs(3)).await? {
            Some(m) => match check_broadcast(&m) {
                Some(seq) if seq > last => {
                    last = seq;
                    env.tally.broadcasts_verified.fetch_add(1, Relaxed);
                }
                Some(seq) => return Err(format!("broadcast {seq} after {last}: out of order")),
                None => return Err(format!("corrupt broadcast of {} bytes", m.len())),
            },
            None => return Err(format!("room closed early: {:?}", ws.close_info())),
        }
    }
    ws.close(Some(CloseFrame::new(CloseCode::NORMAL, "bye")))
        .await
        .map_err(|e| format!("close: {e}"))?;
    // Broadcasts queued before our close may still arrive: skip them.
    let until = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(until, ws.recv()).await {
            Ok(Ok(Some(_))) => {}
            Ok(Ok(None)) => break,
            Ok(Err(e)) => return Err(format!("closing: {e}")),
            Err(_) => return Err("close not answered within 5 s".into()),
        }
    }
    let info = ws.close_info().ok_or("no close info")?;
    env.tally.close_code(info.code);
    if info.code != CloseCode::NORMAL {
        return Err(format!("room closed {}, expected 1000", info.code.0));
    }
    Ok("read broadcasts, closed 1000".into())
}

async fn stalled_subscriber(env: &Env, rng: &mut Rng) -> Outcome {
    let ws = connect_or_return!(ws_connect(env, rng, "/room", true).await);
    tokio::time::sleep(Duration::from_millis(1000 + rng.below(3000))).await;
    let rst = rng.one_in(2);
    if rst {
        let _ = ws.get_ref().set_zero_linger();
    }
    drop(ws);
    Ok(format!(
        "never read, vanished ({})",
        if rst { "RST" } else { "FIN" }
    ))
}

async fn idle(env: &Env, rng: &mut Rng) -> Outcome {
    let mut ws = connect_or_return!(ws_connect(env, rng, "/echo", false).await);
    let started = Instant::now();
    match recv_data(&mut ws, IDLE_TIMEOUT + Duration::from_secs(3)).await? {
        None => {}
        Some(m) => return Err(format!("idle client got a {}-byte message", m.len())),
    }
    let took = started.elapsed();
    let info = ws.close_info().ok_or("no close info")?;
    env.tally.close_code(info.code);
    if info.code != CloseCode::GOING_AWAY || !info.is_clean() {
        return Err(format!(
            "idle: close {:?} {:?}, expected clean 1001",
            info.code, info.cause
        ));
    }
    if took + Duration::from_millis(100) < IDLE_TIMEOUT {
        return Err(format!(
            "idle close after {took:?}, before the idle timeout"
        ));
    }
    Ok("closed 1001 by the idle timeout".into())
}

async fn long_lived(env: Arc<Env>, seed: u64) -> Outcome {
    let mut rng = Rng(seed);
    let mut ws = loop {
        match ws_connect(&env, &mut rng, "/echo", false).await? {
            Ok(ws) => break ws,
            Err(503) => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(s) => return Err(format!("handshake answered {s}")),
        }
    };
    let mut i = 0u64;
    let end = loop {
        i += 1;
        let msg = Message::text(format!("long-lived {i}"));
        if let Err(e) = ws.send(msg.clone()).await {
            break Err(format!("send: {e}"));
        }
        match recv_data(&mut ws, Duration::from_secs(5)).await {
            Ok(Some(m)) if m == msg => {
                env.tally.messages_echoed.fetch_add(1, Relaxed);
                env.tally.bytes_echoed.fetch_add(m.len() as u64, Relaxed);
            }
            Ok(Some(m)) => return Err(format!("echo differs: {m:?}")),
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    if !env.shutting_down.load(Relaxed) {
        return Err(format!(
            "ended before the shutdown: {end:?}, {:?}",
            ws.close_info()
        ));
    }
    if end.is_err() {
        // The 1001 arrived while sending: read the rest of the close.
        recv_data(&mut ws, Duration::from_secs(5)).await?;
    }
    let info = ws.close_info().ok_or("no close info")?;
    env.tally.close_code(info.code);
    if info.code != CloseCode::GOING_AWAY || !info.is_clean() {
        return Err(format!(
            "shutdown: close {:?} {:?}, expected clean 1001",
            info.code, info.cause
        ));
    }
    Ok("closed 1001 by the shutdown".into())
}

async fn session(b: Behaviour, env: &Env, rng: &mut Rng) -> Outcome {
    match b {
        Behaviour::Echo => echo(env, rng, false).await,
        Behaviour::EchoThenDrop => echo(env, rng, true).await,
        Behaviour::AbortMidFrame => abort_mid_frame(env, rng).await,
        Behaviour::Slowloris => slowloris(env, rng).await,
        Behaviour::PartialHeadDrop => partial_head_drop(env, rng).await,
        Behaviour::Garbage => garbage(env, rng).await,
        Behaviour::PlainHttp => {
            let req = format!("GET / HTTP/1.1\r\nHost: {}\r\n\r\n", env.addr);
            expect_http(env, rng, req.as_bytes(), 426).await
        }
        Behaviour::Unauthorized => {
            let req = request(env, "/denied");
            expect_http(env, rng, &req, 401).await
        }
        Behaviour::Violation => violation(env, rng).await,
        Behaviour::Vanish => vanish_unread(env, rng).await,
        Behaviour::Oversize => oversize(env, rng).await,
        Behaviour::Subscriber => subscriber(env, rng).await,
        Behaviour::StalledSubscriber => stalled_subscriber(env, rng).await,
        Behaviour::Idle => idle(env, rng).await,
        Behaviour::LongLived => Err("not a worker behaviour".into()),
    }
}

async fn worker(env: Arc<Env>, seed: u64) {
    let mut rng = Rng(seed);
    while Instant::now() < env.deadline {
        let b = rng.pick();
        let outcome = tokio::time::timeout(SESSION_LIMIT, session(b, &env, &mut rng))
            .await
            .unwrap_or_else(|_| Err(format!("session still running after {SESSION_LIMIT:?}")));
        // After a 503, back off as its Retry-After asks (briefly): a busy
        // loop of refusals would crowd out every other behaviour.
        let busy = matches!(&outcome, Ok(label) if label.starts_with("refused 503"));
        env.tally.record(b, outcome);
        let pause = if busy {
            50 + rng.below(200)
        } else {
            rng.below(10)
        };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
}

// ---------------------------------------------------------------- checks

fn count_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// What a run found.
pub struct Report {
    opts: Options,
    elapsed: Duration,
    tally: Tally,
    accepted: u64,
    refused_busy: u64,
    failed_handshakes: u64,
    server_panicked: u64,
    active_after: usize,
    panics: u64,
    broadcasts_sent: u64,
    peak_rss_kib: u64,
    fds: (usize, usize),
    tasks: (usize, usize),
    settle: Duration,
    failures: Vec<String>,
}

impl Report {
    /// Whether every check held.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// The failed checks.
    pub fn failures(&self) -> &[String] {
        &self.failures
    }
}

/// Runs the scenario on a fresh multi-thread runtime.
pub fn run(opts: &Options) -> Report {
    install_panic_hook();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(scenario(opts.clone()))
}

async fn scenario(opts: Options) -> Report {
    let panics_before = PANICS.load(Relaxed);
    let started = Instant::now();
    let mut failures = Vec::new();
    // Baselines, with the runtime up and nothing else.
    let fd_base = count_fds();
    let metrics = tokio::runtime::Handle::current().metrics();
    let task_base = metrics.num_alive_tasks();

    let server = Server::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0")
        .with_config(server_config(opts.max_connections));
    let addr = server.local_addr().expect("local addr");
    let handle = server.handle();
    let env = Arc::new(Env {
        addr,
        tally: Tally::default(),
        deadline: Instant::now() + Duration::from_secs(opts.secs),
        shutting_down: AtomicBool::new(false),
    });
    let hub = Broadcast::new(
        BroadcastConfig::default()
            .max_queue_bytes(256 * 1024)
            .policy(SlowConsumer::Close {
                code: CloseCode::TRY_AGAIN_LATER,
                after: Duration::from_secs(1),
            }),
    );
    let stop_ticker = CancellationToken::new();
    let ticker = tokio::spawn(ticker(hub.clone(), stop_ticker.clone()));
    let serve = {
        let (env, hub) = (env.clone(), hub.clone());
        tokio::spawn(server.serve_with(
            |up| match up.path() {
                "/denied" => Err(HandshakeError::rejected(
                    http::StatusCode::UNAUTHORIZED,
                    "soak: this path is refused",
                )),
                _ => Ok(()),
            },
            move |ws, accepted: Accepted<()>| {
                let (env, hub) = (env.clone(), hub.clone());
                async move {
                    if accepted.uri.path() == "/room" {
                        room_handler(ws, hub, env).await;
                    } else {
                        echo_handler(ws, env).await;
                    }
                }
            },
        ))
    };
    drop(hub);

    let long: Vec<_> = (0..LONG_LIVED)
        .map(|i| tokio::spawn(long_lived(env.clone(), opts.seed ^ (0xA5A5 + i as u64))))
        .collect();
    let workers: Vec<_> = (0..opts.clients)
        .map(|i| {
            let seed = opts
                .seed
                .wrapping_add((i as u64 + 1).wrapping_mul(0x9E37_79B9));
            tokio::spawn(worker(env.clone(), seed))
        })
        .collect();

    // Progress every 10 s.
    let progress = {
        let (env, handle) = (env.clone(), handle.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(10));
            tick.tick().await;
            loop {
                tick.tick().await;
                let done: u64 = env.tally.outcomes.lock().unwrap().values().sum();
                let bad: u64 = env.tally.unexpected.lock().unwrap().values().sum();
                eprintln!(
                    "soak: {:>4} s  sessions {done}  unexpected {bad}  active {}  accepted {}  busy {}  failed handshakes {}  fds {}  tasks {}",
                    started.elapsed().as_secs(),
                    handle.active_connections(),
                    handle.accepted(),
                    handle.refused_busy(),
                    handle.failed_handshakes(),
                    count_fds(),
                    tokio::runtime::Handle::current().metrics().num_alive_tasks(),
                );
            }
        })
    };

    // Workers stop starting sessions at the deadline; each session is
    // bounded by SESSION_LIMIT.
    let wait = Duration::from_secs(opts.secs) + SESSION_LIMIT + Duration::from_secs(5);
    let until = tokio::time::Instant::now() + wait;
    for w in workers {
        let abort = w.abort_handle();
        match tokio::time::timeout_at(until, w).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(format!("a client worker failed: {e}")),
            Err(_) => {
                abort.abort();
                failures.push("a client worker hung past its deadline".into());
            }
        }
    }
    progress.abort();
    let _ = progress.await;

    // Graceful shutdown with the long-lived clients still connected.
    let active_at_shutdown = handle.active_connections();
    env.shutting_down.store(true, Relaxed);
    handle.shutdown();
    match tokio::time::timeout(SHUTDOWN_TIMEOUT + Duration::from_secs(5), serve).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => failures.push(format!("serve returned an error: {e}")),
        Ok(Err(e)) => failures.push(format!("the serve task failed: {e}")),
        Err(_) => failures.push(format!(
            "serve did not return within {:?} of shutdown()",
            SHUTDOWN_TIMEOUT + Duration::from_secs(5)
        )),
    }
    for l in long {
        let outcome = match tokio::time::timeout(Duration::from_secs(10), l).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(e)) => Err(format!("task failed: {e}")),
            Err(_) => Err("still running 10 s after the shutdown".into()),
        };
        env.tally.record(Behaviour::LongLived, outcome);
    }
    stop_ticker.cancel();
    let broadcasts_sent = ticker.await.unwrap_or(0);
    let active_after = handle.active_connections();

    // Let the last tasks (broadcast writers) and sockets go.
    let settle_start = Instant::now();
    let (mut fds, mut tasks);
    loop {
        fds = count_fds();
        tasks = metrics.num_alive_tasks();
        if (fds <= fd_base + FD_SLACK && tasks <= task_base + TASK_SLACK)
            || settle_start.elapsed() >= SETTLE
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let settle = settle_start.elapsed();

    let panics = PANICS.load(Relaxed) - panics_before;
    if panics > 0 {
        failures.push(format!("{panics} panic(s) in the process"));
    }
    if handle.panicked() > 0 {
        failures.push(format!(
            "{} connection handler(s) panicked",
            handle.panicked()
        ));
    }
    if active_after != 0 {
        failures.push(format!(
            "{active_after} connection(s) still counted active after serve returned"
        ));
    }
    if tasks > task_base + TASK_SLACK {
        failures.push(format!(
            "{tasks} tasks alive {settle:?} after the end, baseline {task_base} (+{TASK_SLACK} allowed)"
        ));
    }
    if fds > fd_base + FD_SLACK {
        failures.push(format!(
            "{fds} file descriptors open {settle:?} after the end, baseline {fd_base} (+{FD_SLACK} allowed)"
        ));
    }
    let unexpected: u64 = env.tally.unexpected.lock().unwrap().values().sum();
    if unexpected > 0 {
        failures.push(format!(
            "{unexpected} client session(s) saw an unexpected result"
        ));
    }
    let handler_ends: u64 = env.tally.server_ends.lock().unwrap().values().sum();
    if handler_ends != handle.accepted() {
        failures.push(format!(
            "{} connections accepted but {handler_ends} handlers returned",
            handle.accepted()
        ));
    }
    if handle.accepted() == 0 {
        failures.push("no connection was accepted at all".into());
    }
    if active_at_shutdown < LONG_LIVED {
        failures.push(format!(
            "only {active_at_shutdown} connections open at the shutdown; the {LONG_LIVED} long-lived clients should be"
        ));
    }

    let env = Arc::try_unwrap(env).ok().expect("every client task joined");
    Report {
        opts,
        elapsed: started.elapsed(),
        tally: env.tally,
        accepted: handle.accepted(),
        refused_busy: handle.refused_busy(),
        failed_handshakes: handle.failed_handshakes(),
        server_panicked: handle.panicked(),
        active_after,
        panics,
        broadcasts_sent,
        peak_rss_kib: peak_rss_kib(),
        fds: (fd_base, fds),
        tasks: (task_base, tasks),
        settle,
        failures,
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.tally;
        writeln!(
            f,
            "\nwsx soak: {} s of clients ({} workers + {LONG_LIVED} long-lived, max_connections {}, seed {}), {:.1} s in all",
            self.opts.secs,
            self.opts.clients,
            self.opts.max_connections,
            self.opts.seed,
            self.elapsed.as_secs_f64()
        )?;
        writeln!(
            f,
            "\n{:<20} {:<44} {:>9}",
            "behaviour", "outcome", "sessions"
        )?;
        let outcomes = t.outcomes.lock().unwrap();
        let total: u64 = outcomes.values().sum();
        for ((b, label), n) in outcomes.iter() {
            writeln!(f, "{:<20} {:<44} {n:>9}", format!("{b:?}"), label)?;
        }
        let unexpected = t.unexpected.lock().unwrap();
        for ((b, what), n) in unexpected.iter() {
            writeln!(f, "{:<20} UNEXPECTED {:<33} {n:>9}", format!("{b:?}"), what)?;
        }
        writeln!(f, "{:<65} {total:>9}", "sessions with the expected result")?;
        writeln!(
            f,
            "{:<65} {:>9}",
            "sessions with an unexpected result",
            unexpected.values().sum::<u64>()
        )?;
        writeln!(f, "\nclose codes clients received:")?;
        for (code, n) in t.client_close_codes.lock().unwrap().iter() {
            writeln!(f, "  {code:<63} {n:>9}")?;
        }
        writeln!(f, "how the server's handlers saw connections end:")?;
        for (how, n) in t.server_ends.lock().unwrap().iter() {
            writeln!(f, "  {how:<63} {n:>9}")?;
        }
        let rows: [(&str, String); 15] = [
            (
                "messages echoed (verified)",
                t.messages_echoed.load(Relaxed).to_string(),
            ),
            ("bytes echoed", t.bytes_echoed.load(Relaxed).to_string()),
            (
                "broadcasts sent / verified by subscribers",
                format!(
                    "{} / {}",
                    self.broadcasts_sent,
                    t.broadcasts_verified.load(Relaxed)
                ),
            ),
            ("server: accepted (101)", self.accepted.to_string()),
            (
                "server: handlers that returned",
                t.server_ends
                    .lock()
                    .unwrap()
                    .values()
                    .sum::<u64>()
                    .to_string(),
            ),
            ("server: refused busy (503)", self.refused_busy.to_string()),
            (
                "server: failed handshakes",
                self.failed_handshakes.to_string(),
            ),
            ("server: handler panics", self.server_panicked.to_string()),
            (
                "server: active connections after serve returned",
                self.active_after.to_string(),
            ),
            ("panics in the process (hook)", self.panics.to_string()),
            ("peak RSS (VmHWM)", format!("{} KiB", self.peak_rss_kib)),
            (
                "file descriptors: baseline / end",
                format!("{} / {}", self.fds.0, self.fds.1),
            ),
            (
                "tokio tasks alive: baseline / end",
                format!("{} / {}", self.tasks.0, self.tasks.1),
            ),
            (
                "time to settle after serve returned",
                format!("{:?}", self.settle),
            ),
            (
                "result",
                if self.passed() {
                    "PASS".into()
                } else {
                    "FAIL".into()
                },
            ),
        ];
        writeln!(f)?;
        for (k, v) in rows {
            writeln!(f, "{k:<50} {v:>24}")?;
        }
        for failure in &self.failures {
            writeln!(f, "FAILED: {failure}")?;
        }
        Ok(())
    }
}
