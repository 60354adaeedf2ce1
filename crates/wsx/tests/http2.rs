//! WebSockets over HTTP/2 (RFC 8441) between wsx's client and server: many
//! sockets on one connection, a socket that is never read does not stall
//! the others, closing or resetting one leaves the rest open, the stream
//! past the cap is refused cleanly, and the client falls back to HTTP/1.1
//! where the server cannot carry WebSockets over HTTP/2.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wsx::client::{ClientConfig, ClientRequest};
use wsx::http2::{Http2Config, Http2Connection};
use wsx::server::{Accepted, ServerHandle};
use wsx::{Message, ServerConfig, ServerStream, WebSocket};

type ServerWs = WebSocket<ServerStream<tokio::net::TcpStream>>;

fn sha256(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

/// Echoes on every path except `/sink`, whose handler never reads (until
/// the server stops).
async fn handler(mut ws: ServerWs, accepted: Accepted<()>) {
    assert!(ws.get_ref().is_http2() || accepted.uri.path() == "/h1");
    if accepted.uri.path() == "/sink" {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        return;
    }
    while let Ok(Some(m)) = ws.recv().await {
        if ws.send(m).await.is_err() {
            break;
        }
    }
}

async fn server(config: ServerConfig) -> (SocketAddr, ServerHandle) {
    let server = wsx::Server::bind("127.0.0.1:0")
        .await
        .unwrap()
        .with_config(config);
    let addr = server.local_addr().unwrap();
    let handle = server.handle();
    tokio::spawn(server.serve_with(|_| Ok(()), handler));
    (addr, handle)
}

fn h2c() -> ServerConfig {
    ServerConfig::default().h2c(true)
}

fn client_config() -> ClientConfig {
    ClientConfig::default().http2(Some(Http2Config::default()))
}

async fn open(
    h2: &Http2Connection,
    addr: SocketAddr,
    path: &str,
) -> WebSocket<wsx::MaybeTlsStream> {
    let req = ClientRequest::new(&format!("ws://{addr}{path}")).unwrap();
    let (ws, done) = h2.websocket(&req, &client_config()).await.unwrap();
    assert_eq!(done.response.status(), 200, "RFC 8441: 200, not 101");
    assert!(ws.get_ref().is_http2());
    ws
}

/// Sends `data` and reads the echo back, checked by SHA-256.
async fn echo_checked(
    mut ws: WebSocket<wsx::MaybeTlsStream>,
    data: Vec<u8>,
) -> WebSocket<wsx::MaybeTlsStream> {
    let want = sha256(&data);
    ws.send(Message::binary(data)).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(60), ws.recv()).await {
        Ok(Ok(Some(Message::Binary(got)))) => assert_eq!(sha256(&got), want),
        other => panic!("no echo: {other:?}"),
    }
    ws
}

/// Incompressible bytes (xorshift), so that permessage-deflate does not
/// shrink what flow control must carry.
fn payload(seed: u8, len: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ u64::from(seed);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// 100 WebSockets on one HTTP/2 connection, each echoing 1 MiB (checked
/// by SHA-256) at the same time, while one socket's server side never
/// reads what it is sent and another's client never reads its echo: the
/// others finish. The server counts one TCP connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_sockets_on_one_connection_and_unread_ones_stall_no_one() {
    let (addr, handle) = server(h2c()).await;
    let h2 = Http2Connection::connect(&format!("ws://{addr}/"), &client_config())
        .await
        .unwrap();
    assert!(h2.supports_websockets());
    assert_eq!(h2.max_streams(), 100);

    // The server never reads /sink: 2 MiB pushed into it fill its stream
    // window (256 KiB) and no more.
    let mut sink = open(&h2, addr, "/sink").await;
    let push = tokio::spawn(async move {
        let _ = sink.send(Message::binary(payload(200, 2 << 20))).await;
        let _ = sink.flush().await;
        sink
    });
    // The client never reads this one's echo of 2 MiB.
    let mut deaf = open(&h2, addr, "/deaf").await;
    deaf.send(Message::binary(payload(201, 2 << 20)))
        .await
        .unwrap();

    let mut tasks = Vec::new();
    for i in 0..98u8 {
        let ws = open(&h2, addr, &format!("/echo/{i}")).await;
        tasks.push(tokio::spawn(echo_checked(ws, payload(i, 1 << 20))));
    }
    let mut done = Vec::new();
    for t in tasks {
        done.push(t.await.unwrap());
    }
    assert_eq!(done.len(), 98);
    assert_eq!(h2.open_websockets(), 100);
    assert!(!push.is_finished(), "2 MiB went into a stream nobody reads");
    assert_eq!(handle.active_connections(), 1, "one TCP connection");
    assert_eq!(handle.http2_connections(), 1);
    assert_eq!(handle.accepted(), 100);
    for mut ws in done {
        ws.close(None).await.unwrap();
    }
    push.abort();
}

