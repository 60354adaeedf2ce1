//! Fan-out: one message to many connections, encoded once, with a bounded
//! queue per subscriber and a policy for the ones that cannot keep up.

use crate::split::WsWriter;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use wsx_proto::{CloseCode, CloseFrame, Message, PreparedMessage, SendError};

/// What to do with a subscriber whose queue is full: the peer (or its
/// network) reads slower than the broadcast produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlowConsumer {
    /// [`Broadcast::send`] waits until the subscriber has room: nothing is
    /// lost, but the slowest subscriber sets everyone's pace.
    Wait,
    /// The message is dropped for that subscriber only (counted in
    /// [`Delivery::dropped`]); for feeds where only the latest state matters.
    DropNewest,
    /// Lossless until the subscriber is closed with `code`: when a message
    /// has waited `after` without the socket taking it, or when its queue
    /// would exceed `max_queue_bytes`. A reconnecting client can then
    /// resynchronise instead of silently missing messages. 1013 (try again
    /// later) invites a reconnect; 1008 (policy violation) does not.
    Close {
        /// The close code sent: usually 1013 or 1008.
        code: CloseCode,
        /// How long the oldest queued message may wait.
        after: Duration,
    },
}

/// Settings of a [`Broadcast`].
///
/// A subscriber's queue is bounded in bytes and, optionally, in messages;
/// a message that would pass either bound meets the [`SlowConsumer`]
/// policy. The default policy closes the subscriber with 1013 (try again
/// later), which invites a reconnect and a fresh start.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BroadcastConfig {
    /// Bytes of messages queued per subscriber (beyond what its socket and
    /// write buffer hold). Default 1 MiB: bounds memory at roughly
    /// subscribers x (this + the connection's write high-water mark).
    pub max_queue_bytes: usize,
    /// Messages queued per subscriber, if bounded by count too (e.g. many
    /// tiny messages whose per-message cost matters). Default `None`.
    pub max_queue_messages: Option<usize>,
    /// Default: close with 1013 after 10 s.
    pub policy: SlowConsumer,
}

impl Default for BroadcastConfig {
    fn default() -> Self {
        BroadcastConfig {
            max_queue_bytes: 1 << 20,
            max_queue_messages: None,
            policy: SlowConsumer::Close {
                code: CloseCode::TRY_AGAIN_LATER,
                after: Duration::from_secs(10),
            },
        }
    }
}

impl BroadcastConfig {
    /// Bounds each subscriber's queue at `bytes`.
    pub fn max_queue_bytes(mut self, bytes: usize) -> Self {
        self.max_queue_bytes = bytes;
        self
    }

    /// Bounds each subscriber's queue at `n` messages as well (at least 1).
    pub fn max_queue_messages(mut self, n: Option<usize>) -> Self {
        self.max_queue_messages = n.map(|n| n.max(1));
        self
    }

    /// What to do with a subscriber that cannot keep up.
    pub fn policy(mut self, policy: SlowConsumer) -> Self {
        self.policy = policy;
        self
    }

    fn has_room(&self, q: &Queue, len: usize) -> bool {
        let by_count = self
            .max_queue_messages
            .is_none_or(|max| q.items.len() < max);
        // An oversized message still goes through an empty queue.
        by_count && (q.bytes == 0 || q.bytes + len <= self.max_queue_bytes)
    }

    fn describe_bound(&self) -> String {
        match self.max_queue_messages {
            Some(n) => format!("{} bytes or {n} messages", self.max_queue_bytes),
            None => format!("{} bytes", self.max_queue_bytes),
        }
    }
}

/// What [`Broadcast::send`] did with a message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Subscribers it was queued for.
    pub queued: usize,
    /// Subscribers it was dropped for ([`SlowConsumer::DropNewest`]).
    pub dropped: usize,
    /// Subscribers closed as too slow by this send.
    pub closed: usize,
}

#[derive(Default)]
struct Queue {
    items: VecDeque<(PreparedMessage, Instant)>,
    bytes: usize,
    /// No more messages: the subscription ended or the writer failed.
    ended: bool,
}

struct Sub {
    queue: Mutex<Queue>,
    /// Wakes the writer task (a message, or the end).
    ready: Notify,
    /// Wakes senders waiting for room ([`SlowConsumer::Wait`]).
    room: Notify,
    /// Close the connection now, as too slow.
    kill: CancellationToken,
    /// The close frame of [`Broadcast::close_all`], sent once the queue is written.
    farewell: Mutex<Option<CloseFrame>>,
}

