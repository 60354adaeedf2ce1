//! The opening handshake (RFC 6455 §4): the server's request parser and
//! response builder, the client's request builder and response checker.

mod client;
mod origin;
mod server;

pub use client::{ClientHandshake, ClientHandshakeError, ClientRequest, Handshaken, Rejection};
pub use origin::{OriginPatternError, OriginPolicy};
pub use server::{
    is_stripped_upgrade, is_upgrade_request, Accept, HandshakeError, HandshakeErrorKind,
    ParsedRequest, ServerHandshake, Upgrade, STRIPPED_UPGRADE_BODY,
};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sha1::{Digest, Sha1};

/// RFC 6455 §1.3: the GUID appended to the key.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Default cap on the bytes of a request or response head (431 past it).
pub const DEFAULT_MAX_HANDSHAKE_BYTES: usize = 8 * 1024;
/// Most header lines accepted in a handshake head.
pub const MAX_HEADERS: usize = 64;

/// The nginx lines that pass WebSocket upgrades on to the server behind it,
/// for the `location` that proxies there. `Upgrade` and `Connection` are
/// hop-by-hop headers, which nginx (like most proxies) does not forward
/// unless told to; without them the server sees a plain HTTP GET.
pub const NGINX_UPGRADE_LINES: [&str; 3] = [
    "proxy_http_version 1.1;",
    "proxy_set_header Upgrade $http_upgrade;",
    "proxy_set_header Connection \"upgrade\";",
];

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455 §4.2.2).
///
/// ```
/// assert_eq!(
///     wsx_proto::handshake::accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
///     "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
/// );
/// ```
pub fn accept_key(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(GUID);
    BASE64.encode(sha.finalize())
}

/// Whether a comma-separated header value list contains `token`
/// (case-insensitive), e.g. `Connection: keep-alive, Upgrade`.
pub(crate) fn has_token<'a>(mut values: impl Iterator<Item = &'a [u8]>, token: &str) -> bool {
    values.any(|v| {
        v.split(|&b| b == b',')
            .any(|t| trim(t).eq_ignore_ascii_case(token.as_bytes()))
    })
}

pub(crate) fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end.max(start)]
}

/// One extension offered or accepted in `Sec-WebSocket-Extensions`
/// (RFC 6455 §9.1), e.g. `permessage-deflate; client_max_window_bits`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionOffer {
    /// The extension token.
    pub name: String,
    /// Parameters in order; a value is `None` for a bare parameter. Quoted
    /// values are unquoted.
    pub params: Vec<(String, Option<String>)>,
}

/// A malformed `Sec-WebSocket-Extensions` header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed Sec-WebSocket-Extensions header: {0}")]
pub struct ExtensionParseError(&'static str);

fn is_tchar(c: u8) -> bool {
    // RFC 7230 §3.2.6 token characters.
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// Parses a `Sec-WebSocket-Extensions` value (RFC 6455 §9.1): a comma list of
/// extensions, each with `;`-separated parameters whose values are tokens or
/// quoted strings.
///
/// ```
/// use wsx_proto::handshake::parse_extensions;
/// let offers = parse_extensions(
///     "permessage-deflate; client_max_window_bits, permessage-deflate; server_max_window_bits=\"10\"",
/// ).unwrap();
/// assert_eq!(offers.len(), 2);
/// assert_eq!(offers[1].params[0], ("server_max_window_bits".into(), Some("10".into())));
/// ```
pub fn parse_extensions(value: &str) -> Result<Vec<ExtensionOffer>, ExtensionParseError> {
    let b = value.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t') {
            *i += 1;
        }
    };
    let token = |i: &mut usize| -> Option<String> {
        let s = *i;
        while *i < b.len() && is_tchar(b[*i]) {
            *i += 1;
        }
        (*i > s).then(|| value[s..*i].to_string())
    };
    loop {
        skip_ws(&mut i);
        if i == b.len() {
            break;
        }
        if b[i] == b',' {
            // Empty list elements are allowed (RFC 7230 §7).
            i += 1;
            continue;
        }
        let name = token(&mut i).ok_or(ExtensionParseError("expected an extension name"))?;
        let mut params = Vec::new();
        loop {
            skip_ws(&mut i);
            if i == b.len() || b[i] == b',' {
                break;
            }
            if b[i] != b';' {
                return Err(ExtensionParseError("expected ';' or ','"));
            }
            i += 1;
            skip_ws(&mut i);
            let pname = token(&mut i).ok_or(ExtensionParseError("expected a parameter name"))?;
            skip_ws(&mut i);
            let mut pval = None;
            if i < b.len() && b[i] == b'=' {
                i += 1;
                skip_ws(&mut i);
                if i < b.len() && b[i] == b'"' {
                    i += 1;
                    let mut v = String::new();
                    loop {
                        match b.get(i) {
                            None => return Err(ExtensionParseError("unterminated quoted string")),
                            Some(b'"') => {
                                i += 1;
                                break;
                            }
                            Some(b'\\') if i + 1 < b.len() => {
                                v.push(b[i + 1] as char);
                                i += 2;
                            }
                            Some(&c) => {
                                v.push(c as char);
                                i += 1;
                            }
                        }
                    }
                    // RFC 6455 §9.1: a quoted value must still be a token.
                    if v.is_empty() || !v.bytes().all(is_tchar) {
                        return Err(ExtensionParseError("quoted parameter value is not a token"));
                    }
                    pval = Some(v);
                } else {
                    pval = Some(
                        token(&mut i).ok_or(ExtensionParseError("expected a parameter value"))?,
                    );
                }
            }
            params.push((pname, pval));
        }
        out.push(ExtensionOffer { name, params });
    }
    Ok(out)
}

/// Splits comma-separated tokens (e.g. `Sec-WebSocket-Protocol`), skipping empties.
pub(crate) fn split_tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim)
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_accept_key_example() {
        // RFC 6455 §1.3.
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn extension_header_table() {
        let ok: &[(&str, usize)] = &[
            ("", 0),
            ("permessage-deflate", 1),
            ("permessage-deflate; client_max_window_bits", 1),
            ("a, b; x=1; y=\"2\", c", 3),
            (" , foo ,, bar ", 2),
            ("foo; bar = \"baz\"", 1),
        ];
        for (input, n) in ok {
            assert_eq!(parse_extensions(input).unwrap().len(), *n, "{input}");
        }
        for bad in [
            "foo; =1",
            "foo; x=\"unterminated",
            "foo bar",
            "foo; x=\"has space\"",
            "foo; x=",
            ";x",
        ] {
            assert!(parse_extensions(bad).is_err(), "{bad}");
        }
        let e = parse_extensions("foo; bar = \"baz\"").unwrap();
        assert_eq!(e[0].params, vec![("bar".into(), Some("baz".into()))]);
    }

    #[test]
    fn connection_token_lists() {
        let v: Vec<&[u8]> = vec![b"keep-alive, Upgrade"];
        assert!(has_token(v.into_iter(), "upgrade"));
        let v: Vec<&[u8]> = vec![b"keep-alive", b"UPGRADE"];
        assert!(has_token(v.into_iter(), "upgrade"));
        let v: Vec<&[u8]> = vec![b"upgraded"];
        assert!(!has_token(v.into_iter(), "upgrade"));
    }
}
