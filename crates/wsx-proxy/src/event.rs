//! What the proxy saw: one event per frame (and per connection opening and
//! ending), as a line for people (colour on a terminal) or JSON.

use base64::Engine as _;
use serde::Serialize;
use wsx_proto::frame::OpCode;
use wsx_proto::relay::RawFrame;

/// Which way a frame went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dir {
    /// Client to server.
    Up,
    /// Server to client.
    Down,
}

impl Dir {
    /// The arrow in a line.
    pub fn arrow(self) -> &'static str {
        match self {
            Dir::Up => "→",
            Dir::Down => "←",
        }
    }
}

/// One frame, as it crossed the proxy.
#[derive(Debug, Clone, Serialize)]
pub struct FrameEvent {
    /// The connection (from 1, in order of arrival).
    pub conn: u64,
    /// Which way.
    pub dir: Dir,
    /// Seconds since the connection opened.
    pub t: f64,
    /// Unix time, seconds (in recordings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ts: Option<f64>,
    /// `text`, `binary`, `continuation`, `close`, `ping`, `pong`, or the number.
    pub opcode: String,
    /// FIN bit.
    pub fin: bool,
    /// RSV1 (compressed), RSV2, RSV3.
    pub rsv: [bool; 3],
    /// Payload length.
    pub len: u64,
    /// Masked (as every client frame must be).
    pub masked: bool,
    /// Bytes on the wire, header included.
    pub wire: usize,
    /// A close frame's code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub close_code: Option<u16>,
    /// A close frame's reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub close_reason: Option<String>,
    /// The payload as text (UTF-8 text, close reasons aside), truncated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The payload as hex (binary and control frames), truncated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hex: Option<String>,
    /// A compressed message, inflated (on its last frame), truncated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inflated: Option<String>,
    /// The whole payload, base64 (recordings, unless `--no-payload`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// What a fault did to this frame (`delayed 200ms`, `corrupted`, `dropped`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
}

/// A connection's start or end.
#[derive(Debug, Clone, Serialize)]
pub struct ConnEvent {
    /// The connection.
    pub conn: u64,
    /// `open`, `refused` (the upstream did not switch protocols), `end`.
    pub event: &'static str,
    /// Seconds since the connection opened.
    pub t: f64,
    /// Unix time, seconds.
    pub ts: f64,
    /// What: the path, the status, or how it ended.
    pub detail: String,
    /// The negotiated subprotocol.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// The negotiated extensions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extensions: Option<String>,
}

/// Characters of text (or bytes of hex) shown before `…`.
pub const PREVIEW: usize = 120;

/// `text`, `ping`, ... for an opcode.
pub fn opcode_name(op: OpCode) -> String {
    match op.as_u8() {
        0 => "continuation".into(),
        1 => "text".into(),
        2 => "binary".into(),
        8 => "close".into(),
        9 => "ping".into(),
        10 => "pong".into(),
        n => format!("op{n}"),
    }
}

fn escape(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn hex(b: &[u8], max: usize) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(2 * max.min(b.len()) + 3);
    for x in b.iter().take(max) {
        out.push(DIGITS[usize::from(x >> 4)] as char);
        out.push(DIGITS[usize::from(x & 15)] as char);
    }
    if b.len() > max {
        out.push('…');
    }
    out
}

impl FrameEvent {
    /// The event of `frame`; `text_message`: it belongs to a text message
    /// (a continuation's kind comes from the message's first frame).
    pub fn new(conn: u64, dir: Dir, t: f64, frame: &RawFrame, text_message: bool) -> FrameEvent {
        let h = &frame.header;
        let p = &frame.payload;
        let mut e = FrameEvent {
            conn,
            dir,
            t,
            ts: None,
            opcode: opcode_name(h.opcode),
            fin: h.fin,
            rsv: [h.rsv & 0x40 != 0, h.rsv & 0x20 != 0, h.rsv & 0x10 != 0],
            len: h.payload_len,
            masked: h.mask.is_some(),
            wire: frame.wire_len,
            close_code: None,
            close_reason: None,
            text: None,
            hex: None,
            inflated: None,
            payload: None,
            fault: None,
        };
        let compressed = h.rsv & 0x40 != 0;
        match h.opcode.as_u8() {
            8 => {
                if p.len() >= 2 {
                    e.close_code = Some(u16::from_be_bytes([p[0], p[1]]));
                    e.close_reason = Some(escape(&String::from_utf8_lossy(&p[2..]), PREVIEW));
                }
            }
            0 | 1 if text_message && !compressed => match std::str::from_utf8(p) {
                Ok(s) => e.text = Some(escape(s, PREVIEW)),
                // A fragment may end inside a character.
                Err(_) => e.text = Some(escape(&String::from_utf8_lossy(p), PREVIEW)),
            },
            _ => e.hex = (!p.is_empty()).then(|| hex(p, PREVIEW / 2)),
        }
        e
    }

