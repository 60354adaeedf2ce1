//! `wsx`: a WebSocket toolkit on the command line.

mod bench;
mod connect;
mod diagnose;
mod probe;
mod request_args;
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
