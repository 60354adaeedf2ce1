//! [`Server`]: the one accept loop, with the limits and the shutdown a
//! production server needs, so that applications (and `wsx serve`) do not
//! each rewrite it. TCP or TLS ([`Acceptor`]); WebSocket upgrades on the
//! fast path; plain HTTP through hyper to an [`HttpService`].

mod h2;

use crate::accept::{accept_with, read_first, send_and_close, First, Incoming, ServerConfig};
use crate::error::Result;
use crate::http::{upgrade, upgrade_required, HttpService, PendingUpgrade, Rewind};
use crate::socket::WebSocket;
use crate::stream::ServerStream;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use wsx_proto::handshake::{Accept, HandshakeError, Upgrade};

/// Most 503 answers in flight at once; past it, excess connections are
/// dropped unanswered (a flood should not cost a task each).
const MAX_PENDING_REFUSALS: usize = 1024;

/// At `max_connections`, a newcomer waits this long for a slot before the
/// 503: a connection that is just ending (a client that left, a health
/// check that connected and hung up) frees its slot for it.
const ADMISSION_GRACE: Duration = Duration::from_millis(100);

/// How often a quiet accept loop frees the memory of ended connection tasks.
const REAP_EVERY: Duration = Duration::from_secs(1);

/// `Retry-After` of the 503 sent past `max_connections`, in seconds: soon
/// enough for a burst to pass, long enough not to invite a hammering.
pub const BUSY_RETRY_AFTER_SECS: u32 = 1;

/// Turns an accepted TCP connection into the stream the server speaks
/// over: itself ([`PlainTcp`]), or TLS (a `tokio_rustls::TlsAcceptor`, or
/// an `Option` of one for a server that may run either way). Runs inside
/// the handshake deadline.
pub trait Acceptor: Send + Sync + 'static {
    /// The stream WebSockets run over.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// Wraps `tcp` (e.g. runs the TLS handshake).
    fn accept(&self, tcp: TcpStream) -> impl Future<Output = std::io::Result<Self::Stream>> + Send;

    /// Whether the connection agreed on HTTP/2 (TLS ALPN `h2`). Default:
    /// no.
    fn is_http2(stream: &Self::Stream) -> bool {
        let _ = stream;
        false
    }
}

/// Plain TCP (`ws://`).
#[derive(Debug, Clone, Copy, Default)]
pub struct PlainTcp;

impl Acceptor for PlainTcp {
    type Stream = TcpStream;
    fn accept(&self, tcp: TcpStream) -> impl Future<Output = std::io::Result<TcpStream>> + Send {
        std::future::ready(Ok(tcp))
    }
}

#[cfg(feature = "tls")]
impl Acceptor for tokio_rustls::TlsAcceptor {
    type Stream = tokio_rustls::server::TlsStream<TcpStream>;
    fn accept(&self, tcp: TcpStream) -> impl Future<Output = std::io::Result<Self::Stream>> + Send {
        tokio_rustls::TlsAcceptor::accept(self, tcp)
    }
    fn is_http2(stream: &Self::Stream) -> bool {
        stream.get_ref().1.alpn_protocol() == Some(b"h2")
    }
}

/// TLS when set, plain TCP otherwise (one stream type for both).
#[cfg(feature = "tls")]
impl Acceptor for Option<tokio_rustls::TlsAcceptor> {
    type Stream = crate::MaybeTlsStream;
    fn accept(&self, tcp: TcpStream) -> impl Future<Output = std::io::Result<Self::Stream>> + Send {
        let tls = self.clone();
        async move {
            Ok(match tls {
                None => crate::MaybeTlsStream::Plain(tcp),
                Some(a) => crate::MaybeTlsStream::TlsServer(Box::new(a.accept(tcp).await?)),
            })
        }
    }
    fn is_http2(stream: &Self::Stream) -> bool {
        match stream {
            crate::MaybeTlsStream::TlsServer(s) => s.get_ref().1.alpn_protocol() == Some(b"h2"),
            _ => false,
        }
    }
}

