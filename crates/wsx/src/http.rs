//! HTTP through hyper: the plain requests that reach [`crate::Server`]
//! (pages, files, metrics: any service, e.g. an axum `Router`), and
//! WebSocket upgrades of requests that a hyper or axum server received
//! ([`upgrade`]). Every upgrade is decided by the same code as the
//! standalone server's: same statuses, bodies, Origin policy and limits.

use crate::accept::{negotiate_upgrade, Negotiated, ServerConfig};
use crate::error::{Error, Kind, Result};
use crate::socket::WebSocket;
use bytes::{Buf, Bytes};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use wsx_proto::handshake::{Accept, HandshakeError, Upgrade};

/// Errors of a response body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type of responses made here (and of [`HttpService`]).
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

type BoxFuture = Pin<Box<dyn Future<Output = http::Response<Body>> + Send>>;

/// A body of `bytes` (or none).
pub fn full(bytes: impl Into<Bytes>) -> Body {
    http_body_util::Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Answers the plain HTTP requests (not upgrades) that reach a
/// [`crate::Server`]. Any tower service fits, such as an axum `Router`:
///
/// ```no_run
/// # async fn run() -> Result<(), wsx::Error> {
/// use wsx::server::{HttpService, Server};
/// let page = HttpService::from_fn(|_req| async {
///     http::Response::new(wsx::server::full("hello\n"))
/// });
/// Server::bind("127.0.0.1:9001")
///     .await?
///     .with_http(page)
///     .serve(|mut ws, _peer| async move {
///         while let Ok(Some(m)) = ws.recv().await {
///             let _ = ws.send(m).await;
///         }
///     })
///     .await
/// # }
/// ```
#[derive(Clone)]
pub struct HttpService {
    call: Arc<dyn Fn(http::Request<hyper::body::Incoming>) -> BoxFuture + Send + Sync>,
}

impl std::fmt::Debug for HttpService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpService")
    }
}

impl HttpService {
    /// A tower service (an axum `Router`, a tower-http `ServeDir`, ...).
    pub fn new<S, B>(service: S) -> Self
    where
        S: tower_service::Service<
                http::Request<hyper::body::Incoming>,
                Response = http::Response<B>,
                Error = Infallible,
            > + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        HttpService {
            call: Arc::new(move |req| {
                let mut svc = service.clone();
                Box::pin(async move {
                    let ready = std::future::poll_fn(|cx| svc.poll_ready(cx)).await;
                    let response = match ready {
                        Ok(()) => svc.call(req).await,
                        Err(never) => match never {},
                    };
                    let Ok(response) = response;
                    response.map(|b| b.map_err(Into::into).boxed_unsync())
                })
            }),
        }
    }

    /// An async function from request to response.
    pub fn from_fn<F, Fut>(f: F) -> Self
    where
        F: Fn(http::Request<hyper::body::Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = http::Response<Body>> + Send + 'static,
    {
        HttpService {
            call: Arc::new(move |req| Box::pin(f(req))),
        }
    }

    /// The default: 426 Upgrade Required, saying that this is a WebSocket
    /// endpoint (or, for a handshake whose `Upgrade` header a proxy
    /// dropped, which proxy lines are missing).
    pub fn upgrade_required() -> Self {
        Self::from_fn(|req| async move { upgrade_required(&req) })
    }

    pub(crate) fn call(&self, req: http::Request<hyper::body::Incoming>) -> BoxFuture {
        (self.call)(req)
    }
}

/// 426 for a plain HTTP request on a WebSocket endpoint: the answer of
/// [`HttpService::upgrade_required`], for services that fall back to it.
pub fn upgrade_required<B>(req: &http::Request<B>) -> http::Response<Body> {
    let stripped = wsx_proto::handshake::is_stripped_upgrade(req);
    if stripped {
        tracing::debug!(
            path = req.uri().path(),
            "handshake without its Upgrade header: a proxy did not forward it"
        );
    }
    upgrade_required_response(stripped)
}

