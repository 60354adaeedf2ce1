//! Echo server on sockudo-ws with permessage-deflate (RFC 7692).
//!
//! Same runtime, accept loop and echo loop as `echo-sockudo` (the README's
//! "Tokio unified echo loop": `feed()` replies, `next()` flushes when the
//! parsed batch is exhausted), with compression as sockudo-ws's own
//! examples enable it: `Compression::Dedicated` (`examples/axum_deflate.rs`:
//! "per-connection compressor (best ratio)"): window 15 both ways, level 6,
//! context takeover kept, messages under 16 bytes sent uncompressed.
//!
//! The handshake: in sockudo-ws 3.1.0 only the axum integration negotiates
//! permessage-deflate (`handshake::server_handshake`, which
//! `WebSocketServer::accept_raw` uses, always answers without
//! `Sec-WebSocket-Extensions`). So this binary does what
//! `axum_integration::WebSocketUpgrade::on_upgrade` does, with the library's
//! own pieces and without hyper/axum: `handshake::parse_request`,
//! `deflate::negotiate_server_deflate(offers, &Compression::Dedicated
//! .to_deflate_config())`, `handshake::build_response` with the negotiated
//! `to_response_header()`, then `CompressedWebSocketStream::server_with_leftover`
//! (concrete `TcpStream`, leftover frame bytes kept). A client that offers
//! no (acceptable) deflate gets a plain `WebSocketStream`, like axum's path.

#[path = "../common.rs"]
mod common;

use bytes::BytesMut;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use sockudo_ws::deflate::negotiate_server_deflate;
use sockudo_ws::handshake::{build_response, generate_accept_key, parse_request};
use sockudo_ws::stream::CompressedWebSocketStream;
use sockudo_ws::{Compression, Config, Message, Role, WebSocketStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BIN: &str = "echo-sockudo-deflate";
/// Same cap as sockudo-ws's own HTTP/1 handshake.
const MAX_REQUEST: usize = 8192;

async fn echo<W>(ws: &mut W) -> sockudo_ws::Result<()>
where
    W: Stream<Item = sockudo_ws::Result<Message>> + Sink<Message, Error = sockudo_ws::Error> + Unpin,
{
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
    let mut buf = BytesMut::with_capacity(4096);
    let (response, deflate, consumed) = loop {
        if buf.len() > MAX_REQUEST {
            return;
        }
        match stream.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        match parse_request(&buf) {
            Ok(Some((req, consumed))) => {
                let mut policy = Compression::Dedicated.to_deflate_config().expect("enabled");
                // bench/compare --deflate-level sets it for both servers.
                if let Some(level) = std::env::var("SOCKUDO_DEFLATE_LEVEL").ok().and_then(|v| v.parse().ok()) {
                    policy.compression_level = level;
                }
                let negotiated = req.extensions.and_then(|offers| negotiate_server_deflate(offers, &policy));
                let header = negotiated.as_ref().map(|n| n.to_response_header());
                let response = build_response(&generate_accept_key(req.key), None, header.as_deref());
                break (response, negotiated.map(|n| n.config), consumed);
            }
            Ok(None) => continue,
            Err(_) => return,
        }
    };
    if stream.write_all(&response).await.is_err() {
        return;
    }
    let leftover = (consumed < buf.len()).then(|| buf.split_off(consumed).freeze());
    let config = Config::builder().compression(Compression::Dedicated).build();
    match deflate {
        Some(d) => {
            let mut ws = CompressedWebSocketStream::server_with_leftover(stream, config, d, leftover);
            let _ = echo(&mut ws).await;
        }
        None => {
            let mut ws = WebSocketStream::from_raw_with_leftover(stream, Role::Server, config, leftover);
            let _ = echo(&mut ws).await;
        }
    }
}

fn main() {
    let addr = common::listen_addr(BIN, "WebSocket echo server on sockudo-ws with permessage-deflate.");
    sockudo_ws::init_clock();
    common::runtime(true).block_on(async move {
        let listener = common::bind(BIN, &addr).await;
        loop {
            let stream = common::accept(BIN, &listener).await;
            tokio::spawn(handle(stream));
        }
    })
}
