//! Production limits and policies over real sockets on 127.0.0.1: slow
//! readers, slowloris, Origin, connection limit, idle and close timeouts,
//! graceful shutdown, keepalive defaults, fan-out policies.

mod common;

use common::*;
use futures_util::FutureExt;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};
use wsx::{
    broadcast::{Broadcast, BroadcastConfig, SlowConsumer},
    server::{OriginPolicy, ServerHandle},
    CloseCode, Message, Server, ServerConfig, TrySendError,
};

fn protocol() -> wsx_proto::ConfigBuilder {
    wsx_proto::Config::builder()
}

/// `Server::serve` with an echo handler; returns its address, handle and task.
async fn echo_serve(
    config: ServerConfig,
) -> (SocketAddr, ServerHandle, tokio::task::JoinHandle<()>) {
    let server = Server::bind("127.0.0.1:0")
        .await
        .unwrap()
        .with_config(config);
    let addr = server.local_addr().unwrap();
    let handle = server.handle();
    let task = tokio::spawn(async move {
        server
            .serve(|mut ws, _| async move {
                while let Ok(Some(msg)) = ws.recv().await {
                    if matches!(msg, Message::Text(_) | Message::Binary(_))
                        && ws.send(msg).await.is_err()
                    {
                        break;
                    }
                }
            })
            .await
            .unwrap();
    });
    (addr, handle, task)
}

async fn echo_once(addr: SocketAddr) {
    let mut ws = wsx::connect(&format!("ws://{addr}/")).await.unwrap();
    ws.send(Message::text("still here")).await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Some(Message::text("still here")));
    ws.close(None).await.unwrap();
    while ws.recv().await.unwrap().is_some() {}
}

/// A raw request with `extra` header lines; returns the whole response.
async fn raw_upgrade(addr: SocketAddr, host: &str, extra: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET /chat HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let head = read_head(&mut tcp).await.unwrap();
    if head.starts_with("HTTP/1.1 101") {
        return head;
    }
    let body = read_to_eof(&mut tcp).await;
    head + &String::from_utf8_lossy(&body)
}

/// A client without compression: these tests measure bytes on the wire,
/// and their repetitive payloads would compress to almost nothing.
async fn plain_connect(addr: SocketAddr) -> wsx::WebSocket<wsx::MaybeTlsStream> {
    let req = wsx::client::ClientRequest::new(&format!("ws://{addr}/")).unwrap();
    let config = wsx::client::ClientConfig::default().deflate(None);
    wsx::client::connect_with(&req, &config).await.unwrap().0
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

// ---- backpressure ------------------------------------------------------------

/// A client that stops reading while the server sends 1 GiB: the server's
/// sends wait, its memory stays bounded; then every byte arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_reader_of_1_gib_keeps_server_memory_bounded() {
    const MSG: usize = 64 << 10;
    const COUNT: usize = (1 << 30) / MSG;
    let server = Server::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    let payload = bytes::Bytes::from(vec![0x5a; MSG]);
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sent2 = sent.clone();
    let srv = tokio::spawn(async move {
        let (mut ws, _) = server.accept().await.unwrap();
        for _ in 0..COUNT {
            ws.send(Message::Binary(payload.clone())).await.unwrap();
            sent2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        ws.close(None).await.unwrap();
        while ws.recv().await.unwrap().is_some() {}
    });
    let base = rss_kib();
    let mut ws = plain_connect(addr).await;
    // Not reading: the server gets stuck after the socket buffers and its
    // 1 MiB queue fill.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stuck_at = sent.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        stuck_at * MSG < 64 << 20,
        "the server sent {} MiB to a client that reads nothing",
        (stuck_at * MSG) >> 20
    );
    let stalled_rss = rss_kib();
    let mut peak = stalled_rss;
    let mut received = 0usize;
    while let Some(m) = ws.recv().await.unwrap() {
        let Message::Binary(b) = m else {
            panic!("unexpected {m:?}")
        };
        assert_eq!(b.len(), MSG);
        received += 1;
        if received.is_multiple_of(1024) {
            peak = peak.max(rss_kib());
        }
    }
    assert_eq!(received, COUNT, "every message arrives");
    srv.await.unwrap();
    let growth = peak.saturating_sub(base);
    eprintln!(
        "1 GiB to a slow reader: server stalled after {} MiB sent; process RSS {} MiB before, {} MiB while stalled, peak {} MiB (growth {} MiB)",
        (stuck_at * MSG) >> 20,
        base >> 10,
        stalled_rss >> 10,
        peak >> 10,
        growth >> 10
    );
    assert!(growth < 64 << 10, "RSS grew by {} MiB", growth >> 10);
}

