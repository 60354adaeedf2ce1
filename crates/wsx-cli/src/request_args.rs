//! The request options `connect`, `probe` and `bench` share, flattened into
//! each one's arguments, and the one parser that turns them into a request.
//!
//! Everything here is independent of the URL: extra headers, Origin,
//! subprotocols, Basic authentication, TLS trust and client certificate,
//! the proxy. What a subcommand does with the request stays with it
//! (`probe` writes the headers into the request bytes itself, as typed).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use wsx::client::{ClientConfig, ClientRequest};

/// Request options shared by `connect`, `probe` and `bench`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RequestArgs {
    /// Extra request header, 'Name: value' (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// The Origin header (servers that check it refuse other origins with 403).
    #[arg(long, value_name = "ORIGIN")]
    pub origin: Option<String>,
    /// Offer a subprotocol (repeatable, in order of preference).
    #[arg(long = "subprotocol", value_name = "NAME")]
    pub subprotocols: Vec<String>,
    /// Basic authentication (replaces credentials in the URL).
    #[arg(long, value_name = "USER:PASS")]
    pub auth: Option<String>,
    /// Trust this CA (PEM) for wss://, besides the system and bundled roots
    /// (e.g. a private CA, or the certificate `wsx serve --tls-self-signed` printed).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Client certificate chain (PEM) for servers that require mutual TLS.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Go through this proxy: http://[user:pass@]host:port (CONNECT) or
    /// socks5://[user:pass@]host:port. Without it, HTTPS_PROXY (wss://),
    /// HTTP_PROXY (ws://) or ALL_PROXY are used unless NO_PROXY covers the host.
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,
    /// DANGEROUS: do not verify the server's certificate (tests against
    /// self-signed servers only; anyone on the path can read and alter traffic).
    #[arg(long, short = 'k')]
    pub insecure: bool,
    /// Open the WebSocket over HTTP/2 (RFC 8441 extended CONNECT) when the
    /// server allows it: wss:// offers h2 in ALPN, ws:// speaks HTTP/2 with
    /// prior knowledge (h2c). Falls back to HTTP/1.1 otherwise, saying why.
    #[arg(long)]
    pub http2: bool,
}

/// Why the options do not make a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// The URL is not a ws:// or wss:// URL.
    Url(String),
    /// A header, `--auth`, a TLS file or the proxy is unusable.
    Usage(String),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Url(e) | RequestError::Usage(e) => f.write_str(e),
        }
    }
}

/// A request with its headers kept apart: what [`request_parts`] returns.
#[derive(Debug)]
pub struct RequestParts {
    /// The URL and the subprotocols (no headers but the URL's credentials).
    pub req: ClientRequest,
    /// The headers from the flags, as typed: names in their case, in order.
    pub headers: Vec<(String, String)>,
    /// The proxy and TLS settings; the rest default.
    pub config: ClientConfig,
}

impl RequestArgs {
    /// The headers from `-H`, then `--origin`, then `--auth`, as typed and
    /// checked: the one parser of these flags.
    ///
    /// # Errors
    /// A `-H` without `Name: value`, a name or value HTTP does not allow,
    /// an `--auth` without a colon.
    pub fn headers(&self) -> Result<Vec<(String, String)>, String> {
        let mut out: Vec<(String, String)> = Vec::new();
        for h in &self.headers {
            match h.split_once(':') {
                Some((n, v)) if !n.trim().is_empty() => out.push((n.trim().into(), v.trim().into())),
                _ => {
                    return Err(format!(
                        "invalid header {h:?}: expected 'Name: value', e.g. -H 'Authorization: Bearer TOKEN'"
                    ))
                }
            }
        }
        if let Some(origin) = &self.origin {
            out.push(("Origin".into(), origin.clone()));
        }
        if let Some(auth) = &self.auth {
            if !auth.contains(':') {
                return Err(format!(
                    "--auth {auth:?}: expected USER:PASS (an empty password is USER:)"
                ));
            }
            out.push((
                "Authorization".into(),
                format!("Basic {}", STANDARD.encode(auth)),
            ));
        }
        for (name, value) in &out {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err()
                || http::HeaderValue::from_str(value).is_err()
            {
                return Err(format!(
                    "invalid header {name:?}: header names are tokens (letters, digits, '-'), values printable text"
                ));
            }
        }
        Ok(out)
    }

