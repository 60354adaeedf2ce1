//! Client proxies: HTTP CONNECT (with basic auth) and SOCKS5, from
//! configuration or from the usual environment variables.

use crate::error::{Error, Result};
use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A proxy to reach WebSocket servers through.
///
/// ```
/// let p = wsx::client::Proxy::parse("http://user:secret@proxy.corp:3128").unwrap();
/// assert_eq!(p.to_string(), "http://proxy.corp:3128");
/// let s = wsx::client::Proxy::parse("socks5://127.0.0.1:1080").unwrap();
/// assert!(matches!(s.kind(), wsx::client::ProxyKind::Socks5));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    kind: ProxyKind,
    host: String,
    port: u16,
    auth: Option<(String, String)>,
}

/// The proxy protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    /// HTTP CONNECT (`http://`), as corporate proxies speak.
    HttpConnect,
    /// SOCKS5 (`socks5://`, `socks5h://`), names resolved by the proxy.
    Socks5,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print credentials.
        write!(f, "Proxy({self})")
    }
}

impl std::fmt::Display for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = match self.kind {
            ProxyKind::HttpConnect => "http",
            ProxyKind::Socks5 => "socks5",
        };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
    }
}

/// Why a proxy did not open the tunnel: which proxy, and what it answered
/// (an HTTP status, a SOCKS5 reply code) or why it was not reached (the I/O
/// error, returned from `source()`). [`Error::proxy_error`] gives it.
#[derive(Debug)]
pub struct ProxyError {
    /// `scheme://host:port`, never with credentials.
    proxy: String,
    kind: ProxyErrorKind,
}

/// What went wrong with a proxy.
#[derive(Debug)]
#[non_exhaustive]
pub enum ProxyErrorKind {
    /// The proxy URL is unusable (another scheme, a bad port, no host):
    /// why, in words.
    InvalidUrl(String),
    /// The proxy could not be reached (it is also `source()`).
    Connect(std::io::Error),
    /// The HTTP proxy answered `CONNECT` with a status other than 200.
    HttpStatus {
        /// The `host:port` asked for.
        target: String,
        /// The status, e.g. 403, or 407 when it wants credentials.
        status: u16,
        /// The reason phrase it sent.
        reason: String,
        /// Whether credentials were sent (then a 407 refused them).
        credentials_sent: bool,
    },
    /// The SOCKS5 proxy wants a user name and password (RFC 1929): none
    /// were given, or it refused them.
    Socks5Auth {
        /// Whether credentials were sent (then it refused them).
        credentials_sent: bool,
    },
    /// The SOCKS5 proxy could not connect to the target: its reply code
    /// (RFC 1928 §6: 2 not allowed, 3 network unreachable, 4 host
    /// unreachable, 5 connection refused, 6 TTL expired, ...).
    Socks5Reply {
        /// The `host:port` asked for.
        target: String,
        /// The reply code, never 0.
        code: u8,
    },
    /// The proxy's answer breaks its protocol, or the request cannot be put
    /// in it (a host name too long for SOCKS5): in words.
    Protocol(String),
}

impl ProxyError {
    pub(crate) fn new(proxy: impl Into<String>, kind: ProxyErrorKind) -> Self {
        ProxyError {
            proxy: proxy.into(),
            kind,
        }
    }

    /// The proxy, as `scheme://host:port` (or the URL as given, without
    /// credentials, when it did not parse).
    pub fn proxy(&self) -> &str {
        &self.proxy
    }

    /// What went wrong.
    pub fn kind(&self) -> &ProxyErrorKind {
        &self.kind
    }
}

impl std::fmt::Display for ProxyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let proxy = &self.proxy;
        match &self.kind {
            ProxyErrorKind::InvalidUrl(why) => write!(f, "proxy URL {proxy}: {why}"),
            // The I/O error is the source: not printed here.
            ProxyErrorKind::Connect(_) => write!(f, "cannot connect to the proxy {proxy}"),
            ProxyErrorKind::HttpStatus {
                status: 407,
                credentials_sent,
                ..
            } => write!(
                f,
                "{proxy} requires authentication (407): {}",
                if *credentials_sent {
                    "the credentials were refused"
                } else {
                    "none were given (they go in the proxy URL: user:pass@)"
                }
            ),
            ProxyErrorKind::HttpStatus {
                target,
                status,
                reason,
                ..
            } => write!(f, "{proxy} refused CONNECT {target}: {status} {reason}"),
            ProxyErrorKind::Socks5Auth {
                credentials_sent: true,
            } => write!(f, "{proxy} refused the user name and password"),
            ProxyErrorKind::Socks5Auth {
                credentials_sent: false,
            } => write!(
                f,
                "{proxy} requires authentication with a user name and password; none were given (they go in the proxy URL: user:pass@)"
            ),
            ProxyErrorKind::Socks5Reply { target, code } => {
                let why = match code {
                    0x02 => "not allowed by its rules",
                    0x03 => "network unreachable",
                    0x04 => "host unreachable",
                    0x05 => "connection refused by the destination",
                    0x06 => "TTL expired",
                    0x07 => "command not supported",
                    0x08 => "address type not supported",
                    _ => "general failure",
                };
                write!(
                    f,
                    "{proxy} could not connect to {target}: {why} (SOCKS5 reply {code})"
                )
            }
            ProxyErrorKind::Protocol(what) => write!(f, "{proxy}: {what}"),
        }
    }
}

