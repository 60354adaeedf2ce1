//! Opening WebSocket connections: [`connect`], [`connect_with`], the
//! handshake on a stream of your own ([`handshake`]), and proxies.

use crate::error::{Error, Kind, Result};
pub use crate::proxy::{Proxy, ProxyError, ProxyErrorKind, ProxyKind};
use crate::socket::{now, WebSocket, DEFAULT_WRITE_BUFFER_HIGH_WATER};
use crate::stream::MaybeTlsStream;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
#[cfg(feature = "deflate")]
pub use wsx_proto::deflate::DeflateConfig;
use wsx_proto::handshake::ClientHandshake;
pub use wsx_proto::handshake::{ClientRequest, Handshaken, Rejection};
use wsx_proto::Connection;

/// Client settings: the defaults, changed with the setters of the same
/// names.
///
/// ```
/// use std::time::Duration;
/// let config = wsx::client::ClientConfig::default()
///     .connect_timeout(Duration::from_secs(3))
///     .deflate(None);
/// assert!(config.deflate.is_none());
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Protocol limits and timers (message and frame sizes, keepalive,
    /// close and idle timeouts).
    pub limits: wsx_proto::Config,
    /// The TCP connection must be established within this time. Default 10 s.
    pub connect_timeout: Duration,
    /// The server must answer the handshake within this time. Default 10 s.
    pub handshake_timeout: Duration,
    /// The TLS handshake (`wss://`) must complete within this time. Default 10 s.
    pub tls_timeout: Duration,
    /// Reach the server through this proxy (HTTP CONNECT or SOCKS5), within
    /// `proxy_timeout`.
    /// `None` (the default): direct. [`Proxy::from_env`] reads
    /// `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`/`NO_PROXY`; the library does
    /// not read them unasked.
    pub proxy: Option<Proxy>,
    /// Reaching the proxy and opening its tunnel must take no longer than
    /// this. Default 10 s.
    pub proxy_timeout: Duration,
    /// TLS settings for `wss://` (see [`crate::tls::TlsClientOptions`]);
    /// `None`: system and bundled roots, no client certificate.
    #[cfg(feature = "tls")]
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// `send`/`feed` wait while more than this many bytes are queued.
    pub write_buffer_high_water: usize,
    /// permessage-deflate to offer (RFC 7692); `None`: no compression.
    /// Default: offered with [`DeflateConfig::default`] (every browser
    /// does too), unless the request already offers extensions.
    #[cfg(feature = "deflate")]
    pub deflate: Option<DeflateConfig>,
    /// Open WebSockets over HTTP/2 (RFC 8441) when the server allows it:
    /// `wss://` offers `h2` in ALPN, `ws://` speaks HTTP/2 with prior
    /// knowledge (h2c). A server that chooses HTTP/1.1, does not speak
    /// HTTP/2, or does not advertise `SETTINGS_ENABLE_CONNECT_PROTOCOL` gets
    /// an HTTP/1.1 upgrade instead (logged at info level). To put many
    /// WebSockets on one connection, use [`crate::http2::Http2Connection`].
    /// Default `None`: HTTP/1.1.
    pub http2: Option<crate::http2::Http2Config>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            limits: wsx_proto::Config::default(),
            connect_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            tls_timeout: Duration::from_secs(10),
            proxy: None,
            proxy_timeout: Duration::from_secs(10),
            #[cfg(feature = "tls")]
            tls: None,
            write_buffer_high_water: DEFAULT_WRITE_BUFFER_HIGH_WATER,
            #[cfg(feature = "deflate")]
            deflate: Some(DeflateConfig::default()),
            http2: None,
        }
    }
}

crate::setters!(ClientConfig {
    limits: wsx_proto::Config,
    connect_timeout: Duration,
    handshake_timeout: Duration,
    tls_timeout: Duration,
    proxy: Option<Proxy>,
    proxy_timeout: Duration,
    #[cfg(feature = "tls")]
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    write_buffer_high_water: usize,
    #[cfg(feature = "deflate")]
    deflate: Option<DeflateConfig>,
    http2: Option<crate::http2::Http2Config>,
});

/// After a non-101 head, how long to wait for the start of its body.
const REJECTION_BODY_WAIT: Duration = Duration::from_millis(500);

