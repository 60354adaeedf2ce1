//! One viewer's connection to a session: the screen first, then output and
//! events as they come, at the viewer's own pace; input and resizes back.
//!
//! Flow control is per viewer: output is read from the session's window at
//! the pace this socket takes it, in frames of up to [`MAX_FRAME`] bytes
//! gathered over [`BATCH_DELAY`]; a viewer too far behind is sent a fresh
//! screen instead of the backlog. Input is polled before output, so Ctrl-C
//! goes through under a flood.

use crate::protocol::{ClientMsg, Role, ServerMsg, SUBPROTOCOL};
use crate::session::Session;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use wsx::{CloseCode, CloseFrame, Message, WebSocket};

/// The most output in one binary frame.
pub const MAX_FRAME: usize = 64 << 10;
/// How long output is gathered after a wake-up before it is sent: a few
/// bytes per PTY read would otherwise each cost a frame.
pub const BATCH_DELAY: Duration = Duration::from_millis(2);

/// Detaches the viewer however its task ends.
struct Detach<'a>(&'a Session, u64);

impl Drop for Detach<'_> {
    fn drop(&mut self) {
        self.0.detach(self.1);
    }
}

/// Runs one viewer until it leaves, the session ends, or the socket fails.
pub async fn run<S>(mut ws: WebSocket<S>, session: Arc<Session>, role: Role)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let attached = session.attach(role);
    let _detach = Detach(&session, attached.viewer);
    let (snapshot, cols, rows) = attached.snapshot;
    let hello = ServerMsg::Hello {
        protocol: SUBPROTOCOL.to_string(),
        session: session.id().to_string(),
        viewer: attached.viewer,
        role,
        cols,
        rows,
    };
    let snapshot_msg = ServerMsg::Snapshot {
        cols,
        rows,
        reason: "attach".into(),
    };
    let mut first = vec![
        Message::text(hello.to_json()),
        Message::text(snapshot_msg.to_json()),
        Message::binary(snapshot),
    ];
    if let Some(state) = attached.state {
        first.push(Message::text(state.to_json()));
    }
    for m in first {
        if ws.send(m).await.is_err() {
            return;
        }
    }
    let mut cursor = attached.cursor;
    let mut changes = attached.changes;
    let mut more = false;
    // Set after a wake-up: output is gathered until then.
    let mut flush_at: Option<Instant> = None;
    loop {
        if flush_at.is_none() {
            let batch = session.next_batch(&mut cursor, MAX_FRAME);
            more = batch.more;
            let mut out = Vec::with_capacity(batch.events.len() + 3);
            for e in batch.events {
                out.push(Message::text(e.to_json()));
            }
            if let Some((screen, cols, rows)) = batch.resync {
                let msg = ServerMsg::Snapshot {
                    cols,
                    rows,
                    reason: "lagged".into(),
                };
                out.push(Message::text(msg.to_json()));
                out.push(Message::binary(screen));
            }
            if !batch.output.is_empty() {
                out.push(Message::binary(batch.output));
            }
            for m in out {
                if ws.feed(m).await.is_err() {
                    return;
                }
            }
            if let Some(exit) = batch.exit {
                let reason = exit.describe();
                let msg = ServerMsg::Exit {
                    code: exit.code,
                    signal: exit.signal,
                };
                if ws.send(Message::text(msg.to_json())).await.is_ok() {
                    let _ = ws
                        .close(Some(CloseFrame::new(
                            CloseCode::NORMAL,
                            format!("session {reason}"),
                        )))
                        .await;
                    // Read until the client answers the close (bounded).
                    let _ = tokio::time::timeout(Duration::from_secs(2), async {
                        while let Ok(Some(_)) = ws.recv().await {}
                    })
                    .await;
                }
                return;
            }
            if ws.flush().await.is_err() {
                return;
            }
        }
        tokio::select! {
            biased;
            msg = ws.recv() => match msg {
                Ok(Some(msg)) => {
                    if let Some(reply) = on_message(&session, role, msg).await {
                        if ws.send(Message::text(reply.to_json())).await.is_err() {
                            return;
                        }
                    }
                }
                Ok(None) | Err(_) => return,
            },
            () = std::future::ready(()), if more && flush_at.is_none() => {}
            () = sleep_until(flush_at), if flush_at.is_some() => flush_at = None,
            changed = changes.changed(), if !more && flush_at.is_none() => {
                if changed.is_err() {
                    return; // the session is gone
                }
                flush_at = Some(Instant::now() + BATCH_DELAY);
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at).await;
    }
}

/// A message from the viewer; the answer, if it was refused.
async fn on_message(session: &Session, role: Role, msg: Message) -> Option<ServerMsg> {
    let refuse = |message: String| Some(ServerMsg::Error { message });
    match msg {
        Message::Binary(bytes) => {
            if role != Role::Writer {
                return refuse(format!(
                    "input refused: this viewer is read-only (role {}); ask for a writer link",
                    role.as_str()
                ));
            }
            if !session.write(bytes.to_vec()).await {
                return refuse("input refused: the program has ended".into());
            }
            None
        }
        Message::Text(text) => match serde_json::from_str::<ClientMsg>(text.as_str()) {
            Ok(ClientMsg::Resize { cols, rows }) => {
                if role != Role::Writer {
                    return refuse("resize refused: this viewer is read-only".into());
                }
                match session.resize(cols, rows) {
                    Ok(()) => None,
                    Err(e) => refuse(format!("resize failed: {e}")),
                }
            }
            Err(e) => refuse(format!(
                "not a {SUBPROTOCOL} message ({e}); send input as binary frames and {{\"type\":\"resize\",\"cols\":C,\"rows\":R}} as text"
            )),
        },
        _ => None,
    }
}