    /// TLS client settings from `--ca`, `--cert`/`--key` and `--insecure`;
    /// `None` when none is given (system and bundled roots).
    ///
    /// # Errors
    /// An unreadable or unusable PEM file.
    pub fn tls(&self) -> Result<Option<Arc<wsx::tls::rustls::ClientConfig>>, String> {
        if self.ca.is_none() && self.cert.is_none() && !self.insecure {
            return Ok(None);
        }
        let mut opts = wsx::tls::TlsClientOptions {
            danger_accept_invalid_certs: self.insecure,
            ..Default::default()
        };
        if self.insecure {
            eprintln!("wsx: warning: --insecure: the server's certificate is not checked");
        }
        let chain = crate::diagnose::chain;
        if let Some(ca) = &self.ca {
            opts.extra_roots =
                wsx::tls::load_certs(ca).map_err(|e| format!("--ca: {}", chain(&e)))?;
        }
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            let certs = wsx::tls::load_certs(cert).map_err(|e| format!("--cert: {}", chain(&e)))?;
            let key = wsx::tls::load_key(key).map_err(|e| format!("--key: {}", chain(&e)))?;
            opts.client_auth = Some((certs, key));
        }
        opts.build().map(Some).map_err(|e| chain(&e))
    }

    /// The proxy from `--proxy`, else from the environment for this request.
    ///
    /// # Errors
    /// A proxy URL that does not parse.
    pub fn proxy(&self, req: &ClientRequest) -> Result<Option<wsx::client::Proxy>, String> {
        match &self.proxy {
            Some(p) => wsx::client::Proxy::parse(p)
                .map(Some)
                .map_err(|e| format!("--proxy: {e}")),
            None => {
                wsx::client::Proxy::from_env(req.is_secure(), req.host()).map_err(|e| e.to_string())
            }
        }
    }

    /// Whether credentials are given apart from the URL (`--auth`, or an
    /// `Authorization` header), which then replace those in the URL.
    fn explicit_auth(&self, headers: &[(String, String)]) -> bool {
        self.auth.is_some()
            || headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("authorization"))
    }
}

/// The request (URL, subprotocols, headers) and the client settings (TLS,
/// proxy; the rest default) for `url` and the shared options.
///
/// # Errors
/// A bad URL, header, `--auth`, TLS file or proxy, in words.
pub fn build_request(
    url: &str,
    args: &RequestArgs,
) -> Result<(ClientRequest, ClientConfig), String> {
    let RequestParts {
        mut req,
        headers,
        config,
    } = request_parts(url, args).map_err(|e| e.to_string())?;
    for (name, value) in &headers {
        // Checked by `headers()` already.
        req = req.header(name, value).map_err(|e| e.to_string())?;
    }
    Ok((req, config))
}

/// The TLS settings to use for wss://: those from the flags, else the
/// default (system and bundled roots), for a caller that makes the TLS
/// connection itself (`probe`, `bench`).
///
/// # Errors
/// No usable trust roots, in words.
pub fn tls_or_default(
    tls: Option<Arc<wsx::tls::rustls::ClientConfig>>,
) -> Result<Arc<wsx::tls::rustls::ClientConfig>, String> {
    match tls {
        Some(c) => Ok(c),
        None => wsx::tls::TlsClientOptions::default()
            .build()
            .map_err(|e| crate::diagnose::chain(&e)),
    }
}

/// [`build_request`] with the headers left out of the request and returned
/// as typed (names in their case, in order), for a caller that writes them
/// itself; and the URL's errors told apart from the other options'.
///
/// # Errors
/// As [`build_request`].
pub fn request_parts(url: &str, args: &RequestArgs) -> Result<RequestParts, RequestError> {
    let headers = args.headers().map_err(RequestError::Usage)?;
    // Credentials given explicitly replace those in the URL (which the
    // request would otherwise send as a second Authorization header).
    let url = if args.explicit_auth(&headers) {
        strip_userinfo(url)
    } else {
        url.to_string()
    };
    let mut req = ClientRequest::new(&url).map_err(|e| RequestError::Url(e.to_string()))?;
    for p in &args.subprotocols {
        req = req.protocol(p.clone());
    }
    let config = ClientConfig::default()
        .proxy(args.proxy(&req).map_err(RequestError::Usage)?)
        .tls(args.tls().map_err(RequestError::Usage)?)
        .http2(args.http2.then(wsx::http2::Http2Config::default));
    Ok(RequestParts {
        req,
        headers,
        config,
    })
}

