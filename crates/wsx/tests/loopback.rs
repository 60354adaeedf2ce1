//! wsx server and client over real TCP on 127.0.0.1 (port 0).

mod common;

use bytes::Bytes;
use common::*;
use futures_util::{FutureExt, SinkExt, StreamExt};
use http::StatusCode;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use wsx::{
    server::{Accept, HandshakeError},
    CloseCode, CloseFrame, Initiator, Message, Server, ServerConfig, WebSocket,
};

fn text(s: impl Into<String>) -> Message {
    Message::text(s.into())
}

fn url(addr: SocketAddr) -> String {
    format!("ws://{addr}/")
}

/// A wsx echo server: every connection echoes text and binary messages
/// until it ends.
async fn echo_server(config: ServerConfig) -> SocketAddr {
    let server = Server::bind("127.0.0.1:0")
        .await
        .unwrap()
        .with_config(config);
    let addr = server.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = server.accept_tcp().await else {
                return;
            };
            let config = server.config().clone();
            tokio::spawn(async move {
                let mut ws =
                    wsx::server::accept_with(tcp, &config, |_| Ok(Accept::default())).await?;
                while let Some(m) = ws.recv().await? {
                    if matches!(m, Message::Text(_) | Message::Binary(_)) {
                        ws.send(m).await?;
                    }
                }
                Ok::<_, wsx::Error>(())
            });
        }
    });
    addr
}

/// Closes from the client side and checks the clean end.
async fn close_clean<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    ws: &mut WebSocket<S>,
) {
    ws.close(Some(CloseFrame::new(CloseCode::NORMAL, "done")))
        .await
        .unwrap();
    assert_eq!(ws.recv().await.unwrap(), None);
    let info = ws.close_info().unwrap();
    assert!(info.is_clean());
    assert_eq!(info.code, CloseCode::NORMAL);
    assert_eq!(info.initiator, Initiator::Local);
}

#[tokio::test]
async fn text_and_binary_round_trips() {
    let addr = echo_server(ServerConfig::default()).await;
    let mut ws = wsx::connect(&url(addr)).await.unwrap();
    let pattern = |n: usize| -> Message {
        Message::binary((0..n).map(|i| (i * 7 % 256) as u8).collect::<Vec<_>>())
    };
    let messages = vec![
        text("hello"),
        text(""),
        text("héllo wörld ✓ 🦀"),
        text("x".repeat(70_000)),
        Message::binary(Bytes::new()),
        pattern(125),
        pattern(126),
        pattern(65_535),
        pattern(65_536),
        pattern(1 << 20),
    ];
    for m in &messages {
        ws.send(m.clone()).await.unwrap();
        let echo = ws.recv().await.unwrap().expect("echo");
        assert!(echo == *m, "echo of a {}-byte message differs", m.len());
    }
    // Pipelined: all sent, then all received.
    for m in &messages {
        ws.feed(m.clone()).await.unwrap();
    }
    ws.flush().await.unwrap();
    for m in &messages {
        assert!(ws.recv().await.unwrap().as_ref() == Some(m));
    }
    close_clean(&mut ws).await;
}

/// An echo server on `recv_in_place(max)`: held messages echoed in place
/// (after checking what they say of themselves), the rest owned.
async fn in_place_echo_server(max: usize) -> SocketAddr {
    let server = Server::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = server.accept_tcp().await {
            let config = server.config().clone();
            tokio::spawn(async move {
                let mut ws =
                    wsx::server::accept_with(tcp, &config, |_| Ok(Accept::default())).await?;
                while let Some(incoming) = ws.recv_in_place(max).await? {
                    match incoming {
                        wsx::Received::Held(m) => {
                            assert!(m.data().len() <= max);
                            let owned = m.to_message();
                            assert_eq!(owned.len(), m.data().len());
                            assert_eq!(m.text().is_some(), matches!(owned, Message::Text(_)));
                            assert_eq!(m.kind() == wsx::DataKind::Text, m.text().is_some());
                            m.echo()?;
                        }
                        wsx::Received::Message(m @ (Message::Text(_) | Message::Binary(_))) => {
                            ws.send(m).await?;
                        }
                        wsx::Received::Message(_) => {}
                    }
                }
                Ok::<_, wsx::Error>(())
            });
        }
    });
    addr
}

