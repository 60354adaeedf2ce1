//! How things are printed: received messages (text, binary as hex or
//! base64, JSON re-indented), notices, ping payloads and round trips, and
//! the handshake's agreement for `-v`. On a terminal through the line
//! editor's printer, above the prompt; otherwise to stdout and stderr.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wsx::{client::Handshaken, MaybeTlsStream, WebSocket};

/// How binary messages are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BinaryFormat {
    /// Lowercase hex digits.
    Hex,
    /// Standard base64 with padding.
    Base64,
}

pub(super) type Printer = Arc<Mutex<Box<dyn rustyline::ExternalPrinter + Send>>>;

/// Where messages and notices go: stdout/stderr when piped; above the
/// prompt, through the line editor, on a terminal.
#[derive(Clone)]
pub(super) struct Out {
    printer: Option<Printer>,
    terminator: u8,
}

impl Out {
    /// Piped: messages to stdout, each ended by NUL (`-0`) or a newline.
    pub(super) fn pipe(null: bool) -> Self {
        Out {
            printer: None,
            terminator: if null { b'\0' } else { b'\n' },
        }
    }

    /// On a terminal: everything above the line editor's prompt.
    pub(super) fn terminal(printer: Printer) -> Self {
        Out {
            printer: Some(printer),
            terminator: b'\n',
        }
    }

    /// A received message (already formatted). An error means stdout is
    /// gone (e.g. `| head -1` exited).
    pub(super) fn message(&self, text: &str) -> std::io::Result<()> {
        match &self.printer {
            Some(p) => {
                print_above(p, format!("< {text}\n"));
                Ok(())
            }
            None => {
                let mut o = std::io::stdout().lock();
                o.write_all(text.as_bytes())?;
                o.write_all(&[self.terminator])?;
                o.flush()
            }
        }
    }

    /// A notice: stderr when piped, above the prompt on a terminal.
    pub(super) fn info(&self, text: &str) {
        match &self.printer {
            Some(p) => print_above(p, format!("{text}\n")),
            None => eprintln!("{text}"),
        }
    }

    pub(super) fn interactive(&self) -> bool {
        self.printer.is_some()
    }
}

fn print_above(p: &Printer, text: String) {
    let mut p = p.lock().unwrap_or_else(|e| e.into_inner());
    let _ = p.print(text);
}

/// A received text message as printed: re-indented with `--json` when it
/// is JSON, else as is.
pub(super) fn text_message(t: &str, json: bool) -> String {
    match json.then(|| pretty_json(t)).flatten() {
        Some(pretty) => pretty,
        None => t.to_owned(),
    }
}

/// A received binary message as printed: hex or base64; on a terminal
/// with its length in front.
pub(super) fn binary_message(b: &[u8], f: BinaryFormat, interactive: bool) -> String {
    let enc = encode_binary(b, f);
    if interactive {
        format!("[binary {} bytes] {enc}", b.len())
    } else {
        enc
    }
}

fn encode_binary(b: &[u8], f: BinaryFormat) -> String {
    match f {
        BinaryFormat::Hex => crate::common::hex(b),
        BinaryFormat::Base64 => STANDARD.encode(b),
    }
}

/// A ping/pong payload for people: text if it is printable UTF-8.
pub(super) fn show_payload(b: &[u8], f: BinaryFormat) -> String {
    if b.is_empty() {
        return "(empty)".into();
    }
    match std::str::from_utf8(b) {
        Ok(s) if !s.chars().any(char::is_control) => s.to_string(),
        _ => format!("[{} bytes] {}", b.len(), encode_binary(b, f)),
    }
}

pub(super) fn format_rtt(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

/// Re-indents valid JSON like `serde_json::to_string_pretty`, keeping the
/// key order and the number spellings. `None` if `s` is not JSON.
fn pretty_json(s: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(s).ok()?;
    let mut out = String::with_capacity(s.len() * 2);
    let mut depth = 0usize;
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("  ");
        }
    };
    let mut chars = s.trim().chars().peekable();
    let (mut in_str, mut escaped) = (false, false);
    while let Some(c) = chars.next() {
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                out.push(c);
            }
            '{' | '[' => {
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                let close = if c == '{' { '}' } else { ']' };
                out.push(c);
                if chars.peek() == Some(&close) {
                    chars.next();
                    out.push(close);
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(',');
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    Some(out)
}

/// The URL without credentials, for messages.
pub(super) fn display_url(req: &wsx::client::ClientRequest) -> String {
    let scheme = if req.is_secure() { "wss" } else { "ws" };
    format!("{scheme}://{}{}", req.host_header(), req.path_and_query())
}

/// Which HTTP carried the WebSocket.
pub(super) fn http_line(ws: &WebSocket<MaybeTlsStream>) -> String {
    if ws.get_ref().is_http2() {
        "http: HTTP/2 (extended CONNECT, RFC 8441; 200)".into()
    } else {
        "http: HTTP/1.1 (101 Switching Protocols)".into()
    }
}

/// `-v`: what the handshake agreed on, e.g.
/// `extensions: permessage-deflate; server_max_window_bits=12` and the
/// compression parameters in force.
pub(super) fn negotiated_lines(ws: &WebSocket<MaybeTlsStream>, hs: &Handshaken) -> Vec<String> {
    let header = |name: &str| {
        let values: Vec<&str> = hs
            .response
            .headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if values.is_empty() {
            "none".to_string()
        } else {
            values.join(", ")
        }
    };
    let mut lines = vec![
        http_line(ws),
        format!("subprotocol: {}", header("sec-websocket-protocol")),
        format!("extensions: {}", header("sec-websocket-extensions")),
    ];
    lines.push(match ws.deflate() {
        Some(d) => {
            let p = &d.params;
            format!(
                "compression: permessage-deflate (server window 2^{}{}, client window 2^{}{})",
                p.server_max_window_bits,
                if p.server_no_context_takeover {
                    ", no context takeover"
                } else {
                    ""
                },
                p.client_max_window_bits,
                if p.client_no_context_takeover {
                    ", no context takeover"
                } else {
                    ""
                },
            )
        }
        None => "compression: off".to_string(),
    });
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_reindented_in_order() {
        assert_eq!(
            pretty_json(r#"{"b":1,"a":[1,2],"e":{},"s":"x, {y}: \"z\""}"#).unwrap(),
            "{\n  \"b\": 1,\n  \"a\": [\n    1,\n    2\n  ],\n  \"e\": {},\n  \"s\": \"x, {y}: \\\"z\\\"\"\n}"
        );
        assert_eq!(pretty_json(" 12 ").unwrap(), "12");
        assert!(pretty_json("hello").is_none());
    }
}
