//! Echo server on tokio-websockets over TLS (tokio-rustls): the wss:// peer.
//!
//! The same server as `echo-tokio-websockets` (its benchmark example's
//! settings), with each connection first accepted by tokio-rustls 0.26 on
//! rustls' aws-lc-rs provider, as the `wsx` binary uses: TLS 1.3 and 1.2,
//! ALPN `http/1.1`, a self-signed ECDSA P-256 certificate for `localhost` and
//! `127.0.0.1` generated at start (clients run with `--insecure`).

#[path = "../common.rs"]
mod common;

use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::rustls::{self, pki_types::PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_websockets::{Config, Limits, ServerBuilder};

const BIN: &str = "echo-tokio-websockets-tls";

fn acceptor() -> TlsAcceptor {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let ck = rcgen::generate_simple_self_signed(names).expect("certificate");
    let key = PrivateKeyDer::Pkcs8(ck.key_pair.serialize_der().into());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![ck.cert.der().clone()], key)
        .expect("certificate and key");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsAcceptor::from(Arc::new(config))
}

async fn handle(acceptor: TlsAcceptor, conn: TcpStream) {
    let Ok(tls) = acceptor.accept(conn).await else {
        return;
    };
    let Ok((_request, mut server)) = ServerBuilder::new()
        .config(Config::default().frame_size(usize::MAX))
        .limits(Limits::default())
        .accept(tls)
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
    let addr = common::listen_addr(BIN, "WebSocket echo server on tokio-websockets over tokio-rustls.");
    let acceptor = acceptor();
    common::runtime(false).block_on(async move {
        let listener = common::bind(BIN, &addr).await;
        loop {
            let stream = common::accept(BIN, &listener).await;
            tokio::spawn(tokio::task::unconstrained(handle(acceptor.clone(), stream)));
        }
    })
}
