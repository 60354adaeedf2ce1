//! Accepting one WebSocket connection: the server's settings, the request
//! head, the upgrade decision (shared with the hyper and axum paths) and
//! the 101.

use crate::error::{Error, Kind, Result};
use crate::socket::{now, WebSocket, DEFAULT_WRITE_BUFFER_HIGH_WATER};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use wsx_proto::handshake::{Accept, HandshakeError, OriginPolicy, ServerHandshake, Upgrade};
use wsx_proto::Connection;

/// Server settings: the defaults, changed with the setters of the same
/// names.
///
/// ```
/// let config = wsx::ServerConfig::default()
///     .subprotocols(vec!["chat.v2".into(), "chat.v1".into()])
///     .max_connections(Some(10_000));
/// assert_eq!(config.subprotocols[0], "chat.v2");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Protocol limits and timers (message and frame sizes, keepalive,
    /// close and idle timeouts).
    pub limits: wsx_proto::Config,
    /// Cap on the request head; 431 past it. Default 8 KiB.
    pub max_handshake_bytes: usize,
    /// The whole opening handshake must arrive within this time, so that
    /// slow or silent clients (slowloris) cannot hold connections. Default 10 s.
    pub handshake_timeout: Duration,
    /// `send`/`feed` wait while more than this many bytes are queued.
    pub write_buffer_high_water: usize,
    /// Subprotocols this server speaks, in order of preference; the first
    /// one the client also offers is selected.
    pub subprotocols: Vec<String>,
    /// Which browser origins may connect. Default: same origin only
    /// (cross-site WebSocket hijacking protection; see [`OriginPolicy`]).
    pub origin: OriginPolicy,
    /// [`crate::Server::serve`] answers 503 (with `Retry-After`) past this many
    /// open connections. Default `None`: the process's file-descriptor
    /// limit is the cap (and `serve` backs off, not spins, when it is hit).
    pub max_connections: Option<usize>,
    /// After [`crate::server::ServerHandle::shutdown`], how long [`crate::Server::serve`] waits
    /// for connections to finish their close handshake (1001) before
    /// dropping them. Default 5 s.
    pub shutdown_timeout: Duration,
    /// permessage-deflate to accept (RFC 7692); `None`: never compress.
    /// Default: accepted with [`wsx_proto::deflate::DeflateConfig::default`]
    /// when the client offers it (browsers always do), unless the accept
    /// callback sets the extensions itself.
    #[cfg(feature = "deflate")]
    pub deflate: Option<wsx_proto::deflate::DeflateConfig>,
    /// WebSockets over HTTP/2 (RFC 8441) in [`crate::Server::serve`]: a TLS
    /// connection whose ALPN chose `h2` (the configurations of
    /// [`crate::tls`] offer `h2` before `http/1.1`), or a cleartext one
    /// that starts with the HTTP/2 preface when [`ServerConfig::h2c`] is
    /// set, is served as HTTP/2 with these settings: plain requests go to
    /// the [`crate::server::HttpService`], extended `CONNECT`s get the same
    /// upgrade decision as HTTP/1.1 upgrades. Default: on, with
    /// [`crate::http2::Http2Config::default`]; `None` refuses HTTP/2
    /// connections (offer only `http/1.1` in ALPN then).
    pub http2: Option<crate::http2::Http2Config>,
    /// Accept HTTP/2 with prior knowledge on cleartext connections (h2c:
    /// the client starts with the HTTP/2 preface; for tests, and for
    /// proxies that speak HTTP/2 to their backends). HTTP/1.1 is served on
    /// the same port as before. Default false.
    pub h2c: bool,
}

crate::setters!(ServerConfig {
    limits: wsx_proto::Config,
    max_handshake_bytes: usize,
    handshake_timeout: Duration,
    write_buffer_high_water: usize,
    subprotocols: Vec<String>,
    origin: OriginPolicy,
    max_connections: Option<usize>,
    shutdown_timeout: Duration,
    #[cfg(feature = "deflate")]
    deflate: Option<wsx_proto::deflate::DeflateConfig>,
    http2: Option<crate::http2::Http2Config>,
    h2c: bool,
});

/// Servers ping every 30 s by default: load balancers and NATs drop
/// connections idle for 60 s or more (AWS ALB: 60 s), and a peer that
/// vanished without a FIN is found within 40 s (ping + 10 s pong timeout).
pub const DEFAULT_SERVER_PING_INTERVAL: Duration = Duration::from_secs(30);

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            limits: wsx_proto::Config::builder()
                .ping_interval(Some(DEFAULT_SERVER_PING_INTERVAL))
                .build()
                .expect("valid defaults"),
            max_handshake_bytes: wsx_proto::handshake::DEFAULT_MAX_HANDSHAKE_BYTES,
            handshake_timeout: Duration::from_secs(10),
            write_buffer_high_water: DEFAULT_WRITE_BUFFER_HIGH_WATER,
            subprotocols: Vec::new(),
            origin: OriginPolicy::same_origin(),
            max_connections: None,
            shutdown_timeout: Duration::from_secs(5),
            #[cfg(feature = "deflate")]
            deflate: Some(wsx_proto::deflate::DeflateConfig::default()),
            http2: Some(crate::http2::Http2Config::default()),
            h2c: false,
        }
    }
}

