//! A client that reconnects: [`ReconnectingClient`].
//!
//! A background task owns the connection. It connects, delivers what
//! arrives as [`ReconnectEvent`]s, and when the connection ends or cannot be
//! made, asks the [`RetryPolicy`] whether to try again; if so it waits a
//! [`Backoff`] delay (exponential, full jitter, capped) and reconnects. The
//! application sees `Reconnecting { attempt, delay, cause }` before each wait
//! and `Reconnected` after, so it can resubscribe.
//!
//! Messages are never queued across a reconnect: a send while there is no
//! connection hands the message back ([`NotSent`]). Whatever the application
//! sent on a connection that then dropped may or may not have reached the
//! server; only the application knows what to resend after `Reconnected`.

use crate::client::{connect_with, ClientConfig};
use crate::error::Error;
use crate::socket::WebSocket;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use wsx_proto::handshake::{ClientHandshakeError, ClientRequest};
use wsx_proto::{CloseCode, CloseFrame, Closed, Initiator, Message};

// ---- backoff ---------------------------------------------------------------------

/// How long to wait before each reconnect attempt: exponential backoff with
/// full jitter ("Exponential Backoff And Jitter", AWS Architecture Blog,
/// 2015), capped, and reset once a connection stayed up for a while.
///
/// Attempt `n` (counted from 1) waits a uniformly random time in
/// `[0, ceiling(n)]`, where `ceiling(n) = min(max, initial · multiplier^(n-1))`.
/// Full jitter spreads the clients of a restarted server over the whole
/// interval instead of letting them return in waves.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    /// The ceiling of the first attempt's delay. Default 500 ms: quick enough
    /// that a blip goes unnoticed, slow enough not to hammer a server that
    /// just refused.
    pub initial: Duration,
    /// The largest ceiling. Default 30 s: a client of a server that is down
    /// for long still notices its return within half a minute on average.
    pub max: Duration,
    /// Growth of the ceiling per attempt. Default 2.0. Values below 1 (or
    /// NaN) count as 1 (a constant ceiling).
    pub multiplier: f64,
    /// A connection that lived at least this long resets the attempt count,
    /// so that the next drop starts again at attempt 1. Default 30 s. A
    /// server that accepts and at once drops the connection therefore keeps
    /// the delays growing.
    pub reset_after: Duration,
    /// Give up after this many attempts in a row (counted since the last
    /// reset). `None` (the default) retries forever; `Some(0)` never
    /// reconnects.
    pub max_attempts: Option<u32>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
            multiplier: 2.0,
            reset_after: Duration::from_secs(30),
            max_attempts: None,
        }
    }
}

impl Backoff {
    /// The longest delay of attempt `attempt` (counted from 1):
    /// `min(max, initial · multiplier^(attempt-1))`. Attempt 0 (the first
    /// connection) has no delay. Never overflows: a huge attempt gives `max`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        if attempt == 0 || self.initial.is_zero() {
            return Duration::ZERO;
        }
        let multiplier = if self.multiplier >= 1.0 {
            self.multiplier
        } else {
            1.0
        };
        // powi saturates to infinity for large exponents; i32::MAX is as
        // good as any larger attempt.
        let exp = i32::try_from(attempt - 1).unwrap_or(i32::MAX);
        let secs = self.initial.as_secs_f64() * multiplier.powi(exp);
        if secs.is_finite() && secs < self.max.as_secs_f64() {
            Duration::from_secs_f64(secs)
        } else {
            self.max
        }
    }

    /// The delay of attempt `attempt` for a random `unit` in `[0, 1)`:
    /// `ceiling(attempt) · unit` (full jitter). `unit` is clamped to
    /// `[0, 1]`; NaN counts as 0.
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let unit = if unit.is_nan() {
            0.0
        } else {
            unit.clamp(0.0, 1.0)
        };
        self.ceiling(attempt).mul_f64(unit)
    }
}

/// The jitter's random numbers: SplitMix64, small, fast and seedable. Not
/// for cryptography; it only spreads reconnects over time.
#[derive(Debug, Clone)]
pub struct Jitter {
    state: u64,
}

impl Jitter {
    /// A generator with a fixed seed: the same seed gives the same delays
    /// (for tests and simulations).
    pub fn new(seed: u64) -> Self {
        Jitter { state: seed }
    }

