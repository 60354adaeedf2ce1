//! Close codes and close frames (RFC 6455 §5.5.1, §7.4).

use crate::error::ProtocolError;
use bytes::{BufMut, Bytes, BytesMut};
use std::fmt;

/// A close status code: an open newtype, so every `u16` is representable.
///
/// Named constants cover the IANA registry; 3000-3999 are registered by
/// libraries and frameworks, 4000-4999 are for private use by applications.
///
/// ```
/// use wsx_proto::CloseCode;
/// assert!(CloseCode::NORMAL.is_sendable());
/// assert!(CloseCode(4001).is_sendable()); // private use
/// assert!(!CloseCode::ABNORMAL.is_sendable()); // 1006 never goes on the wire
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the purpose of the connection has been fulfilled.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the endpoint is going away (server shutdown, page navigation).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: the peer violated the protocol.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: a data type the endpoint cannot accept (e.g. binary for a text-only endpoint).
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// 1005: reserved; reported when a close frame carried no code. Never sent.
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// 1006: reserved; the connection ended without a close frame. Never sent.
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    /// 1007: message data inconsistent with its type (e.g. invalid UTF-8 in text).
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: a message violated the endpoint's policy.
    pub const POLICY_VIOLATION: CloseCode = CloseCode(1008);
    /// 1009: a message too big to process.
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    /// 1010: the client expected the server to negotiate an extension.
    pub const MANDATORY_EXTENSION: CloseCode = CloseCode(1010);
    /// 1011: the server hit an unexpected condition.
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);
    /// 1012: the service is restarting.
    pub const SERVICE_RESTART: CloseCode = CloseCode(1012);
    /// 1013: try again later (e.g. overloaded).
    pub const TRY_AGAIN_LATER: CloseCode = CloseCode(1013);
    /// 1014: a gateway got an invalid response from upstream.
    pub const BAD_GATEWAY: CloseCode = CloseCode(1014);
    /// 1015: reserved; the TLS handshake failed. Never sent.
    pub const TLS_HANDSHAKE: CloseCode = CloseCode(1015);

    /// Whether this code may appear in a close frame on the wire
    /// (RFC 6455 §7.4.1-§7.4.2 and the IANA registry): 1000-1003, 1007-1014,
    /// 3000-4999.
    pub fn is_sendable(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }

    /// 4000-4999, reserved for private use by applications.
    pub fn is_private(self) -> bool {
        (4000..=4999).contains(&self.0)
    }

    /// The IANA name of a registered code.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            1000 => "normal closure",
            1001 => "going away",
            1002 => "protocol error",
            1003 => "unsupported data",
            1005 => "no status received",
            1006 => "abnormal closure",
            1007 => "invalid frame payload data",
            1008 => "policy violation",
            1009 => "message too big",
            1010 => "mandatory extension",
            1011 => "internal error",
            1012 => "service restart",
            1013 => "try again later",
            1014 => "bad gateway",
            1015 => "TLS handshake failure",
            _ => return None,
        })
    }
}

impl fmt::Debug for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CloseCode({})", self.0)
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{} ({n})", self.0),
            None if self.is_private() => write!(f, "{} (application)", self.0),
            None => write!(f, "{}", self.0),
        }
    }
}

impl From<u16> for CloseCode {
    fn from(c: u16) -> Self {
        CloseCode(c)
    }
}

impl From<CloseCode> for u16 {
    fn from(c: CloseCode) -> Self {
        c.0
    }
}

/// The payload of a close frame: a code and a UTF-8 reason of at most 123 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code.
    pub code: CloseCode,
    /// Why, for people; may be empty.
    pub reason: String,
}

/// Close frames carry at most 125 bytes: 2 of code, 123 of reason.
pub const MAX_REASON_LEN: usize = 123;

impl CloseFrame {
    /// A close frame with `code` and `reason`.
    pub fn new(code: CloseCode, reason: impl Into<String>) -> Self {
        CloseFrame {
            code,
            reason: reason.into(),
        }
    }

    /// Parses a received close payload. `Ok(None)` is an empty payload (no
    /// status: reported as 1005).
    pub fn parse(payload: &[u8]) -> Result<Option<CloseFrame>, ProtocolError> {
        match payload.len() {
            0 => Ok(None),
            1 => Err(ProtocolError::CloseFrameTooShort),
            _ => {
                let code = CloseCode(u16::from_be_bytes([payload[0], payload[1]]));
                if !code.is_sendable() {
                    return Err(ProtocolError::InvalidCloseCode(code));
                }
                let reason = std::str::from_utf8(&payload[2..])
                    .map_err(|_| ProtocolError::InvalidCloseReason)?;
                Ok(Some(CloseFrame::new(code, reason)))
            }
        }
    }

    /// Encodes the payload; truncates the reason at a character boundary to fit.
    pub(crate) fn encode(&self) -> Bytes {
        let mut reason = self.reason.as_str();
        if reason.len() > MAX_REASON_LEN {
            let mut end = MAX_REASON_LEN;
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason = &reason[..end];
        }
        let mut b = BytesMut::with_capacity(2 + reason.len());
        b.put_u16(self.code.0);
        b.put_slice(reason.as_bytes());
        b.freeze()
    }
}

impl fmt::Display for CloseFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reason.is_empty() {
            write!(f, "{}", self.code)
        } else {
            write!(f, "{} {:?}", self.code, self.reason)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_validity_table() {
        let valid = [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
            4000, 4999,
        ];
        let invalid = [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ];
        for c in valid {
            assert!(CloseCode(c).is_sendable(), "{c} should be valid");
            assert!(CloseFrame::parse(&c.to_be_bytes()).is_ok());
        }
        for c in invalid {
            assert!(!CloseCode(c).is_sendable(), "{c} should be invalid");
            assert_eq!(
                CloseFrame::parse(&c.to_be_bytes())
                    .unwrap_err()
                    .close_code(),
                CloseCode::PROTOCOL_ERROR
            );
        }
    }

    #[test]
    fn parse_edge_cases() {
        assert_eq!(CloseFrame::parse(&[]).unwrap(), None);
        assert_eq!(
            CloseFrame::parse(&[0x03]).unwrap_err().close_code(),
            CloseCode::PROTOCOL_ERROR
        );
        assert_eq!(
            CloseFrame::parse(&[0x03, 0xe8, 0xff])
                .unwrap_err()
                .close_code(),
            CloseCode::INVALID_PAYLOAD
        );
        assert_eq!(
            CloseFrame::parse(&[0x0f, 0xa1, b'b', b'y', b'e']).unwrap(),
            Some(CloseFrame::new(CloseCode(4001), "bye"))
        );
    }

    #[test]
    fn encode_truncates_reason_on_char_boundary() {
        let f = CloseFrame::new(CloseCode::NORMAL, "é".repeat(100));
        let b = f.encode();
        assert!(b.len() <= 125);
        assert!(CloseFrame::parse(&b).unwrap().is_some());
    }

    #[test]
    fn display_names_private_codes() {
        assert_eq!(CloseCode(4001).to_string(), "4001 (application)");
        assert_eq!(CloseCode::NORMAL.to_string(), "1000 (normal closure)");
    }
}
