//! Client side of the opening handshake (RFC 6455 §4.1).

use super::{
    accept_key, has_token, parse_extensions, ExtensionOffer, DEFAULT_MAX_HANDSHAKE_BYTES,
    MAX_HEADERS,
};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Response, StatusCode, Uri};
use std::fmt;

/// What the client asks for: URL, subprotocols, extra headers.
///
/// ```
/// use wsx_proto::handshake::ClientRequest;
/// let req = ClientRequest::new("ws://127.0.0.1:9001/chat?x=1").unwrap().protocol("chat");
/// assert_eq!(req.host_header(), "127.0.0.1:9001");
/// assert_eq!(req.path_and_query(), "/chat?x=1");
/// ```
#[derive(Debug, Clone)]
pub struct ClientRequest {
    uri: Uri,
    secure: bool,
    host: String,
    port: u16,
    host_header: String,
    protocols: Vec<String>,
    extensions: Option<String>,
    headers: HeaderMap,
}

impl ClientRequest {
    /// Parses a `ws://` or `wss://` URL (RFC 6455 §3). `user:pass@` in the
    /// URL becomes a Basic `Authorization` header.
    ///
    /// # Errors
    /// A URL that is not absolute, has another scheme, or has a fragment.
    pub fn new(url: &str) -> Result<Self, ClientHandshakeError> {
        let bad = |why: &str| ClientHandshakeError::InvalidUrl(format!("{url:?}: {why}"));
        if url.contains('#') {
            return Err(bad(
                "a WebSocket URL must not have a fragment (RFC 6455 §3)",
            ));
        }
        let uri: Uri = url.parse().map_err(|e| bad(&format!("{e}")))?;
        let secure = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("ws") => false,
            Some(s) if s.eq_ignore_ascii_case("wss") => true,
            Some(s) if s.eq_ignore_ascii_case("http") => false,
            Some(s) if s.eq_ignore_ascii_case("https") => true,
            Some(other) => return Err(bad(&format!("scheme {other:?} is not ws:// or wss://"))),
            None => return Err(bad("expected ws://host[:port]/path or wss://...")),
        };
        let authority = uri.authority().ok_or_else(|| bad("missing host"))?;
        let host = authority.host();
        if host.is_empty() {
            return Err(bad("missing host"));
        }
        let default_port = if secure { 443 } else { 80 };
        let port = authority.port_u16().unwrap_or(default_port);
        let host_only = authority
            .as_str()
            .rsplit_once('@')
            .map_or(authority.as_str(), |(_, h)| h);
        let mut headers = HeaderMap::new();
        if let Some((userinfo, _)) = authority.as_str().rsplit_once('@') {
            let value = format!("Basic {}", BASE64.encode(userinfo));
            headers.insert(
                header::AUTHORIZATION,
                HeaderValue::from_str(&value).map_err(|_| bad("invalid credentials"))?,
            );
        }
        Ok(ClientRequest {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            // Authority as written: includes a non-default port, which some
            // servers (Autobahn among them) require.
            host_header: host_only.to_string(),
            secure,
            uri,
            protocols: Vec::new(),
            extensions: None,
            headers,
        })
    }

    /// Offers a subprotocol (repeat for several, in order of preference).
    pub fn protocol(mut self, p: impl Into<String>) -> Self {
        self.protocols.push(p.into());
        self
    }

    /// Offers extensions: the whole `Sec-WebSocket-Extensions` value.
    pub fn extensions(mut self, value: impl Into<String>) -> Self {
        self.extensions = Some(value.into());
        self
    }

    /// The `Sec-WebSocket-Extensions` value offered, if any.
    pub fn offered_extensions(&self) -> Option<&str> {
        self.extensions.as_deref()
    }

    /// Adds a header (e.g. `Origin`, `Authorization`, `Cookie`).
    ///
    /// # Errors
    /// A name or value that is not valid in HTTP.
    pub fn header(mut self, name: &str, value: &str) -> Result<Self, ClientHandshakeError> {
        let n = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ClientHandshakeError::InvalidHeader(name.to_string()))?;
        let v = HeaderValue::from_str(value)
            .map_err(|_| ClientHandshakeError::InvalidHeader(name.to_string()))?;
        self.headers.append(n, v);
        Ok(self)
    }

    /// The URL.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }
    /// `wss://` (TLS).
    pub fn is_secure(&self) -> bool {
        self.secure
    }
    /// Host to connect to (without brackets for IPv6).
    pub fn host(&self) -> &str {
        &self.host
    }
    /// Port to connect to (80 or 443 unless the URL says otherwise).
    pub fn port(&self) -> u16 {
        self.port
    }
    /// The `Host` header value.
    pub fn host_header(&self) -> &str {
        &self.host_header
    }
    /// The request target.
    pub fn path_and_query(&self) -> &str {
        self.uri.path_and_query().map_or("/", |p| p.as_str())
    }
    /// Subprotocols offered.
    pub fn protocols(&self) -> &[String] {
        &self.protocols
    }
}

