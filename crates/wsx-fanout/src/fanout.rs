//! The fan-out layer: rooms that connections join and leave, publishing to
//! a room, presence, and resuming from a position; in one process or across
//! nodes on Redis. Each message is encoded once per node for each hub (plain,
//! enveloped) and its frame shared by the members; every member has its own
//! bounded queue and slow-consumer policy (`wsx::broadcast`).

use crate::config::{FanoutConfig, FanoutError, PublishError};
use crate::metrics::Metrics;
use crate::room::{Arrival, Entry, Plan, Room, RoomState};
use crate::wire::{Payload, Position, Recovery, ServerMsg};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Duration, Instant};
use wsx::broadcast::Subscription;
use wsx::WsWriter;

#[cfg(feature = "redis")]
use crate::redis_backend::{now_ms, RedisBackend};

/// How a connection joins a room.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct JoinOptions {
    /// `wsx.pubsub.v1` envelopes (with positions) instead of bare payloads.
    pub envelope: bool,
    /// The last position it saw: it gets what it missed first (envelopes only).
    pub since: Option<Position>,
    /// Who it is, as presence lists it.
    pub name: String,
}

impl JoinOptions {
    /// Sets `envelope`.
    pub fn envelope(mut self, on: bool) -> Self {
        self.envelope = on;
        self
    }

    /// Sets `since`.
    pub fn since(mut self, since: Option<Position>) -> Self {
        self.since = since;
        self
    }

    /// Sets `name`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}

/// A join that failed, with the connection's writer (to close it).
pub struct JoinError<S> {
    /// Why.
    pub error: FanoutError,
    /// The writer that was to join.
    pub writer: WsWriter<S>,
}

impl<S> std::fmt::Debug for JoinError<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinError")
            .field("error", &self.error)
            .finish()
    }
}

impl<S> std::fmt::Display for JoinError<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl<S> std::error::Error for JoinError<S> {}

/// Where a publish went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// Its position in the room.
    pub position: Position,
    /// Its idempotency key had been published before: this is that position.
    pub duplicate: bool,
}

/// One member of a room, somewhere.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PresenceEntry {
    /// The node it is connected to.
    pub node: String,
    /// Its id on that node.
    pub member: u64,
    /// Its name.
    pub name: String,
}

/// A connection's membership of a room; dropping it leaves the room.
pub struct Member {
    fanout: Weak<Inner>,
    room: Arc<Room>,
    id: u64,
    recovery: Recovery,
    subscription: Subscription,
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member")
            .field("room", &self.room.name)
            .field("id", &self.id)
            .field("recovery", &self.recovery)
            .finish()
    }
}

impl Member {
    /// Its id on this node.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// How its resume went.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// Whether its connection stopped taking messages (closed, failed, or
    /// too slow).
    pub fn is_ended(&self) -> bool {
        self.subscription.is_ended()
    }

    /// Closes its connection with `frame` once what is queued is written.
    pub fn close(&self, frame: wsx::CloseFrame) {
        self.subscription.close(frame);
    }

    /// Sends `msg` to this member only (an ack, an error), in order with
    /// the room's messages.
    pub async fn send(&self, msg: &ServerMsg) {
        let _ = self.subscription.send(msg.to_message()).await;
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let Some(inner) = self.fanout.upgrade() else {
            lock(&self.room.presence).remove(&self.id);
            return;
        };
        inner.forget(&self.fanout, &self.room, self.id);
    }
}