/// Closing one socket (a close handshake) and resetting another (dropped
/// without one: RST_STREAM) leave the others on the connection working;
/// the server sees 1006 for the reset one.
#[tokio::test]
async fn closing_or_resetting_one_stream_leaves_the_others_open() {
    let (addr, _handle) = server(h2c()).await;
    let h2 = Http2Connection::connect(&format!("ws://{addr}/"), &client_config())
        .await
        .unwrap();
    let mut a = open(&h2, addr, "/a").await;
    let b = open(&h2, addr, "/b").await;
    let c = open(&h2, addr, "/c").await;
    a.close(Some(wsx::CloseFrame::new(wsx::CloseCode(4000), "done")))
        .await
        .unwrap();
    assert_eq!(a.recv().await.unwrap(), None);
    drop(a);
    drop(b); // no close frame: the stream is reset
    let c = echo_checked(c, payload(1, 64 * 1024)).await;
    let d = open(&h2, addr, "/d").await;
    let d = echo_checked(d, payload(2, 1000)).await;
    assert_eq!(h2.open_websockets(), 2);
    drop((c, d));
}

/// Past the server's SETTINGS_MAX_CONCURRENT_STREAMS: wsx's client refuses
/// to queue a socket and says why; a client that ignores the setting gets
/// RST_STREAM(REFUSED_STREAM) for the stream past it (raw frames below).
#[tokio::test]
async fn the_stream_past_the_cap_is_refused_cleanly() {
    let cap = 4;
    let (addr, _handle) = server(h2c().http2(Some(Http2Config::default().max_streams(cap)))).await;
    let h2 = Http2Connection::connect(&format!("ws://{addr}/"), &client_config())
        .await
        .unwrap();
    assert_eq!(h2.max_streams(), cap as usize);
    let mut open_ones = Vec::new();
    for i in 0..cap {
        open_ones.push(open(&h2, addr, &format!("/{i}")).await);
    }
    let req = ClientRequest::new(&format!("ws://{addr}/over")).unwrap();
    let err = h2.websocket(&req, &client_config()).await.unwrap_err();
    assert!(err.to_string().contains("the server's limit"), "{err}");
    // One ends: there is room again.
    open_ones.pop().unwrap().close(None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let again = open(&h2, addr, "/again").await;
    echo_checked(again, payload(3, 100)).await;

    // A client that opens cap + 1 streams without waiting for the server's
    // SETTINGS: the last is refused with REFUSED_STREAM (7), the others
    // answered with HEADERS.
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut out = Vec::new();
    out.extend_from_slice(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    out.extend_from_slice(&frame(0x4, 0, 0, &[])); // SETTINGS (empty)
    for i in 0..=cap {
        let id = 1 + 2 * i;
        out.extend_from_slice(&frame(
            0x1,
            0x4,
            id,
            &connect_headers(addr, &format!("/raw/{i}")),
        ));
    }
    tcp.write_all(&out).await.unwrap();
    let mut answered = Vec::new();
    let mut refused = Vec::new();
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while answered.len() + refused.len() < (cap + 1) as usize {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, tcp.read(&mut chunk))
            .await
            .expect("the server answers every stream")
            .unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
        while buf.len() >= 9 {
            let len = u32::from_be_bytes([0, buf[0], buf[1], buf[2]]) as usize;
            if buf.len() < 9 + len {
                break;
            }
            let (kind, id) = (
                buf[3],
                u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) & 0x7fff_ffff,
            );
            match kind {
                0x1 => answered.push(id),
                0x3 => refused.push((id, u32::from_be_bytes([buf[9], buf[10], buf[11], buf[12]]))),
                _ => {}
            }
            buf.drain(..9 + len);
        }
    }
    assert_eq!(
        answered.len(),
        cap as usize,
        "answered {answered:?}, refused {refused:?}"
    );
    assert_eq!(
        refused,
        vec![(1 + 2 * cap, 7)],
        "REFUSED_STREAM for the one past the cap"
    );
}