/// Connects to a `ws://` URL with default settings.
///
/// ```no_run
/// # async fn run() -> Result<(), wsx::Error> {
/// let mut ws = wsx::connect("ws://127.0.0.1:9001/").await?;
/// ws.send(wsx::Message::text("hello")).await?;
/// if let Some(reply) = ws.recv().await? {
///     println!("{reply:?}");
/// }
/// ws.close(None).await?;
/// # Ok(()) }
/// ```
///
/// # Errors
/// An invalid URL, connection failure, or a failed handshake: the error
/// says what the server answered and the likely cause.
///
/// # Cancel safety
/// Not cancel safe: dropping it mid-handshake drops the connection.
pub async fn connect(url: &str) -> Result<WebSocket<MaybeTlsStream>> {
    let req = ClientRequest::new(url)?;
    Ok(connect_with(&req, &ClientConfig::default()).await?.0)
}

/// Connects with a prepared request (subprotocols, headers) and settings.
/// Returns the socket and the server's handshake response.
///
/// # Errors
/// As [`connect`].
///
/// # Cancel safety
/// Not cancel safe, as [`connect`].
pub async fn connect_with(
    req: &ClientRequest,
    config: &ClientConfig,
) -> Result<(WebSocket<MaybeTlsStream>, Handshaken)> {
    #[cfg(not(feature = "tls"))]
    if req.is_secure() {
        return Err(Error::new(Kind::Unsupported(format!(
            "{req}: wss:// needs wsx's `tls` feature, which this build lacks; use ws://"
        ))));
    }
    if config.http2.is_some() {
        if let Some(done) = try_http2(req, config).await? {
            return Ok(done);
        }
    }
    let tcp = open_tcp(req, config).await?;
    #[cfg(feature = "tls")]
    if req.is_secure() {
        let tls = tls_connect(req, config, false, tcp).await?;
        return handshake(req, MaybeTlsStream::Tls(Box::new(tls)), config).await;
    }
    handshake(req, MaybeTlsStream::Plain(tcp), config).await
}

/// [`ClientConfig::http2`]: a WebSocket over HTTP/2, or `None` (said in
/// the log) when the server cannot carry one and HTTP/1.1 should be used.
/// A TLS server that picks HTTP/1.1 in ALPN gets the upgrade on the same
/// connection.
async fn try_http2(
    req: &ClientRequest,
    config: &ClientConfig,
) -> Result<Option<(WebSocket<MaybeTlsStream>, Handshaken)>> {
    use crate::http2::Http2Connection;
    let tcp = open_tcp(req, config).await?;
    let h2 = if req.is_secure() {
        #[cfg(feature = "tls")]
        {
            let tls = tls_connect(req, config, true, tcp).await?;
            if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
                tracing::info!(
                    "{req}: the server chose HTTP/1.1 in the TLS handshake (ALPN); upgrading over HTTP/1.1"
                );
                let stream = MaybeTlsStream::Tls(Box::new(tls));
                return handshake(req, stream, config).await.map(Some);
            }
            Http2Connection::handshake(MaybeTlsStream::Tls(Box::new(tls)), req, config).await?
        }
        #[cfg(not(feature = "tls"))]
        unreachable!("checked by connect_with")
    } else {
        match Http2Connection::handshake(MaybeTlsStream::Plain(tcp), req, config).await {
            Ok(h2) => h2,
            Err(e) => {
                tracing::info!(
                    "{req}: no HTTP/2 with prior knowledge here ({e}); falling back to HTTP/1.1"
                );
                return Ok(None);
            }
        }
    };
    if !h2.supports_websockets() {
        tracing::info!(
            "{req}: the server speaks HTTP/2 but did not advertise SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441); falling back to HTTP/1.1"
        );
        return Ok(None);
    }
    h2.websocket(req, config).await.map(Some)
}

