//! `wsx probe`: the opening handshake, shown step by step.
//!
//! The handshake is driven here rather than through `wsx::client::connect_with`, so
//! that every step can be timed and whatever came back (a 200 page, a
//! redirect, TLS bytes, half a head) can be shown: `wsx_proto`'s
//! `ClientHandshake` runs over a tokio `TcpStream`, which is then wrapped in a
//! `wsx::WebSocket` for the ping and the close.

use crate::diagnose;
use crate::request_args::{request_parts, RequestArgs, RequestError, RequestParts};
use bytes::Bytes;
use serde_json::{json, Value};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, timeout_at, Instant};
use wsx::wsx_proto::handshake::{
    ClientHandshake, ClientHandshakeError, ClientRequest, ExtensionOffer, Handshaken, Rejection,
};
use wsx::MaybeTlsStream;
use wsx::{CloseCode, CloseFrame, Closed, Message, WebSocket};

/// Examples shown by `wsx probe --help`.
pub const EXAMPLES: &str = "Examples:
  wsx probe ws://127.0.0.1:9001/
  wsx probe ws://example.com/chat --subprotocol chat --origin https://example.com
  wsx probe ws://127.0.0.1:9001/ -H 'Authorization: Bearer TOKEN' --json | jq .timings_ms

Steps, each timed and each limited by --timeout: DNS resolution, TCP connect,
HTTP handshake (request sent -> response head received), ping -> pong, close
(1000). The request is printed with '> ', the response with '< ' (on stdout);
when a step fails, the likely cause is explained on stderr.

A -H header named Host, Upgrade, Connection or Sec-WebSocket-Version replaces
the generated line; Sec-WebSocket-Protocol and -Extensions are offered as such.

Exit codes: 0 handshake and ping OK (a close that is not clean is reported as a
warning); 2 anything else: bad URL or flags, DNS failure, connection refused,
a timeout, a TLS failure, a non-101 answer, a bad 101, no pong.";

/// Options of `wsx probe`.
#[derive(Debug, Clone, clap::Args)]
pub struct ProbeArgs {
    /// The ws:// URL.
    pub url: String,
    #[command(flatten)]
    pub request: RequestArgs,
    /// Time limit of each step, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub timeout: f64,
    /// Print one JSON object (request, response, timings in ms, rtt_ms,
    /// error and hint) instead of the transcript.
    #[arg(long)]
    pub json: bool,
}

/// After a non-101 head, how long to wait for the start of its body.
const BODY_WAIT: Duration = Duration::from_millis(500);
/// How much of the server's answer is kept for display.
const KEEP_RECEIVED: usize = 16 * 1024;
/// How much of a non-HTTP answer is shown as a hex dump.
const HEXDUMP_BYTES: usize = 64;

/// Runs the probe; returns the exit code.
pub async fn run(args: ProbeArgs) -> u8 {
    let mut probe = Probe::new(&args);
    let result = probe.run(&args).await;
    probe.finish(result)
}

/// Why the probe failed: the step, what happened, and the likely cause.
#[derive(Debug)]
struct Failure {
    step: &'static str,
    error: String,
    hint: Option<String>,
    details: Vec<String>,
}

impl Failure {
    fn new(step: &'static str, error: impl Into<String>) -> Self {
        Failure {
            step,
            error: error.into(),
            hint: None,
            details: Vec::new(),
        }
    }

    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The advice, when there is any.
    fn hint_if(mut self, hint: Option<String>) -> Self {
        if hint.is_some() {
            self.hint = hint;
        }
        self
    }

    fn detail(mut self, line: impl Into<String>) -> Self {
        self.details.push(line.into());
        self
    }
}

#[derive(Debug, Default)]
struct Timings {
    dns: Option<Duration>,
    tcp: Option<Duration>,
    tls: Option<Duration>,
    http: Option<Duration>,
    ping: Option<Duration>,
    close: Option<Duration>,
}

/// How the connection ended after our close frame.
#[derive(Debug)]
struct CloseReport {
    code: u16,
    text: String,
    reason: String,
    clean: bool,
}

impl CloseReport {
    fn from_closed(c: &Closed) -> Self {
        CloseReport {
            code: c.code.0,
            text: c.code.to_string(),
            reason: c.reason.clone(),
            clean: c.is_clean(),
        }
    }
}

/// Everything the probe learned, printed as it goes (text) or at the end (JSON).
struct Probe {
    json: bool,
    timeout: Duration,
    url: String,
    host: Option<String>,
    port: Option<u16>,
    addresses: Vec<SocketAddr>,
    connected: Option<SocketAddr>,
    request_line: Option<String>,
    request_headers: Vec<(String, String)>,
    /// The server's bytes, as received (at most `KEEP_RECEIVED`).
    received: Vec<u8>,
    received_total: usize,
    /// Length of the response head within `received`, once complete.
    head_len: Option<usize>,
    head_printed: bool,
    /// The start of a rejection's body.
    body: Option<Bytes>,
    status: Option<u16>,
    reason: Option<String>,
    protocol: Option<String>,
    extensions: Vec<String>,
    rtt: Option<Duration>,
    close: Option<CloseReport>,
    timings: Timings,
    warnings: Vec<String>,
}