/// An HTTP/2 frame.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An extended CONNECT's header block: HPACK literals without indexing.
fn connect_headers(addr: SocketAddr, path: &str) -> Vec<u8> {
    let mut block = Vec::new();
    let authority = addr.to_string();
    for (k, v) in [
        (":method", "CONNECT"),
        (":protocol", "websocket"),
        (":scheme", "http"),
        (":path", path),
        (":authority", authority.as_str()),
        ("sec-websocket-version", "13"),
    ] {
        block.push(0);
        block.push(k.len() as u8);
        block.extend_from_slice(k.as_bytes());
        block.push(v.len() as u8);
        block.extend_from_slice(v.as_bytes());
    }
    block
}

/// The client falls back to HTTP/1.1 where HTTP/2 cannot carry the
/// WebSocket: a server without h2c (prior knowledge is not understood), and
/// one that speaks HTTP/2 without RFC 8441. With the setting, it uses
/// HTTP/2; without `http2` in its config, it never tries.
#[tokio::test]
async fn the_client_falls_back_to_http1_where_it_must() {
    let url = |addr: SocketAddr| format!("ws://{addr}/h1");
    let connect = |addr: SocketAddr, config: ClientConfig| async move {
        let req = ClientRequest::new(&url(addr)).unwrap();
        let (mut ws, _) = wsx::client::connect_with(&req, &config).await.unwrap();
        ws.send(Message::text("hi")).await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), Some(Message::text("hi")));
        ws.get_ref().is_http2()
    };
    let (plain, _) = server(ServerConfig::default()).await;
    assert!(!connect(plain, client_config()).await, "no h2c: HTTP/1.1");
    let (no_8441, h) =
        server(h2c().http2(Some(Http2Config::default().extended_connect(false)))).await;
    assert!(
        !connect(no_8441, client_config()).await,
        "no RFC 8441: HTTP/1.1"
    );
    assert_eq!(h.http2_connections(), 1, "it did speak HTTP/2 first");
    let (both, h) = server(h2c()).await;
    assert!(connect(both, client_config()).await, "RFC 8441: HTTP/2");
    assert!(
        !connect(both, ClientConfig::default()).await,
        "not asked: HTTP/1.1"
    );
    assert_eq!(h.http2_connections(), 1);

    // Asked for directly, the missing setting is an error that says so.
    let h2 = Http2Connection::connect(&url(no_8441), &client_config())
        .await
        .unwrap();
    assert!(!h2.supports_websockets());
    let req = ClientRequest::new(&url(no_8441)).unwrap();
    let err = h2.websocket(&req, &client_config()).await.unwrap_err();
    assert!(
        err.to_string().contains("SETTINGS_ENABLE_CONNECT_PROTOCOL"),
        "{err}"
    );
}

