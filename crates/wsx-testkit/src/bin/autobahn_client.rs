//! The client side of the Autobahn conformance suite: fetch the case count,
//! then for each case connect and echo every message until the server closes.
//!
//! `AUTOBAHN_URL` (default ws://127.0.0.1:9001) and `AUTOBAHN_AGENT`
//! (default wsx) are set by `../shared/autobahn/test-client`.

use wsx::{
    client::{ClientConfig, ClientRequest},
    Message,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base = std::env::var("AUTOBAHN_URL").unwrap_or_else(|_| "ws://127.0.0.1:9001".into());
    let agent = std::env::var("AUTOBAHN_AGENT").unwrap_or_else(|_| "wsx".into());
    let config = ClientConfig::default();

    let mut ws = wsx::connect(&format!("{base}/getCaseCount")).await?;
    let count: u32 = match ws.recv().await? {
        Some(Message::Text(t)) => t.trim().parse()?,
        other => return Err(format!("unexpected case count message {other:?}").into()),
    };
    while ws.recv().await?.is_some() {}

    for case in 1..=count {
        let req = ClientRequest::new(&format!("{base}/runCase?case={case}&agent={agent}"))?;
        let mut ws = match wsx::client::connect_with(&req, &config).await {
            Ok((ws, _)) => ws,
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

    let mut ws = wsx::connect(&format!("{base}/updateReports?agent={agent}")).await?;
    while ws.recv().await?.is_some() {}
    Ok(())
}
