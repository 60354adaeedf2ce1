//! `wsx replay`: plays the client side of a recording against a server
//! (with the original timing, faster, or as fast as it goes) and reports
//! where the server's answers differ from the recorded ones.

use crate::event::PREVIEW;
use base64::Engine as _;
use std::time::Duration;
use wsx::client::{ClientConfig, ClientRequest};
use wsx::{CloseCode, CloseFrame, Message};
use wsx_proto::frame::{FrameHeader, OpCode};
use wsx_proto::relay::Inflater;

/// A message as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// Text.
    Text(String),
    /// Binary.
    Binary(Vec<u8>),
}

impl Msg {
    fn preview(&self) -> String {
        match self {
            Msg::Text(t) => {
                let s: String = t.chars().take(PREVIEW).collect();
                format!(
                    "text {:?}{}",
                    s,
                    if t.chars().count() > PREVIEW {
                        "…"
                    } else {
                        ""
                    }
                )
            }
            Msg::Binary(b) => format!("binary of {} bytes", b.len()),
        }
    }

    fn from_message(m: &Message) -> Option<Msg> {
        match m {
            Message::Text(t) => Some(Msg::Text(t.to_string())),
            Message::Binary(b) => Some(Msg::Binary(b.to_vec())),
            _ => None,
        }
    }
}

/// One recorded connection.
#[derive(Debug, Clone, Default)]
pub struct RecordedConn {
    /// Its id in the recording.
    pub id: u64,
    /// Path and query.
    pub path: String,
    /// The negotiated subprotocol.
    pub protocol: Option<String>,
    /// What the client sent, with the time since the connection opened.
    pub client: Vec<(f64, Msg)>,
    /// What the server sent.
    pub server: Vec<(f64, Msg)>,
    /// The client's close frame, if it sent one.
    pub close: Option<(f64, u16, String)>,
}

/// Per direction: messages put back together from frames (compressed
/// ones inflated with the negotiated parameters).
struct Assembler {
    inflater: Option<Inflater>,
    text: bool,
    parts: Vec<u8>,
    compressed: bool,
}

impl Assembler {
    fn frame(&mut self, h: &FrameHeader, payload: &[u8]) -> Result<Option<Msg>, String> {
        if h.opcode.is_control() {
            return Ok(None);
        }
        if h.opcode != OpCode::CONTINUATION {
            self.text = h.opcode == OpCode::TEXT;
            self.compressed = h.rsv & 0x40 != 0;
            self.parts.clear();
        }
        let inflated = match self.inflater.as_mut() {
            Some(i) => i.frame(h, payload),
            None => None,
        };
        if !self.compressed {
            self.parts.extend_from_slice(payload);
        }
        if !h.fin {
            return Ok(None);
        }
        let bytes = if self.compressed {
            inflated.ok_or("a compressed message without negotiated compression")??
        } else {
            std::mem::take(&mut self.parts)
        };
        Ok(Some(if self.text {
            Msg::Text(String::from_utf8(bytes).map_err(|_| "a text message that is not UTF-8")?)
        } else {
            Msg::Binary(bytes)
        }))
    }
}

/// Reads a recording (`wsx proxy --record`, with payloads).
///
/// # Errors
/// Unreadable, not a recording, or recorded with `--no-payload`.
pub fn load(path: &std::path::Path) -> Result<Vec<RecordedConn>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut conns: Vec<(RecordedConn, Assembler, Assembler)> = Vec::new();
    let b64 = base64::engine::general_purpose::STANDARD;
    for (n, line) in text.lines().enumerate() {
        let at = |why: String| format!("{}:{}: {why}", path.display(), n + 1);
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| at(format!("not JSON ({e})")))?;
        let id = v["conn"]
            .as_u64()
            .ok_or_else(|| at("no connection id".into()))?;
        if v["event"] == "open" {
            let params = v["extensions"]
                .as_str()
                .and_then(|x| wsx_proto::handshake::parse_extensions(x).ok())
                .and_then(|o| wsx_proto::deflate::response_params(&o).ok().flatten());
            let asm = |from_server| Assembler {
                inflater: params.map(|p| Inflater::new(p, from_server, 1 << 30)),
                text: false,
                parts: Vec::new(),
                compressed: false,
            };
            conns.push((
                RecordedConn {
                    id,
                    path: v["detail"].as_str().unwrap_or("/").to_string(),
                    protocol: v["protocol"].as_str().map(str::to_string),
                    ..Default::default()
                },
                asm(false),
                asm(true),
            ));
            continue;
        }
        let Some(op) = v["opcode"].as_str() else {
            continue;
        };
        let Some((conn, up, down)) = conns.iter_mut().find(|(c, _, _)| c.id == id) else {
            continue;
        };
        let payload = match v["payload"].as_str() {
            Some(p) => b64.decode(p).map_err(|e| at(format!("payload: {e}")))?,
            None => {
                return Err(at(
                    "recorded without payloads (--no-payload): nothing to replay".into(),
                ))
            }
        };
        let t = v["t"].as_f64().unwrap_or(0.0);
        let rsv = &v["rsv"];
        let opcode = match op {
            "continuation" => OpCode::CONTINUATION,
            "text" => OpCode::TEXT,
            "binary" => OpCode::BINARY,
            "close" => OpCode::CLOSE,
            "ping" => OpCode::PING,
            "pong" => OpCode::PONG,
            _ => continue,
        };
        let header = FrameHeader {
            fin: v["fin"].as_bool().unwrap_or(true),
            rsv: if rsv[0] == true { 0x40 } else { 0 },
            opcode,
            mask: None,
            payload_len: payload.len() as u64,
        };
        let client = v["dir"] == "up";
        if opcode == OpCode::CLOSE && client {
            let code = v["close_code"].as_u64().unwrap_or(1000) as u16;
            let reason = String::from_utf8_lossy(payload.get(2..).unwrap_or_default()).into_owned();
            conn.close = Some((t, code, reason));
            continue;
        }
        let asm = if client { up } else { down };
        if let Some(m) = asm.frame(&header, &payload).map_err(at)? {
            if client {
                conn.client.push((t, m));
            } else {
                conn.server.push((t, m));
            }
        }
    }
    Ok(conns.into_iter().map(|(c, _, _)| c).collect())
}