impl Probe {
    fn new(args: &ProbeArgs) -> Self {
        Probe {
            json: args.json,
            timeout: Duration::from_secs(10),
            url: args.url.clone(),
            host: None,
            port: None,
            addresses: Vec::new(),
            connected: None,
            request_line: None,
            request_headers: Vec::new(),
            received: Vec::new(),
            received_total: 0,
            head_len: None,
            head_printed: false,
            body: None,
            status: None,
            reason: None,
            protocol: None,
            extensions: Vec::new(),
            rtt: None,
            close: None,
            timings: Timings::default(),
            warnings: Vec::new(),
        }
    }

    /// A transcript line (stdout, text mode only).
    fn say(&self, line: impl AsRef<str>) {
        if !self.json {
            println!("{}", line.as_ref());
        }
    }

    async fn run(&mut self, args: &ProbeArgs) -> Result<(), Failure> {
        self.timeout = match Duration::try_from_secs_f64(args.timeout) {
            Ok(t) if !t.is_zero() => t,
            _ => {
                return Err(Failure::new(
                    "usage",
                    format!(
                        "--timeout {}: expected a number of seconds above 0",
                        args.timeout
                    ),
                ))
            }
        };
        let RequestParts {
            req,
            headers: extra,
            config,
        } = build_request(args)?;
        self.host = Some(req.host().to_string());
        self.port = Some(req.port());
        let tcp = match &config.proxy {
            // The proxy resolves the name and connects: one step.
            Some(proxy) => self.tunnel(proxy, &req).await?,
            None => {
                let addrs = self.resolve(&req).await?;
                self.connect(&addrs).await?
            }
        };
        let mut stream = if req.is_secure() {
            self.tls(tcp, &req, config.tls).await?
        } else {
            MaybeTlsStream::Plain(tcp)
        };

        let mut key = [0u8; 16];
        random_bytes(&mut key);
        let (mut hs, generated) = ClientHandshake::new(&req, key);
        let request = compose_request(&generated, &extra);
        self.show_request(&request);
        let done = self.handshake(&mut stream, &mut hs, &request).await?;
        self.show_handshaken(&done);

        let config = wsx::Config::builder()
            .close_timeout(self.timeout)
            .build()
            .unwrap_or_default();
        let mut seed = [0u8; 32];
        random_bytes(&mut seed);
        let conn = wsx::wsx_proto::Connection::client(config, seed, std::time::Instant::now());
        let mut ws = WebSocket::from_connection(stream, conn, &done.leftover);
        self.ping(&mut ws).await?;
        self.close(&mut ws).await;
        Ok(())
    }

    // ---- DNS -------------------------------------------------------------------

    async fn resolve(&mut self, req: &ClientRequest) -> Result<Vec<SocketAddr>, Failure> {
        let host = req.host().to_string();
        let port = req.port();
        let start = Instant::now();
        let found = timeout(self.timeout, tokio::net::lookup_host((host.as_str(), port))).await;
        let elapsed = start.elapsed();
        let addrs = match found {
            Err(_) => {
                return Err(Failure::new(
                    "dns",
                    format!(
                        "the DNS step timed out: resolving {host} took longer than {}",
                        secs(self.timeout)
                    ),
                )
                .hint("the resolver is slow or unreachable: check the network, a VPN, /etc/resolv.conf"))
            }
            Ok(Err(e)) => {
                return Err(Failure::new("dns", format!("DNS failure: cannot resolve {host}: {e}"))
                    .hint(format!(
                        "check the host name for typos; does it resolve elsewhere (`getent hosts {host}`)? Otherwise the machine is offline or its DNS is broken"
                    )))
            }
            Ok(Ok(it)) => {
                let mut v: Vec<SocketAddr> = Vec::new();
                for a in it {
                    if !v.contains(&a) {
                        v.push(a);
                    }
                }
                v
            }
        };
        self.timings.dns = Some(elapsed);
        if addrs.is_empty() {
            return Err(Failure::new(
                "dns",
                format!("DNS failure: {host} resolved to no addresses"),
            ));
        }
        self.addresses = addrs.clone();
        let list: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
        self.say(format!(
            "* dns: {host} -> {} ({})",
            list.join(", "),
            ms_text(elapsed)
        ));
        Ok(addrs)
    }

    // ---- proxy -----------------------------------------------------------------

    async fn tunnel(
        &mut self,
        proxy: &wsx::client::Proxy,
        req: &ClientRequest,
    ) -> Result<TcpStream, Failure> {
        let start = Instant::now();
        let (host, port) = (req.host(), req.port());
        match timeout(self.timeout, proxy.tunnel(host, port)).await {
            Ok(Ok(tcp)) => {
                let elapsed = start.elapsed();
                self.timings.tcp = Some(elapsed);
                self.say(format!(
                    "* proxy: tunnel to {host}:{port} through {proxy} ({})",
                    ms_text(elapsed)
                ));
                Ok(tcp)
            }
            Ok(Err(e)) => {
                Err(Failure::new("proxy", diagnose::chain(&e)).hint_if(diagnose::hint(&e)))
            }
            Err(_) => Err(Failure::new(
                "proxy",
                format!(
                    "{proxy} did not open a tunnel within {}",
                    ms_text(self.timeout)
                ),
            )),
        }
    }

    // ---- TLS -------------------------------------------------------------------