    /// A generator seeded from the OS (falls back to the clock if the OS
    /// has no randomness to give).
    pub fn from_entropy() -> Self {
        let mut b = [0u8; 8];
        let seed = match getrandom::getrandom(&mut b) {
            Ok(()) => u64::from_le_bytes(b),
            Err(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0x5eed, |d| d.as_nanos() as u64),
        };
        Jitter::new(seed)
    }

    /// The next number, uniform in `[0, 1)`.
    pub fn next_unit(&mut self) -> f64 {
        // SplitMix64 (Steele, Lea, Flood 2014), as in `java.util.SplittableRandom`.
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        // The top 53 bits fill an f64's mantissa exactly.
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

// ---- why a connection ended, and whether to retry --------------------------------

/// Why a connection ended, or why connecting failed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Disconnect {
    /// An established connection ended: cleanly (both close frames) or not
    /// (1006 for a vanished peer, 1002/1007/1009 when we failed it, a
    /// keepalive timeout); see [`Closed::cause`].
    Closed(Closed),
    /// Connecting failed (TCP, timeout, handshake refused), or an I/O error
    /// broke an established connection.
    Error(Arc<Error>),
}

/// Close codes after which reconnecting may help: the server is going away
/// or restarting (1001, 1012), overloaded or failing (1011, 1013), an
/// upstream is down (1014, like HTTP 502), or the connection vanished
/// without a close frame (1006: network trouble, keepalive timeout).
const TRANSIENT_CLOSE_CODES: [u16; 6] = [1001, 1006, 1011, 1012, 1013, 1014];

/// HTTP answers to the opening handshake that say "later": request timeout,
/// too many requests, server errors and gateways whose upstream is down.
const TRANSIENT_HTTP_STATUS: [u16; 6] = [408, 429, 500, 502, 503, 504];

/// The longest `Retry-After` honoured (10 minutes): a server may ask a
/// client to stay away for a while, but a wrong header should not park it
/// for days.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

impl Disconnect {
    /// What the default [`RetryPolicy`] retries: network and I/O errors,
    /// timeouts, a connection dropped during the handshake, handshake
    /// answers 408/429/500/502/503/504, and close codes
    /// 1001/1006/1011/1012/1013/1014.
    ///
    /// Not transient: a normal close by the server (1000, or 1005 without a
    /// code: the server said it is done with us), protocol and data errors
    /// (1002/1003/1007/1009/1010: the same bytes would fail again), policy
    /// violations (1008), private codes (4000–4999: only the application
    /// knows them), other handshake refusals (401/403/404...: a wrong URL or
    /// credentials), bad URLs and unsupported features.
    pub fn is_transient(&self) -> bool {
        match self {
            Disconnect::Closed(c) => TRANSIENT_CLOSE_CODES.contains(&c.code.0),
            Disconnect::Error(e) => transient_error(e),
        }
    }

    /// The close code that describes the end, if a connection ended.
    pub fn close_code(&self) -> Option<CloseCode> {
        match self {
            Disconnect::Closed(c) => Some(c.code),
            Disconnect::Error(e) => e.close_code(),
        }
    }

    /// How long the server asked us to wait: the `Retry-After` header of a
    /// refused handshake (typically 429 or 503), in its delta-seconds form
    /// (an HTTP date is ignored). The reconnect delay is at least this, up
    /// to [`MAX_RETRY_AFTER`].
    pub fn retry_after(&self) -> Option<Duration> {
        let Some(ClientHandshakeError::Rejected(r)) = self.error()?.client_handshake() else {
            return None;
        };
        let v = r
            .headers
            .get(http::header::RETRY_AFTER)?
            .to_str()
            .ok()?
            .trim();
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Digits only: a parse failure is an overflow, i.e. "very long".
        Some(Duration::from_secs(v.parse().unwrap_or(u64::MAX)))
    }