/// `ws://user:pass@host/x` → `ws://host/x`.
pub fn strip_userinfo(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    match url[start..end].rfind('@') {
        Some(at) => format!("{}{}", &url[..start], &url[start + at + 1..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        url: String,
        #[command(flatten)]
        request: RequestArgs,
    }

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("wsx").chain(args.iter().copied())).unwrap()
    }

    fn request_text(cli: &Cli) -> String {
        let (req, _) = build_request(&cli.url, &cli.request).unwrap();
        let (_, bytes) = wsx::wsx_proto::handshake::ClientHandshake::new(&req, [7; 16]);
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn flags_become_headers_in_order() {
        let cli = parse(&[
            "ws://u:p@example.com/x",
            "-H",
            "X-One: 1",
            "--header",
            "X-Two:2",
            "--origin",
            "https://app.example",
            "--subprotocol",
            "a",
            "--subprotocol",
            "b",
            "--auth",
            "alice:secret",
        ]);
        assert_eq!(
            cli.request.headers().unwrap(),
            [
                ("X-One", "1"),
                ("X-Two", "2"),
                ("Origin", "https://app.example"),
                ("Authorization", "Basic YWxpY2U6c2VjcmV0"),
            ]
            .map(|(n, v)| (n.to_string(), v.to_string()))
        );
        let text = request_text(&cli);
        assert!(text.contains("Sec-WebSocket-Protocol: a, b\r\n"), "{text}");
        assert!(text.contains("x-one: 1\r\n"), "{text}");
        assert!(text.contains("origin: https://app.example\r\n"), "{text}");
        // --auth replaced the URL's credentials: one Authorization header.
        assert_eq!(text.matches("authorization:").count(), 1, "{text}");
        assert!(
            text.contains("authorization: Basic YWxpY2U6c2VjcmV0\r\n"),
            "{text}"
        );
        // Without --auth, the URL's credentials are sent.
        let text = request_text(&parse(&["ws://u:p@example.com/x"]));
        assert!(text.contains("authorization: Basic dTpw\r\n"), "{text}");
    }

    #[test]
    fn bad_flags_are_usage_errors_and_bad_urls_url_errors() {
        for (args, says) in [
            (&["ws://x/", "-H", "no colon"][..], "'Name: value'"),
            (&["ws://x/", "-H", ": empty name"], "'Name: value'"),
            (&["ws://x/", "-H", "Bad Name: v"], "header names are tokens"),
            (
                &["ws://x/", "--origin", "a\nb"],
                "invalid header \"Origin\"",
            ),
            (&["ws://x/", "--auth", "nopassword"], "USER:PASS"),
            (&["ws://x/", "--proxy", "ftp://p"], "--proxy: "),
            (&["ws://x/", "--ca", "/nonexistent/ca.pem"], "--ca: "),
        ] {
            let cli = parse(args);
            match request_parts(&cli.url, &cli.request) {
                Err(RequestError::Usage(e)) => assert!(e.contains(says), "{args:?}: {e}"),
                other => panic!("{args:?}: {:?}", other.map(|_| ())),
            }
        }
        let cli = parse(&["http//nope"]);
        assert!(matches!(
            request_parts(&cli.url, &cli.request),
            Err(RequestError::Url(e)) if e.contains("invalid WebSocket URL")
        ));
    }

    #[test]
    fn userinfo_is_stripped() {
        assert_eq!(strip_userinfo("ws://u:p@h:1/x@y"), "ws://h:1/x@y");
        assert_eq!(strip_userinfo("ws://h/"), "ws://h/");
        assert_eq!(strip_userinfo("ws://h/x@y"), "ws://h/x@y");
        assert_eq!(strip_userinfo("wss://h"), "wss://h");
    }
}
