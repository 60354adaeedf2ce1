//! Why a connection ended ([`Disconnect`]) and whether that is worth another
//! attempt ([`RetryPolicy`]; the server's `Retry-After`, capped at
//! [`MAX_RETRY_AFTER`]).

use crate::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use wsx_proto::handshake::ClientHandshakeError;
use wsx_proto::{CloseCode, Closed, Initiator};

/// Why a connection ended, or why connecting failed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Disconnect {
    /// An established connection ended: cleanly (both close frames) or not
    /// (1006 for a vanished peer, 1002/1007/1009 when we failed it, a
    /// keepalive timeout); see [`Closed::cause`].
    Closed(Closed),
    /// Connecting failed (TCP, timeout, handshake refused), or an I/O error
    /// broke an established connection.
    Error(Arc<Error>),
}

/// Close codes after which reconnecting may help: the server is going away
/// or restarting (1001, 1012), overloaded or failing (1011, 1013), an
/// upstream is down (1014, like HTTP 502), or the connection vanished
/// without a close frame (1006: network trouble, keepalive timeout).
const TRANSIENT_CLOSE_CODES: [u16; 6] = [1001, 1006, 1011, 1012, 1013, 1014];

/// HTTP answers to the opening handshake that say "later": request timeout,
/// too many requests, server errors and gateways whose upstream is down.
const TRANSIENT_HTTP_STATUS: [u16; 6] = [408, 429, 500, 502, 503, 504];

/// The longest `Retry-After` honoured (10 minutes): a server may ask a
/// client to stay away for a while, but a wrong header should not park it
/// for days.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

impl Disconnect {
    /// What the default [`RetryPolicy`] retries: network and I/O errors,
    /// timeouts, a connection dropped during the handshake, handshake
    /// answers 408/429/500/502/503/504, and close codes
    /// 1001/1006/1011/1012/1013/1014.
    ///
    /// Not transient: a normal close by the server (1000, or 1005 without a
    /// code: the server said it is done with us), protocol and data errors
    /// (1002/1003/1007/1009/1010: the same bytes would fail again), policy
    /// violations (1008), private codes (4000–4999: only the application
    /// knows them), other handshake refusals (401/403/404...: a wrong URL or
    /// credentials), bad URLs and unsupported features.
    pub fn is_transient(&self) -> bool {
        match self {
            Disconnect::Closed(c) => TRANSIENT_CLOSE_CODES.contains(&c.code.0),
            Disconnect::Error(e) => transient_error(e),
        }
    }

    /// The close code that describes the end, if a connection ended.
    pub fn close_code(&self) -> Option<CloseCode> {
        match self {
            Disconnect::Closed(c) => Some(c.code),
            Disconnect::Error(e) => e.close_code(),
        }
    }

    /// How long the server asked us to wait: the `Retry-After` header of a
    /// refused handshake (typically 429 or 503), in its delta-seconds form
    /// (an HTTP date is ignored). The reconnect delay is at least this, up
    /// to [`MAX_RETRY_AFTER`].
    pub fn retry_after(&self) -> Option<Duration> {
        let Some(ClientHandshakeError::Rejected(r)) = self.error()?.client_handshake() else {
            return None;
        };
        let v = r
            .headers
            .get(http::header::RETRY_AFTER)?
            .to_str()
            .ok()?
            .trim();
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Digits only: a parse failure is an overflow, i.e. "very long".
        Some(Duration::from_secs(v.parse().unwrap_or(u64::MAX)))
    }

    /// The error, if connecting failed or I/O broke the connection.
    pub fn error(&self) -> Option<&Error> {
        match self {
            Disconnect::Closed(_) => None,
            Disconnect::Error(e) => Some(e),
        }
    }
}

fn transient_error(e: &Error) -> bool {
    if let Some(c) = e.close_info() {
        return TRANSIENT_CLOSE_CODES.contains(&c.code.0);
    }
    if e.is_io() || e.is_timeout() {
        return true;
    }
    match e.client_handshake() {
        Some(ClientHandshakeError::Rejected(r)) => {
            TRANSIENT_HTTP_STATUS.contains(&r.status.as_u16())
        }
        Some(ClientHandshakeError::Closed) => true,
        _ => false,
    }
}

impl From<Error> for Disconnect {
    /// An error that carries how the connection closed becomes
    /// [`Disconnect::Closed`]; any other stays an error.
    fn from(e: Error) -> Self {
        match e.close_info() {
            Some(c) => Disconnect::Closed(c.clone()),
            None => Disconnect::Error(Arc::new(e)),
        }
    }
}

impl fmt::Display for Disconnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Disconnect::Closed(c) => {
                if let Some(cause) = &c.cause {
                    return write!(f, "connection closed with {}: {cause}", c.code);
                }
                let who = match c.initiator {
                    Initiator::Local => "closed",
                    Initiator::Remote => "closed by the server",
                };
                if c.reason.is_empty() {
                    write!(f, "{who} with {}", c.code)
                } else {
                    write!(f, "{who} with {} {:?}", c.code, c.reason)
                }
            }
            Disconnect::Error(e) => write!(f, "{e}"),
        }
    }
}

/// Decides whether to reconnect after a [`Disconnect`]. The default retries
/// what [`Disconnect::is_transient`] calls transient; an application with
/// its own close codes says which of them mean "try again":
///
/// ```
/// use wsx::{CloseCode, reconnect::{RetryPolicy}};
/// // Our server sends 4001 when it sheds load: come back later.
/// let policy = RetryPolicy::new(|d| d.is_transient() || d.close_code() == Some(CloseCode(4001)));
/// ```
#[derive(Clone)]
pub struct RetryPolicy(Arc<dyn Fn(&Disconnect) -> bool + Send + Sync>);

impl RetryPolicy {
    /// A policy from a function: `true` means reconnect.
    pub fn new(f: impl Fn(&Disconnect) -> bool + Send + Sync + 'static) -> Self {
        RetryPolicy(Arc::new(f))
    }

    /// Whether to reconnect after `cause`.
    pub fn should_retry(&self, cause: &Disconnect) -> bool {
        (self.0)(cause)
    }
}

impl Default for RetryPolicy {
    /// Retries what [`Disconnect::is_transient`] calls transient.
    fn default() -> Self {
        RetryPolicy::new(Disconnect::is_transient)
    }
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RetryPolicy(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed(code: u16) -> Disconnect {
        Disconnect::Closed(Closed {
            code: CloseCode(code),
            reason: String::new(),
            initiator: Initiator::Remote,
            sent: None,
            cause: None,
        })
    }

    #[test]
    fn transient_close_codes() {
        for code in [1001, 1006, 1011, 1012, 1013, 1014] {
            assert!(closed(code).is_transient(), "{code}");
        }
        for code in [1000, 1002, 1003, 1005, 1007, 1008, 1009, 1010, 3000, 4000] {
            assert!(!closed(code).is_transient(), "{code}");
        }
    }

    #[test]
    fn transient_errors() {
        let io = Disconnect::from(Error::from(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )));
        assert!(io.is_transient());
        let hung_up = Disconnect::from(Error::from(ClientHandshakeError::Closed));
        assert!(hung_up.is_transient());
        let bad_url = Disconnect::from(Error::from(ClientHandshakeError::InvalidUrl("x".into())));
        assert!(!bad_url.is_transient());
    }
}
