//! `wsx`: a WebSocket toolkit on the command line.

mod bench;
mod connect;
mod diagnose;
mod probe;
mod serve;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// mimalloc keeps per-connection memory low (no fragmentation from the
/// handshake's short-lived buffers) and is fast for the per-batch buffers.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A WebSocket toolkit: server, client, handshake probe and load generator.
#[derive(Parser, Debug)]
#[command(name = "wsx", version, about, long_about = None)]
#[command(after_help = "Examples:
  wsx serve                                   # echo server on ws://127.0.0.1:9001
  echo hello | wsx connect ws://127.0.0.1:9001/
  wsx connect ws://127.0.0.1:9001/            # interactive on a terminal
  wsx probe ws://127.0.0.1:9001/              # the handshake, step by step
  wsx bench ws://127.0.0.1:9001/ -c 100 --depth 16")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a server: echo (default), broadcast rooms, a program per
    /// connection, static files, a test page at / for browsers.
    #[command(after_help = serve::EXAMPLES)]
    Serve(serve::ServeArgs),
    /// Connect to a server: a REPL on a terminal; otherwise stdin lines go
    /// out as messages and received messages are printed one per line.
    #[command(after_help = connect::EXAMPLES)]
    Connect(connect::ConnectArgs),
    /// Perform the opening handshake and show it, with timings and a
    /// diagnosis when it fails (the `curl -i` of WebSockets).
    #[command(after_help = probe::EXAMPLES)]
    Probe(probe::ProbeArgs),
    /// Load-test an echo server: throughput, latency percentiles, errors.
    #[command(after_help = bench::EXAMPLES)]
    Bench(bench::BenchArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = "Examples:
  wsx completions bash > ~/.local/share/bash-completion/completions/wsx
  wsx completions zsh > ~/.zfunc/_wsx
  wsx completions fish > ~/.config/fish/completions/wsx.fish")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Completions { shell } = cli.command {
        let mut cmd = <Cli as clap::CommandFactory>::command();
        clap_complete::generate(shell, &mut cmd, "wsx", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    if let Command::Bench(args) = cli.command {
        // The load generator runs its own single-threaded runtimes.
        return ExitCode::from(bench::run(args));
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WSX_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let threads = match &cli.command {
        Command::Serve(a) => a.threads,
        _ => Some(2),
    };
    let rt = match threads {
        Some(1) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Some(n) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n.max(1))
            .enable_all()
            .build(),
        None => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wsx: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let code = rt.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Connect(args) => connect::run(args).await,
            Command::Probe(args) => probe::run(args).await,
            Command::Bench(_) | Command::Completions { .. } => {
                unreachable!("handled before the runtime starts")
            }
        }
    });
    // Do not wait for blocked stdin readers and the like.
    rt.shutdown_background();
    ExitCode::from(code)
}

/// Protocol settings from the common `--max-message` flag and timers.
pub fn protocol_config(
    max_message: usize,
    ping_interval: Option<std::time::Duration>,
    idle_timeout: Option<std::time::Duration>,
    send_frame_size: Option<usize>,
) -> Result<wsx::Config, String> {
    wsx::Config::builder()
        .max_message_size(max_message)
        .max_frame_size(max_message)
        .ping_interval(ping_interval)
        .idle_timeout(idle_timeout)
        .send_frame_size(send_frame_size)
        .build()
        .map_err(|e| e.to_string())
}

/// The network options `connect` and `probe` share: TLS trust and client
/// certificate, and the proxy.
#[derive(Debug, Clone, clap::Args)]
pub struct NetArgs {
    /// Trust this CA (PEM) for wss://, besides the system and bundled roots
    /// (e.g. a private CA, or the certificate `wsx serve --tls-self-signed` printed).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<std::path::PathBuf>,
    /// Client certificate chain (PEM) for servers that require mutual TLS.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<std::path::PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<std::path::PathBuf>,
    /// Go through this proxy: http://[user:pass@]host:port (CONNECT) or
    /// socks5://[user:pass@]host:port. Without it, HTTPS_PROXY (wss://),
    /// HTTP_PROXY (ws://) or ALL_PROXY are used unless NO_PROXY covers the host.
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,
    /// DANGEROUS: do not verify the server's certificate (tests against
    /// self-signed servers only; anyone on the path can read and alter traffic).
    #[arg(long, short = 'k')]
    pub insecure: bool,
}

impl NetArgs {
    /// TLS client settings from `--ca`, `--cert`/`--key` and `--insecure`;
    /// `None` when none is given (system and bundled roots).
    pub fn tls(&self) -> Result<Option<std::sync::Arc<wsx::tls::rustls::ClientConfig>>, String> {
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
        let chain = diagnose::chain;
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

    /// The proxy from `--proxy`, else from the environment for this URL.
    pub fn proxy(&self, req: &wsx::ClientRequest) -> Result<Option<wsx::Proxy>, String> {
        match &self.proxy {
            Some(p) => wsx::Proxy::parse(p)
                .map(Some)
                .map_err(|e| format!("--proxy: {e}")),
            None => wsx::Proxy::from_env(req.is_secure(), req.host()).map_err(|e| e.to_string()),
        }
    }
}

/// The default `--max-message`.
pub fn default_max_message() -> usize {
    wsx::wsx_proto::config::DEFAULT_MAX_MESSAGE_SIZE
}

/// The arguments of a `/close [code] [reason]` command (`connect`'s REPL,
/// `serve --console`): `/close bye` is 1000 with reason "bye".
pub fn parse_close(rest: &str) -> Result<wsx::CloseFrame, String> {
    if rest.is_empty() {
        return Ok(wsx::CloseFrame::new(wsx::CloseCode::NORMAL, ""));
    }
    let (first, tail) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if !first.chars().all(|c| c.is_ascii_digit()) {
        return Ok(wsx::CloseFrame::new(wsx::CloseCode::NORMAL, rest));
    }
    let code = first.parse::<u16>().map(wsx::CloseCode).ok();
    match code {
        Some(c) if c.is_sendable() => {
            let reason = tail.trim();
            if reason.len() > wsx::wsx_proto::close::MAX_REASON_LEN {
                return Err(format!(
                    "a close reason has at most {} bytes; this one has {}",
                    wsx::wsx_proto::close::MAX_REASON_LEN,
                    reason.len()
                ));
            }
            Ok(wsx::CloseFrame::new(c, reason))
        }
        _ => Err(format!(
            "close code {first} may not be sent: use 1000-1003, 1007-1014 or 3000-4999 (4000-4999 for applications)"
        )),
    }
}
