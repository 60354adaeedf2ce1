//! `wsx proxy`: flags to a `wsx_proxy::ProxyConfig`, output chosen for the
//! terminal or a pipe, and the library's relay on `wsx::Server`.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Examples shown by `wsx proxy --help`.
pub const EXAMPLES: &str = "Examples:
  wsx proxy --to ws://127.0.0.1:9001          # listen on 127.0.0.1:9002, show every frame both ways
  wsx proxy --to wss://echo.example.com --json > frames.jsonl
  wsx proxy --to ws://127.0.0.1:9001 --record session.jsonl --no-payload
  wsx proxy --to ws://127.0.0.1:9001 --drop-after 3             # the client sees 1006 after 3 messages
  wsx proxy --to ws://127.0.0.1:9001 --no-pong                  # a dead path: pings go unanswered
  wsx proxy --to ws://127.0.0.1:9001 --delay 200ms~100ms@down   # slow, jittery server-to-client
  wsx proxy --to ws://127.0.0.1:9001 --strip-upgrade            # the reverse-proxy mistake
  wsx proxy --to wss://example.com --tls      # clients speak wss:// to the proxy (its own CA, printed)

A fault can target one direction with @up (client to server) or @down (server to client).
Lines: #CONN ARROW SECONDS OPCODE FIN RSV len=N [masked] [code= reason=] \"text\" | hex [inflated: ...] [fault].";

/// Options of `wsx proxy`.
#[derive(Debug, Clone, clap::Args)]
pub struct ProxyArgs {
    /// Address to listen on (loopback unless told otherwise).
    #[arg(long, default_value = "127.0.0.1:9002", value_name = "HOST:PORT")]
    pub listen: SocketAddr,
    /// The server to relay to: ws://HOST:PORT[/PREFIX] or wss://...; each
    /// client's path and query are appended.
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// One JSON object per frame (and per connection event) on stdout.
    #[arg(long, conflicts_with = "quiet")]
    pub json: bool,
    /// Nothing on stdout (with --record, or to measure the relay).
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Colours: auto (on a terminal), always, never.
    #[arg(long, default_value = "auto", value_parser = ["auto", "always", "never"])]
    pub color: String,
    /// Record every frame to FILE as JSON lines (timestamps, connection ids,
    /// payloads in base64 unless --no-payload).
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Leave payloads out of the recording (privacy).
    #[arg(long, requires = "record")]
    pub no_payload: bool,
    /// Fault: hold each frame this long (200ms, or 200ms~100ms for up to
    /// 100 ms more at random)[@up|@down].
    #[arg(long, value_name = "DURATION")]
    pub delay: Option<String>,
    /// Fault: at most this many bytes per second (16384, 16k, 1m)[@up|@down].
    #[arg(long, value_name = "RATE")]
    pub throttle: Option<String>,
    /// Fault: drop both TCP connections (no close frame: 1006) once N
    /// messages went through[@up|@down].
    #[arg(long, value_name = "N")]
    pub drop_after: Option<String>,
    /// Fault: drop both TCP connections this long after the handshake (60s).
    #[arg(long, value_name = "DURATION")]
    pub drop_after_time: Option<String>,
    /// Fault: close both sides with --close-code and --close-reason once N
    /// messages went through[@up|@down].
    #[arg(long, value_name = "N")]
    pub close_after: Option<String>,
    /// The close code of --close-after.
    #[arg(long, default_value_t = 1011, requires = "close_after")]
    pub close_code: u16,
    /// The close reason of --close-after.
    #[arg(
        long,
        default_value = "closed by wsx proxy (--close-after)",
        requires = "close_after"
    )]
    pub close_reason: String,
    /// Fault: drop pings and pongs (a dead path)[=up|down].
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = "both", value_parser = ["both", "up", "down"])]
    pub no_pong: Option<String>,
    /// Fault: corrupt the Nth data frame (its first byte flipped)[@up|@down].
    #[arg(long, value_name = "N")]
    pub corrupt: Option<String>,
    /// Fault: forward the handshake without its Upgrade header (what a
    /// reverse proxy without the WebSocket lines does).
    #[arg(long)]
    pub strip_upgrade: bool,
    /// Relay whole messages, each side its own WebSocket (compression and
    /// fragmentation per side), one line per message; without it, frame for
    /// frame, as sent.
    #[arg(long, conflicts_with_all = ["no_pong", "corrupt"])]
    pub by_message: bool,
    /// Largest frame payload passed on, in bytes.
    #[arg(long, default_value_t = 64 << 20, value_name = "BYTES")]
    pub max_frame: u64,
    /// Accept wss:// from clients: certificates issued on the fly by the
    /// proxy's own CA (created on first use in --ca-dir; trust its ca.pem
    /// for testing only).
    #[arg(long)]
    pub tls: bool,
    /// Where the proxy's CA lives (default: ~/.local/share/wsx/proxy-ca).
    #[arg(long, value_name = "DIR", requires = "tls")]
    pub ca_dir: Option<PathBuf>,
    /// Trust this CA (PEM) for a wss:// upstream, besides the system and bundled roots.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// DANGEROUS: do not verify the upstream's certificate.
    #[arg(long, short = 'k')]
    pub insecure: bool,
}