    /// Adds the whole payload (for a recording).
    pub fn set_payload(&mut self, frame: &RawFrame) {
        self.payload = Some(base64::engine::general_purpose::STANDARD.encode(&frame.payload));
    }

    /// Shows an inflated message.
    pub fn set_inflated(&mut self, inflated: Result<Vec<u8>, String>, text: bool) {
        self.inflated = Some(match inflated {
            Ok(b) if text => escape(&String::from_utf8_lossy(&b), PREVIEW),
            Ok(b) => hex(&b, PREVIEW / 2),
            Err(why) => format!("({why})"),
        });
    }

    /// One line for people; `colour`: ANSI colours.
    pub fn line(&self, colour: bool) -> String {
        let paint = |code: &str, s: &str| {
            if colour {
                format!("\x1b[{code}m{s}\x1b[0m")
            } else {
                s.to_string()
            }
        };
        let dir_colour = if self.dir == Dir::Up { "36" } else { "33" };
        let mut flags = String::new();
        flags.push_str(if self.fin { "fin" } else { "---" });
        for (i, on) in self.rsv.iter().enumerate() {
            if *on {
                flags.push_str(&format!(" rsv{}", i + 1));
            }
        }
        let mut line = format!(
            "#{} {} {:>8.3}s {} {} len={}{}",
            self.conn,
            paint(dir_colour, self.dir.arrow()),
            self.t,
            paint(
                if self.opcode == "close" { "1;31" } else { "1" },
                &self.opcode.to_uppercase()
            ),
            flags,
            self.len,
            if self.masked { " masked" } else { "" },
        );
        if let Some(code) = self.close_code {
            line.push_str(&format!(
                " code={code} reason=\"{}\"",
                self.close_reason.as_deref().unwrap_or("")
            ));
        }
        if let Some(t) = &self.text {
            line.push_str(&format!(" \"{t}\""));
        }
        if let Some(h) = &self.hex {
            line.push_str(&format!(" {h}"));
        }
        if let Some(i) = &self.inflated {
            line.push_str(&format!(" {} \"{i}\"", paint("2", "inflated:")));
        }
        if let Some(f) = &self.fault {
            line.push_str(&format!(" {}", paint("35", &format!("[{f}]"))));
        }
        line
    }
}

impl ConnEvent {
    /// One line for people.
    pub fn line(&self, colour: bool) -> String {
        let what = match self.event {
            "open" => {
                let mut s = format!("open {}", self.detail);
                s.push_str(&format!(
                    " protocol={} extensions={}",
                    self.protocol.as_deref().unwrap_or("-"),
                    self.extensions.as_deref().unwrap_or("-")
                ));
                s
            }
            other => format!("{other} {}", self.detail),
        };
        let text = format!("#{} ══ {:>8.3}s {what}", self.conn, self.t);
        if colour {
            format!("\x1b[1;32m{text}\x1b[0m")
        } else {
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use wsx_proto::frame::FrameHeader;

    fn frame(b0: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> RawFrame {
        RawFrame {
            header: FrameHeader {
                fin: b0 & 0x80 != 0,
                rsv: b0 & 0x70,
                opcode: OpCode::from_u4(b0),
                mask,
                payload_len: payload.len() as u64,
            },
            payload: Bytes::copy_from_slice(payload),
            wire_len: 2 + payload.len() + if mask.is_some() { 4 } else { 0 },
        }
    }

    #[test]
    fn lines_and_json_say_what_the_frame_was() {
        let e = FrameEvent::new(
            3,
            Dir::Up,
            0.0125,
            &frame(0x81, Some([1, 2, 3, 4]), b"hi \"you\"\n"),
            true,
        );
        assert_eq!(
            e.line(false),
            "#3 →    0.013s TEXT fin len=9 masked \"hi \\\"you\\\"\\n\""
        );
        let c = FrameEvent::new(3, Dir::Down, 1.0, &frame(0x88, None, b"\x03\xe8bye"), false);
        assert_eq!(
            c.line(false),
            "#3 ←    1.000s CLOSE fin len=5 code=1000 reason=\"bye\""
        );
        let b = FrameEvent::new(1, Dir::Down, 0.0, &frame(0x42, None, &[0, 255]), false);
        assert_eq!(b.line(false), "#1 ←    0.000s BINARY --- rsv1 len=2 00ff");
        let json = serde_json::to_value(&b).unwrap();
        assert_eq!(json["rsv"], serde_json::json!([true, false, false]));
        assert_eq!(json["hex"], "00ff");
        assert!(json.get("text").is_none());
        let long = "é".repeat(200);
        let t = FrameEvent::new(1, Dir::Up, 0.0, &frame(0x81, None, long.as_bytes()), true);
        assert!(t.text.unwrap().ends_with("é…"));
    }
}