/// The 426 of [`upgrade_required`]; `stripped`: the request was a
/// handshake that lost its Upgrade header on the way.
pub(crate) fn upgrade_required_response(stripped: bool) -> http::Response<Body> {
    let body: &str = if stripped {
        wsx_proto::handshake::STRIPPED_UPGRADE_BODY
    } else {
        "this is a WebSocket endpoint: connect with a WebSocket client (Upgrade: websocket)\n"
    };
    http::Response::builder()
        .status(http::StatusCode::UPGRADE_REQUIRED)
        .header(http::header::UPGRADE, "websocket")
        // A WebSocket-only endpoint has nothing more to say on this connection.
        .header(http::header::CONNECTION, "close")
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(full(body))
        .expect("static parts are valid")
}

/// The HTTP response of a refused handshake (400, 403, 405, 426, 431, or
/// the accept hook's own status), as the standalone server sends it.
pub fn handshake_error_response(e: &HandshakeError) -> http::Response<Body> {
    e.http_response().map(full)
}

/// An upgrade answered with 101, waiting for hyper to hand the connection
/// over: await [`PendingUpgrade::websocket`] (usually in a spawned task,
/// since hyper sends the 101 only after the service returns it).
#[must_use = "the WebSocket exists only once `websocket()` is awaited"]
pub struct PendingUpgrade {
    on_upgrade: hyper::upgrade::OnUpgrade,
    negotiated: Negotiated,
    limits: wsx_proto::Config,
    high_water: usize,
}

impl std::fmt::Debug for PendingUpgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingUpgrade")
            .field("path", &self.negotiated.upgrade.path())
            .finish_non_exhaustive()
    }
}

/// Upgrades a request received by a hyper (or axum) server: returns the
/// response to send from the service, and, when it is the 101, the
/// [`PendingUpgrade`] that becomes the WebSocket. A refusal is the same
/// status and body as the standalone server's (400 for a malformed
/// handshake, 403 for a refused Origin, the accept hook's refusal).
/// `decide` is the accept hook: authenticate here.
///
/// ```no_run
/// use wsx::server::{upgrade, Body, ServerConfig};
/// async fn handle(
///     mut req: http::Request<hyper::body::Incoming>,
/// ) -> Result<http::Response<Body>, std::convert::Infallible> {
///     let config = ServerConfig::default();
///     let (response, pending) = upgrade(&mut req, &config, |_| Ok(Default::default()));
///     if let Some(pending) = pending {
///         tokio::spawn(async move {
///             // TcpStream: the stream type given to hyper (via TokioIo).
///             let Ok(mut ws) = pending.websocket::<tokio::net::TcpStream>().await else { return };
///             while let Ok(Some(m)) = ws.recv().await {
///                 let _ = ws.send(m).await;
///             }
///         });
///     }
///     Ok(response)
/// }
/// ```
pub fn upgrade<B, F>(
    req: &mut http::Request<B>,
    config: &ServerConfig,
    decide: F,
) -> (http::Response<Body>, Option<PendingUpgrade>)
where
    F: FnOnce(&Upgrade) -> std::result::Result<Accept, HandshakeError>,
{
    if let Some(protocol) = extended_connect(req.method(), req.version(), req.extensions()) {
        // HTTP/2 (RFC 8441): hyper's http2 server with
        // enable_connect_protocol() hands the stream over after a 200.
        let mut head = head_of(req);
        *head.method_mut() = http::Method::CONNECT;
        return match Upgrade::extended_connect(head, protocol.as_deref()) {
            Ok(up) => upgrade_validated(up, req.extensions_mut(), config, decide),
            Err(e) => (handshake_error_response(&e), None),
        };
    }
    if !wsx_proto::handshake::is_upgrade_request(req) {
        // A page request (or a handshake a proxy stripped): 426, as the
        // standalone server answers it.
        return (upgrade_required(req), None);
    }
    match Upgrade::new(head_of(req)) {
        Ok(up) => upgrade_validated(up, req.extensions_mut(), config, decide),
        Err(e) => (handshake_error_response(&e), None),
    }
}