/// Receiving side: an application that does not call `recv` stops the
/// connection reading, so TCP pushes back on the sender, whose `try_send`
/// then hands messages back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_messages_push_back_on_the_sender() {
    const MSG: usize = 64 << 10;
    let server = Server::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    let (go, go_rx) = tokio::sync::oneshot::channel::<()>();
    let srv = tokio::spawn(async move {
        let (mut ws, _) = server.accept().await.unwrap();
        let _ = go_rx.await; // not reading until told
        let mut n = 0usize;
        while let Some(m) = ws.recv().await.unwrap() {
            assert_eq!(m.len(), MSG);
            n += 1;
        }
        n
    });
    let mut ws = plain_connect(addr).await;
    let payload = bytes::Bytes::from(vec![1u8; MSG]);
    let mut queued = 0usize;
    let handed_back = loop {
        match ws.try_send(Message::Binary(payload.clone())) {
            Ok(()) => queued += 1,
            Err(TrySendError::Full(m)) => break m,
            Err(TrySendError::Error(e)) => panic!("{e}"),
        }
        assert!(
            queued < 1024,
            "64 MiB accepted by a peer that reads nothing"
        );
        // Give the socket time to take what it can.
        tokio::task::yield_now().await;
        if queued.is_multiple_of(16) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    assert_eq!(handed_back.len(), MSG, "the message comes back");
    assert!(
        ws.send(Message::Binary(payload.clone()))
            .now_or_never()
            .is_none(),
        "send waits while the queue is full"
    );
    eprintln!(
        "unread receiver: the sender queued {queued} x 64 KiB ({} MiB) before try_send said Full",
        (queued * MSG) >> 20
    );
    go.send(()).unwrap();
    ws.send(Message::Binary(payload)).await.unwrap();
    ws.close(None).await.unwrap();
    while ws.recv().await.unwrap().is_some() {}
    assert_eq!(srv.await.unwrap(), queued + 1, "nothing lost");
}

// ---- handshake abuse -----------------------------------------------------------