/// A connection [`Server::serve`] accepted: who, what they asked for, and
/// what the accept hook returned.
#[derive(Debug)]
pub struct Accepted<T> {
    /// The client's address.
    pub peer: SocketAddr,
    /// The request's target (path and query).
    pub uri: http::Uri,
    /// The request's headers (cookies, tokens, user agent).
    pub headers: http::HeaderMap,
    /// What the accept hook returned (e.g. the authenticated user).
    pub auth: T,
}

/// Counters of a running [`Server::serve`].
#[derive(Debug, Default)]
struct Stats {
    active: AtomicUsize,
    accepted: AtomicU64,
    refused_busy: AtomicU64,
    failed_handshakes: AtomicU64,
    http_requests: AtomicU64,
    http2_connections: AtomicU64,
    panicked: AtomicU64,
    /// Signalled when a connection ends (a slot frees), if any admission
    /// is `waiting` for one.
    freed: tokio::sync::Notify,
    waiting: AtomicUsize,
}

impl Stats {
    /// Takes a connection slot if fewer than `max` are open.
    fn try_acquire(&self, max: Option<usize>) -> bool {
        let Some(max) = max else {
            self.active.fetch_add(1, Relaxed);
            return true;
        };
        self.active
            .fetch_update(SeqCst, SeqCst, |n| (n < max).then_some(n + 1))
            .is_ok()
    }

    /// Waits up to [`ADMISSION_GRACE`] for a slot.
    async fn acquire_within_grace(&self, max: Option<usize>) -> bool {
        let deadline = Instant::now() + ADMISSION_GRACE;
        self.waiting.fetch_add(1, SeqCst);
        let _waiting = Waiting(&self.waiting);
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if self.try_acquire(max) {
                return true;
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return false;
            }
        }
    }
}

/// Controls a [`Server::serve`] loop from elsewhere: shut it down, read its
/// counters. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ServerHandle {
    token: CancellationToken,
    stats: Arc<Stats>,
}

impl ServerHandle {
    fn new() -> Self {
        ServerHandle {
            token: CancellationToken::new(),
            stats: Arc::default(),
        }
    }

    /// Starts a graceful shutdown: stop accepting, send 1001 ("server
    /// shutting down") to every connection the next time its task polls
    /// `recv`, finish plain HTTP exchanges, wait up to
    /// [`ServerConfig::shutdown_timeout`] for the close handshakes, then drop
    /// the connections left. `serve` returns when that is done.
    pub fn shutdown(&self) {
        self.token.cancel();
    }

    /// Whether [`ServerHandle::shutdown`] was called.
    pub fn is_shutting_down(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves when the shutdown starts: for handlers with work of their
    /// own (a program to stop, a queue to drain) beside `recv`.
    pub async fn shutting_down(&self) {
        self.token.cancelled().await;
    }

    /// A token cancelled when the shutdown starts: give it to
    /// [`WebSocket::close_on`] for sockets made outside `serve` (e.g. by
    /// the hyper path of an application) so they too close with 1001.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.token.child_token()
    }

    /// Connections open now (WebSocket, in the handshake, or plain HTTP).
    pub fn active_connections(&self) -> usize {
        self.stats.active.load(Relaxed)
    }

    /// Connections upgraded to WebSocket so far.
    pub fn accepted(&self) -> u64 {
        self.stats.accepted.load(Relaxed)
    }

    /// Connections answered 503 because `max_connections` were open.
    pub fn refused_busy(&self) -> u64 {
        self.stats.refused_busy.load(Relaxed)
    }

    /// Handshakes that failed: timeouts (slowloris), TLS failures,
    /// malformed or refused upgrade requests (400/403/405/426/431, the
    /// accept hook's refusals).
    pub fn failed_handshakes(&self) -> u64 {
        self.stats.failed_handshakes.load(Relaxed)
    }

    /// Plain HTTP requests answered (by the [`HttpService`]).
    pub fn http_requests(&self) -> u64 {
        self.stats.http_requests.load(Relaxed)
    }

    /// Connections served as HTTP/2 (TLS ALPN `h2`, or h2c with prior
    /// knowledge); each may carry many WebSockets.
    pub fn http2_connections(&self) -> u64 {
        self.stats.http2_connections.load(Relaxed)
    }

