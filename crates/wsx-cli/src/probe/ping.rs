//! After the handshake: a ping that must come back as a pong (its round
//! trip is the probe's `rtt`), then a 1000 close and how the server
//! answered it (problems there are warnings, not failures).

use super::record::{ms_text, reason_text, secs, CloseReport, Failure, Probe};
use super::request::random_bytes;
use crate::diagnose;
use bytes::Bytes;
use std::time::Duration;
use tokio::time::{timeout, Instant};
use wsx::wsx_proto::handshake::Handshaken;
use wsx::{CloseCode, CloseFrame, MaybeTlsStream, Message, WebSocket};

/// The socket on the handshaken stream, its close timeout the step limit.
pub(super) fn websocket(
    stream: MaybeTlsStream,
    done: &Handshaken,
    step_timeout: Duration,
) -> WebSocket<MaybeTlsStream> {
    let config = wsx::Config::builder()
        .close_timeout(step_timeout)
        .build()
        .unwrap_or_default();
    let mut seed = [0u8; 32];
    random_bytes(&mut seed);
    let conn = wsx::wsx_proto::Connection::client(config, seed, std::time::Instant::now());
    WebSocket::from_connection(stream, conn, &done.leftover)
}

impl Probe {
    pub(super) async fn ping(&mut self, ws: &mut WebSocket<MaybeTlsStream>) -> Result<(), Failure> {
        let mut tag = [0u8; 8];
        random_bytes(&mut tag);
        let payload = Bytes::from(format!("wsx probe {}", u64::from_le_bytes(tag)));
        let start = Instant::now();
        let outcome = timeout(self.timeout, async {
            ws.send(Message::Ping(payload.clone())).await?;
            loop {
                match ws.recv().await? {
                    Some(Message::Pong(p)) if p == payload => return Ok::<_, wsx::Error>(true),
                    Some(_) => {}
                    None => return Ok(false),
                }
            }
        })
        .await;
        let elapsed = start.elapsed();
        match outcome {
            Ok(Ok(true)) => {
                self.rtt = Some(elapsed);
                self.timings.ping = Some(elapsed);
                self.say(format!("ping: {}", ms_text(elapsed)));
                Ok(())
            }
            Ok(Ok(false)) => {
                let closed = ws.close_info().map(CloseReport::from_closed);
                let how = closed.as_ref().map_or(String::new(), |c| {
                    format!(" with {}{}", c.text, reason_text(&c.reason))
                });
                self.close = closed;
                Err(Failure::new(
                    "ping",
                    format!("the server closed the connection{how} before answering the ping"),
                )
                .hint("the handshake worked but the server ended the session right away: it may expect a subprotocol, a message first, or authentication"))
            }
            Ok(Err(e)) => {
                self.close = e.close_info().map(CloseReport::from_closed);
                Err(Failure::new(
                    "ping",
                    format!("the connection failed during the ping: {}", diagnose::chain(&e)),
                ))
            }
            Err(_) => Err(Failure::new(
                "ping",
                format!(
                    "the ping step timed out: no pong within {}",
                    secs(self.timeout)
                ),
            )
            .hint("the handshake worked but the server does not answer pings (RFC 6455 §5.5.2 requires a pong): a non-conforming server, or something between that does not pass frames")),
        }
    }

    /// Closes with 1000 and reports how it went; problems are warnings.
    pub(super) async fn close(&mut self, ws: &mut WebSocket<MaybeTlsStream>) {
        let start = Instant::now();
        let outcome = timeout(self.timeout, async {
            ws.close(Some(CloseFrame::new(CloseCode::NORMAL, "")))
                .await?;
            loop {
                match ws.recv().await {
                    Ok(Some(_)) => {}
                    Ok(None) => return Ok(ws.close_info().cloned()),
                    Err(e) => return Err(e),
                }
            }
        })
        .await;
        let elapsed = start.elapsed();
        match outcome {
            Ok(Ok(Some(c))) => {
                let report = CloseReport::from_closed(&c);
                self.timings.close = Some(elapsed);
                self.say(format!(
                    "close: sent 1000, server answered {}{}, {} ({})",
                    report.text,
                    reason_text(&report.reason),
                    if report.clean { "clean" } else { "not clean" },
                    ms_text(elapsed)
                ));
                if report.code != 1000 {
                    self.warnings.push(format!(
                        "the server answered our 1000 close with {}",
                        report.text
                    ));
                }
                self.close = Some(report);
            }
            Ok(Ok(None)) => {
                self.timings.close = Some(elapsed);
                self.say(format!("close: done ({})", ms_text(elapsed)));
            }
            Ok(Err(e)) => {
                self.close = e.close_info().map(CloseReport::from_closed);
                let e = diagnose::chain(&e);
                self.warnings
                    .push(format!("the close handshake did not complete cleanly: {e}"));
                self.say(format!("close: not clean: {e}"));
            }
            Err(_) => {
                let w = format!(
                    "the server did not answer the close frame within {}",
                    secs(self.timeout)
                );
                self.say(format!("close: {w}"));
                self.warnings.push(w);
            }
        }
    }
}
