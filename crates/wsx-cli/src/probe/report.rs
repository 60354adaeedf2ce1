//! The end: what the probe learned, as the closing lines of the
//! transcript and the failure with its hint (text), or as one JSON object;
//! and the exit code.

use super::record::{ms_text, ms_value, Failure, Probe};
use super::response::HEXDUMP_BYTES;
use serde_json::{json, Value};
use std::time::Duration;

impl Probe {
    pub(super) fn finish(&mut self, result: Result<(), Failure>) -> u8 {
        let failure = result.err();
        if self.json {
            println!("{}", self.to_json(failure.as_ref()));
            if let Some(f) = &failure {
                eprintln!("wsx probe: {}", f.error);
            }
        } else {
            if failure.is_none() {
                if let Some(v) = self.http_version {
                    self.say(format!("carried by: HTTP/{v}"));
                }
            }
            if let Some(t) = self.timings_text() {
                self.say(format!("timings: {t}"));
            }
            for w in &self.warnings {
                eprintln!("wsx probe: warning: {w}");
            }
            if let Some(f) = &failure {
                eprintln!("wsx probe: {}", f.error);
                for d in &f.details {
                    eprintln!("  {d}");
                }
                if let Some(h) = &f.hint {
                    eprintln!("hint: {h}");
                }
            }
        }
        if failure.is_some() {
            2
        } else {
            0
        }
    }

    fn timings_text(&self) -> Option<String> {
        let t = &self.timings;
        let parts: Vec<String> = [
            ("dns", t.dns),
            ("tcp", t.tcp),
            ("tls", t.tls),
            ("http", t.http),
            ("ping", t.ping),
            ("close", t.close),
        ]
        .iter()
        .filter_map(|(name, d)| d.map(|d| format!("{name} {}", ms_text(d))))
        .collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    }

    fn to_json(&self, failure: Option<&Failure>) -> Value {
        let request = self.request_json();
        let response = self.response_json();
        let ms = |d: Option<Duration>| d.map(ms_value);
        json!({
            "url": self.url,
            "ok": failure.is_none(),
            "host": self.host,
            "port": self.port,
            "addresses": self.addresses.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "connected_to": self.connected.map(|a| a.to_string()),
            "request": request,
            "response": response,
            "status": self.status,
            "protocol": self.protocol,
            "http_version": self.http_version,
            "extensions": self.extensions,
            "rtt_ms": ms(self.rtt),
            "close": self.close.as_ref().map(|c| json!({
                "code": c.code,
                "reason": c.reason,
                "clean": c.clean,
            })),
            "timings_ms": {
                "dns": ms(self.timings.dns),
                "tcp": ms(self.timings.tcp),
                "tls": ms(self.timings.tls),
                "http": ms(self.timings.http),
                "ping": ms(self.timings.ping),
                "close": ms(self.timings.close),
            },
            "step": failure.map(|f| f.step),
            "error": failure.map(|f| f.error.clone()),
            "hint": failure.and_then(|f| f.hint.clone()),
            "details": failure.map_or(Vec::new(), |f| f.details.clone()),
            "warnings": self.warnings,
        })
    }

    /// The request line and headers as sent.
    fn request_json(&self) -> Option<Value> {
        self.request_line.as_ref().map(|line| {
            json!({
                "line": line,
                "headers": headers_json(&self.request_headers),
            })
        })
    }

    /// The response head (and the start of a refusal's body), or the
    /// start of an answer that is not HTTP; null when nothing came.
    fn response_json(&self) -> Value {
        if let Some(n) = self.head_len {
            let head = String::from_utf8_lossy(&self.received[..n]).into_owned();
            let mut lines = head.lines().map(|l| l.trim_end_matches('\r'));
            let status_line = lines.next().unwrap_or("").to_string();
            let pairs: Vec<(String, String)> = lines
                .filter(|l| !l.is_empty())
                .map(|l| {
                    let (k, v) = l.split_once(':').unwrap_or((l, ""));
                    (k.to_string(), v.trim().to_string())
                })
                .collect();
            json!({
                "status_line": status_line,
                "status": self.status,
                "reason": self.reason,
                "headers": headers_json(&pairs),
                "body": self.body.as_ref().map(|b| String::from_utf8_lossy(b).into_owned()),
            })
        } else if !self.received.is_empty() {
            let start = &self.received[..self.received.len().min(HEXDUMP_BYTES)];
            json!({
                "status": null,
                "bytes": self.received_total,
                "start_hex": crate::common::hex(start),
                "start_text": String::from_utf8_lossy(start),
            })
        } else {
            Value::Null
        }
    }
}

/// Headers as `[{"name": .., "value": ..}]`, in order.
fn headers_json(pairs: &[(String, String)]) -> Value {
    pairs
        .iter()
        .map(|(n, v)| json!({ "name": n, "value": v }))
        .collect()
}