struct Inner {
    config: BroadcastConfig,
    subs: Mutex<HashMap<u64, Arc<Sub>>>,
    next_id: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fan-out hub: each message is encoded once ([`PreparedMessage`]) and
/// its frame shared by every subscriber's queue; a writer task per
/// subscriber drains its queue to the socket. Cheap to clone.
///
/// ```no_run
/// # async fn run(ws: wsx::WebSocket<tokio::net::TcpStream>, hub: wsx::broadcast::Broadcast) -> Result<(), wsx::Error> {
/// let (mut reader, writer) = ws.split();
/// let _subscription = hub.subscribe(writer); // unsubscribed when dropped
/// while let Some(msg) = reader.recv().await? {
///     hub.send(msg).await.ok(); // to everyone, this client included
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Broadcast {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Broadcast {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broadcast")
            .field("config", &self.inner.config)
            .field("subscribers", &self.subscribers())
            .finish()
    }
}

impl Default for Broadcast {
    fn default() -> Self {
        Broadcast::new(BroadcastConfig::default())
    }
}

impl Broadcast {
    /// A hub with `config`.
    pub fn new(config: BroadcastConfig) -> Self {
        Broadcast {
            inner: Arc::new(Inner {
                config,
                subs: Mutex::default(),
                next_id: AtomicU64::new(1),
            }),
        }
    }

    /// Subscribers now.
    pub fn subscribers(&self) -> usize {
        lock(&self.inner.subs).len()
    }

    /// Adds a connection's sending half; a task drains its queue. Keep
    /// receiving on the other half (it answers pings and sees the close).
    /// Dropping the [`Subscription`] unsubscribes (queued messages are
    /// still written).
    pub fn subscribe<S>(&self, writer: WsWriter<S>) -> Subscription
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let id = self.inner.next_id.fetch_add(1, Relaxed);
        let sub = Arc::new(Sub {
            queue: Mutex::default(),
            ready: Notify::new(),
            room: Notify::new(),
            kill: CancellationToken::new(),
            farewell: Mutex::new(None),
        });
        lock(&self.inner.subs).insert(id, sub.clone());
        tokio::spawn(writer_task(
            writer,
            sub.clone(),
            self.inner.config.policy.clone(),
            Arc::downgrade(&self.inner),
            id,
        ));
        Subscription {
            id,
            sub,
            hub: Arc::downgrade(&self.inner),
        }
    }

    /// Ends every subscription: each writes what is queued for it, then
    /// closes its connection with `frame` (e.g. 1000 when the feed ends,
    /// 1001 when the server stops). Later subscribers start afresh.
    pub fn close_all(&self, frame: CloseFrame) {
        let subs: Vec<Arc<Sub>> = lock(&self.inner.subs).drain().map(|(_, s)| s).collect();
        for sub in subs {
            *lock(&sub.farewell) = Some(frame.clone());
            lock(&sub.queue).ended = true;
            sub.ready.notify_one();
            sub.room.notify_waiters();
        }
    }

    /// Sends `msg` to every subscriber, applying the slow-consumer policy.
    ///
    /// # Errors
    /// A control message over 125 bytes.
    ///
    /// # Cancel safety
    /// With [`SlowConsumer::Wait`], cancelling leaves the message queued for
    /// the subscribers reached so far; the other policies do not wait.
    pub async fn send(&self, msg: Message) -> Result<Delivery, SendError> {
        let prepared = PreparedMessage::new(msg)?;
        let config = &self.inner.config;
        let mut delivery = Delivery::default();
        if config.policy != SlowConsumer::Wait {
            // Nothing waits: every queue is served under the hub's lock,
            // without a handle per subscriber per message.
            for sub in lock(&self.inner.subs).values() {
                enqueue_now(sub, &prepared, config, &mut delivery);
            }
            return Ok(delivery);
        }
        let subs: Vec<Arc<Sub>> = lock(&self.inner.subs).values().cloned().collect();
        for sub in subs {
            enqueue(&sub, &prepared, config, &mut delivery).await;
        }
        Ok(delivery)
    }
}

/// Queues `prepared` for `sub` if it has room, or applies the policy;
/// false when the policy is to wait for room.
fn enqueue_now(
    sub: &Sub,
    prepared: &PreparedMessage,
    config: &BroadcastConfig,
    delivery: &mut Delivery,
) -> bool {
    let len = prepared.message().len();
    let mut q = lock(&sub.queue);
    if q.ended {
        return true;
    }
    if config.has_room(&q, len) {
        q.bytes += len;
        q.items.push_back((prepared.clone(), Instant::now()));
        // A writer with a non-empty queue drains on without a wake-up.
        let wake = q.items.len() == 1;
        drop(q);
        if wake {
            sub.ready.notify_one();
        }
        delivery.queued += 1;
        return true;
    }
    match &config.policy {
        SlowConsumer::Wait => false,
        SlowConsumer::DropNewest => {
            delivery.dropped += 1;
            true
        }
        SlowConsumer::Close { .. } => {
            q.ended = true;
            drop(q);
            sub.kill.cancel();
            sub.ready.notify_one();
            delivery.closed += 1;
            true
        }
    }
}

