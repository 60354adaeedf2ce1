//! The wsx client in `scripts/interop`, against the echo servers of
//! `interop/python/peer.py` and `interop/node/peer.mjs` (Python `websockets`,
//! Node `ws`), with the default [`ClientConfig`] (permessage-deflate offered,
//! 16 MiB message limit). Prints one JSON report line; exit status 1 when
//! anything it checks failed.
//!
//! ```text
//! interop_client [--http2] BASE_URL SUITE BIG
//! ```
//!
//! `--http2`: every WebSocket is a stream of ONE HTTP/2 connection (RFC 8441,
//! extended CONNECT; h2c with prior knowledge for `ws://`, ALPN `h2` for
//! `wss://`), opened first; it fails, rather than falling back to HTTP/1.1,
//! when the server does not speak HTTP/2 or does not advertise
//! `SETTINGS_ENABLE_CONNECT_PROTOCOL`. Without it, a TCP connection and an
//! HTTP/1.1 upgrade per WebSocket. Either way the report says which HTTP
//! carried each socket (`sockets`: path and `http`, "2" or "1.1").
//!
//! SUITE and BIG (written by `interop/messages.py SUITE BIG`) are sequences of
//! records: one kind byte (`t` text, `b` binary), a 4-byte big-endian length,
//! the payload. One connection per step, each on its own path below BASE_URL
//! (which ends in `/`), so the peer server's per-connection reports can be
//! told apart:
//!
//! * `suite`: the SUITE messages, sent pipelined while the echoes are read
//!   (split halves), every echo compared byte for byte; a ping from here (the
//!   pong must carry its payload); `please ping PAYLOAD` asks the peer to
//!   ping us: its ping must arrive (wsx answers it) and the peer confirms the
//!   pong with a text `pong PAYLOAD`.
//! * `big`: the BIG messages (16 MiB binary and text, exactly the limit),
//!   echoes compared byte for byte.
//! * `oversize`: `please send oversize` asks the peer for one message of
//!   16 MiB + 1 byte; wsx must fail the connection with 1009 and deliver
//!   nothing. Reported: the close frame wsx sent, the end it saw, what it
//!   delivered and how long it took.
//! * `close/CASE`: one close path each ([`CASES`]): wsx closes with 1000, or
//!   4000 and a reason, or drops the TCP connection without a close frame; or
//!   asks the peer to (`please close CODE`, `please drop`). Reported: the
//!   code and reason wsx saw (1006 when the peer vanished).
//!
//! A peer that cannot carry out a request (an ASGI server cannot send a ping
//! or drop a connection without a close frame) answers it with a text
//! `cannot ping: WHY` or `cannot drop: WHY`. That is reported (`unsupported`,
//! with the peer's words), not counted as an error; after `cannot drop`, wsx
//! closes with 1000 to end the connection.

use std::cell::RefCell;
use std::future::Future;
use std::time::{Duration, Instant};
use wsx::{
    client::{ClientConfig, ClientRequest},
    http2::{Http2Config, Http2Connection},
    CloseCode, CloseFrame, MaybeTlsStream, Message, WebSocket, WsReader, WsWriter,
};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// A connection as split halves: the suite is sent while its echoes are read,
/// and the later steps of a connection go on with the same halves.
struct Ws {
    reader: WsReader<wsx::MaybeTlsStream>,
    writer: WsWriter<wsx::MaybeTlsStream>,
}

/// Who closes, and how: `(case, initiator, code, reason)`; no code: drop.
/// A peer-initiated 4001 carries the peer's own reason (it reports it).
const CASES: [(&str, &str, Option<u16>, &str); 6] = [
    ("wsx-1000", "wsx", Some(1000), ""),
    ("wsx-4000", "wsx", Some(4000), "bye from wsx"),
    ("wsx-drop", "wsx", None, ""),
    ("peer-1000", "peer", Some(1000), ""),
    ("peer-4001", "peer", Some(4001), ""),
    ("peer-drop", "peer", None, ""),
];
const PING: &[u8] = b"ping from wsx";
const PEER_PING: &str = "ping-from-the-peer";
const STEP: Duration = Duration::from_secs(30);
const SHORT: Duration = Duration::from_secs(10);

// ---- a little JSON ------------------------------------------------------------

