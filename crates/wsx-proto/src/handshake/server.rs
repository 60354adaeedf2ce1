//! Server side of the opening handshake (RFC 6455 §4.2).

use super::{
    accept_key, has_token, parse_extensions, split_tokens, ExtensionOffer,
    DEFAULT_MAX_HANDSHAKE_BYTES, MAX_HEADERS,
};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, StatusCode};
use std::fmt::Write as _;

/// What was wrong with an opening handshake request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeErrorKind {
    /// The request head exceeded the byte cap (431).
    HeadTooLarge(usize),
    /// More header lines than allowed (431).
    TooManyHeaders,
    /// Not parseable as HTTP/1.x (400).
    Malformed(String),
    /// Not a GET (405).
    MethodNotAllowed(String),
    /// HTTP/1.0 (400): RFC 6455 §4.1 requires HTTP/1.1 or later.
    HttpVersion,
    /// No `Host` header (400).
    MissingHost,
    /// No `Upgrade: websocket` (400): a plain HTTP request, or a proxy dropped it.
    MissingUpgrade,
    /// No `upgrade` token in `Connection` (400).
    MissingConnectionUpgrade,
    /// `Sec-WebSocket-Version` absent (400) or not 13 (426).
    UnsupportedVersion(Option<String>),
    /// `Sec-WebSocket-Key` absent, repeated, or not base64 of 16 bytes (400).
    BadKey,
    /// `Sec-WebSocket-Extensions` unparseable (400).
    BadExtensions(String),
    /// A browser on another site (this `Origin`) asked to connect and the
    /// [`super::OriginPolicy`] does not allow it (403).
    OriginNotAllowed(String),
    /// An HTTP/2 `CONNECT` whose `:protocol` is absent (a plain tunnel
    /// request, 400) or is not `websocket` (501) (RFC 8441 §4).
    ConnectProtocol(Option<String>),
    /// The application refused the upgrade with this status and body.
    Rejected(StatusCode, String),
}

/// A rejected handshake: what went wrong and the HTTP response to send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(&self.kind))]
pub struct HandshakeError {
    kind: HandshakeErrorKind,
}

fn describe(kind: &HandshakeErrorKind) -> String {
    use HandshakeErrorKind::*;
    match kind {
        HeadTooLarge(max) => format!("request head larger than {max} bytes"),
        TooManyHeaders => format!("more than {MAX_HEADERS} header lines"),
        Malformed(e) => format!("malformed HTTP request: {e}"),
        MethodNotAllowed(m) => {
            format!("method {m} not allowed: a WebSocket handshake is a GET (RFC 6455 §4.1)")
        }
        HttpVersion => "HTTP/1.1 or later required (RFC 6455 §4.1)".into(),
        MissingHost => "missing Host header (RFC 6455 §4.1)".into(),
        MissingUpgrade => "missing \"Upgrade: websocket\" header: this is a plain HTTP request, or a proxy in front did not forward the Upgrade header".into(),
        MissingConnectionUpgrade => "\"Connection\" header lacks the \"upgrade\" token (RFC 6455 §4.1); a proxy in front may have replaced it".into(),
        UnsupportedVersion(None) => "missing Sec-WebSocket-Version header; this server speaks version 13".into(),
        UnsupportedVersion(Some(v)) => format!("unsupported Sec-WebSocket-Version {v:?}; this server speaks version 13"),
        BadKey => "Sec-WebSocket-Key must be present once and be the base64 of 16 bytes (RFC 6455 §4.1)".into(),
        BadExtensions(e) => e.clone(),
        ConnectProtocol(None) => "an HTTP/2 CONNECT without :protocol: this is a WebSocket endpoint, which takes CONNECT with :protocol = websocket (RFC 8441)".into(),
        ConnectProtocol(Some(p)) => format!("unsupported :protocol {p:?} in an HTTP/2 CONNECT; this server speaks websocket (RFC 8441)"),
        OriginNotAllowed(o) => format!("origin {o:?} is not allowed: cross-site WebSocket connections are refused to protect this server's users (same-origin policy)"),
        Rejected(_, body) => body.clone(),
    }
}

impl HandshakeError {
    pub(crate) fn new(kind: HandshakeErrorKind) -> Self {
        HandshakeError { kind }
    }

    /// Builds the error an application returns to refuse an upgrade.
    pub fn rejected(status: StatusCode, body: impl Into<String>) -> Self {
        Self::new(HandshakeErrorKind::Rejected(status, body.into()))
    }

    /// What was wrong.
    pub fn kind(&self) -> &HandshakeErrorKind {
        &self.kind
    }