/// 1,000 connections that send half a request head and stall: a normal
/// client still gets its echo, and the stalled ones are dropped at the
/// handshake deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_do_not_starve_others() {
    let (addr, handle, _task) =
        echo_serve(ServerConfig::default().handshake_timeout(Duration::from_secs(2))).await;
    let mut lorises = Vec::new();
    for _ in 0..1000 {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        lorises.push(tcp);
    }
    let t0 = Instant::now();
    timeout(Duration::from_secs(1), echo_once(addr))
        .await
        .expect("a normal client is served while 1,000 slowloris connections wait");
    eprintln!("echo under 1,000 slowloris connections: {:?}", t0.elapsed());
    // Every slow connection is closed by the server at its deadline.
    let deadline = Duration::from_secs(5);
    let closed = futures_util::future::join_all(lorises.iter_mut().map(|tcp| async move {
        let mut b = [0u8; 64];
        matches!(
            timeout(deadline, tcp.read(&mut b)).await,
            Ok(Ok(0) | Err(_))
        )
    }))
    .await;
    assert!(
        closed.iter().all(|&c| c),
        "a slowloris connection outlived the handshake timeout"
    );
    // The counters move just after the sockets close.
    let t0 = Instant::now();
    while (handle.failed_handshakes(), handle.active_connections()) != (1000, 0) {
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "{} failed handshakes, {} open",
            handle.failed_handshakes(),
            handle.active_connections()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn oversized_request_head_gets_431() {
    let (addr, _, _task) = echo_serve(ServerConfig::default()).await;
    let big = format!("X-Big: {}\r\n", "a".repeat(9000));
    let response = raw_upgrade(addr, "x", &big).await;
    assert!(response.starts_with("HTTP/1.1 431"), "{response}");
}

#[tokio::test]
async fn a_handshake_that_lost_its_upgrade_header_gets_426_with_the_proxy_fix() {
    let (addr, handle, _task) = echo_serve(ServerConfig::default()).await;
    let get = |head: &'static str| async move {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(head.as_bytes()).await.unwrap();
        let body = timeout(Duration::from_secs(10), read_to_eof(&mut tcp))
            .await
            .expect("the answer ends within 10 s");
        String::from_utf8_lossy(&body).into_owned()
    };
    // As nginx forwards a handshake without the Upgrade/Connection lines.
    let stripped = get("GET /chat HTTP/1.1\r\nHost: x\r\nConnection: close\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").await;
    assert!(stripped.starts_with("HTTP/1.1 426 "), "{stripped}");
    assert!(
        stripped
            .contains("a reverse proxy in front of the server did not forward the Upgrade header"),
        "{stripped}"
    );
    for line in wsx_proto::handshake::NGINX_UPGRADE_LINES {
        assert!(stripped.contains(line), "{line} missing from {stripped}");
    }
    // A plain GET is not blamed on a proxy.
    let plain = get("GET /chat HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(plain.starts_with("HTTP/1.1 426 "), "{plain}");
    assert!(!plain.contains("proxy"), "{plain}");
    handle.shutdown();
}

#[tokio::test]
async fn max_connections_answers_503_with_retry_after() {
    let (addr, handle, _task) = echo_serve(ServerConfig::default().max_connections(Some(2))).await;
    let url = format!("ws://{addr}/");
    let mut a = wsx::connect(&url).await.unwrap();
    let _b = wsx::connect(&url).await.unwrap();
    let response = raw_upgrade(addr, "x", "").await;
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    assert_eq!(header(&response, "retry-after"), Some("1"), "{response}");
    assert!(response.contains("max_connections"), "{response}");
    let err = wsx::connect(&url).await.expect_err("over the limit");
    assert!(err.to_string().contains("503"), "{err}");
    assert_eq!(handle.refused_busy(), 2);
    // A slot frees up when a connection ends.
    a.close(None).await.unwrap();
    while a.recv().await.unwrap().is_some() {}
    let t0 = Instant::now();
    loop {
        match wsx::connect(&url).await {
            Ok(_) => break,
            Err(_) if t0.elapsed() < Duration::from_secs(2) => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("no slot after a close: {e}"),
        }
    }
}

#[tokio::test]
async fn an_admission_at_the_limit_gets_a_slot_freed_within_its_grace() {
    let (addr, handle, _task) = echo_serve(ServerConfig::default().max_connections(Some(1))).await;
    let url = format!("ws://{addr}/");
    let mut a = wsx::connect(&url).await.unwrap();
    // Over the limit: the server holds this one up to 100 ms for a slot...
    let b = tokio::spawn({
        let url = url.clone();
        async move { wsx::connect(&url).await }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    // ...and the slot `a` frees within that wakes it, instead of a 503.
    a.close(None).await.unwrap();
    while a.recv().await.unwrap().is_some() {}
    let mut b = b.await.unwrap().expect("admitted when the slot freed");
    b.send(Message::text("in")).await.unwrap();
    assert_eq!(b.recv().await.unwrap(), Some(Message::text("in")));
    assert_eq!(handle.refused_busy(), 0);
}

#[tokio::test]
async fn a_panicking_handler_is_counted_and_the_server_goes_on() {
    let server = Server::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    let handle = server.handle();
    tokio::spawn(async move {
        server
            .serve_with(
                |_| Ok(()),
                |mut ws, accepted| async move {
                    if accepted.uri.path() == "/boom" {
                        panic!("handler panics on purpose (test)");
                    }
                    while let Ok(Some(msg)) = ws.recv().await {
                        if ws.send(msg).await.is_err() {
                            break;
                        }
                    }
                },
            )
            .await
            .unwrap();
    });
    let mut boom = wsx::connect(&format!("ws://{addr}/boom")).await.unwrap();
    // The task's end drops the socket: no close frame.
    let _ = boom.recv().await;
    assert!(
        boom.close_info().is_none_or(|c| c.code.0 == 1006),
        "{:?}",
        boom.close_info()
    );
    let t0 = Instant::now();
    while handle.panicked() != 1 {
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "panicked = {}",
            handle.panicked()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut ok = wsx::connect(&format!("ws://{addr}/")).await.unwrap();
    ok.send(Message::text("still up")).await.unwrap();
    assert_eq!(ok.recv().await.unwrap(), Some(Message::text("still up")));
    assert_eq!(handle.active_connections(), 1);
}

// ---- Origin ----------------------------------------------------------------------

#[tokio::test]
async fn cross_origin_upgrade_gets_403() {
    let (addr, handle, _task) = echo_serve(ServerConfig::default()).await;
    let response = raw_upgrade(addr, "app.example", "Origin: https://evil.example\r\n").await;
    assert!(response.starts_with("HTTP/1.1 403"), "{response}");
    assert!(response.contains("https://evil.example"), "{response}");
    assert!(response.contains("cross-site"), "{response}");
    // Same origin, and no Origin at all (not a browser): allowed.
    for extra in ["Origin: https://app.example\r\n", ""] {
        let ok = raw_upgrade(addr, "app.example", extra).await;
        assert!(ok.starts_with("HTTP/1.1 101"), "{extra:?}: {ok}");
    }
    let t0 = Instant::now();
    while handle.failed_handshakes() != 1 {
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "{}",
            handle.failed_handshakes()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn origin_allowlist_and_allow_any() {
    let policy = OriginPolicy::same_origin()
        .allow("https://*.example.com")
        .unwrap();
    let (addr, _, _task) = echo_serve(ServerConfig::default().origin(policy)).await;
    let ok = raw_upgrade(addr, "api.test", "Origin: https://app.example.com\r\n").await;
    assert!(ok.starts_with("HTTP/1.1 101"), "{ok}");
    let no = raw_upgrade(addr, "api.test", "Origin: https://example.com.evil\r\n").await;
    assert!(no.starts_with("HTTP/1.1 403"), "{no}");

    let (addr, _, _task) =
        echo_serve(ServerConfig::default().origin(OriginPolicy::allow_any())).await;
    let ok = raw_upgrade(addr, "api.test", "Origin: https://anything.test\r\n").await;
    assert!(ok.starts_with("HTTP/1.1 101"), "{ok}");
}

#[tokio::test]
async fn accept_hook_authenticates_before_101() {
    let server = Server::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve_with(
        |up| match up.query() {
            Some("token=s3cret") => Ok("alice".to_string()),
            _ => Err(wsx::server::HandshakeError::rejected(
                http::StatusCode::UNAUTHORIZED,
                "missing or wrong ?token=",
            )),
        },
        |mut ws, who: wsx::server::Accepted<String>| async move {
            let hello = format!("hello {} at {}", who.auth, who.uri.path());
            let _ = ws.send(Message::text(hello)).await;
            let _ = ws.close(None).await;
            while let Ok(Some(_)) = ws.recv().await {}
        },
    ));
    let err = wsx::connect(&format!("ws://{addr}/feed?token=nope"))
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("401"), "{err}");
    let mut ws = wsx::connect(&format!("ws://{addr}/feed?token=s3cret"))
        .await
        .unwrap();
    assert_eq!(
        ws.recv().await.unwrap(),
        Some(Message::text("hello alice at /feed"))
    );
}

// ---- frames ------------------------------------------------------------------------

/// Completes a raw handshake on `addr` and returns the socket.
async fn raw_ws(addr: SocketAddr) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(REQUEST).await.unwrap();
    let head = read_head(&mut tcp).await.unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    tcp
}

#[tokio::test]
async fn huge_length_headers_get_1009_or_1002() {
    let (addr, _, _task) = echo_serve(ServerConfig::default()).await;
    // 2^63 - 1: over max_frame_size, refused from the header.
    let mut tcp = raw_ws(addr).await;
    let mut f = vec![0x82, 0xff];
    f.extend_from_slice(&(u64::MAX >> 1).to_be_bytes());
    f.extend_from_slice(&KEY);
    tcp.write_all(&f).await.unwrap();
    let reply = read_frame(&mut tcp).await.unwrap();
    assert_eq!(reply.close_code(), Some(1009), "{reply:?}");
    // 2^63: the most significant bit must be 0 (RFC 6455 §5.2).
    let mut tcp = raw_ws(addr).await;
    let mut f = vec![0x82, 0xff];
    f.extend_from_slice(&(1u64 << 63).to_be_bytes());
    f.extend_from_slice(&KEY);
    tcp.write_all(&f).await.unwrap();
    let reply = read_frame(&mut tcp).await.unwrap();
    assert_eq!(reply.close_code(), Some(1002), "{reply:?}");
}

#[tokio::test]
async fn hundred_thousand_one_byte_fragments_get_1009() {
    let (addr, _, _task) = echo_serve(ServerConfig::default()).await;
    let mut tcp = raw_ws(addr).await;
    let mut wire = frame(OP_BINARY, false, b"x", Some(KEY));
    let one = frame(OP_CONT, false, b"x", Some(KEY));
    for _ in 1..100_000 {
        wire.extend_from_slice(&one);
    }
    // The server closes mid-stream: its reset may cut our write short.
    let _ = tcp.write_all(&wire).await;
    let reply = read_frame(&mut tcp).await.unwrap();
    assert_eq!(reply.close_code(), Some(1009), "{reply:?}");
    let reason = String::from_utf8_lossy(&reply.payload[2..]).into_owned();
    assert!(reason.contains("frames"), "{reason}");
}

// ---- timers ------------------------------------------------------------------------

#[tokio::test]
async fn idle_connections_are_closed_with_1001() {
    let (addr, _, _task) = echo_serve(
        ServerConfig::default().limits(
            protocol()
                .idle_timeout(Some(Duration::from_millis(300)))
                .build()
                .unwrap(),
        ),
    )
    .await;
    let mut ws = wsx::connect(&format!("ws://{addr}/")).await.unwrap();
    let t0 = Instant::now();
    ws.send(Message::text("x")).await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Some(Message::text("x")));
    assert_eq!(ws.recv().await.unwrap(), None, "closed cleanly");
    let c = ws.close_info().unwrap();
    assert_eq!(c.code, CloseCode::GOING_AWAY);
    assert!(c.reason.contains("idle"), "{}", c.reason);
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "{took:?}"
    );
}

#[tokio::test]
async fn peer_that_never_answers_close_is_dropped_after_the_close_timeout() {
    let server = Server::bind("127.0.0.1:0").await.unwrap().with_config(
        ServerConfig::default().limits(
            protocol()
                .close_timeout(Duration::from_millis(300))
                .build()
                .unwrap(),
        ),
    );
    let addr = server.local_addr().unwrap();
    let srv = tokio::spawn(async move {
        let (mut ws, _) = server.accept().await.unwrap();
        ws.close(Some(wsx::CloseFrame::new(CloseCode::NORMAL, "bye")))
            .await
            .unwrap();
        let err = ws.recv().await.expect_err("no reply");
        err.to_string()
    });
    let mut tcp = raw_ws(addr).await;
    let t0 = Instant::now();
    let close = read_frame(&mut tcp).await.unwrap();
    assert_eq!(close.close_code(), Some(1000));
    // We never answer: the server drops the connection.
    expect_eof(&mut tcp).await;
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(2), "{took:?}");
    let err = srv.await.unwrap();
    assert!(err.contains("did not answer the close frame"), "{err}");
}

