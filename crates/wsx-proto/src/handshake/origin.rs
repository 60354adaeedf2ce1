//! Origin checks against cross-site WebSocket hijacking.
//!
//! Browsers let any page open a WebSocket to any server and attach that
//! server's cookies; only the `Origin` header says which site is asking. A
//! server that authenticates by cookie and ignores `Origin` lets every site
//! its users visit act as them. So, by default, a browser may connect only
//! from the server's own origin (as gorilla/websocket does); other sites
//! must be allowlisted.

use super::server::{HandshakeError, HandshakeErrorKind, Upgrade};
use http::header;

/// Which `Origin`s may open a WebSocket.
///
/// - No `Origin` header (not a browser: curl, a backend, a CLI): allowed.
///   Origin checks protect browsers' users; other clients can send any
///   header they like, so authenticate them by other means.
/// - `Origin` whose host and port equal the `Host` header's: allowed.
/// - `Origin` matching an allowlisted pattern: allowed.
/// - Anything else (including the opaque `null` origin, unless allowlisted):
///   refused with 403 and a body that names the origin and the fix.
///
/// ```
/// use wsx_proto::handshake::OriginPolicy;
/// let policy = OriginPolicy::same_origin()
///     .allow("https://app.example.com").unwrap()
///     .allow("https://*.example.org").unwrap();
/// assert!(policy.check(Some("https://app.example.com"), Some("api.example.com")).is_ok());
/// assert!(policy.check(Some("https://eu.example.org"), Some("api.example.com")).is_ok());
/// assert!(policy.check(Some("https://api.example.com"), Some("api.example.com")).is_ok());
/// let refused = policy.check(Some("https://evil.test"), Some("api.example.com")).unwrap_err();
/// assert_eq!(refused.status(), 403);
/// assert!(policy.check(None, Some("api.example.com")).is_ok());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OriginPolicy {
    any: bool,
    allowed: Vec<Pattern>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    scheme: String,
    /// `*.host`: any subdomain of `host`, not `host` itself.
    wildcard: bool,
    host: String,
    port: u16,
}

/// An allowlist pattern that is not `scheme://host[:port]` or
/// `scheme://*.domain[:port]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("origin pattern {pattern:?}: {why} (expected scheme://host[:port] or scheme://*.domain[:port], e.g. https://example.com or https://*.example.com)")]
pub struct OriginPatternError {
    pattern: String,
    why: &'static str,
}

/// An origin split into scheme, host and port (the scheme's default port
/// when none is written).
fn parse_origin(s: &str) -> Option<(String, String, u16)> {
    let s = s.trim().trim_end_matches('/').to_ascii_lowercase();
    let (scheme, rest) = s.split_once("://")?;
    if scheme.is_empty() || rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
        return None;
    }
    let (host, port) = split_port(rest, default_port(scheme))?;
    Some((scheme.to_string(), host, port))
}

fn default_port(scheme: &str) -> u16 {
    match scheme {
        "https" | "wss" => 443,
        _ => 80,
    }
}

/// `host[:port]` (with `[v6]` literals) into host and port.
fn split_port(authority: &str, default: u16) -> Option<(String, u16)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default,
            None => return None,
        };
        (format!("[{v6}]"), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().ok()?),
            None => (authority.to_string(), default),
        }
    };
    if host.is_empty() {
        return None;
    }
    Some((host, port))
}

impl OriginPolicy {
    /// Browsers only from the server's own origin (the default).
    pub fn same_origin() -> Self {
        OriginPolicy::default()
    }

    /// Any origin: turns off the protection against cross-site WebSocket
    /// hijacking. Only for servers that do not authenticate by cookie or
    /// HTTP auth (public data), or that check every connection themselves.
    pub fn allow_any() -> Self {
        OriginPolicy {
            any: true,
            allowed: Vec::new(),
        }
    }

    /// Also allows origins matching `pattern`: `https://example.com`,
    /// `http://localhost:3000`, or `https://*.example.com` (subdomains of
    /// example.com, not example.com itself). `null` allows the opaque
    /// origin of sandboxed frames and `file:` pages.
    ///
    /// # Errors
    /// A pattern that is not of those forms.
    pub fn allow(mut self, pattern: &str) -> Result<Self, OriginPatternError> {
        let err = |why| OriginPatternError {
            pattern: pattern.to_string(),
            why,
        };
        if pattern.trim() == "*" {
            return Err(err(
                "\"*\" is not a pattern; use allow_any to accept every origin",
            ));
        }
        if pattern.trim().eq_ignore_ascii_case("null") {
            self.allowed.push(Pattern {
                scheme: String::new(),
                wildcard: false,
                host: "null".into(),
                port: 0,
            });
            return Ok(self);
        }
        let (scheme, host, port) =
            parse_origin(pattern).ok_or_else(|| err("not scheme://host[:port]"))?;
        let (wildcard, host) = match host.strip_prefix("*.") {
            Some(domain) if !domain.is_empty() && !domain.contains('*') => {
                (true, domain.to_string())
            }
            Some(_) => return Err(err("a wildcard needs a domain after \"*.\"")),
            None if host.contains('*') => {
                return Err(err(
                    "\"*\" is only allowed as the first label (\"*.example.com\")",
                ))
            }
            None => (false, host),
        };
        self.allowed.push(Pattern {
            scheme,
            wildcard,
            host,
            port,
        });
        Ok(self)
    }

