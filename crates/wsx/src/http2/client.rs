//! [`Http2Connection`]: the client's HTTP/2 connection, on which
//! WebSockets open as streams (RFC 8441).

use super::Http2Stream;
use crate::client::ClientConfig;
use crate::error::{Error, Kind, Result};
use crate::socket::{now, WebSocket};
use crate::stream::MaybeTlsStream;
use bytes::Bytes;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use wsx_proto::handshake::{ClientHandshake, ClientRequest, Handshaken};
use wsx_proto::Connection;

/// How much of a refusal's body is read for the error.
const REJECTION_BODY: usize = 1024;

/// An HTTP/2 connection to one server, carrying any number of WebSockets
/// (up to the server's `SETTINGS_MAX_CONCURRENT_STREAMS`) as streams.
/// Cheap to clone; the connection closes when the last clone and the last
/// of its WebSockets are dropped.
///
/// ```no_run
/// # async fn run() -> Result<(), wsx::Error> {
/// use wsx::client::{ClientConfig, ClientRequest};
/// let config = ClientConfig::default();
/// let h2 = wsx::http2::Http2Connection::connect("wss://example.com/", &config).await?;
/// let mut sockets = Vec::new();
/// for room in ["a", "b", "c"] {
///     let req = ClientRequest::new(&format!("wss://example.com/rooms/{room}"))?;
///     sockets.push(h2.websocket(&req, &config).await?.0); // one TCP connection
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Http2Connection {
    send: h2::client::SendRequest<Bytes>,
    authority: String,
    extended_connect: bool,
    open: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Http2Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http2Connection")
            .field("authority", &self.authority)
            .field("extended_connect", &self.extended_connect)
            .field("open_websockets", &self.open_websockets())
            .finish()
    }
}