/// Accepts a WebSocket connection on `stream` with default settings.
///
/// ```no_run
/// # async fn run() -> Result<(), wsx::Error> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
/// loop {
///     let (tcp, _) = listener.accept().await?;
///     tokio::spawn(async move {
///         let mut ws = wsx::accept(tcp).await?;
///         while let Some(msg) = ws.recv().await? {
///             if matches!(msg, wsx::Message::Text(_) | wsx::Message::Binary(_)) {
///                 ws.send(msg).await?;
///             }
///         }
///         Ok::<_, wsx::Error>(())
///     });
/// }
/// # }
/// ```
///
/// # Errors
/// A bad handshake (answered with its HTTP error before returning), a
/// handshake timeout, or I/O.
///
/// # Cancel safety
/// Not cancel safe: a cancelled handshake leaves the stream mid-request.
/// Drop the stream.
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(stream: S) -> Result<WebSocket<S>> {
    accept_with(stream, &ServerConfig::default(), |_| Ok(Accept::default())).await
}

/// Accepts with settings and a callback that sees the request (path, query,
/// headers, Origin, offered subprotocols) and accepts or refuses it.
///
/// If the callback accepts without choosing a subprotocol, the first of
/// `config.subprotocols` the client offered is selected.
///
/// # Errors
/// As [`accept`], plus the callback's refusal (sent to the client as its
/// HTTP status and body).
///
/// # Cancel safety
/// Not cancel safe, as [`accept`].
pub async fn accept_with<S, F>(stream: S, config: &ServerConfig, decide: F) -> Result<WebSocket<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&Upgrade) -> std::result::Result<Accept, HandshakeError>,
{
    read_request(stream, config).await?.accept(decide).await
}

/// Reads a client's request head (within `config.handshake_timeout`), so the
/// application can serve plain HTTP (a page, files, metrics) on the same
/// port as WebSockets: see [`Incoming::is_upgrade`].
///
/// ```no_run
/// # async fn run(tcp: tokio::net::TcpStream) -> Result<(), wsx::Error> {
/// let config = wsx::ServerConfig::default();
/// let incoming = wsx::server::read_request(tcp, &config).await?;
/// if !incoming.is_upgrade() {
///     let page = b"hello\n";
///     return incoming.respond(http::StatusCode::OK, &[("Content-Type", "text/plain")], page).await;
/// }
/// let mut ws = incoming.accept(|_| Ok(Default::default())).await?;
/// # Ok(()) }
/// ```
///
/// # Errors
/// A malformed or oversized head (answered 400/431 before returning), a
/// timeout, or I/O.
///
/// # Cancel safety
/// Not cancel safe: a cancelled read leaves the stream mid-request.
pub async fn read_request<S>(stream: S, config: &ServerConfig) -> Result<Incoming<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let deadline = tokio::time::Instant::now() + config.handshake_timeout;
    read_request_until(stream, config, deadline).await
}

/// [`read_request`] with a deadline that may have started earlier (the
/// TLS handshake counts against it too).
pub(crate) async fn read_request_until<S>(
    stream: S,
    config: &ServerConfig,
    deadline: tokio::time::Instant,
) -> Result<Incoming<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match read_first(stream, config, deadline, false).await? {
        First::Http1(incoming) => Ok(incoming),
        First::Http2(..) => unreachable!("h2c is not looked for"),
    }
}

/// What a connection starts with.
// Matched at once, never kept: boxing the larger side would cost an
// allocation per connection for nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum First<S> {
    /// An HTTP/1.x request head.
    Http1(Incoming<S>),
    /// The HTTP/2 preface (h2c with prior knowledge), with every byte read.
    Http2(S, Vec<u8>),
}