/// The accept hook, the Origin policy and subprotocols decide HTTP/2
/// upgrades as they decide HTTP/1.1 ones; a refusal reaches the client
/// with its status and body.
#[tokio::test]
async fn the_same_upgrade_decision_as_http1() {
    let server = wsx::Server::bind("127.0.0.1:0")
        .await
        .unwrap()
        .with_config(h2c().subprotocols(vec!["chat".into()]));
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve_with(
        |up| match up.query() {
            Some("token=ok") => Ok(()),
            _ => Err(wsx::server::HandshakeError::rejected(
                http::StatusCode::UNAUTHORIZED,
                "missing or wrong ?token=",
            )),
        },
        handler,
    ));
    let h2 = Http2Connection::connect(&format!("ws://{addr}/"), &client_config())
        .await
        .unwrap();
    let req = ClientRequest::new(&format!("ws://{addr}/x")).unwrap();
    let err = h2.websocket(&req, &client_config()).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("401") && text.contains("missing or wrong ?token="),
        "{text}"
    );
    let req = ClientRequest::new(&format!("ws://{addr}/x?token=ok"))
        .unwrap()
        .protocol("chat")
        .header("origin", "https://evil.example")
        .unwrap();
    let err = h2.websocket(&req, &client_config()).await.unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
    let req = ClientRequest::new(&format!("ws://{addr}/x?token=ok"))
        .unwrap()
        .protocol("chat")
        .header("origin", &format!("http://{addr}"))
        .unwrap();
    let (ws, done) = h2.websocket(&req, &client_config()).await.unwrap();
    assert_eq!(ws.protocol(), Some("chat"));
    assert!(
        ws.deflate().is_some(),
        "permessage-deflate negotiated: {:?}",
        done.response
    );
    echo_checked(ws, payload(5, 300_000)).await;
}

/// A server shutdown closes every WebSocket on an HTTP/2 connection with
/// 1001, then `serve` returns.
#[tokio::test]
async fn shutdown_closes_http2_sockets_with_1001() {
    let server = wsx::Server::bind("127.0.0.1:0")
        .await
        .unwrap()
        .with_config(h2c());
    let addr = server.local_addr().unwrap();
    let handle = server.handle();
    let served = tokio::spawn(server.serve_with(|_| Ok(()), handler));
    let h2 = Http2Connection::connect(&format!("ws://{addr}/"), &client_config())
        .await
        .unwrap();
    let mut sockets = Vec::new();
    for i in 0..3 {
        sockets.push(open(&h2, addr, &format!("/{i}")).await);
    }
    handle.shutdown();
    for mut ws in sockets {
        let end = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match ws.recv().await {
                    Ok(Some(_)) => continue,
                    Ok(None) => return ws.close_info().map(|c| c.code.0),
                    Err(e) => return e.close_info().map(|c| c.code.0),
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(end, Some(1001));
    }
    tokio::time::timeout(Duration::from_secs(5), served)
        .await
        .expect("serve returns")
        .unwrap()
        .unwrap();
}

/// wss:// with ALPN: the TLS server offers h2, the client asks for it, the
/// socket rides HTTP/2; without `http2` in the client config, ALPN picks
/// HTTP/1.1 on the same server.
#[tokio::test]
async fn wss_over_http2_with_alpn() {
    let dev = wsx::tls::self_signed(&["localhost"]).unwrap();
    let server = wsx::Server::bind("127.0.0.1:0")
        .await
        .unwrap()
        .with_acceptor(wsx::tls::tokio_rustls::TlsAcceptor::from(
            dev.config.clone(),
        ));
    let addr = server.local_addr().unwrap();
    let handle = server.handle();
    tokio::spawn(server.serve_with(
        |_| Ok(()),
        |mut ws: WebSocket<ServerStream<_>>, _: Accepted<()>| async move {
            while let Ok(Some(m)) = ws.recv().await {
                let _ = ws.send(m).await;
            }
        },
    ));
    let pem = std::env::temp_dir().join(format!("wsx-http2-test-{}.pem", addr.port()));
    std::fs::write(&pem, &dev.cert_pem).unwrap();
    let ca = wsx::tls::TlsClientOptions {
        roots: wsx::tls::Roots::None,
        extra_roots: wsx::tls::load_certs(&pem).unwrap(),
        ..Default::default()
    }
    .build()
    .unwrap();
    let url = format!("wss://localhost:{}/", addr.port());
    let req = ClientRequest::new(&url).unwrap();
    for (http2, want) in [(true, true), (false, false)] {
        let mut config = ClientConfig::default().tls(Some(ca.clone()));
        if http2 {
            config = config.http2(Some(Http2Config::default()));
        }
        let (mut ws, _) = wsx::client::connect_with(&req, &config).await.unwrap();
        assert_eq!(ws.get_ref().is_http2(), want);
        ws.send(Message::text("over tls")).await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), Some(Message::text("over tls")));
    }
    assert_eq!(handle.http2_connections(), 1);
}