enum J {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(&'static str, J)>),
}

impl std::fmt::Display for J {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            J::Null => f.write_str("null"),
            J::Bool(b) => write!(f, "{b}"),
            J::Num(n) => write!(f, "{n}"),
            J::Str(s) => {
                f.write_str("\"")?;
                for c in s.chars() {
                    match c {
                        '"' => f.write_str("\\\"")?,
                        '\\' => f.write_str("\\\\")?,
                        c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
                        c => write!(f, "{c}")?,
                    }
                }
                f.write_str("\"")
            }
            J::Arr(v) => {
                f.write_str("[")?;
                for (k, x) in v.iter().enumerate() {
                    write!(f, "{}{x}", if k > 0 { ", " } else { "" })?;
                }
                f.write_str("]")
            }
            J::Obj(v) => {
                f.write_str("{")?;
                for (k, (name, x)) in v.iter().enumerate() {
                    write!(f, "{}\"{name}\": {x}", if k > 0 { ", " } else { "" })?;
                }
                f.write_str("}")
            }
        }
    }
}

fn s(v: impl Into<String>) -> J {
    J::Str(v.into())
}

// ---- messages -------------------------------------------------------------------

fn parse_records(data: &[u8]) -> Result<Vec<Message>, String> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        if rest.len() < 5 {
            return Err("truncated record header".into());
        }
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let payload = rest
            .get(5..5 + len)
            .ok_or("truncated record payload")?
            .to_vec();
        out.push(match rest[0] {
            b't' => Message::text(String::from_utf8(payload).map_err(|e| e.to_string())?),
            b'b' => Message::binary(payload),
            k => return Err(format!("unknown record kind {k}")),
        });
        rest = &rest[5 + len..];
    }
    Ok(out)
}

fn payload(m: &Message) -> (&'static str, &[u8]) {
    match m {
        Message::Text(t) => ("text", t.as_str().as_bytes()),
        Message::Binary(b) => ("binary", b),
        Message::Ping(b) => ("ping", b),
        Message::Pong(b) => ("pong", b),
    }
}

/// Compares echoes with what was sent; appends the differences to `errors`.
fn compare(sent: &[Message], got: &[Message], what: &str, errors: &mut Vec<String>) {
    if got.len() != sent.len() {
        errors.push(format!(
            "{what}: {} echoes for {} messages",
            got.len(),
            sent.len()
        ));
    }
    for (k, (s, g)) in sent.iter().zip(got).enumerate() {
        let ((sk, sb), (gk, gb)) = (payload(s), payload(g));
        if sk != gk {
            errors.push(format!("{what} message {k}: sent {sk}, echo is {gk}"));
        } else if sb != gb {
            errors.push(format!(
                "{what} message {k}: echo differs ({} bytes, sent {})",
                gb.len(),
                sb.len()
            ));
        }
    }
}

async fn within<T>(
    limit: Duration,
    what: &str,
    f: impl Future<Output = Result<T, wsx::Error>>,
) -> Res<T> {
    match tokio::time::timeout(limit, f).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(format!("timed out after {limit:?}: {what}").into()),
    }
}

/// HTTP/1.1 (a connection per WebSocket), or streams of one HTTP/2
/// connection.
enum Dial {
    Http1,
    Http2(Http2Connection),
}

/// Where and how the WebSockets are opened, and which HTTP carried each.
struct Target {
    base: String,
    dial: Dial,
    config: ClientConfig,
    /// `{path, http}` per WebSocket opened, in order.
    sockets: RefCell<Vec<J>>,
}

impl Target {
    /// `--http2`: the HTTP/2 connection first; an error (no fallback) when
    /// the server does not speak HTTP/2 or does not advertise RFC 8441.
    async fn new(base: &str, http2: bool) -> Res<Target> {
        let mut config = ClientConfig::default();
        let dial = if http2 {
            config = config.http2(Some(Http2Config::default()));
            let h2 = Http2Connection::connect(base, &config).await?;
            if !h2.supports_websockets() {
                return Err(format!(
                    "{base}: the server speaks HTTP/2 but does not advertise RFC 8441 (SETTINGS_ENABLE_CONNECT_PROTOCOL)"
                )
                .into());
            }
            Dial::Http2(h2)
        } else {
            Dial::Http1
        };
        Ok(Target {
            base: base.to_string(),
            dial,
            config,
            sockets: RefCell::default(),
        })
    }

    async fn connect(
        &self,
        req: &ClientRequest,
    ) -> Result<(WebSocket<MaybeTlsStream>, wsx::client::Handshaken), wsx::Error> {
        match &self.dial {
            Dial::Http1 => wsx::client::connect_with(req, &self.config).await,
            Dial::Http2(h2) => h2.websocket(req, &self.config).await,
        }
    }
}