impl Http2Connection {
    /// Connects to the server of `url` and opens HTTP/2 on it: `wss://`
    /// with ALPN `h2`, `ws://` with prior knowledge (h2c). Returns once the
    /// server's SETTINGS arrived, so [`Http2Connection::supports_websockets`]
    /// is final.
    ///
    /// # Errors
    /// As [`crate::connect`]; also a server that does not speak HTTP/2
    /// (no `h2` in ALPN, or no HTTP/2 answer to the preface).
    pub async fn connect(url: &str, config: &ClientConfig) -> Result<Http2Connection> {
        let req = ClientRequest::new(url)?;
        let tcp = crate::client::open_tcp(&req, config).await?;
        #[cfg(feature = "tls")]
        if req.is_secure() {
            let tls = crate::client::tls_connect(&req, config, true, tcp).await?;
            if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
                return Err(Error::new(Kind::Unsupported(format!(
                    "{}: the server did not agree to HTTP/2 in the TLS handshake (ALPN); it serves HTTP/1.1 only",
                    req.host_header()
                ))));
            }
            return Self::handshake(MaybeTlsStream::Tls(Box::new(tls)), &req, config).await;
        }
        Self::handshake(MaybeTlsStream::Plain(tcp), &req, config).await
    }

    /// Runs the HTTP/2 handshake on a stream of your own (TLS whose ALPN
    /// chose `h2`, or cleartext with prior knowledge) for the server of
    /// `req`, and waits for the server's SETTINGS.
    ///
    /// # Errors
    /// The server does not answer the preface as HTTP/2, or not within
    /// `config.handshake_timeout`.
    pub async fn handshake<S>(io: S, req: &ClientRequest, config: &ClientConfig) -> Result<Self>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let settings = config.http2.clone().unwrap_or_default();
        let who = req.host_header().to_string();
        let setup = async {
            let (send, mut conn) = h2::client::Builder::new()
                .initial_window_size(settings.stream_window)
                .initial_connection_window_size(settings.connection_window())
                .max_frame_size(settings.max_frame_size)
                .max_concurrent_streams(settings.max_streams)
                .enable_push(false)
                .handshake::<_, Bytes>(io)
                .await
                .map_err(|e| h2_failed(&who, "HTTP/2 handshake", e))?;
            let mut ping = conn.ping_pong().expect("taken once, here");
            let who2 = who.clone();
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(server = %who2, "HTTP/2 connection ended: {e}");
                }
            });
            // The server's preface is its SETTINGS, applied before the PONG
            // is read: after one round trip the flags are final (h2 has no
            // "SETTINGS received" event).
            ping.ping(h2::Ping::opaque())
                .await
                .map_err(|e| h2_failed(&who, "waiting for the server's HTTP/2 SETTINGS", e))?;
            Ok::<_, Error>(send)
        };
        let send = tokio::time::timeout(config.handshake_timeout, setup)
            .await
            .map_err(|_| {
                Error::new(Kind::Timeout(
                    "the server did not answer the HTTP/2 connection preface in time (does it speak HTTP/2? h2c needs prior knowledge on the server)",
                ))
            })??;
        Ok(Http2Connection {
            extended_connect: send.is_extended_connect_protocol_enabled(),
            send,
            authority: who,
            open: Arc::default(),
        })
    }

    /// Whether the server advertised `SETTINGS_ENABLE_CONNECT_PROTOCOL`
    /// (RFC 8441): without it, WebSockets cannot use this connection.
    pub fn supports_websockets(&self) -> bool {
        self.extended_connect
    }

    /// WebSockets open on this connection now.
    pub fn open_websockets(&self) -> usize {
        self.open.load(Relaxed)
    }

    /// The most streams the server lets this connection open at once (its
    /// `SETTINGS_MAX_CONCURRENT_STREAMS`).
    pub fn max_streams(&self) -> usize {
        self.send.current_max_send_streams()
    }

    /// Opens a WebSocket on a new stream: an extended `CONNECT` with
    /// `:protocol = websocket` for `req`'s path, subprotocols, headers and
    /// (per `config.deflate`) permessage-deflate; the server's answer is
    /// checked as [`crate::client::handshake`] checks a 101.
    ///
    /// # Errors
    /// The server did not advertise RFC 8441, the connection is at the
    /// server's stream limit (open another connection), the server refused
    /// (its status and body) or reset the stream, or timeouts.
    pub async fn websocket(
        &self,
        req: &ClientRequest,
        config: &ClientConfig,
    ) -> Result<(WebSocket<MaybeTlsStream>, Handshaken)> {
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
        let (stream, done) = self.open_stream(req, config).await?;
        #[allow(unused_mut)]
        let mut conn = Connection::client(config.limits.clone(), seed()?, now());
        #[cfg(feature = "deflate")]
        if let Some(d) = deflate {
            match d.negotiate_client(&done.extensions) {
                Ok(Some(negotiated)) => conn.enable_deflate(negotiated),
                Ok(None) => {}
                Err(e) => {
                    return Err(Error::from(
                        wsx_proto::handshake::ClientHandshakeError::BadExtensionResponse(
                            e.to_string(),
                        ),
                    ))
                }
            }
        }
        let ws = WebSocket::from_connection(MaybeTlsStream::Http2(Box::new(stream)), conn, &[])
            .with_protocol(done.protocol.clone())
            .with_high_water(config.write_buffer_high_water)
            .with_http2_linger();
        Ok((ws, done))
    }

    /// The stream of a new WebSocket and the server's answer, for a tool
    /// that reads and writes frames itself (a load generator, a relay):
    /// `req` is sent as it is (its extensions offer, if any, included; no
    /// compression is added), and nothing is decided past the handshake.
    ///
    /// # Errors
    /// As [`Http2Connection::websocket`].
    pub async fn open_stream(
        &self,
        req: &ClientRequest,
        config: &ClientConfig,
    ) -> Result<(Http2Stream, Handshaken)> {
        if !self.extended_connect {
            return Err(Error::new(Kind::Unsupported(format!(
                "{}: the server did not advertise SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441): it cannot carry WebSockets over HTTP/2; use HTTP/1.1",
                self.authority
            ))));
        }
        let max = self.max_streams();
        if self.open.load(Relaxed) >= max {
            return Err(Error::new(Kind::Unsupported(format!(
                "{}: this HTTP/2 connection has {max} WebSockets open, the server's limit (SETTINGS_MAX_CONCURRENT_STREAMS); open another connection",
                self.authority
            ))));
        }
        let (mut hs, request) = ClientHandshake::extended_connect(req);
        let (parts, ()) = request.into_parts();
        let mut request = http::Request::from_parts(parts, ());
        request
            .extensions_mut()
            .insert(h2::ext::Protocol::from_static("websocket"));
        let who = &self.authority;
        let open = super::stream::OpenGuard::new(self.open.clone());
        let exchange = async {
            let mut send = self
                .send
                .clone()
                .ready()
                .await
                .map_err(|e| h2_failed(who, "HTTP/2 connection", e))?;
            let (response, stream) = send
                .send_request(request, false)
                .map_err(|e| h2_failed(who, "sending the CONNECT", e))?;
            let response = response.await.map_err(|e| {
                h2_failed(who, "the server reset the WebSocket's CONNECT stream", e)
            })?;
            Ok::<_, Error>((response, stream))
        };
        let (response, send) = tokio::time::timeout(config.handshake_timeout, exchange)
            .await
            .map_err(|_| {
                Error::new(Kind::Timeout(
                    "the server did not answer the WebSocket's HTTP/2 CONNECT in time",
                ))
            })??;
        let (parts, mut recv) = response.into_parts();
        let body = if parts.status.is_success() {
            Bytes::new()
        } else {
            read_some(&mut recv).await
        };
        let done = hs.handle_response(parts.status, parts.headers, body)?;
        Ok((Http2Stream::client(send, recv, open), done))
    }
}

/// The start of a refusal's body, briefly.
async fn read_some(recv: &mut h2::RecvStream) -> Bytes {
    let mut body = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_millis(500), async {
        while body.len() < REJECTION_BODY {
            match recv.data().await {
                Some(Ok(chunk)) => {
                    let _ = recv.flow_control().release_capacity(chunk.len());
                    body.extend_from_slice(&chunk);
                }
                _ => break,
            }
        }
    })
    .await;
    body.truncate(REJECTION_BODY);
    body.into()
}

fn seed() -> Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(seed)
}

/// An `h2` failure in words: what was being done, with whom, and the
/// HTTP/2 error code when there is one.
fn h2_failed(who: &str, doing: &str, e: h2::Error) -> Error {
    let hint = match e.reason() {
        Some(h2::Reason::PROTOCOL_ERROR) if e.is_reset() => {
            " (a server that does not take :protocol = websocket resets the stream so)"
        }
        Some(h2::Reason::REFUSED_STREAM) => {
            " (the server refused the stream, e.g. at its stream limit: retry, or open another connection)"
        }
        _ if e.is_io() => " (the connection failed)",
        _ if e.is_go_away() => " (the server is closing this HTTP/2 connection)",
        _ => "",
    };
    Error::new(Kind::Io(std::io::Error::other(format!(
        "{who}: {doing}: {e}{hint}"
    ))))
}