/// axum: `axum::serve` takes extended CONNECTs (it enables RFC 8441), and
/// a `get()` route answers them with 405 unless the
/// router wrapped by `http2_websockets`; with it, the extractor accepts the WebSocket
/// with 200 and the socket echoes.
#[cfg(feature = "axum")]
#[tokio::test]
async fn axum_get_routes_take_http2_websockets_when_wrapped() {
    use axum::routing::get;
    async fn ws(up: wsx::axum::WebSocketUpgrade) -> axum::response::Response {
        up.on_upgrade(|mut ws| async move {
            while let Ok(Some(m)) = ws.recv().await {
                if ws.send(m).await.is_err() {
                    break;
                }
            }
        })
    }
    let serve = |app: axum::Router| async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    };
    let bare = serve(axum::Router::new().route("/ws", get(ws))).await;
    let layered = serve(wsx::axum::http2_websockets(
        axum::Router::new().route("/ws", get(ws)),
    ))
    .await;

    let h2 = Http2Connection::connect(&format!("ws://{bare}/"), &client_config())
        .await
        .unwrap();
    assert!(h2.supports_websockets(), "axum::serve advertises RFC 8441");
    let req = ClientRequest::new(&format!("ws://{bare}/ws")).unwrap();
    let err = h2.websocket(&req, &client_config()).await.unwrap_err();
    assert!(err.to_string().contains("405"), "{err}");

    let h2 = Http2Connection::connect(&format!("ws://{layered}/"), &client_config())
        .await
        .unwrap();
    let ws = open(&h2, layered, "/ws").await;
    echo_checked(ws, payload(9, 200_000)).await;
    // HTTP/1.1 upgrades still work on the same route.
    let (mut ws, _) = wsx::client::connect_with(
        &ClientRequest::new(&format!("ws://{layered}/ws")).unwrap(),
        &ClientConfig::default(),
    )
    .await
    .unwrap();
    ws.send(Message::text("h1")).await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Some(Message::text("h1")));
}

/// After the close handshake, a server WebSocket on an HTTP/2 stream waits
/// only HTTP2_CLOSE_LINGER (not the close timeout, as for a TCP peer's FIN)
/// for the client to end its side of the stream (undici never does).
#[tokio::test]
async fn a_closed_http2_socket_does_not_wait_for_the_clients_end_of_stream() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let server = wsx::Server::bind("127.0.0.1:0")
        .await
        .unwrap()
        .with_config(h2c());
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve_with(
        |_| Ok(()),
        move |mut ws: ServerWs, _: Accepted<()>| {
            let tx = tx.clone();
            async move {
                while let Ok(Some(_)) = ws.recv().await {}
                let _ = tx.send(ws.close_info().map(|c| c.code.0));
            }
        },
    ));
    let h2 = Http2Connection::connect(&format!("ws://{addr}/"), &client_config())
        .await
        .unwrap();
    let req = ClientRequest::new(&format!("ws://{addr}/")).unwrap();
    let (mut stream, _) = h2.open_stream(&req, &client_config()).await.unwrap();
    // A masked close frame (mask 0): 1000, and the stream left open.
    stream
        .write_all(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE8])
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    let mut echo = [0u8; 4];
    stream.read_exact(&mut echo).await.unwrap();
    assert_eq!(echo, [0x88, 0x02, 0x03, 0xE8], "the server's close frame");
    let code = tokio::time::timeout(Duration::from_secs(2), rx.recv())
        .await
        .expect("the handler ends without waiting for our END_STREAM");
    assert_eq!(code, Some(Some(1000)));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(stream.read(&mut echo).await.unwrap(), 0, "then END_STREAM");
}