async fn enqueue(
    sub: &Sub,
    prepared: &PreparedMessage,
    config: &BroadcastConfig,
    delivery: &mut Delivery,
) {
    let len = prepared.message().len();
    while !enqueue_now(sub, prepared, config, delivery) {
        // Wait for room: register first, then look again (room made in
        // between would wake nobody).
        let room = sub.room.notified();
        tokio::pin!(room);
        room.as_mut().enable();
        {
            let q = lock(&sub.queue);
            if q.ended || config.has_room(&q, len) {
                continue;
            }
        }
        room.await;
    }
}

/// Drains one subscriber's queue to its socket.
async fn writer_task<S>(
    mut writer: WsWriter<S>,
    sub: Arc<Sub>,
    policy: SlowConsumer,
    hub: Weak<Inner>,
    id: u64,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let too_slow = |why: String| {
        let code = match &policy {
            SlowConsumer::Close { code, .. } => *code,
            _ => CloseCode::POLICY_VIOLATION,
        };
        tracing::warn!(
            subscriber = id,
            "closing a slow subscriber ({}): {why}; it reads slower than the broadcast sends (raise max_queue_bytes or the policy's deadline if this is expected)",
            code.0
        );
        CloseFrame::new(code, "too slow: could not keep up with the broadcast")
    };
    let close = loop {
        let next = lock(&sub.queue).items.front().cloned();
        let Some((msg, queued_at)) = next else {
            if lock(&sub.queue).ended || sub.kill.is_cancelled() {
                break if sub.kill.is_cancelled() {
                    Some(too_slow(format!(
                        "its queue would exceed {}",
                        hub.upgrade()
                            .map_or("its bound".into(), |h| h.config.describe_bound())
                    )))
                } else {
                    lock(&sub.farewell).take()
                };
            }
            // Idle: push out what was fed, then wait for more.
            let ready = sub.ready.notified();
            tokio::select! {
                r = writer.flush() => if r.is_err() { break None },
                _ = sub.kill.cancelled() => continue,
            }
            tokio::select! {
                _ = ready => {}
                _ = sub.kill.cancelled() => {}
            }
            continue;
        };
        let fed = match &policy {
            SlowConsumer::Close { after, .. } => tokio::select! {
                r = tokio::time::timeout_at(queued_at + *after, writer.feed_prepared(&msg)) => match r {
                    Ok(r) => r.is_ok(),
                    Err(_) => break Some(too_slow(format!("a message waited {after:?} for the socket"))),
                },
                _ = sub.kill.cancelled() => continue,
            },
            _ => writer.feed_prepared(&msg).await.is_ok(),
        };
        if !fed {
            break None;
        }
        {
            let mut q = lock(&sub.queue);
            if q.items.pop_front().is_some() {
                q.bytes -= msg.message().len();
            }
        }
        sub.room.notify_waiters();
    };
    // No more messages for this subscriber.
    {
        let mut q = lock(&sub.queue);
        q.ended = true;
        q.items.clear();
        q.bytes = 0;
    }
    sub.room.notify_waiters();
    if let Some(hub) = hub.upgrade() {
        lock(&hub.subs).remove(&id);
    }
    if let Some(frame) = close {
        // The socket is backed up: the close frame waits behind what is
        // queued. The reader half's close timeout ends the connection if
        // the peer never reads it.
        let _ = tokio::time::timeout(Duration::from_secs(5), writer.close(Some(frame))).await;
    }
}

/// A connection's membership in a [`Broadcast`]; dropping it unsubscribes
/// (messages already queued are still written).
pub struct Subscription {
    id: u64,
    sub: Arc<Sub>,
    hub: Weak<Inner>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .finish()
    }
}

impl Subscription {
    /// This subscriber's id in the hub.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Whether the subscription ended (unsubscribed, closed as too slow, or
    /// the socket failed).
    pub fn is_ended(&self) -> bool {
        lock(&self.sub.queue).ended
    }

    /// Ends this subscription: what is queued is written, then the
    /// connection is closed with `frame` (e.g. 1013 when what it sent
    /// cannot be passed on now).
    pub fn close(&self, frame: CloseFrame) {
        if let Some(hub) = self.hub.upgrade() {
            lock(&hub.subs).remove(&self.id);
        }
        *lock(&self.sub.farewell) = Some(frame);
        lock(&self.sub.queue).ended = true;
        self.sub.ready.notify_one();
        self.sub.room.notify_waiters();
    }

    /// Sends `msg` to this subscriber only, in order with the broadcasts,
    /// under the hub's slow-consumer policy.
    ///
    /// # Errors
    /// A control message over 125 bytes.
    pub async fn send(&self, msg: Message) -> Result<Delivery, SendError> {
        let prepared = PreparedMessage::new(msg)?;
        let mut delivery = Delivery::default();
        if let Some(hub) = self.hub.upgrade() {
            enqueue(&self.sub, &prepared, &hub.config, &mut delivery).await;
        }
        Ok(delivery)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.upgrade() {
            lock(&hub.subs).remove(&self.id);
        }
        lock(&self.sub.queue).ended = true;
        self.sub.ready.notify_one();
        self.sub.room.notify_waiters();
    }
}