#[tokio::test]
async fn in_place_echo_returns_every_message_in_order() {
    let addr = in_place_echo_server(100).await;
    let mut ws = wsx::connect(&url(addr)).await.unwrap();
    let pattern = |n: usize| -> Message {
        Message::binary((0..n).map(|i| (i * 7 % 256) as u8).collect::<Vec<_>>())
    };
    let messages = vec![
        text("hello"),
        text(""),
        text("héllo wörld ✓ 🦀"),
        text("x".repeat(101)),
        pattern(100),
        pattern(101),
        pattern(70_000),
        Message::binary(Bytes::new()),
    ];
    for m in &messages {
        ws.send(m.clone()).await.unwrap();
        let echo = ws.recv().await.unwrap().expect("echo");
        assert!(echo == *m, "echo of a {}-byte message differs", m.len());
    }
    // Pipelined, with pings between: all sent, then all received.
    for m in &messages {
        ws.feed(Message::Ping(Bytes::from_static(b"p")))
            .await
            .unwrap();
        ws.feed(m.clone()).await.unwrap();
    }
    ws.flush().await.unwrap();
    for m in &messages {
        let echo = loop {
            match ws.recv().await.unwrap().expect("echo") {
                Message::Pong(p) => assert_eq!(&p[..], b"p"),
                echo => break echo,
            }
        };
        assert!(
            echo == *m,
            "pipelined echo of a {}-byte message differs",
            m.len()
        );
    }
    close_clean(&mut ws).await;
}

#[tokio::test]
async fn ping_from_the_client_is_answered_by_the_server() {
    let addr = echo_server(ServerConfig::default()).await;
    let mut ws = wsx::connect(&url(addr)).await.unwrap();
    ws.send(Message::Ping(Bytes::from_static(b"are you there")))
        .await
        .unwrap();
    assert_eq!(
        ws.recv().await.unwrap(),
        Some(Message::Pong(Bytes::from_static(b"are you there")))
    );
    close_clean(&mut ws).await;
}