    /// Whether every origin is allowed.
    pub fn is_allow_any(&self) -> bool {
        self.any
    }

    /// Checks an `Origin` header value against the policy, given the
    /// request's `Host` header.
    ///
    /// # Errors
    /// A 403 [`HandshakeError`] whose body names the origin and the fix.
    pub fn check(&self, origin: Option<&str>, host: Option<&str>) -> Result<(), HandshakeError> {
        let Some(origin) = origin else {
            return Ok(());
        };
        if self.any || self.allows(origin, host) {
            return Ok(());
        }
        Err(HandshakeError::new(HandshakeErrorKind::OriginNotAllowed(
            origin.to_string(),
        )))
    }

    /// [`OriginPolicy::check`] on an upgrade request's headers.
    ///
    /// # Errors
    /// As [`OriginPolicy::check`].
    pub fn check_upgrade(&self, upgrade: &Upgrade) -> Result<(), HandshakeError> {
        let host = upgrade
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok());
        // An Origin that is not visible ASCII is not a valid origin: refuse.
        match upgrade.headers().get(header::ORIGIN) {
            None => Ok(()),
            Some(v) => match v.to_str() {
                Ok(origin) => self.check(Some(origin), host),
                Err(_) if self.any => Ok(()),
                Err(_) => Err(HandshakeError::new(HandshakeErrorKind::OriginNotAllowed(
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                ))),
            },
        }
    }

    fn allows(&self, origin: &str, host: Option<&str>) -> bool {
        if origin.trim().eq_ignore_ascii_case("null") {
            return self.allowed.iter().any(|p| p.host == "null" && p.port == 0);
        }
        let Some((scheme, o_host, o_port)) = parse_origin(origin) else {
            return false;
        };
        let same = host
            .and_then(|h| split_port(&h.trim().to_ascii_lowercase(), default_port(&scheme)))
            .is_some_and(|(h, p)| h == o_host && p == o_port);
        same || self.allowed.iter().any(|p| {
            p.scheme == scheme
                && p.port == o_port
                && if p.wildcard {
                    o_host
                        .strip_suffix(p.host.as_str())
                        .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.'))
                } else {
                    p.host == o_host
                }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(policy: &OriginPolicy, origin: &str, host: &str) -> bool {
        policy.check(Some(origin), Some(host)).is_ok()
    }

    #[test]
    fn same_origin_compares_host_and_port_with_default_ports() {
        let p = OriginPolicy::same_origin();
        assert!(allowed(&p, "https://example.com", "example.com"));
        assert!(allowed(&p, "https://example.com", "example.com:443"));
        assert!(allowed(&p, "http://Example.COM:8080", "example.com:8080"));
        assert!(allowed(&p, "http://[::1]:9001", "[::1]:9001"));
        assert!(!allowed(&p, "http://example.com", "example.com:8080"));
        assert!(!allowed(&p, "https://example.com", "example.com:80"));
        assert!(!allowed(&p, "https://evil.com", "example.com"));
        assert!(!allowed(&p, "https://example.com.evil.com", "example.com"));
        assert!(!allowed(&p, "null", "example.com"));
        assert!(!allowed(&p, "not an origin", "example.com"));
        assert!(p.check(Some("https://example.com"), None).is_err());
        assert!(p.check(None, Some("example.com")).is_ok());
    }

    #[test]
    fn allowlist_exact_and_wildcard() {
        let p = OriginPolicy::same_origin()
            .allow("https://app.example.com")
            .unwrap()
            .allow("https://*.example.org:8443")
            .unwrap()
            .allow("null")
            .unwrap();
        assert!(allowed(&p, "https://app.example.com", "api.test"));
        assert!(allowed(&p, "https://app.example.com/", "api.test"));
        assert!(!allowed(&p, "http://app.example.com", "api.test"));
        assert!(!allowed(&p, "https://app.example.com:444", "api.test"));
        assert!(allowed(&p, "https://a.b.example.org:8443", "api.test"));
        assert!(!allowed(&p, "https://example.org:8443", "api.test"));
        assert!(!allowed(&p, "https://badexample.org:8443", "api.test"));
        assert!(!allowed(&p, "https://a.example.org", "api.test"));
        assert!(allowed(&p, "null", "api.test"));
    }

    #[test]
    fn bad_patterns_are_refused_with_the_reason() {
        for bad in [
            "*",
            "example.com",
            "https://",
            "https://*.",
            "https://a.*.com",
            "https://x/y",
        ] {
            let e = OriginPolicy::same_origin().allow(bad).unwrap_err();
            assert!(e.to_string().contains("expected scheme://host"), "{e}");
        }
    }

    #[test]
    fn allow_any_allows_everything() {
        let p = OriginPolicy::allow_any();
        assert!(allowed(&p, "https://evil.com", "example.com"));
        assert!(allowed(&p, "null", "example.com"));
    }

    #[test]
    fn refusal_is_403_naming_the_origin() {
        let e = OriginPolicy::same_origin()
            .check(Some("https://evil.com"), Some("example.com"))
            .unwrap_err();
        assert_eq!(e.status(), http::StatusCode::FORBIDDEN);
        let response = String::from_utf8(e.response()).unwrap();
        assert!(response.starts_with("HTTP/1.1 403"), "{response}");
        assert!(response.contains("https://evil.com"), "{response}");
        assert!(response.contains("cross-site"), "{response}");
    }
}
