//! One connection, a *session*: a reader (messages to the screen) and a
//! writer (input to the socket) polled together, so a writer blocked by
//! backpressure never stops the reader; at the end of input, the wait
//! for the replies ([`Linger`]) before the close.

use super::input::{Input, InputQueue};
use super::linger::Linger;
use super::opts::Opts;
use super::output::{binary_message, format_rtt, show_payload, text_message, Out};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use wsx::{CloseCode, CloseFrame, Closed, Event, MaybeTlsStream, Message, WebSocket};
use wsx::{WsReader, WsWriter};

/// How one connection ended.
pub(super) enum End {
    Closed(Closed),
    Io(Arc<wsx::Error>),
    /// `recv` reported the end without a `Closed` event (not expected).
    Gone,
    /// stdout went away: we closed with 1000.
    OutputClosed,
}

pub(super) struct Outcome {
    pub(super) end: End,
    /// We sent (or meant to send) a close: do not reconnect.
    pub(super) quitting: bool,
    /// `--once` printed its reply.
    pub(super) replied: bool,
    pub(super) lasted: Duration,
}

/// State the reader and writer of one session share (same task).
#[derive(Default)]
struct Shared {
    pings: RefCell<VecDeque<(Vec<u8>, Instant)>>,
    quitting: Cell<bool>,
    replied: Cell<bool>,
    reply: Notify,
    /// Data messages sent and received on this connection, and when the
    /// last one (or a fragment of one) arrived: what [`Linger`] decides on.
    sent: Cell<u64>,
    received: Cell<u64>,
    last_arrival: Cell<Option<Instant>>,
    /// Wakes [`linger`] at each arrival: the reply that answers the last
    /// message brings the close forward.
    arrival: Notify,
}

impl Shared {
    /// A message or a fragment of one arrived: the replies have not stopped.
    fn arrived(&self) {
        self.last_arrival.set(Some(Instant::now()));
        self.arrival.notify_one();
    }
}

type Reader = WsReader<MaybeTlsStream>;
type Writer = WsWriter<MaybeTlsStream>;

/// Waits until [`Linger`] says the replies have stopped (the reader goes on
/// printing them meanwhile); returns the rule as it stood then.
async fn linger(shared: &Shared) -> Linger {
    let eof = Instant::now();
    loop {
        // Registered before the state is read: an arrival from here on
        // wakes us (a permit left by an earlier one only recomputes).
        let arrived = shared.arrival.notified();
        tokio::pin!(arrived);
        arrived.as_mut().enable();
        let rule = Linger {
            eof,
            sent: shared.sent.get(),
            received: shared.received.get(),
            last_arrival: shared.last_arrival.get(),
        };
        let at = rule.close_at();
        if Instant::now() >= at {
            return rule;
        }
        tokio::select! {
            () = tokio::time::sleep_until(at.into()) => {}
            () = &mut arrived => {}
        }
    }
}

/// One connection: prints what arrives, sends what the user gives, until
/// the connection ends (or stdout goes away).
pub(super) async fn session(
    ws: WebSocket<MaybeTlsStream>,
    input: &mut InputQueue,
    out: &Out,
    opts: &Opts,
) -> Outcome {
    let started = Instant::now();
    let shared = Shared::default();
    let (mut rx, mut tx) = ws.split();
    let end = {
        let reader = read_loop(&mut rx, out, opts, &shared);
        let writer = write_loop(&mut tx, input, out, opts, &shared);
        tokio::pin!(reader, writer);
        tokio::select! {
            end = &mut reader => end,
            never = &mut writer => match never {},
        }
    };
    if matches!(end, End::OutputClosed) {
        shared.quitting.set(true);
        let _ = tx.close(Some(CloseFrame::new(CloseCode::NORMAL, ""))).await;
        // Finish the close handshake (bounded by the close timeout).
        while let Ok(Some(ev)) = rx.recv_event().await {
            if matches!(ev, Event::Closed(_)) {
                break;
            }
        }
    }
    Outcome {
        end,
        quitting: shared.quitting.get(),
        replied: shared.replied.get(),
        lasted: started.elapsed(),
    }
}

