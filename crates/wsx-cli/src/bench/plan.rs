//! What every connection shares: the plan (target, TLS, the frames to
//! send, the flags), checked and made once before the first connection;
//! the clock that starts when all are open; the counters they add to.

use super::args::{BenchArgs, Mode, Payload};
use super::payload::{json_payloads, make_json, make_payload};
use super::wire::plain_frames;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use wsx::wsx_proto::deflate::{DeflateConfig, DeflateParams};
use wsx::wsx_proto::handshake::ClientRequest;

#[derive(Default)]
pub(super) struct Stats {
    pub(super) connected: AtomicU64,
    pub(super) messages: AtomicU64,
    /// Echoes including warm-up.
    pub(super) total: AtomicU64,
    pub(super) errors: AtomicU64,
    pub(super) handshakes: AtomicU64,
    /// Bytes written / read on echo connections after the handshake
    /// (warm-up included; the final close frame excluded).
    pub(super) wire_out: AtomicU64,
    pub(super) wire_in: AtomicU64,
    /// Messages sent (warm-up included).
    pub(super) sent: AtomicU64,
    /// The first connection's permessage-deflate agreement.
    pub(super) deflate: std::sync::OnceLock<DeflateParams>,
    /// With --http2: the HTTP/2 connections the sockets share.
    pub(super) h2_connections: AtomicU64,
}

pub(super) struct Plan {
    pub(super) addr: SocketAddr,
    pub(super) req: ClientRequest,
    /// For wss://.
    pub(super) tls: Option<Arc<wsx::tls::rustls::ClientConfig>>,
    /// The masked frames (plain) and payloads, sent in turn.
    pub(super) frames: Vec<Vec<u8>>,
    pub(super) payloads: Vec<Vec<u8>>,
    /// The compressed masked frames, made by the first connection that
    /// negotiated deflate, with its parameters.
    pub(super) deflate_frames: std::sync::OnceLock<(DeflateParams, Vec<Vec<u8>>)>,
    /// Text messages (`--text` or `--payload json`).
    pub(super) text: bool,
    /// What we offer with `--deflate`.
    pub(super) deflate: Option<DeflateConfig>,
    pub(super) args: BenchArgs,
    /// Set once every connection is open: when measuring starts and ends.
    pub(super) clock: tokio::sync::watch::Receiver<Option<Clock>>,
    pub(super) per_conn_limit: Option<u64>,
    pub(super) stats: Arc<Stats>,
    /// With --http2: the client settings, and the HTTP/2 connections
    /// opened so far (socket `i` rides connection `i / streams`).
    pub(super) h2: Option<(
        wsx::client::ClientConfig,
        tokio::sync::Mutex<Vec<wsx::http2::Http2Connection>>,
    )>,
    /// Connections being opened at once, at most [`OPENING_AT_ONCE`].
    pub(super) opening: tokio::sync::Semaphore,
}

/// How many connections are opened (TCP and handshake) at once. Thousands
/// of SYNs at the same instant overflow a server's accept queue (the
/// kernel's `somaxconn`, 4,096 by default) and the excess is reset: a
/// measurement of the load generator, not of the server. Real clients
/// arrive spread out; 512 at once still opens 10,000 in well under a second.
pub(super) const OPENING_AT_ONCE: usize = 512;

#[derive(Debug, Clone, Copy)]
pub(super) struct Clock {
    /// Sending starts here; until `measure_from` it is warm-up.
    pub(super) start: Instant,
    pub(super) measure_from: Instant,
    pub(super) end: Instant,
}