    async fn tls(
        &mut self,
        tcp: TcpStream,
        req: &ClientRequest,
        config: Option<std::sync::Arc<wsx::tls::rustls::ClientConfig>>,
    ) -> Result<MaybeTlsStream, Failure> {
        let config = match config {
            Some(c) => c,
            None => wsx::tls::TlsClientOptions::default()
                .build()
                .map_err(|e| Failure::new("tls", diagnose::chain(&e)))?,
        };
        let start = Instant::now();
        let host = req.host().to_string();
        let stream = match timeout(self.timeout, wsx::tls::handshake(config, &host, tcp)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                return Err(Failure::new("tls", diagnose::chain(&e)).hint(
                    diagnose::hint(&e).unwrap_or_else(|| {
                        "check the URL's host name, the server's certificate chain (intermediates included), this machine's clock".into()
                    }),
                ))
            }
            Err(_) => {
                return Err(Failure::new(
                    "tls",
                    format!("no TLS handshake within {}", ms_text(self.timeout)),
                )
                .hint("the port may not speak TLS (a plain ws:// server?), or a firewall swallows it"))
            }
        };
        let elapsed = start.elapsed();
        self.timings.tls = Some(elapsed);
        let session = stream.get_ref().1;
        let version = session
            .protocol_version()
            .map_or("?".to_string(), |v| format!("{v:?}"));
        let cipher = session
            .negotiated_cipher_suite()
            .map_or("?".to_string(), |c| format!("{:?}", c.suite()));
        let alpn = session.alpn_protocol().map_or("none".to_string(), |p| {
            String::from_utf8_lossy(p).into_owned()
        });
        self.say(format!(
            "* tls: {version}, {cipher}, ALPN {alpn} ({})",
            ms_text(elapsed)
        ));
        for (i, cert) in session
            .peer_certificates()
            .unwrap_or(&[])
            .iter()
            .enumerate()
        {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            let (summary, warning) = describe_certificate(cert, now);
            self.say(format!("* tls: certificate [{i}] {summary}"));
            self.say(format!(
                "*      {} bytes, SHA-256 {}",
                cert.len(),
                wsx::tls::fingerprint(cert)
            ));
            if let Some(w) = warning {
                self.say(format!("* tls: warning: certificate [{i}] {w}"));
            }
        }
        Ok(MaybeTlsStream::Tls(Box::new(stream)))
    }

    // ---- TCP -------------------------------------------------------------------

    async fn connect(&mut self, addrs: &[SocketAddr]) -> Result<TcpStream, Failure> {
        let start = Instant::now();
        let deadline = start + self.timeout;
        let mut errors: Vec<(SocketAddr, io::Error)> = Vec::new();
        for &addr in addrs {
            match timeout_at(deadline, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => {
                    let elapsed = start.elapsed();
                    let _ = stream.set_nodelay(true);
                    self.timings.tcp = Some(elapsed);
                    self.connected = Some(addr);
                    self.say(format!("* tcp: connected to {addr} ({})", ms_text(elapsed)));
                    return Ok(stream);
                }
                Ok(Err(e)) => {
                    self.say(format!("* tcp: {addr}: {e}"));
                    errors.push((addr, e));
                }
                Err(_) => {
                    return Err(Failure::new(
                        "tcp",
                        format!(
                            "the TCP step timed out: connecting to {addr} took longer than {}",
                            secs(self.timeout)
                        ),
                    )
                    .hint("no answer at all, not even a refusal: a firewall dropping packets, a wrong address, or the host is down"));
                }
            }
        }
        let hostport = format!(
            "{}:{}",
            self.host.as_deref().unwrap_or("?"),
            self.port.unwrap_or(0)
        );
        let tried: Vec<String> = errors.iter().map(|(a, _)| a.to_string()).collect();
        if errors
            .iter()
            .all(|(_, e)| e.kind() == io::ErrorKind::ConnectionRefused)
        {
            return Err(Failure::new(
                "tcp",
                format!("connection refused by {}", tried.join(", ")),
            )
            .hint(format!(
                "nothing is listening on {hostport}: is the server running, and on this port? (a server bound to 127.0.0.1 only is not reachable through another address)"
            )));
        }
        let (addr, e) = errors
            .iter()
            .find(|(_, e)| e.kind() != io::ErrorKind::ConnectionRefused)
            .expect("a non-refused error");
        let failure = Failure::new("tcp", format!("cannot connect to {addr}: {e}"));
        Err(match e.kind() {
            io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => failure.hint(
                "no route to the host: a wrong address, the host is down, or the network (VPN) is",
            ),
            io::ErrorKind::PermissionDenied => {
                failure.hint("a local firewall or policy forbids this connection")
            }
            _ => failure,
        })
    }

    // ---- HTTP ------------------------------------------------------------------

    fn show_request(&mut self, request: &[u8]) {
        let text = String::from_utf8_lossy(request);
        let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
        if let Some(first) = lines.next() {
            self.say(format!("> {}", printable(first)));
            self.request_line = Some(first.to_string());
        }
        for line in lines {
            self.say(format!("> {}", printable(line)));
            let (name, value) = line.split_once(':').unwrap_or((line, ""));
            self.request_headers
                .push((name.to_string(), value.trim().to_string()));
        }
        self.say(">");
    }

    async fn handshake(
        &mut self,
        stream: &mut MaybeTlsStream,
        hs: &mut ClientHandshake,
        request: &[u8],
    ) -> Result<Handshaken, Failure> {
        let start = Instant::now();
        let deadline = start + self.timeout;
        match timeout_at(deadline, stream.write_all(request)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(Failure::new(
                    "http",
                    format!("cannot send the handshake request: {e}"),
                )
                .hint("the server dropped the connection as soon as it was made: a connection limit, an IP filter, or a crashing server"))
            }
            Err(_) => {
                return Err(Failure::new(
                    "http",
                    format!(
                        "the HTTP step timed out: the request could not be sent within {}",
                        secs(self.timeout)
                    ),
                ))
            }
        }
        let mut buf = vec![0u8; 8192];
        loop {
            let read = if hs.is_rejected() {
                // A non-101 head is in: wait briefly for the start of its body.
                match timeout(BODY_WAIT, stream.read(&mut buf)).await {
                    Ok(Ok(n)) => n,
                    Ok(Err(_)) | Err(_) => 0,
                }
            } else {
                match timeout_at(deadline, stream.read(&mut buf)).await {
                    Ok(Ok(n)) => n,
                    Ok(Err(e)) => return Err(self.read_failed(&e)),
                    Err(_) => return Err(self.http_timed_out()),
                }
            };
            if read == 0 {
                let e = hs.handle_eof();
                return Err(self.handshake_failed(e));
            }
            self.record(&buf[..read], start);
            match hs.handle_data(&buf[..read]) {
                Ok(Some(done)) => {
                    if self.timings.http.is_none() {
                        self.timings.http = Some(start.elapsed());
                    }
                    return Ok(done);
                }
                Ok(None) => {}
                Err(e) => return Err(self.handshake_failed(e)),
            }
        }
    }

    /// Keeps the server's bytes; once the head is complete, times and shows it.
    fn record(&mut self, data: &[u8], start: Instant) {
        self.received_total += data.len();
        let room = KEEP_RECEIVED.saturating_sub(self.received.len());
        self.received
            .extend_from_slice(&data[..data.len().min(room)]);
        if self.head_len.is_none() {
            if let Some(n) = head_end(&self.received) {
                self.timings.http = Some(start.elapsed());
                self.head_len = Some(n);
                self.parse_status();
                self.show_head();
            }
        }
    }

    fn parse_status(&mut self) {
        let Some(n) = self.head_len else { return };
        let head = String::from_utf8_lossy(&self.received[..n]).into_owned();
        let first = head.lines().next().unwrap_or("");
        let mut parts = first.splitn(3, ' ');
        let _version = parts.next();
        self.status = parts.next().and_then(|c| c.trim().parse().ok());
        self.reason = parts.next().map(|r| r.trim().to_string());
    }

    /// Prints the response head (or what arrived of it) with `< `.
    fn show_head(&mut self) {
        if self.head_printed || self.received.is_empty() {
            return;
        }
        self.head_printed = true;
        let n = self.head_len.unwrap_or(self.received.len());
        let head = String::from_utf8_lossy(&self.received[..n]).into_owned();
        for line in head.lines() {
            let line = line.trim_end_matches('\r');
            if !line.is_empty() {
                self.say(format!("< {}", printable(line)));
            }
        }
        if self.head_len.is_some() {
            self.say("<");
            if let Some(t) = self.timings.http {
                self.say(format!("* http: response head in {}", ms_text(t)));
            }
        } else {
            self.say(format!(
                "* http: incomplete response head ({} bytes)",
                self.received_total
            ));
        }
    }

    /// Prints bytes that are not HTTP as a hex dump.
    fn show_raw(&mut self) {
        if self.head_printed || self.received.is_empty() {
            return;
        }
        self.head_printed = true;
        self.say(format!(
            "* http: received {} bytes that are not an HTTP response:",
            self.received_total
        ));
        for line in hexdump(&self.received[..self.received.len().min(HEXDUMP_BYTES)]) {
            self.say(format!("  {line}"));
        }
    }

    fn show_body(&self, body: &[u8]) {
        if body.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(body);
        for line in text.lines() {
            self.say(printable(line.trim_end_matches('\r')));
        }
        let after_head = self
            .head_len
            .map_or(0, |h| self.received_total.saturating_sub(h));
        if after_head > body.len() {
            self.say(format!(
                "* ... (first {} bytes of the body shown)",
                body.len()
            ));
        }
    }

    fn http_timed_out(&mut self) -> Failure {
        let t = secs(self.timeout);
        if self.received.is_empty() {
            Failure::new(
                "http",
                format!("the HTTP step timed out: the server accepted the TCP connection but sent no response within {t}"),
            )
            .hint("something listens there but does not answer HTTP: a TLS port (that needs wss://), another protocol waiting for its own greeting, an overloaded or stuck server, or a proxy that buffers the upgrade")
        } else {
            self.show_head();
            Failure::new(
                "http",
                format!(
                    "the HTTP step timed out: the response head was still incomplete after {t} ({} bytes received)",
                    self.received_total
                ),
            )
            .hint("the server started answering and stalled: a stuck server or a proxy buffering the response")
        }
    }

    fn read_failed(&mut self, e: &io::Error) -> Failure {
        self.show_head();
        let what = if self.received.is_empty() {
            "without answering the handshake"
        } else {
            "before the response head was complete"
        };
        Failure::new(
            "http",
            format!("the server closed the connection ({e}) {what}"),
        )
        .hint_if(diagnose::handshake_hint(&ClientHandshakeError::Closed))
    }

    fn handshake_failed(&mut self, e: ClientHandshakeError) -> Failure {
        match &e {
            ClientHandshakeError::Rejected(r) => self.rejected(&e, r),
            ClientHandshakeError::BadAccept { expected, got } => {
                Failure::new("http", "wrong Sec-WebSocket-Accept in the 101 response")
                    .detail(format!("expected: {expected}"))
                    .detail(format!("got:      {got:?}"))
                    .hint(e.to_string())
            }
            ClientHandshakeError::Malformed(why) => {
                self.show_raw();
                let mut f = Failure::new(
                    "http",
                    format!("the answer is not an HTTP response ({why})"),
                )
                .hint(e.to_string());
                if let Some(what) = recognize(&self.received) {
                    f.details.push(what.to_string());
                }
                f
            }
            ClientHandshakeError::Closed => {
                self.show_head();
                let error = if self.received.is_empty() {
                    "the server closed the connection without answering the handshake".to_string()
                } else {
                    format!(
                        "the server closed the connection after {} bytes, before the response head was complete",
                        self.received_total
                    )
                };
                Failure::new("http", error)
                    .hint(diagnose::handshake_hint(&e).unwrap_or_else(|| e.to_string()))
            }
            ClientHandshakeError::UnofferedProtocol(_) => {
                Failure::new("http", e.to_string()).hint_if(diagnose::handshake_hint(&e))
            }
            _ => {
                self.show_head();
                Failure::new("http", e.to_string())
            }
        }
    }

    fn rejected(&mut self, e: &ClientHandshakeError, r: &Rejection) -> Failure {
        let code = r.status.as_u16();
        self.status = Some(code);
        self.show_head();
        self.show_body(&r.body);
        self.body = Some(r.body.clone());
        let reason = self
            .reason
            .clone()
            .filter(|s| !s.is_empty())
            .or_else(|| r.status.canonical_reason().map(str::to_string))
            .unwrap_or_default();
        // The library's statement of the cause, then the advice for it.
        let cause = library_cause(&e.to_string(), r);
        let hint = diagnose::rejection_hint(r).or_else(|| {
            cause.is_none().then(|| {
                "the server (or a proxy in front of it) did not upgrade this request; the response above says why".into()
            })
        });
        let mut error =
            format!("server answered {code} {reason} instead of 101 Switching Protocols");
        if let Some(cause) = cause {
            error.push_str(": ");
            error.push_str(&cause);
        }
        let mut f = Failure::new("http", error).hint_if(hint);
        if (300..400).contains(&code) {
            match r.headers.get(http::header::LOCATION) {
                Some(l) => f.details.push(format!(
                    "Location: {}",
                    String::from_utf8_lossy(l.as_bytes())
                )),
                None => f.details.push("(no Location header)".into()),
            }
        }
        f
    }

    fn show_handshaken(&mut self, done: &Handshaken) {
        self.status = Some(101);
        self.protocol = done.protocol.clone();
        self.extensions = done.extensions.iter().map(extension_text).collect();
        self.say(format!(
            "status: 101 {}",
            self.reason.as_deref().unwrap_or("Switching Protocols")
        ));
        self.say(format!(
            "subprotocol: {}",
            self.protocol.as_deref().unwrap_or("(none)")
        ));
        self.say(format!(
            "extensions: {}",
            if self.extensions.is_empty() {
                "(none)".to_string()
            } else {
                self.extensions.join(", ")
            }
        ));
    }

    // ---- ping and close --------------------------------------------------------

    async fn ping(&mut self, ws: &mut WebSocket<MaybeTlsStream>) -> Result<(), Failure> {
        let mut tag = [0u8; 8];
        random_bytes(&mut tag);
        let payload = Bytes::from(format!("wsx probe {}", u64::from_le_bytes(tag)));
        let start = Instant::now();
        let outcome = timeout(self.timeout, async {
            ws.send(Message::Ping(payload.clone())).await?;
            loop {
                match ws.recv().await? {
                    Some(Message::Pong(p)) if p == payload => return Ok::<_, wsx::Error>(true),
                    Some(_) => {}
                    None => return Ok(false),
                }
            }
        })
        .await;
        let elapsed = start.elapsed();
        match outcome {
            Ok(Ok(true)) => {
                self.rtt = Some(elapsed);
                self.timings.ping = Some(elapsed);
                self.say(format!("ping: {}", ms_text(elapsed)));
                Ok(())
            }
            Ok(Ok(false)) => {
                let closed = ws.close_info().map(CloseReport::from_closed);
                let how = closed.as_ref().map_or(String::new(), |c| {
                    format!(" with {}{}", c.text, reason_text(&c.reason))
                });
                self.close = closed;
                Err(Failure::new(
                    "ping",
                    format!("the server closed the connection{how} before answering the ping"),
                )
                .hint("the handshake worked but the server ended the session right away: it may expect a subprotocol, a message first, or authentication"))
            }
            Ok(Err(e)) => {
                self.close = e.close_info().map(CloseReport::from_closed);
                Err(Failure::new(
                    "ping",
                    format!("the connection failed during the ping: {}", diagnose::chain(&e)),
                ))
            }
            Err(_) => Err(Failure::new(
                "ping",
                format!(
                    "the ping step timed out: no pong within {}",
                    secs(self.timeout)
                ),
            )
            .hint("the handshake worked but the server does not answer pings (RFC 6455 §5.5.2 requires a pong): a non-conforming server, or something between that does not pass frames")),
        }
    }

    /// Closes with 1000 and reports how it went; problems are warnings.
    async fn close(&mut self, ws: &mut WebSocket<MaybeTlsStream>) {
        let start = Instant::now();
        let outcome = timeout(self.timeout, async {
            ws.close(Some(CloseFrame::new(CloseCode::NORMAL, "")))
                .await?;
            loop {
                match ws.recv().await {
                    Ok(Some(_)) => {}
                    Ok(None) => return Ok(ws.close_info().cloned()),
                    Err(e) => return Err(e),
                }
            }
        })
        .await;
        let elapsed = start.elapsed();
        match outcome {
            Ok(Ok(Some(c))) => {
                let report = CloseReport::from_closed(&c);
                self.timings.close = Some(elapsed);
                self.say(format!(
                    "close: sent 1000, server answered {}{}, {} ({})",
                    report.text,
                    reason_text(&report.reason),
                    if report.clean { "clean" } else { "not clean" },
                    ms_text(elapsed)
                ));
                if report.code != 1000 {
                    self.warnings.push(format!(
                        "the server answered our 1000 close with {}",
                        report.text
                    ));
                }
                self.close = Some(report);
            }
            Ok(Ok(None)) => {
                self.timings.close = Some(elapsed);
                self.say(format!("close: done ({})", ms_text(elapsed)));
            }
            Ok(Err(e)) => {
                self.close = e.close_info().map(CloseReport::from_closed);
                let e = diagnose::chain(&e);
                self.warnings
                    .push(format!("the close handshake did not complete cleanly: {e}"));
                self.say(format!("close: not clean: {e}"));
            }
            Err(_) => {
                let w = format!(
                    "the server did not answer the close frame within {}",
                    secs(self.timeout)
                );
                self.say(format!("close: {w}"));
                self.warnings.push(w);
            }
        }
    }

    // ---- the end ---------------------------------------------------------------

    fn finish(&mut self, result: Result<(), Failure>) -> u8 {
        let failure = result.err();
        if self.json {
            println!("{}", self.to_json(failure.as_ref()));
            if let Some(f) = &failure {
                eprintln!("wsx probe: {}", f.error);
            }
        } else {
            if let Some(t) = self.timings_text() {
                self.say(format!("timings: {t}"));
            }
            for w in &self.warnings {
                eprintln!("wsx probe: warning: {w}");
            }
            if let Some(f) = &failure {
                eprintln!("wsx probe: {}", f.error);
                for d in &f.details {
                    eprintln!("  {d}");
                }
                if let Some(h) = &f.hint {
                    eprintln!("hint: {h}");
                }
            }
        }
        if failure.is_some() {
            2
        } else {
            0
        }
    }

    fn timings_text(&self) -> Option<String> {
        let t = &self.timings;
        let parts: Vec<String> = [
            ("dns", t.dns),
            ("tcp", t.tcp),
            ("tls", t.tls),
            ("http", t.http),
            ("ping", t.ping),
            ("close", t.close),
        ]
        .iter()
        .filter_map(|(name, d)| d.map(|d| format!("{name} {}", ms_text(d))))
        .collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    }

    fn to_json(&self, failure: Option<&Failure>) -> Value {
        let headers = |pairs: &[(String, String)]| -> Value {
            pairs
                .iter()
                .map(|(n, v)| json!({ "name": n, "value": v }))
                .collect()
        };
        let request = self.request_line.as_ref().map(|line| {
            json!({
                "line": line,
                "headers": headers(&self.request_headers),
            })
        });
        let response = if let Some(n) = self.head_len {
            let head = String::from_utf8_lossy(&self.received[..n]).into_owned();
            let mut lines = head.lines().map(|l| l.trim_end_matches('\r'));
            let status_line = lines.next().unwrap_or("").to_string();
            let pairs: Vec<(String, String)> = lines
                .filter(|l| !l.is_empty())
                .map(|l| {
                    let (k, v) = l.split_once(':').unwrap_or((l, ""));
                    (k.to_string(), v.trim().to_string())
                })
                .collect();
            json!({
                "status_line": status_line,
                "status": self.status,
                "reason": self.reason,
                "headers": headers(&pairs),
                "body": self.body.as_ref().map(|b| String::from_utf8_lossy(b).into_owned()),
            })
        } else if !self.received.is_empty() {
            let start = &self.received[..self.received.len().min(HEXDUMP_BYTES)];
            json!({
                "status": null,
                "bytes": self.received_total,
                "start_hex": start.iter().map(|b| format!("{b:02x}")).collect::<String>(),
                "start_text": String::from_utf8_lossy(start),
            })
        } else {
            Value::Null
        };
        let ms = |d: Option<Duration>| d.map(ms_value);
        json!({
            "url": self.url,
            "ok": failure.is_none(),
            "host": self.host,
            "port": self.port,
            "addresses": self.addresses.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "connected_to": self.connected.map(|a| a.to_string()),
            "request": request,
            "response": response,
            "status": self.status,
            "protocol": self.protocol,
            "extensions": self.extensions,
            "rtt_ms": ms(self.rtt),
            "close": self.close.as_ref().map(|c| json!({
                "code": c.code,
                "reason": c.reason,
                "clean": c.clean,
            })),
            "timings_ms": {
                "dns": ms(self.timings.dns),
                "tcp": ms(self.timings.tcp),
                "tls": ms(self.timings.tls),
                "http": ms(self.timings.http),
                "ping": ms(self.timings.ping),
                "close": ms(self.timings.close),
            },
            "step": failure.map(|f| f.step),
            "error": failure.map(|f| f.error.clone()),
            "hint": failure.and_then(|f| f.hint.clone()),
            "details": failure.map_or(Vec::new(), |f| f.details.clone()),
            "warnings": self.warnings,
        })
    }
}