/// Servers ping by default: a client that answers nothing is found dead,
/// and RTT is measured from the pongs of one that does.
#[tokio::test(start_paused = true)]
async fn servers_ping_by_default_and_measure_rtt() {
    assert_eq!(
        ServerConfig::default().limits.ping_interval(),
        Some(wsx::server::DEFAULT_SERVER_PING_INTERVAL)
    );
    let (mut ws, mut peer) = server_pair(&ServerConfig::default(), b"").await;
    let t0 = Instant::now();
    let srv = tokio::spawn(async move {
        let r = loop {
            match ws.recv().await {
                Ok(Some(Message::Pong(_))) => {}
                other => break other,
            }
        };
        (r.map(|_| ()), ws.rtt(), Instant::now())
    });
    let ping = read_frame(&mut peer).await.unwrap();
    assert_eq!(ping.opcode, OP_PING);
    assert_eq!(t0.elapsed().as_secs(), 30, "first ping at 30 s");
    // Answer after 50 ms: that is the RTT.
    tokio::time::sleep(Duration::from_millis(50)).await;
    peer.write_all(&masked(OP_PONG, &ping.payload))
        .await
        .unwrap();
    let ping = read_frame(&mut peer).await.unwrap();
    assert_eq!(ping.opcode, OP_PING);
    // Answer nothing now: 10 s later the server gives up (1006).
    let (r, rtt, ended) = srv.await.unwrap();
    let err = r.expect_err("dead peer");
    assert!(err.to_string().contains("did not answer a ping"), "{err}");
    assert_eq!(
        (ended - t0).as_millis(),
        70_000,
        "pings every 30 s; 10 s to answer"
    );
    assert_eq!(rtt, Some(Duration::from_millis(50)));
}