/// Connects to BASE_URL + `path`; returns the halves, the
/// Sec-WebSocket-Extensions answer and the permessage-deflate parameters.
/// Records which HTTP carried the socket; over `--http2`, one carried by
/// HTTP/1.1 is an error.
async fn open(t: &Target, path: &str) -> Res<(Ws, String, Option<String>)> {
    let req = ClientRequest::new(&format!("{}{path}", t.base))?;
    let (ws, hs) = t.connect(&req).await?;
    let http2 = ws.get_ref().is_http2();
    t.sockets.borrow_mut().push(J::Obj(vec![
        ("path", s(format!("/{path}"))),
        ("http", s(if http2 { "2" } else { "1.1" })),
    ]));
    if matches!(t.dial, Dial::Http2(_)) && !http2 {
        return Err(format!("/{path}: carried by HTTP/1.1, not by the HTTP/2 connection").into());
    }
    let header: Vec<&str> = hs
        .response
        .headers()
        .get_all("sec-websocket-extensions")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let deflate = ws.deflate().map(|d| format!("{:?}", d.params));
    let (reader, writer) = ws.split();
    Ok((Ws { reader, writer }, header.join(", "), deflate))
}

/// Sends `sent` pipelined and reads as many echoes.
async fn echo_all(ws: &mut Ws, sent: &[Message], what: &str) -> Res<Vec<Message>> {
    let Ws { reader, writer } = ws;
    let send = async {
        for m in sent {
            writer.feed(m.clone()).await?;
        }
        writer.flush().await
    };
    let recv = async {
        let mut got = Vec::with_capacity(sent.len());
        while got.len() < sent.len() {
            match reader.recv().await? {
                Some(m @ (Message::Text(_) | Message::Binary(_))) => got.push(m),
                Some(_) => {}
                None => break,
            }
        }
        Ok(got)
    };
    let ((), got) = within(STEP, what, async { tokio::try_join!(send, recv) }).await?;
    Ok(got)
}

/// Closes with 1000 and reads to the end.
async fn close_normally(ws: &mut Ws) -> Res<()> {
    ws.writer
        .close(Some(CloseFrame::new(CloseCode::NORMAL, "")))
        .await?;
    within(SHORT, "the close handshake", async {
        while ws.reader.recv().await?.is_some() {}
        Ok(())
    })
    .await
}

// ---- the steps --------------------------------------------------------------------

