//! One client connection as a room member, as `wsx serve --broadcast` runs
//! it: without the subprotocol each data message it sends is published as
//! it is, and it receives the room's payloads; with `wsx.pubsub.v1` it
//! sends publish requests (text JSON, or binary frames as they are) and
//! receives envelopes, acks and errors, after resuming from `?since=&epoch=`.

use crate::fanout::{Fanout, JoinError, JoinOptions};
use crate::wire::{ClientMsg, Payload, Position, ServerMsg};
use crate::FanoutError;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use wsx::{CloseCode, CloseFrame, Message, WebSocket};

/// What a member connection did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MemberStats {
    /// Data messages received from the client.
    pub received: u64,
    /// Their payload bytes.
    pub bytes_in: u64,
    /// Publishes that went through.
    pub published: u64,
    /// Publishes that failed (broker away) or were malformed.
    pub errors: u64,
    /// Pongs received.
    pub pongs: u64,
}

/// The position in `?since=OFFSET&epoch=EPOCH` (both or neither).
///
/// ```
/// let p = wsx_fanout::resume_from_query("since=41&epoch=173").unwrap().unwrap();
/// assert_eq!((p.offset, p.epoch.as_str()), (41, "173"));
/// assert!(wsx_fanout::resume_from_query("since=41").is_err());
/// assert_eq!(wsx_fanout::resume_from_query("x=1").unwrap(), None);
/// ```
///
/// # Errors
/// One without the other, or an offset that is not a number.
pub fn resume_from_query(query: &str) -> Result<Option<Position>, String> {
    let (mut since, mut epoch) = (None, None);
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("since", v)) => since = Some(v),
            Some(("epoch", v)) => epoch = Some(v),
            _ => {}
        }
    }
    match (since, epoch) {
        (None, None) => Ok(None),
        (Some(s), Some(e)) => Ok(Some(Position {
            offset: s
                .parse()
                .map_err(|_| format!("since={s} is not an offset (a number)"))?,
            epoch: e.to_string(),
        })),
        _ => Err(
            "resume with both since=OFFSET and epoch=EPOCH (from the last message's envelope)"
                .into(),
        ),
    }
}

/// Runs `ws` as a member of `room` until the client leaves. With
/// `opts.envelope` the client speaks `wsx.pubsub.v1`; without, it gets and
/// sends bare payloads, and a publish that fails (the broker is away)
/// closes it with 1013 (try again later) and the reason: nothing it sent
/// is dropped silently.
///
/// # Errors
/// The connection failed (as [`wsx::WsReader::recv`]).
pub async fn serve_member<S>(
    fanout: &Fanout,
    ws: WebSocket<S>,
    room: &str,
    opts: JoinOptions,
) -> (
    Result<(), wsx::Error>,
    Option<wsx::wsx_proto::Closed>,
    MemberStats,
)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let envelope = opts.envelope;
    let (mut reader, writer) = ws.split();
    let mut stats = MemberStats::default();
    let member = match fanout.join(room, writer, opts).await {
        Ok(m) => m,
        Err(JoinError { error, mut writer }) => {
            let reason = match &error {
                FanoutError::Unavailable(m) | FanoutError::Invalid(m) => m.clone(),
            };
            tracing::warn!(room, "join refused: {reason}");
            let _ = writer
                .close(Some(CloseFrame::new(
                    CloseCode::TRY_AGAIN_LATER,
                    truncate(&reason),
                )))
                .await;
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                while let Ok(Some(_)) = reader.recv().await {}
            })
            .await;
            return (Ok(()), reader.close_info(), stats);
        }
    };
    let result = loop {
        let msg = match reader.recv().await {
            Ok(Some(m)) => m,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        let (payload, key) = match &msg {
            Message::Pong(_) => {
                stats.pongs += 1;
                continue;
            }
            Message::Ping(_) => continue,
            Message::Text(t) if envelope => {
                stats.received += 1;
                stats.bytes_in += t.len() as u64;
                match serde_json::from_str::<ClientMsg>(t.as_str())
                    .map_err(|e| format!("not a {} request ({e}); send {{\"type\":\"publish\",\"text\":\"...\",\"key\":\"optional idempotency key\"}}", crate::SUBPROTOCOL))
                    .and_then(ClientMsg::into_publish)
                {
                    Ok(p) => p,
                    Err(message) => {
                        stats.errors += 1;
                        let error = ServerMsg::Error { message, retryable: false, key: None };
                        member.send(&error).await;
                        continue;
                    }
                }
            }
            other => {
                stats.received += 1;
                stats.bytes_in += other.len() as u64;
                (Payload::from_message(other).expect("a data message"), None)
            }
        };
        match fanout.publish(room, payload, key.as_deref()).await {
            Ok(done) => {
                stats.published += 1;
                if envelope {
                    let ack = ServerMsg::Ack {
                        epoch: done.position.epoch,
                        offset: done.position.offset,
                        key,
                        duplicate: done.duplicate,
                    };
                    member.send(&ack).await;
                }
            }
            Err(e) => {
                stats.errors += 1;
                if envelope {
                    let error = ServerMsg::Error {
                        message: e.message,
                        retryable: e.retryable,
                        key,
                    };
                    member.send(&error).await;
                } else {
                    // A bare client cannot be told otherwise: close with
                    // the reason, it reconnects and sends again.
                    tracing::warn!(
                        room,
                        "closing a client whose message could not be published: {}",
                        e.message
                    );
                    member.close(CloseFrame::new(
                        CloseCode::TRY_AGAIN_LATER,
                        truncate(&format!("not published: {}", e.message)),
                    ));
                }
            }
        }
    };
    drop(member);
    let closed = reader.close_info();
    (result, closed, stats)
}

/// A close reason fits in 123 bytes.
fn truncate(s: &str) -> String {
    let mut end = s.len().min(123);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}