// ---- graceful shutdown ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_sends_1001_waits_then_drops_the_rest() {
    let (addr, handle, task) =
        echo_serve(ServerConfig::default().shutdown_timeout(Duration::from_millis(800))).await;
    let url = format!("ws://{addr}/");
    let mut polite = Vec::new();
    for _ in 0..3 {
        let mut ws = wsx::connect(&url).await.unwrap();
        ws.send(Message::text("hi")).await.unwrap();
        assert!(ws.recv().await.unwrap().is_some());
        polite.push(ws);
    }
    // One that reads the 1001 but never answers it.
    let mut rude = raw_ws(addr).await;
    while handle.active_connections() < 4 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let t0 = Instant::now();
    handle.shutdown();
    for ws in &mut polite {
        assert_eq!(ws.recv().await.unwrap(), None);
        let c = ws.close_info().unwrap();
        assert_eq!(c.code, CloseCode::GOING_AWAY);
        assert_eq!(c.reason, "server shutting down");
    }
    let f = read_frame(&mut rude).await.unwrap();
    assert_eq!(f.close_code(), Some(1001));
    expect_eof(&mut rude).await;
    timeout(Duration::from_secs(3), task)
        .await
        .expect("serve returns after the shutdown timeout")
        .unwrap();
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(700),
        "waited for the close replies: {took:?}"
    );
    assert_eq!(handle.active_connections(), 0);
    // No longer accepting.
    assert!(TcpStream::connect(addr).await.is_err());
}

