//! `wsx connect`: the client.

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use wsx::{CloseCode, CloseFrame, Message};

/// Examples shown by `wsx connect --help`.
pub const EXAMPLES: &str = "Examples:
  echo hello | wsx connect ws://127.0.0.1:9001/

Exit codes: 0 normal close, 1 closed by the peer with an error code, 2 usage, connection or handshake error.";

/// Options of `wsx connect`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectArgs {
    /// The ws:// URL.
    pub url: String,
    /// Largest accepted message, in bytes.
    #[arg(long, default_value_t = crate::default_max_message())]
    pub max_message: usize,
}

/// Runs the client; returns the exit code.
pub async fn run(args: ConnectArgs) -> u8 {
    let protocol = match crate::protocol_config(args.max_message, None) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wsx: {e}");
            return 2;
        }
    };
    let req = match wsx::ClientRequest::new(&args.url) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("wsx: {e}");
            return 2;
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
            return 2;
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
    code
}