/// A TCP connection to the server (or its proxy's tunnel), within the
/// connect (or proxy) timeout, with Nagle off.
pub(crate) async fn open_tcp(req: &ClientRequest, config: &ClientConfig) -> Result<TcpStream> {
    let tcp = match &config.proxy {
        Some(proxy) => {
            tokio::time::timeout(config.proxy_timeout, proxy.tunnel(req.host(), req.port()))
                .await
                .map_err(|_| {
                    Error::new(Kind::Timeout(
                        "the proxy did not open the tunnel within the proxy timeout (is it reachable, and does it answer CONNECT/SOCKS5?)",
                    ))
                })??
        }
        None => direct(req, config).await?,
    };
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

/// The TLS handshake for `wss://`, within the TLS timeout; `h2` also
/// offers HTTP/2 in ALPN (before HTTP/1.1).
#[cfg(feature = "tls")]
pub(crate) async fn tls_connect(
    req: &ClientRequest,
    config: &ClientConfig,
    h2: bool,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut tls_config = match &config.tls {
        Some(c) => c.clone(),
        None => crate::tls::default_client_config()?,
    };
    if h2 {
        let mut c = (*tls_config).clone();
        c.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        tls_config = std::sync::Arc::new(c);
    }
    tokio::time::timeout(
        config.tls_timeout,
        crate::tls::handshake(tls_config, req.host(), tcp),
    )
    .await
    .map_err(|_| {
        Error::new(Kind::Timeout(
            "the TLS handshake did not complete within the TLS timeout (is this port speaking TLS?)",
        ))
    })?
}

/// TCP straight to the server, within the connect timeout.
async fn direct(req: &ClientRequest, config: &ClientConfig) -> Result<TcpStream> {
    let addr = (req.host(), req.port());
    let tcp = match tokio::time::timeout(config.connect_timeout, TcpStream::connect(addr)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => {
            let hint = match e.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    ": nothing is listening there (is the server running, and on this port?)"
                }
                _ => "",
            };
            return Err(Error::new(Kind::Io(std::io::Error::new(
                e.kind(),
                format!("cannot connect to {}:{}: {e}{hint}", req.host(), req.port()),
            ))));
        }
        Err(_) => {
            return Err(Error::new(Kind::Timeout(
                "TCP connect did not complete within the connect timeout",
            )))
        }
    };
    Ok(tcp)
}

/// Runs the client handshake on an established stream (TCP, TLS, a proxy
/// tunnel...).
///
/// # Errors
/// As [`connect`].
///
/// # Cancel safety
/// Not cancel safe, as [`connect`].
pub async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    req: &ClientRequest,
    mut stream: S,
    config: &ClientConfig,
) -> Result<(WebSocket<S>, Handshaken)> {
    let mut key = [0u8; 16];
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut key).map_err(|e| std::io::Error::other(e.to_string()))?;
    getrandom::getrandom(&mut seed).map_err(|e| std::io::Error::other(e.to_string()))?;
    // Offer compression unless the application wrote its own offer.
    #[cfg(feature = "deflate")]
    let offered;
    #[cfg(feature = "deflate")]
    let (req, deflate) = match &config.deflate {
        Some(d) if req.offered_extensions().is_none() => {
            offered = req.clone().extensions(d.offer());
            (&offered, Some(d))
        }
        _ => (req, None),
    };
    let (mut hs, request) = ClientHandshake::new(req, key);
    let fut = Box::pin(async {
        stream.write_all(&request).await?;
        let mut buf = vec![0u8; 4096];
        loop {
            let read = if hs.is_rejected() {
                match tokio::time::timeout(REJECTION_BODY_WAIT, stream.read(&mut buf)).await {
                    Ok(r) => r?,
                    Err(_) => 0,
                }
            } else {
                stream.read(&mut buf).await?
            };
            if read == 0 {
                return Err(Error::from(hs.handle_eof()));
            }
            if let Some(done) = hs.handle_data(&buf[..read])? {
                return Ok::<_, Error>(done);
            }
        }
    });
    let done = match tokio::time::timeout(config.handshake_timeout, fut).await {
        #[cfg(feature = "tls")]
        Ok(Err(e)) if e.is_io() => {
            return Err(match e.into_io() {
                Ok(io) => crate::tls::explain_late(req.host(), io),
                Err(e) => e,
            })
        }
        Ok(r) => r?,
        Err(_) => {
            return Err(Error::new(Kind::Timeout(
                "the server did not answer the opening handshake in time",
            )))
        }
    };
    #[allow(unused_mut)]
    let mut conn = Connection::client(config.limits.clone(), seed, now());
    #[cfg(feature = "deflate")]
    if let Some(d) = deflate {
        match d.negotiate_client(&done.extensions) {
            Ok(Some(negotiated)) => conn.enable_deflate(negotiated),
            Ok(None) => {}
            Err(e) => {
                return Err(Error::from(
                    wsx_proto::handshake::ClientHandshakeError::BadExtensionResponse(e.to_string()),
                ))
            }
        }
    }
    let ws = WebSocket::from_connection(stream, conn, &done.leftover)
        .with_protocol(done.protocol.clone())
        .with_high_water(config.write_buffer_high_water);
    Ok((ws, done))
}
