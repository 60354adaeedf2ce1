//! `wsx serve`: echo, broadcast rooms, a program per connection (or one for
//! all), static files, a test page, metrics, Origin checks, graceful
//! shutdown: the library's server loop with a handler per mode
//! (`modes.rs`) and an HTTP router (`http.rs`).

mod console;
mod http;
mod metrics;
mod modes;
pub(crate) mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Examples shown by `wsx serve --help`.
pub const EXAMPLES: &str = "Examples:
  wsx serve                                   # echo on ws://127.0.0.1:9001, any path; a test page at /
  wsx serve --listen 0.0.0.0:8080
  wsx serve --broadcast                       # a chat room per path
  wsx serve --broadcast --redis redis://127.0.0.1:6379   # rooms across every node on that Redis
  wsx serve --exec 'sh -c \"while read l; do echo \\\"got $l\\\"; done\"'   # a program per connection
  wsx serve --exec-shared 'tail -f /var/log/syslog'                 # one program, output to all
  wsx serve --static ./public --origin https://example.com
  curl http://127.0.0.1:9001/metrics          # Prometheus metrics
  wsx serve --console                         # type /close 4001 bye, /drop, /ping, or text for every client
  wsx serve --send-frame-size 1024            # echoes longer than 1 KiB leave fragmented

SIGINT/SIGTERM: stop accepting, close every connection with 1001, wait up to --drain seconds.";

/// Options of `wsx serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9001", value_name = "HOST:PORT")]
    pub listen: SocketAddr,
    /// Largest accepted message, in bytes.
    #[arg(long, default_value_t = crate::default_max_message())]
    pub max_message: usize,
    /// Worker threads (default: one per CPU core; 1 runs a single-threaded runtime).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Every message from a client goes to all clients on the same path (a
    /// room per path), the sender included.
    #[arg(long, conflicts_with_all = ["exec", "exec_shared"])]
    pub broadcast: bool,
    /// With --broadcast: join every node on this Redis (rooms, presence and
    /// history shared; a client resumes on any node). Without it, rooms live
    /// in this process.
    #[arg(long, value_name = "URL", requires = "broadcast")]
    pub redis: Option<String>,
    /// With --broadcast: messages each room keeps for clients that resume
    /// (`wsx.pubsub.v1`, `?since=OFFSET&epoch=EPOCH`).
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub history: u64,
    /// With --broadcast: seconds a room's history is kept after its last message.
    #[arg(long, value_name = "SECS", default_value_t = 3600.0)]
    pub history_ttl: f64,
    /// Messages a slow client may have queued in broadcast modes before it
    /// is disconnected (1013, try again later), so that it cannot stall or
    /// bloat the others (a message that waits 10 s does the same).
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub queue: usize,
    /// Run CMD (with `sh -c`) per connection: its stdout lines become text
    /// messages, messages become its stdin lines.
    #[arg(long, value_name = "CMD", conflicts_with = "exec_shared")]
    pub exec: Option<String>,
    /// Run ONE CMD for all clients: its stdout lines go to every client,
    /// every client's messages become its stdin lines.
    #[arg(long, value_name = "CMD")]
    pub exec_shared: Option<String>,
    /// Serve files from DIR for plain HTTP GETs (index.html for directories).
    #[arg(long, value_name = "DIR")]
    pub r#static: Option<PathBuf>,
    #[command(flatten)]
    pub origin: tls::OriginArgs,
    /// Refuse connections past this many (503 with Retry-After).
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// Keepalive: ping every SECS seconds, drop peers that do not answer
    /// within 10 s (0: off). Keeps load balancers from closing idle
    /// connections and finds clients that vanished without a FIN.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub ping_interval: f64,
    #[command(flatten)]
    pub tls: tls::TlsArgs,
    /// Do not accept permessage-deflate (compression is negotiated whenever
    /// the client offers it otherwise, as browsers do).
    #[arg(long)]
    pub no_deflate: bool,
    /// Compression level for permessage-deflate: 0 (none) to 9 (smallest,
    /// slowest). 3 costs about half the CPU per message of zlib's default 6
    /// for 6-9% more bytes; 1 halves it again for a third more bytes.
    #[arg(long, value_name = "0-9", default_value_t = wsx::wsx_proto::deflate::DEFAULT_LEVEL, value_parser = clap::value_parser!(u32).range(0..=9))]
    pub deflate_level: u32,
    /// Close connections (1001) that sent and received no message for SECS
    /// seconds (0: never; pings do not count).
    #[arg(long, value_name = "SECS", default_value_t = 0.0)]
    pub idle_timeout: f64,
    /// On SIGINT/SIGTERM, wait up to SECS for clients to answer the 1001 close.
    #[arg(long, default_value_t = 5.0, value_name = "SECS")]
    pub drain: f64,
    /// Split sent messages longer than BYTES into frames of at most BYTES
    /// (for intermediaries that limit frame size, or to test how clients
    /// handle fragmented messages). Below 16, clients that guard against
    /// fragment floods (wsx does) may refuse long messages with 1009.
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    pub send_frame_size: Option<u64>,
    /// Accept HTTP/2 with prior knowledge on cleartext connections (h2c),
    /// beside HTTP/1.1 on the same port: for tests, and for proxies that
    /// speak HTTP/2 to their backends (nghttpx, Envoy). With TLS, HTTP/2
    /// is on anyway (ALPN).
    #[arg(long)]
    pub h2c: bool,
    /// Serve HTTP/1.1 only (with TLS, ALPN offers only http/1.1).
    #[arg(long, conflicts_with = "h2c")]
    pub no_http2: bool,
    /// Serve HTTP/2 without RFC 8441: SETTINGS_ENABLE_CONNECT_PROTOCOL is not
    /// advertised, so browsers open their WebSockets over HTTP/1.1 (to test
    /// that fallback).
    #[arg(long, conflicts_with = "no_http2")]
    pub no_extended_connect: bool,
    /// Read commands from stdin for every open connection (echo mode):
    /// `/close [CODE [REASON]]`, `/drop` (no close frame: clients see 1006),
    /// `/ping [DATA]`, `/send TEXT` (or any line not starting with `/`),
    /// `/list`, `/help`. To test how clients handle server-side closes.
    #[arg(long, conflicts_with_all = ["broadcast", "exec", "exec_shared"])]
    pub console: bool,
}

