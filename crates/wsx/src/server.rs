//! Accepting WebSocket connections.

use crate::error::{Error, Kind, Result};
use crate::socket::{now, WebSocket, DEFAULT_WRITE_BUFFER_HIGH_WATER};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use wsx_proto::handshake::{Accept, HandshakeError, ServerHandshake, Upgrade};
use wsx_proto::Connection;

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Protocol limits and timers.
    pub protocol: wsx_proto::Config,
    /// Cap on the request head; 431 past it. Default 8 KiB.
    pub max_handshake_bytes: usize,
    /// The whole opening handshake must arrive within this time, so that
    /// slow or silent clients (slowloris) cannot hold connections. Default 10 s.
    pub handshake_timeout: Duration,
    /// `send`/`feed` wait while more than this many bytes are queued.
    pub write_buffer_high_water: usize,
    /// Subprotocols this server speaks, in order of preference; the first
    /// one the client also offers is selected.
    pub protocols: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            protocol: wsx_proto::Config::default(),
            max_handshake_bytes: wsx_proto::handshake::DEFAULT_MAX_HANDSHAKE_BYTES,
            handshake_timeout: Duration::from_secs(10),
            write_buffer_high_water: DEFAULT_WRITE_BUFFER_HIGH_WATER,
            protocols: Vec::new(),
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
/// `config.protocols` the client offered is selected.
///
/// # Errors
/// As [`accept`], plus the callback's refusal (sent to the client as its
/// HTTP status and body).
///
/// # Cancel safety
/// Not cancel safe, as [`accept`].
pub async fn accept_with<S, F>(
    mut stream: S,
    config: &ServerConfig,
    decide: F,
) -> Result<WebSocket<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&Upgrade) -> std::result::Result<Accept, HandshakeError>,
{
    // Boxed so the handshake's state is freed once it is done, instead of
    // sizing the caller's task for it.
    let fut = Box::pin(handshake(&mut stream, config, decide));
    let (response, leftover, protocol) =
        match tokio::time::timeout(config.handshake_timeout, fut).await {
            Ok(Ok(done)) => done,
            Ok(Err(e)) => {
                if let Some(he) = e.server_handshake() {
                    // Best effort: the client may already be gone.
                    let _ = stream.write_all(&he.response()).await;
                    let _ = stream.shutdown().await;
                    // Read what the client still sends (briefly, boundedly):
                    // closing with unread data resets the connection, and the
                    // reset can destroy the response before the client reads it.
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
                return Err(e);
            }
            Err(_) => {
                let _ = stream.shutdown().await;
                return Err(Error::new(Kind::Timeout(
                    "the client did not complete the opening handshake in time",
                )));
            }
        };
    stream.write_all(&response).await?;
    let conn = Connection::server(config.protocol.clone(), now());
    Ok(WebSocket::from_connection(stream, conn, &leftover)
        .with_protocol(protocol)
        .with_high_water(config.write_buffer_high_water))
}

async fn handshake<S, F>(
    stream: &mut S,
    config: &ServerConfig,
    decide: F,
) -> Result<(Vec<u8>, bytes::Bytes, Option<String>)>
where
    S: AsyncRead + Unpin,
    F: FnOnce(&Upgrade) -> std::result::Result<Accept, HandshakeError>,
{
    let mut parser = ServerHandshake::with_max_bytes(config.max_handshake_bytes);
    // On the heap: a buffer in the future would stay in every connection's
    // task for its whole life.
    let mut buf = vec![0u8; 1024];
    let (request, leftover) = loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(Error::new(Kind::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "client closed the connection during the opening handshake",
            ))));
        }
        if let Some(done) = parser.handle_data(&buf[..n])? {
            break done;
        }
    };
    let upgrade = Upgrade::new(request)?;
    let mut accept = decide(&upgrade)?;
    if accept.protocol.is_none() {
        let supported: Vec<&str> = config.protocols.iter().map(String::as_str).collect();
        accept.protocol = upgrade.select_protocol(&supported).map(str::to_string);
    }
    let response = upgrade.accept(&accept)?;
    Ok((response, leftover, accept.protocol))
}

/// Binds a listener; a thin wrapper that sets `TCP_NODELAY` on accepted sockets.
///
/// ```no_run
/// # async fn run() -> Result<(), wsx::Error> {
/// let server = wsx::Server::bind("127.0.0.1:9001").await?;
/// let (mut ws, peer) = server.accept().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    config: ServerConfig,
}

impl Server {
    /// Binds to `addr` with default settings.
    ///
    /// # Errors
    /// The address cannot be bound.
    pub async fn bind(addr: impl ToSocketAddrs) -> Result<Server> {
        Ok(Server {
            listener: TcpListener::bind(addr).await?,
            config: ServerConfig::default(),
        })
    }

    /// Uses `config` for connections accepted from now on.
    pub fn with_config(mut self, config: ServerConfig) -> Self {
        self.config = config;
        self
    }

    /// The bound address (useful after binding port 0).
    ///
    /// # Errors
    /// The OS cannot say.
    pub fn local_addr(&self) -> Result<std::net::SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// Accepts a TCP connection (not yet the WebSocket handshake: run
    /// [`accept_with`] on it, usually in a spawned task).
    ///
    /// # Errors
    /// I/O errors from `accept` (e.g. out of file descriptors).
    ///
    /// # Cancel safety
    /// Cancel safe, like `TcpListener::accept`.
    pub async fn accept_tcp(&self) -> Result<(TcpStream, std::net::SocketAddr)> {
        let (tcp, peer) = self.listener.accept().await?;
        let _ = tcp.set_nodelay(true);
        Ok((tcp, peer))
    }

    /// Accepts a TCP connection and runs the handshake on it, in this task.
    ///
    /// # Errors
    /// As [`Server::accept_tcp`] and [`accept_with`].
    ///
    /// # Cancel safety
    /// Not cancel safe once a TCP connection was accepted.
    pub async fn accept(&self) -> Result<(WebSocket<TcpStream>, std::net::SocketAddr)> {
        let (tcp, peer) = self.accept_tcp().await?;
        let ws = accept_with(tcp, &self.config, |_| Ok(Accept::default())).await?;
        Ok((ws, peer))
    }

    /// The settings.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }
}
