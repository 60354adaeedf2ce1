//! `wsx`: WebSocket (RFC 6455) server and client for tokio.
//!
//! The protocol lives in [`wsx_proto`], a sans-IO core; this crate moves its
//! bytes over any `AsyncRead + AsyncWrite` stream, runs its timers on the
//! tokio clock, and gives a message API with backpressure.
//!
//! Echo server:
//! ```no_run
//! # async fn run() -> Result<(), wsx::Error> {
//! let server = wsx::Server::bind("127.0.0.1:9001").await?;
//! loop {
//!     let (tcp, _) = server.accept_tcp().await?;
//!     tokio::spawn(async move {
//!         let mut ws = wsx::accept(tcp).await?;
//!         while let Some(msg) = ws.recv().await? {
//!             ws.send(msg).await?;
//!         }
//!         Ok::<_, wsx::Error>(())
//!     });
//! }
//! # }
//! ```
//! Client:
//! ```no_run
//! # async fn run() -> Result<(), wsx::Error> {
//! let mut ws = wsx::connect("ws://127.0.0.1:9001/").await?;
//! ws.send(wsx::Message::text("hello")).await?;
//! let reply = ws.recv().await?;
//! ws.close(None).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// Chained setters for a config struct's public fields, so that configs can
/// be `#[non_exhaustive]` (new fields are not breaking changes) and still
/// be built in one expression.
macro_rules! setters {
    ($t:ident { $( $(#[$m:meta])* $name:ident : $ty:ty ),* $(,)? }) => {
        impl $t {
            $(
                $(#[$m])*
                #[doc = concat!("Sets [`", stringify!($t), "::", stringify!($name), "`].")]
                #[must_use]
                pub fn $name(mut self, value: $ty) -> Self {
                    self.$name = value;
                    self
                }
            )*
        }
    };
}
pub(crate) use setters;

mod accept;
#[cfg(feature = "axum")]
pub mod axum;
pub mod broadcast;
pub mod client;
mod error;
mod http;
pub mod http2;
mod in_place;
mod proxy;
pub mod reconnect;
mod serve;
mod socket;
mod split;
mod stream;
#[cfg(feature = "tls")]
pub mod tls;

/// Serving WebSockets: the accept loop ([`server::Server`]), one-off
/// accepts, plain HTTP beside them, and upgrades of requests that a hyper
/// or axum server received ([`server::upgrade`]).
pub mod server {
    pub use crate::accept::{
        accept, accept_with, read_request, Incoming, ServerConfig, DEFAULT_SERVER_PING_INTERVAL,
    };
    pub use crate::http::{
        full, handshake_error_response, upgrade, upgrade_required, Body, BoxError, ExtendedConnect,
        HttpService, PendingUpgrade, UpgradedIo,
    };
    pub use crate::serve::{
        Accepted, Acceptor, PlainTcp, Server, ServerHandle, BUSY_RETRY_AFTER_SECS, LISTEN_BACKLOG,
    };
    pub use crate::stream::ServerStream;
    pub use tokio_util::sync::CancellationToken;
    #[cfg(feature = "deflate")]
    pub use wsx_proto::deflate::DeflateConfig;
    pub use wsx_proto::handshake::{
        Accept, HandshakeError, HandshakeErrorKind, OriginPatternError, OriginPolicy, Upgrade,
    };
}

// The crate root: what nearly every program names. The rest lives in the
// modules above (`server`, `client`, `broadcast`, `reconnect`, `tls`, `axum`).
pub use client::connect;
pub use error::{Error, Result, TlsError};
pub use in_place::{HeldMessage, Received};
pub use server::{accept, Server, ServerConfig};
pub use socket::{TrySendError, WebSocket, DEFAULT_WRITE_BUFFER_HIGH_WATER, HTTP2_CLOSE_LINGER};
pub use split::{WsReader, WsWriter};
pub use stream::{MaybeTlsStream, ServerStream};
pub use wsx_proto;
pub use wsx_proto::{
    CloseCause, CloseCode, CloseFrame, Closed, Config, DataKind, Event, Fragment, Initiator,
    Message, PreparedMessage, Role, Utf8Bytes,
};

/// The README's examples, compiled as doctests so they cannot rot.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