async fn read_loop(rx: &mut Reader, out: &Out, opts: &Opts, shared: &Shared) -> End {
    loop {
        let ev = match rx.recv_event().await {
            Ok(Some(ev)) => ev,
            Ok(None) => return End::Gone,
            Err(e) => return End::Io(Arc::new(e)),
        };
        let text = match ev {
            Event::Text(t) => text_message(&t, opts.json),
            Event::Binary(b) => binary_message(&b, opts.binary_format, out.interactive()),
            Event::Ping(p) => {
                if opts.show_ping {
                    out.info(&format!("< ping {}", show_payload(&p, opts.binary_format)));
                }
                continue;
            }
            Event::Pong(p) => {
                pong(&p, out, opts, shared);
                continue;
            }
            Event::Fragment(_) => {
                // A message is on its way: the replies have not stopped.
                shared.arrived();
                continue;
            }
            Event::Closed(c) => return End::Closed(c),
        };
        shared.received.set(shared.received.get() + 1);
        shared.arrived();
        if opts.once && shared.replied.get() {
            continue;
        }
        if out.message(&text).is_err() {
            return End::OutputClosed;
        }
        if opts.once {
            shared.replied.set(true);
            shared.reply.notify_one();
        }
    }
}

/// A pong: the answer to a `/ping` with its round trip, or a keepalive's
/// (shown with `--show-ping`).
fn pong(p: &[u8], out: &Out, opts: &Opts, shared: &Shared) {
    let sent = {
        let mut pings = shared.pings.borrow_mut();
        let i = pings.iter().position(|(d, _)| d[..] == p[..]);
        i.and_then(|i| pings.remove(i)).map(|(_, at)| at)
    };
    let shown = show_payload(p, opts.binary_format);
    match sent {
        Some(at) => out.info(&format!("< pong {shown} ({})", format_rtt(at.elapsed()))),
        None if opts.show_ping => out.info(&format!("< pong {shown} (keepalive)")),
        None => {}
    }
}

/// Sends input until a close; never returns (the reader ends the session).
async fn write_loop(
    tx: &mut Writer,
    input: &mut InputQueue,
    out: &Out,
    opts: &Opts,
    shared: &Shared,
) -> Infallible {
    loop {
        match input.next().await {
            Input::Data(m) => {
                if tx.feed(m.clone()).await.is_err() {
                    // Not queued: keep it for the next connection.
                    input.pending.push_front(Input::Data(m));
                    break;
                }
                shared.sent.set(shared.sent.get() + 1);
                // Batch what is already waiting into one write; the next
                // send, ping or close flushes.
                let more = !input.pending.is_empty() || !input.rx.is_empty();
                if !more && tx.flush().await.is_err() {
                    break;
                }
            }
            Input::Ping(p) => {
                shared
                    .pings
                    .borrow_mut()
                    .push_back((p.clone(), Instant::now()));
                if tx.send(Message::Ping(p.into())).await.is_err() {
                    break;
                }
            }
            Input::Close(frame) => {
                shared.quitting.set(true);
                let _ = tx.close(Some(frame)).await;
                break;
            }
            Input::Eof => {
                end_of_input(tx, out, opts, shared).await;
                break;
            }
        }
    }
    std::future::pending().await
}

/// The end of input: flush, wait as `--once`, `--wait` or the end-of-input
/// rule says, then close with 1000.
async fn end_of_input(tx: &mut Writer, out: &Out, opts: &Opts, shared: &Shared) {
    // Whatever is still queued must go out before we wait.
    if tx.flush().await.is_err() {
        return;
    }
    if opts.once {
        shared.reply.notified().await;
    } else if let Some(wait) = opts.wait {
        tokio::time::sleep(wait).await;
    } else if opts.linger {
        let rule = linger(shared).await;
        if opts.verbose {
            out.info(&format!("wsx: end of input: {}", rule.explain()));
        }
    }
    shared.quitting.set(true);
    let _ = tx.close(Some(CloseFrame::new(CloseCode::NORMAL, ""))).await;
}