struct Report {
    fields: Vec<(&'static str, J)>,
    errors: Vec<String>,
}

async fn suite_step(t: &Target, sent: &[Message], r: &mut Report) -> Res<()> {
    let (mut ws, header, deflate) = open(t, "suite").await?;
    r.fields.push(("extensions", s(header)));
    if deflate.is_none() {
        r.errors.push("permessage-deflate not negotiated".into());
    }
    r.fields.push(("deflate", deflate.map_or(J::Null, s)));
    let got = echo_all(&mut ws, sent, "suite echoes").await?;
    compare(sent, &got, "suite", &mut r.errors);
    r.fields.push(("messages", J::Num(sent.len() as f64)));
    r.fields.push((
        "payload",
        J::Num(sent.iter().map(|m| m.len()).sum::<usize>() as f64),
    ));

    // Our ping: wait for the pong with its payload.
    let started = Instant::now();
    ws.writer.send(Message::Ping(PING.to_vec().into())).await?;
    let pong = within(SHORT, "the pong", async {
        loop {
            match ws.reader.recv().await? {
                Some(Message::Pong(p)) if p[..] == *PING => return Ok(true),
                Some(_) => {}
                None => return Ok(false),
            }
        }
    })
    .await;
    let pong = pong.unwrap_or_else(|e| {
        r.errors.push(format!("our ping: {e}"));
        false
    });
    let mut ping = vec![
        ("payload", s(String::from_utf8_lossy(PING))),
        ("pong", J::Bool(pong)),
    ];
    if pong {
        ping.push(("rtt_ms", J::Num(started.elapsed().as_secs_f64() * 1000.0)));
    } else {
        r.errors.push("no pong carrying our ping's payload".into());
    }
    r.fields.push(("ping", J::Obj(ping)));

    // The peer's ping: ask for it; wsx answers it by itself (recv reports it).
    ws.writer
        .send(Message::text(format!("please ping {PEER_PING}")))
        .await?;
    let (mut seen, mut confirmed) = (false, false);
    let mut unsupported = None;
    let confirmation = format!("pong {PEER_PING}");
    let waited = within(SHORT, "the peer's ping and its confirmation", async {
        while !confirmed {
            match ws.reader.recv().await? {
                Some(Message::Ping(p)) if p[..] == *PEER_PING.as_bytes() => seen = true,
                Some(Message::Text(t)) if t.as_str() == confirmation => confirmed = true,
                Some(Message::Text(t)) if t.as_str().starts_with("cannot ping") => {
                    unsupported = Some(t.as_str().to_string());
                    break;
                }
                Some(_) => {}
                None => break,
            }
        }
        Ok(())
    })
    .await;
    let mut peer_ping = vec![
        ("payload", s(PEER_PING)),
        ("seen", J::Bool(seen)),
        ("confirmed", J::Bool(confirmed)),
    ];
    if let Some(why) = unsupported {
        // The peer said it cannot ping: reported, not an error.
        peer_ping.push(("unsupported", s(why)));
    } else {
        if let Err(e) = waited {
            r.errors.push(format!("the peer's ping: {e}"));
        }
        if !seen {
            r.errors
                .push(format!("the peer's ping ({PEER_PING}) did not arrive"));
        }
        if !confirmed {
            r.errors
                .push("the peer did not confirm the pong to its ping".into());
        }
    }
    r.fields.push(("peer_ping", J::Obj(peer_ping)));
    close_normally(&mut ws).await
}

async fn big_step(t: &Target, sent: &[Message], r: &mut Report) -> Res<()> {
    let started = Instant::now();
    let (mut ws, _, _) = open(t, "big").await?;
    let got = echo_all(&mut ws, sent, "16 MiB echoes").await?;
    r.fields
        .push(("big_secs", J::Num(started.elapsed().as_secs_f64())));
    compare(sent, &got, "16 MiB", &mut r.errors);
    let entries = sent
        .iter()
        .enumerate()
        .map(|(k, m)| {
            let (kind, bytes) = payload(m);
            let ok = got.get(k).is_some_and(|g| payload(g) == (kind, bytes));
            J::Obj(vec![
                ("kind", s(kind)),
                ("bytes", J::Num(bytes.len() as f64)),
                ("echo_ok", J::Bool(ok)),
            ])
        })
        .collect();
    r.fields.push(("big", J::Arr(entries)));
    close_normally(&mut ws).await
}

/// Asks the peer for one message of 16 MiB + 1 byte (`please send
/// oversize`): with the default limit of 16 MiB, wsx must fail the
/// connection with 1009 and deliver nothing. Reports the close frame wsx
/// sent, the end it reported, the messages it delivered (none expected) and
/// the time from the request to the end.
async fn oversize_step(t: &Target) -> Res<J> {
    let (mut ws, _, _) = open(t, "oversize").await?;
    let started = Instant::now();
    ws.writer
        .send(Message::text("please send oversize"))
        .await?;
    let mut delivered = Vec::new();
    let end = tokio::time::timeout(SHORT, async {
        loop {
            match ws.reader.recv().await {
                Ok(Some(m @ (Message::Text(_) | Message::Binary(_)))) => delivered.push(m.len()),
                Ok(Some(_)) => {}
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        }
    })
    .await;
    let secs = started.elapsed().as_secs_f64();
    let Ok(end) = end else {
        // Still open: end it ourselves, and report what was delivered.
        let _ = close_normally(&mut ws).await;
        return Err(format!(
            "the connection did not end within {SHORT:?}; delivered messages of {delivered:?} bytes"
        )
        .into());
    };
    let info = match &end {
        Ok(()) => ws.reader.close_info(),
        Err(e) => e.close_info().cloned(),
    };
    let Some(c) = info else {
        return Err(format!("no close information: {end:?}").into());
    };
    let sent = c.sent.as_ref();
    Ok(J::Obj(vec![
        ("code", J::Num(c.code.0.into())),
        ("reason", s(c.reason.clone())),
        ("clean", J::Bool(c.is_clean())),
        (
            "sent_code",
            sent.map_or(J::Null, |f| J::Num(f.code.0.into())),
        ),
        ("sent_reason", sent.map_or(J::Null, |f| s(f.reason.clone()))),
        (
            "delivered",
            J::Arr(delivered.iter().map(|&n| J::Num(n as f64)).collect()),
        ),
        ("error", end.err().map_or(J::Null, |e| s(e.to_string()))),
        ("secs", J::Num(secs)),
    ]))
}

/// One close path; returns what wsx saw.
async fn close_step(t: &Target, case: (&str, &str, Option<u16>, &str)) -> Res<J> {
    let (name, initiator, code, reason) = case;
    let (mut ws, _, _) = open(t, &format!("close/{name}")).await?;
    let mut out = vec![
        ("case", s(name)),
        ("initiator", s(initiator)),
        ("code", code.map_or(J::Null, |c| J::Num(c.into()))),
        ("reason", s(reason)),
    ];
    // An echo first: the peer's side of the connection is up and running.
    ws.writer.send(Message::text("hello")).await?;
    within(SHORT, "the hello echo", ws.reader.recv()).await?;
    match (initiator, code) {
        ("wsx", None) => {
            // Drop the TCP connection: no close frame.
            drop(ws);
            return Ok(J::Obj(out));
        }
        ("wsx", Some(c)) => {
            ws.writer
                .close(Some(CloseFrame::new(CloseCode(c), reason)))
                .await?
        }
        (_, None) => ws.writer.send(Message::text("please drop")).await?,
        (_, Some(c)) => {
            ws.writer
                .send(Message::text(format!("please close {c}")))
                .await?
        }
    }
    // A peer that cannot do what was asked says so (`cannot drop: WHY`):
    // then wsx closes with 1000, and the rest is reported as usual.
    let mut unsupported = None;
    let end = tokio::time::timeout(SHORT, async {
        loop {
            match ws.reader.recv().await {
                Ok(Some(Message::Text(t)))
                    if initiator == "peer" && t.as_str().starts_with("cannot ") =>
                {
                    unsupported = Some(t.as_str().to_string());
                    ws.writer
                        .close(Some(CloseFrame::new(CloseCode::NORMAL, "")))
                        .await?;
                }
                Ok(Some(_)) => {}
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        }
    })
    .await
    .map_err(|_| format!("{name}: the connection did not end within {SHORT:?}"))?;
    if let Some(why) = unsupported {
        out.push(("unsupported", s(why)));
    }
    let (saw_code, saw_reason, clean) = match &end {
        Ok(()) => {
            let c = ws
                .reader
                .close_info()
                .ok_or("recv ended without close_info")?;
            (c.code.0, c.reason.clone(), c.is_clean())
        }
        Err(e) => match e.close_info() {
            Some(c) => (c.code.0, c.reason.clone(), c.is_clean()),
            None => return Err(format!("{name}: {e}").into()),
        },
    };
    out.push(("saw_code", J::Num(saw_code.into())));
    out.push(("saw_reason", s(saw_reason)));
    out.push(("clean", J::Bool(clean)));
    if let Err(e) = end {
        out.push(("error", s(e.to_string())));
    }
    Ok(J::Obj(out))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Res<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let http2 = args.iter().any(|a| a == "--http2");
    args.retain(|a| a != "--http2");
    let [base, suite, big] = &args[..] else {
        return Err("usage: interop_client [--http2] BASE_URL SUITE BIG".into());
    };
    let suite = parse_records(&std::fs::read(suite)?)?;
    let big = parse_records(&std::fs::read(big)?)?;
    let mut r = Report {
        fields: vec![("http", s(if http2 { "2" } else { "1.1" }))],
        errors: Vec::new(),
    };
    match Target::new(base, http2).await {
        Ok(t) => run(&t, &suite, &big, &mut r).await,
        Err(e) => r.errors.push(format!("HTTP/2 connection: {e}")),
    }
    let ok = r.errors.is_empty();
    r.fields.insert(0, ("ok", J::Bool(ok)));
    r.fields.push((
        "errors",
        J::Arr(r.errors.iter().map(|e| s(e.as_str())).collect()),
    ));
    println!("{}", J::Obj(r.fields));
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}

/// The steps, each on its own WebSocket.
async fn run(t: &Target, suite: &[Message], big: &[Message], r: &mut Report) {
    if let Err(e) = suite_step(t, suite, r).await {
        r.errors.push(format!("suite: {e}"));
    }
    if let Err(e) = big_step(t, big, r).await {
        r.errors.push(format!("16 MiB: {e}"));
    }
    match oversize_step(t).await {
        Ok(j) => r.fields.push(("oversize", j)),
        Err(e) => r.errors.push(format!("oversize: {e}")),
    }
    let mut closes = Vec::new();
    for case in CASES {
        match close_step(t, case).await {
            Ok(j) => closes.push(j),
            Err(e) => r.errors.push(format!("close {}: {e}", case.0)),
        }
    }
    r.fields.push(("closes", J::Arr(closes)));
    r.fields.push((
        "sockets",
        J::Arr(t.sockets.borrow_mut().drain(..).collect()),
    ));
}
