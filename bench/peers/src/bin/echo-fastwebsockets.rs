//! Echo server on fastwebsockets.
//!
//! Follows fastwebsockets' `examples/echo_server.rs`: hyper http1 server with
//! `with_upgrades()`, `fastwebsockets::upgrade::upgrade`, the WebSocket task
//! run under `tokio::task::unconstrained`, a `FragmentCollector` so whole
//! messages are echoed, and a current_thread runtime with only the IO driver.
//! As the README recommends, `set_writev(true)`, `set_auto_close(true)` and
//! `set_auto_pong(true)` are set explicitly (they are also the defaults): the
//! library answers Pings and the Close handshake. Max message size is the
//! library default (64 MiB). fastwebsockets has no permessage-deflate.

#[path = "../common.rs"]
mod common;

use fastwebsockets::{upgrade, FragmentCollector, OpCode, WebSocketError};
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};

const BIN: &str = "echo-fastwebsockets";

async fn handle_client(fut: upgrade::UpgradeFut) -> Result<(), WebSocketError> {
    let mut ws = fut.await?;
    ws.set_writev(true);
    ws.set_auto_close(true);
    ws.set_auto_pong(true);
    let mut ws = FragmentCollector::new(ws);

    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Close => break,
            OpCode::Text | OpCode::Binary => {
                ws.write_frame(frame).await?;
            }
            _ => {}
        }
    }
    Ok(())
}

async fn server_upgrade(
    mut req: Request<Incoming>,
) -> Result<Response<Empty<Bytes>>, WebSocketError> {
    let (response, fut) = upgrade::upgrade(&mut req)?;
    tokio::task::spawn(async move {
        let _ = tokio::task::unconstrained(handle_client(fut)).await;
    });
    Ok(response)
}

fn main() {
    let addr = common::listen_addr(BIN, "WebSocket echo server on fastwebsockets (hyper upgrade).");
    common::runtime(false).block_on(async move {
        let listener = common::bind(BIN, &addr).await;
        loop {
            let stream = common::accept(BIN, &listener).await;
            tokio::spawn(async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                let conn = http1::Builder::new()
                    .serve_connection(io, service_fn(server_upgrade))
                    .with_upgrades();
                let _ = conn.await;
            });
        }
    })
}
