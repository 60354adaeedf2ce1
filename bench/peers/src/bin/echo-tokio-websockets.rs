//! Echo server on tokio-websockets.
//!
//! Follows tokio-websockets' `examples/echo_server.rs` (its benchmark server):
//! current_thread runtime with only the IO driver, one task per connection
//! wrapped in `tokio::task::unconstrained`, `ServerBuilder` with
//! `Config::default().frame_size(usize::MAX)` so echoed messages are never
//! re-fragmented, and a `next()`/`send()` loop echoing text and binary only.
//! The library answers Pings and completes the Close handshake itself.
//!
//! One deliberate difference: the example uses `Limits::unlimited()`; here the
//! library's default `Limits` are kept (max payload 64 MiB), per the peers'
//! "default max message size, at least 16 MiB" rule. tokio-websockets has no
//! permessage-deflate.

#[path = "../common.rs"]
mod common;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_websockets::{Config, Limits, ServerBuilder};

const BIN: &str = "echo-tokio-websockets";

async fn handle(conn: TcpStream) {
    let Ok((_request, mut server)) = ServerBuilder::new()
        .config(Config::default().frame_size(usize::MAX))
        .limits(Limits::default())
        .accept(conn)
        .await
    else {
        return;
    };
    while let Some(Ok(item)) = server.next().await {
        if (item.is_text() || item.is_binary()) && server.send(item).await.is_err() {
            break;
        }
    }
}

fn main() {
    let addr = common::listen_addr(BIN, "WebSocket echo server on tokio-websockets.");
    common::runtime(false).block_on(async move {
        let listener = common::bind(BIN, &addr).await;
        loop {
            let stream = common::accept(BIN, &listener).await;
            tokio::spawn(tokio::task::unconstrained(handle(stream)));
        }
    })
}