struct Inner {
    config: FanoutConfig,
    node: String,
    rooms: Mutex<HashMap<String, Arc<Room>>>,
    #[cfg(feature = "redis")]
    redis: Option<RedisBackend>,
    metrics: Metrics,
    next_member: AtomicU64,
    /// Pub/Sub connection state: lost at this instant, not yet resubscribed.
    lost_at: Mutex<Option<Instant>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn random_id(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    getrandom::getrandom(&mut b).expect("the OS random source");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Rooms, publishing, presence and recovery; cheap to clone.
///
/// ```no_run
/// # async fn run(ws: wsx::WebSocket<tokio::net::TcpStream>) -> Result<(), Box<dyn std::error::Error>> {
/// use wsx_fanout::{Fanout, FanoutConfig, JoinOptions, Payload};
/// let fanout = Fanout::local(FanoutConfig::default());
/// // or: Fanout::redis("redis://127.0.0.1:6379", FanoutConfig::default()).await?
/// let (mut reader, writer) = ws.split();
/// let _member = fanout.join("/chat", writer, JoinOptions::default()).await?;
/// while let Some(msg) = reader.recv().await? {
///     if let Some(payload) = Payload::from_message(&msg) {
///         fanout.publish("/chat", payload, None).await?;
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Fanout {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Fanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fanout")
            .field("node", &self.inner.node)
            .field("backend", &self.backend())
            .finish()
    }
}

impl Fanout {
    /// In one process: the history lives here, nothing else is needed.
    /// Call from a tokio runtime (a maintenance task expires histories).
    pub fn local(config: FanoutConfig) -> Fanout {
        let inner = Arc::new(Inner::new(config));
        inner.metrics.backend_up.set(1);
        let weak = Arc::downgrade(&inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                inner.sweep_local();
            }
        });
        Fanout { inner }
    }

    /// Across nodes on Redis (`redis://HOST:PORT[/DB]`): connects,
    /// subscribes, and keeps at it (reconnecting with backoff and
    /// resubscribing, filling gaps from the history) until dropped.
    ///
    /// # Errors
    /// Redis does not answer now, or the URL is wrong.
    #[cfg(feature = "redis")]
    pub async fn redis(url: &str, config: FanoutConfig) -> Result<Fanout, FanoutError> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut inner = Inner::new(config);
        inner.redis = Some(RedisBackend::connect(url, &inner.config, tx).await?);
        inner.metrics.backend_up.set(1);
        let inner = Arc::new(inner);
        tracing::info!(node = %inner.node, redis = url, "fan-out across nodes on Redis");
        tokio::spawn(subscriber_loop(Arc::downgrade(&inner), rx));
        tokio::spawn(keepalive_loop(Arc::downgrade(&inner)));
        tokio::spawn(gap_loop(Arc::downgrade(&inner)));
        tokio::spawn(presence_loop(Arc::downgrade(&inner)));
        Ok(Fanout { inner })
    }

    /// `local` or `redis URL`.
    pub fn backend(&self) -> String {
        #[cfg(feature = "redis")]
        if let Some(r) = &self.inner.redis {
            return format!("redis {}", r.url());
        }
        "local".into()
    }

    /// This node's id (random per process).
    pub fn node(&self) -> &str {
        &self.inner.node
    }

    /// The settings.
    pub fn config(&self) -> &FanoutConfig {
        &self.inner.config
    }

    /// The counters and gauges.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Adds the metrics (`wsx_fanout_*`) to `registry`.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.inner.metrics.register(registry);
    }

    /// Publishes to `room`: every member on every node gets it, in the
    /// same order. With `key`, a retry of the same publish (same key,
    /// within the idempotency ttl) is not published again: it returns the
    /// first position, marked `duplicate`.
    ///
    /// # Errors
    /// The broker is away (retryable: retry with the same key).
    pub async fn publish(
        &self,
        room: &str,
        payload: Payload,
        key: Option<&str>,
    ) -> Result<Published, PublishError> {
        let inner = &self.inner;
        #[cfg(feature = "redis")]
        if let Some(redis) = &inner.redis {
            return match redis.publish(room, &payload, key, &inner.config).await {
                Ok((position, duplicate)) => {
                    inner.count_publish(duplicate);
                    Ok(Published {
                        position,
                        duplicate,
                    })
                }
                Err(e) => {
                    inner.metrics.publish_errors.inc();
                    Err(e)
                }
            };
        }
        let room = inner.room(room, false);
        let mut st = room.state.lock().await;
        inner.init_local(&mut st);
        if let Some(k) = key {
            if let Some((position, _)) = st.keys.get(k) {
                inner.count_publish(true);
                return Ok(Published {
                    position: position.clone(),
                    duplicate: true,
                });
            }
        }
        let position = Position {
            epoch: st.epoch.clone().unwrap_or_default(),
            offset: st.last + 1,
        };
        inner.emit(&room, &mut st, &position, payload).await;
        if let Some(k) = key {
            let now = Instant::now();
            st.keys.insert(k.to_string(), (position.clone(), now));
            st.key_order.push_back((k.to_string(), now));
        }
        inner.count_publish(false);
        Ok(Published {
            position,
            duplicate: false,
        })
    }

    /// Adds a connection's sending half to `room`. With `opts.since` (and
    /// envelopes), the messages it missed are queued first, in order, and
    /// live ones after them, without a gap or a duplicate; or it is told
    /// they cannot be recovered. Keep receiving on the other half. Dropping
    /// the [`Member`] leaves.
    ///
    /// # Errors
    /// Resuming while the broker is away (retryable); the writer comes back
    /// with the error, to close the connection with a reason.
    pub async fn join<S>(
        &self,
        room: &str,
        writer: WsWriter<S>,
        opts: JoinOptions,
    ) -> Result<Member, JoinError<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let inner = &self.inner;
        let room = inner.room(room, true);
        let id = inner.next_member.fetch_add(1, Ordering::Relaxed);
        // Undoes the count and the presence entry if the join fails.
        struct Joining<'a>(&'a Arc<Inner>, Option<Arc<Room>>, u64);
        impl Drop for Joining<'_> {
            fn drop(&mut self) {
                if let Some(room) = self.1.take() {
                    self.0.forget(&Arc::downgrade(self.0), &room, self.2);
                }
            }
        }
        let mut joining = Joining(inner, Some(room.clone()), id);
        // Listed before it is told it joined: a client that has its
        // `subscribed` finds itself in `presence` on every node.
        lock(&room.presence).insert(id, opts.name.clone());
        #[cfg(feature = "redis")]
        if let Some(redis) = &inner.redis {
            let entry = inner.presence_entry(id, &opts.name);
            let until = now_ms() + inner.config.presence_ttl.as_millis() as u64;
            if let Err(e) = redis.presence_renew(&room.name, &[entry], until).await {
                tracing::warn!("presence of a member of {} not recorded: {e}", room.name);
            }
        }
        let mut st = room.state.lock().await;
        let since = opts.since.as_ref().filter(|_| opts.envelope);
        if let Err(error) = inner.init(&room, &mut st, since.is_some()).await {
            return Err(JoinError { error, writer });
        }
        let (recovery, backlog) = match since {
            None => (Recovery::Fresh, Vec::new()),
            Some(since) => match inner.recover(&room, &mut st, since).await {
                Ok(r) => r,
                Err(error) => return Err(JoinError { error, writer }),
            },
        };
        let hub = if opts.envelope {
            &room.enveloped
        } else {
            &room.plain
        };
        let subscription = hub.subscribe(writer);
        if opts.envelope {
            let (recovery_word, reason) = match &recovery {
                Recovery::Fresh => ("fresh", None),
                Recovery::Recovered { .. } => ("recovered", None),
                Recovery::Unrecoverable { reason } => ("unrecoverable", Some(reason.clone())),
            };
            let hello = ServerMsg::Subscribed {
                room: room.name.clone(),
                epoch: st.epoch.clone(),
                offset: st.last,
                recovery: recovery_word.into(),
                missed: backlog.len() as u64,
                reason,
            };
            let _ = subscription.send(hello.to_message()).await;
            let epoch = st.epoch.clone().unwrap_or_default();
            for e in &backlog {
                let pos = Position {
                    epoch: epoch.clone(),
                    offset: e.offset,
                };
                let _ = subscription
                    .send(ServerMsg::message(&pos, &e.payload).to_message())
                    .await;
            }
        }
        drop(st);
        match &recovery {
            Recovery::Recovered { .. } => inner.metrics.recovered.inc(),
            Recovery::Unrecoverable { .. } => inner.metrics.unrecoverable.inc(),
            Recovery::Fresh => 0,
        };
        joining.1 = None;
        Ok(Member {
            fanout: Arc::downgrade(&self.inner),
            room,
            id,
            recovery,
            subscription,
        })
    }

    /// Who is in `room`, on every node.
    ///
    /// # Errors
    /// The broker is away.
    pub async fn presence(&self, room: &str) -> Result<Vec<PresenceEntry>, FanoutError> {
        #[cfg(feature = "redis")]
        if let Some(redis) = &self.inner.redis {
            let entries = redis.presence(room).await?;
            return Ok(entries.iter().filter_map(|e| parse_entry(e)).collect());
        }
        let room = lock(&self.inner.rooms).get(room).cloned();
        Ok(room.map_or_else(Vec::new, |r| {
            lock(&r.presence)
                .iter()
                .map(|(id, name)| PresenceEntry {
                    node: self.inner.node.clone(),
                    member: *id,
                    name: name.clone(),
                })
                .collect()
        }))
    }
}