    /// Connection handlers that panicked (each is logged at error level;
    /// the server goes on).
    pub fn panicked(&self) -> u64 {
        self.stats.panicked.load(Relaxed)
    }
}

/// One admission waiting for a slot, until it stops waiting.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

/// Decrements the open-connection count however the task ends (including
/// abort at the end of a shutdown).
struct ActiveGuard(Arc<Stats>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Counted here, as it unwinds: the loop does not wait on its tasks.
            self.0.panicked.fetch_add(1, Relaxed);
            tracing::error!(
                "a connection handler panicked (the panic message is above); the server goes on"
            );
        }
        self.0.active.fetch_sub(1, SeqCst);
        // Only admissions waiting out their grace listen; without them
        // (no max_connections, or not at it) a close takes no lock.
        if self.0.waiting.load(SeqCst) > 0 {
            self.0.freed.notify_waiters();
        }
    }
}

/// Connections the kernel completes and queues before the accept loop
/// takes them. tokio's default is 1,024: when more clients than that
/// reconnect at once (a restart, a deploy, a broker's recovery), the rest
/// had their SYNs dropped and retried a second later.
pub const LISTEN_BACKLOG: u32 = 4096;

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As TcpListener::bind: a restarted server binds while old connections linger.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// A listening server: [`Server::serve`] runs the accept loop with every
/// limit applied and a graceful shutdown; [`Server::accept_tcp`] and
/// [`Server::accept`] are the building blocks for a loop of your own.
///
/// ```no_run
/// # async fn run() -> Result<(), wsx::Error> {
/// let server = wsx::Server::bind("127.0.0.1:9001").await?;
/// let (mut ws, peer) = server.accept().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Server<A = PlainTcp> {
    listener: TcpListener,
    config: ServerConfig,
    handle: ServerHandle,
    acceptor: A,
    http: HttpService,
}

impl Server<PlainTcp> {
    /// Binds to `addr` with default settings, with a listen backlog of
    /// [`LISTEN_BACKLOG`] (the kernel caps it at its `somaxconn`).
    ///
    /// # Errors
    /// The address cannot be bound.
    pub async fn bind(addr: impl ToSocketAddrs) -> Result<Server> {
        let mut last = None;
        for a in tokio::net::lookup_host(addr).await? {
            match listen(a) {
                Ok(l) => return Ok(Self::from_listener(l)),
                Err(e) => last = Some(e),
            }
        }
        Err(last
            .unwrap_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "the address resolved to nothing",
                )
            })
            .into())
    }

    /// Serves on a listener bound elsewhere.
    pub fn from_listener(listener: TcpListener) -> Server {
        Server {
            listener,
            config: ServerConfig::default(),
            handle: ServerHandle::new(),
            acceptor: PlainTcp,
            http: HttpService::upgrade_required(),
        }
    }
}

impl<A: Acceptor> Server<A> {
    /// Uses `config` for connections accepted from now on.
    pub fn with_config(mut self, config: ServerConfig) -> Self {
        self.config = config;
        self
    }

    /// Wraps every accepted connection with `acceptor` (TLS), inside the
    /// handshake deadline.
    pub fn with_acceptor<B: Acceptor>(self, acceptor: B) -> Server<B> {
        Server {
            listener: self.listener,
            config: self.config,
            handle: self.handle,
            acceptor,
            http: self.http,
        }
    }

    /// Answers plain HTTP requests (not upgrades) with `service`, through
    /// hyper: keep-alive, any method, streaming bodies. Default: 426.
    pub fn with_http(mut self, service: HttpService) -> Self {
        self.http = service;
        self
    }

    /// The bound address (useful after binding port 0).
    ///
    /// # Errors
    /// The OS cannot say.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// The settings.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Accepts a TCP connection (not yet the WebSocket handshake: run
    /// [`crate::server::accept_with`] on it, usually in a spawned task).
    ///
    /// # Errors
    /// I/O errors from `accept` (e.g. out of file descriptors).
    ///
    /// # Cancel safety
    /// Cancel safe, like `TcpListener::accept`.
    pub async fn accept_tcp(&self) -> Result<(TcpStream, SocketAddr)> {
        let (tcp, peer) = self.listener.accept().await?;
        let _ = tcp.set_nodelay(true);
        Ok((tcp, peer))
    }

