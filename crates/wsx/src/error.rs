//! The tokio layer's error: opaque, with accessors for what callers act on.
//!
//! Each error in a chain either prints its cause or returns it from
//! `source()`, never both, so a chain printer (anyhow's `{:#}`) shows every
//! cause once. [`Error`] classifies: its `Display` is the words of the error
//! it wraps (a refused handshake, an I/O error, a protocol error), and
//! `source()` goes on below them. [`TlsError`] and [`crate::client::ProxyError`]
//! print wsx's own words and return the `rustls::Error` or I/O error behind
//! them from `source()`. Texts state the cause; they name no command-line
//! flag or proxy configuration (that advice is the application's to give).

use crate::proxy::ProxyError;
use std::fmt;
use std::io;
use wsx_proto::handshake::{ClientHandshakeError, HandshakeError};
use wsx_proto::{CloseCode, Closed, SendError};

/// An error from a WebSocket operation.
///
/// Use the `is_*` accessors and [`Error::close_info`] to decide what to do;
/// `Display` says what went wrong, `source()` continues with the error
/// beneath (for TLS, the `rustls::Error`; for a proxy, the I/O error).
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
    /// TLS failed: certificates, keys, or the handshake.
    Tls(TlsError),
    /// The proxy could not be reached or refused the tunnel.
    Proxy(ProxyError),
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

    /// The close code that describes the end (1006 for a vanished peer);
    /// `None` when the error is not about how a connection ended.
    pub fn close_code(&self) -> Option<CloseCode> {
        // Every kind is listed: a new one must decide whether it has a code.
        match &self.kind {
            Kind::Closed(c) => Some(c.code),
            Kind::Io(_)
            | Kind::ServerHandshake(_)
            | Kind::ClientHandshake(_)
            | Kind::Send(_)
            | Kind::Timeout(_)
            | Kind::Unsupported(_)
            | Kind::Tls(_)
            | Kind::Proxy(_) => None,
        }
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

    /// The TLS error, with the `rustls::Error` behind it.
    pub fn tls_error(&self) -> Option<&TlsError> {
        match &self.kind {
            Kind::Tls(e) => Some(e),
            _ => None,
        }
    }

    /// The proxy error: what the proxy answered, or why it was not reached.
    pub fn proxy_error(&self) -> Option<&ProxyError> {
        match &self.kind {
            Kind::Proxy(e) => Some(e),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // What is printed here is not returned by `source()` (see there).
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
            Kind::Tls(e) => write!(f, "{e}"),
            Kind::Proxy(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    /// The cause beneath what `Display` printed: `Display` already shows
    /// the wrapped error, so this is *that* error's source (for TLS, the
    /// `rustls::Error`; for a proxy that cannot be reached, the I/O error).
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            Kind::Io(e) => e.source(),
            Kind::ServerHandshake(e) => e.source(),
            Kind::ClientHandshake(e) => e.source(),
            Kind::Closed(c) => c.cause.as_ref().and_then(|c| c.source()),
            Kind::Send(e) => e.source(),
            Kind::Timeout(_) | Kind::Unsupported(_) => None,
            Kind::Tls(e) => e.source(),
            Kind::Proxy(e) => e.source(),
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

impl From<TlsError> for Error {
    fn from(e: TlsError) -> Self {
        Error::new(Kind::Tls(e))
    }
}

impl From<ProxyError> for Error {
    fn from(e: ProxyError) -> Self {
        Error::new(Kind::Proxy(e))
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A TLS failure: what failed, in wsx's words (which check, which file),
/// and the error behind it from `source()`: the `rustls::Error` of a
/// refused certificate or an alert, the PEM or I/O error of a file.
///
/// [`TlsError::rustls_error`] gives the rustls error to act on, e.g. to tell
/// an unknown CA from an expired certificate.
#[derive(Debug)]
pub struct TlsError {
    what: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl TlsError {
    /// A failure with nothing beneath it.
    #[allow(dead_code)]
    pub(crate) fn new(what: impl Into<String>) -> Self {
        TlsError {
            what: what.into(),
            source: None,
        }
    }

    /// A failure caused by `source`, which `what` must not repeat.
    #[allow(dead_code)]
    pub(crate) fn caused_by(
        what: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        TlsError {
            what: what.into(),
            source: Some(source.into()),
        }
    }

    /// The rustls error behind this one, if rustls reported it (a
    /// certificate check, an alert from the peer, a configuration it refused).
    #[cfg(feature = "tls")]
    pub fn rustls_error(&self) -> Option<&rustls::Error> {
        self.source.as_ref()?.downcast_ref()
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::ProxyErrorKind;
    use std::error::Error as _;
    use std::time::Duration;
    use wsx_proto::{CloseCause, Initiator, ProtocolError};

    /// An I/O error whose inner error has a source of its own: the chain
    /// below `Error::Io` must go on from there.
    #[derive(Debug)]
    struct Layered(io::Error);
    impl fmt::Display for Layered {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("reading the socket failed")
        }
    }
    impl std::error::Error for Layered {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    fn closed(cause: Option<CloseCause>) -> Error {
        Error::new(Kind::Closed(Box::new(Closed {
            code: CloseCode(1002),
            reason: String::new(),
            initiator: Initiator::Local,
            sent: None,
            cause,
        })))
    }

    /// One error of every kind (and the interesting shapes of some).
    fn samples() -> Vec<Error> {
        let rejected = wsx_proto::handshake::ClientHandshake::new(
            &wsx_proto::handshake::ClientRequest::new("ws://x/").unwrap(),
            [0; 16],
        )
        .0
        .handle_data(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy")
        .unwrap_err();
        let v = vec![
            Error::from(io::Error::new(io::ErrorKind::ConnectionRefused, "refused")),
            Error::from(io::Error::other(Layered(io::Error::other("disk on fire")))),
            Error::from(HandshakeError::rejected(
                http::StatusCode::FORBIDDEN,
                "no entry",
            )),
            Error::from(rejected),
            Error::from(ClientHandshakeError::Closed),
            closed(Some(CloseCause::Protocol(ProtocolError::InvalidUtf8))),
            closed(Some(CloseCause::KeepaliveTimeout(Duration::from_secs(10)))),
            closed(None),
            Error::from(SendError::Closed),
            Error::new(Kind::Timeout("the server did not answer")),
            Error::new(Kind::Unsupported("wss:// needs the tls feature".into())),
            Error::from(TlsError::new("no trusted root certificates")),
            Error::from(TlsError::caused_by(
                "cannot read ca.pem",
                io::Error::new(io::ErrorKind::NotFound, "no such file"),
            )),
            Error::from(ProxyError::new(
                "http://proxy:3128",
                ProxyErrorKind::Connect(io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    "connection refused",
                )),
            )),
            Error::from(ProxyError::new(
                "socks5://proxy:1080",
                ProxyErrorKind::Socks5Reply {
                    target: "example.com:443".into(),
                    code: 5,
                },
            )),
        ];
        // A certificate rustls refused: the rustls error is the source.
        #[cfg(feature = "tls")]
        let v = {
            let mut v = v;
            v.push(crate::tls::explain(
                "example.com",
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
                ),
            ));
            v
        };
        v
    }

    /// Adding a kind breaks this match: give it a sample above.
    fn kind_index(e: &Error) -> usize {
        match e.kind {
            Kind::Io(_) => 0,
            Kind::ServerHandshake(_) => 1,
            Kind::ClientHandshake(_) => 2,
            Kind::Closed(_) => 3,
            Kind::Send(_) => 4,
            Kind::Timeout(_) => 5,
            Kind::Unsupported(_) => 6,
            Kind::Tls(_) => 7,
            Kind::Proxy(_) => 8,
        }
    }

    /// The messages of `e` and its sources, outermost first.
    fn messages(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
        let mut out = Vec::new();
        let mut next = Some(e);
        while let Some(e) = next {
            out.push(e.to_string());
            next = e.source();
        }
        out
    }

    #[test]
    fn no_message_repeats_its_source() {
        let samples = samples();
        let mut seen: Vec<usize> = samples.iter().map(kind_index).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen, (0..9).collect::<Vec<_>>(), "a kind without a sample");
        for e in &samples {
            let chain = messages(e);
            for pair in chain.windows(2) {
                assert!(
                    !pair[0].contains(&pair[1]),
                    "{:?} prints its source {:?} and returns it too",
                    pair[0],
                    pair[1]
                );
            }
            // Printed as anyhow's `{:#}` does, each cause appears once.
            let all = chain.join(": ");
            for m in &chain {
                assert_eq!(all.matches(m.as_str()).count(), 1, "{m:?} twice in {all:?}");
            }
        }
    }

    #[test]
    fn typed_causes_stay_reachable() {
        // A proxy that cannot be reached: the I/O error is the source.
        let e = Error::from(ProxyError::new(
            "http://proxy:3128",
            ProxyErrorKind::Connect(io::Error::new(io::ErrorKind::ConnectionRefused, "nope")),
        ));
        let io = e.source().and_then(|s| s.downcast_ref::<io::Error>());
        assert_eq!(
            io.map(io::Error::kind),
            Some(io::ErrorKind::ConnectionRefused)
        );
        assert!(e.to_string().contains("cannot connect to the proxy"), "{e}");
        // A refused certificate: the rustls error is the source.
        #[cfg(feature = "tls")]
        {
            let e = crate::tls::explain(
                "example.com",
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
                ),
            );
            assert!(e.is_tls());
            let from_source = e.source().and_then(|s| s.downcast_ref::<rustls::Error>());
            let from_accessor = e.tls_error().and_then(TlsError::rustls_error);
            for got in [from_source, from_accessor] {
                assert!(
                    matches!(
                        got,
                        Some(rustls::Error::InvalidCertificate(
                            rustls::CertificateError::UnknownIssuer
                        ))
                    ),
                    "{got:?}"
                );
            }
        }
    }

    #[test]
    fn close_code_only_for_ended_connections() {
        for e in samples() {
            assert_eq!(e.close_code().is_some(), e.is_closed(), "{e}");
        }
        assert_eq!(closed(None).close_code(), Some(CloseCode(1002)));
    }
}
