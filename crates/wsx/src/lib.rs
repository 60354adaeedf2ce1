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

mod accept;
#[cfg(feature = "axum")]
pub mod axum;
mod broadcast;
mod client;
mod error;
mod http;
mod proxy;
mod reconnect;
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
        full, handshake_error_response, upgrade, upgrade_required, Body, BoxError, HttpService,
        PendingUpgrade, UpgradedIo,
    };
    pub use crate::serve::{
        Accepted, Acceptor, PlainTcp, Server, ServerHandle, BUSY_RETRY_AFTER_SECS,
    };
    pub use tokio_util::sync::CancellationToken;
}

pub use broadcast::{Broadcast, BroadcastConfig, Delivery, SlowConsumer, Subscription};
pub use client::{client, connect, connect_with, ClientConfig};
pub use error::{Error, Result, TlsError};
pub use proxy::{Proxy, ProxyError, ProxyErrorKind, ProxyKind};
pub use reconnect::{
    Backoff, Decision, Disconnect, GiveUpReason, Jitter, NotSent, ReconnectConfig, ReconnectEvent,
    ReconnectSender, ReconnectingClient, RetryPolicy, Schedule, MAX_RETRY_AFTER,
};
pub use server::{
    accept, accept_with, read_request, Accepted, Incoming, Server, ServerConfig, ServerHandle,
    DEFAULT_SERVER_PING_INTERVAL,
};
pub use socket::{TrySendError, WebSocket, DEFAULT_WRITE_BUFFER_HIGH_WATER};
pub use split::{WsReader, WsWriter};
pub use stream::MaybeTlsStream;

pub use wsx_proto;

/// The README's examples, compiled as doctests so they cannot rot.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
pub use wsx_proto::handshake::{
    Accept, ClientRequest, HandshakeError, Handshaken, OriginPatternError, OriginPolicy, Upgrade,
};
pub use wsx_proto::{
    CloseCause, CloseCode, CloseFrame, Closed, Config, DataKind, Event, Fragment, Initiator,
    Message, PreparedMessage, Role, Utf8Bytes,
};
