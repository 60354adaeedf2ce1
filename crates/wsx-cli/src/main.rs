//! `wsx`: a WebSocket toolkit on the command line.

mod bench;

/// mimalloc keeps per-connection memory low (no fragmentation from the
/// handshake's short-lived buffers) and is fast for the per-batch buffers.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::process::ExitCode;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use wsx::{CloseCode, CloseFrame, Message};

/// A WebSocket toolkit: an echo server and a client.
#[derive(Parser, Debug)]
#[command(name = "wsx", version, about, long_about = None)]
#[command(
    after_help = "Examples:\n  wsx serve                         # echo server on ws://127.0.0.1:9001\n  wsx serve --listen 0.0.0.0:8080\n  echo hello | wsx connect ws://127.0.0.1:9001/"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run an echo server: every text and binary message is sent back, on any path.
    #[command(after_help = "Example:\n  wsx serve --listen 127.0.0.1:9001")]
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9001", value_name = "HOST:PORT")]
        listen: SocketAddr,
        /// Largest accepted message, in bytes.
        #[arg(long, default_value_t = wsx_proto_default_max())]
        max_message: usize,
        /// Worker threads (default: one per CPU core; 1 runs a single-threaded runtime).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Connect to a server: stdin lines go out as text messages, received
    /// messages are printed to stdout, one per line.
    #[command(
        after_help = "Example:\n  echo hello | wsx connect ws://127.0.0.1:9001/\n\nExit codes: 0 normal close, 1 closed by the peer with an error code, 2 usage, connection or handshake error."
    )]
    Connect {
        /// The ws:// URL.
        url: String,
        /// Largest accepted message, in bytes.
        #[arg(long, default_value_t = wsx_proto_default_max())]
        max_message: usize,
    },
    /// Load-test an echo server: throughput, latency percentiles, errors.
    #[command(after_help = BENCH_EXAMPLES)]
    Bench(bench::BenchArgs),
}

const BENCH_EXAMPLES: &str = "Every echo is checked (length and content); mismatches count as errors and make the exit code 1.

Examples:
  wsx bench ws://127.0.0.1:9001/ -c 100 -s 20 --depth 16 -d 10
  wsx bench ws://127.0.0.1:9001/ -c 10 -s 65536 --depth 4 --json
  wsx bench ws://127.0.0.1:9001/ -c 50 --rate 20000 -d 30      # open loop, latency from schedule
  wsx bench ws://127.0.0.1:9001/ -c 8 --mode handshake -d 5    # connections per second
  wsx bench ws://127.0.0.1:9001/ -c 10000 --mode idle -d 10    # hold idle connections";

fn wsx_proto_default_max() -> usize {
    wsx::wsx_proto::config::DEFAULT_MAX_MESSAGE_SIZE
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
        .init();
    let threads = match &cli.command {
        Command::Serve { threads, .. } => *threads,
        _ => None,
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
    rt.block_on(async {
        match cli.command {
            Command::Serve {
                listen,
                max_message,
                ..
            } => serve(listen, max_message).await,
            Command::Connect { url, max_message } => connect(&url, max_message).await,
            Command::Bench(_) => unreachable!("handled before the runtime starts"),
        }
    })
}

fn protocol_config(max_message: usize) -> Result<wsx::Config, String> {
    wsx::Config::builder()
        .max_message_size(max_message)
        .max_frame_size(max_message)
        .build()
        .map_err(|e| e.to_string())
}

async fn serve(listen: SocketAddr, max_message: usize) -> ExitCode {
    let protocol = match protocol_config(max_message) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wsx: {e}");
            return ExitCode::from(2);
        }
    };
    let server = match wsx::Server::bind(listen).await {
        Ok(s) => s.with_config(wsx::ServerConfig {
            protocol,
            ..Default::default()
        }),
        Err(e) => {
            eprintln!("wsx: cannot listen on {listen}: {e}");
            return ExitCode::from(2);
        }
    };
    let server = std::sync::Arc::new(server);
    tracing::info!("echo server listening on ws://{listen}");
    loop {
        let (tcp, peer) = match server.accept_tcp().await {
            Ok(x) => x,
            Err(e) => {
                // E.g. out of file descriptors: back off briefly, keep serving.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let server = server.clone();
        tokio::spawn(async move {
            let mut ws =
                match wsx::accept_with(tcp, server.config(), |_| Ok(Default::default())).await {
                    Ok(ws) => ws,
                    Err(e) => {
                        tracing::debug!(%peer, "handshake failed: {e}");
                        return;
                    }
                };
            tracing::debug!(%peer, "connection open");
            loop {
                match ws.recv().await {
                    Ok(Some(msg @ (Message::Text(_) | Message::Binary(_)))) => {
                        // Queue without flushing: recv() flushes before it waits,
                        // so pipelined echoes leave together.
                        if let Err(e) = ws.feed(msg).await {
                            tracing::debug!(%peer, "send failed: {e}");
                            break;
                        }
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        let code = ws.close_info().map(|c| c.code);
                        tracing::debug!(%peer, ?code, "connection closed");
                        break;
                    }
                    Err(e) => {
                        tracing::debug!(%peer, "connection ended: {e}");
                        break;
                    }
                }
            }
        });
    }
}

async fn connect(url: &str, max_message: usize) -> ExitCode {
    let protocol = match protocol_config(max_message) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wsx: {e}");
            return ExitCode::from(2);
        }
    };
    let req = match wsx::ClientRequest::new(url) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("wsx: {e}");
            return ExitCode::from(2);
        }
    };
    let config = wsx::ClientConfig {
        protocol,
        ..Default::default()
    };
    let (ws, _) = match wsx::connect_with(&req, &config).await {
        Ok(x) => x,
        Err(e) => {
            eprintln!("wsx: {e}");
            return ExitCode::from(2);
        }
    };
    let (mut rx, mut tx) = ws.split();
    let sender = tokio::spawn(async move {
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        loop {
            match lines.next_line().await {
                Ok(Some(line)) => {
                    if tx.send(Message::text(line)).await.is_err() {
                        return;
                    }
                }
                Ok(None) | Err(_) => {
                    // End of input: close normally and let the reader see the reply.
                    let _ = tx.close(Some(CloseFrame::new(CloseCode::NORMAL, ""))).await;
                    return;
                }
            }
        }
    });
    let mut stdout = tokio::io::stdout();
    let code = loop {
        match rx.recv().await {
            Ok(Some(Message::Text(t))) => {
                let _ = stdout.write_all(t.as_bytes()).await;
                let _ = stdout.write_all(b"\n").await;
                let _ = stdout.flush().await;
            }
            Ok(Some(Message::Binary(b))) => {
                let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
                let _ = stdout.write_all(hex.as_bytes()).await;
                let _ = stdout.write_all(b"\n").await;
                let _ = stdout.flush().await;
            }
            Ok(Some(_)) => {}
            Ok(None) => break 0,
            Err(e) => {
                eprintln!("wsx: {e}");
                break if e.is_closed() && e.close_code() != Some(CloseCode::ABNORMAL) {
                    1
                } else {
                    2
                };
            }
        }
    };
    sender.abort();
    ExitCode::from(code)
}