impl Plan {
    /// Checks the flags and prepares the run: the request, TLS, the
    /// address, the payloads and their frames.
    ///
    /// # Errors
    /// A flag combination that does not work, a bad request or TLS file,
    /// a host that does not resolve, in words.
    pub(super) fn new(
        args: &BenchArgs,
        clock: tokio::sync::watch::Receiver<Option<Clock>>,
        stats: Arc<Stats>,
    ) -> Result<Plan, String> {
        if args.connections == 0 || args.depth == 0 || args.threads == 0 {
            return Err("connections, depth and threads must be at least 1".into());
        }
        if args.request.proxy.is_some() {
            return Err(
                "--proxy is not supported by wsx bench: it measures the server, not a proxy".into(),
            );
        }
        // The proxy variables are not read either (`config.proxy` is unused).
        let (mut req, config) = crate::request_args::build_request(&args.url, &args.request)?;
        if args.deflate && args.raw_tcp {
            return Err("--deflate needs a WebSocket server, not --raw-tcp".into());
        }
        if args.messages.is_some() && args.mode == Mode::Idle {
            return Err("--mode idle holds connections for --duration; -n does not apply".into());
        }
        if args.request.http2 && args.raw_tcp {
            return Err("--http2 needs a WebSocket server, not --raw-tcp".into());
        }
        let tls = if req.is_secure() {
            if args.raw_tcp {
                return Err("--raw-tcp needs a ws:// URL".into());
            }
            let mut tls = crate::request_args::tls_or_default(config.tls.clone())?;
            if args.request.http2 {
                let mut c = (*tls).clone();
                c.alpn_protocols = vec![b"h2".to_vec()];
                tls = Arc::new(c);
            }
            Some(tls)
        } else {
            None
        };
        let h2 = args
            .request
            .http2
            .then(|| (config.clone(), tokio::sync::Mutex::new(Vec::new())));
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&(req.host(), req.port()))
            .map_err(|e| format!("cannot resolve {}: {e}", req.host()))?
            .next()
            .ok_or("host resolves to no address")?;
        let text = args.text || args.payload == Payload::Json;
        let payloads = payloads(args, text);
        let frames = plain_frames(&payloads, text)?;
        // Every compressed frame must stand alone for it to be resent as is.
        let deflate = args.deflate.then(|| DeflateConfig {
            no_context_takeover: true,
            ..DeflateConfig::default()
        });
        if let Some(d) = &deflate {
            req = req.extensions(d.offer());
        }
        Ok(Plan {
            addr,
            req,
            tls,
            frames,
            payloads,
            deflate_frames: std::sync::OnceLock::new(),
            text,
            deflate,
            args: args.clone(),
            clock,
            per_conn_limit: args
                .messages
                .map(|n| n.div_ceil(args.connections as u64).max(1)),
            stats,
            h2,
            opening: tokio::sync::Semaphore::new(OPENING_AT_ONCE),
        })
    }

    /// Waits until the main thread starts the clock (all connections open).
    pub(super) async fn clock(&self) -> Clock {
        let mut rx = self.clock.clone();
        let c = *rx
            .wait_for(Option::is_some)
            .await
            .expect("clock sender lives");
        c.expect("some")
    }
}

impl Clock {
    /// The clock for a run starting now: warm-up, then the measured
    /// `--duration` (an hour's bound with `-n`, which ends on the count).
    pub(super) fn starting_now(args: &BenchArgs) -> Clock {
        let start = Instant::now();
        let measure_from = start + warmup(args);
        let end = if args.messages.is_some() {
            measure_from + Duration::from_secs(3600)
        } else {
            measure_from + measured(args)
        };
        Clock {
            start,
            measure_from,
            end,
        }
    }
}

/// The payloads, sent in turn: one random, or enough JSON to defeat a
/// compression window.
fn payloads(args: &BenchArgs, text: bool) -> Vec<Vec<u8>> {
    match args.payload {
        Payload::Random => vec![make_payload(args.size, text)],
        Payload::Json => (0..json_payloads(args.size))
            .map(|k| make_json(args.size, k as u64))
            .collect(),
    }
}

/// `--warmup`, at least zero.
fn warmup(args: &BenchArgs) -> Duration {
    Duration::from_secs_f64(args.warmup.max(0.0))
}

/// `--duration`, at least zero.
pub(super) fn measured(args: &BenchArgs) -> Duration {
    Duration::from_secs_f64(args.duration.max(0.0))
}
