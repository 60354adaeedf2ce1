//! [`ReconnectingClient`]: its configuration, events and handle, and the
//! task that owns the connection and follows a [`Schedule`].

use super::backoff::{Backoff, Jitter};
use super::policy::{Disconnect, RetryPolicy};
use super::schedule::{Decision, GiveUpReason, Schedule};
use crate::client::{connect_with, ClientConfig};
use crate::error::Error;
use crate::socket::WebSocket;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use wsx_proto::handshake::ClientRequest;
use wsx_proto::{CloseCode, CloseFrame, Message};

/// Settings of a [`ReconnectingClient`].
#[derive(Debug, Clone)]
pub struct ReconnectConfig {
    /// Settings of each connection (timeouts, limits).
    pub client: ClientConfig,
    /// Delays between attempts.
    pub backoff: Backoff,
    /// Which ends and failures are worth another attempt.
    pub retry: RetryPolicy,
    /// Events waiting for the application, at most. Default 16. When the
    /// queue is full the client stops reading the socket, so TCP pushes back
    /// on the server instead of memory growing (at worst this many messages
    /// of `max_message_size` each are held). While the client waits, it also
    /// answers no pings: an application that stops reading for longer than
    /// the server's keepalive timeout gets disconnected.
    pub event_capacity: usize,
    /// Seed of the jitter; `None` (the default) seeds from the OS. Fix it
    /// in tests to get the same delays every run.
    pub jitter_seed: Option<u64>,
}

impl Default for ReconnectConfig {
    fn default() -> Self {
        ReconnectConfig {
            client: ClientConfig::default(),
            backoff: Backoff::default(),
            retry: RetryPolicy::default(),
            event_capacity: 16,
            jitter_seed: None,
        }
    }
}

impl ReconnectConfig {
    /// The reconnect decisions these settings make, as plain data: the
    /// [`Schedule`] the client's task follows (jitter seeded from
    /// `jitter_seed`, else from the OS). For driving a reconnect loop of
    /// one's own with the same policy.
    pub fn schedule(&self) -> Schedule {
        let jitter = self
            .jitter_seed
            .map_or_else(Jitter::from_entropy, Jitter::new);
        Schedule::new(self.backoff.clone(), self.retry.clone(), jitter)
    }
}

/// What a [`ReconnectingClient`] reports, in order.
///
/// A session reads: `Connected`, `Message`s, `Disconnected`, then either
/// `Reconnecting` (possibly several, when attempts fail) and `Reconnected`,
/// or `GaveUp`. Every message that arrived before a connection ended is
/// delivered before its `Disconnected`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ReconnectEvent {
    /// The first connection is up.
    Connected,
    /// A message from the server (pings are answered automatically and
    /// reported too).
    Message(Message),
    /// The connection ended. Sends fail with [`NotSent`] until the next
    /// `Connected`/`Reconnected`.
    Disconnected {
        /// How it ended.
        cause: Disconnect,
    },
    /// Waiting `delay` before attempt number `attempt` (from 1, counted
    /// since the last connection that stayed up for
    /// [`Backoff::reset_after`]).
    Reconnecting {
        /// This attempt's number.
        attempt: u32,
        /// The wait before it.
        delay: Duration,
        /// Why: how the connection ended, or why the previous attempt failed.
        cause: Disconnect,
    },
    /// Connected again: resubscribe, resend what must be resent.
    Reconnected {
        /// The number of the attempt that succeeded (as in `Reconnecting`).
        attempts: u32,
    },
    /// No more attempts: the retry policy declined `cause`, or
    /// [`Backoff::max_attempts`] were made. The last event.
    GaveUp {
        /// The end or failure that was not retried.
        cause: Disconnect,
    },
}

/// A message a [`ReconnectingClient`] did not send, handed back.
#[derive(Debug)]
pub struct NotSent {
    message: Message,
    why: NotSentWhy,
}

#[derive(Debug)]
enum NotSentWhy {
    Disconnected,
    Stopped,
    Refused(Error),
}

impl NotSent {
    /// There was no connection (between a drop and the next reconnect, or
    /// while closing).
    pub fn is_disconnected(&self) -> bool {
        matches!(self.why, NotSentWhy::Disconnected)
    }

    /// The client has stopped (closed, gave up, or dropped).
    pub fn is_stopped(&self) -> bool {
        matches!(self.why, NotSentWhy::Stopped)
    }

    /// The connection refused the message (it is closing, or a control
    /// message's payload exceeds 125 bytes): see [`NotSent::error`].
    pub fn error(&self) -> Option<&Error> {
        match &self.why {
            NotSentWhy::Refused(e) => Some(e),
            _ => None,
        }
    }

    /// The message that was not sent.
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// The message that was not sent.
    pub fn into_message(self) -> Message {
        self.message
    }
}