/// Reads the first request head, or (with `h2c`) recognises the HTTP/2
/// preface instead.
pub(crate) async fn read_first<S>(
    mut stream: S,
    config: &ServerConfig,
    deadline: tokio::time::Instant,
    h2c: bool,
) -> Result<First<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // Boxed so the parser's state is freed once the head is read, instead
    // of sizing the caller's task for it.
    let fut = Box::pin(read_head(&mut stream, config.max_handshake_bytes, h2c));
    match tokio::time::timeout_at(deadline, fut).await {
        Ok(Ok(Head::Request(request, leftover, raw))) => Ok(First::Http1(Incoming {
            stream,
            request,
            leftover,
            raw,
            config: config.clone(),
        })),
        Ok(Ok(Head::Http2(raw))) => Ok(First::Http2(stream, raw)),
        Ok(Err(e)) => {
            if let Some(he) = e.server_handshake() {
                send_and_close(&mut stream, &he.response()).await;
            }
            Err(e)
        }
        Err(_) => {
            let _ = stream.shutdown().await;
            Err(Error::new(Kind::Timeout(
                "the client did not complete the opening handshake in time",
            )))
        }
    }
}

/// What [`read_head`] found.
#[allow(clippy::large_enum_variant)] // as First
enum Head {
    /// The request, the bytes after its head, and every byte read (for a
    /// plain HTTP request, which hyper parses again).
    Request(http::Request<()>, bytes::Bytes, Vec<u8>),
    /// The HTTP/2 preface, and every byte read.
    Http2(Vec<u8>),
}

async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
    max_bytes: usize,
    h2c: bool,
) -> Result<Head> {
    let mut parser = ServerHandshake::with_max_bytes(max_bytes);
    // On the heap: a buffer in the future would stay in every connection's
    // task for its whole life.
    let mut buf = vec![0u8; 1024];
    let mut raw = Vec::new();
    let preface = crate::http2::PREFACE;
    let mut held = false;
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(Error::new(Kind::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "client closed the connection during the opening handshake",
            ))));
        }
        raw.extend_from_slice(&buf[..n]);
        if h2c {
            let k = raw.len().min(preface.len());
            if raw[..k] == preface[..k] {
                if k == preface.len() {
                    return Ok(Head::Http2(raw));
                }
                held = true; // the preface so far: wait for the rest
                continue;
            }
        }
        // Bytes held back while they could still have been the preface go
        // to the parser together.
        let fed = if std::mem::take(&mut held) {
            parser.handle_data(&raw)?
        } else {
            parser.handle_data(&buf[..n])?
        };
        if let Some((request, leftover)) = fed {
            return Ok(Head::Request(request, leftover, raw));
        }
    }
}