    /// The error, if connecting failed or I/O broke the connection.
    pub fn error(&self) -> Option<&Error> {
        match self {
            Disconnect::Closed(_) => None,
            Disconnect::Error(e) => Some(e),
        }
    }
}

fn transient_error(e: &Error) -> bool {
    if let Some(c) = e.close_info() {
        return TRANSIENT_CLOSE_CODES.contains(&c.code.0);
    }
    if e.is_io() || e.is_timeout() {
        return true;
    }
    match e.client_handshake() {
        Some(ClientHandshakeError::Rejected(r)) => {
            TRANSIENT_HTTP_STATUS.contains(&r.status.as_u16())
        }
        Some(ClientHandshakeError::Closed) => true,
        _ => false,
    }
}

impl From<Error> for Disconnect {
    /// An error that carries how the connection closed becomes
    /// [`Disconnect::Closed`]; any other stays an error.
    fn from(e: Error) -> Self {
        match e.close_info() {
            Some(c) => Disconnect::Closed(c.clone()),
            None => Disconnect::Error(Arc::new(e)),
        }
    }
}

impl fmt::Display for Disconnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Disconnect::Closed(c) => {
                if let Some(cause) = &c.cause {
                    return write!(f, "connection closed with {}: {cause}", c.code);
                }
                let who = match c.initiator {
                    Initiator::Local => "closed",
                    Initiator::Remote => "closed by the server",
                };
                if c.reason.is_empty() {
                    write!(f, "{who} with {}", c.code)
                } else {
                    write!(f, "{who} with {} {:?}", c.code, c.reason)
                }
            }
            Disconnect::Error(e) => write!(f, "{e}"),
        }
    }
}

/// Decides whether to reconnect after a [`Disconnect`]. The default retries
/// what [`Disconnect::is_transient`] calls transient; an application with
/// its own close codes says which of them mean "try again":
///
/// ```
/// use wsx::{CloseCode, RetryPolicy};
/// // Our server sends 4001 when it sheds load: come back later.
/// let policy = RetryPolicy::new(|d| d.is_transient() || d.close_code() == Some(CloseCode(4001)));
/// ```
#[derive(Clone)]
pub struct RetryPolicy(Arc<dyn Fn(&Disconnect) -> bool + Send + Sync>);

impl RetryPolicy {
    /// A policy from a function: `true` means reconnect.
    pub fn new(f: impl Fn(&Disconnect) -> bool + Send + Sync + 'static) -> Self {
        RetryPolicy(Arc::new(f))
    }

    /// Whether to reconnect after `cause`.
    pub fn should_retry(&self, cause: &Disconnect) -> bool {
        (self.0)(cause)
    }
}

impl Default for RetryPolicy {
    /// Retries what [`Disconnect::is_transient`] calls transient.
    fn default() -> Self {
        RetryPolicy::new(Disconnect::is_transient)
    }
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RetryPolicy(..)")
    }
}