#[cfg(feature = "redis")]
fn parse_entry(e: &str) -> Option<PresenceEntry> {
    let mut it = e.splitn(3, '/');
    Some(PresenceEntry {
        node: it.next()?.to_string(),
        member: it.next()?.parse().ok()?,
        name: it.next().unwrap_or("").to_string(),
    })
}

impl Inner {
    fn new(config: FanoutConfig) -> Inner {
        Inner {
            config,
            node: random_id(6),
            rooms: Mutex::new(HashMap::new()),
            #[cfg(feature = "redis")]
            redis: None,
            metrics: Metrics::default(),
            next_member: AtomicU64::new(1),
            lost_at: Mutex::new(None),
        }
    }

    #[cfg(feature = "redis")]
    fn presence_entry(&self, id: u64, name: &str) -> String {
        format!("{}/{id}/{name}", self.node)
    }

    fn count_publish(&self, duplicate: bool) {
        if duplicate {
            self.metrics.duplicates.inc();
        } else {
            self.metrics.published.inc();
        }
    }

    /// The room (created if missing); `member`: one more member.
    fn room(&self, name: &str, member: bool) -> Arc<Room> {
        let mut rooms = lock(&self.rooms);
        let room = rooms
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(Room::new(name, &self.config.broadcast)))
            .clone();
        if member {
            room.members.fetch_add(1, Ordering::Relaxed);
            self.metrics.members.inc();
        }
        self.metrics.rooms.set(rooms.len() as i64);
        room
    }

    /// A member is gone (left, or its join failed): off the presence list
    /// here and, in the background, in Redis; one fewer in `room`.
    fn forget(&self, weak: &Weak<Inner>, room: &Arc<Room>, id: u64) {
        let name = lock(&room.presence).remove(&id).unwrap_or_default();
        self.leave(room);
        #[cfg(feature = "redis")]
        if self.redis.is_some() {
            let entry = self.presence_entry(id, &name);
            let room = room.name.clone();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let weak = weak.clone();
                rt.spawn(async move {
                    if let Some(inner) = weak.upgrade() {
                        if let Some(redis) = &inner.redis {
                            let _ = redis.presence_remove(&room, &entry).await;
                        }
                    }
                });
            }
        }
        let _ = (weak, name);
    }

    /// One member fewer; with Redis, an empty room is forgotten here (its
    /// history is in Redis); in one process it stays while it has one.
    fn leave(&self, room: &Arc<Room>) {
        let mut rooms = lock(&self.rooms);
        self.metrics.members.dec();
        let left = room.members.fetch_sub(1, Ordering::Relaxed) - 1;
        #[cfg(feature = "redis")]
        if left == 0
            && self.redis.is_some()
            && rooms.get(&room.name).is_some_and(|r| Arc::ptr_eq(r, room))
        {
            rooms.remove(&room.name);
        }
        let _ = left;
        self.metrics.rooms.set(rooms.len() as i64);
    }

    /// One process: histories past their ttl go, and empty rooms nobody
    /// holds with them.
    fn sweep_local(&self) {
        let now = Instant::now();
        let mut rooms = lock(&self.rooms);
        rooms.retain(|_, room| {
            let Ok(mut st) = room.state.try_lock() else {
                return true;
            };
            st.expire(self.config.history_ttl, now);
            let idle = room.members.load(Ordering::Relaxed) == 0
                && st.recent.is_empty()
                && st.keys.is_empty();
            drop(st);
            !(idle && Arc::strong_count(room) == 1)
        });
        self.metrics.rooms.set(rooms.len() as i64);
    }

    fn init_local(&self, st: &mut RoomState) {
        if !st.initialized {
            st.initialized = true;
            st.reset(random_id(8));
        }
        st.expire(self.config.history_ttl, Instant::now());
    }

    /// The room's head as the broker has it (Redis), once; in one process
    /// a new room gets its epoch. A fresh join goes ahead while Redis is
    /// away; a resuming one cannot.
    async fn init(
        &self,
        room: &Room,
        st: &mut RoomState,
        resuming: bool,
    ) -> Result<(), FanoutError> {
        #[cfg(feature = "redis")]
        if let Some(redis) = &self.redis {
            if st.initialized {
                return Ok(());
            }
            match redis.heads(std::slice::from_ref(&room.name)).await {
                Ok(heads) => {
                    st.initialized = true;
                    if let Some(Some(head)) = heads.into_iter().next() {
                        st.reset(head.epoch);
                        st.last = head.offset;
                    }
                    return Ok(());
                }
                Err(e) if resuming => {
                    return Err(FanoutError::Unavailable(format!(
                        "{e}: cannot resume from a position now; try again"
                    )))
                }
                Err(e) => {
                    tracing::warn!("joining {} without its position: {e}", room.name);
                    return Ok(());
                }
            }
        }
        let _ = (room, resuming);
        self.init_local(st);
        Ok(())
    }

    /// What a member resuming from `since` gets.
    async fn recover(
        &self,
        room: &Room,
        st: &mut RoomState,
        since: &Position,
    ) -> Result<(Recovery, Vec<Entry>), FanoutError> {
        #[cfg(feature = "redis")]
        let broker = self.redis.is_some();
        #[cfg(not(feature = "redis"))]
        let broker = false;
        let unrecoverable = |reason: String| Recovery::Unrecoverable { reason };
        Ok(match st.plan(since, self.config.history, broker) {
            Plan::UpToDate => (Recovery::Recovered { missed: 0 }, Vec::new()),
            Plan::Local { from, to } => {
                let entries = st.slice(from, to);
                (
                    Recovery::Recovered {
                        missed: entries.len() as u64,
                    },
                    entries,
                )
            }
            Plan::Unrecoverable(reason) => (unrecoverable(reason), Vec::new()),
            Plan::Broker { from, to } => {
                let entries = self.read_history(room, st, from, to).await?;
                if entries.len() as u64 == to - from + 1 {
                    // Kept here from now on: the next client resuming from
                    // as far back (many reconnect at once) reads nothing.
                    st.prepend(&entries, self.config.history);
                    (
                        Recovery::Recovered {
                            missed: entries.len() as u64,
                        },
                        entries,
                    )
                } else {
                    (
                        unrecoverable(format!(
                            "the messages after offset {} are too old: the history no longer has them",
                            since.offset
                        )),
                        Vec::new(),
                    )
                }
            }
        })
    }

    /// The broker's history `from..=to` of the room's current epoch, as far
    /// as it is contiguous from `from`.
    #[allow(unused_variables)]
    async fn read_history(
        &self,
        room: &Room,
        st: &RoomState,
        from: u64,
        to: u64,
    ) -> Result<Vec<Entry>, FanoutError> {
        #[cfg(feature = "redis")]
        if let Some(redis) = &self.redis {
            let (epoch, rows) = redis.range(&room.name, from, to).await?;
            self.metrics.history_reads.inc_by(rows.len() as u64);
            if Some(&epoch) != st.epoch.as_ref() {
                return Ok(Vec::new());
            }
            let now = Instant::now();
            let mut out = Vec::with_capacity(rows.len());
            for (offset, payload) in rows {
                if offset != from + out.len() as u64 {
                    break;
                }
                out.push(Entry {
                    offset,
                    payload,
                    at: now,
                });
            }
            return Ok(out);
        }
        Ok(Vec::new())
    }

    /// Delivers the next message to the room's members on this node.
    async fn emit(&self, room: &Room, st: &mut RoomState, pos: &Position, payload: Payload) {
        let mut queued = 0;
        if room.plain.subscribers() > 0 {
            if let Ok(d) = room.plain.send(payload.to_message()).await {
                queued += d.queued;
            }
        }
        if room.enveloped.subscribers() > 0 {
            let msg = ServerMsg::message(pos, &payload).to_message();
            if let Ok(d) = room.enveloped.send(msg).await {
                queued += d.queued;
            }
        }
        self.metrics.delivered.inc_by(queued as u64);
        st.push(
            Entry {
                offset: pos.offset,
                payload,
                at: Instant::now(),
            },
            self.config.history,
        );
    }

    /// A message from the broker: in order, once, gaps filled first.
    #[cfg(feature = "redis")]
    async fn arrive(&self, room: &Room, st: &mut RoomState, pos: Position, payload: Payload) {
        if !st.initialized {
            // Joined while Redis was away: this is where the room is.
            st.initialized = true;
            st.reset(pos.epoch.clone());
            st.last = pos.offset - 1;
        } else if st.epoch.as_ref() != Some(&pos.epoch) {
            if st.epoch.is_some() {
                tracing::warn!(
                    room = %room.name,
                    "the room's history in Redis was lost (epoch {:?} is now {}): clients resuming from before get 'unrecoverable'",
                    st.epoch, pos.epoch
                );
            }
            st.reset(pos.epoch.clone());
        }
        match st.arrival(pos.offset) {
            Arrival::Duplicate => {}
            Arrival::Next => self.emit(room, st, &pos, payload).await,
            Arrival::Gap { from, to } => {
                self.fill(room, st, from, to).await;
                if st.last + 1 != pos.offset {
                    st.recent.clear();
                    st.last = pos.offset - 1;
                }
                self.emit(room, st, &pos, payload).await;
            }
        }
    }

    /// Fills `from..=to` from the history; what it no longer has is lost
    /// (counted and logged).
    #[cfg(feature = "redis")]
    async fn fill(&self, room: &Room, st: &mut RoomState, from: u64, to: u64) {
        self.metrics.gaps.inc();
        let entries = match self.read_history(room, st, from, to).await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(room = %room.name, "a gap of {} messages could not be filled: {e}", to - from + 1);
                Vec::new()
            }
        };
        let epoch = st.epoch.clone().unwrap_or_default();
        let n = entries.len() as u64;
        for e in entries {
            let pos = Position {
                epoch: epoch.clone(),
                offset: e.offset,
            };
            self.emit(room, st, &pos, e.payload).await;
        }
        self.metrics.gap_filled.inc_by(n);
        let lost = (to - from + 1) - n;
        if lost > 0 {
            self.metrics.gap_lost.inc_by(lost);
            tracing::warn!(room = %room.name, "{lost} messages (offsets {from}..={to}) were missed and are no longer in the history");
        } else {
            tracing::info!(room = %room.name, "filled a gap of {n} messages from the history");
        }
    }

    /// Compares every room's head in Redis with what arrived; a gap seen
    /// on two checks in a row (or right after a reconnect: `now`) is filled.
    #[cfg(feature = "redis")]
    async fn check_gaps(&self, now: bool) {
        let Some(redis) = &self.redis else { return };
        let rooms: Vec<Arc<Room>> = lock(&self.rooms).values().cloned().collect();
        if rooms.is_empty() {
            return;
        }
        let names: Vec<String> = rooms.iter().map(|r| r.name.clone()).collect();
        let Ok(heads) = redis.heads(&names).await else {
            return;
        };
        for (room, head) in rooms.iter().zip(heads) {
            let Some(head) = head else { continue };
            let mut st = room.state.lock().await;
            if !st.initialized {
                st.initialized = true;
                st.reset(head.epoch);
                st.last = head.offset;
                continue;
            }
            if st.epoch.as_ref() != Some(&head.epoch) {
                tracing::warn!(room = %room.name, "the room's history in Redis was lost (a new epoch, {})", head.epoch);
                st.reset(head.epoch.clone());
            }
            if head.offset <= st.last {
                st.suspect = None;
                continue;
            }
            let seen_before = st.suspect.is_some_and(|o| o > st.last);
            if now || seen_before {
                st.suspect = None;
                let from = st.last + 1;
                self.fill(room, &mut st, from, head.offset).await;
            } else {
                st.suspect = Some(head.offset);
            }
        }
    }
}

