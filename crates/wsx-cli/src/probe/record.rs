//! What the probe learned: the state every step fills in and the report
//! reads, the failure a step ends with, and the transcript line it prints
//! as it goes (with the formatting of times and text those lines share).

use bytes::Bytes;
use std::net::SocketAddr;
use std::time::Duration;
use wsx::Closed;

/// Why the probe failed: the step, what happened, and the likely cause.
#[derive(Debug)]
pub(super) struct Failure {
    pub(super) step: &'static str,
    pub(super) error: String,
    pub(super) hint: Option<String>,
    pub(super) details: Vec<String>,
}

impl Failure {
    pub(super) fn new(step: &'static str, error: impl Into<String>) -> Self {
        Failure {
            step,
            error: error.into(),
            hint: None,
            details: Vec::new(),
        }
    }

    pub(super) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The advice, when there is any.
    pub(super) fn hint_if(mut self, hint: Option<String>) -> Self {
        if hint.is_some() {
            self.hint = hint;
        }
        self
    }

    pub(super) fn detail(mut self, line: impl Into<String>) -> Self {
        self.details.push(line.into());
        self
    }
}

#[derive(Debug, Default)]
pub(super) struct Timings {
    pub(super) dns: Option<Duration>,
    pub(super) tcp: Option<Duration>,
    pub(super) tls: Option<Duration>,
    pub(super) http: Option<Duration>,
    pub(super) ping: Option<Duration>,
    pub(super) close: Option<Duration>,
}

/// How the connection ended after our close frame.
#[derive(Debug)]
pub(super) struct CloseReport {
    pub(super) code: u16,
    pub(super) text: String,
    pub(super) reason: String,
    pub(super) clean: bool,
}

impl CloseReport {
    pub(super) fn from_closed(c: &Closed) -> Self {
        CloseReport {
            code: c.code.0,
            text: c.code.to_string(),
            reason: c.reason.clone(),
            clean: c.is_clean(),
        }
    }
}

/// Everything the probe learned, printed as it goes (text) or at the end (JSON).
pub(super) struct Probe {
    pub(super) json: bool,
    pub(super) timeout: Duration,
    pub(super) url: String,
    pub(super) host: Option<String>,
    pub(super) port: Option<u16>,
    pub(super) addresses: Vec<SocketAddr>,
    pub(super) connected: Option<SocketAddr>,
    pub(super) request_line: Option<String>,
    pub(super) request_headers: Vec<(String, String)>,
    /// The server's bytes, as received (at most `KEEP_RECEIVED`).
    pub(super) received: Vec<u8>,
    pub(super) received_total: usize,
    /// Length of the response head within `received`, once complete.
    pub(super) head_len: Option<usize>,
    pub(super) head_printed: bool,
    /// The start of a rejection's body.
    pub(super) body: Option<Bytes>,
    pub(super) status: Option<u16>,
    pub(super) reason: Option<String>,
    pub(super) protocol: Option<String>,
    /// The HTTP version that carried the handshake: "1.1" or "2".
    pub(super) http_version: Option<&'static str>,
    pub(super) extensions: Vec<String>,
    pub(super) rtt: Option<Duration>,
    pub(super) close: Option<CloseReport>,
    pub(super) timings: Timings,
    pub(super) warnings: Vec<String>,
}

impl Probe {
    pub(super) fn new(url: &str, json: bool) -> Self {
        Probe {
            json,
            timeout: Duration::from_secs(10),
            url: url.to_string(),
            host: None,
            port: None,
            addresses: Vec::new(),
            connected: None,
            http_version: None,
            request_line: None,
            request_headers: Vec::new(),
            received: Vec::new(),
            received_total: 0,
            head_len: None,
            head_printed: false,
            body: None,
            status: None,
            reason: None,
            protocol: None,
            extensions: Vec::new(),
            rtt: None,
            close: None,
            timings: Timings::default(),
            warnings: Vec::new(),
        }
    }

    /// A transcript line (stdout, text mode only).
    pub(super) fn say(&self, line: impl AsRef<str>) {
        if !self.json {
            println!("{}", line.as_ref());
        }
    }
}

/// A line with control characters escaped, safe for a terminal.
pub(super) fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() && c != '\t' {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

pub(super) fn reason_text(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(" {reason:?}")
    }
}

pub(super) fn ms_value(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

pub(super) fn ms_text(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

pub(super) fn secs(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}
