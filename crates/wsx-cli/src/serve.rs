//! `wsx serve`: the server.

use std::net::SocketAddr;
use wsx::Message;

/// Examples shown by `wsx serve --help`.
pub const EXAMPLES: &str = "Examples:
  wsx serve                                   # echo on ws://127.0.0.1:9001, any path
  wsx serve --listen 0.0.0.0:8080";

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
}

/// Runs the server; returns the exit code.
pub async fn run(args: ServeArgs) -> u8 {
    let protocol = match crate::protocol_config(args.max_message, None) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wsx: {e}");
            return 2;
        }
    };
    let listen = args.listen;
    let server = match wsx::Server::bind(listen).await {
        Ok(s) => s.with_config(wsx::ServerConfig {
            protocol,
            ..Default::default()
        }),
        Err(e) => {
            eprintln!("wsx: cannot listen on {listen}: {e}");
            return 2;
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