// ---- the request ---------------------------------------------------------------

/// Headers that replace the generated line of the same name.
const REPLACEABLE: [&str; 4] = ["host", "upgrade", "connection", "sec-websocket-version"];

/// The request from the shared flags (one parser: [`RequestArgs`]), the
/// headers to add to (or replace in) the generated request, as typed, and
/// the proxy and TLS settings.
fn build_request(args: &ProbeArgs) -> Result<RequestParts, Failure> {
    let RequestParts {
        mut req,
        headers: typed,
        config,
    } = request_parts(&args.url, &args.request).map_err(|e| match e {
        RequestError::Url(e) => {
            Failure::new("url", e).hint("expected ws://host[:port]/path or wss://host[:port]/path")
        }
        RequestError::Usage(e) => Failure::new("usage", e),
    })?;
    let mut extra = Vec::new();
    let mut extensions: Vec<String> = Vec::new();
    for (name, value) in typed {
        match name.to_ascii_lowercase().as_str() {
            "sec-websocket-key" => {
                return Err(Failure::new(
                    "usage",
                    "-H Sec-WebSocket-Key: the probe generates the key itself (it must check the server's Sec-WebSocket-Accept against it)",
                ))
            }
            "sec-websocket-protocol" => {
                for p in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    req = req.protocol(p);
                }
            }
            "sec-websocket-extensions" => extensions.push(value),
            _ => extra.push((name, value)),
        }
    }
    if !extensions.is_empty() {
        req = req.extensions(extensions.join(", "));
    }
    Ok(RequestParts {
        req,
        headers: extra,
        config,
    })
}