/// Marks a request whose method `wsx::axum::http2_websockets` (or an
/// application) rewrote from an HTTP/2 extended `CONNECT` to `GET` so that
/// `get()` routes take it.
#[derive(Debug, Clone, Copy)]
pub struct ExtendedConnect;

/// An HTTP/2 extended `CONNECT` (RFC 8441), as hyper hands it over: its
/// `:protocol` (`Some(None)`: a `CONNECT` rewritten as a `GET` lost
/// nothing but its method). `None`: not one.
pub(crate) fn extended_connect(
    method: &http::Method,
    version: http::Version,
    extensions: &http::Extensions,
) -> Option<Option<String>> {
    if version < http::Version::HTTP_2 {
        return None;
    }
    let protocol = extensions
        .get::<hyper::ext::Protocol>()
        .map(|p| p.as_str().to_string());
    let connect = method == http::Method::CONNECT
        || (method == http::Method::GET && extensions.get::<ExtendedConnect>().is_some());
    (connect && protocol.is_some()).then_some(protocol)
}

/// The head of `req` without its body, for the handshake checks.
fn head_of<B>(req: &http::Request<B>) -> http::Request<()> {
    head(req.method(), req.uri(), req.version(), req.headers())
}

/// A body-less request with this head (from a request or its parts).
pub(crate) fn head(
    method: &http::Method,
    uri: &http::Uri,
    version: http::Version,
    headers: &http::HeaderMap,
) -> http::Request<()> {
    let mut head = http::Request::new(());
    *head.method_mut() = method.clone();
    *head.uri_mut() = uri.clone();
    *head.version_mut() = version;
    *head.headers_mut() = headers.clone();
    head
}

/// [`upgrade`] once the request is known to be a valid upgrade (the axum
/// extractor validates at extraction).
pub(crate) fn upgrade_validated<F>(
    up: Upgrade,
    extensions: &mut http::Extensions,
    config: &ServerConfig,
    decide: F,
) -> (http::Response<Body>, Option<PendingUpgrade>)
where
    F: FnOnce(&Upgrade) -> std::result::Result<Accept, HandshakeError>,
{
    let Some(on_upgrade) = extensions.remove::<hyper::upgrade::OnUpgrade>() else {
        let e = HandshakeError::rejected(
            http::StatusCode::INTERNAL_SERVER_ERROR,
            "this connection cannot be upgraded: the HTTP server must keep it upgradable (hyper http1: serve_connection(..).with_upgrades(); http2: enable_connect_protocol())",
        );
        return (handshake_error_response(&e), None);
    };
    let decided = negotiate_upgrade(up, config, decide)
        .and_then(|n| Ok((n.upgrade.accept_response(&n.accept)?, n)));
    match decided {
        Ok((response, negotiated)) => (
            response.map(|()| full(Bytes::new())),
            Some(PendingUpgrade {
                on_upgrade,
                negotiated,
                limits: config.limits.clone(),
                high_water: config.write_buffer_high_water,
            }),
        ),
        Err(e) => {
            tracing::debug!("upgrade refused: {e}");
            (handshake_error_response(&e), None)
        }
    }
}

impl PendingUpgrade {
    /// The upgrade request (path, query, headers).
    pub fn request(&self) -> &http::Request<()> {
        self.negotiated.upgrade.request()
    }

