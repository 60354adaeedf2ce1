//! Raw TCP echo (NOT WebSocket): read into a buffer, write it all back.
//!
//! The floor for CPU per message: same single-threaded tokio runtime, same
//! accept loop and TCP_NODELAY as the WebSocket peers, but no framing, masking,
//! UTF-8 validation or handshake.

#[path = "../common.rs"]
mod common;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BIN: &str = "echo-rawtcp";
/// Read buffer size. 64 KiB matches a typical loopback read and is not a
/// message-size limit: larger payloads simply take several read/write rounds.
const BUF: usize = 64 * 1024;

async fn handle(mut stream: TcpStream) -> std::io::Result<()> {
    let mut buf = vec![0u8; BUF];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return stream.shutdown().await;
        }
        stream.write_all(&buf[..n]).await?;
    }
}

fn main() {
    let addr = common::listen_addr(BIN, "Raw TCP echo server (not WebSocket).");
    common::runtime(false).block_on(async move {
        let listener = common::bind(BIN, &addr).await;
        loop {
            let stream = common::accept(BIN, &listener).await;
            tokio::spawn(async move {
                let _ = handle(stream).await;
            });
        }
    })
}
