//! One proxied connection: the client's handshake passed to the upstream
//! (same path and query, its headers except hop-by-hop ones, so both ends
//! negotiate with each other), the answer passed back, then every frame
//! relayed each way: shown, faults applied, re-masked toward the server.

use crate::event::{ConnEvent, Dir, FrameEvent};
use crate::faults::{Faults, Target};
use crate::{Event, ProxyConfig};
use bytes::BytesMut;
use rand_chacha::ChaCha12Rng;
use rand_core::{RngCore, SeedableRng};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use wsx_proto::relay::{FrameReader, Inflater};

/// Headers that belong to one hop (RFC 9110 §7.6.1), not passed on; the
/// upgrade itself is asked for again.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
];

/// The largest HTTP head accepted from the upstream.
const MAX_HEAD: usize = 64 << 10;

pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// What both pumps of a connection share.
pub(crate) struct Shared {
    pub(crate) conn: u64,
    pub(crate) opened: Instant,
    pub(crate) events: mpsc::Sender<Event>,
    pub(crate) faults: Faults,
    /// Frames are reported (not `--quiet` without a recording).
    pub(crate) report: bool,
    pub(crate) record_payloads: bool,
    /// Data messages that went through, per direction (up, down).
    pub(crate) messages: [AtomicU64; 2],
    /// Data frames, per direction (for `corrupt`).
    pub(crate) data_frames: [AtomicU64; 2],
    /// Set when a fault ends the connection: the other pump stops too.
    pub(crate) stop: wsx::server::CancellationToken,
    /// `--close-after`: the close frame both sides get.
    pub(crate) close_with: std::sync::Mutex<Option<(u16, String)>>,
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Shared {
    pub(crate) fn t(&self) -> f64 {
        self.opened.elapsed().as_secs_f64()
    }

    pub(crate) async fn conn_event(
        &self,
        event: &'static str,
        detail: String,
        protocol: Option<String>,
        extensions: Option<String>,
    ) {
        let e = ConnEvent {
            conn: self.conn,
            event,
            t: self.t(),
            ts: unix_now(),
            detail,
            protocol,
            extensions,
        };
        let _ = self.events.send(Event::Conn(e)).await;
    }
}

/// Runs one client connection through to the upstream.
pub(crate) async fn handle(
    conn: u64,
    client: TcpStream,
    config: Arc<ProxyConfig>,
    events: mpsc::Sender<Event>,
) {
    let opened = Instant::now();
    let shared = Arc::new(Shared {
        conn,
        opened,
        events,
        faults: config.faults.clone(),
        report: config.report_frames,
        record_payloads: config.record_payloads,
        messages: Default::default(),
        data_frames: Default::default(),
        stop: Default::default(),
        close_with: Default::default(),
    });
    let client: Box<dyn Io> = match &config.tls {
        None => Box::new(client),
        Some(tls) => {
            let accept = tokio_rustls::TlsAcceptor::from(tls.clone()).accept(client);
            match tokio::time::timeout(Duration::from_secs(10), accept).await {
                Ok(Ok(s)) => Box::new(s),
                Ok(Err(e)) => {
                    let why = format!(
                        "TLS handshake with the client failed: {e} (a client that does not trust the proxy's CA refuses its certificate: see the start-up message)"
                    );
                    shared.conn_event("end", why, None, None).await;
                    return;
                }
                Err(_) => {
                    shared
                        .conn_event(
                            "end",
                            "no TLS handshake from the client within 10 s".into(),
                            None,
                            None,
                        )
                        .await;
                    return;
                }
            }
        }
    };
    if let Err(why) = run(client, &config, &shared).await {
        shared.conn_event("end", why, None, None).await;
    }
}

async fn run(
    client: Box<dyn Io>,
    config: &ProxyConfig,
    shared: &Arc<Shared>,
) -> Result<(), String> {
    // Origins are the upstream's to judge (the request goes on with its
    // Origin header); by message, the proxy's own handshake lets any.
    let mut server_config = wsx::ServerConfig::default();
    server_config.origin = wsx::server::OriginPolicy::allow_any();
    let incoming = wsx::server::read_request(client, &server_config)
        .await
        .map_err(|e| format!("no handshake from the client: {e}"))?;
    if config.by_message {
        if !incoming.is_upgrade() {
            return Err("not a WebSocket request".into());
        }
        return crate::messages::run(incoming, config, shared).await;
    }
    let (mut client, request, client_leftover) = incoming.into_parts();
    if !wsx_proto::handshake::is_upgrade_request(&request) {
        let body = "wsx proxy relays WebSocket connections only: connect with a WebSocket client\n";
        let _ = client
            .write_all(
                format!(
                    "HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            )
            .await;
        return Err(format!(
            "not a WebSocket request: {} {}",
            request.method(),
            request.uri()
        ));
    }
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let target = config.upstream.path_for(&path);
    let mut head = format!(
        "GET {target} HTTP/1.1\r\nHost: {}\r\n",
        config.upstream.authority
    );
    for (name, value) in request.headers() {
        if HOP_BY_HOP.contains(&name.as_str()) {
            continue;
        }
        head.push_str(name.as_str());
        head.push_str(": ");
        head.push_str(&String::from_utf8_lossy(value.as_bytes()));
        head.push_str("\r\n");
    }
    if config.faults.strip_upgrade {
        head.push_str("Connection: keep-alive\r\n\r\n");
    } else {
        head.push_str("Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
    }

    let mut upstream = config
        .upstream
        .connect()
        .await
        .map_err(|e| format!("cannot reach the upstream {}: {e}", config.upstream.url))?;
    upstream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| format!("upstream write: {e}"))?;
    let (response_head, up_leftover) = read_head(&mut upstream).await?;
    let (status, protocol, extensions) = parse_response(&response_head)?;
    // The answer goes back as it came: the client checks it against its
    // own key and offer, which the upstream answered.
    client
        .write_all(&response_head)
        .await
        .map_err(|e| format!("client write: {e}"))?;
    if status != 101 {
        // Pass the body on (bounded), then end.
        let _ = client.write_all(&up_leftover).await;
        let mut rest = (&mut upstream).take(1 << 20);
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::io::copy(&mut rest, &mut client),
        )
        .await;
        let _ = client.shutdown().await;
        shared
            .conn_event(
                "refused",
                format!("{path}: the upstream answered {status}, not 101"),
                None,
                None,
            )
            .await;
        return Ok(());
    }
    shared
        .conn_event("open", path.clone(), protocol, extensions.clone())
        .await;

    // Compressed messages are shown inflated, each way with its parameters.
    let params = extensions
        .as_deref()
        .and_then(|v| wsx_proto::handshake::parse_extensions(v).ok())
        .and_then(|offers| wsx_proto::deflate::response_params(&offers).ok().flatten());
    let inflaters = params.map(|p| {
        (
            Inflater::new(p, false, config.max_frame as usize),
            Inflater::new(p, true, config.max_frame as usize),
        )
    });
    let (inflate_up, inflate_down) = match inflaters {
        Some((u, d)) => (Some(u), Some(d)),
        None => (None, None),
    };

    let (client_r, client_w) = tokio::io::split(client);
    let (up_r, up_w) = tokio::io::split(upstream);
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| format!("no OS randomness for mask keys: {e}"))?;
    let up = pump(
        Dir::Up,
        client_r,
        client_leftover.to_vec(),
        up_w,
        Some(ChaCha12Rng::from_seed(seed)),
        inflate_up,
        config.max_frame,
        shared.clone(),
    );
    let down = pump(
        Dir::Down,
        up_r,
        up_leftover,
        client_w,
        None,
        inflate_down,
        config.max_frame,
        shared.clone(),
    );
    let timer = async {
        match shared.faults.drop_after_time {
            Some(d) => {
                tokio::time::sleep(d).await;
                Some(format!(
                    "dropped both connections after {d:?} (--drop-after-time)"
                ))
            }
            None => std::future::pending().await,
        }
    };
    tokio::pin!(up, down, timer);
    // The first pump to end decides how the connection ended; the other
    // gets a moment to pass on what is in flight (a close frame's answer).
    let (first, other_up) = tokio::select! {
        r = &mut up => (r, false),
        r = &mut down => (r, true),
        why = &mut timer => {
            shared.stop.cancel();
            (why.unwrap_or_default(), true)
        }
    };
    let rest = if shared.stop.is_cancelled() {
        None
    } else if other_up {
        tokio::time::timeout(Duration::from_secs(2), &mut up)
            .await
            .ok()
    } else {
        tokio::time::timeout(Duration::from_secs(2), &mut down)
            .await
            .ok()
    };
    let detail = match rest {
        Some(r) if !r.is_empty() => format!("{first}; {r}"),
        _ => first,
    };
    shared.conn_event("end", detail, None, None).await;
    Ok(())
}

/// Reads an HTTP head (to the blank line); the head and what followed it.
async fn read_head<S: AsyncRead + Unpin>(s: &mut S) -> Result<(Vec<u8>, Vec<u8>), String> {
    let mut buf = Vec::with_capacity(1024);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(i + 4);
            return Ok((buf, rest));
        }
        if buf.len() > MAX_HEAD {
            return Err(format!(
                "the upstream's response head passed {MAX_HEAD} bytes"
            ));
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, s.read(&mut chunk))
            .await
            .map_err(|_| "the upstream did not answer the handshake within 10 s".to_string())?
            .map_err(|e| format!("upstream read: {e}"))?;
        if n == 0 {
            return Err("the upstream closed the connection before answering the handshake".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Status, subprotocol and extensions of a response head.
fn parse_response(head: &[u8]) -> Result<(u16, Option<String>, Option<String>), String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut r = httparse::Response::new(&mut headers);
    r.parse(head)
        .map_err(|e| format!("the upstream's response is not HTTP: {e}"))?;
    let get = |name: &str| {
        r.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
    };
    Ok((
        r.code.unwrap_or(0),
        get("sec-websocket-protocol"),
        get("sec-websocket-extensions"),
    ))
}

/// One direction: frames read from `from` (after `leftover`), shown,
/// faulted, written to `to` (masked with `rng`'s keys toward a server).
/// Returns how it ended, in words.
#[allow(clippy::too_many_arguments)]
async fn pump<R, W>(
    dir: Dir,
    mut from: R,
    leftover: Vec<u8>,
    mut to: W,
    mut rng: Option<ChaCha12Rng>,
    mut inflater: Option<Inflater>,
    max_frame: u64,
    shared: Arc<Shared>,
) -> String
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let who = if dir == Dir::Up { "client" } else { "server" };
    let idx = usize::from(dir == Dir::Down);
    let faults = &shared.faults;
    let mut reader = FrameReader::new(max_frame);
    reader.feed(&leftover);
    let mut out = BytesMut::with_capacity(16 << 10);
    // The kind of the message in progress (a continuation's kind).
    let mut text_message = false;
    let mut jitter_rng = ChaCha12Rng::seed_from_u64(shared.conn);
    loop {
        let frame = match reader.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => {
                // What this burst produced goes out in one write.
                if let Err(e) = flush(&mut to, &mut out).await {
                    shared.stop.cancel();
                    return format!(
                        "writing to the {} failed: {e}",
                        if dir == Dir::Up { "server" } else { "client" }
                    );
                }
                if reader.buffer_mut().capacity() - reader.buffered() < 4096 {
                    reader.buffer_mut().reserve(16 << 10);
                }
                tokio::select! {
                    r = from.read_buf(reader.buffer_mut()) => match r {
                        Ok(0) => {
                            let _ = to.shutdown().await;
                            return format!("the {who} closed its TCP connection");
                        }
                        Ok(_) => continue,
                        Err(e) => {
                            let _ = to.shutdown().await;
                            return format!("the {who}'s connection failed: {e}");
                        }
                    },
                    () = shared.stop.cancelled() => {
                        send_close(&shared, &mut rng, &mut to).await;
                        return String::new();
                    }
                }
            }
            Err(e) => {
                shared.stop.cancel();
                return format!("the {who} sent a frame the proxy cannot pass on: {e}");
            }
        };
        let op = frame.header.opcode;
        let data = !op.is_control();
        if op == wsx_proto::frame::OpCode::TEXT {
            text_message = true;
        } else if op == wsx_proto::frame::OpCode::BINARY {
            text_message = false;
        }
        // Nothing is built for a frame no one looks at (--quiet).
        let mut event = shared
            .report
            .then(|| FrameEvent::new(shared.conn, dir, shared.t(), &frame, text_message));
        if let Some(e) = event.as_mut() {
            if shared.record_payloads {
                e.set_payload(&frame);
            }
            if let Some(inf) = inflater.as_mut() {
                if let Some(result) = inf.frame(&frame.header, &frame.payload) {
                    e.set_inflated(result, text_message);
                }
            }
        }
        let mut frame = frame;
        let mut drop_frame = false;
        let mut notes = Vec::new();
        if let Some(t) = faults.no_pong {
            if t.covers(dir)
                && (op == wsx_proto::frame::OpCode::PING || op == wsx_proto::frame::OpCode::PONG)
            {
                drop_frame = true;
                notes.push("dropped (--no-pong)".to_string());
            }
        }
        if data {
            let n = shared.data_frames[idx].fetch_add(1, Ordering::Relaxed) + 1;
            if let Some((nth, t)) = faults.corrupt {
                if t.covers(dir) && n == nth {
                    let mut p = frame.payload.to_vec();
                    if let Some(b) = p.first_mut() {
                        *b ^= 0x80;
                    } else {
                        frame.header.rsv |= 0x10;
                    }
                    frame.payload = p.into();
                    notes.push("corrupted (--corrupt)".to_string());
                }
            }
        }
        if let Some((d, t)) = faults.delay {
            if t.covers(dir) && (!d.base.is_zero() || !d.jitter.is_zero()) {
                let extra = if d.jitter.is_zero() {
                    Duration::ZERO
                } else {
                    Duration::from_nanos(jitter_rng.next_u64() % d.jitter.as_nanos().max(1) as u64)
                };
                let wait = d.base + extra;
                notes.push(format!("delayed {}ms", wait.as_millis()));
                let _ = flush(&mut to, &mut out).await;
                tokio::time::sleep(wait).await;
            }
        }
        if let Some(mut e) = event {
            if !notes.is_empty() {
                e.fault = Some(notes.join(", "));
            }
            let _ = shared.events.send(crate::Event::Frame(e)).await;
        }
        if !drop_frame {
            let key = rng.as_mut().map(|r| {
                let mut k = [0u8; 4];
                r.fill_bytes(&mut k);
                k
            });
            let before = out.len();
            frame.encode(key, &mut out);
            let len = out.len() - before;
            let throttle = faults.throttle.filter(|(_, t)| t.covers(dir));
            if throttle.is_some() || out.len() >= 64 << 10 {
                if let Err(e) = flush(&mut to, &mut out).await {
                    shared.stop.cancel();
                    return format!(
                        "writing to the {} failed: {e}",
                        if dir == Dir::Up { "server" } else { "client" }
                    );
                }
            }
            if let Some((rate, _)) = throttle {
                tokio::time::sleep(Duration::from_secs_f64(len as f64 / rate as f64)).await;
            }
        }
        if op == wsx_proto::frame::OpCode::CLOSE {
            // Its answer comes the other way; this side sends nothing more.
            continue;
        }
        if data && frame.header.fin {
            let m = shared.messages[idx].fetch_add(1, Ordering::Relaxed) + 1;
            let total = shared.messages[0].load(Ordering::Relaxed)
                + shared.messages[1].load(Ordering::Relaxed);
            if let Some((n, t)) = faults.drop_after_messages {
                let count = if t == Target::Both { total } else { m };
                if t.covers(dir) && count >= n {
                    let _ = flush(&mut to, &mut out).await;
                    shared.stop.cancel();
                    return format!("dropped both connections after {n} messages (--drop-after)");
                }
            }
            if let Some((n, code, reason, t)) = &faults.close_after {
                let count = if *t == Target::Both { total } else { m };
                if t.covers(dir) && count >= *n {
                    *shared.close_with.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some((*code, reason.clone()));
                    let _ = flush(&mut to, &mut out).await;
                    send_close(&shared, &mut rng, &mut to).await;
                    shared.stop.cancel();
                    return format!("closed both sides with {code} {reason:?} after {n} messages (--close-after)");
                }
            }
        }
    }
}

