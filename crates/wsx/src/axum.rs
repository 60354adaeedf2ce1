//! axum integration (feature `axum`): the [`WebSocketUpgrade`] extractor.
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use wsx::axum::WebSocketUpgrade;
//!
//! async fn ws(upgrade: WebSocketUpgrade) -> axum::response::Response {
//!     upgrade.on_upgrade(|mut ws| async move {
//!         while let Ok(Some(msg)) = ws.recv().await {
//!             if ws.send(msg).await.is_err() {
//!                 break;
//!             }
//!         }
//!     })
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! // http2_websockets: browsers' WebSockets over HTTP/2 reach get() routes too.
//! let app = wsx::axum::http2_websockets(Router::new().route("/ws", get(ws)));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! HTTP/2: browsers open WebSockets on an HTTP/2 connection as extended
//! `CONNECT`s (RFC 8441), which `axum::serve` allows, and axum's method
//! routing answers a `get()` route's `CONNECT` with 405. Wrap the router
//! with [`http2_websockets`]: every route that takes `GET` then takes
//! them, and the extractor answers them with `200` on the stream.
//!
//! The upgrade is decided by the same code as [`crate::Server`]'s: a
//! malformed handshake, a refused Origin or a refusal of the accept hook
//! gets the same status and body; limits, subprotocols and
//! permessage-deflate come from the [`ServerConfig`] given with
//! [`WebSocketUpgrade::config`] (default: [`ServerConfig::default`]).

use crate::accept::ServerConfig;
use crate::http::{
    handshake_error_response, upgrade_required_response, upgrade_validated, UpgradedIo,
};
use crate::socket::WebSocket;
use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use std::future::Future;
use tokio::net::TcpStream;
use wsx_proto::handshake::{Accept, HandshakeError, Upgrade};

/// The WebSocket of an axum handler. Under `axum::serve` it runs over
/// hyper's type-erased `Upgraded` ([`UpgradedIo::Hyper`]: axum wraps each
/// connection in a private type of hyper-util's, so the `TcpStream` cannot
/// be taken back); under a server that hands hyper `TokioIo<TcpStream>`
/// itself, over the `TcpStream` ([`UpgradedIo::Direct`]).
pub type AxumWebSocket = WebSocket<UpgradedIo<TcpStream>>;

/// Extracts a WebSocket upgrade request; answer it with
/// [`WebSocketUpgrade::on_upgrade`]. A request that is not a valid
/// upgrade is rejected ([`WebSocketRejection`]) with the status and body
/// the standalone server would send (426 for a plain page request, 400 for
/// a malformed handshake, ...).
#[derive(Debug)]
pub struct WebSocketUpgrade {
    upgrade: Upgrade,
    extensions: http::Extensions,
    config: Option<ServerConfig>,
}

/// Why a request could not be a WebSocket upgrade: its response is the
/// standalone server's for the same request.
#[derive(Debug)]
pub struct WebSocketRejection {
    error: HandshakeError,
    /// Not an upgrade at all (426), and whether a proxy stripped it.
    plain: Option<bool>,
}

impl WebSocketRejection {
    /// What was wrong.
    pub fn error(&self) -> &HandshakeError {
        &self.error
    }
}

impl std::fmt::Display for WebSocketRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for WebSocketRejection {}

