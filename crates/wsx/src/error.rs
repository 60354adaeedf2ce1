//! The tokio layer's error: opaque, with accessors for what callers act on.

use std::fmt;
use std::io;
use wsx_proto::handshake::{ClientHandshakeError, HandshakeError};
use wsx_proto::{CloseCode, Closed, SendError};

/// An error from a WebSocket operation.
///
/// Use the `is_*` accessors and [`Error::close_info`] to decide what to do;
/// `Display` says what went wrong and, where there is one, the fix.
#[derive(Debug)]
pub struct Error {
    kind: Kind,
}

#[derive(Debug)]
pub(crate) enum Kind {
    Io(io::Error),
    /// The server refused a client's handshake (we answered with an HTTP error).
    ServerHandshake(HandshakeError),
    /// The client's handshake failed (non-101 answer, bad accept, ...).
    ClientHandshake(ClientHandshakeError),
    /// The connection ended without a clean close handshake.
    Closed(Box<Closed>),
    /// A send the connection refused (after close, bad close code, ...).
    Send(SendError),
    /// An operation timed out.
    Timeout(&'static str),
    /// A feature or URL this build cannot serve.
    Unsupported(String),
    /// TLS failed: certificates, keys, or the handshake (in words).
    #[allow(dead_code)]
    Tls(String),
    /// The proxy could not be reached or refused the tunnel.
    Proxy(String),
}

impl Error {
    pub(crate) fn new(kind: Kind) -> Self {
        Error { kind }
    }

    /// The I/O error inside, or the error itself back.
    #[allow(dead_code)]
    pub(crate) fn into_io(self) -> std::result::Result<io::Error, Error> {
        match self.kind {
            Kind::Io(e) => Ok(e),
            kind => Err(Error::new(kind)),
        }
    }

    /// An I/O error on the transport.
    pub fn is_io(&self) -> bool {
        matches!(self.kind, Kind::Io(_))
    }

    /// The opening handshake failed (either side).
    pub fn is_handshake(&self) -> bool {
        matches!(
            self.kind,
            Kind::ServerHandshake(_) | Kind::ClientHandshake(_)
        )
    }

    /// The connection ended abnormally (protocol error, vanished peer,
    /// keepalive or close timeout): see [`Error::close_info`].
    pub fn is_closed(&self) -> bool {
        matches!(self.kind, Kind::Closed(_))
    }

    /// The peer broke the protocol (we sent 1002/1007/1009 and closed).
    pub fn is_protocol(&self) -> bool {
        matches!(&self.kind, Kind::Closed(c) if matches!(c.cause, Some(wsx_proto::CloseCause::Protocol(_))))
    }

    /// TLS failed: a certificate the client does not trust (expired, wrong
    /// host, unknown CA), a refused client certificate, unusable PEM files.
    pub fn is_tls(&self) -> bool {
        matches!(self.kind, Kind::Tls(_))
    }

    /// The proxy could not be reached, wanted credentials, or refused the
    /// tunnel.
    pub fn is_proxy(&self) -> bool {
        matches!(self.kind, Kind::Proxy(_))
    }

    /// A step did not finish in time.
    pub fn is_timeout(&self) -> bool {
        matches!(self.kind, Kind::Timeout(_))
            || matches!(&self.kind, Kind::Closed(c) if matches!(c.cause, Some(wsx_proto::CloseCause::KeepaliveTimeout(_) | wsx_proto::CloseCause::CloseTimeout(_))))
    }

    /// How the connection ended, when it did.
    pub fn close_info(&self) -> Option<&Closed> {
        match &self.kind {
            Kind::Closed(c) => Some(c),
            _ => None,
        }
    }

    /// The close code that describes the end (1006 for a vanished peer).
    pub fn close_code(&self) -> Option<CloseCode> {
        self.close_info().map(|c| c.code)
    }

    /// The client handshake error, with the server's status, headers and body.
    pub fn client_handshake(&self) -> Option<&ClientHandshakeError> {
        match &self.kind {
            Kind::ClientHandshake(e) => Some(e),
            _ => None,
        }
    }

    /// The server handshake error (and the HTTP status that was answered).
    pub fn server_handshake(&self) -> Option<&HandshakeError> {
        match &self.kind {
            Kind::ServerHandshake(e) => Some(e),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Io(e) => write!(f, "i/o error: {e}"),
            Kind::ServerHandshake(e) => write!(f, "handshake refused ({}): {e}", e.status()),
            Kind::ClientHandshake(e) => write!(f, "handshake failed: {e}"),
            Kind::Closed(c) => match &c.cause {
                Some(cause) => write!(f, "connection closed with {}: {cause}", c.code),
                None => write!(f, "connection closed with {}", c.code),
            },
            Kind::Send(e) => write!(f, "{e}"),
            Kind::Timeout(what) => write!(f, "timed out: {what}"),
            Kind::Unsupported(what) => write!(f, "{what}"),
            Kind::Tls(what) => write!(f, "{what}"),
            Kind::Proxy(what) => write!(f, "proxy: {what}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            Kind::Io(e) => Some(e),
            Kind::ServerHandshake(e) => Some(e),
            Kind::ClientHandshake(e) => Some(e),
            Kind::Closed(c) => c.cause.as_ref().map(|c| c as _),
            Kind::Send(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::new(Kind::Io(e))
    }
}

impl From<SendError> for Error {
    fn from(e: SendError) -> Self {
        Error::new(Kind::Send(e))
    }
}

impl From<ClientHandshakeError> for Error {
    fn from(e: ClientHandshakeError) -> Self {
        Error::new(Kind::ClientHandshake(e))
    }
}

impl From<HandshakeError> for Error {
    fn from(e: HandshakeError) -> Self {
        Error::new(Kind::ServerHandshake(e))
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
