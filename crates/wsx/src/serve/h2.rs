//! A connection of [`super::Server::serve`] that speaks HTTP/2: plain
//! requests go to the [`crate::server::HttpService`], extended `CONNECT`s
//! (RFC 8441) become WebSockets through the same decision as HTTP/1.1
//! upgrades, each running the handler in a task of its own.

use super::{Accepted, Acceptor, Shared};
use crate::http::{handshake_error_response, Body, Rewind};
use crate::http2::Http2Stream;
use crate::socket::WebSocket;
use crate::stream::ServerStream;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::task::TaskTracker;
use wsx_proto::handshake::{Accept, HandshakeError, Upgrade};

/// HTTP/2 PING interval on a connection, and how long its answer may take:
/// finds peers that vanished (each WebSocket has its own pings too).
const KEEPALIVE: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Headers HTTP/2 forbids (RFC 9113 §8.2.2): an application's HTTP/1.1
/// response (e.g. a 426 with `Upgrade`) must not break the stream.
const CONNECTION_SPECIFIC: [http::header::HeaderName; 4] = [
    http::header::CONNECTION,
    http::header::UPGRADE,
    http::header::TRANSFER_ENCODING,
    http::header::HeaderName::from_static("keep-alive"),
];

/// Counts a WebSocket handler's panic as it unwinds (the task is not
/// joined by anyone who would see it).
struct PanicCount<'a>(&'a super::Stats);

impl Drop for PanicCount<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.panicked.fetch_add(1, Relaxed);
            tracing::error!(
                "a WebSocket handler (HTTP/2 stream) panicked (the panic message is above); the server goes on"
            );
        }
    }
}

impl<A, F, T, H, Fut> Shared<A, F, H>
where
    A: Acceptor,
    F: Fn(&Upgrade) -> std::result::Result<T, HandshakeError> + Send + Sync + 'static,
    T: Send + 'static,
    H: Fn(WebSocket<ServerStream<A::Stream>>, Accepted<T>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    /// Serves an HTTP/2 connection (`read`: bytes already read from it)
    /// until the client leaves or the server stops, then waits for its
    /// WebSockets to end.
    pub(super) async fn serve_h2(
        self: &Arc<Self>,
        stream: A::Stream,
        read: Vec<u8>,
        peer: SocketAddr,
    ) {
        let Some(settings) = self.config.http2.clone() else {
            // ALPN chose h2 but the server has HTTP/2 off: nothing to say
            // in HTTP/1.1 on an HTTP/2 connection.
            self.failed(peer, "HTTP/2 connection, but HTTP/2 is off (ServerConfig::http2 is None; offer only http/1.1 in ALPN)");
            return;
        };
        self.stats.http2_connections.fetch_add(1, Relaxed);
        let sockets = TaskTracker::new();
        let used = Arc::new(AtomicBool::new(false));
        let service = {
            let (me, sockets, used) = (self.clone(), sockets.clone(), used.clone());
            hyper::service::service_fn(move |req| {
                used.store(true, Relaxed);
                let (me, sockets) = (me.clone(), sockets.clone());
                async move {
                    let mut response = me.route_h2(req, peer, &sockets).await;
                    for h in &CONNECTION_SPECIFIC {
                        response.headers_mut().remove(h);
                    }
                    Ok::<_, std::convert::Infallible>(response)
                }
            })
        };
        let mut builder =
            hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new());
        builder
            .timer(hyper_util::rt::TokioTimer::new())
            .initial_stream_window_size(settings.stream_window)
            .initial_connection_window_size(settings.connection_window())
            .max_concurrent_streams(settings.max_streams)
            .max_frame_size(settings.max_frame_size)
            .max_header_list_size(
                u32::try_from(self.config.max_handshake_bytes).unwrap_or(u32::MAX),
            )
            .keep_alive_interval(KEEPALIVE)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT);
        if settings.extended_connect {
            builder.enable_connect_protocol();
        }
        let io = hyper_util::rt::TokioIo::new(Rewind::new(stream, read.into()));
        let conn = builder.serve_connection(io, service);
        tokio::pin!(conn);
        // A connection that opens no stream within the handshake timeout is
        // closed, as a silent HTTP/1.1 client would be.
        let first = tokio::time::sleep(self.config.handshake_timeout);
        tokio::pin!(first);
        let mut waiting_first = true;
        let served = loop {
            tokio::select! {
                r = conn.as_mut() => break r,
                _ = self.token.cancelled() => {
                    // GOAWAY: no new streams; open WebSockets get their 1001.
                    conn.as_mut().graceful_shutdown();
                    break conn.await;
                }
                _ = &mut first, if waiting_first => {
                    waiting_first = false;
                    if !used.load(Relaxed) {
                        self.failed(peer, "HTTP/2 connection opened no stream in time");
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        };
        if let Err(e) = served {
            tracing::debug!(%peer, "HTTP/2 connection ended: {e}");
        }
        sockets.close();
        sockets.wait().await;
    }

    /// One HTTP/2 request: an extended `CONNECT` becomes a WebSocket (its
    /// handler spawned on `sockets` once the stream is ours), anything else
    /// goes to the HTTP service.
    async fn route_h2(
        self: &Arc<Self>,
        mut req: http::Request<hyper::body::Incoming>,
        peer: SocketAddr,
        sockets: &TaskTracker,
    ) -> http::Response<Body> {
        let protocol = req
            .extensions()
            .get::<hyper::ext::Protocol>()
            .map(|p| p.as_str().to_string());
        if req.method() != http::Method::CONNECT || protocol.is_none() {
            self.stats.http_requests.fetch_add(1, Relaxed);
            return self.http.call(req).await;
        }
        let on_upgrade = hyper::upgrade::on(&mut req);
        let (parts, _body) = req.into_parts();
        let mut auth = None;
        let decided =
            Upgrade::extended_connect(http::Request::from_parts(parts, ()), protocol.as_deref())
                .and_then(|up| {
                    crate::accept::negotiate_upgrade(up, &self.config, |up| {
                        auth = Some((self.authorize)(up)?);
                        Ok(Accept::default())
                    })
                })
                .and_then(|n| Ok((n.upgrade.accept_response(&n.accept)?, n)));
        let ((response, n), auth) = match (decided, auth) {
            (Ok(r), Some(auth)) => (r, auth),
            (Err(e), _) => {
                self.failed(peer, &e);
                return handshake_error_response(&e);
            }
            (Ok(_), None) => unreachable!("accepted without the hook"),
        };
        let me = self.clone();
        sockets.spawn(async move {
            let upgraded = match on_upgrade.await {
                Ok(u) => u,
                Err(e) => {
                    // The client reset the stream before it began.
                    return me.failed(
                        peer,
                        format!("HTTP/2 stream ended before the WebSocket began: {e}"),
                    );
                }
            };
            let (ws, upgrade) = n.into_websocket(
                ServerStream::Http2(Http2Stream::server(upgraded)),
                &[],
                &me.config.limits,
                me.config.write_buffer_high_water,
            );
            me.stats.accepted.fetch_add(1, Relaxed);
            let (parts, ()) = upgrade.into_request().into_parts();
            let accepted = Accepted {
                peer,
                uri: parts.uri,
                headers: parts.headers,
                auth,
            };
            let _panics = PanicCount(&me.stats);
            (me.handler)(ws.close_on(me.token.clone()), accepted).await;
        });
        let (parts, ()) = response.into_parts();
        http::Response::from_parts(parts, crate::http::full(bytes::Bytes::new()))
    }
}
