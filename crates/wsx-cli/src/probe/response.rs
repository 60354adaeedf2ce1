//! The exchange as shown: the request with `> `, the server's answer with
//! `< ` (the head as soon as it is complete, the start of a refusal's body,
//! a hex dump of what is not HTTP), and the agreement of a 101.

use super::record::{ms_text, printable, Probe};
use tokio::time::Instant;
use wsx::wsx_proto::handshake::{ExtensionOffer, Handshaken};

/// How much of the server's answer is kept for display.
const KEEP_RECEIVED: usize = 16 * 1024;
/// How much of a non-HTTP answer is shown as a hex dump.
pub(super) const HEXDUMP_BYTES: usize = 64;

impl Probe {
    pub(super) fn show_request(&mut self, request: &[u8]) {
        let text = String::from_utf8_lossy(request);
        let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
        if let Some(first) = lines.next() {
            self.say(format!("> {}", printable(first)));
            self.request_line = Some(first.to_string());
        }
        for line in lines {
            self.say(format!("> {}", printable(line)));
            let (name, value) = line.split_once(':').unwrap_or((line, ""));
            self.request_headers
                .push((name.to_string(), value.trim().to_string()));
        }
        self.say(">");
    }

    /// Keeps the server's bytes; once the head is complete, times and shows it.
    pub(super) fn record(&mut self, data: &[u8], start: Instant) {
        self.received_total += data.len();
        let room = KEEP_RECEIVED.saturating_sub(self.received.len());
        self.received
            .extend_from_slice(&data[..data.len().min(room)]);
        if self.head_len.is_none() {
            if let Some(n) = head_end(&self.received) {
                self.timings.http = Some(start.elapsed());
                self.head_len = Some(n);
                self.parse_status();
                self.show_head();
            }
        }
    }

    fn parse_status(&mut self) {
        let Some(n) = self.head_len else { return };
        let head = String::from_utf8_lossy(&self.received[..n]).into_owned();
        let first = head.lines().next().unwrap_or("");
        let mut parts = first.splitn(3, ' ');
        let _version = parts.next();
        self.status = parts.next().and_then(|c| c.trim().parse().ok());
        self.reason = parts.next().map(|r| r.trim().to_string());
    }

    /// Prints the response head (or what arrived of it) with `< `.
    pub(super) fn show_head(&mut self) {
        if self.head_printed || self.received.is_empty() {
            return;
        }
        self.head_printed = true;
        let n = self.head_len.unwrap_or(self.received.len());
        let head = String::from_utf8_lossy(&self.received[..n]).into_owned();
        for line in head.lines() {
            let line = line.trim_end_matches('\r');
            if !line.is_empty() {
                self.say(format!("< {}", printable(line)));
            }
        }
        if self.head_len.is_some() {
            self.say("<");
            if let Some(t) = self.timings.http {
                self.say(format!("* http: response head in {}", ms_text(t)));
            }
        } else {
            self.say(format!(
                "* http: incomplete response head ({} bytes)",
                self.received_total
            ));
        }
    }

    /// Prints bytes that are not HTTP as a hex dump.
    pub(super) fn show_raw(&mut self) {
        if self.head_printed || self.received.is_empty() {
            return;
        }
        self.head_printed = true;
        self.say(format!(
            "* http: received {} bytes that are not an HTTP response:",
            self.received_total
        ));
        for line in hexdump(&self.received[..self.received.len().min(HEXDUMP_BYTES)]) {
            self.say(format!("  {line}"));
        }
    }

    pub(super) fn show_body(&self, body: &[u8]) {
        if body.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(body);
        for line in text.lines() {
            self.say(printable(line.trim_end_matches('\r')));
        }
        let after_head = self
            .head_len
            .map_or(0, |h| self.received_total.saturating_sub(h));
        if after_head > body.len() {
            self.say(format!(
                "* ... (first {} bytes of the body shown)",
                body.len()
            ));
        }
    }

    pub(super) fn show_handshaken(&mut self, done: &Handshaken) {
        self.status = Some(done.response.status().as_u16());
        self.protocol = done.protocol.clone();
        self.extensions = done.extensions.iter().map(extension_text).collect();
        let status = done.response.status();
        self.say(format!(
            "status: {} {}",
            status.as_u16(),
            match status.as_u16() {
                101 => self.reason.as_deref().unwrap_or("Switching Protocols"),
                _ => status.canonical_reason().unwrap_or(""),
            }
        ));
        self.say(format!(
            "subprotocol: {}",
            self.protocol.as_deref().unwrap_or("(none)")
        ));
        self.say(format!(
            "extensions: {}",
            if self.extensions.is_empty() {
                "(none)".to_string()
            } else {
                self.extensions.join(", ")
            }
        ));
    }
}

/// The end of an HTTP head (after the blank line), if it is complete.
fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Names what a non-HTTP answer probably is.
pub(super) fn recognize(buf: &[u8]) -> Option<&'static str> {
    match buf {
        [0x15, 0x03, ..] => Some("these bytes are a TLS alert: the port speaks TLS (HTTPS / wss://), not plain ws://"),
        [0x16, 0x03, ..] => Some("these bytes are a TLS handshake record: the port speaks TLS (HTTPS / wss://), not plain ws://"),
        [b'S', b'S', b'H', b'-', ..] => Some("an SSH server answered: wrong port"),
        [0, 0, _, 0x04, ..] => Some("this looks like an HTTP/2 SETTINGS frame: an HTTP/2-only (h2c) server, which cannot upgrade an HTTP/1.1 request"),
        _ => None,
    }
}

fn hexdump(bytes: &[u8]) -> Vec<String> {
    bytes
        .chunks(16)
        .enumerate()
        .map(|(i, chunk)| {
            let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
            let text: String = chunk
                .iter()
                .map(|&b| {
                    if b.is_ascii_graphic() || b == b' ' {
                        b as char
                    } else {
                        '.'
                    }
                })
                .collect();
            format!("{:04x}  {:<47}  |{text}|", i * 16, hex.join(" "))
        })
        .collect()
}

fn extension_text(e: &ExtensionOffer) -> String {
    let mut s = e.name.clone();
    for (k, v) in &e.params {
        s.push_str("; ");
        s.push_str(k);
        if let Some(v) = v {
            s.push('=');
            s.push_str(v);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_end_and_recognizer() {
        assert_eq!(head_end(b"HTTP/1.1 200 OK\r\n\r\nbody"), Some(19));
        assert_eq!(head_end(b"HTTP/1.1 200 OK\r\nX: y\r\n"), None);
        assert!(recognize(b"\x15\x03\x03\x00\x02\x02\x46")
            .unwrap()
            .contains("TLS"));
        assert_eq!(hexdump(b"ab").len(), 1);
    }
}