/// Room messages from Redis, and word of the connection going and coming.
#[cfg(feature = "redis")]
async fn subscriber_loop(
    inner: Weak<Inner>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<redis::PushInfo>,
) {
    use redis::PushKind;
    while let Some(push) = rx.recv().await {
        let Some(inner) = inner.upgrade() else { return };
        let Some(redis) = &inner.redis else { return };
        match push.kind {
            PushKind::PMessage => {
                let Some((name, pos, payload)) = redis.parse(&push) else {
                    continue;
                };
                let room = lock(&inner.rooms).get(&name).cloned();
                if let Some(room) = room {
                    let mut st = room.state.lock().await;
                    inner.arrive(&room, &mut st, pos, payload).await;
                }
            }
            PushKind::Disconnection => {
                inner.metrics.disconnects.inc();
                inner.metrics.backend_up.set(0);
                lock(&inner.lost_at).get_or_insert_with(Instant::now);
                tracing::warn!(
                    "lost the Pub/Sub connection to Redis at {}; reconnecting with backoff (local clients stay connected; publishes fail meanwhile; what is missed is read back from the history)",
                    redis.url()
                );
            }
            PushKind::PSubscribe => {
                let lost = lock(&inner.lost_at).take();
                if let Some(at) = lost {
                    inner.metrics.backend_up.set(1);
                    tracing::info!(
                        "Redis is back after {:.1} s: resubscribed; filling what was missed",
                        at.elapsed().as_secs_f64()
                    );
                    let inner = inner.clone();
                    tokio::spawn(async move { inner.check_gaps(true).await });
                }
            }
            _ => {}
        }
    }
}