// ---- configuration, events, errors -----------------------------------------------

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
/// made, asks the [`RetryPolicy`] whether to try again; if so it waits a
/// [`Backoff`] delay (exponential, full jitter, capped) and reconnects.
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
/// use wsx::{ClientRequest, Message, ReconnectConfig, ReconnectEvent, ReconnectingClient};
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
        let jitter = config
            .jitter_seed
            .map_or_else(Jitter::from_entropy, Jitter::new);
        let task = Task {
            req,
            config,
            events: event_tx,
            commands,
            jitter,
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
    config: ReconnectConfig,
    events: mpsc::Sender<ReconnectEvent>,
    commands: mpsc::Receiver<Command>,
    jitter: Jitter,
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
        let mut attempt = 0u32;
        let mut connected_before = false;
        loop {
            let connecting = connect_with(&self.req, &self.config.client);
            let cause = match idle(&mut self.commands, &self.events, connecting).await? {
                Ok((ws, _)) => {
                    let first = if connected_before {
                        tracing::info!(%url, attempt, "reconnected");
                        ReconnectEvent::Reconnected { attempts: attempt }
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
                    if lived >= self.config.backoff.reset_after {
                        attempt = 0;
                    }
                    ended.cause
                }
                Err(e) => Disconnect::from(e),
            };
            if !self.config.retry.should_retry(&cause) {
                tracing::warn!(
                    %url, %cause,
                    "not reconnecting: the retry policy treats this as permanent \
                     (fix the cause, or widen ReconnectConfig::retry if it is transient)"
                );
                return self.emit(ReconnectEvent::GaveUp { cause }).await;
            }
            attempt = attempt.saturating_add(1);
            if self
                .config
                .backoff
                .max_attempts
                .is_some_and(|max| attempt > max)
            {
                tracing::warn!(
                    %url, %cause, attempts = attempt - 1,
                    "not reconnecting: Backoff::max_attempts reached \
                     (raise it, or None to retry forever)"
                );
                return self.emit(ReconnectEvent::GaveUp { cause }).await;
            }
            let mut delay = self.config.backoff.delay(attempt, self.jitter.next_unit());
            if let Some(asked) = cause.retry_after() {
                // The server said when to come back: not sooner.
                delay = delay.max(asked.min(MAX_RETRY_AFTER));
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    const fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn ceiling_doubles_up_to_the_cap() {
        let b = Backoff::default();
        let table = [
            (0, ms(0)),
            (1, ms(500)),
            (2, ms(1000)),
            (3, ms(2000)),
            (4, ms(4000)),
            (5, ms(8000)),
            (6, ms(16000)),
            (7, ms(30000)),
            (8, ms(30000)),
            (1000, ms(30000)),
            (u32::MAX, ms(30000)),
        ];
        for (attempt, want) in table {
            assert_eq!(b.ceiling(attempt), want, "attempt {attempt}");
        }
    }

    #[test]
    fn odd_settings_do_not_panic() {
        let b = Backoff {
            initial: Duration::MAX,
            max: Duration::MAX,
            multiplier: f64::INFINITY,
            ..Backoff::default()
        };
        assert_eq!(b.ceiling(1000), Duration::MAX);
        let b = Backoff {
            multiplier: f64::NAN,
            ..Backoff::default()
        };
        assert_eq!(b.ceiling(1000), ms(500), "NaN multiplier is constant");
        let b = Backoff {
            multiplier: 0.1,
            ..Backoff::default()
        };
        assert_eq!(b.ceiling(3), ms(500), "multiplier below 1 is constant");
        let b = Backoff {
            initial: Duration::ZERO,
            ..Backoff::default()
        };
        assert_eq!(b.ceiling(1000), Duration::ZERO);
        let b = Backoff {
            initial: Duration::from_secs(60),
            ..Backoff::default()
        };
        assert_eq!(b.ceiling(1), Duration::from_secs(30), "initial above max");
    }

    #[test]
    fn delay_is_ceiling_times_unit() {
        let b = Backoff::default();
        assert_eq!(b.delay(3, 0.0), Duration::ZERO);
        assert_eq!(b.delay(3, 0.5), ms(1000));
        assert_eq!(b.delay(3, 1.0), ms(2000));
        assert_eq!(b.delay(3, 7.0), ms(2000), "clamped");
        assert_eq!(b.delay(3, -1.0), Duration::ZERO, "clamped");
        assert_eq!(b.delay(3, f64::NAN), Duration::ZERO);
        assert_eq!(b.delay(1000, 0.5), ms(15000));
    }

    #[test]
    fn jitter_is_uniform_in_unit_interval_and_seedable() {
        let mut a = Jitter::new(42);
        let mut b = Jitter::new(42);
        let mut sum = 0.0;
        let mut below_half = 0;
        for _ in 0..10_000 {
            let u = a.next_unit();
            assert_eq!(u, b.next_unit());
            assert!((0.0..1.0).contains(&u), "{u}");
            sum += u;
            below_half += usize::from(u < 0.5);
        }
        assert!(
            (sum / 10_000.0 - 0.5).abs() < 0.02,
            "mean {}",
            sum / 10_000.0
        );
        assert!((4_800..5_200).contains(&below_half), "{below_half}");
        assert_ne!(Jitter::new(1).next_unit(), Jitter::new(2).next_unit());
    }

    fn closed(code: u16) -> Disconnect {
        Disconnect::Closed(Closed {
            code: CloseCode(code),
            reason: String::new(),
            initiator: Initiator::Remote,
            sent: None,
            cause: None,
        })
    }

    #[test]
    fn transient_close_codes() {
        for code in [1001, 1006, 1011, 1012, 1013, 1014] {
            assert!(closed(code).is_transient(), "{code}");
        }
        for code in [1000, 1002, 1003, 1005, 1007, 1008, 1009, 1010, 3000, 4000] {
            assert!(!closed(code).is_transient(), "{code}");
        }
    }

    #[test]
    fn transient_errors() {
        let io = Disconnect::from(Error::from(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )));
        assert!(io.is_transient());
        let hung_up = Disconnect::from(Error::from(ClientHandshakeError::Closed));
        assert!(hung_up.is_transient());
        let bad_url = Disconnect::from(Error::from(ClientHandshakeError::InvalidUrl("x".into())));
        assert!(!bad_url.is_transient());
    }
}