impl IntoResponse for WebSocketRejection {
    fn into_response(self) -> Response {
        match self.plain {
            Some(stripped) => upgrade_required_response(stripped),
            None => handshake_error_response(&self.error),
        }
        .map(axum_core::body::Body::new)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for WebSocketUpgrade {
    type Rejection = WebSocketRejection;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let mut head = crate::http::head(&parts.method, &parts.uri, parts.version, &parts.headers);
        let upgrade = if let Some(protocol) =
            crate::http::extended_connect(&parts.method, parts.version, &parts.extensions)
        {
            *head.method_mut() = http::Method::CONNECT;
            Upgrade::extended_connect(head, protocol.as_deref())
                .map_err(|error| WebSocketRejection { error, plain: None })?
        } else {
            let plain = (!wsx_proto::handshake::is_upgrade_request(&head))
                .then(|| wsx_proto::handshake::is_stripped_upgrade(&head));
            Upgrade::new(head).map_err(|error| WebSocketRejection { error, plain })?
        };
        let mut extensions = http::Extensions::new();
        if let Some(on) = parts.extensions.remove::<hyper::upgrade::OnUpgrade>() {
            extensions.insert(on);
        }
        Ok(WebSocketUpgrade {
            upgrade,
            extensions,
            config: None,
        })
    }
}

impl WebSocketUpgrade {
    /// Limits, Origin policy, subprotocols and deflate for this upgrade.
    pub fn config(mut self, config: ServerConfig) -> Self {
        self.config = Some(config);
        self
    }

    /// The upgrade request: path, query, headers, offered subprotocols.
    pub fn upgrade(&self) -> &Upgrade {
        &self.upgrade
    }

    /// Accepts (after the Origin check) and runs `callback` with the
    /// WebSocket in a task of its own once the 101 (HTTP/2: the 200) is
    /// sent.
    pub fn on_upgrade<F, Fut>(self, callback: F) -> Response
    where
        F: FnOnce(AxumWebSocket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_upgrade_with(|_| Ok(Accept::default()), callback)
    }

    /// As [`WebSocketUpgrade::on_upgrade`], with an accept hook that may
    /// refuse (its status and body go to the client) or choose the
    /// subprotocol, extensions and extra headers.
    pub fn on_upgrade_with<D, F, Fut>(mut self, decide: D, callback: F) -> Response
    where
        D: FnOnce(&Upgrade) -> Result<Accept, HandshakeError>,
        F: FnOnce(AxumWebSocket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let config = self.config.take().unwrap_or_default();
        let (response, pending) =
            upgrade_validated(self.upgrade, &mut self.extensions, &config, decide);
        if let Some(pending) = pending {
            tokio::spawn(async move {
                match pending.websocket::<TcpStream>().await {
                    Ok(ws) => callback(ws).await,
                    Err(e) => tracing::debug!("upgrade not completed: {e}"),
                }
            });
        }
        response.map(axum_core::body::Body::new)
    }
}

/// Wraps an axum `Router` so that its routes taking `GET` take WebSockets
/// over HTTP/2 too: an extended `CONNECT` with `:protocol` (RFC 8441) is
/// routed as a `GET` (marked with [`crate::server::ExtendedConnect`], so
/// [`WebSocketUpgrade`] still answers it the HTTP/2 way). Without it, axum
/// answers a browser's WebSocket on a `get()` route over HTTP/2 with 405
/// (axum's `Router::layer` cannot help: it runs after the method routing).
///
/// ```
/// use axum::{routing::get, Router};
/// async fn ws(up: wsx::axum::WebSocketUpgrade) -> axum::response::Response {
///     up.on_upgrade(|_ws| async {})
/// }
/// let app: Router = wsx::axum::http2_websockets(Router::new().route("/ws", get(ws)));
/// // axum::serve(listener, app)
/// ```
pub fn http2_websockets(router: axum::Router) -> axum::Router {
    // The wrapped router is the fallback of an empty one: every request
    // passes the rewrite before the inner router routes it.
    axum::Router::new().fallback_service(ConnectAsGet { inner: router })
}

/// The rewrite of [`http2_websockets`].
#[derive(Debug, Clone)]
struct ConnectAsGet<S> {
    inner: S,
}

impl<S, B> tower_service::Service<http::Request<B>> for ConnectAsGet<S>
where
    S: tower_service::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        if req.method() == http::Method::CONNECT
            && crate::http::extended_connect(req.method(), req.version(), req.extensions())
                .is_some()
        {
            *req.method_mut() = http::Method::GET;
            req.extensions_mut().insert(crate::http::ExtendedConnect);
        }
        self.inner.call(req)
    }
}