/// The generated request with the user's headers: those named in
/// `REPLACEABLE` take the place of the generated line, the rest go last.
fn compose_request(generated: &[u8], extra: &[(String, String)]) -> Vec<u8> {
    let text = String::from_utf8_lossy(generated);
    let mut used = vec![false; extra.len()];
    let mut out: Vec<String> = Vec::new();
    for (i, line) in text.split("\r\n").filter(|l| !l.is_empty()).enumerate() {
        let name = line
            .split_once(':')
            .map(|(n, _)| n.trim().to_ascii_lowercase());
        let replaced = match &name {
            Some(n) if i > 0 && REPLACEABLE.contains(&n.as_str()) => {
                let mut any = false;
                for (j, (k, v)) in extra.iter().enumerate() {
                    if k.eq_ignore_ascii_case(n) {
                        if !used[j] {
                            out.push(format!("{k}: {v}"));
                        }
                        used[j] = true;
                        any = true;
                    }
                }
                any
            }
            _ => false,
        };
        if !replaced {
            out.push(line.to_string());
        }
    }
    for (j, (k, v)) in extra.iter().enumerate() {
        if !used[j] {
            out.push(format!("{k}: {v}"));
        }
    }
    let mut bytes = out.join("\r\n").into_bytes();
    bytes.extend_from_slice(b"\r\n\r\n");
    bytes
}