impl std::error::Error for ProxyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ProxyErrorKind::Connect(e) => Some(e),
            ProxyErrorKind::InvalidUrl(_)
            | ProxyErrorKind::HttpStatus { .. }
            | ProxyErrorKind::Socks5Auth { .. }
            | ProxyErrorKind::Socks5Reply { .. }
            | ProxyErrorKind::Protocol(_) => None,
        }
    }
}

/// A proxy URL as given, without `user:pass@`, for messages.
fn without_credentials(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (format!("{s}://"), r),
        None => (String::new(), url),
    };
    let rest = match rest.rsplit_once('@') {
        Some((_, hostport)) => hostport,
        None => rest,
    };
    format!("{scheme}{rest}")
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Proxy {
    /// Parses `http://[user:pass@]host:port` or `socks5://[user:pass@]host:port`
    /// (a bare `host:port` is HTTP; default ports 3128 and 1080).
    ///
    /// # Errors
    /// Another scheme, or no host.
    pub fn parse(url: &str) -> Result<Proxy> {
        let invalid = |why: String| {
            Error::from(ProxyError::new(
                without_credentials(url),
                ProxyErrorKind::InvalidUrl(why),
            ))
        };
        let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
        let kind = match scheme.to_ascii_lowercase().as_str() {
            "http" => ProxyKind::HttpConnect,
            "socks5" | "socks5h" => ProxyKind::Socks5,
            "https" => {
                return Err(invalid(
                    "TLS to the proxy itself is not supported; use http:// (the tunnel still carries wss:// end to end)".into(),
                ))
            }
            other => {
                return Err(invalid(format!(
                    "unsupported proxy scheme {other:?} (use http:// or socks5://)"
                )))
            }
        };
        let rest = rest.trim_end_matches('/');
        let (auth, hostport) = match rest.rsplit_once('@') {
            Some((userinfo, hp)) => {
                let (u, p) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                (Some((percent_decode(u), percent_decode(p))), hp)
            }
            None => (None, rest),
        };
        let default_port = match kind {
            ProxyKind::HttpConnect => 3128,
            ProxyKind::Socks5 => 1080,
        };
        let bad_port = |p: &str| invalid(format!("bad proxy port {p:?}"));
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| invalid("unclosed '[' in the proxy host".into()))?;
            match after.strip_prefix(':') {
                Some(p) => (h, p.parse().map_err(|_| bad_port(p))?),
                None if after.is_empty() => (h, default_port),
                None => return Err(bad_port(after)),
            }
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, p.parse().map_err(|_| bad_port(p))?),
                None => (hostport, default_port),
            }
        };
        if host.is_empty() {
            return Err(invalid("no proxy host".into()));
        }
        Ok(Proxy {
            kind,
            host: host.to_string(),
            port,
            auth,
        })
    }

    /// The protocol.
    pub fn kind(&self) -> ProxyKind {
        self.kind
    }

    /// The proxy for a `ws://` / `wss://` URL to `host`, from the
    /// environment: `HTTPS_PROXY` (wss) or `HTTP_PROXY` (ws), then
    /// `ALL_PROXY` (lower-case names too), unless `NO_PROXY` matches the host
    /// (`*`, exact names, `.suffix` or `suffix` for subdomains).
    ///
    /// # Errors
    /// A variable that does not parse as a proxy URL.
    pub fn from_env(secure: bool, host: &str) -> Result<Option<Proxy>> {
        Self::from_vars(secure, host, |name| std::env::var(name).ok())
    }

    /// [`Proxy::from_env`] with the variables from `var` (for tests).
    ///
    /// # Errors
    /// As [`Proxy::from_env`].
    pub fn from_vars(
        secure: bool,
        host: &str,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Proxy>> {
        let get = |name: &str| {
            var(name)
                .or_else(|| var(&name.to_ascii_lowercase()))
                .filter(|v| !v.trim().is_empty())
        };
        if let Some(no) = get("NO_PROXY") {
            if no_proxy_matches(&no, host) {
                return Ok(None);
            }
        }
        let primary = if secure { "HTTPS_PROXY" } else { "HTTP_PROXY" };
        match get(primary).or_else(|| get("ALL_PROXY")) {
            Some(url) => Proxy::parse(&url).map(Some),
            None => Ok(None),
        }
    }

    /// Opens a TCP tunnel to `host:port` through the proxy (names are
    /// resolved by the proxy).
    ///
    /// # Errors
    /// The proxy cannot be reached, wants credentials, or refuses.
    pub async fn tunnel(&self, host: &str, port: u16) -> Result<TcpStream> {
        let mut tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| self.error(ProxyErrorKind::Connect(e)))?;
        let _ = tcp.set_nodelay(true);
        match self.kind {
            ProxyKind::HttpConnect => self.http_connect(&mut tcp, host, port).await?,
            ProxyKind::Socks5 => self.socks5(&mut tcp, host, port).await?,
        }
        Ok(tcp)
    }

    fn error(&self, kind: ProxyErrorKind) -> Error {
        Error::from(ProxyError::new(self.to_string(), kind))
    }

    fn protocol_error(&self, what: impl Into<String>) -> Error {
        self.error(ProxyErrorKind::Protocol(what.into()))
    }

    async fn http_connect(&self, tcp: &mut TcpStream, host: &str, port: u16) -> Result<()> {
        let target = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let mut req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
        if let Some((u, p)) = &self.auth {
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            req.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
        }
        req.push_str("\r\n");
        tcp.write_all(req.as_bytes()).await?;
        // Read the response head byte by byte: nothing past it may be
        // consumed (the tunnel's first bytes belong to TLS or WebSocket).
        let mut head = Vec::with_capacity(256);
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if head.len() > 16 * 1024 {
                return Err(self.protocol_error("response head over 16 KiB"));
            }
            if tcp.read(&mut byte).await? == 0 {
                return Err(
                    self.protocol_error(format!("closed the connection during CONNECT {target}"))
                );
            }
            head.push(byte[0]);
        }
        let text = String::from_utf8_lossy(&head);
        let status_line = text.lines().next().unwrap_or("");
        let mut parts = status_line.splitn(3, ' ');
        let _version = parts.next();
        let Some(status) = parts.next().and_then(|c| c.trim().parse::<u16>().ok()) else {
            return Err(
                self.protocol_error(format!("not an HTTP answer to CONNECT: {status_line:?}"))
            );
        };
        if status == 200 {
            return Ok(());
        }
        Err(self.error(ProxyErrorKind::HttpStatus {
            target,
            status,
            reason: parts.next().unwrap_or("").trim().to_string(),
            credentials_sent: self.auth.is_some(),
        }))
    }

    async fn socks5(&self, tcp: &mut TcpStream, host: &str, port: u16) -> Result<()> {
        let methods: &[u8] = if self.auth.is_some() {
            &[0x00, 0x02]
        } else {
            &[0x00]
        };
        let mut hello = vec![0x05, methods.len() as u8];
        hello.extend_from_slice(methods);
        tcp.write_all(&hello).await?;
        let mut reply = [0u8; 2];
        tcp.read_exact(&mut reply).await?;
        match reply {
            [0x05, 0x00] => {}
            [0x05, 0x02] => {
                let (u, p) = self.auth.as_ref().ok_or_else(|| {
                    self.error(ProxyErrorKind::Socks5Auth {
                        credentials_sent: false,
                    })
                })?;
                if u.len() > 255 || p.len() > 255 {
                    return Err(
                        self.protocol_error("SOCKS5 user name and password are at most 255 bytes")
                    );
                }
                let mut m = vec![0x01, u.len() as u8];
                m.extend_from_slice(u.as_bytes());
                m.push(p.len() as u8);
                m.extend_from_slice(p.as_bytes());
                tcp.write_all(&m).await?;
                let mut r = [0u8; 2];
                tcp.read_exact(&mut r).await?;
                if r[1] != 0 {
                    return Err(self.error(ProxyErrorKind::Socks5Auth {
                        credentials_sent: true,
                    }));
                }
            }
            // No acceptable method: without credentials we offered only
            // "none", so it wants some; with them, it wants another kind.
            [0x05, 0xff] if self.auth.is_none() => {
                return Err(self.error(ProxyErrorKind::Socks5Auth {
                    credentials_sent: false,
                }))
            }
            [0x05, 0xff] => {
                return Err(self.protocol_error(
                    "accepts neither no authentication nor a user name and password",
                ))
            }
            _ => return Err(self.protocol_error("does not speak SOCKS5")),
        }
        let mut req = vec![0x05, 0x01, 0x00];
        match host.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(ip)) => {
                req.push(0x01);
                req.extend_from_slice(&ip.octets());
            }
            Ok(std::net::IpAddr::V6(ip)) => {
                req.push(0x04);
                req.extend_from_slice(&ip.octets());
            }
            Err(_) => {
                if host.len() > 255 {
                    return Err(
                        self.protocol_error(format!("host name too long for SOCKS5: {host}"))
                    );
                }
                req.push(0x03);
                req.push(host.len() as u8);
                req.extend_from_slice(host.as_bytes());
            }
        }
        req.extend_from_slice(&port.to_be_bytes());
        tcp.write_all(&req).await?;
        let mut r = [0u8; 4];
        tcp.read_exact(&mut r).await?;
        if r[1] != 0 {
            let target = if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            };
            return Err(self.error(ProxyErrorKind::Socks5Reply { target, code: r[1] }));
        }
        // Skip the bound address.
        let skip = match r[3] {
            0x01 => 4,
            0x04 => 16,
            0x03 => {
                let mut l = [0u8; 1];
                tcp.read_exact(&mut l).await?;
                usize::from(l[0])
            }
            _ => return Err(self.protocol_error("malformed SOCKS5 reply")),
        } + 2;
        let mut rest = vec![0u8; skip];
        tcp.read_exact(&mut rest).await?;
        Ok(())
    }
}