    /// The HTTP status to answer with.
    pub fn status(&self) -> StatusCode {
        use HandshakeErrorKind::*;
        // Every kind is listed: a new one must choose its status.
        match &self.kind {
            HeadTooLarge(_) | TooManyHeaders => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            UnsupportedVersion(Some(_)) => StatusCode::UPGRADE_REQUIRED,
            Rejected(s, _) => *s,
            OriginNotAllowed(_) => StatusCode::FORBIDDEN,
            ConnectProtocol(Some(_)) => StatusCode::NOT_IMPLEMENTED,
            ConnectProtocol(None)
            | Malformed(_)
            | HttpVersion
            | MissingHost
            | MissingUpgrade
            | MissingConnectionUpgrade
            | UnsupportedVersion(None)
            | BadKey
            | BadExtensions(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// The full HTTP response to send before closing the connection.
    pub fn response(&self) -> Vec<u8> {
        response(self.status(), &self.extra_headers(), &self.body())
    }

    /// The same response as [`HandshakeError::response`], for an HTTP server
    /// (hyper, axum) that writes responses itself: status, headers
    /// (with `Content-Type`) and body.
    pub fn http_response(&self) -> http::Response<String> {
        let mut r = http::Response::new(self.body());
        *r.status_mut() = self.status();
        let h = r.headers_mut();
        for (k, v) in self.extra_headers() {
            h.insert(k, http::HeaderValue::from_static(v));
        }
        h.insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r
    }

    fn extra_headers(&self) -> Vec<(&'static str, &'static str)> {
        use HandshakeErrorKind::*;
        match &self.kind {
            MethodNotAllowed(_) => vec![("Allow", "GET")],
            UnsupportedVersion(_) => vec![("Sec-WebSocket-Version", "13")],
            MissingUpgrade => vec![("Upgrade", "websocket")],
            _ => Vec::new(),
        }
    }

    fn body(&self) -> String {
        match &self.kind {
            HandshakeErrorKind::Rejected(_, body) => format!("{body}\n"),
            _ => format!("{self}\n"),
        }
    }
}

/// `Sec-WebSocket-Version` must be present once and be 13.
fn check_version(h: &HeaderMap) -> Result<(), HandshakeError> {
    let mut versions = h
        .get_all(header::SEC_WEBSOCKET_VERSION)
        .iter()
        .map(|v| v.as_bytes());
    match (versions.next(), versions.next()) {
        (Some(b"13"), None) => Ok(()),
        (None, _) => Err(HandshakeError::new(HandshakeErrorKind::UnsupportedVersion(
            None,
        ))),
        (Some(v), _) => Err(HandshakeError::new(HandshakeErrorKind::UnsupportedVersion(
            Some(String::from_utf8_lossy(v).into_owned()),
        ))),
    }
}

/// Builds a complete HTTP/1.1 response with a text body that closes the connection.
pub(crate) fn response(status: StatusCode, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut s = String::with_capacity(128 + body.len());
    let _ = write!(
        s,
        "HTTP/1.1 {} {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    for (k, v) in headers {
        let _ = write!(s, "{k}: {v}\r\n");
    }
    let _ = write!(
        s,
        "Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.into_bytes()
}

/// Reads a request head, in as many pieces as it arrives.
///
/// ```
/// use wsx_proto::handshake::ServerHandshake;
/// let mut hs = ServerHandshake::new();
/// let req = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
///             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
///             Sec-WebSocket-Version: 13\r\n\r\n";
/// assert!(hs.handle_data(&req[..10]).unwrap().is_none()); // partial: not an error
/// let (request, _after_head) = hs.handle_data(&req[10..]).unwrap().unwrap();
/// let upgrade = wsx_proto::handshake::Upgrade::new(request).unwrap();
/// let response = upgrade.accept(&Default::default()).unwrap();
/// assert!(String::from_utf8(response).unwrap().contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
/// ```
#[derive(Debug)]
pub struct ServerHandshake {
    buf: BytesMut,
    max_bytes: usize,
}

impl Default for ServerHandshake {
    fn default() -> Self {
        Self::new()
    }
}

/// A parsed HTTP request head plus any bytes that followed it.
pub type ParsedRequest = (Request<()>, Bytes);

impl ServerHandshake {
    /// A parser with the default cap ([`DEFAULT_MAX_HANDSHAKE_BYTES`]).
    pub fn new() -> Self {
        Self::with_max_bytes(DEFAULT_MAX_HANDSHAKE_BYTES)
    }

    /// A parser that answers 431 past `max_bytes` of request head.
    pub fn with_max_bytes(max_bytes: usize) -> Self {
        ServerHandshake {
            buf: BytesMut::new(),
            max_bytes,
        }
    }

    /// Feeds bytes. `Ok(None)`: the head is not complete yet. `Ok(Some)`: the
    /// request and the bytes after its head (which belong to the WebSocket
    /// stream and must not be lost). Errors carry the response to send.
    pub fn handle_data(&mut self, data: &[u8]) -> Result<Option<ParsedRequest>, HandshakeError> {
        self.buf.extend_from_slice(data);
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        // Only the first `max_bytes` are ever parsed, so the verdict does not
        // depend on how the bytes were split into reads.
        let head = &self.buf[..self.buf.len().min(self.max_bytes)];
        let n = match req.parse(head) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if self.buf.len() >= self.max_bytes => {
                return Err(HandshakeError::new(HandshakeErrorKind::HeadTooLarge(
                    self.max_bytes,
                )))
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(HandshakeError::new(HandshakeErrorKind::TooManyHeaders))
            }
            Err(_) if self.buf.starts_with(&[0x16, 0x03]) => {
                return Err(HandshakeError::new(HandshakeErrorKind::Malformed(
                    "this is a TLS handshake: the client used wss:// (or https://) against a plain ws:// server".into(),
                )))
            }
            Err(e) => {
                return Err(HandshakeError::new(HandshakeErrorKind::Malformed(
                    e.to_string(),
                )))
            }
        };
        let malformed =
            |what: &str| HandshakeError::new(HandshakeErrorKind::Malformed(what.into()));
        let method = Method::from_bytes(req.method.unwrap_or("").as_bytes())
            .map_err(|_| malformed("invalid method"))?;
        let version = match req.version {
            Some(1) => http::Version::HTTP_11,
            _ => http::Version::HTTP_10,
        };
        // httparse accepts some targets `http::Uri` does not (e.g. a backtick).
        let uri: http::Uri = req
            .path
            .unwrap_or("/")
            .parse()
            .map_err(|_| malformed("invalid request target"))?;
        let mut builder = Request::builder().method(method).uri(uri).version(version);
        let map = builder.headers_mut().expect("builder is valid so far");
        for h in req.headers.iter() {
            let name = HeaderName::from_bytes(h.name.as_bytes())
                .map_err(|_| malformed("invalid header name"))?;
            let value =
                HeaderValue::from_bytes(h.value).map_err(|_| malformed("invalid header value"))?;
            map.append(name, value);
        }
        let request = builder
            .body(())
            .map_err(|_| malformed("invalid request target"))?;
        let rest = self.buf.split_off(n).freeze();
        self.buf = BytesMut::new();
        Ok(Some((request, rest)))
    }
}

/// Whether a request asks for a WebSocket upgrade (`Upgrade: websocket`);
/// other requests can be served as plain HTTP.
pub fn is_upgrade_request<B>(req: &Request<B>) -> bool {
    has_token(
        req.headers()
            .get_all(header::UPGRADE)
            .iter()
            .map(|v| v.as_bytes()),
        "websocket",
    )
}

/// Whether a request is a WebSocket handshake that lost its `Upgrade`
/// header on the way: it carries `Sec-WebSocket-Key`, which only WebSocket
/// clients send, but no `Upgrade: websocket`. A reverse proxy that does not
/// forward the hop-by-hop `Upgrade` header (nginx without
/// [`super::NGINX_UPGRADE_LINES`]) turns every handshake into this. Answer it
/// with 426 and [`STRIPPED_UPGRADE_BODY`] rather than as a plain GET.
pub fn is_stripped_upgrade<B>(req: &Request<B>) -> bool {
    !is_upgrade_request(req) && req.headers().contains_key(header::SEC_WEBSOCKET_KEY)
}

/// The body of a 426 answer to an [`is_stripped_upgrade`] request: the cause
/// and the nginx lines that fix it ([`super::NGINX_UPGRADE_LINES`]).
pub const STRIPPED_UPGRADE_BODY: &str = "this WebSocket handshake (it has Sec-WebSocket-Key) reached the server without \"Upgrade: websocket\": a reverse proxy in front of the server did not forward the Upgrade header.
nginx needs, in the location that proxies to the WebSocket server:
    proxy_http_version 1.1;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection \"upgrade\";
";

/// A valid upgrade request, waiting for the application's decision: an
/// HTTP/1.1 `GET` with `Upgrade: websocket` ([`Upgrade::new`]) or an HTTP/2
/// extended `CONNECT` ([`Upgrade::extended_connect`]).
#[derive(Debug, Clone)]
pub struct Upgrade {
    request: Request<()>,
    /// `Sec-WebSocket-Key`: required over HTTP/1.1; over HTTP/2 RFC 8441
    /// has none, but a client may send one (undici does, and checks the
    /// answer).
    key: Option<String>,
    /// Came as an HTTP/2 extended CONNECT.
    http2: bool,
    protocols: Vec<String>,
    extensions: Vec<ExtensionOffer>,
}

/// How to accept an upgrade.
#[derive(Debug, Clone, Default)]
pub struct Accept {
    /// The subprotocol to select; must be one the client offered.
    pub protocol: Option<String>,
    /// The `Sec-WebSocket-Extensions` value of the accepted extensions.
    pub extensions: Option<String>,
    /// Extra response headers (e.g. `Set-Cookie`).
    pub headers: HeaderMap,
}

impl Upgrade {
    /// Validates a request per RFC 6455 §4.2.1.
    pub fn new(request: Request<()>) -> Result<Upgrade, HandshakeError> {
        use HandshakeErrorKind::*;
        let err = HandshakeError::new;
        let h = request.headers();
        let all = |name: HeaderName| h.get_all(name).iter().map(|v| v.as_bytes());
        if request.method() != Method::GET {
            return Err(err(MethodNotAllowed(request.method().to_string())));
        }
        if request.version() < http::Version::HTTP_11 {
            return Err(err(HttpVersion));
        }
        if h.get(header::HOST).is_none() {
            return Err(err(MissingHost));
        }
        if !has_token(all(header::UPGRADE), "websocket") {
            return Err(err(MissingUpgrade));
        }
        if !has_token(all(header::CONNECTION), "upgrade") {
            return Err(err(MissingConnectionUpgrade));
        }
        check_version(h)?;
        let mut keys = all(header::SEC_WEBSOCKET_KEY);
        let key = match (keys.next(), keys.next()) {
            (Some(k), None) => super::trim(k),
            _ => return Err(err(BadKey)),
        };
        match BASE64.decode(key) {
            Ok(raw) if raw.len() == 16 => {}
            _ => return Err(err(BadKey)),
        }
        let key = String::from_utf8_lossy(key).into_owned();
        Self::with_offers(request, Some(key), false)
    }

    /// Validates an HTTP/2 (or later) extended `CONNECT` (RFC 8441 §4, §5):
    /// method `CONNECT`, `:protocol` (which HTTP/2 libraries carry beside the
    /// headers, hence the argument) `websocket`, an `:authority`, and
    /// `Sec-WebSocket-Version: 13`. There is no key: the stream is already
    /// the client's own, so nothing needs proving.
    ///
    /// ```
    /// use wsx_proto::handshake::{Accept, Upgrade};
    /// let req = http::Request::connect("https://example.com/chat")
    ///     .version(http::Version::HTTP_2)
    ///     .header("sec-websocket-version", "13")
    ///     .body(()).unwrap();
    /// let up = Upgrade::extended_connect(req, Some("websocket")).unwrap();
    /// assert!(up.is_http2());
    /// let response = up.accept_response(&Accept::default()).unwrap();
    /// assert_eq!(response.status(), 200); // not 101: RFC 8441 §5
    /// ```
    ///
    /// # Errors
    /// 405 for another method, 400 without `:protocol` or `:authority`,
    /// 501 for another `:protocol`, and as [`Upgrade::new`] for the version
    /// and the offers.
    pub fn extended_connect(
        request: Request<()>,
        protocol: Option<&str>,
    ) -> Result<Upgrade, HandshakeError> {
        use HandshakeErrorKind::*;
        let err = HandshakeError::new;
        if request.method() != Method::CONNECT {
            return Err(err(MethodNotAllowed(request.method().to_string())));
        }
        if request.version() < http::Version::HTTP_2 {
            return Err(err(HttpVersion));
        }
        match protocol {
            Some(p) if p.eq_ignore_ascii_case("websocket") => {}
            other => return Err(err(ConnectProtocol(other.map(str::to_string)))),
        }
        let mut request = request;
        if request.headers().get(header::HOST).is_none() {
            // HTTP/2 carries the host as :authority; the Host header it
            // stands for is what the Origin policy (and applications) read.
            let host = request
                .uri()
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
                .ok_or_else(|| err(MissingHost))?;
            request.headers_mut().insert(header::HOST, host);
        }
        check_version(request.headers())?;
        // Not required, and not an error when malformed: it is answered
        // only when it is one a client could check.
        let mut keys = request.headers().get_all(header::SEC_WEBSOCKET_KEY).iter();
        let key = match (keys.next(), keys.next()) {
            (Some(k), None) => {
                let k = super::trim(k.as_bytes());
                matches!(BASE64.decode(k), Ok(raw) if raw.len() == 16)
                    .then(|| String::from_utf8_lossy(k).into_owned())
            }
            _ => None,
        };
        Self::with_offers(request, key, true)
    }

    /// The subprotocols and extensions offered, common to both versions.
    fn with_offers(
        request: Request<()>,
        key: Option<String>,
        http2: bool,
    ) -> Result<Upgrade, HandshakeError> {
        let err = HandshakeError::new;
        let h = request.headers();
        let protocols = h
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .map(|v| v.as_bytes())
            .flat_map(split_tokens)
            .map(|t| String::from_utf8_lossy(t).into_owned())
            .collect();
        let mut extensions = Vec::new();
        for v in h.get_all(header::SEC_WEBSOCKET_EXTENSIONS) {
            let v = v.to_str().map_err(|_| {
                err(HandshakeErrorKind::BadExtensions(
                    "Sec-WebSocket-Extensions is not ASCII".into(),
                ))
            })?;
            extensions.extend(
                parse_extensions(v)
                    .map_err(|e| err(HandshakeErrorKind::BadExtensions(e.to_string())))?,
            );
        }
        Ok(Upgrade {
            request,
            key,
            http2,
            protocols,
            extensions,
        })
    }

    /// Whether this upgrade came as an HTTP/2 extended `CONNECT` (answered
    /// `200` on its stream) rather than an HTTP/1.1 `GET` (answered `101`).
    pub fn is_http2(&self) -> bool {
        self.http2
    }

    /// The request: method, URI, headers.
    pub fn request(&self) -> &Request<()> {
        &self.request
    }

    /// The request, taken back (to keep its headers after the 101 without
    /// copying them).
    pub fn into_request(self) -> Request<()> {
        self.request
    }

    /// The request path, e.g. `/chat`.
    pub fn path(&self) -> &str {
        self.request.uri().path()
    }

    /// The query string without `?`, if any.
    pub fn query(&self) -> Option<&str> {
        self.request.uri().query()
    }

    /// The request headers.
    pub fn headers(&self) -> &HeaderMap {
        self.request.headers()
    }

    /// The `Origin` header, sent by browsers.
    pub fn origin(&self) -> Option<&str> {
        self.headers()
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
    }

    /// Subprotocols the client offered, in its order of preference.
    pub fn protocols(&self) -> &[String] {
        &self.protocols
    }

    /// Extensions the client offered, in order.
    pub fn extensions(&self) -> &[ExtensionOffer] {
        &self.extensions
    }

    /// The first of `supported` (the server's order of preference) that the client offered.
    pub fn select_protocol<'a>(&self, supported: &[&'a str]) -> Option<&'a str> {
        supported
            .iter()
            .copied()
            .find(|s| self.protocols.iter().any(|p| p == s))
    }