/// A completed client handshake.
#[derive(Debug, Clone)]
pub struct Handshaken {
    /// The server's 101 response.
    pub response: Response<()>,
    /// The subprotocol the server selected.
    pub protocol: Option<String>,
    /// The extensions the server accepted.
    pub extensions: Vec<ExtensionOffer>,
    /// Bytes after the response head: the first WebSocket frames.
    pub leftover: Bytes,
}

/// Why a client handshake failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientHandshakeError {
    /// The URL is unusable.
    #[error("invalid WebSocket URL {0}")]
    InvalidUrl(String),
    /// A header name or value is unusable.
    #[error("invalid header {0:?}")]
    InvalidHeader(String),
    /// The server answered something other than 101.
    #[error("{}", rejection_text(.0.status, &.0.headers, &.0.body))]
    Rejected(Box<Rejection>),
    /// The response head exceeded the byte cap.
    #[error("handshake response head larger than {0} bytes")]
    HeadTooLarge(usize),
    /// The response is not HTTP.
    #[error("the server's answer is not an HTTP response ({0}); is this a WebSocket (or HTTP) server? A wss:// URL against a plain server, or ws:// against a TLS port, looks like this")]
    Malformed(String),
    /// 101 without `Upgrade: websocket` or `Connection: upgrade`.
    #[error(
        "101 response lacks \"{0}\": the server (or a proxy) does not speak WebSocket properly"
    )]
    MissingHeader(&'static str),
    /// `Sec-WebSocket-Accept` did not match the key (RFC 6455 §4.1).
    #[error("wrong Sec-WebSocket-Accept {got:?} (expected {expected:?}): the server does not implement RFC 6455 §4.2.2, or something between rewrote the handshake")]
    BadAccept {
        /// What RFC 6455 §4.2.2 gives for our key.
        expected: String,
        /// What the server sent.
        got: String,
    },
    /// The server selected a subprotocol the client did not offer.
    #[error("server selected subprotocol {0:?}, which was not offered")]
    UnofferedProtocol(String),
    /// The server accepted an extension the client did not offer.
    #[error("server accepted extension {0:?}, which was not offered")]
    UnofferedExtension(String),
    /// The server's answer to an extension offer breaks its RFC (e.g. RFC
    /// 7692 §7.1 for permessage-deflate): the client must fail the connection.
    #[error("{0}")]
    BadExtensionResponse(String),
    /// The connection ended before the response head was complete.
    #[error("connection closed before the handshake response was complete: the server or a reverse proxy in front of it hung up (a proxy that does not forward the Upgrade header often does this)")]
    Closed,
}

/// A non-101 answer to the opening handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The status the server sent.
    pub status: StatusCode,
    /// Its headers.
    pub headers: HeaderMap,
    /// The start of its body (at most 1 KiB).
    pub body: Bytes,
}

// The causes below are stated in plain words; how to fix them in a given
// proxy or tool (nginx lines, command-line flags) is for the application
// to add: wsx-cli's `diagnose` module does.

/// For a 200: the request reached something that serves plain HTTP.
const NOT_UPGRADED: &str = "the Upgrade header did not reach it: the URL serves plain HTTP, or a reverse proxy in front did not forward the header";