#[tokio::test]
async fn subprotocol_is_negotiated() {
    let addr =
        echo_server(ServerConfig::default().subprotocols(vec!["v2.chat".into(), "v1.chat".into()]))
            .await;
    // (offered by the client, selected)
    let cases: [(&[&str], Option<&str>); 4] = [
        (&["v1.chat"], Some("v1.chat")),
        (&["v1.chat", "v2.chat"], Some("v2.chat")),
        (&["other"], None),
        (&[], None),
    ];
    for (offered, selected) in cases {
        let mut req = wsx::client::ClientRequest::new(&url(addr)).unwrap();
        for p in offered {
            req = req.protocol(*p);
        }
        let (mut ws, done) = wsx::client::connect_with(&req, &wsx::client::ClientConfig::default())
            .await
            .unwrap();
        assert_eq!(ws.protocol(), selected, "{offered:?}");
        assert_eq!(done.protocol.as_deref(), selected, "{offered:?}");
        close_clean(&mut ws).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_halves_1000_messages_each_way_in_order() {
    const N: usize = 1000;
    let addr = echo_server(ServerConfig::default()).await;
    let ws = wsx::connect(&url(addr)).await.unwrap();
    let (mut reader, mut writer) = ws.split();
    let message = |i: usize| {
        if i.is_multiple_of(3) {
            Message::binary(i.to_be_bytes().to_vec())
        } else {
            text(format!("message {i} {}", "x".repeat(i % 200)))
        }
    };
    let w = tokio::spawn(async move {
        for i in 0..N {
            writer.send(message(i)).await.unwrap();
        }
        writer
    });
    let r = tokio::spawn(async move {
        for i in 0..N {
            let got = reader.recv().await.unwrap();
            assert_eq!(got, Some(message(i)), "message {i}");
        }
        reader
    });
    let mut writer = w.await.unwrap();
    let mut reader = r.await.unwrap();
    writer
        .close(Some(CloseFrame::new(CloseCode::NORMAL, "")))
        .await
        .unwrap();
    assert_eq!(reader.recv().await.unwrap(), None);
    assert!(writer.send(text("late")).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_halves_with_feed_and_one_flush() {
    let addr = echo_server(ServerConfig::default()).await;
    let ws = wsx::connect(&url(addr)).await.unwrap();
    let (mut reader, mut writer) = ws.split();
    let r = tokio::spawn(async move {
        let mut n = 0usize;
        while let Some(m) = reader.recv().await.unwrap() {
            assert_eq!(m, Message::binary(vec![(n % 256) as u8; 4096]));
            n += 1;
        }
        n
    });
    for i in 0..500usize {
        writer
            .feed(Message::binary(vec![(i % 256) as u8; 4096]))
            .await
            .unwrap();
    }
    writer.flush().await.unwrap();
    // The server echoes all 500 before it answers the close.
    writer.close(None).await.unwrap();
    assert_eq!(r.await.unwrap(), 500);
}

#[tokio::test]
async fn stream_and_sink() {
    let addr = echo_server(ServerConfig::default()).await;
    let mut ws = wsx::connect(&url(addr)).await.unwrap();

    SinkExt::send(&mut ws, text("via sink")).await.unwrap();
    let got = StreamExt::next(&mut ws).await.unwrap().unwrap();
    assert_eq!(got, text("via sink"));

    let batch: Vec<Message> = (0..20).map(|i| text(format!("#{i}"))).collect();
    let mut source = futures_util::stream::iter(batch.clone().into_iter().map(Ok));
    ws.send_all(&mut source).await.unwrap();
    let echoed: Vec<Message> = (&mut ws)
        .take(batch.len())
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(echoed, batch);

    // Sink::close sends a 1000 close; the stream then ends cleanly.
    SinkExt::close(&mut ws).await.unwrap();
    assert!(StreamExt::next(&mut ws).await.is_none());
    assert_eq!(ws.close_info().unwrap().code, CloseCode::NORMAL);
    assert!(ws.close_info().unwrap().is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_and_sink_on_split_halves() {
    let addr = echo_server(ServerConfig::default()).await;
    let (reader, mut writer) = wsx::connect(&url(addr)).await.unwrap().split();
    let batch: Vec<Message> = (0..100)
        .map(|i| Message::binary(vec![i as u8; i]))
        .collect();
    let want = batch.clone();
    let r = tokio::spawn(async move {
        let got: Vec<Message> = reader.map(Result::unwrap).collect().await;
        assert_eq!(got, want);
    });
    writer
        .send_all(&mut futures_util::stream::iter(batch.into_iter().map(Ok)))
        .await
        .unwrap();
    SinkExt::close(&mut writer).await.unwrap();
    r.await.unwrap();
}

// ---- handshake failures ------------------------------------------------------

#[tokio::test]
async fn handshake_refused_by_the_accept_callback() {
    let server = Server::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    let srv: JoinHandle<wsx::Error> = tokio::spawn(async move {
        let (tcp, _) = server.accept_tcp().await.unwrap();
        let r = wsx::server::accept_with(tcp, &ServerConfig::default(), |upgrade| {
            assert_eq!(upgrade.headers()["x-token"], "wrong");
            assert_eq!(upgrade.path(), "/chat");
            Err(HandshakeError::rejected(
                StatusCode::UNAUTHORIZED,
                "token not valid",
            ))
        })
        .await;
        r.expect_err("refused")
    });
    let req = wsx::client::ClientRequest::new(&format!("ws://{addr}/chat"))
        .unwrap()
        .header("X-Token", "wrong")
        .unwrap();
    let err = wsx::client::connect_with(&req, &wsx::client::ClientConfig::default())
        .await
        .expect_err("refused");
    assert!(err.is_handshake(), "{err}");
    let (status, body) = rejection(&err);
    assert_eq!(status, 401);
    let body = String::from_utf8(body).unwrap();
    assert!(body.contains("token not valid"), "{body:?}");
    assert!(err.to_string().contains("401"), "{err}");

    let server_err = srv.await.unwrap();
    assert!(server_err.is_handshake());
    assert_eq!(
        server_err.server_handshake().unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

/// A raw TCP server that reads one request head, writes `response`, and
/// closes. Returns its address.
async fn raw_server(response: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let _ = read_head(&mut tcp).await;
        let _ = tcp.write_all(response).await;
        let _ = tcp.shutdown().await;
        // Wait for the client to hang up, so nothing is lost to a reset.
        let mut sink = Vec::new();
        let _ = tcp.read_to_end(&mut sink).await;
    });
    addr
}

/// (what, server's answer, status if a rejection, substrings of Display)
type AnswerCase = (&'static str, &'static [u8], Option<u16>, Vec<&'static str>);

#[tokio::test]
async fn client_errors_explain_what_the_server_answered() {
    let cases: Vec<AnswerCase> = vec![
        (
            "plain HTTP page",
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 38\r\n\r\n\
              <html><body>Hello there</body></html>",
            Some(200),
            vec!["200", "the Upgrade header did not reach it", "Hello there"],
        ),
        (
            "plain HTTP page without Content-Length",
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html>hi</html>",
            Some(200),
            vec!["200", "the Upgrade header did not reach it"],
        ),
        (
            "400 Bad Request",
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
            Some(400),
            vec!["400"],
        ),
        (
            "404 Not Found",
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found",
            Some(404),
            vec!["404", "not found"],
        ),
        (
            "426 with another version",
            b"HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 8\r\nContent-Length: 0\r\n\r\n",
            Some(426),
            vec!["426", "version"],
        ),
        (
            "redirect",
            b"HTTP/1.1 301 Moved Permanently\r\nLocation: https://example.com/ws\r\nContent-Length: 0\r\n\r\n",
            Some(301),
            vec!["301", "https://example.com/ws"],
        ),
        (
            "not HTTP at all",
            b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
            None,
            vec!["not an HTTP response"],
        ),
        (
            "hang up without an answer",
            b"",
            None,
            vec!["connection closed before"],
        ),
        (
            "101 with a wrong accept key",
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n",
            None,
            vec!["Sec-WebSocket-Accept"],
        ),
        (
            "101 without Upgrade",
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n",
            None,
            vec!["Upgrade: websocket"],
        ),
    ];
    for (what, answer, status, needles) in cases {
        let addr = raw_server(answer).await;
        let err = wsx::connect(&url(addr)).await.expect_err(what);
        let shown = err.to_string();
        assert!(err.is_handshake(), "{what}: {shown}");
        for n in needles {
            assert!(shown.contains(n), "{what}: {n:?} not in {shown:?}");
        }
        if let Some(s) = status {
            assert_eq!(rejection(&err).0, s, "{what}");
        }
    }
}

#[tokio::test]
async fn connect_to_a_closed_port() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = wsx::connect(&url(addr)).await.expect_err("nothing listens");
    assert!(err.is_io(), "{err}");
    let shown = err.to_string();
    assert!(shown.contains("nothing is listening"), "{shown}");
    assert!(shown.contains(&addr.port().to_string()), "{shown}");
}

#[tokio::test]
async fn unusable_urls() {
    for (url, needle) in [
        ("ftp://127.0.0.1/", "ftp"),
        ("ws://127.0.0.1/#frag", "fragment"),
    ] {
        let err = wsx::connect(url).await.expect_err(url);
        assert!(err.to_string().contains(needle), "{url}: {err}");
    }
}

/// Sends a raw request to a wsx server; returns the whole response and the
/// server's error.
async fn raw_request(request: String) -> (String, wsx::Error) {
    let server = Server::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    let srv = tokio::spawn(async move { server.accept().await.map(|_| ()) });
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    // Keep what arrived even if the server's close turns into a reset.
    let _ = tcp.read_to_end(&mut response).await;
    let err = srv.await.unwrap().expect_err("refused");
    (String::from_utf8(response).unwrap(), err)
}

/// (what, request, status line start, header the response must carry)
type RequestCase = (
    &'static str,
    String,
    &'static str,
    Option<(&'static str, &'static str)>,
);

#[tokio::test]
async fn server_answers_bad_requests_with_http_errors() {
    let base = String::from_utf8(REQUEST.to_vec()).unwrap();
    let cases: Vec<RequestCase> = vec![
        (
            "version 8",
            base.replace("Version: 13", "Version: 8"),
            "HTTP/1.1 426 ",
            Some(("Sec-WebSocket-Version", "13")),
        ),
        (
            "no version",
            base.replace("Sec-WebSocket-Version: 13\r\n", ""),
            "HTTP/1.1 400 ",
            Some(("Sec-WebSocket-Version", "13")),
        ),
        (
            "POST",
            base.replace("GET ", "POST "),
            "HTTP/1.1 405 ",
            Some(("Allow", "GET")),
        ),
        (
            "no Upgrade header",
            base.replace("Upgrade: websocket\r\n", ""),
            "HTTP/1.1 400 ",
            Some(("Upgrade", "websocket")),
        ),
        (
            "bad key",
            base.replace("dGhlIHNhbXBsZSBub25jZQ==", "short"),
            "HTTP/1.1 400 ",
            None,
        ),
        (
            "HTTP/1.0",
            base.replace("HTTP/1.1", "HTTP/1.0"),
            "HTTP/1.1 400 ",
            None,
        ),
        (
            "huge head",
            base.replace(
                "\r\n\r\n",
                &format!("\r\nX-Pad: {}\r\n\r\n", "a".repeat(8_500)),
            ),
            "HTTP/1.1 431 ",
            None,
        ),
    ];
    for (what, request, status_line, header_want) in cases {
        let (response, err) = raw_request(request).await;
        assert!(response.starts_with(status_line), "{what}: {response}");
        if let Some((name, value)) = header_want {
            assert_eq!(header(&response, name), Some(value), "{what}: {response}");
        }
        let he = err.server_handshake().expect(what);
        assert_eq!(
            he.status().as_u16().to_string(),
            status_line[9..12],
            "{what}"
        );
        assert!(err.is_handshake(), "{what}");
        // The body says what was wrong.
        let body = response.split_once("\r\n\r\n").unwrap().1;
        assert!(!body.trim().is_empty(), "{what}: empty body");
    }
}

// ---- backpressure ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backpressure_bounds_the_write_buffer() {
    const MSG: usize = 64 << 10;
    const TOTAL: usize = 64 << 20;
    const HIGH_WATER: usize = 512 << 10;
    // A 64 KiB payload needs a 10-byte header (64-bit length).
    const FRAME: usize = MSG + 10;

    let server = Server::bind("127.0.0.1:0")
        .await
        .unwrap()
        .with_config(ServerConfig::default().write_buffer_high_water(HIGH_WATER));
    let addr = server.local_addr().unwrap();
    // Fires when the server is stuck; dropped (an error) if it panics first.
    let (blocked, blocked_rx) = tokio::sync::oneshot::channel::<()>();
    let srv = {
        let mut blocked = Some(blocked);
        tokio::spawn(async move {
            let (mut ws, _) = server.accept().await.unwrap();
            let mut max_buffered = 0;
            let mut saw_block = false;
            for i in 0..TOTAL / MSG {
                let msg = Message::binary(vec![i as u8; MSG]);
                // `feed` is cancel safe: a feed that cannot finish now
                // (socket full, queue at high water) did not queue anything.
                if saw_block {
                    ws.feed(msg).await.unwrap();
                } else {
                    match ws.feed(msg.clone()).now_or_never() {
                        Some(r) => r.unwrap(),
                        None => {
                            saw_block = true;
                            blocked.take().unwrap().send(()).unwrap();
                            ws.feed(msg).await.unwrap();
                        }
                    }
                }
                max_buffered = max_buffered.max(ws.buffered_amount());
                assert!(
                    ws.buffered_amount() <= HIGH_WATER + FRAME,
                    "{} bytes queued after message {i}",
                    ws.buffered_amount()
                );
            }
            assert!(saw_block, "the client's socket never filled up");
            ws.close(Some(CloseFrame::new(CloseCode::NORMAL, "all sent")))
                .await
                .unwrap();
            assert_eq!(ws.recv().await.unwrap(), None);
            max_buffered
        })
    };

    // Uncompressed: the test counts bytes on the wire.
    let plain = wsx::client::ClientConfig::default().deflate(None);
    let (mut ws, _) = wsx::client::connect_with(
        &wsx::client::ClientRequest::new(&url(addr)).unwrap(),
        &plain,
    )
    .await
    .unwrap();
    // Do not read until the server is stuck on a full socket.
    if blocked_rx.await.is_err() {
        srv.await.unwrap();
        unreachable!("the server ended without blocking");
    }
    let mut total = 0usize;
    let mut count = 0usize;
    while let Some(m) = ws.recv().await.unwrap() {
        let Message::Binary(b) = m else {
            panic!("unexpected {m:?}")
        };
        assert_eq!(b.len(), MSG);
        assert!(b.iter().all(|&x| x == count as u8), "message {count}");
        total += b.len();
        count += 1;
    }
    assert_eq!(total, TOTAL);
    assert_eq!(count, TOTAL / MSG);
    assert_eq!(ws.close_info().unwrap().reason, "all sent");
    let max_buffered = srv.await.unwrap();
    assert!(max_buffered >= HIGH_WATER, "max {max_buffered}");
    assert!(max_buffered <= HIGH_WATER + FRAME, "max {max_buffered}");
}

/// A server that completes the handshake, sends `first` (raw frames), then
/// resets the TCP connection (`SO_LINGER` 0: RST, not FIN) and says so.
async fn resetting_server(
    first: &'static [u8],
) -> (SocketAddr, tokio::sync::oneshot::Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (reset_tx, reset_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        answer_101(&mut tcp, first).await;
        tcp.set_zero_linger().unwrap();
        drop(tcp);
        let _ = reset_tx.send(());
    });
    (addr, reset_rx)
}

/// A client without permessage-deflate (the raw frames stay readable).
async fn connect_plain(addr: SocketAddr) -> wsx::WebSocket<wsx::MaybeTlsStream> {
    let config = wsx::client::ClientConfig::default().deflate(None);
    let req = wsx::client::ClientRequest::new(&url(addr)).unwrap();
    wsx::client::connect_with(&req, &config).await.unwrap().0
}

#[track_caller]
fn assert_vanished(err: &wsx::Error, what: &str) {
    assert!(err.is_closed() && !err.is_io(), "{what}: {err}");
    assert_eq!(err.close_code(), Some(CloseCode::ABNORMAL), "{what}: {err}");
    let info = err.close_info().unwrap();
    assert_eq!(info.cause, Some(wsx::CloseCause::PeerVanished), "{what}");
    assert_eq!(info.initiator, Initiator::Remote, "{what}");
}

#[tokio::test]
async fn a_peer_that_resets_the_connection_is_1006_like_one_that_closes_it() {
    // Reading: the reset arrives while recv waits; the frame sent before it
    // may or may not survive the reset (the kernel drops unread data), the
    // end must be 1006 either way.
    let (addr, reset) = resetting_server(b"\x81\x05Hello").await;
    let mut ws = connect_plain(addr).await;
    reset.await.unwrap();
    let err = loop {
        match tokio::time::timeout(std::time::Duration::from_secs(5), ws.recv())
            .await
            .expect("recv did not end")
        {
            Ok(Some(m)) => assert_eq!(m, text("Hello")),
            Ok(None) => panic!("a reset is not a clean close"),
            Err(e) => break e,
        }
    };
    assert_vanished(&err, "reset while reading");
    assert!(ws.recv().await.unwrap().is_none(), "after the end");

    // Writing: sends after the reset fail (the error says so), and recv then
    // reports the end as 1006, not the write's I/O error.
    let (addr, reset) = resetting_server(b"").await;
    let mut ws = connect_plain(addr).await;
    reset.await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await; // the RST lands
    let mut sent_after_reset = 0;
    while ws.send(text("anyone there?")).await.is_ok() {
        sent_after_reset += 1;
        assert!(
            sent_after_reset < 100,
            "sends after a reset keep succeeding"
        );
    }
    let err = tokio::time::timeout(std::time::Duration::from_secs(5), ws.recv())
        .await
        .expect("recv did not end")
        .expect_err("a reset is not a clean close");
    assert_vanished(&err, "reset, then a write");
    assert!(ws.recv().await.unwrap().is_none(), "after the end");
}