// ---- helpers -------------------------------------------------------------------

/// The cause in the library's rejection text: without the leading
/// "server answered ..." (the probe says that itself) and the trailing body
/// excerpt (the probe prints the body).
fn library_cause(display: &str, r: &Rejection) -> Option<String> {
    let prefix = format!(
        "server answered {} {} instead of 101 Switching Protocols",
        r.status.as_u16(),
        r.status.canonical_reason().unwrap_or("")
    );
    let Some(rest) = display.strip_prefix(&prefix) else {
        return Some(display.to_string());
    };
    let body_text = String::from_utf8_lossy(&r.body);
    let body_text = body_text.trim();
    let rest = if body_text.is_empty() {
        rest
    } else {
        let mut end = body_text.len().min(200);
        while !body_text.is_char_boundary(end) {
            end -= 1;
        }
        let suffix = format!(" (body: {:?})", &body_text[..end]);
        rest.strip_suffix(suffix.as_str()).unwrap_or(rest)
    };
    let rest = rest.strip_prefix(": ").unwrap_or(rest).trim();
    (!rest.is_empty()).then(|| rest.to_string())
}

/// The end of an HTTP head (after the blank line), if it is complete.
fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Names what a non-HTTP answer probably is.
fn recognize(buf: &[u8]) -> Option<&'static str> {
    match buf {
        [0x15, 0x03, ..] => Some("these bytes are a TLS alert: the port speaks TLS (HTTPS / wss://), not plain ws://"),
        [0x16, 0x03, ..] => Some("these bytes are a TLS handshake record: the port speaks TLS (HTTPS / wss://), not plain ws://"),
        [b'S', b'S', b'H', b'-', ..] => Some("an SSH server answered: wrong port"),
        [0, 0, _, 0x04, ..] => Some("this looks like an HTTP/2 SETTINGS frame: an HTTP/2-only (h2c) server, which cannot upgrade an HTTP/1.1 request"),
        _ => None,
    }
}