/// For a 426 that asks for the WebSocket upgrade the client did request.
const STRIPPED: &str = "the server asks for the very WebSocket upgrade this request made: a reverse proxy in between did not forward the Upgrade header";

impl Rejection {
    /// Whether this answer means that something between the client and the
    /// server removed the client's `Upgrade: websocket`: a 426 Upgrade
    /// Required that names no other WebSocket version (no
    /// `Sec-WebSocket-Version`) and asks for `websocket` (or for nothing).
    /// The usual cause is a reverse proxy without the
    /// [`super::NGINX_UPGRADE_LINES`].
    pub fn upgrade_not_forwarded(&self) -> bool {
        upgrade_not_forwarded(self.status, &self.headers)
    }
}

fn upgrade_not_forwarded(status: StatusCode, headers: &HeaderMap) -> bool {
    status == StatusCode::UPGRADE_REQUIRED
        && !headers.contains_key(header::SEC_WEBSOCKET_VERSION)
        && (!headers.contains_key(header::UPGRADE)
            || has_token(
                headers
                    .get_all(header::UPGRADE)
                    .iter()
                    .map(|v| v.as_bytes()),
                "websocket",
            ))
}

fn rejection_text(status: StatusCode, headers: &HeaderMap, body: &Bytes) -> String {
    let mut s = format!(
        "server answered {} {} instead of 101 Switching Protocols",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    let body_text = String::from_utf8_lossy(body);
    let body_text = body_text.trim();
    let hint: String = match status.as_u16() {
        200 => NOT_UPGRADED.into(),
        400 => "the server rejected the handshake request (a reverse proxy in front that did not forward the Upgrade header can cause this)".into(),
        404 => "wrong path, or a proxy routes this path to a server without a WebSocket endpoint".into(),
        401 | 403 => "the server refused this client: authentication (headers, cookies, token) or an Origin check".into(),
        426 if upgrade_not_forwarded(status, headers) => STRIPPED.into(),
        426 => match (headers.get(header::SEC_WEBSOCKET_VERSION), headers.get(header::UPGRADE)) {
            (Some(v), _) => format!("the server speaks WebSocket version {v:?}, not 13"),
            (None, Some(u)) => format!("the server requires an upgrade to {}, not WebSocket", String::from_utf8_lossy(u.as_bytes())),
            (None, None) => "the server requires an upgrade to another protocol".into(),
        },
        301 | 302 | 303 | 307 | 308 => match headers.get(header::LOCATION) {
            Some(l) => format!("redirected to {}; connect to that URL instead (http→https means wss://)", String::from_utf8_lossy(l.as_bytes())),
            None => "redirected, without a Location".into(),
        },
        429 | 503 => "the server is overloaded or at its connection limit; retry later".into(),
        502 | 504 => "a proxy could not reach the WebSocket server behind it (backend down or wrong upstream)".into(),
        _ => String::new(),
    };
    if !hint.is_empty() {
        s.push_str(": ");
        s.push_str(&hint);
    }
    if !body_text.is_empty() {
        let mut end = body_text.len().min(200);
        while !body_text.is_char_boundary(end) {
            end -= 1;
        }
        s.push_str(&format!(" (body: {:?})", &body_text[..end]));
    }
    s
}

/// The client handshake in progress: feed it the server's bytes.
///
/// ```
/// use wsx_proto::handshake::{ClientHandshake, ClientRequest};
/// let req = ClientRequest::new("ws://server.example.com/chat").unwrap();
/// let (mut hs, bytes) = ClientHandshake::new(&req, *b"the sample nonce");
/// assert!(String::from_utf8(bytes).unwrap().contains("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"));
/// let done = hs.handle_data(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
///     Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n").unwrap();
/// assert!(done.is_some());
/// ```
#[derive(Debug)]
pub struct ClientHandshake {
    expected_accept: String,
    protocols: Vec<String>,
    offered_extensions: Vec<String>,
    buf: BytesMut,
    max_bytes: usize,
    /// A non-101 response whose body we are still collecting.
    rejected: Option<(StatusCode, HeaderMap, usize)>,
}

/// How much of a rejection's body to keep for the error.
const BODY_PREFIX: usize = 1024;

impl ClientHandshake {
    /// Starts a handshake with the 16-byte `key` (random in production,
    /// RFC 6455 §4.1). Returns the handshake and the request bytes to send.
    pub fn new(req: &ClientRequest, key: [u8; 16]) -> (Self, Vec<u8>) {
        let key = BASE64.encode(key);
        let mut s = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n",
            req.path_and_query(),
            req.host_header()
        );
        if !req.protocols.is_empty() {
            s.push_str(&format!(
                "Sec-WebSocket-Protocol: {}\r\n",
                req.protocols.join(", ")
            ));
        }
        let mut offered_extensions = Vec::new();
        if let Some(e) = &req.extensions {
            s.push_str(&format!("Sec-WebSocket-Extensions: {e}\r\n"));
            offered_extensions = parse_extensions(e)
                .map(|v| v.into_iter().map(|o| o.name).collect())
                .unwrap_or_default();
        }
        let mut out = s.into_bytes();
        for (k, v) in &req.headers {
            out.extend_from_slice(k.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        (
            ClientHandshake {
                expected_accept: accept_key(key.as_bytes()),
                protocols: req.protocols.clone(),
                offered_extensions,
                buf: BytesMut::new(),
                max_bytes: DEFAULT_MAX_HANDSHAKE_BYTES,
                rejected: None,
            },
            out,
        )
    }

    /// The HTTP/2 form of the handshake (RFC 8441 §5): the extended
    /// `CONNECT` to send on a new stream (the HTTP/2 layer adds
    /// `:protocol = websocket`, which `http::Request` cannot carry), and the
    /// handshake that checks the server's answer with
    /// [`ClientHandshake::handle_response`]. No key: the stream is the
    /// client's alone.
    ///
    /// ```
    /// use wsx_proto::handshake::{ClientHandshake, ClientRequest};
    /// let req = ClientRequest::new("wss://example.com/chat").unwrap().protocol("chat");
    /// let (mut hs, connect) = ClientHandshake::extended_connect(&req);
    /// assert_eq!(connect.method(), http::Method::CONNECT);
    /// assert_eq!(connect.uri(), "https://example.com/chat");
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("sec-websocket-protocol", "chat".parse().unwrap());
    /// let done = hs.handle_response(http::StatusCode::OK, headers, Default::default()).unwrap();
    /// assert_eq!(done.protocol.as_deref(), Some("chat"));
    /// ```
    pub fn extended_connect(req: &ClientRequest) -> (Self, http::Request<()>) {
        let scheme = if req.secure { "https" } else { "http" };
        let uri = format!("{scheme}://{}{}", req.host_header(), req.path_and_query());
        let mut builder = http::Request::builder()
            .method(http::Method::CONNECT)
            .version(http::Version::HTTP_2)
            .uri(uri)
            .header(header::SEC_WEBSOCKET_VERSION, "13");
        if !req.protocols.is_empty() {
            builder = builder.header(header::SEC_WEBSOCKET_PROTOCOL, req.protocols.join(", "));
        }
        let mut offered_extensions = Vec::new();
        if let Some(e) = &req.extensions {
            builder = builder.header(header::SEC_WEBSOCKET_EXTENSIONS, e.as_str());
            offered_extensions = parse_extensions(e)
                .map(|v| v.into_iter().map(|o| o.name).collect())
                .unwrap_or_default();
        }
        // The URL was parsed and the headers checked when they were added,
        // so building cannot fail.
        let mut request = builder.body(()).unwrap_or_default();
        for (k, v) in &req.headers {
            // HTTP/2 forbids connection-specific headers (RFC 9113 §8.2.2);
            // Host is the :authority.
            if !is_connection_specific(k) {
                request.headers_mut().append(k, v.clone());
            }
        }
        (
            ClientHandshake {
                expected_accept: String::new(),
                protocols: req.protocols.clone(),
                offered_extensions,
                buf: BytesMut::new(),
                max_bytes: DEFAULT_MAX_HANDSHAKE_BYTES,
                rejected: None,
            },
            request,
        )
    }

    /// Checks an HTTP/2 server's answer to [`ClientHandshake::extended_connect`]:
    /// any 2xx accepts (RFC 8441 §5), with the subprotocol and extensions it
    /// names checked against the offer; anything else is a
    /// [`ClientHandshakeError::Rejected`] carrying `body` (its start).
    ///
    /// # Errors
    /// A rejection, or an answer naming what was not offered.
    pub fn handle_response(
        &mut self,
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<Handshaken, ClientHandshakeError> {
        if !status.is_success() {
            let n = body.len().min(BODY_PREFIX);
            return Err(ClientHandshakeError::Rejected(Box::new(Rejection {
                status,
                headers,
                body: body.slice(..n),
            })));
        }
        self.finish(status, headers)
    }

    /// Feeds the server's bytes. `Ok(None)`: need more. For a non-101
    /// answer, this waits for the start of the body and then returns
    /// [`ClientHandshakeError::Rejected`]; call
    /// [`ClientHandshake::handle_eof`] to stop waiting.
    pub fn handle_data(&mut self, data: &[u8]) -> Result<Option<Handshaken>, ClientHandshakeError> {
        self.buf.extend_from_slice(data);
        if let Some((_, _, want)) = &self.rejected {
            if self.buf.len() >= *want {
                return Err(self.rejection());
            }
            return Ok(None);
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        // Only the first `max_bytes` are parsed: the verdict does not depend
        // on how the response was split into reads.
        let head = &self.buf[..self.buf.len().min(self.max_bytes)];
        let n = match resp.parse(head) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if self.buf.len() >= self.max_bytes => {
                return Err(ClientHandshakeError::HeadTooLarge(self.max_bytes))
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(ClientHandshakeError::Malformed(e.to_string())),
        };
        let status = StatusCode::from_u16(resp.code.unwrap_or(0))
            .map_err(|_| ClientHandshakeError::Malformed("invalid status code".into()))?;
        let mut map = HeaderMap::new();
        for h in resp.headers.iter() {
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(h.name.as_bytes()),
                HeaderValue::from_bytes(h.value),
            ) {
                map.append(k, v);
            }
        }
        let _ = self.buf.split_to(n);
        if status != StatusCode::SWITCHING_PROTOCOLS {
            let len = map
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
                .unwrap_or(BODY_PREFIX);
            let want = len.min(BODY_PREFIX);
            self.rejected = Some((status, map, want));
            if self.buf.len() >= want {
                return Err(self.rejection());
            }
            return Ok(None);
        }
        self.check_101(map).map(Some)
    }

    /// The server closed the stream (or the caller stopped waiting for a
    /// rejection's body): returns the error to report.
    pub fn handle_eof(&mut self) -> ClientHandshakeError {
        if self.rejected.is_some() {
            self.rejection()
        } else {
            ClientHandshakeError::Closed
        }
    }

    /// Whether a non-101 head was received and only its body is awaited.
    pub fn is_rejected(&self) -> bool {
        self.rejected.is_some()
    }

    fn rejection(&mut self) -> ClientHandshakeError {
        let (status, headers, want) = self.rejected.take().expect("rejected");
        let n = self.buf.len().min(want);
        ClientHandshakeError::Rejected(Box::new(Rejection {
            status,
            headers,
            body: self.buf.split_to(n).freeze(),
        }))
    }

    fn check_101(&mut self, map: HeaderMap) -> Result<Handshaken, ClientHandshakeError> {
        let all = |name: HeaderName| {
            map.get_all(name)
                .iter()
                .map(|v| v.as_bytes())
                .collect::<Vec<_>>()
        };
        if !has_token(all(header::UPGRADE).into_iter(), "websocket") {
            return Err(ClientHandshakeError::MissingHeader("Upgrade: websocket"));
        }
        if !has_token(all(header::CONNECTION).into_iter(), "upgrade") {
            return Err(ClientHandshakeError::MissingHeader("Connection: Upgrade"));
        }
        let got = map
            .get(header::SEC_WEBSOCKET_ACCEPT)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
            .unwrap_or_default();
        if got != self.expected_accept {
            return Err(ClientHandshakeError::BadAccept {
                expected: self.expected_accept.clone(),
                got,
            });
        }
        self.finish(StatusCode::SWITCHING_PROTOCOLS, map)
    }

    /// The subprotocol and extensions of an accepting answer, checked
    /// against the offer (both versions).
    fn finish(
        &mut self,
        status: StatusCode,
        map: HeaderMap,
    ) -> Result<Handshaken, ClientHandshakeError> {
        let protocol = match map.get(header::SEC_WEBSOCKET_PROTOCOL) {
            None => None,
            Some(p) => {
                let p = String::from_utf8_lossy(p.as_bytes()).trim().to_string();
                if !self.protocols.contains(&p) {
                    return Err(ClientHandshakeError::UnofferedProtocol(p));
                }
                Some(p)
            }
        };
        let mut extensions = Vec::new();
        for v in map.get_all(header::SEC_WEBSOCKET_EXTENSIONS) {
            let text = String::from_utf8_lossy(v.as_bytes());
            let parsed = parse_extensions(&text)
                .map_err(|e| ClientHandshakeError::Malformed(e.to_string()))?;
            for e in parsed {
                if !self.offered_extensions.contains(&e.name) {
                    return Err(ClientHandshakeError::UnofferedExtension(e.name));
                }
                extensions.push(e);
            }
        }
        let mut response = Response::new(());
        *response.status_mut() = status;
        *response.headers_mut() = map;
        Ok(Handshaken {
            response,
            protocol,
            extensions,
            leftover: self.buf.split().freeze(),
        })
    }
}

/// Headers that HTTP/2 forbids in a request (RFC 9113 §8.2.2), and Host,
/// which it carries as `:authority`.
fn is_connection_specific(name: &HeaderName) -> bool {
    name == header::CONNECTION
        || name == header::UPGRADE
        || name == header::TRANSFER_ENCODING
        || name == header::HOST
        || name.as_str() == "keep-alive"
        || name.as_str() == "proxy-connection"
        || name == header::TE
}

impl fmt::Display for ClientRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.uri)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 16] = *b"the sample nonce";
    const OK: &str = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

    fn start(url: &str) -> ClientHandshake {
        ClientHandshake::new(&ClientRequest::new(url).unwrap().protocol("chat"), KEY).0
    }

    #[test]
    fn request_bytes() {
        let req = ClientRequest::new("ws://user:pw@example.com:8080/a?b=c").unwrap();
        let (_, bytes) = ClientHandshake::new(&req, KEY);
        let s = String::from_utf8(bytes).unwrap();
        assert!(
            s.starts_with("GET /a?b=c HTTP/1.1\r\nHost: example.com:8080\r\n"),
            "{s}"
        );
        assert!(s.contains("authorization: Basic dXNlcjpwdw==\r\n"), "{s}");
        assert!(s.ends_with("\r\n\r\n"));
        assert_eq!((req.host(), req.port()), ("example.com", 8080));
        assert_eq!(ClientRequest::new("wss://[::1]/").unwrap().port(), 443);
        assert_eq!(ClientRequest::new("wss://[::1]/").unwrap().host(), "::1");
        for bad in ["ftp://x/", "ws://x/#frag", "example.com", "ws:///path"] {
            assert!(ClientRequest::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn accepts_101_whole_bytewise_and_split_keeping_leftover() {
        let mut input = OK.as_bytes().to_vec();
        input.extend_from_slice(&[0x81, 0x02, b'h', b'i']);
        for split in 0..=input.len() {
            let mut hs = start("ws://server.example.com/chat");
            // Whatever the handshake does not consume goes to the connection.
            let leftover = match hs.handle_data(&input[..split]).unwrap() {
                Some(d) => [&d.leftover[..], &input[split..]].concat(),
                None => hs
                    .handle_data(&input[split..])
                    .unwrap()
                    .unwrap()
                    .leftover
                    .to_vec(),
            };
            assert_eq!(leftover, [0x81, 0x02, b'h', b'i'], "split {split}");
        }
    }

    #[test]
    fn rejects_bad_101s() {
        let cases = [
            (
                OK.replace(
                    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
                    "Sec-WebSocket-Accept: xxx",
                ),
                "Sec-WebSocket-Accept",
            ),
            (OK.replace("Upgrade: websocket\r\n", ""), "Upgrade"),
            (OK.replace("Connection: Upgrade\r\n", ""), "Connection"),
            (
                OK.replace("\r\n\r\n", "\r\nSec-WebSocket-Protocol: other\r\n\r\n"),
                "other",
            ),
            (
                OK.replace(
                    "\r\n\r\n",
                    "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
                ),
                "permessage-deflate",
            ),
        ];
        for (resp, words) in cases {
            let e = start("ws://server.example.com/chat")
                .handle_data(resp.as_bytes())
                .unwrap_err();
            assert!(e.to_string().contains(words), "{e}");
        }
        let ok = OK.replace("\r\n\r\n", "\r\nSec-WebSocket-Protocol: chat\r\n\r\n");
        let d = start("ws://server.example.com/chat")
            .handle_data(ok.as_bytes())
            .unwrap()
            .unwrap();
        assert_eq!(d.protocol.as_deref(), Some("chat"));
    }

    /// RFC 8441 §5 from the client's side: a CONNECT with no HTTP/1.1
    /// upgrade headers; any 2xx accepts, checked against the offer; other
    /// statuses are rejections with their body.
    #[test]
    fn extended_connect_request_and_answers() {
        let req = ClientRequest::new("ws://h:81/p?q=1")
            .unwrap()
            .protocol("chat")
            .extensions("permessage-deflate")
            .header("x-token", "t")
            .unwrap()
            .header("connection", "keep-alive")
            .unwrap();
        let (mut hs, r) = ClientHandshake::extended_connect(&req);
        assert_eq!(r.uri(), "http://h:81/p?q=1");
        assert_eq!(r.version(), http::Version::HTTP_2);
        assert_eq!(r.headers()["sec-websocket-version"], "13");
        assert_eq!(r.headers()["x-token"], "t");
        for h in ["connection", "upgrade", "sec-websocket-key", "host"] {
            assert!(!r.headers().contains_key(h), "{h} in {:?}", r.headers());
        }
        let mut ok = HeaderMap::new();
        ok.insert(
            "sec-websocket-extensions",
            HeaderValue::from_static("permessage-deflate"),
        );
        let done = hs
            .handle_response(StatusCode::OK, ok, Bytes::new())
            .unwrap();
        assert_eq!(done.extensions[0].name, "permessage-deflate");
        assert_eq!(done.response.status(), StatusCode::OK);

        let (mut hs, _) = ClientHandshake::extended_connect(&req);
        let mut other = HeaderMap::new();
        other.insert(
            "sec-websocket-protocol",
            HeaderValue::from_static("superchat"),
        );
        assert_eq!(
            hs.handle_response(StatusCode::OK, other, Bytes::new())
                .unwrap_err(),
            ClientHandshakeError::UnofferedProtocol("superchat".into())
        );
        let (mut hs, _) = ClientHandshake::extended_connect(&req);
        match hs.handle_response(
            StatusCode::FORBIDDEN,
            HeaderMap::new(),
            Bytes::from_static(b"no"),
        ) {
            Err(ClientHandshakeError::Rejected(r)) => {
                assert_eq!((r.status, &r.body[..]), (StatusCode::FORBIDDEN, &b"no"[..]))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn non_101_carries_status_headers_body_and_a_hint() {
        let resp =
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 11\r\n\r\nhello world";
        let mut hs = start("ws://x/");
        // Head first, then the body: the error waits for the body.
        assert!(hs
            .handle_data(&resp.as_bytes()[..resp.len() - 5])
            .unwrap()
            .is_none());
        let e = hs
            .handle_data(&resp.as_bytes()[resp.len() - 5..])
            .unwrap_err();
        let ClientHandshakeError::Rejected(r) = &e else {
            panic!("{e}")
        };
        assert_eq!((r.status.as_u16(), &r.body[..]), (200, &b"hello world"[..]));
        assert_eq!(r.headers.get("content-type").unwrap(), "text/html");
        let text = e.to_string();
        assert!(
            text.contains(
                "200 OK instead of 101 Switching Protocols: the Upgrade header did not reach it"
            ),
            "{text}"
        );
        assert!(text.contains("hello world"), "{text}");

        // Body cut short by EOF: the error still comes, with what arrived.
        let mut hs = start("ws://x/");
        assert!(hs
            .handle_data(b"HTTP/1.1 404 Not Found\r\nContent-Length: 100\r\n\r\nno")
            .unwrap()
            .is_none());
        let e = hs.handle_eof();
        assert!(e.to_string().contains("wrong path"), "{e}");
        assert!(e.to_string().contains("\"no\""), "{e}");

        let e = start("ws://x/")
            .handle_data(b"HTTP/1.1 301 Moved\r\nLocation: https://x/\r\nContent-Length: 0\r\n\r\n")
            .unwrap_err();
        assert!(e.to_string().contains("https://x/"), "{e}");
    }

    #[test]
    fn eof_before_head_explains_the_proxy_case() {
        let mut hs = start("ws://x/");
        hs.handle_data(b"HTTP/1.1 10").unwrap();
        let e = hs.handle_eof();
        assert_eq!(e, ClientHandshakeError::Closed);
        assert!(e.to_string().contains("Upgrade"));
    }

    #[test]
    fn not_http_is_malformed() {
        let e = start("ws://x/")
            .handle_data(b"\x15\x03\x03\x00\x02\x02\x46")
            .unwrap_err();
        assert!(matches!(e, ClientHandshakeError::Malformed(_)), "{e}");
    }

    #[test]
    fn upgrade_required_for_websocket_means_a_proxy_dropped_the_header() {
        let reject = |resp: &str| {
            let e = start("ws://x/chat")
                .handle_data(resp.as_bytes())
                .unwrap_err();
            let ClientHandshakeError::Rejected(r) = &e else {
                panic!("{e}")
            };
            (r.upgrade_not_forwarded(), e.to_string())
        };
        // What `wsx serve` behind nginx without the Upgrade lines answers.
        let (dropped, text) = reject(
            "HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\nContent-Length: 2\r\n\r\nno",
        );
        assert!(dropped, "{text}");
        assert!(
            text.contains("a reverse proxy in between did not forward the Upgrade header"),
            "{text}"
        );
        assert!(text.contains("(body: \"no\")"), "{text}");
        let (dropped, _) = reject("HTTP/1.1 426 Upgrade Required\r\nContent-Length: 0\r\n\r\n");
        assert!(dropped);

        // Other 426s are about something else, and say so.
        let (dropped, text) = reject(
            "HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 8\r\nUpgrade: websocket\r\nContent-Length: 0\r\n\r\n",
        );
        assert!(!dropped);
        assert!(text.contains("version \"8\""), "{text}");
        assert!(!text.contains("proxy"), "{text}");
        let (dropped, text) = reject(
            "HTTP/1.1 426 Upgrade Required\r\nUpgrade: TLS/1.2, HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        );
        assert!(!dropped);
        assert!(text.contains("upgrade to TLS/1.2, HTTP/1.1"), "{text}");
        assert!(!text.contains("proxy"), "{text}");
    }

    /// The cause in plain words, and nothing about how one tool or proxy
    /// fixes it: no command-line flags, no nginx configuration.
    #[test]
    fn texts_name_no_flags_and_no_proxy_configuration() {
        let mut errors = vec![ClientHandshakeError::Closed];
        for status in [200, 301, 400, 401, 403, 404, 426, 429, 502, 503] {
            let head = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n");
            errors.push(start("ws://x/").handle_data(head.as_bytes()).unwrap_err());
        }
        let stripped =
            "HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\nContent-Length: 0\r\n\r\n";
        errors.push(
            start("ws://x/")
                .handle_data(stripped.as_bytes())
                .unwrap_err(),
        );
        for e in errors {
            let text = e.to_string();
            for word in [
                "nginx",
                "proxy_set_header",
                "proxy_http_version",
                " --",
                "`wsx",
            ] {
                assert!(!text.contains(word), "{word:?} in {text}");
            }
        }
    }
}