    /// Waits for hyper to hand over the connection and returns the
    /// WebSocket over it. `T` is the stream type the server gave hyper
    /// inside `hyper_util::rt::TokioIo` (e.g. `TcpStream` for a hyper
    /// `http1` server of your own): the stream is then taken back as it is
    /// ([`UpgradedIo::Direct`], no dynamic dispatch per read or write). Any
    /// other stream works through hyper's type-erased `Upgraded`
    /// ([`UpgradedIo::Hyper`]); `axum::serve` is such a case, since it
    /// wraps each connection in a type of hyper-util's own.
    ///
    /// # Errors
    /// The connection ended before the upgrade completed.
    ///
    /// # Cancel safety
    /// Cancelling drops the connection.
    pub async fn websocket<T>(self) -> Result<WebSocket<UpgradedIo<T>>>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (io, leftover) = take_back::<T>(self.on_upgrade).await?;
        let (ws, _) = self
            .negotiated
            .into_websocket(io, &leftover, &self.limits, self.high_water);
        Ok(ws)
    }

    pub(crate) async fn websocket_rewound<S>(self) -> Result<WebSocket<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (io, leftover) = take_back::<Rewind<S>>(self.on_upgrade).await?;
        let UpgradedIo::Direct(rewind) = io else {
            return Err(Error::new(Kind::Io(io::Error::other(
                "hyper handed over a connection of another type",
            ))));
        };
        let (stream, unread) = rewind.into_parts();
        let leftover = if unread.is_empty() {
            leftover
        } else {
            let mut all = unread.to_vec();
            all.extend_from_slice(&leftover);
            Bytes::from(all)
        };
        let (ws, _) =
            self.negotiated
                .into_websocket(stream, &leftover, &self.limits, self.high_water);
        Ok(ws)
    }
}

async fn take_back<T>(on_upgrade: hyper::upgrade::OnUpgrade) -> Result<(UpgradedIo<T>, Bytes)>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let upgraded = on_upgrade.await.map_err(|e| {
        Error::new(Kind::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("the connection ended before the upgrade completed: {e}"),
        )))
    })?;
    Ok(match upgraded.downcast::<TokioIo<T>>() {
        Ok(parts) => (UpgradedIo::Direct(parts.io.into_inner()), parts.read_buf),
        Err(other) => (UpgradedIo::Hyper(TokioIo::new(other)), Bytes::new()),
    })
}

/// The stream under a WebSocket upgraded through hyper: the server's own
/// stream taken back (`Direct`), or hyper's type-erased `Upgraded` when
/// the stream type was not the one asked for.
#[derive(Debug)]
pub enum UpgradedIo<T> {
    /// The stream the server gave hyper.
    Direct(T),
    /// Any other stream, through hyper.
    Hyper(TokioIo<hyper::upgrade::Upgraded>),
}

macro_rules! either {
    ($self:ident, $io:ident => $e:expr) => {
        match $self.get_mut() {
            UpgradedIo::Direct($io) => {
                let $io = Pin::new($io);
                $e
            }
            UpgradedIo::Hyper($io) => {
                let $io = Pin::new($io);
                $e
            }
        }
    };
}

impl<T: AsyncRead + Unpin> AsyncRead for UpgradedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        either!(self, io => io.poll_read(cx, buf))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for UpgradedIo<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        either!(self, io => io.poll_write(cx, b))
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        either!(self, io => io.poll_write_vectored(cx, bufs))
    }
    fn is_write_vectored(&self) -> bool {
        match self {
            UpgradedIo::Direct(io) => io.is_write_vectored(),
            UpgradedIo::Hyper(io) => io.is_write_vectored(),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        either!(self, io => io.poll_flush(cx))
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        either!(self, io => io.poll_shutdown(cx))
    }
}

/// A stream that first replays bytes already read from it: the server
/// reads a request head itself (the fast WebSocket path) and hands plain
/// HTTP connections to hyper with the head put back.
#[derive(Debug)]
pub(crate) struct Rewind<S> {
    prefix: Bytes,
    inner: S,
}

impl<S> Rewind<S> {
    pub(crate) fn new(inner: S, prefix: Bytes) -> Self {
        Rewind { prefix, inner }
    }

    fn into_parts(self) -> (S, Bytes) {
        (self.inner, self.prefix)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        b: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, b)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn rewind_replays_the_prefix_then_reads_on() {
        let (a, mut b) = tokio::io::duplex(64);
        b.write_all(b" world").await.unwrap();
        drop(b);
        let mut r = Rewind::new(a, Bytes::from_static(b"hello"));
        let mut s = String::new();
        r.read_to_string(&mut s).await.unwrap();
        assert_eq!(s, "hello world");
    }
}
