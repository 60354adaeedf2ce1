//! `wsx-proto`: the WebSocket protocol (RFC 6455) as a sans-IO state machine.
//!
//! Bytes go in, events come out; bytes to send are handed back, never
//! written; time is passed in, never read. This crate has no sockets, no
//! async runtime, no clock and no OS randomness: the client's masking keys
//! come from a ChaCha12 CSPRNG seeded by the caller. The `wsx` crate drives it
//! over tokio; anything else (another runtime, a test, a fuzzer) can too.
//!
//! - [`handshake`]: the opening handshake, both sides.
//! - [`Connection`]: framing, fragmentation, masking, UTF-8, ping/pong, close,
//!   limits and keepalive timers after the handshake.
//! - [`frame`], [`mask`], [`utf8`], [`close`]: the pieces, usable alone.
//!
//! ```
//! use std::time::Instant;
//! use wsx_proto::{Config, Connection, Event, Message};
//! let now = Instant::now();
//! let mut client = Connection::client(Config::default(), [7; 32], now);
//! let mut server = Connection::server(Config::default(), now);
//! client.send(Message::Text("hi".into())).unwrap();
//! // Move the client's bytes to the server.
//! let out = client.transmit();
//! let bytes = bytes::Buf::copy_to_bytes(out, bytes::Buf::remaining(out));
//! server.handle_data(&bytes, now);
//! assert_eq!(server.poll_event(), Some(Event::Text("hi".into())));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod close;
pub mod config;
mod connection;
#[cfg(feature = "deflate")]
pub mod deflate;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod mask;
mod outbuf;
#[cfg(feature = "deflate")]
pub mod relay;
pub mod utf8;

pub use close::{CloseCode, CloseFrame};
pub use config::{Config, ConfigBuilder, ConfigError};
pub use connection::{
    CloseCause, Closed, Connection, DataKind, Event, Fragment, Held, Initiator, Polled,
    PreparedMessage, Role, SendError,
};
pub use error::ProtocolError;
pub use frame::OpCode;
pub use outbuf::OutBuf;
pub use utf8::Utf8Bytes;

use bytes::Bytes;

/// A message to send (and, in the `wsx` crate, one received).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// UTF-8 text.
    Text(Utf8Bytes),
    /// Binary data.
    Binary(Bytes),
    /// A ping (at most 125 bytes). Pings from the peer are answered automatically.
    Ping(Bytes),
    /// A pong (at most 125 bytes); an unsolicited pong is a one-way heartbeat.
    Pong(Bytes),
}

impl Message {
    /// A text message.
    pub fn text(s: impl Into<Utf8Bytes>) -> Self {
        Message::Text(s.into())
    }
    /// A binary message.
    pub fn binary(b: impl Into<Bytes>) -> Self {
        Message::Binary(b.into())
    }
    /// The payload length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        match self {
            Message::Text(t) => t.len(),
            Message::Binary(b) | Message::Ping(b) | Message::Pong(b) => b.len(),
        }
    }
    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
