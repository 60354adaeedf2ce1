//! `wsx probe`: the opening handshake, shown step by step.
//!
//! The handshake is driven here rather than through `wsx::client::connect_with`, so
//! that every step can be timed and whatever came back (a 200 page, a
//! redirect, TLS bytes, half a head) can be shown: `wsx_proto`'s
//! `ClientHandshake` runs over a tokio `TcpStream`, which is then wrapped in a
//! `wsx::WebSocket` for the ping and the close.
//!
//! Files: this one has the flags and runs the steps in order; `record`
//! (what the probe learned, the transcript lines), `request` (the request
//! bytes), `net` (DNS, proxy, TCP, TLS), `cert` (the TLS session and
//! certificates in words), `http` (the handshake and its diagnosis),
//! `response` (the answer as shown), `ping` (ping and close), `report`
//! (the closing lines or the JSON object, and the exit code).

mod cert;
mod h2;
mod http;
mod net;
mod ping;
mod record;
mod report;
mod request;
mod response;

use crate::request_args::{RequestArgs, RequestParts};
use record::{Failure, Probe};
use request::{build_request, handshake_request};
use std::time::Duration;
use wsx::MaybeTlsStream;

/// Examples shown by `wsx probe --help`.
pub const EXAMPLES: &str = "Examples:
  wsx probe ws://127.0.0.1:9001/
  wsx probe ws://example.com/chat --subprotocol chat --origin https://example.com
  wsx probe ws://127.0.0.1:9001/ -H 'Authorization: Bearer TOKEN' --json | jq .timings_ms

Steps, each timed and each limited by --timeout: DNS resolution, TCP connect,
HTTP handshake (request sent -> response head received), ping -> pong, close
(1000). With --http2: HTTP/2's SETTINGS (is RFC 8441 advertised?), then the
extended CONNECT and its 200, shown as pseudo-headers. The request is printed with '> ', the response with '< ' (on stdout);
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

/// Runs the probe; returns the exit code.
pub async fn run(args: ProbeArgs) -> u8 {
    let mut probe = Probe::new(&args.url, args.json);
    let result = steps(&mut probe, &args).await;
    probe.finish(result)
}

/// The steps in order, each shown as it ends; the first failure ends the
/// probe (a close that goes wrong is only a warning).
async fn steps(p: &mut Probe, args: &ProbeArgs) -> Result<(), Failure> {
    p.timeout = step_timeout(args.timeout)?;
    let RequestParts {
        req,
        headers: extra,
        config,
    } = build_request(&args.url, &args.request)?;
    p.host = Some(req.host().to_string());
    p.port = Some(req.port());
    let tcp = match &config.proxy {
        // The proxy resolves the name and connects: one step.
        Some(proxy) => p.tunnel(proxy, &req).await?,
        None => {
            let addrs = p.resolve(&req).await?;
            p.connect(&addrs).await?
        }
    };
    let http2 = config.http2.is_some();
    let mut stream = if req.is_secure() {
        p.tls(tcp, &req, config.tls.clone(), http2).await?
    } else {
        MaybeTlsStream::Plain(tcp)
    };
    let alpn_h2 =
        matches!(&stream, MaybeTlsStream::Tls(t) if t.get_ref().1.alpn_protocol() == Some(b"h2"));
    if http2 && (alpn_h2 || !req.is_secure()) {
        let mut req = req;
        for (name, value) in &extra {
            req = req
                .header(name, value)
                .map_err(|e| Failure::new("usage", e.to_string()))?;
        }
        let mut ws = p.http2(stream, &req, &config).await?;
        p.ping(&mut ws).await?;
        p.close(&mut ws).await;
        return Ok(());
    }
    if http2 {
        p.say("http2: the server chose http/1.1 in ALPN; the WebSocket goes over HTTP/1.1");
    }
    p.http_version = Some("1.1");

    let (mut hs, request) = handshake_request(&req, &extra);
    p.show_request(&request);
    let done = p.handshake(&mut stream, &mut hs, &request).await?;
    p.show_handshaken(&done);

    let mut ws = ping::websocket(stream, &done, p.timeout);
    p.ping(&mut ws).await?;
    p.close(&mut ws).await;
    Ok(())
}

/// `--timeout`: seconds above zero.
fn step_timeout(secs: f64) -> Result<Duration, Failure> {
    match Duration::try_from_secs_f64(secs) {
        Ok(t) if !t.is_zero() => Ok(t),
        _ => Err(Failure::new(
            "usage",
            format!("--timeout {secs}: expected a number of seconds above 0"),
        )),
    }
}
