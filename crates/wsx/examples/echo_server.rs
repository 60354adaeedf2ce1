//! An echo server: every text and binary message comes back to its sender.
//!
//! ```text
//! cargo run -p wsx --example echo_server -- [ADDR]      (default 127.0.0.1:9001)
//! wsx connect ws://127.0.0.1:9001/                      (any path works)
//! ```
//!
//! `Server::serve` runs the accept loop with the limits of `ServerConfig`
//! (handshake deadline, Origin check, keepalive pings). Ctrl-C shuts it down
//! gracefully: no new connections, a 1001 close ("going away") to every
//! client, then up to `shutdown_timeout` for their close handshakes.

use wsx::{Message, Server};

#[tokio::main]
async fn main() -> Result<(), wsx::Error> {
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:9001".into());
    let server = Server::bind(&addr).await?;
    println!("listening on ws://{}/", server.local_addr()?);

    // Take the handle before `serve` consumes the server.
    let handle = server.handle();
    tokio::spawn(async move {
        tokio::signal::ctrl_c().await.ok();
        println!(
            "shutting down: {} connection(s) open",
            handle.active_connections()
        );
        handle.shutdown();
    });

    // One task per connection runs this closure.
    server
        .serve(|mut ws, peer| async move {
            // `recv` answers pings by itself; `Ok(None)` is a clean close,
            // and after `shutdown` it is the 1001 close handshake.
            while let Ok(Some(msg)) = ws.recv().await {
                if let Message::Text(_) | Message::Binary(_) = msg {
                    if ws.send(msg).await.is_err() {
                        break;
                    }
                }
            }
            println!("{peer} left");
        })
        .await?;
    println!("all connections closed");
    Ok(())
}