    /// The `101 Switching Protocols` response (RFC 6455 §4.2.2).
    ///
    /// # Errors
    /// A 500 error if `accept.protocol` was not offered by the client (a bug
    /// in the application: RFC 6455 §4.2.2 forbids it).
    pub fn accept(&self, accept: &Accept) -> Result<Vec<u8>, HandshakeError> {
        self.check_accept(accept)?;
        let Some(key) = self.key.as_ref().filter(|_| !self.http2) else {
            return Err(HandshakeError::rejected(
                StatusCode::INTERNAL_SERVER_ERROR,
                "an HTTP/2 upgrade is answered on its stream (accept_response), not with HTTP/1.1 bytes",
            ));
        };
        let mut s = String::with_capacity(256);
        s.push_str("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ");
        s.push_str(&accept_key(key.as_bytes()));
        s.push_str("\r\n");
        if let Some(p) = &accept.protocol {
            let _ = write!(s, "Sec-WebSocket-Protocol: {p}\r\n");
        }
        if let Some(e) = &accept.extensions {
            let _ = write!(s, "Sec-WebSocket-Extensions: {e}\r\n");
        }
        let mut out = s.into_bytes();
        for (k, v) in &accept.headers {
            out.extend_from_slice(k.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        Ok(out)
    }

    /// The same `101 Switching Protocols` as [`Upgrade::accept`], for an HTTP
    /// server (hyper, axum) that writes responses itself; for an HTTP/2
    /// upgrade, `200 OK` with the subprotocol and extensions only (RFC 8441 §5).
    ///
    /// # Errors
    /// As [`Upgrade::accept`]; also a 500 if a protocol or extension value
    /// is not a valid header value.
    pub fn accept_response(&self, accept: &Accept) -> Result<http::Response<()>, HandshakeError> {
        self.check_accept(accept)?;
        let bad = |what: &str| {
            HandshakeError::rejected(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the {what} chosen by the server is not a valid header value"),
            )
        };
        let mut r = http::Response::new(());
        if !self.http2 {
            *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        }
        let h = r.headers_mut();
        if !self.http2 {
            h.insert(header::UPGRADE, http::HeaderValue::from_static("websocket"));
            h.insert(
                header::CONNECTION,
                http::HeaderValue::from_static("Upgrade"),
            );
        }
        if let Some(key) = &self.key {
            // Over HTTP/2 too when the client sent a key (RFC 8441 needs
            // none; undici 7 checks it).
            let key = accept_key(key.as_bytes());
            h.insert(
                header::SEC_WEBSOCKET_ACCEPT,
                http::HeaderValue::from_str(&key).map_err(|_| bad("accept key"))?,
            );
        }
        if let Some(p) = &accept.protocol {
            let v = http::HeaderValue::from_str(p).map_err(|_| bad("subprotocol"))?;
            h.insert(header::SEC_WEBSOCKET_PROTOCOL, v);
        }
        if let Some(e) = &accept.extensions {
            let v = http::HeaderValue::from_str(e).map_err(|_| bad("extension list"))?;
            h.insert(header::SEC_WEBSOCKET_EXTENSIONS, v);
        }
        for (k, v) in &accept.headers {
            h.append(k, v.clone());
        }
        Ok(r)
    }

    /// RFC 6455 §4.2.2: the selected subprotocol must be one the client offered.
    fn check_accept(&self, accept: &Accept) -> Result<(), HandshakeError> {
        match &accept.protocol {
            Some(p) if !self.protocols.iter().any(|o| o == p) => Err(HandshakeError::rejected(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("server selected subprotocol {p:?}, which the client did not offer"),
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "GET /chat?room=1 HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n";

    fn parse(s: &str) -> Result<Upgrade, HandshakeError> {
        let (req, _) = ServerHandshake::new()
            .handle_data(s.as_bytes())?
            .expect("complete");
        Upgrade::new(req)
    }

    /// The bytes of `accept` and the `http::Response` of `accept_response`
    /// (for hyper and axum) carry the same status and headers; so do an
    /// error's `response` and `http_response`.
    #[test]
    fn byte_and_http_responses_agree() {
        let up = parse(GOOD).unwrap();
        let mut accept = Accept {
            protocol: Some("superchat".into()),
            extensions: Some("permessage-deflate".into()),
            ..Accept::default()
        };
        accept
            .headers
            .insert("set-cookie", HeaderValue::from_static("a=b"));
        let bytes = String::from_utf8(up.accept(&accept).unwrap()).unwrap();
        let r = up.accept_response(&accept).unwrap();
        assert_eq!(r.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert!(bytes.starts_with("HTTP/1.1 101 "));
        let lines: Vec<String> = bytes
            .lines()
            .skip(1)
            .filter(|l| !l.is_empty())
            .map(str::to_ascii_lowercase)
            .collect();
        assert_eq!(lines.len(), r.headers().len(), "{bytes}");
        for (k, v) in r.headers() {
            let line = format!("{}: {}", k, v.to_str().unwrap()).to_ascii_lowercase();
            assert!(lines.contains(&line), "{line} not in {bytes}");
        }
        accept.protocol = Some("other".into());
        assert_eq!(
            up.accept(&accept).unwrap_err(),
            up.accept_response(&accept).unwrap_err()
        );

        let e = Upgrade::new(Request::post("/").body(()).unwrap()).unwrap_err();
        let bytes = String::from_utf8(e.response()).unwrap();
        let r = e.http_response();
        assert!(bytes.starts_with(&format!("HTTP/1.1 {} ", r.status().as_u16())));
        assert!(bytes.ends_with(&format!("\r\n\r\n{}", r.body())), "{bytes}");
        assert_eq!(r.headers()["allow"], "GET");
        assert!(bytes.contains("Allow: GET\r\n"));
    }

    fn h2_connect(protocol_header: Option<&str>) -> Request<()> {
        let mut b = Request::connect("https://example.com/chat?room=1")
            .version(http::Version::HTTP_2)
            .header("origin", "https://example.com")
            .header("sec-websocket-protocol", "chat, superchat")
            .header(
                "sec-websocket-extensions",
                "permessage-deflate; client_max_window_bits",
            );
        if let Some(v) = protocol_header {
            b = b.header("sec-websocket-version", v);
        }
        b.body(()).unwrap()
    }

    /// RFC 8441 §4-5: CONNECT with :protocol = websocket and version 13 is
    /// an upgrade answered 200 with no HTTP/1.1 upgrade headers; each way
    /// of getting it wrong has its own status and words.
    #[test]
    fn extended_connect_accepted_and_refused() {
        let up = Upgrade::extended_connect(h2_connect(Some("13")), Some("websocket")).unwrap();
        assert!(up.is_http2());
        assert_eq!(up.path(), "/chat");
        assert_eq!(up.query(), Some("room=1"));
        assert_eq!(up.headers()["host"], "example.com"); // from :authority
        assert_eq!(up.protocols(), ["chat", "superchat"]);
        assert_eq!(up.extensions()[0].name, "permessage-deflate");
        let accept = Accept {
            protocol: Some("superchat".into()),
            ..Accept::default()
        };
        let r = up.accept_response(&accept).unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["sec-websocket-protocol"], "superchat");
        assert_eq!(r.headers().len(), 1, "{:?}", r.headers());
        // The HTTP/1.1 bytes form does not exist for a stream.
        assert_eq!(up.accept(&accept).unwrap_err().status(), 500);
        // A client that sends a key anyway (undici) gets its accept value.
        let mut keyed = h2_connect(Some("13"));
        keyed.headers_mut().insert(
            "sec-websocket-key",
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        let up = Upgrade::extended_connect(keyed, Some("websocket")).unwrap();
        let r = up.accept_response(&Accept::default()).unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            r.headers()["sec-websocket-accept"],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert!(!r.headers().contains_key("upgrade"));
        // An HTTP/1.1 GET upgrade is not HTTP/2.
        assert!(!parse(GOOD).unwrap().is_http2());

        let status = |req, p| {
            Upgrade::extended_connect(req, p)
                .unwrap_err()
                .status()
                .as_u16()
        };
        assert_eq!(status(h2_connect(Some("13")), None), 400);
        assert_eq!(status(h2_connect(Some("13")), Some("webtransport")), 501);
        assert_eq!(status(h2_connect(None), Some("websocket")), 400);
        assert_eq!(status(h2_connect(Some("8")), Some("websocket")), 426);
        let mut get = h2_connect(Some("13"));
        *get.method_mut() = Method::GET;
        assert_eq!(status(get, Some("websocket")), 405);
        let mut h1 = h2_connect(Some("13"));
        *h1.version_mut() = http::Version::HTTP_11;
        assert_eq!(status(h1, Some("websocket")), 400);
        let e =
            Upgrade::extended_connect(h2_connect(Some("13")), Some("webtransport")).unwrap_err();
        assert!(e.to_string().contains("\"webtransport\""), "{e}");
    }

    #[test]
    fn rfc_example_accepted_whole_bytewise_and_split() {
        let want = parse(GOOD).unwrap().accept(&Accept::default()).unwrap();
        let s = String::from_utf8(want.clone()).unwrap();
        assert!(s.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(s.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        let bytes = GOOD.as_bytes();
        for split in 0..bytes.len() {
            let mut hs = ServerHandshake::new();
            assert!(
                hs.handle_data(&bytes[..split]).unwrap().is_none(),
                "split {split}"
            );
            let (req, rest) = hs.handle_data(&bytes[split..]).unwrap().unwrap();
            assert!(rest.is_empty());
            assert_eq!(
                Upgrade::new(req)
                    .unwrap()
                    .accept(&Accept::default())
                    .unwrap(),
                want
            );
        }
        let mut hs = ServerHandshake::new();
        let mut done = None;
        for b in bytes {
            assert!(done.is_none());
            done = hs.handle_data(std::slice::from_ref(b)).unwrap();
        }
        assert!(done.is_some());
    }

    #[test]
    fn bytes_after_the_head_are_kept() {
        let mut input = GOOD.as_bytes().to_vec();
        input.extend_from_slice(&[0x81, 0x85, 1, 2, 3, 4]);
        let (_, rest) = ServerHandshake::new().handle_data(&input).unwrap().unwrap();
        assert_eq!(&rest[..], &[0x81, 0x85, 1, 2, 3, 4]);
    }

    #[test]
    fn accessors() {
        let u = parse(GOOD).unwrap();
        assert_eq!(u.path(), "/chat");
        assert_eq!(u.query(), Some("room=1"));
        assert_eq!(u.origin(), Some("http://example.com"));
        assert_eq!(u.protocols(), ["chat", "superchat"]);
        assert_eq!(u.select_protocol(&["superchat", "chat"]), Some("superchat"));
        let resp = u
            .accept(&Accept {
                protocol: Some("chat".into()),
                ..Default::default()
            })
            .unwrap();
        assert!(String::from_utf8(resp)
            .unwrap()
            .contains("Sec-WebSocket-Protocol: chat\r\n"));
        let bad = u.accept(&Accept {
            protocol: Some("nope".into()),
            ..Default::default()
        });
        assert_eq!(bad.unwrap_err().status(), 500);
    }

    /// (mutation of GOOD, expected status, expected words in the body)
    #[test]
    fn rejections_table() {
        let cases: &[(&str, &str, u16, &str)] = &[
            ("GET /chat", "POST /chat", 405, "method POST"),
            ("HTTP/1.1\r\nHost", "HTTP/1.0\r\nHost", 400, "HTTP/1.1"),
            ("Host: server.example.com\r\n", "", 400, "Host"),
            ("Upgrade: websocket\r\n", "", 400, "Upgrade"),
            ("Upgrade: websocket", "Upgrade: h2c", 400, "Upgrade"),
            (
                "Connection: keep-alive, Upgrade",
                "Connection: keep-alive",
                400,
                "Connection",
            ),
            (
                "Sec-WebSocket-Version: 13",
                "Sec-WebSocket-Version: 8",
                426,
                "version",
            ),
            (
                "Sec-WebSocket-Version: 13\r\n",
                "",
                400,
                "Sec-WebSocket-Version",
            ),
            (
                "dGhlIHNhbXBsZSBub25jZQ==",
                "dGhlIHNhbXBsZQ==",
                400,
                "Sec-WebSocket-Key",
            ),
            ("dGhlIHNhbXBsZSBub25jZQ==", "!!!", 400, "Sec-WebSocket-Key"),
            (
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
                "",
                400,
                "Sec-WebSocket-Key",
            ),
            (
                "Origin",
                "Sec-WebSocket-Extensions: foo; x=\"a b\"\r\nOrigin",
                400,
                "Extensions",
            ),
        ];
        for (from, to, status, words) in cases {
            let input = GOOD.replacen(from, to, 1);
            assert_ne!(input, GOOD, "mutation {from:?} did not apply");
            let e = parse(&input).unwrap_err();
            assert_eq!(e.status(), *status, "{from:?} -> {to:?}: {e}");
            let resp = String::from_utf8(e.response()).unwrap();
            assert!(resp.starts_with(&format!("HTTP/1.1 {status} ")), "{resp}");
            assert!(resp.contains(words), "{from:?}: {resp}");
        }
        let e = parse(&GOOD.replacen("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8", 1))
            .unwrap_err();
        assert!(String::from_utf8(e.response())
            .unwrap()
            .contains("Sec-WebSocket-Version: 13\r\n"));
    }

    #[test]
    fn oversized_head_gets_431() {
        let mut hs = ServerHandshake::with_max_bytes(1024);
        let big = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n", "a".repeat(2000));
        let e = hs.handle_data(big.as_bytes()).unwrap_err();
        assert_eq!(e.status(), 431);
        // Too many header lines, also 431.
        let many = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "A: b\r\n".repeat(MAX_HEADERS + 1)
        );
        let e = ServerHandshake::new()
            .handle_data(many.as_bytes())
            .unwrap_err();
        assert_eq!(e.status(), 431);
    }

    #[test]
    fn target_http_rejects_is_400_not_a_panic() {
        let e = ServerHandshake::new()
            .handle_data(b"GET /` HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap_err();
        assert_eq!(e.status(), 400, "{e}");
    }

    #[test]
    fn verdict_past_the_cap_does_not_depend_on_segmentation() {
        let mut input = format!("GET / HTTP/1.1\r\nX-Pad: {}\r\n", "a".repeat(1100)).into_bytes();
        input.extend_from_slice(b"bad header line\r\n\r\n");
        let whole = ServerHandshake::with_max_bytes(1024)
            .handle_data(&input)
            .unwrap_err();
        let mut hs = ServerHandshake::with_max_bytes(1024);
        let mut pieces = None;
        for chunk in input.chunks(100) {
            if let Err(e) = hs.handle_data(chunk) {
                pieces = Some(e);
                break;
            }
        }
        assert_eq!(whole.status(), 431);
        assert_eq!(pieces.unwrap().status(), 431);
    }

    #[test]
    fn garbage_gets_400() {
        let e = ServerHandshake::new()
            .handle_data(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
            .unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.to_string().contains("wss://"), "{e}");
    }

    #[test]
    fn a_handshake_without_its_upgrade_header_is_recognized_as_stripped() {
        let head = |s: &str| {
            ServerHandshake::new()
                .handle_data(s.as_bytes())
                .unwrap()
                .unwrap()
                .0
        };
        // What nginx sends upstream without the Upgrade/Connection lines:
        // the key and version pass, the hop-by-hop headers do not.
        let stripped = GOOD
            .replace("Upgrade: websocket\r\n", "")
            .replace("Connection: keep-alive, Upgrade", "Connection: close");
        assert!(is_stripped_upgrade(&head(&stripped)));
        let http10 = stripped.replace("HTTP/1.1", "HTTP/1.0");
        assert!(is_stripped_upgrade(&head(&http10)));
        // A real handshake, and a browser's plain GET, are not.
        assert!(!is_stripped_upgrade(&head(GOOD)));
        assert!(!is_stripped_upgrade(&head(
            "GET / HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\n\r\n"
        )));
        // The 426 body names the cause and every nginx line to add.
        assert!(
            STRIPPED_UPGRADE_BODY
                .contains("proxy in front of the server did not forward the Upgrade header"),
            "{STRIPPED_UPGRADE_BODY}"
        );
        for line in super::super::NGINX_UPGRADE_LINES {
            assert!(
                STRIPPED_UPGRADE_BODY.contains(&format!("\n    {line}\n")),
                "{line} missing from {STRIPPED_UPGRADE_BODY}"
            );
        }
    }
}