/// Whether `NO_PROXY` (comma-separated) covers `host`.
fn no_proxy_matches(list: &str, host: &str) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    list.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| {
            let entry = entry.to_ascii_lowercase();
            // Ports in entries are ignored.
            let entry = match entry.rsplit_once(':') {
                Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) && !h.contains(':') => {
                    h.to_string()
                }
                _ => entry,
            };
            if entry == "*" {
                return true;
            }
            let suffix = entry.trim_start_matches('*').trim_start_matches('.');
            host == suffix || host.ends_with(&format!(".{suffix}"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_urls() {
        let p = Proxy::parse("http://u%40x:p%3Aw@proxy:8080/").unwrap();
        assert_eq!(
            (p.kind, p.host.as_str(), p.port),
            (ProxyKind::HttpConnect, "proxy", 8080)
        );
        assert_eq!(p.auth, Some(("u@x".into(), "p:w".into())));
        assert_eq!(
            format!("{p:?}"),
            "Proxy(http://proxy:8080)",
            "no credentials printed"
        );
        assert_eq!(Proxy::parse("proxy.corp").unwrap().port, 3128);
        assert_eq!(Proxy::parse("socks5h://[::1]").unwrap().host, "::1");
        assert_eq!(Proxy::parse("socks5://[::1]:9050").unwrap().port, 9050);
        assert!(Proxy::parse("ftp://x").is_err());
        assert!(Proxy::parse("https://x").is_err());
        assert!(Proxy::parse("http://:80").is_err());
    }

    #[test]
    fn environment_and_no_proxy() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let vars = env(&[
            ("HTTPS_PROXY", "http://secure:3128"),
            ("http_proxy", "http://plain:3128"),
            ("NO_PROXY", "localhost, .internal.corp,example.org:443"),
        ]);
        let pick = |secure, host| {
            Proxy::from_vars(secure, host, vars)
                .unwrap()
                .map(|p| p.host)
        };
        assert_eq!(pick(true, "ws.example.com").as_deref(), Some("secure"));
        assert_eq!(pick(false, "ws.example.com").as_deref(), Some("plain"));
        assert_eq!(pick(true, "localhost"), None);
        assert_eq!(pick(true, "a.internal.corp"), None);
        assert_eq!(pick(true, "internal.corp"), None);
        assert_eq!(pick(true, "example.org"), None);
        assert_eq!(pick(true, "sub.example.org"), None);
        assert_eq!(pick(true, "notexample.org").as_deref(), Some("secure"));
        let all = env(&[("ALL_PROXY", "socks5://s:1080"), ("no_proxy", "*")]);
        assert_eq!(Proxy::from_vars(true, "x", all).unwrap(), None);
        let all = env(&[("all_proxy", "socks5://s:1080")]);
        assert_eq!(
            Proxy::from_vars(false, "x", all).unwrap().map(|p| p.kind),
            Some(ProxyKind::Socks5)
        );
        assert_eq!(Proxy::from_vars(false, "x", env(&[])).unwrap(), None);
    }
}
