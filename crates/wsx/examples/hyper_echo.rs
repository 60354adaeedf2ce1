//! A plain hyper 1.x server that upgrades requests to WebSocket with
//! `wsx::server::upgrade`: an echo on any path, and a line of text for
//! requests that are not upgrades.
//!
//! ```text
//! cargo run -p wsx --example hyper_echo -- [ADDR]       (default 127.0.0.1:9001)
//! wsx connect ws://127.0.0.1:9001/
//! ```
//!
//! `upgrade` decides the handshake as `wsx::Server` does (same statuses,
//! Origin policy and limits from the `ServerConfig`) and returns the
//! response for hyper to send; the connection becomes the WebSocket once
//! hyper has sent the 101, which needs `.with_upgrades()` on the connection.

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use wsx::server::{full, upgrade, Body, ServerConfig};
use wsx::wsx_proto::handshake::is_upgrade_request;
use wsx::{server::Accept, Message};

async fn handle(
    mut req: http::Request<hyper::body::Incoming>,
    config: Arc<ServerConfig>,
) -> Result<http::Response<Body>, Infallible> {
    if !is_upgrade_request(&req) {
        return Ok(http::Response::new(full(
            "hello from hyper; WebSocket clients may connect on any path\n",
        )));
    }
    // The accept hook sees the request (path, headers, offered
    // subprotocols): authenticate here, or refuse with an HTTP status.
    let (response, pending) = upgrade(&mut req, &config, |_| Ok(Accept::default()));
    if let Some(pending) = pending {
        // hyper sends the 101 only after this function returns: wait for the
        // connection in a task of its own.
        tokio::spawn(async move {
            // `TcpStream`: the stream given to hyper (inside `TokioIo`),
            // taken back as it is.
            let Ok(mut ws) = pending.websocket::<TcpStream>().await else {
                return;
            };
            while let Ok(Some(msg)) = ws.recv().await {
                if let Message::Text(_) | Message::Binary(_) = msg {
                    if ws.send(msg).await.is_err() {
                        break;
                    }
                }
            }
        });
    }
    Ok(response)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:9001".into());
    let listener = TcpListener::bind(&addr).await?;
    println!("listening on http://{}/", listener.local_addr()?);
    let config = Arc::new(ServerConfig::default());
    loop {
        let (tcp, _peer) = listener.accept().await?;
        // Small WebSocket messages should leave at once, not wait for Nagle.
        let _ = tcp.set_nodelay(true);
        let config = config.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(req, config.clone()));
            let conn = http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .with_upgrades();
            if let Err(e) = conn.await {
                eprintln!("connection error: {e}");
            }
        });
    }
}
