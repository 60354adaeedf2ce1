//! The HTTP step: the request goes out, the answer comes in until the
//! handshake completes or fails; a failure is diagnosed (a refusal and
//! its status, a bad 101, no answer, bytes that are not HTTP).

use super::record::{secs, Failure, Probe};
use super::response::recognize;
use crate::diagnose;
use std::io;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{timeout, timeout_at, Instant};
use wsx::wsx_proto::handshake::{ClientHandshake, ClientHandshakeError, Handshaken, Rejection};
use wsx::MaybeTlsStream;

/// After a non-101 head, how long to wait for the start of its body.
const BODY_WAIT: Duration = Duration::from_millis(500);

impl Probe {
    pub(super) async fn handshake(
        &mut self,
        stream: &mut MaybeTlsStream,
        hs: &mut ClientHandshake,
        request: &[u8],
    ) -> Result<Handshaken, Failure> {
        let start = Instant::now();
        let deadline = start + self.timeout;
        self.send_request(stream, request, deadline).await?;
        let mut buf = vec![0u8; 8192];
        loop {
            let read = if hs.is_rejected() {
                // A non-101 head is in: wait briefly for the start of its body.
                match timeout(BODY_WAIT, stream.read(&mut buf)).await {
                    Ok(Ok(n)) => n,
                    Ok(Err(_)) | Err(_) => 0,
                }
            } else {
                match timeout_at(deadline, stream.read(&mut buf)).await {
                    Ok(Ok(n)) => n,
                    Ok(Err(e)) => return Err(self.read_failed(&e)),
                    Err(_) => return Err(self.http_timed_out()),
                }
            };
            if read == 0 {
                let e = hs.handle_eof();
                return Err(self.handshake_failed(e));
            }
            self.record(&buf[..read], start);
            match hs.handle_data(&buf[..read]) {
                Ok(Some(done)) => {
                    if self.timings.http.is_none() {
                        self.timings.http = Some(start.elapsed());
                    }
                    return Ok(done);
                }
                Ok(None) => {}
                Err(e) => return Err(self.handshake_failed(e)),
            }
        }
    }