fn faults(args: &ProxyArgs) -> Result<wsx_proxy::faults::Faults, String> {
    use wsx_proxy::faults::{parse_duration, Faults, Target};
    fn flag<T>(name: &str, r: Result<T, String>) -> Result<T, String> {
        r.map_err(|e| format!("--{name}: {e}"))
    }
    let mut f = Faults::default();
    if let Some(s) = &args.delay {
        f.delay = Some(flag("delay", Faults::parse_delay(s))?);
    }
    if let Some(s) = &args.throttle {
        f.throttle = Some(flag("throttle", Faults::parse_rate(s))?);
    }
    if let Some(s) = &args.drop_after {
        f.drop_after_messages = Some(flag("drop-after", Faults::parse_count(s))?);
    }
    if let Some(s) = &args.drop_after_time {
        f.drop_after_time = Some(flag("drop-after-time", parse_duration(s))?);
    }
    if let Some(s) = &args.close_after {
        let (n, t) = flag("close-after", Faults::parse_count(s))?;
        if args.close_reason.len() > 123 {
            return Err("--close-reason: at most 123 bytes (a close frame's limit)".into());
        }
        f.close_after = Some((n, args.close_code, args.close_reason.clone(), t));
    }
    if let Some(s) = &args.no_pong {
        f.no_pong = Some(match s.as_str() {
            "up" => Target::Up,
            "down" => Target::Down,
            _ => Target::Both,
        });
    }
    if let Some(s) = &args.corrupt {
        f.corrupt = Some(flag("corrupt", Faults::parse_count(s))?);
    }
    f.strip_upgrade = args.strip_upgrade;
    Ok(f)
}

fn tls(args: &ProxyArgs) -> Result<Option<std::sync::Arc<wsx::tls::rustls::ClientConfig>>, String> {
    if args.ca.is_none() && !args.insecure {
        return Ok(None);
    }
    let mut opts = wsx::tls::TlsClientOptions {
        danger_accept_invalid_certs: args.insecure,
        ..Default::default()
    };
    if let Some(ca) = &args.ca {
        opts.extra_roots = wsx::tls::load_certs(ca).map_err(|e| format!("--ca: {e}"))?;
    }
    opts.build().map(Some).map_err(|e| e.to_string())
}

/// Runs the proxy; returns the exit code.
pub async fn run(args: ProxyArgs) -> u8 {
    let setup = || -> Result<(wsx_proxy::ProxyConfig, wsx_proxy::Output), String> {
        let upstream = wsx_proxy::Upstream::parse(&args.to, tls(&args)?)?;
        let mut config = wsx_proxy::ProxyConfig::new(upstream).faults(faults(&args)?);
        config.max_frame = args.max_frame;
        config.by_message = args.by_message;
        if args.tls {
            let dir = args
                .ca_dir
                .clone()
                .unwrap_or_else(wsx_proxy::ca::LocalCa::default_dir);
            let (ca, created) = wsx_proxy::ca::LocalCa::load_or_create(&dir)?;
            eprintln!(
                "wsx proxy: certificates from the local CA {} ({}); {}",
                ca.cert_path().display(),
                if created {
                    "created now"
                } else {
                    "made earlier"
                },
                ca.how_to_trust()
            );
            config.tls = Some(std::sync::Arc::new(ca).server_config()?);
        }
        let colour = match args.color.as_str() {
            "always" => true,
            "never" => false,
            _ => std::io::stdout().is_terminal(),
        };
        let mut output = if args.quiet {
            wsx_proxy::Output::quiet()
        } else if args.json {
            wsx_proxy::Output::json()
        } else {
            wsx_proxy::Output::lines(colour)
        };
        if let Some(path) = &args.record {
            let file = std::fs::File::create(path)
                .map_err(|e| format!("--record {}: {e}", path.display()))?;
            output = output.record(file, !args.no_payload);
        }
        Ok((config, output))
    };
    let (config, output) = match setup() {
        Ok(x) => x,
        Err(e) => {
            eprintln!("wsx: {e}");
            return 2;
        }
    };
    let server = match wsx::Server::bind(args.listen).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "wsx: cannot listen on {}: {e} (pick another with --listen)",
                args.listen
            );
            return 2;
        }
    };
    let local = server.local_addr().map_or(args.listen, |a| a);
    let scheme = if args.tls { "wss" } else { "ws" };
    eprintln!("wsx proxy: {scheme}://{local} -> {}", args.to);
    match wsx_proxy::serve(server, config, output).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("wsx: {e}");
            1
        }
    }
}