/// `--close-after`: a close frame toward `to` (masked toward a server),
/// shown like any other frame.
async fn send_close<W: AsyncWrite + Unpin>(
    shared: &Shared,
    rng: &mut Option<ChaCha12Rng>,
    to: &mut W,
) {
    let mut out = BytesMut::new();
    let Some((code, reason)) = shared
        .close_with
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
    else {
        return;
    };
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    let frame = wsx_proto::relay::RawFrame {
        header: wsx_proto::frame::FrameHeader {
            fin: true,
            rsv: 0,
            opcode: wsx_proto::frame::OpCode::CLOSE,
            mask: None,
            payload_len: payload.len() as u64,
        },
        payload: payload.into(),
        wire_len: 0,
    };
    let key = rng.as_mut().map(|r| {
        let mut k = [0u8; 4];
        r.fill_bytes(&mut k);
        k
    });
    frame.encode(key, &mut out);
    let dir = if key.is_some() { Dir::Up } else { Dir::Down };
    let mut event = FrameEvent::new(shared.conn, dir, shared.t(), &frame, false);
    event.wire = out.len();
    event.masked = key.is_some();
    event.fault = Some("sent by the proxy (--close-after)".into());
    let _ = shared.events.send(crate::Event::Frame(event)).await;
    let _ = to.write_all(&out).await;
    let _ = to.flush().await;
}

/// Writes what is pending in `out`.
async fn flush<W: AsyncWrite + Unpin>(to: &mut W, out: &mut BytesMut) -> std::io::Result<()> {
    if !out.is_empty() {
        to.write_all(out).await?;
        out.clear();
    }
    to.flush().await
}