    /// Accepts a connection and runs the acceptor and the handshake on it,
    /// in this task.
    ///
    /// # Errors
    /// As [`Server::accept_tcp`] and [`crate::server::accept_with`], or the
    /// acceptor's (TLS) error.
    ///
    /// # Cancel safety
    /// Not cancel safe once a TCP connection was accepted.
    pub async fn accept(&self) -> Result<(WebSocket<A::Stream>, SocketAddr)> {
        let (tcp, peer) = self.accept_tcp().await?;
        let stream = self.acceptor.accept(tcp).await?;
        let ws = accept_with(stream, &self.config, |_| Ok(Accept::default())).await?;
        Ok((ws, peer))
    }

    /// A handle to shut down [`Server::serve`] and read its counters; take
    /// it before calling `serve`.
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// Serves WebSocket connections until [`ServerHandle::shutdown`]: each
    /// accepted connection runs `handler` in its own task, with every limit
    /// of the [`ServerConfig`] applied (handshake deadline including TLS,
    /// head size, Origin policy, `max_connections` with 503 and
    /// `Retry-After`, keepalive). Plain HTTP requests go to the
    /// [`HttpService`] (426 by default).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), wsx::Error> {
    /// let server = wsx::Server::bind("127.0.0.1:9001").await?;
    /// let handle = server.handle();
    /// tokio::spawn(async move {
    ///     tokio::signal::ctrl_c().await.ok();
    ///     handle.shutdown(); // 1001 to everyone, then return
    /// });
    /// server
    ///     .serve(|mut ws, _peer| async move {
    ///         while let Ok(Some(msg)) = ws.recv().await {
    ///             if ws.send(msg).await.is_err() {
    ///                 break;
    ///             }
    ///         }
    ///     })
    ///     .await
    /// # }
    /// ```
    ///
    /// # Errors
    /// None today besides setup; accept errors (e.g. out of file
    /// descriptors) are logged and retried after a pause.
    pub async fn serve<H, Fut>(self, handler: H) -> Result<()>
    where
        H: Fn(WebSocket<ServerStream<A::Stream>>, SocketAddr) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.serve_with(
            |_| Ok(()),
            move |ws, accepted: Accepted<()>| handler(ws, accepted.peer),
        )
        .await
    }

    /// As [`Server::serve`], with an accept hook that sees each upgrade
    /// request (path, query, headers, cookies, Origin, subprotocols) before
    /// the 101 and either refuses it (its status and body go to the client,
    /// e.g. 401) or returns a value handed to `handler` (e.g. the user).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), wsx::Error> {
    /// use wsx::{server::{HandshakeError, Accepted}};
    /// let server = wsx::Server::bind("127.0.0.1:9001").await?;
    /// server
    ///     .serve_with(
    ///         |up| match up.query().and_then(|q| q.strip_prefix("token=")) {
    ///             Some("s3cret") => Ok("alice".to_string()),
    ///             _ => Err(HandshakeError::rejected(
    ///                 http::StatusCode::UNAUTHORIZED,
    ///                 "missing or wrong ?token=",
    ///             )),
    ///         },
    ///         |mut ws, who: Accepted<String>| async move {
    ///             let _ = ws.send(wsx::Message::text(format!("hello {}", who.auth))).await;
    ///         },
    ///     )
    ///     .await
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`Server::serve`].
    pub async fn serve_with<F, T, H, Fut>(self, authorize: F, handler: H) -> Result<()>
    where
        F: Fn(&Upgrade) -> std::result::Result<T, HandshakeError> + Send + Sync + 'static,
        T: Send + 'static,
        H: Fn(WebSocket<ServerStream<A::Stream>>, Accepted<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let shared = Arc::new(Shared {
            config: self.config.clone(),
            authorize,
            handler,
            acceptor: self.acceptor,
            http: self.http,
            token: self.handle.token.clone(),
            stats: self.handle.stats.clone(),
        });
        let stats = &shared.stats;
        let refusals = Arc::new(AtomicUsize::new(0));
        let mut tasks = JoinSet::new();
        // One waiter for the whole loop, not one registered and dropped per accept.
        let stop = shared.token.cancelled();
        tokio::pin!(stop);
        // Ended tasks are reaped at the next accept, and at least once a
        // second, so a quiet server does not keep their memory.
        let mut reap = tokio::time::interval(REAP_EVERY);
        reap.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let (tcp, peer) = tokio::select! {
                biased;
                _ = &mut stop => break,
                _ = reap.tick() => {
                    while tasks.try_join_next().is_some() {}
                    continue;
                }
                r = self.listener.accept() => match r {
                    Ok(pair) => pair,
                    Err(e) => {
                        accept_error(&e).await;
                        continue;
                    }
                },
            };
            // Reaped without waiting: waiting on the set would wake this
            // loop (and retry accept) at every close.
            while tasks.try_join_next().is_some() {}
            let _ = tcp.set_nodelay(true);
            let max = shared.config.max_connections;
            let admitted = stats.try_acquire(max);
            if !admitted && refusals.load(Relaxed) >= MAX_PENDING_REFUSALS {
                stats.refused_busy.fetch_add(1, Relaxed);
                continue; // a flood: dropped unanswered
            }
            let refusals = (!admitted).then(|| {
                refusals.fetch_add(1, Relaxed);
                refusals.clone()
            });
            let shared = shared.clone();
            // A connection's task holds its future for the connection's
            // life, so what only the start needs (the stream and address
            // handed over, a refused connection's waits, the TLS and HTTP
            // handshake: ~4 KiB) is in a box freed once the WebSocket is up.
            // The handler's future is boxed on its own: inline, the task
            // would keep slots for the socket and request handed to it.
            let start = Box::pin(async move {
                if let Some(refusals) = refusals {
                    let got = shared.stats.acquire_within_grace(max).await;
                    refusals.fetch_sub(1, Relaxed);
                    if !got {
                        shared.stats.refused_busy.fetch_add(1, Relaxed);
                        refuse_busy(tcp, max.unwrap_or(0)).await;
                        return None;
                    }
                }
                let guard = ActiveGuard(shared.stats.clone());
                let (ws, accepted) = shared.connection(tcp, peer).await?;
                let ws = ws.close_on(shared.token.clone());
                Some((guard, Box::pin((shared.handler)(ws, accepted))))
            });
            tasks.spawn(async move {
                if let Some((_guard, handler)) = start.await {
                    handler.await;
                }
            });
        }
        // Shutting down: the listener closes now (no new connections, not
        // even into the backlog); open WebSockets close with 1001 as their
        // tasks poll `recv`.
        drop(self.listener);
        let timeout = shared.config.shutdown_timeout;
        let active = stats.active.load(Relaxed);
        if active > 0 {
            tracing::info!(
                connections = active,
                "shutting down: sent 1001 to every connection, waiting up to {timeout:?} for them to close"
            );
        }
        let drain = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(timeout, drain).await.is_err() {
            let left = stats.active.load(Relaxed);
            tracing::warn!(
                connections = left,
                "shutdown: {left} connection(s) still open after {timeout:?}; dropping them (handlers that never poll recv() do not see the 1001)"
            );
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
        Ok(())
    }
}