impl fmt::Display for NotSent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.why {
            NotSentWhy::Disconnected => f.write_str(
                "message not sent: not connected (send it again after the Reconnected event)",
            ),
            NotSentWhy::Stopped => f.write_str("message not sent: the reconnecting client stopped"),
            NotSentWhy::Refused(e) => write!(f, "message not sent: {e}"),
        }
    }
}

impl std::error::Error for NotSent {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.why {
            NotSentWhy::Refused(e) => Some(e),
            _ => None,
        }
    }
}

// ---- the handle ------------------------------------------------------------------

enum Command {
    Send(Message, oneshot::Sender<Result<(), NotSent>>),
    Close(Option<CloseFrame>),
}

/// A WebSocket client that reconnects with backoff.
///
/// A background task owns the connection. It connects, delivers what
/// arrives as [`ReconnectEvent`]s, and when the connection ends or cannot be
/// made, asks its [`Schedule`] whether to try again: the [`RetryPolicy`]
/// decides which causes are worth it, and a [`Backoff`] delay (exponential,
/// full jitter, capped) comes before each attempt.
/// `Reconnecting { attempt, delay, cause }` comes before each wait and
/// `Reconnected` after, so the application can resubscribe. Each decision
/// is also logged (`tracing`, target `wsx::reconnect`) with its cause.
///
/// Messages are never queued across a reconnect: a send while there is no
/// connection hands the message back ([`NotSent`]). What was sent on a
/// connection that then dropped may or may not have reached the server;
/// only the application knows what to resend after `Reconnected`.
///
/// ```no_run
/// # async fn run() -> Result<(), wsx::Error> {
/// use wsx::{Message, client::{ClientRequest}, reconnect::{ReconnectConfig, ReconnectEvent, ReconnectingClient}};
///
/// let req = ClientRequest::new("ws://127.0.0.1:9001/feed")?;
/// let mut client = ReconnectingClient::connect(req, ReconnectConfig::default());
/// let sender = client.sender();
/// while let Some(event) = client.recv().await {
///     match event {
///         ReconnectEvent::Connected | ReconnectEvent::Reconnected { .. } => {
///             // (Re)subscribe: nothing sent before the drop is resent for us.
///             if let Err(e) = sender.send(Message::text(r#"{"subscribe":"prices"}"#)).await {
///                 eprintln!("{e}"); // dropped again already; the next Reconnected retries
///             }
///         }
///         ReconnectEvent::Message(msg) => println!("{msg:?}"),
///         ReconnectEvent::Reconnecting { attempt, delay, cause } => {
///             eprintln!("{cause}; attempt {attempt} in {delay:?}");
///         }
///         ReconnectEvent::GaveUp { cause } => eprintln!("giving up: {cause}"),
///         _ => {}
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ReconnectingClient {
    events: mpsc::Receiver<ReconnectEvent>,
    sender: ReconnectSender,
}

/// Sends messages on a [`ReconnectingClient`]'s current connection; cheap to
/// clone, usable from any task.
#[derive(Debug, Clone)]
pub struct ReconnectSender {
    commands: mpsc::Sender<Command>,
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Send(m, _) => f.debug_tuple("Send").field(m).finish(),
            Command::Close(c) => f.debug_tuple("Close").field(c).finish(),
        }
    }
}

impl ReconnectingClient {
    /// Starts a background task that connects to `req`, and reconnects as
    /// `config` says. Returns at once; the first event says how connecting
    /// went (`Connected`, `Reconnecting`, or `GaveUp`).
    ///
    /// # Panics
    /// Outside a tokio runtime (it spawns a task).
    pub fn connect(req: ClientRequest, config: ReconnectConfig) -> Self {
        let (event_tx, events) = mpsc::channel(config.event_capacity.max(1));
        let (command_tx, commands) = mpsc::channel(1);
        let task = Task {
            req,
            schedule: config.schedule(),
            client: config.client,
            events: event_tx,
            commands,
        };
        tokio::spawn(task.run());
        ReconnectingClient {
            events,
            sender: ReconnectSender {
                commands: command_tx,
            },
        }
    }

    /// The next event; `None` once the client has stopped (after `GaveUp`,
    /// or after [`ReconnectingClient::close`] finished).
    ///
    /// # Cancel safety
    /// Cancel safe: no event is lost if the future is dropped.
    pub async fn recv(&mut self) -> Option<ReconnectEvent> {
        self.events.recv().await
    }

    /// A handle for sending from other tasks.
    pub fn sender(&self) -> ReconnectSender {
        self.sender.clone()
    }

    /// Sends on the current connection; see [`ReconnectSender::send`].
    ///
    /// # Errors
    /// As [`ReconnectSender::send`].
    ///
    /// # Cancel safety
    /// As [`ReconnectSender::send`].
    pub async fn send(&self, message: Message) -> Result<(), NotSent> {
        self.sender.send(message).await
    }