/// Runs the server; returns the exit code.
/// Every connection is a file descriptor, and the usual soft limit (1024) is
/// far below what one process may hold: raise it to the hard limit, as Go's
/// runtime and nginx's `worker_rlimit_nofile` do. The hard limit itself is
/// the administrator's (README "Many connections").
fn raise_file_limit() {
    let before = rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft);
    match (before, rlimit::increase_nofile_limit(u64::MAX)) {
        (Ok(before), Ok(now)) if now > before => {
            tracing::debug!("file descriptor limit raised from {before} to {now} (the hard limit)")
        }
        (_, Err(e)) => tracing::warn!(
            "cannot raise the file descriptor limit ({e}): connections past it fail with \"too many open files\"; raise it with ulimit -n"
        ),
        _ => {}
    }
}

pub async fn run(mut args: ServeArgs) -> u8 {
    let config = match server_config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wsx: {e}");
            return 2;
        }
    };
    if let Some(dir) = &args.r#static {
        if !dir.is_dir() {
            eprintln!("wsx: --static {}: not a directory", dir.display());
            return 2;
        }
    }
    let listen = args.listen;
    raise_file_limit();
    let server = match wsx::Server::bind(listen).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("wsx: cannot listen on {listen}: {e} (is another server using the port? pick another with --listen)");
            return 2;
        }
    };
    // With port 0 the kernel picks one: the log, the test page address and
    // the self-signed certificate's file name say the one it picked.
    let listen = server.local_addr().unwrap_or(listen);
    args.listen = listen;
    let tls = match tls::tls_acceptor(&args.tls, listen, !args.no_http2) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("wsx: {e}");
            return 2;
        }
    };
    let (scheme, http_scheme) = if tls.is_some() {
        ("wss", "https")
    } else {
        ("ws", "http")
    };
    let handle = server.handle();
    let metrics = Arc::new(metrics::Metrics::default());
    let fanout = if args.broadcast {
        match modes::fanout(&args).await {
            Ok(f) => {
                metrics.register(|r| f.register_metrics(r));
                Some(f)
            }
            Err(e) => {
                eprintln!("wsx: {e}");
                return 2;
            }
        }
    } else {
        None
    };
    let router = http::router(
        args.r#static.clone(),
        metrics.clone(),
        handle.clone(),
        fanout.clone(),
    );
    let state = Arc::new(modes::State::new(args, metrics.clone(), fanout));
    if let Some(tx) = &state.console {
        tokio::spawn(console::console_loop(metrics.open.clone(), tx.clone()));
    }
    let http = match (state.args.no_http2, tls.is_some() || state.args.h2c) {
        (true, _) | (false, false) => "HTTP/1.1",
        (false, true) if state.args.no_extended_connect => {
            "HTTP/1.1 and HTTP/2 (WebSockets over HTTP/1.1 only)"
        }
        (false, true) => "HTTP/1.1 and HTTP/2",
    };
    tracing::info!(
        "{} server listening on {scheme}://{listen}, {http} (test page: {http_scheme}://{listen}/, metrics: {http_scheme}://{listen}/metrics)",
        state.mode()
    );
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: closing every connection with 1001");
        handle.shutdown();
    });
    let result = server
        .with_config(config)
        .with_acceptor(tls)
        .with_http(wsx::server::HttpService::new(router))
        .serve_with(
            |_| Ok(()),
            move |ws, accepted| modes::handle(state.clone(), Box::new(ws), accepted),
        )
        .await;
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("wsx: {e}");
            1
        }
    }
}

/// The library's server settings from the flags.
fn server_config(args: &ServeArgs) -> Result<wsx::ServerConfig, String> {
    let secs = |s: f64| Some(s).filter(|s| *s > 0.0).map(Duration::from_secs_f64);
    let send_frame = args.send_frame_size.map(|n| n as usize);
    let protocol = crate::protocol_config(
        args.max_message,
        secs(args.ping_interval),
        secs(args.idle_timeout),
        send_frame,
    )?;
    let origin = args.origin.policy()?;
    let mut config = wsx::ServerConfig::default();
    if args.broadcast {
        config
            .subprotocols
            .push(wsx_fanout::SUBPROTOCOL.to_string());
    }
    let http2 = (!args.no_http2)
        .then(|| wsx::http2::Http2Config::default().extended_connect(!args.no_extended_connect));
    Ok(config
        .http2(http2)
        .h2c(args.h2c)
        .limits(protocol)
        .origin(origin)
        .max_connections(args.max_connections)
        .shutdown_timeout(Duration::from_secs_f64(args.drain.max(0.0)))
        .deflate(
            (!args.no_deflate).then(|| wsx::wsx_proto::deflate::DeflateConfig {
                level: args.deflate_level,
                ..Default::default()
            }),
        ))
}

pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
