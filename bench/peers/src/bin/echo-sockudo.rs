//! Echo server on sockudo-ws.
//!
//! Built from sockudo-ws's own guidance for a fast Tokio HTTP/1.1 echo:
//! - the handshake that `WebSocketServer::<Http1>::accept_raw` performs:
//!   `handshake::server_handshake` then `WebSocketStream::from_raw_with_leftover`
//!   (keeps the concrete `TcpStream`, no boxed transport, see
//!   docs/PERFORMANCE_AUDIT.md §4 item 7 "use the non-erased accept in hot
//!   servers"; and frame bytes that arrive with the upgrade request are kept,
//!   which `examples/simple_echo.rs`'s hand-rolled handshake drops).
//!   `WebSocketServer` itself is only exported by sockudo-ws 3.1.0 when the
//!   `http2` or `http3` feature is on (`#[cfg(all(feature = "tokio-runtime",
//!   any(feature = "http2", feature = "http3")))]` in its lib.rs), so its two
//!   steps are called directly instead of pulling in h2/quinn,
//! - `Config::default()`: compression Disabled, write_coalescing = true
//!   (cork buffer 16 KiB), max_message_size 64 MiB, max_frame_size 16 MiB,
//! - the README's "Tokio unified echo loop": replies are queued with `feed()`
//!   and flushed by `next()` when the parsed input batch is exhausted, so a
//!   burst of messages is answered with one write (the library's cork/batch
//!   path), instead of `send()` which flushes per message,
//! - `sockudo_ws::init_clock()` before building the runtime (README,
//!   "Connection Clock"),
//! - TCP_NODELAY as in every sockudo example.
//! The library answers Pings and the Close handshake. The crate is built
//! without its default `permessage-deflate` feature. tokio timers are enabled
//! because sockudo-ws's heartbeat/close deadlines need them.

#[path = "../common.rs"]
mod common;

// Optional: `--features sockudo-mimalloc` turns on sockudo-ws's `mimalloc`
// feature, which installs mimalloc as the global allocator from inside the
// library (README: "recommended for production"). Off by default.

use futures_util::{SinkExt, StreamExt};
use sockudo_ws::handshake::server_handshake;
use sockudo_ws::{Config, Message, Role, WebSocketStream};
use tokio::net::TcpStream;

const BIN: &str = "echo-sockudo";

async fn echo(ws: &mut WebSocketStream<TcpStream>) -> sockudo_ws::Result<()> {
    while let Some(message) = ws.next().await {
        match message? {
            message @ (Message::Text(_) | Message::Binary(_)) => {
                ws.feed(message).await?;
            }
            Message::Close(_) => return Ok(()),
            _ => {} // Ping/Pong are handled by the stream.
        }
    }
    Ok(())
}

async fn handle(mut stream: TcpStream) {
    let Ok(handshake) = server_handshake(&mut stream).await else {
        return;
    };
    let mut ws =
        WebSocketStream::from_raw_with_leftover(stream, Role::Server, Config::default(), handshake.leftover);
    let _ = echo(&mut ws).await;
}

fn main() {
    let addr = common::listen_addr(BIN, "WebSocket echo server on sockudo-ws.");
    sockudo_ws::init_clock();
    common::runtime(true).block_on(async move {
        let listener = common::bind(BIN, &addr).await;
        loop {
            let stream = common::accept(BIN, &listener).await;
            tokio::spawn(handle(stream));
        }
    })
}