/// How one connection's replay went.
#[derive(Debug, Clone, Default)]
pub struct ReplayReport {
    /// The recorded connection.
    pub id: u64,
    /// Its path.
    pub path: String,
    /// Messages sent.
    pub sent: usize,
    /// The server's messages recorded, and received now.
    pub expected: usize,
    /// Received now.
    pub received: usize,
    /// Where they differ, in words (empty: the same).
    pub differences: Vec<String>,
}

/// Plays `conn`'s client side against `base` (scheme, host and port; the
/// recorded path is appended), `speed` times the original pace (`None`:
/// as fast as it goes), and compares the answers.
///
/// # Errors
/// The connection could not be made.
pub async fn replay(
    conn: &RecordedConn,
    base: &str,
    speed: Option<f64>,
    config: &ClientConfig,
) -> Result<ReplayReport, String> {
    let url = format!("{}{}", base.trim_end_matches('/'), conn.path);
    let mut req = ClientRequest::new(&url).map_err(|e| format!("{url}: {e}"))?;
    if let Some(p) = &conn.protocol {
        req = req.protocol(p);
    }
    let (ws, _) = wsx::client::connect_with(&req, config)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let (mut reader, mut writer) = ws.split();
    let expected = conn.server.len();
    let collect = tokio::spawn(async move {
        let mut got = Vec::new();
        // Everything the server sends until it closes, or 2 s of quiet
        // once as many as recorded arrived (5 s before).
        loop {
            let quiet = if got.len() >= expected { 2 } else { 5 };
            match tokio::time::timeout(Duration::from_secs(quiet), reader.recv()).await {
                Ok(Ok(Some(m))) => {
                    if let Some(m) = Msg::from_message(&m) {
                        got.push(m);
                    }
                }
                _ => return got,
            }
        }
    });
    let start = tokio::time::Instant::now();
    let pace = |t: f64| speed.map(|s| start + Duration::from_secs_f64((t / s).max(0.0)));
    for (t, m) in &conn.client {
        if let Some(at) = pace(*t) {
            tokio::time::sleep_until(at).await;
        }
        let msg = match m {
            Msg::Text(s) => Message::text(s.clone()),
            Msg::Binary(b) => Message::binary(b.clone()),
        };
        writer
            .send(msg)
            .await
            .map_err(|e| format!("sending: {e}"))?;
    }
    if let Some((t, code, reason)) = &conn.close {
        if let Some(at) = pace(*t) {
            tokio::time::sleep_until(at).await;
        }
        // Let the answers to the last messages come first.
        if speed.is_none() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let _ = writer
            .close(Some(CloseFrame::new(CloseCode(*code), reason.clone())))
            .await;
    }
    let got = collect.await.map_err(|e| e.to_string())?;
    let mut report = ReplayReport {
        id: conn.id,
        path: conn.path.clone(),
        sent: conn.client.len(),
        expected,
        received: got.len(),
        differences: Vec::new(),
    };
    for (i, want) in conn.server.iter().map(|(_, m)| m).enumerate() {
        match got.get(i) {
            Some(g) if g == want => {}
            Some(g) => report.differences.push(format!(
                "server message {}: recorded {}, now {}",
                i + 1,
                want.preview(),
                g.preview()
            )),
            None => report.differences.push(format!(
                "server message {}: recorded {}, now nothing (and {} more missing)",
                i + 1,
                want.preview(),
                expected - i - 1
            )),
        }
        if report.differences.len() >= 10 {
            break;
        }
    }
    if got.len() > expected {
        report.differences.push(format!(
            "{} server messages more than recorded, from {}",
            got.len() - expected,
            got[expected].preview()
        ));
    }
    Ok(report)
}