    /// Closes the connection with `frame` (`None`: no status code) and stops
    /// reconnecting. Keep calling [`ReconnectingClient::recv`]: the messages
    /// the server sent before its close reply still arrive, then
    /// `Disconnected`, then `None`. While disconnected, the client stops at
    /// once. Dropping the client instead closes with 1001 (going away).
    ///
    /// # Cancel safety
    /// Cancel safe: if cancelled, the request may or may not have been
    /// made; call it again.
    pub async fn close(&self, frame: Option<CloseFrame>) {
        // An error means the client has already stopped.
        let _ = self.sender.commands.send(Command::Close(frame)).await;
    }
}

impl ReconnectSender {
    /// Sends `message` on the current connection. Returns once the
    /// connection has queued it (it is written as soon as the socket takes
    /// it; `Ok` does not mean the server received it).
    ///
    /// # Errors
    /// The message is handed back in a [`NotSent`] when there is no
    /// connection (it is not kept for the next one: after a reconnect the
    /// application decides what is still worth sending), when the client has
    /// stopped, or when the connection refuses it.
    ///
    /// # Cancel safety
    /// Not cancel safe: if cancelled, the message may or may not be sent.
    pub async fn send(&self, message: Message) -> Result<(), NotSent> {
        let (reply, answer) = oneshot::channel();
        // Kept to hand back if the task ends without answering (it answers
        // every command it takes; this covers a panic). Cloning a message
        // only counts a reference.
        let copy = message.clone();
        if let Err(mpsc::error::SendError(cmd)) =
            self.commands.send(Command::Send(message, reply)).await
        {
            let Command::Send(message, _) = cmd else {
                unreachable!("sent a Send")
            };
            return Err(NotSent {
                message,
                why: NotSentWhy::Stopped,
            });
        }
        answer.await.unwrap_or(Err(NotSent {
            message: copy,
            why: NotSentWhy::Stopped,
        }))
    }
}

// ---- the task --------------------------------------------------------------------

struct Task {
    req: ClientRequest,
    client: ClientConfig,
    schedule: Schedule,
    events: mpsc::Sender<ReconnectEvent>,
    commands: mpsc::Receiver<Command>,
}

/// The application asked to stop (`close()`), or dropped the client.
struct Stop;

/// How a connection ended: the cause, and whether the application closed it.
struct Ended {
    cause: Disconnect,
    closing: bool,
}

impl Task {
    async fn run(mut self) {
        let _ = self.reconnect_loop().await;
        // Answer the sends still queued, so none waits forever.
        self.commands.close();
        while let Ok(cmd) = self.commands.try_recv() {
            if let Command::Send(message, reply) = cmd {
                let _ = reply.send(Err(NotSent {
                    message,
                    why: NotSentWhy::Stopped,
                }));
            }
        }
    }

    async fn reconnect_loop(&mut self) -> Result<(), Stop> {
        let url = self.req.to_string();
        let mut connected_before = false;
        loop {
            let connecting = connect_with(&self.req, &self.client);
            let (decision, cause) = match idle(&mut self.commands, &self.events, connecting).await?
            {
                Ok((ws, _)) => {
                    let first = if connected_before {
                        let attempts = self.schedule.attempt();
                        tracing::info!(%url, attempt = attempts, "reconnected");
                        ReconnectEvent::Reconnected { attempts }
                    } else {
                        tracing::debug!(%url, "connected");
                        ReconnectEvent::Connected
                    };
                    connected_before = true;
                    let since = Instant::now();
                    let ended = self.connected(ws, first).await?;
                    // Measured at the end, not after the application took the
                    // `Disconnected` event: a slow reader does not make a
                    // short connection look stable.
                    let lived = since.elapsed();
                    self.emit(ReconnectEvent::Disconnected {
                        cause: ended.cause.clone(),
                    })
                    .await?;
                    if ended.closing {
                        tracing::debug!(%url, cause = %ended.cause, "closed by the application");
                        return Ok(());
                    }
                    (self.schedule.on_end(&ended.cause, lived), ended.cause)
                }
                Err(e) => {
                    let cause = Disconnect::from(e);
                    (self.schedule.on_connect_error(&cause), cause)
                }
            };
            let (attempt, delay) = match decision {
                Decision::Retry { attempt, delay } => (attempt, delay),
                Decision::GiveUp { reason } => {
                    match reason {
                        GiveUpReason::MaxAttempts { attempts } => tracing::warn!(
                            %url, %cause, attempts,
                            "not reconnecting: {reason} \
                             (raise Backoff::max_attempts, or None to retry forever)"
                        ),
                        _ => tracing::warn!(
                            %url, %cause,
                            "not reconnecting: {reason} \
                             (fix the cause, or widen ReconnectConfig::retry if it is transient)"
                        ),
                    }
                    return self.emit(ReconnectEvent::GaveUp { cause }).await;
                }
            };
            tracing::warn!(%url, %cause, attempt, ?delay, "reconnecting after a delay");
            self.emit(ReconnectEvent::Reconnecting {
                attempt,
                delay,
                cause,
            })
            .await?;
            idle(&mut self.commands, &self.events, tokio::time::sleep(delay)).await?;
        }
    }

