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
//! let app = Router::new().route("/ws", get(ws));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
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
        let head = crate::http::head(&parts.method, &parts.uri, parts.version, &parts.headers);
        let plain = (!wsx_proto::handshake::is_upgrade_request(&head))
            .then(|| wsx_proto::handshake::is_stripped_upgrade(&head));
        let upgrade = Upgrade::new(head).map_err(|error| WebSocketRejection { error, plain })?;
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
    /// WebSocket in a task of its own once the 101 is sent.
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
