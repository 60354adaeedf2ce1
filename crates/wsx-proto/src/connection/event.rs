//! What a connection reports and what its commands can refuse: the public
//! event types.

use crate::close::{CloseCode, CloseFrame};
use crate::error::ProtocolError;
use crate::utf8::Utf8Bytes;
use bytes::Bytes;
use std::time::Duration;

/// The kind of a data message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataKind {
    /// UTF-8 text.
    Text,
    /// Arbitrary bytes.
    Binary,
}

/// One data frame, delivered as it arrives when
/// [`Config::deliver_fragments`](crate::Config::deliver_fragments) is on, or sent with
/// [`Connection::send_fragment`](crate::Connection::send_fragment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    /// Text or binary (continuation frames carry the message's kind).
    pub kind: DataKind,
    /// The payload. For text, already validated up to here, but a code point
    /// may straddle two fragments.
    pub data: Bytes,
    /// The first frame of its message.
    pub first: bool,
    /// The last frame of its message.
    pub fin: bool,
}

/// What the connection reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A whole text message.
    Text(Utf8Bytes),
    /// A whole binary message.
    Binary(Bytes),
    /// A data frame (only with [`Config::deliver_fragments`](crate::Config::deliver_fragments)).
    Fragment(Fragment),
    /// A ping; the pong has already been queued.
    Ping(Bytes),
    /// A pong.
    Pong(Bytes),
    /// The connection is over. Reported exactly once, after every message
    /// that arrived before the end.
    Closed(Closed),
}

/// Who started the closing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initiator {
    /// This end: `close()`, a protocol error it detected, or a timeout.
    Local,
    /// The peer: its close frame, or its disappearance.
    Remote,
}

/// Why a connection ended other than by a clean close handshake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CloseCause {
    /// The peer broke the protocol; the close frame carried its code.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The stream ended without a close frame.
    #[error("the peer closed the connection (TCP, or its HTTP/2 stream) without a close frame (it crashed, was killed, or a proxy cut the connection)")]
    PeerVanished,
    /// Nothing arrived within the pong timeout after a keepalive ping.
    #[error("peer did not answer a ping within {0:?}: dead peer or a network path that dropped the connection (e.g. a load balancer idle timeout; lower the ping interval)")]
    KeepaliveTimeout(Duration),
    /// The peer did not answer our close frame in time.
    #[error("peer did not answer the close frame within {0:?}")]
    CloseTimeout(Duration),
}

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// The code that describes the end: the peer's close code (1005 if its
    /// close frame had none); else the code this end sent when it failed the
    /// connection (1002, 1007, 1009); else 1006 (no close frame at all).
    pub code: CloseCode,
    /// The peer's close reason, or the error that failed the connection.
    pub reason: String,
    /// Who started it.
    pub initiator: Initiator,
    /// The close frame this end sent, if any.
    pub sent: Option<CloseFrame>,
    /// Set unless the close handshake completed normally.
    pub cause: Option<CloseCause>,
}

impl Closed {
    /// Both close frames were exchanged.
    pub fn is_clean(&self) -> bool {
        self.cause.is_none()
    }
}

/// A command the connection refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// A close frame was sent or received: nothing more may be sent (RFC 6455 §5.5.1).
    #[error("the connection is closing or closed; nothing may be sent after a close frame")]
    Closed,
    /// Control frames carry at most 125 bytes.
    #[error("control frame payload of {0} bytes; the limit is 125")]
    ControlTooLong(usize),
    /// 1005, 1006, 1015 and unassigned codes never go on the wire.
    #[error("close code {0} may not be sent (use 1000-1003, 1007-1014 or 3000-4999)")]
    InvalidCloseCode(CloseCode),
    /// A fragment out of sequence: a continuation with no first fragment, or
    /// a new message before the previous one's last fragment.
    #[error("fragment out of sequence: {0}")]
    FragmentSequence(&'static str),
    /// [`Connection::echo_held`](crate::Connection::echo_held) with no
    /// message held.
    #[error("no received message is held: echo_held goes right after poll_in_place returned Polled::Held")]
    NothingHeld,
}
