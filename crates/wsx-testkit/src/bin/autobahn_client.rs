//! The client side of the Autobahn conformance suite: fetch the case count,
//! then for each case connect and echo every message until the server closes.
//!
//! `AUTOBAHN_URL` (default ws://127.0.0.1:9001) and `AUTOBAHN_AGENT`
//! (default wsx) are set by `../shared/autobahn/test-client`.
//!
//! `--http2`: every case as a stream of ONE HTTP/2 connection (RFC 8441;
//! h2c with prior knowledge for ws://), e.g. through nghttpx, which turns
//! each into an HTTP/1.1 upgrade to wstest. It fails, rather than falling
//! back, if the server cannot carry WebSockets over HTTP/2.

use wsx::{
    client::{ClientConfig, ClientRequest},
    http2::{Http2Config, Http2Connection},
    MaybeTlsStream, Message, WebSocket,
};

/// HTTP/1.1 (a connection per case), or streams of one HTTP/2 connection.
enum Dial {
    Http1,
    Http2(Http2Connection),
}

impl Dial {
    async fn open(
        &self,
        url: &str,
        config: &ClientConfig,
    ) -> Result<WebSocket<MaybeTlsStream>, wsx::Error> {
        let req = ClientRequest::new(url)?;
        let (ws, _) = match self {
            Dial::Http1 => wsx::client::connect_with(&req, config).await?,
            Dial::Http2(h2) => h2.websocket(&req, config).await?,
        };
        Ok(ws)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base = std::env::var("AUTOBAHN_URL").unwrap_or_else(|_| "ws://127.0.0.1:9001".into());
    let agent = std::env::var("AUTOBAHN_AGENT").unwrap_or_else(|_| "wsx".into());
    let http2 = std::env::args().any(|a| a == "--http2");
    let mut config = ClientConfig::default();
    let dial = if http2 {
        config = config.http2(Some(Http2Config::default()));
        let h2 = Http2Connection::connect(&format!("{base}/"), &config).await?;
        if !h2.supports_websockets() {
            return Err(format!(
                "{base}: the server does not advertise RFC 8441 (SETTINGS_ENABLE_CONNECT_PROTOCOL)"
            )
            .into());
        }
        Dial::Http2(h2)
    } else {
        Dial::Http1
    };

    let mut ws = dial.open(&format!("{base}/getCaseCount"), &config).await?;
    let count: u32 = match ws.recv().await? {
        Some(Message::Text(t)) => t.trim().parse()?,
        other => return Err(format!("unexpected case count message {other:?}").into()),
    };
    while ws.recv().await?.is_some() {}

    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={agent}");
        let mut ws = match dial.open(&url, &config).await {
            Ok(ws) => ws,
            Err(e) => {
                eprintln!("case {case}: {e}");
                continue;
            }
        };
        loop {
            match ws.recv().await {
                Ok(Some(msg @ (Message::Text(_) | Message::Binary(_)))) => {
                    if ws.feed(msg).await.is_err() {
                        break;
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    eprintln!("case {case}: {e}");
                    break;
                }
            }
        }
    }

    let mut ws = dial
        .open(&format!("{base}/updateReports?agent={agent}"), &config)
        .await?;
    while ws.recv().await?.is_some() {}
    Ok(())
}