/// Writes a final response, half-closes, and reads what the client still
/// sends (briefly, boundedly): closing with unread data resets the
/// connection, and the reset can destroy the response before it is read.
pub(crate) async fn send_and_close<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    response: &[u8],
) {
    // Best effort: the client may already be gone.
    let _ = stream.write_all(response).await;
    let _ = stream.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        let mut scratch = vec![0u8; 4096];
        let mut left = 64 * 1024usize;
        while left > 0 {
            match stream.read(&mut scratch).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}

/// An upgrade request that passed every check, with the answer decided.
pub(crate) struct Negotiated {
    pub(crate) upgrade: Upgrade,
    pub(crate) accept: Accept,
    #[cfg(feature = "deflate")]
    deflate: Option<wsx_proto::deflate::Negotiated>,
}

/// The one upgrade decision, whichever way the request arrived (the
/// standalone loop, hyper, axum): RFC 6455 §4.2.1 validation, the Origin
/// policy (403), the application's hook, the subprotocol and
/// permessage-deflate. Every path answers a bad request the same way.
pub(crate) fn negotiate<F>(
    request: http::Request<()>,
    config: &ServerConfig,
    decide: F,
) -> std::result::Result<Negotiated, HandshakeError>
where
    F: FnOnce(&Upgrade) -> std::result::Result<Accept, HandshakeError>,
{
    negotiate_upgrade(Upgrade::new(request)?, config, decide)
}

/// [`negotiate`] for a request already validated as an upgrade.
pub(crate) fn negotiate_upgrade<F>(
    upgrade: Upgrade,
    config: &ServerConfig,
    decide: F,
) -> std::result::Result<Negotiated, HandshakeError>
where
    F: FnOnce(&Upgrade) -> std::result::Result<Accept, HandshakeError>,
{
    config.origin.check_upgrade(&upgrade)?;
    let mut accept = decide(&upgrade)?;
    if accept.protocol.is_none() {
        let supported: Vec<&str> = config.subprotocols.iter().map(String::as_str).collect();
        accept.protocol = upgrade.select_protocol(&supported).map(str::to_string);
    }
    #[cfg(feature = "deflate")]
    let deflate = match (&config.deflate, &accept.extensions) {
        (Some(d), None) => d.negotiate_server(upgrade.extensions()),
        _ => None,
    };
    #[cfg(feature = "deflate")]
    if let Some(n) = &deflate {
        accept.extensions = Some(n.response.clone());
    }
    Ok(Negotiated {
        upgrade,
        accept,
        #[cfg(feature = "deflate")]
        deflate,
    })
}

impl Negotiated {
    /// The WebSocket over `io`, once the 101 is on its way, and the request.
    pub(crate) fn into_websocket<S: AsyncRead + AsyncWrite + Unpin>(
        self,
        io: S,
        leftover: &[u8],
        limits: &wsx_proto::Config,
        high_water: usize,
    ) -> (WebSocket<S>, Upgrade) {
        #[allow(unused_mut)] // mutated only with deflate
        let mut conn = Connection::server(limits.clone(), now());
        #[cfg(feature = "deflate")]
        if let Some(n) = self.deflate {
            conn.enable_deflate(n);
        }
        let mut ws = WebSocket::from_connection(io, conn, leftover)
            .with_protocol(self.accept.protocol)
            .with_high_water(high_water);
        if self.upgrade.is_http2() {
            ws = ws.with_http2_linger();
        }
        (ws, self.upgrade)
    }
}

/// A request head read by [`read_request`]: upgrade it, or answer it as HTTP.
#[derive(Debug)]
pub struct Incoming<S> {
    stream: S,
    request: http::Request<()>,
    leftover: bytes::Bytes,
    /// Every byte read so far (head and leftover).
    raw: Vec<u8>,
    config: ServerConfig,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Incoming<S> {
    /// The request: method, URI, headers.
    pub fn request(&self) -> &http::Request<()> {
        &self.request
    }

    /// Whether the client asks for a WebSocket (`Upgrade: websocket`).
    pub fn is_upgrade(&self) -> bool {
        wsx_proto::handshake::is_upgrade_request(&self.request)
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// Validates the upgrade (RFC 6455 §4.2.1), checks its `Origin` against
    /// `config.origin` (403), lets `decide` accept or refuse it (the accept
    /// hook: authenticate by header, cookie or query token here), and
    /// answers 101 (or the error).
    ///
    /// # Errors
    /// An invalid upgrade request or a refusal (both answered with their HTTP
    /// status before returning), or I/O.
    ///
    /// # Cancel safety
    /// Not cancel safe: a cancelled accept leaves the stream mid-response.
    pub async fn accept<F>(self, decide: F) -> Result<WebSocket<S>>
    where
        F: FnOnce(&Upgrade) -> std::result::Result<Accept, HandshakeError>,
    {
        Ok(self.accept_keeping_request(decide).await?.0)
    }

    /// [`Incoming::accept`], handing the request back as well (moved, not
    /// copied: the server loop gives its URI and headers to the handler).
    pub(crate) async fn accept_keeping_request<F>(
        mut self,
        decide: F,
    ) -> Result<(WebSocket<S>, http::Request<()>)>
    where
        F: FnOnce(&Upgrade) -> std::result::Result<Accept, HandshakeError>,
    {
        let decided = negotiate(self.request, &self.config, decide)
            .and_then(|n| Ok((n.upgrade.accept(&n.accept)?, n)));
        let (response, n) = match decided {
            Ok(r) => r,
            Err(he) => {
                send_and_close(&mut self.stream, &he.response()).await;
                return Err(he.into());
            }
        };
        self.stream.write_all(&response).await?;
        let (ws, upgrade) = n.into_websocket(
            self.stream,
            &self.leftover,
            &self.config.limits,
            self.config.write_buffer_high_water,
        );
        Ok((ws, upgrade.into_request()))
    }

    /// Answers as plain HTTP/1.1 with `status`, `headers` and `body`, then
    /// closes the connection. `Content-Length` and `Connection: close` are added.
    ///
    /// # Errors
    /// I/O errors writing the response.
    ///
    /// # Cancel safety
    /// Not cancel safe: a cancelled write leaves a partial response.
    pub async fn respond(
        mut self,
        status: http::StatusCode,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<()> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        ));
        let mut response = head.into_bytes();
        if self.request.method() != http::Method::HEAD {
            response.extend_from_slice(body);
        }
        self.stream.write_all(&response).await?;
        send_and_close(&mut self.stream, &[]).await;
        Ok(())
    }

    /// The stream, the request and any bytes read past its head.
    pub fn into_parts(self) -> (S, http::Request<()>, bytes::Bytes) {
        (self.stream, self.request, self.leftover)
    }

    /// The same request over `f(stream)` (e.g. the stream wrapped).
    pub(crate) fn map_stream<T>(self, f: impl FnOnce(S) -> T) -> Incoming<T> {
        Incoming {
            stream: f(self.stream),
            request: self.request,
            leftover: self.leftover,
            raw: self.raw,
            config: self.config,
        }
    }

    /// The stream and every byte read from it so far, to hand the
    /// connection to an HTTP server that parses the request itself.
    pub(crate) fn into_raw(self) -> (S, Vec<u8>) {
        (self.stream, self.raw)
    }
}
