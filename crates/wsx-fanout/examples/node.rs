//! A chat node: every WebSocket joins the room named by its path; what a
//! client sends goes to every member of the room on every node sharing the
//! Redis. `wsx.pubsub.v1` clients get envelopes and resume with
//! `?since=OFFSET&epoch=EPOCH`.
//!
//!   cargo run -p wsx-fanout --example node -- [--redis redis://127.0.0.1:6379]
//!       [--listen 127.0.0.1:9002] [--presence-ttl-ms 15000]
//!
//! Prints `listening on ADDR` once it accepts connections. (The tests run it
//! as a node they can SIGKILL.)

use std::time::Duration;
use wsx_fanout::{Fanout, FanoutConfig, JoinOptions, SUBPROTOCOL};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut redis, mut listen, mut ttl) = (None, "127.0.0.1:9002".to_string(), 15_000u64);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--redis" => redis = Some(val()?),
            "--listen" => listen = val()?,
            "--presence-ttl-ms" => ttl = val()?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let config = FanoutConfig::default().presence_ttl(Duration::from_millis(ttl));
    let fanout = match &redis {
        Some(url) => Fanout::redis(url, config).await?,
        None => Fanout::local(config),
    };
    let server = wsx::Server::bind(listen.as_str()).await?;
    println!("listening on {}", server.local_addr()?);
    let mut config = wsx::ServerConfig::default();
    config.subprotocols.push(SUBPROTOCOL.to_string());
    server
        .with_config(config)
        .serve_with(
            |_| Ok(()),
            move |ws, accepted| {
                let fanout = fanout.clone();
                async move {
                    let room = accepted.uri.path().to_string();
                    let since =
                        match wsx_fanout::resume_from_query(accepted.uri.query().unwrap_or("")) {
                            Ok(s) => s,
                            Err(e) => {
                                eprintln!("{e}");
                                return;
                            }
                        };
                    let opts = JoinOptions::default()
                        .envelope(ws.protocol() == Some(SUBPROTOCOL))
                        .since(since)
                        .name(accepted.peer.to_string());
                    let _ = wsx_fanout::serve_member(&fanout, ws, &room, opts).await;
                }
            },
        )
        .await?;
    Ok(())
}
