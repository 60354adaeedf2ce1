//! [`Server::serve`]: the accept loop with the limits and the shutdown a
//! production server needs, so that applications do not each rewrite it.

use crate::error::Result;
use crate::server::{read_request, send_and_close, Server};
use crate::socket::WebSocket;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use wsx_proto::handshake::{Accept, HandshakeError, Upgrade};

/// Most 503 answers in flight at once; past it, excess connections are
/// dropped unanswered (a flood should not cost a task each).
const MAX_PENDING_REFUSALS: usize = 1024;

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
    panicked: AtomicU64,
}

/// Controls a [`Server::serve`] loop from elsewhere: shut it down, read its
/// counters. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ServerHandle {
    token: CancellationToken,
    stats: Arc<Stats>,
}

impl ServerHandle {
    pub(crate) fn new() -> Self {
        ServerHandle {
            token: CancellationToken::new(),
            stats: Arc::default(),
        }
    }

    /// Starts a graceful shutdown: stop accepting, send 1001 ("server
    /// shutting down") to every connection the next time its task polls
    /// `recv`, wait up to [`crate::ServerConfig::shutdown_timeout`] for the
    /// close handshakes, then drop the connections left. `serve` returns
    /// when that is done.
    pub fn shutdown(&self) {
        self.token.cancel();
    }

    /// Whether [`ServerHandle::shutdown`] was called.
    pub fn is_shutting_down(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Connections open now (after the handshake, or in it).
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

    /// Handshakes that failed: timeouts (slowloris), malformed or refused
    /// requests (400/403/405/426/431, the accept hook's refusals).
    pub fn failed_handshakes(&self) -> u64 {
        self.stats.failed_handshakes.load(Relaxed)
    }

    /// Connection handlers that panicked (each is logged at error level;
    /// the server goes on).
    pub fn panicked(&self) -> u64 {
        self.stats.panicked.load(Relaxed)
    }
}

/// Decrements the open-connection count however the task ends (including
/// abort at the end of a shutdown).
struct ActiveGuard(Arc<Stats>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Relaxed);
    }
}