/// What every connection task of one `serve` shares.
struct Shared<A, F, H> {
    config: ServerConfig,
    authorize: F,
    handler: H,
    acceptor: A,
    http: HttpService,
    token: CancellationToken,
    stats: Arc<Stats>,
}

/// Where the hyper path leaves an upgrade for the connection task.
type UpgradeSlot<T> = Arc<Mutex<Option<(PendingUpgrade, Accepted<T>)>>>;

/// A WebSocket the server accepted, with what its handler gets.
type Ready<S, T> = (WebSocket<ServerStream<S>>, Accepted<T>);

impl<A, F, T, H, Fut> Shared<A, F, H>
where
    A: Acceptor,
    F: Fn(&Upgrade) -> std::result::Result<T, HandshakeError> + Send + Sync + 'static,
    T: Send + 'static,
    H: Fn(WebSocket<ServerStream<A::Stream>>, Accepted<T>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    fn failed(&self, peer: SocketAddr, e: impl std::fmt::Display) {
        self.stats.failed_handshakes.fetch_add(1, Relaxed);
        tracing::debug!(%peer, "handshake failed: {e}");
    }

    /// A connection up to its WebSocket: the acceptor (TLS) and the first
    /// request head within the handshake deadline; an upgrade is accepted
    /// at once, anything else goes to hyper (which may upgrade a later
    /// request on the same connection).
    async fn connection(
        self: &Arc<Self>,
        tcp: TcpStream,
        peer: SocketAddr,
    ) -> Option<Ready<A::Stream, T>> {
        let deadline = Instant::now() + self.config.handshake_timeout;
        let head = async {
            let stream = match tokio::time::timeout_at(deadline, self.acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return Err(format!("TLS handshake: {e}")),
                Err(_) => return Err("TLS handshake timed out".to_string()),
            };
            if A::is_http2(&stream) {
                return Ok(First::Http2(stream, Vec::new()));
            }
            let h2c = self.config.h2c && self.config.http2.is_some();
            read_first(stream, &self.config, deadline, h2c)
                .await
                .map_err(|e| e.to_string())
        };
        let incoming = tokio::select! {
            // The head first: when it is already complete, the shutdown
            // waiter is never registered (nor unregistered).
            biased;
            r = head => match r {
                Ok(First::Http1(i)) => i.map_stream(ServerStream::Http1),
                Ok(First::Http2(stream, read)) => {
                    // Boxed, as the HTTP/1.1 path below: hyper's state
                    // would size every connection's task.
                    Box::pin(self.serve_h2(stream, read, peer)).await;
                    return None;
                }
                Err(e) => return { self.failed(peer, e); None },
            },
            // A client still sending its head when the server stops is dropped.
            _ = self.token.cancelled() => return None,
        };
        // Not an upgrade (checked first: the fast path pays nothing more).
        if !incoming.is_upgrade() {
            if wsx_proto::handshake::is_stripped_upgrade(incoming.request()) {
                // A WebSocket client's handshake that a proxy passed on without
                // its Upgrade header: not a page request. Say so to both ends.
                self.failed(peer, "handshake without its Upgrade header");
                tracing::warn!(
                    %peer,
                    path = incoming.request().uri().path(),
                    "a WebSocket handshake arrived without its Upgrade header: a reverse proxy in front did not forward it (answered 426 saying which proxy lines are missing)"
                );
                let _ = incoming
                    .respond(
                        http::StatusCode::UPGRADE_REQUIRED,
                        &[
                            ("Upgrade", "websocket"),
                            ("Connection", "Upgrade"),
                            ("Content-Type", "text/plain; charset=utf-8"),
                        ],
                        wsx_proto::handshake::STRIPPED_UPGRADE_BODY.as_bytes(),
                    )
                    .await;
                return None;
            }
            // Boxed: hyper's connection state is 3 KiB, and inline it would
            // size every connection's task for it, WebSockets included.
            return Box::pin(self.serve_http(incoming, peer)).await;
        }
        let mut auth = None;
        let ws = incoming
            .accept_keeping_request(|up| {
                auth = Some((self.authorize)(up)?);
                Ok(Accept::default())
            })
            .await;
        match (ws, auth) {
            (Ok((ws, request)), Some(auth)) => {
                self.stats.accepted.fetch_add(1, Relaxed);
                let (parts, ()) = request.into_parts();
                let accepted = Accepted {
                    peer,
                    uri: parts.uri,
                    headers: parts.headers,
                    auth,
                };
                Some((ws, accepted))
            }
            (Err(e), _) => {
                self.failed(peer, e);
                None
            }
            (Ok(_), None) => None, // unreachable: accepted without the hook
        }
    }

    /// Plain HTTP through hyper, with keep-alive, until the client leaves,
    /// the server stops, or a request on the connection upgrades.
    async fn serve_http(
        self: &Arc<Self>,
        incoming: Incoming<ServerStream<A::Stream>>,
        peer: SocketAddr,
    ) -> Option<Ready<A::Stream, T>> {
        let (stream, raw) = incoming.into_raw();
        let io = hyper_util::rt::TokioIo::new(Rewind::new(stream, raw.into()));
        let slot: UpgradeSlot<T> = Arc::default();
        let service = {
            let (me, slot) = (self.clone(), slot.clone());
            hyper::service::service_fn(move |req| {
                let (me, slot) = (me.clone(), slot.clone());
                async move { Ok::<_, std::convert::Infallible>(me.route(req, peer, &slot).await) }
            })
        };
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            // As the fast path writes them (and as some clients still match).
            .title_case_headers(true)
            .header_read_timeout(self.config.handshake_timeout)
            .max_buf_size(self.config.max_handshake_bytes.max(8192))
            .serve_connection(io, service)
            .with_upgrades();
        tokio::pin!(conn);
        let served = tokio::select! {
            r = conn.as_mut() => r,
            _ = self.token.cancelled() => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if let Err(e) = served {
            tracing::debug!(%peer, "HTTP connection ended: {e}");
        }
        let pending = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        let (pending, accepted) = pending?;
        match pending.websocket_rewound::<ServerStream<A::Stream>>().await {
            Ok(ws) => {
                self.stats.accepted.fetch_add(1, Relaxed);
                Some((ws, accepted))
            }
            Err(e) => {
                self.failed(peer, e);
                None
            }
        }
    }

    /// One request on a hyper connection: an upgrade (decided as on the
    /// fast path), a handshake whose Upgrade header a proxy dropped (426
    /// saying so), or plain HTTP for the service.
    async fn route(
        &self,
        mut req: http::Request<hyper::body::Incoming>,
        peer: SocketAddr,
        slot: &UpgradeSlot<T>,
    ) -> http::Response<crate::http::Body> {
        if wsx_proto::handshake::is_upgrade_request(&req) {
            let mut auth = None;
            let (response, pending) = upgrade(&mut req, &self.config, |up| {
                auth = Some((self.authorize)(up)?);
                Ok(Accept::default())
            });
            match (pending, auth) {
                (Some(pending), Some(auth)) => {
                    let accepted = Accepted {
                        peer,
                        uri: req.uri().clone(),
                        headers: req.headers().clone(),
                        auth,
                    };
                    *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some((pending, accepted));
                }
                _ => self.failed(peer, response.status()),
            }
            return response;
        }
        self.stats.http_requests.fetch_add(1, Relaxed);
        if wsx_proto::handshake::is_stripped_upgrade(&req) {
            tracing::warn!(
                %peer,
                path = req.uri().path(),
                "a WebSocket handshake arrived without its Upgrade header: a reverse proxy in front did not forward it (answered 426)"
            );
            return upgrade_required(&req);
        }
        self.http.call(req).await
    }
}

/// 503 with `Retry-After`, so clients (and wsx's reconnecting client) back off.
async fn refuse_busy(mut tcp: TcpStream, max: usize) {
    let body = format!("server busy: {max} connections open (its max_connections); retry later\n");
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: {BUSY_RETRY_AFTER_SECS}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(
        Duration::from_secs(2),
        send_and_close(&mut tcp, response.as_bytes()),
    )
    .await;
}

/// Accept errors: out of file descriptors (EMFILE/ENFILE) or memory would
/// make a tight loop spin; pause so running connections can finish.
async fn accept_error(e: &std::io::Error) {
    let out_of_fds = matches!(e.raw_os_error(), Some(23 | 24));
    if out_of_fds {
        tracing::warn!("accept failed: {e}: out of file descriptors; raise the limit (ulimit -n) or set max_connections below it; pausing accepts for 100 ms");
    } else {
        tracing::debug!("accept failed: {e}");
    }
    tokio::time::sleep(Duration::from_millis(if out_of_fds { 100 } else { 5 })).await;
}
