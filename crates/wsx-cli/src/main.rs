//! `wsx`: a WebSocket toolkit on the command line.

mod bench;
mod common;
mod connect;
mod diagnose;
mod probe;
mod proxy;
mod replay;
mod request_args;
mod serve;
mod term;

// `serve` names these `crate::…`: the helpers the subcommands share.
pub use common::{default_max_message, parse_close, protocol_config};

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
  wsx bench ws://127.0.0.1:9001/ -c 100 --depth 16
  wsx term                                    # your shell in the browser")]
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
    /// Terminal sessions in the browser: a program on a PTY per session,
    /// that outlives its connections, with viewers, roles and a REST API.
    #[command(after_help = term::EXAMPLES)]
    Term(term::TermArgs),
    /// A WebSocket-aware relay: shows every frame both ways, records them,
    /// and breaks the connection on purpose (faults).
    #[command(after_help = proxy::EXAMPLES)]
    Proxy(proxy::ProxyArgs),
    /// Play the client side of a `wsx proxy --record` recording against a
    /// server and report where its answers differ.
    #[command(after_help = replay::EXAMPLES)]
    Replay(replay::ReplayArgs),
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
    init_logging();
    let threads = match &cli.command {
        Command::Serve(a) => a.threads,
        _ => Some(2),
    };
    let rt = match runtime(threads) {
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
            Command::Term(args) => term::run(args).await,
            Command::Proxy(args) => proxy::run(args).await,
            Command::Replay(args) => replay::run(args).await,
            Command::Bench(_) | Command::Completions { .. } => {
                unreachable!("handled before the runtime starts")
            }
        }
    });
    // Do not wait for blocked stdin readers and the like.
    rt.shutdown_background();
    ExitCode::from(code)
}

/// Logs to stderr, filtered by `WSX_LOG` (default `info`).
fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WSX_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// The runtime: one thread, `n` worker threads, or one per core (`None`).
fn runtime(threads: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    match threads {
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
    }
}