impl Server {
    /// A handle to shut down [`Server::serve`] and read its counters; take
    /// it before calling `serve`.
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// Serves WebSocket connections until [`ServerHandle::shutdown`]: each
    /// accepted connection runs `handler` in its own task, with every limit
    /// of the [`crate::ServerConfig`] applied (handshake timeout, head size,
    /// Origin policy, `max_connections` with 503, keepalive). Plain HTTP
    /// requests are answered 426.
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
        H: Fn(WebSocket<TcpStream>, SocketAddr) -> Fut + Send + Sync + 'static,
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
    /// use wsx::{HandshakeError, Accepted};
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
    pub async fn serve_with<A, T, H, Fut>(self, authorize: A, handler: H) -> Result<()>
    where
        A: Fn(&Upgrade) -> std::result::Result<T, HandshakeError> + Send + Sync + 'static,
        T: Send + 'static,
        H: Fn(WebSocket<TcpStream>, Accepted<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let config = Arc::new(self.config.clone());
        let authorize = Arc::new(authorize);
        let handler = Arc::new(handler);
        let ServerHandle { token, stats } = self.handle.clone();
        let refusals = Arc::new(AtomicUsize::new(0));
        let mut tasks = JoinSet::new();
        loop {
            let (tcp, peer) = tokio::select! {
                biased;
                _ = token.cancelled() => break,
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    note_end(&stats, done);
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
            let _ = tcp.set_nodelay(true);
            if config
                .max_connections
                .is_some_and(|max| stats.active.load(Relaxed) >= max)
            {
                stats.refused_busy.fetch_add(1, Relaxed);
                if refusals.load(Relaxed) < MAX_PENDING_REFUSALS {
                    refusals.fetch_add(1, Relaxed);
                    let refusals = refusals.clone();
                    let max = config.max_connections.unwrap_or(0);
                    tasks.spawn(async move {
                        refuse_busy(tcp, max).await;
                        refusals.fetch_sub(1, Relaxed);
                    });
                }
                continue;
            }
            stats.active.fetch_add(1, Relaxed);
            let guard = ActiveGuard(stats.clone());
            let (config, authorize, handler, token, stats) = (
                config.clone(),
                authorize.clone(),
                handler.clone(),
                token.clone(),
                stats.clone(),
            );
            tasks.spawn(async move {
                let _guard = guard;
                let Some((ws, accepted)) =
                    handshake(tcp, peer, &config, &*authorize, &token, &stats).await
                else {
                    return;
                };
                handler(ws.with_shutdown(token), accepted).await;
            });
        }
        // Shutting down: the listener closes now (no new connections, not
        // even into the backlog); open WebSockets close with 1001 as their
        // tasks poll `recv`.
        drop(self.listener);
        let active = stats.active.load(Relaxed);
        if active > 0 {
            tracing::info!(
                connections = active,
                "shutting down: sent 1001 to every connection, waiting up to {:?} for them to close",
                config.shutdown_timeout
            );
        }
        let drain = async {
            while let Some(done) = tasks.join_next().await {
                note_end(&stats, done);
            }
        };
        if tokio::time::timeout(config.shutdown_timeout, drain)
            .await
            .is_err()
        {
            let left = stats.active.load(Relaxed);
            tracing::warn!(
                connections = left,
                "shutdown: {left} connection(s) still open after {:?}; dropping them (handlers that never poll recv() do not see the 1001)",
                config.shutdown_timeout
            );
            tasks.abort_all();
            while let Some(done) = tasks.join_next().await {
                note_end(&stats, done);
            }
        }
        Ok(())
    }
}

/// The handshake part of a connection task: head, upgrade checks, hook.
async fn handshake<A, T>(
    tcp: TcpStream,
    peer: SocketAddr,
    config: &crate::ServerConfig,
    authorize: &A,
    token: &CancellationToken,
    stats: &Stats,
) -> Option<(WebSocket<TcpStream>, Accepted<T>)>
where
    A: Fn(&Upgrade) -> std::result::Result<T, HandshakeError>,
{
    let fail = |e: crate::Error| {
        stats.failed_handshakes.fetch_add(1, Relaxed);
        tracing::debug!(%peer, "handshake failed: {e}");
    };
    let incoming = tokio::select! {
        r = read_request(tcp, config) => match r {
            Ok(i) => i,
            Err(e) => return { fail(e); None },
        },
        // A client still sending its head when the server stops is dropped.
        _ = token.cancelled() => return None,
    };
    if !incoming.is_upgrade() {
        stats.failed_handshakes.fetch_add(1, Relaxed);
        let body: &[u8] = if wsx_proto::handshake::is_stripped_upgrade(incoming.request()) {
            tracing::debug!(%peer, "handshake without its Upgrade header: a proxy did not forward it");
            wsx_proto::handshake::STRIPPED_UPGRADE_BODY.as_bytes()
        } else {
            b"this is a WebSocket endpoint: connect with a WebSocket client (Upgrade: websocket)\n"
        };
        let _ = incoming
            .respond(
                http::StatusCode::UPGRADE_REQUIRED,
                &[("Upgrade", "websocket"), ("Content-Type", "text/plain")],
                body,
            )
            .await;
        return None;
    }
    let uri = incoming.request().uri().clone();
    let headers = incoming.request().headers().clone();
    let mut auth = None;
    let ws = incoming
        .accept(|up| {
            auth = Some(authorize(up)?);
            Ok(Accept::default())
        })
        .await;
    match (ws, auth) {
        (Ok(ws), Some(auth)) => {
            stats.accepted.fetch_add(1, Relaxed);
            Some((
                ws,
                Accepted {
                    peer,
                    uri,
                    headers,
                    auth,
                },
            ))
        }
        (Err(e), _) => {
            fail(e);
            None
        }
        (Ok(_), None) => None, // unreachable: accepted without the hook
    }
}

/// 503 with `Retry-After`, so clients (and wsx's reconnecting client) back off.
async fn refuse_busy(mut tcp: TcpStream, max: usize) {
    let body = format!("server busy: {max} connections open (its max_connections); retry later\n");
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(
        Duration::from_secs(2),
        send_and_close(&mut tcp, response.as_bytes()),
    )
    .await;
}

fn note_end(stats: &Stats, done: std::result::Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        if e.is_panic() {
            stats.panicked.fetch_add(1, Relaxed);
            tracing::error!("a connection handler panicked: {e}; the server goes on");
        }
    }
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
