//! One upgrade decision whichever way a request arrives: the standalone
//! `Server`, a plain hyper server calling `wsx::server::upgrade`, and an
//! axum `Router` with the `WebSocketUpgrade` extractor answer every
//! handshake (good, malformed, cross-origin, refused by the hook, a plain
//! page request, one whose Upgrade header a proxy stripped) with the
//! same status and body, and all three echo over the upgraded stream.
#![cfg(feature = "axum")]

use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wsx::server::{upgrade, Body, ServerConfig};
use wsx::{
    server::{Accept, HandshakeError, Upgrade},
    Message,
};

/// The accept hook of every server: `?token=ok` passes, anything else is 401.
fn decide(up: &Upgrade) -> Result<Accept, HandshakeError> {
    match up.query() {
        Some("token=ok") => Ok(Accept::default()),
        _ => Err(HandshakeError::rejected(
            http::StatusCode::UNAUTHORIZED,
            "missing or wrong ?token=",
        )),
    }
}

async fn echo<S>(mut ws: wsx::WebSocket<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    while let Ok(Some(m)) = ws.recv().await {
        if ws.send(m).await.is_err() {
            break;
        }
    }
}

async fn standalone() -> SocketAddr {
    let server = wsx::Server::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve_with(
        |up| decide(up).map(|_| ()),
        |ws, _: wsx::server::Accepted<()>| echo(ws),
    ));
    addr
}

async fn hyper_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let service = hyper::service::service_fn(|mut req| async move {
                let (response, pending) = upgrade(&mut req, &ServerConfig::default(), decide);
                if let Some(pending) = pending {
                    tokio::spawn(async move {
                        if let Ok(ws) = pending.websocket::<TcpStream>().await {
                            assert!(
                                matches!(ws.get_ref(), wsx::server::UpgradedIo::Direct(_)),
                                "the TcpStream was not taken back from hyper"
                            );
                            echo(ws).await;
                        }
                    });
                }
                Ok::<http::Response<Body>, std::convert::Infallible>(response)
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                    .with_upgrades(),
            );
        }
    });
    addr
}

async fn axum_server() -> SocketAddr {
    use axum::routing::get;
    async fn ws(upgrade: wsx::axum::WebSocketUpgrade) -> axum::response::Response {
        upgrade.on_upgrade_with(decide, echo)
    }
    let app = axum::Router::new().route("/chat", get(ws));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Status and body of the answer to `request`, and the accept key if any.
async fn answer(addr: SocketAddr, request: &str) -> (u16, String, Option<String>) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    // Read the head, then the body by its length (keep-alive servers do
    // not close).
    let (head, mut body) = loop {
        let n = tcp.read(&mut chunk).await.unwrap();
        assert!(
            n > 0,
            "closed before the head: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break (
                String::from_utf8_lossy(&buf[..i]).to_string(),
                buf[i + 4..].to_vec(),
            );
        }
    };
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let len: usize = header("content-length").map_or(0, |v| v.parse().unwrap());
    while body.len() < len {
        let n = tcp.read(&mut chunk).await.unwrap();
        assert!(n > 0);
        body.extend_from_slice(&chunk[..n]);
    }
    (
        status,
        String::from_utf8_lossy(&body).to_string(),
        header("sec-websocket-accept"),
    )
}

fn handshake(target: &str, extra: &str) -> String {
    format!(
        "GET {target} HTTP/1.1\r\nHost: app.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
    )
}

#[tokio::test]
async fn standalone_hyper_and_axum_answer_every_handshake_alike() {
    let servers = [
        ("standalone", standalone().await),
        ("hyper", hyper_server().await),
        ("axum", axum_server().await),
    ];
    let v13 = "Sec-WebSocket-Version: 13\r\n";
    let cases = [
        ("good", handshake("/chat?token=ok", v13), 101),
        ("no token", handshake("/chat", v13), 401),
        ("wrong token", handshake("/chat?token=no", v13), 401),
        (
            "cross-origin",
            handshake(
                "/chat?token=ok",
                &format!("{v13}Origin: https://evil.example\r\n"),
            ),
            403,
        ),
        ("no version", handshake("/chat?token=ok", ""), 400),
        (
            "version 8",
            handshake("/chat?token=ok", "Sec-WebSocket-Version: 8\r\n"),
            426,
        ),
        (
            "plain GET",
            "GET /chat HTTP/1.1\r\nHost: app.example\r\n\r\n".to_string(),
            426,
        ),
        (
            "Upgrade stripped by a proxy",
            format!(
                "GET /chat?token=ok HTTP/1.1\r\nHost: app.example\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{v13}\r\n"
            ),
            426,
        ),
        (
            "bad key",
            handshake("/chat?token=ok", v13).replace("dGhlIHNhbXBsZSBub25jZQ==", "short"),
            400,
        ),
    ];
    for (what, request, want) in &cases {
        let mut answers = Vec::new();
        for (name, addr) in &servers {
            let (status, body, accept) = answer(*addr, request).await;
            assert_eq!(status, *want, "{what} via {name}: {body}");
            answers.push((name, body, accept));
        }
        let (first, rest) = answers.split_first().unwrap();
        for other in rest {
            assert_eq!(
                (&first.1, &first.2),
                (&other.1, &other.2),
                "{what}: {} and {} answer differently",
                first.0,
                other.0
            );
        }
        if *want == 101 {
            assert_eq!(first.2.as_deref(), Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
        }
    }
    // And each echoes over the upgraded connection, deflate negotiated.
    for (name, addr) in &servers {
        let (mut ws, _) = wsx::client::connect_with(
            &wsx::client::ClientRequest::new(&format!("ws://{addr}/chat?token=ok")).unwrap(),
            &wsx::client::ClientConfig::default(),
        )
        .await
        .unwrap();
        assert!(ws.deflate().is_some(), "{name}: no permessage-deflate");
        let big = "x".repeat(100_000);
        for m in ["hello", big.as_str()] {
            ws.send(Message::text(m)).await.unwrap();
            match ws.recv().await.unwrap() {
                Some(Message::Text(t)) => assert_eq!(t, m, "{name}"),
                other => panic!("{name}: {other:?}"),
            }
        }
        ws.close(None).await.unwrap();
        while ws.recv().await.unwrap().is_some() {}
    }
}