fn hexdump(bytes: &[u8]) -> Vec<String> {
    bytes
        .chunks(16)
        .enumerate()
        .map(|(i, chunk)| {
            let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
            let text: String = chunk
                .iter()
                .map(|&b| {
                    if b.is_ascii_graphic() || b == b' ' {
                        b as char
                    } else {
                        '.'
                    }
                })
                .collect();
            format!("{:04x}  {:<47}  |{text}|", i * 16, hex.join(" "))
        })
        .collect()
}

/// A line with control characters escaped, safe for a terminal.
fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() && c != '\t' {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

fn extension_text(e: &ExtensionOffer) -> String {
    let mut s = e.name.clone();
    for (k, v) in &e.params {
        s.push_str("; ");
        s.push_str(k);
        if let Some(v) = v {
            s.push('=');
            s.push_str(v);
        }
    }
    s
}

fn reason_text(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(" {reason:?}")
    }
}

fn ms_value(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn ms_text(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn secs(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

/// Random bytes for the handshake key, the masking seed and the ping payload:
/// from the OS, or failing that from std's randomly keyed hasher. (The CLI
/// has no direct RNG dependency; neither use needs cryptographic strength.)
fn random_bytes(out: &mut [u8]) {
    use std::io::Read;
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(out))
        .is_ok()
    {
        return;
    }
    use std::hash::{BuildHasher, Hasher};
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(nanos);
        h.write_usize(i);
        let v = h.finish().to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

/// Days of validity left below which probe warns.
const EXPIRY_WARNING_DAYS: i64 = 14;

/// A certificate in one line (subject, issuer, names, validity) and, when it
/// expires soon, a warning. `now` is a Unix time in seconds.
fn describe_certificate(der: &[u8], now: i64) -> (String, Option<String>) {
    use x509_parser::extensions::GeneralName;
    let cert = match x509_parser::parse_x509_certificate(der) {
        Ok((_, c)) => c,
        Err(e) => return (format!("(not parsed: {e})"), None),
    };
    let names: Vec<String> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .map(|n| match n {
                    GeneralName::DNSName(d) => d.to_string(),
                    GeneralName::IPAddress(b) => match b.len() {
                        4 => std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*b).unwrap()).to_string(),
                        16 => {
                            std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*b).unwrap()).to_string()
                        }
                        _ => format!("IP {b:02x?}"),
                    },
                    other => format!("{other}"),
                })
                .collect()
        })
        .unwrap_or_default();
    let v = cert.validity();
    let (from, until) = (v.not_before.timestamp(), v.not_after.timestamp());
    let date = |t: &x509_parser::time::ASN1Time| t.to_datetime().date().to_string();
    let days_left = (until - now).div_euclid(86_400);
    let state = if now < from {
        "not valid yet".to_string()
    } else if now > until {
        format!("expired {} day(s) ago", (now - until).div_euclid(86_400))
    } else {
        format!("{days_left} day(s) left")
    };
    let subject = cert.subject().to_string();
    let issuer = cert.issuer().to_string();
    let mut line = format!(
        "subject {}, issuer {}",
        if subject.is_empty() {
            "(empty)"
        } else {
            &subject
        },
        if issuer == subject {
            "itself (self-signed)"
        } else {
            &issuer
        },
    );
    if !names.is_empty() {
        line.push_str(&format!(", names {}", names.join(" ")));
    }
    line.push_str(&format!(
        ", valid {} to {} ({state})",
        date(&v.not_before),
        date(&v.not_after)
    ));
    let warning = (now <= until && days_left < EXPIRY_WARNING_DAYS).then(|| {
        format!(
            "expires in {days_left} day(s), on {}: renew it (`wsx serve` reloads --tls-cert/--tls-key on SIGHUP)",
            date(&v.not_after)
        )
    });
    (line, warning)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for `example.test` and 127.0.0.1, valid
    /// 2026-01-01 to 2026-12-01.
    fn certificate() -> Vec<u8> {
        let mut p =
            rcgen::CertificateParams::new(vec!["example.test".into(), "127.0.0.1".into()]).unwrap();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "example.test");
        p.not_before = rcgen::date_time_ymd(2026, 1, 1);
        p.not_after = rcgen::date_time_ymd(2026, 12, 1);
        let key = rcgen::KeyPair::generate().unwrap();
        p.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn certificates_in_words() {
        let der = certificate();
        let day = 86_400;
        let dec_1 = 1_796_083_200; // 2026-12-01T00:00:00Z
        let (line, warning) = describe_certificate(&der, dec_1 - 100 * day);
        assert_eq!(
            line,
            "subject CN=example.test, issuer itself (self-signed), names example.test 127.0.0.1, \
             valid 2026-01-01 to 2026-12-01 (100 day(s) left)"
        );
        assert_eq!(warning, None);
        let (_, warning) = describe_certificate(&der, dec_1 - 3 * day);
        let w = warning.expect("a warning 3 days before expiry");
        assert!(
            w.starts_with("expires in 3 day(s), on 2026-12-01: renew it"),
            "{w}"
        );
        let (line, warning) = describe_certificate(&der, dec_1 + 2 * day);
        assert!(line.ends_with("(expired 2 day(s) ago)"), "{line}");
        assert_eq!(warning, None, "expired: the TLS error says so already");
        let (line, _) = describe_certificate(&der, dec_1 - 400 * day);
        assert!(line.ends_with("(not valid yet)"), "{line}");
        let (line, _) = describe_certificate(b"not a certificate", 0);
        assert!(line.starts_with("(not parsed"), "{line}");
    }

    #[test]
    fn user_headers_replace_or_append() {
        let generated =
            b"GET / HTTP/1.1\r\nHost: a:1\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n";
        let extra = vec![
            ("Host".to_string(), "b".to_string()),
            ("X-Token".to_string(), "t".to_string()),
        ];
        let out = String::from_utf8(compose_request(generated, &extra)).unwrap();
        assert_eq!(
            out,
            "GET / HTTP/1.1\r\nHost: b\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nX-Token: t\r\n\r\n"
        );
    }

    #[test]
    fn head_end_and_recognizer() {
        assert_eq!(head_end(b"HTTP/1.1 200 OK\r\n\r\nbody"), Some(19));
        assert_eq!(head_end(b"HTTP/1.1 200 OK\r\nX: y\r\n"), None);
        assert!(recognize(b"\x15\x03\x03\x00\x02\x02\x46")
            .unwrap()
            .contains("TLS"));
        assert_eq!(hexdump(b"ab").len(), 1);
    }
}