// ---- fan-out ----------------------------------------------------------------------

/// A hub on a server; returns its address. Every connection subscribes and
/// keeps receiving; `hold` raw clients connect and never read.
async fn hub_server(hub: Broadcast) -> SocketAddr {
    let server = Server::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(move |ws, _| {
        let hub = hub.clone();
        async move {
            let (mut reader, writer) = ws.split();
            let _sub = hub.subscribe(writer);
            while let Ok(Some(_)) = reader.recv().await {}
        }
    }));
    addr
}

async fn wait_subscribers(hub: &Broadcast, n: usize) {
    let t0 = Instant::now();
    while hub.subscribers() != n {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "{} subscribers",
            hub.subscribers()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

const FAN_MSG: usize = 64 << 10;
const FAN_COUNT: usize = 512; // 32 MiB: more than socket buffers and queues hold

fn fan_payload(i: usize) -> Message {
    let mut v = vec![0u8; FAN_MSG];
    v[..8].copy_from_slice(&(i as u64).to_be_bytes());
    Message::binary(v)
}

type Progress = std::sync::Arc<std::sync::atomic::AtomicUsize>;

/// Reads `FAN_COUNT` messages, checking order; counts them in `Progress`.
fn fast_reader(
    mut ws: wsx::WebSocket<wsx::MaybeTlsStream>,
) -> (
    Progress,
    tokio::task::JoinHandle<wsx::WebSocket<wsx::MaybeTlsStream>>,
) {
    let progress = Progress::default();
    let p = progress.clone();
    let task = tokio::spawn(async move {
        for n in 0..FAN_COUNT {
            let Some(Message::Binary(b)) = ws.recv().await.unwrap() else {
                panic!("message {n} missing")
            };
            assert_eq!(b[..8], (n as u64).to_be_bytes(), "in order, none missing");
            p.store(n + 1, std::sync::atomic::Ordering::Relaxed);
        }
        ws // still connected
    });
    (progress, task)
}

/// The producer stays at most 8 messages ahead of the fast subscriber, so
/// only the stalled one can fall behind.
async fn keep_pace(progress: &Progress, i: usize) {
    while i > progress.load(std::sync::atomic::Ordering::Relaxed) + 8 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_drop_newest_keeps_fast_subscribers_whole() {
    let hub = Broadcast::new(
        BroadcastConfig::default()
            .max_queue_bytes(1 << 20)
            .policy(SlowConsumer::DropNewest),
    );
    let addr = hub_server(hub.clone()).await;
    let fast = wsx::connect(&format!("ws://{addr}/")).await.unwrap();
    let _slow = raw_ws(addr).await; // never reads
    wait_subscribers(&hub, 2).await;
    let (progress, reader) = fast_reader(fast);
    let mut dropped = 0;
    for i in 0..FAN_COUNT {
        keep_pace(&progress, i).await;
        dropped += hub.send(fan_payload(i)).await.unwrap().dropped;
    }
    let _fast = reader.await.unwrap();
    assert!(
        dropped > FAN_COUNT / 2,
        "the stalled subscriber lost {dropped}"
    );
    assert_eq!(
        hub.subscribers(),
        2,
        "DropNewest keeps the slow one connected"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_close_policy_disconnects_the_slow_subscriber() {
    let hub = Broadcast::new(BroadcastConfig::default().max_queue_bytes(8 << 20).policy(
        SlowConsumer::Close {
            code: CloseCode::TRY_AGAIN_LATER,
            after: Duration::from_millis(300),
        },
    ));
    let addr = hub_server(hub.clone()).await;
    let fast = wsx::connect(&format!("ws://{addr}/")).await.unwrap();
    let mut slow = raw_ws(addr).await;
    wait_subscribers(&hub, 2).await;
    let (progress, reader) = fast_reader(fast);
    for i in 0..FAN_COUNT {
        keep_pace(&progress, i).await;
        hub.send(fan_payload(i)).await.unwrap();
    }
    let _fast = reader.await.unwrap();
    wait_subscribers(&hub, 1).await;
    // The slow one finds the 1013 after everything queued before it.
    let code = timeout(Duration::from_secs(10), async {
        loop {
            let f = read_frame(&mut slow).await.unwrap();
            if f.opcode == OP_CLOSE {
                return f.close_code();
            }
        }
    })
    .await
    .expect("close frame");
    assert_eq!(code, Some(1013));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_wait_policy_loses_nothing() {
    let hub = Broadcast::new(
        BroadcastConfig::default()
            .max_queue_bytes(256 << 10)
            .policy(SlowConsumer::Wait),
    );
    let addr = hub_server(hub.clone()).await;
    let mut late = raw_ws(addr).await; // reads only later
    wait_subscribers(&hub, 1).await;
    let sender = {
        let hub = hub.clone();
        tokio::spawn(async move {
            for i in 0..FAN_COUNT {
                let d = hub.send(fan_payload(i)).await.unwrap();
                assert_eq!(d.queued, 1);
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!sender.is_finished(), "send waits for the slow subscriber");
    for n in 0..FAN_COUNT {
        let f = read_frame(&mut late).await.unwrap();
        assert_eq!(f.payload[..8], (n as u64).to_be_bytes());
    }
    sender.await.unwrap();
}

/// Many clients connecting at once (a restart, a broker's recovery) are
/// queued by the kernel up to the listen backlog, not dropped at tokio's
/// default of 1,024 (their SYNs would be retried a second later).
#[tokio::test]
async fn two_thousand_simultaneous_connects_are_queued_not_dropped() {
    let server = wsx::Server::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(4096);
    let n = 2000.min(somaxconn as usize - 1);
    // Nothing accepts yet: every connect completes only if it fits the queue.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        tasks.spawn(async move {
            tokio::time::timeout(
                std::time::Duration::from_millis(700),
                tokio::net::TcpStream::connect(addr),
            )
            .await
            .ok()
            .and_then(Result::ok)
        });
    }
    let mut held = Vec::new();
    while let Some(r) = tasks.join_next().await {
        if let Some(s) = r.unwrap() {
            held.push(s);
        }
    }
    assert_eq!(
        held.len(),
        n,
        "connects completed without an accept (the backlog)"
    );
    drop(server);
}