    /// Writes the request bytes, by `deadline`.
    async fn send_request(
        &self,
        stream: &mut MaybeTlsStream,
        request: &[u8],
        deadline: Instant,
    ) -> Result<(), Failure> {
        match timeout_at(deadline, stream.write_all(request)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                Err(Failure::new(
                    "http",
                    format!("cannot send the handshake request: {e}"),
                )
                .hint("the server dropped the connection as soon as it was made: a connection limit, an IP filter, or a crashing server"))
            }
            Err(_) => {
                Err(Failure::new(
                    "http",
                    format!(
                        "the HTTP step timed out: the request could not be sent within {}",
                        secs(self.timeout)
                    ),
                ))
            }
        }
    }

    fn http_timed_out(&mut self) -> Failure {
        let t = secs(self.timeout);
        if self.received.is_empty() {
            Failure::new(
                "http",
                format!("the HTTP step timed out: the server accepted the TCP connection but sent no response within {t}"),
            )
            .hint("something listens there but does not answer HTTP: a TLS port (that needs wss://), another protocol waiting for its own greeting, an overloaded or stuck server, or a proxy that buffers the upgrade")
        } else {
            self.show_head();
            Failure::new(
                "http",
                format!(
                    "the HTTP step timed out: the response head was still incomplete after {t} ({} bytes received)",
                    self.received_total
                ),
            )
            .hint("the server started answering and stalled: a stuck server or a proxy buffering the response")
        }
    }

    fn read_failed(&mut self, e: &io::Error) -> Failure {
        self.show_head();
        let what = if self.received.is_empty() {
            "without answering the handshake"
        } else {
            "before the response head was complete"
        };
        Failure::new(
            "http",
            format!("the server closed the connection ({e}) {what}"),
        )
        .hint_if(diagnose::handshake_hint(&ClientHandshakeError::Closed))
    }

    fn handshake_failed(&mut self, e: ClientHandshakeError) -> Failure {
        match &e {
            ClientHandshakeError::Rejected(r) => self.rejected(&e, r),
            ClientHandshakeError::BadAccept { expected, got } => {
                Failure::new("http", "wrong Sec-WebSocket-Accept in the 101 response")
                    .detail(format!("expected: {expected}"))
                    .detail(format!("got:      {got:?}"))
                    .hint(e.to_string())
            }
            ClientHandshakeError::Malformed(why) => {
                self.show_raw();
                let mut f = Failure::new(
                    "http",
                    format!("the answer is not an HTTP response ({why})"),
                )
                .hint(e.to_string());
                if let Some(what) = recognize(&self.received) {
                    f.details.push(what.to_string());
                }
                f
            }
            ClientHandshakeError::Closed => {
                self.show_head();
                let error = if self.received.is_empty() {
                    "the server closed the connection without answering the handshake".to_string()
                } else {
                    format!(
                        "the server closed the connection after {} bytes, before the response head was complete",
                        self.received_total
                    )
                };
                Failure::new("http", error)
                    .hint(diagnose::handshake_hint(&e).unwrap_or_else(|| e.to_string()))
            }
            ClientHandshakeError::UnofferedProtocol(_) => {
                Failure::new("http", e.to_string()).hint_if(diagnose::handshake_hint(&e))
            }
            _ => {
                self.show_head();
                Failure::new("http", e.to_string())
            }
        }
    }

    fn rejected(&mut self, e: &ClientHandshakeError, r: &Rejection) -> Failure {
        let code = r.status.as_u16();
        self.status = Some(code);
        self.show_head();
        self.show_body(&r.body);
        self.body = Some(r.body.clone());
        let reason = self
            .reason
            .clone()
            .filter(|s| !s.is_empty())
            .or_else(|| r.status.canonical_reason().map(str::to_string))
            .unwrap_or_default();
        // The library's statement of the cause, then the advice for it.
        let cause = library_cause(&e.to_string(), r);
        let hint = diagnose::rejection_hint(r).or_else(|| {
            cause.is_none().then(|| {
                "the server (or a proxy in front of it) did not upgrade this request; the response above says why".into()
            })
        });
        let mut error =
            format!("server answered {code} {reason} instead of 101 Switching Protocols");
        if let Some(cause) = cause {
            error.push_str(": ");
            error.push_str(&cause);
        }
        let mut f = Failure::new("http", error).hint_if(hint);
        if (300..400).contains(&code) {
            match r.headers.get(http::header::LOCATION) {
                Some(l) => f.details.push(format!(
                    "Location: {}",
                    String::from_utf8_lossy(l.as_bytes())
                )),
                None => f.details.push("(no Location header)".into()),
            }
        }
        f
    }
}

// ---- the library's words -------------------------------------------------------

/// The cause in the library's rejection text: without the leading
/// "server answered ..." (the probe says that itself) and the trailing body
/// excerpt (the probe prints the body).
fn library_cause(display: &str, r: &Rejection) -> Option<String> {
    let prefix = format!(
        "server answered {} {} instead of 101 Switching Protocols",
        r.status.as_u16(),
        r.status.canonical_reason().unwrap_or("")
    );
    let Some(rest) = display.strip_prefix(&prefix) else {
        return Some(display.to_string());
    };
    let body_text = String::from_utf8_lossy(&r.body);
    let body_text = body_text.trim();
    let rest = if body_text.is_empty() {
        rest
    } else {
        let mut end = body_text.len().min(200);
        while !body_text.is_char_boundary(end) {
            end -= 1;
        }
        let suffix = format!(" (body: {:?})", &body_text[..end]);
        rest.strip_suffix(suffix.as_str()).unwrap_or(rest)
    };
    let rest = rest.strip_prefix(": ").unwrap_or(rest).trim();
    (!rest.is_empty()).then(|| rest.to_string())
}
