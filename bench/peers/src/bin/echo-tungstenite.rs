//! Echo server on tokio-tungstenite.
//!
//! Follows tokio-tungstenite's `examples/echo-server.rs`: `accept_async` with
//! the default `WebSocketConfig`, split the stream and `forward` every text or
//! binary message back to the sink. tungstenite answers Pings and completes
//! the Close handshake by itself; control frames are filtered out of the
//! forward. Differences from the example: single-threaded runtime (the example
//! uses `#[tokio::main]`), TCP_NODELAY, and errors end the connection quietly
//! instead of panicking the task.

#[path = "../common.rs"]
mod common;

use futures_util::{future, StreamExt, TryStreamExt};
use tokio::net::TcpStream;

const BIN: &str = "echo-tungstenite";

async fn handle(stream: TcpStream) {
    // Default WebSocketConfig: max_message_size 64 MiB, max_frame_size 16 MiB,
    // no extensions (tungstenite has no permessage-deflate in this build).
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let (write, read) = ws.split();
    // We should not forward messages other than text or binary.
    let _ = read
        .try_filter(|msg| future::ready(msg.is_text() || msg.is_binary()))
        .forward(write)
        .await;
}

fn main() {
    let addr = common::listen_addr(BIN, "WebSocket echo server on tokio-tungstenite.");
    common::runtime(false).block_on(async move {
        let listener = common::bind(BIN, &addr).await;
        loop {
            let stream = common::accept(BIN, &listener).await;
            tokio::spawn(handle(stream));
        }
    })
}