/// Pings the subscriber connection (redis-rs stops reconnecting after its
/// retries until a command is sent) and resubscribes if the automatic
/// resubscription did not come back.
#[cfg(feature = "redis")]
async fn keepalive_loop(inner: Weak<Inner>) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut up = true;
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let Some(redis) = &inner.redis else { return };
        match redis.ping().await {
            Ok(()) => {
                if !up {
                    up = true;
                    tracing::info!("Redis at {} answers again", redis.url());
                }
                let stale =
                    lock(&inner.lost_at).is_some_and(|at| at.elapsed() > Duration::from_secs(2));
                if stale {
                    // Answers, but no PSUBSCRIBE confirmation came: ask again.
                    if redis.resubscribe().await.is_ok() {
                        inner.metrics.backend_up.set(1);
                        lock(&inner.lost_at).take();
                        tracing::info!("resubscribed to Redis by hand; filling what was missed");
                        inner.check_gaps(true).await;
                    }
                } else if lock(&inner.lost_at).is_none() {
                    inner.metrics.backend_up.set(1);
                }
            }
            Err(e) => {
                inner.metrics.backend_up.set(0);
                lock(&inner.lost_at).get_or_insert_with(Instant::now);
                if up {
                    up = false;
                    tracing::warn!("{e}; retrying every 250 ms (publishes fail with a retryable error meanwhile)");
                }
            }
        }
    }
}

#[cfg(feature = "redis")]
async fn gap_loop(inner: Weak<Inner>) {
    let period = match inner.upgrade() {
        Some(i) => i.config.gap_check,
        None => return,
    };
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        inner.check_gaps(false).await;
    }
}

/// Renews this node's presence entries (a third of the ttl apart): a node
/// that dies stops renewing, and its entries expire.
#[cfg(feature = "redis")]
async fn presence_loop(inner: Weak<Inner>) {
    let period = match inner.upgrade() {
        Some(i) => (i.config.presence_ttl / 3).max(Duration::from_millis(100)),
        None => return,
    };
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let Some(redis) = &inner.redis else { return };
        let rooms: Vec<Arc<Room>> = lock(&inner.rooms).values().cloned().collect();
        let until = now_ms() + inner.config.presence_ttl.as_millis() as u64;
        for room in rooms {
            let entries: Vec<String> = lock(&room.presence)
                .iter()
                .map(|(id, name)| inner.presence_entry(*id, name))
                .collect();
            if let Err(e) = redis.presence_renew(&room.name, &entries, until).await {
                tracing::debug!("presence not renewed: {e}");
                break;
            }
        }
    }
}