    /// Delivers `event` while there is no connection.
    async fn emit(&mut self, event: ReconnectEvent) -> Result<(), Stop> {
        match idle(&mut self.commands, &self.events, self.events.reserve()).await? {
            Ok(permit) => {
                permit.send(event);
                Ok(())
            }
            Err(_) => Err(Stop),
        }
    }

    /// Runs one connection until it ends, delivering `first`, then each
    /// message, in order.
    async fn connected(
        &mut self,
        mut ws: WebSocket<crate::MaybeTlsStream>,
        first: ReconnectEvent,
    ) -> Result<Ended, Stop> {
        // One event at a time waits for room in the queue; meanwhile the
        // socket is not read (backpressure) but sends are still taken.
        let mut pending = Some(first);
        let mut closing = false;
        loop {
            let want_message = pending.is_none();
            tokio::select! {
                cmd = self.commands.recv() => match cmd {
                    Some(Command::Send(message, reply)) => {
                        let result = match ws.feed(message.clone()).await {
                            Ok(()) => Ok(()),
                            Err(e) => Err(NotSent { message, why: NotSentWhy::Refused(e) }),
                        };
                        let _ = reply.send(result);
                    }
                    Some(Command::Close(frame)) => {
                        if !closing {
                            closing = true;
                            // An unsendable code (1005, 1006...): close without one.
                            if ws.close(frame).await.is_err() {
                                let _ = ws.close(None).await;
                            }
                        }
                    }
                    None => return Err(shut_down(ws).await),
                },
                _ = self.events.closed() => return Err(shut_down(ws).await),
                permit = self.events.reserve(), if !want_message => match permit {
                    Ok(permit) => permit.send(pending.take().expect("an event is pending")),
                    Err(_) => return Err(shut_down(ws).await),
                },
                got = next_message(&mut ws, want_message) => match got {
                    Ok(Some(message)) => pending = Some(ReconnectEvent::Message(message)),
                    Ok(None) => {
                        let cause = match ws.close_info() {
                            Some(c) => Disconnect::Closed(c.clone()),
                            // Not expected: recv reports the end with close_info set.
                            None => Disconnect::Error(Arc::new(Error::from(std::io::Error::from(
                                std::io::ErrorKind::UnexpectedEof,
                            )))),
                        };
                        return Ok(Ended { cause, closing });
                    }
                    Err(e) => return Ok(Ended { cause: Disconnect::from(e), closing }),
                },
            }
        }
    }
}

/// The next message when `want` (the socket's own `recv`, which also
/// answers pings and runs timers); otherwise only writes what is queued and
/// waits forever (the socket is not read while an event waits for room).
async fn next_message(
    ws: &mut WebSocket<crate::MaybeTlsStream>,
    want: bool,
) -> crate::Result<Option<Message>> {
    if want {
        return ws.recv().await;
    }
    // A write error shows again at the next recv, after the pending event
    // has been delivered (no message is lost to it).
    let _ = ws.flush().await;
    std::future::pending().await
}

/// The application dropped the client: close with 1001 and wait for the
/// server's reply (bounded by the close timeout), discarding messages.
async fn shut_down(mut ws: WebSocket<crate::MaybeTlsStream>) -> Stop {
    tracing::debug!("reconnecting client dropped: closing the connection with 1001");
    let _ = ws
        .close(Some(CloseFrame::new(CloseCode::GOING_AWAY, "")))
        .await;
    while let Ok(Some(_)) = ws.recv().await {}
    Stop
}

/// Runs `fut` while there is no connection: sends are handed back, `close()`
/// stops, and so does dropping the client.
async fn idle<F: Future>(
    commands: &mut mpsc::Receiver<Command>,
    events: &mpsc::Sender<ReconnectEvent>,
    fut: F,
) -> Result<F::Output, Stop> {
    tokio::pin!(fut);
    loop {
        tokio::select! {
            out = &mut fut => return Ok(out),
            cmd = commands.recv() => match cmd {
                Some(Command::Send(message, reply)) => {
                    let _ = reply.send(Err(NotSent { message, why: NotSentWhy::Disconnected }));
                }
                Some(Command::Close(_)) | None => return Err(Stop),
            },
            _ = events.closed() => return Err(Stop),
        }
    }
}
