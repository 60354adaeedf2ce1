//! The wsx server and client against a scripted raw peer that writes literal
//! bytes over a `tokio::io::duplex` pipe and parses what comes back.

mod common;

use common::*;
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio::task::JoinHandle;
use wsx::{
    client::ClientConfig, CloseCause, CloseCode, CloseFrame, Initiator, Message, Role,
    ServerConfig, WebSocket,
};

type Ws = WebSocket<DuplexStream>;

/// What a receive loop saw: the socket, the messages, and how it ended.
type Outcome = (Ws, Vec<Message>, wsx::Result<()>);

/// Runs `recv()` until the end, collecting messages; the application does
/// nothing else.
fn recv_all(mut ws: Ws) -> JoinHandle<Outcome> {
    tokio::spawn(async move {
        let mut got = Vec::new();
        let end = loop {
            match ws.recv().await {
                Ok(Some(m)) => got.push(m),
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        (ws, got, end)
    })
}

/// Echoes text and binary messages until the end.
fn echo(mut ws: Ws) -> JoinHandle<Outcome> {
    tokio::spawn(async move {
        let mut got = Vec::new();
        let end = loop {
            match ws.recv().await {
                Ok(Some(m)) => {
                    if matches!(m, Message::Text(_) | Message::Binary(_)) {
                        if let Err(e) = ws.send(m.clone()).await {
                            break Err(e);
                        }
                    }
                    got.push(m);
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        (ws, got, end)
    })
}

/// The raw peer closes cleanly (1000) and checks the server's echo and EOF.
async fn peer_close(peer: &mut DuplexStream) {
    send_raw(peer, &masked(OP_CLOSE, &close_payload(1000, ""))).await;
    let f = read_frame(peer).await.unwrap();
    assert_eq!(f.close_code(), Some(1000));
    expect_eof(peer).await;
}

fn text(s: &str) -> Message {
    Message::text(s)
}

// ---- server side -------------------------------------------------------------

#[tokio::test]
async fn handshake_and_first_frame_in_one_write() {
    // The masked "Hello" follows the request head in the same write: the
    // bytes after the head must reach the connection.
    let (ws, mut peer) = server_pair(&ServerConfig::default(), &MASKED_HELLO).await;
    let task = recv_all(ws);
    peer_close(&mut peer).await;
    drop(peer);
    let (_, got, end) = task.await.unwrap();
    end.unwrap();
    assert_eq!(got, vec![text("Hello")]);
}

#[tokio::test]
async fn handshake_with_several_frames_after_the_head() {
    let mut first = MASKED_HELLO.to_vec();
    first.extend(masked(OP_BINARY, &[1, 2, 3]));
    first.extend(masked(OP_TEXT, "héllo".as_bytes()));
    let (ws, mut peer) = server_pair(&ServerConfig::default(), &first).await;
    let task = recv_all(ws);
    peer_close(&mut peer).await;
    drop(peer);
    let (_, got, end) = task.await.unwrap();
    end.unwrap();
    assert_eq!(
        got,
        vec![text("Hello"), Message::binary(vec![1, 2, 3]), text("héllo")]
    );
}

#[tokio::test]
async fn echo_of_masked_frames_is_unmasked_and_exact() {
    let big: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    let mid = vec![0x5au8; 200];
    let mut big_out = vec![0x82, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70];
    big_out.extend_from_slice(&big);
    let mut mid_out = vec![0x82, 126, 0, 200];
    mid_out.extend_from_slice(&mid);
    let hello_out = b"\x81\x05Hello".to_vec();
    let e_acute = "é".as_bytes();

    // (what, bytes the peer writes, bytes it must read back)
    let cases: Vec<(&str, Vec<u8>, Vec<u8>)> = vec![
        (
            "RFC 6455 §5.7 masked Hello",
            MASKED_HELLO.to_vec(),
            hello_out.clone(),
        ),
        ("empty text", masked(OP_TEXT, b""), vec![0x81, 0x00]),
        ("empty binary", masked(OP_BINARY, b""), vec![0x82, 0x00]),
        ("16-bit length", masked(OP_BINARY, &mid), mid_out),
        ("64-bit length", masked(OP_BINARY, &big), big_out),
        (
            "fragmented text",
            [
                frame(OP_TEXT, false, b"Hel", Some(KEY)),
                frame(OP_CONT, false, b"", Some(KEY)),
                frame(OP_CONT, true, b"lo", Some(KEY)),
            ]
            .concat(),
            hello_out,
        ),
        (
            "code point split across fragments",
            [
                frame(OP_TEXT, false, &e_acute[..1], Some([1, 2, 3, 4])),
                frame(OP_CONT, true, &e_acute[1..], Some([5, 6, 7, 8])),
            ]
            .concat(),
            [&[0x81, 0x02][..], e_acute].concat(),
        ),
        (
            "fragmented binary",
            [
                frame(OP_BINARY, false, &[1], Some(KEY)),
                frame(OP_CONT, true, &[2, 3], Some(KEY)),
            ]
            .concat(),
            vec![0x82, 0x03, 1, 2, 3],
        ),
    ];

    let (ws, mut peer) = server_pair(&ServerConfig::default(), b"").await;
    let task = echo(ws);
    for (what, input, want) in &cases {
        // Write in small pieces too: the parser must not depend on framing
        // matching reads.
        for chunk in input.chunks(7) {
            send_raw(&mut peer, chunk).await;
        }
        let mut got = vec![0u8; want.len()];
        tokio::io::AsyncReadExt::read_exact(&mut peer, &mut got)
            .await
            .unwrap();
        assert!(got == *want, "{what}: echo differs");
    }
    peer_close(&mut peer).await;
    drop(peer);
    let (_, got, end) = task.await.unwrap();
    end.unwrap();
    assert_eq!(got.len(), cases.len());
}

#[tokio::test]
async fn ping_is_answered_while_the_application_only_receives() {
    let (ws, mut peer) = server_pair(&ServerConfig::default(), b"").await;
    let task = recv_all(ws);
    for payload in [&b"abc"[..], b"", &[7u8; 125]] {
        send_raw(&mut peer, &masked(OP_PING, payload)).await;
        let pong = read_frame(&mut peer).await.unwrap();
        assert_eq!(
            pong,
            RawFrame {
                fin: true,
                rsv: 0,
                opcode: OP_PONG,
                masked: false,
                payload: payload.to_vec()
            }
        );
    }
    peer_close(&mut peer).await;
    drop(peer);
    let (_, got, end) = task.await.unwrap();
    end.unwrap();
    assert_eq!(
        got,
        vec![
            Message::Ping(b"abc"[..].into()),
            Message::Ping(b""[..].into()),
            Message::Ping(vec![7u8; 125].into()),
        ]
    );
}

#[tokio::test]
async fn ping_in_the_handshake_write_is_answered() {
    let (ws, mut peer) = server_pair(&ServerConfig::default(), &masked(OP_PING, b"early")).await;
    let task = recv_all(ws);
    let pong = read_frame(&mut peer).await.unwrap();
    assert_eq!((pong.opcode, pong.payload), (OP_PONG, b"early".to_vec()));
    peer_close(&mut peer).await;
    drop(peer);
    task.await.unwrap().2.unwrap();
}

#[tokio::test]
async fn unsolicited_pong_is_reported_and_not_answered() {
    let (ws, mut peer) = server_pair(&ServerConfig::default(), b"").await;
    let task = recv_all(ws);
    send_raw(&mut peer, &masked(OP_PONG, b"heartbeat")).await;
    peer_close(&mut peer).await; // the next frame read is the close echo
    drop(peer);
    let (_, got, end) = task.await.unwrap();
    end.unwrap();
    assert_eq!(got, vec![Message::Pong(b"heartbeat"[..].into())]);
}

#[tokio::test]
async fn fragmented_message_with_interleaved_ping() {
    for one_write in [true, false] {
        let (ws, mut peer) = server_pair(&ServerConfig::default(), b"").await;
        let task = recv_all(ws);
        let parts = [
            frame(OP_TEXT, false, b"Hel", Some(KEY)),
            masked(OP_PING, b"p"),
            frame(OP_CONT, true, b"lo", Some(KEY)),
        ];
        if one_write {
            send_raw(&mut peer, &parts.concat()).await;
        } else {
            for p in &parts {
                send_raw(&mut peer, p).await;
            }
        }
        let pong = read_frame(&mut peer).await.unwrap();
        assert_eq!((pong.opcode, pong.payload), (OP_PONG, b"p".to_vec()));
        peer_close(&mut peer).await;
        drop(peer);
        let (_, got, end) = task.await.unwrap();
        end.unwrap();
        assert_eq!(
            got,
            vec![Message::Ping(b"p"[..].into()), text("Hello")],
            "one write: {one_write}"
        );
    }
}

#[tokio::test]
async fn protocol_errors_fail_the_connection_with_the_right_code() {
    let config = ServerConfig::default().limits(
        wsx::Config::builder()
            .max_frame_size(1024)
            .max_message_size(2048)
            .build()
            .unwrap(),
    );
    let mut rsv1 = masked(OP_TEXT, b"x");
    rsv1[0] |= 0x40;
    // (what, bytes the peer writes, close code it must get back)
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "unmasked client frame",
            frame(OP_TEXT, true, b"hi", None),
            1002,
        ),
        (
            "unmasked close",
            frame(OP_CLOSE, true, &[0x03, 0xe8], None),
            1002,
        ),
        ("RSV1 without extension", rsv1, 1002),
        ("reserved data opcode 0x3", masked(0x3, b""), 1002),
        ("reserved control opcode 0xB", masked(0xB, b""), 1002),
        (
            "fragmented ping",
            frame(OP_PING, false, b"", Some(KEY)),
            1002,
        ),
        ("ping of 126 bytes", masked(OP_PING, &[0; 126]), 1002),
        ("continuation without a start", masked(OP_CONT, b"x"), 1002),
        (
            "new message inside a fragmented one",
            [
                frame(OP_TEXT, false, b"a", Some(KEY)),
                masked(OP_TEXT, b"b"),
            ]
            .concat(),
            1002,
        ),
        ("invalid UTF-8 text", masked(OP_TEXT, &[0xff]), 1007),
        (
            "invalid UTF-8 at the end of a fragmented text",
            [
                frame(OP_TEXT, false, b"ok", Some(KEY)),
                frame(OP_CONT, true, &[0xc3], Some(KEY)),
            ]
            .concat(),
            1007,
        ),
        (
            "close with a 1-byte payload",
            masked(OP_CLOSE, &[0x03]),
            1002,
        ),
        (
            "close with code 1005",
            masked(OP_CLOSE, &close_payload(1005, "")),
            1002,
        ),
        (
            "close reason not UTF-8",
            masked(OP_CLOSE, &[0x03, 0xe8, 0xff]),
            1007,
        ),
        (
            "frame over max_frame_size",
            masked(OP_BINARY, &[0; 1025]),
            1009,
        ),
        (
            "message over max_message_size",
            [
                frame(OP_BINARY, false, &[0; 1000], Some(KEY)),
                frame(OP_CONT, false, &[0; 1000], Some(KEY)),
                frame(OP_CONT, true, &[0; 1000], Some(KEY)),
            ]
            .concat(),
            1009,
        ),
    ];
    for (what, bad, code) in cases {
        // A good message first: it is still delivered before the error.
        let (ws, mut peer) = server_pair(&config, &MASKED_HELLO).await;
        let task = recv_all(ws);
        send_raw(&mut peer, &bad).await;
        let close = read_frame(&mut peer).await.unwrap();
        assert_eq!(close.opcode, OP_CLOSE, "{what}");
        assert!(!close.masked, "{what}: server frames are not masked");
        assert_eq!(close.close_code(), Some(code), "{what}: {close:?}");
        assert!(close.payload.len() <= 125, "{what}");
        // The server ends TCP after its close frame...
        expect_eof(&mut peer).await;
        // ...and reports the end once we end ours.
        drop(peer);
        let (mut ws, got, end) = task.await.unwrap();
        assert_eq!(got, vec![text("Hello")], "{what}");
        let err = end.expect_err(what);
        assert!(err.is_protocol(), "{what}: {err}");
        assert!(err.is_closed() && !err.is_timeout(), "{what}: {err}");
        assert_eq!(err.close_code(), Some(CloseCode(code)), "{what}: {err}");
        let info = err.close_info().unwrap();
        assert_eq!(info.initiator, Initiator::Local, "{what}");
        assert_eq!(info.sent.as_ref().map(|f| f.code), Some(CloseCode(code)));
        assert!(
            matches!(info.cause, Some(CloseCause::Protocol(_))),
            "{what}"
        );
        assert_eq!(ws.close_info(), Some(info), "{what}");
        // The end is reported once; afterwards recv() says "no more".
        assert!(ws.recv().await.unwrap().is_none(), "{what}");
        assert!(ws.send(text("late")).await.is_err(), "{what}");
    }
}

#[tokio::test]
async fn unmasked_client_frame_is_1002_then_close_frame_then_eof() {
    // The spelled-out version of the first case above.
    let (ws, mut peer) = server_pair(&ServerConfig::default(), b"").await;
    let task = recv_all(ws);
    send_raw(&mut peer, &[0x81, 0x02, b'h', b'i']).await;
    let close = read_frame(&mut peer).await.unwrap();
    assert_eq!(close.opcode, OP_CLOSE);
    assert_eq!(&close.payload[..2], &[0x03, 0xea]);
    expect_eof(&mut peer).await;
    drop(peer);
    let err = task.await.unwrap().2.unwrap_err();
    assert!(err.is_protocol(), "{err}");
    assert_eq!(err.close_code(), Some(CloseCode::PROTOCOL_ERROR));
    assert!(err.to_string().contains("1002"), "{err}");
}

#[tokio::test]
async fn peer_close_is_echoed_and_reported_as_clean() {
    // (peer's close payload, code reported, reason reported, echoed payload)
    let cases: Vec<(Vec<u8>, u16, &str, Vec<u8>)> = vec![
        (close_payload(1000, "bye"), 1000, "bye", vec![0x03, 0xe8]),
        (close_payload(1001, ""), 1001, "", vec![0x03, 0xe9]),
        (close_payload(4001, "app"), 4001, "app", vec![0x0f, 0xa1]),
        // No status code: reported as 1005, answered with an empty close.
        (vec![], 1005, "", vec![]),
    ];
    for (payload, code, reason, echo) in cases {
        let (ws, mut peer) = server_pair(&ServerConfig::default(), b"").await;
        let task = recv_all(ws);
        send_raw(&mut peer, &masked(OP_CLOSE, &payload)).await;
        let f = read_frame(&mut peer).await.unwrap();
        assert_eq!(
            f,
            RawFrame {
                fin: true,
                rsv: 0,
                opcode: OP_CLOSE,
                masked: false,
                payload: echo
            },
            "{code}"
        );
        expect_eof(&mut peer).await;
        drop(peer);
        let (mut ws, got, end) = task.await.unwrap();
        end.unwrap_or_else(|e| panic!("{code}: {e}"));
        assert!(got.is_empty());
        let info = ws.close_info().expect("close info").clone();
        assert_eq!(info.code, CloseCode(code));
        assert_eq!(info.reason, reason);
        assert_eq!(info.initiator, Initiator::Remote);
        assert!(info.is_clean());
        assert!(ws.recv().await.unwrap().is_none());
    }
}

#[tokio::test]
async fn messages_before_the_peer_close_are_delivered() {
    let mut bytes = MASKED_HELLO.to_vec();
    bytes.extend(masked(OP_BINARY, b"\x00\x01"));
    bytes.extend(masked(OP_CLOSE, &close_payload(1000, "bye")));
    let (ws, mut peer) = server_pair(&ServerConfig::default(), &bytes).await;
    let task = recv_all(ws);
    let f = read_frame(&mut peer).await.unwrap();
    assert_eq!(f.close_code(), Some(1000));
    expect_eof(&mut peer).await;
    drop(peer);
    let (ws, got, end) = task.await.unwrap();
    end.unwrap();
    assert_eq!(got, vec![text("Hello"), Message::binary(vec![0, 1])]);
    assert_eq!(ws.close_info().unwrap().reason, "bye");
}

#[tokio::test]
async fn server_initiated_close_handshake() {
    let (mut ws, mut peer) = server_pair(&ServerConfig::default(), b"").await;
    ws.close(Some(CloseFrame::new(CloseCode::NORMAL, "done")))
        .await
        .unwrap();
    let f = read_frame(&mut peer).await.unwrap();
    assert_eq!(f.close_code(), Some(1000));
    assert_eq!(&f.payload[2..], b"done");
    assert!(!f.masked);
    // Nothing may be sent after a close frame.
    assert!(ws.send(text("late")).await.is_err());
    let task = recv_all(ws);
    send_raw(&mut peer, &masked(OP_CLOSE, &close_payload(1000, "ok"))).await;
    expect_eof(&mut peer).await;
    drop(peer);
    let (ws, got, end) = task.await.unwrap();
    end.unwrap();
    assert!(got.is_empty());
    let info = ws.close_info().unwrap();
    assert_eq!(info.code, CloseCode::NORMAL);
    assert_eq!(info.reason, "ok");
    assert_eq!(info.initiator, Initiator::Local);
    assert_eq!(info.sent, Some(CloseFrame::new(CloseCode::NORMAL, "done")));
}

#[tokio::test]
async fn peer_vanishing_is_1006() {
    // (what, bytes the peer writes before it drops its end, messages delivered)
    let cases: Vec<(&str, Vec<u8>, Vec<Message>)> = vec![
        ("idle", vec![], vec![]),
        (
            "after a message",
            MASKED_HELLO.to_vec(),
            vec![text("Hello")],
        ),
        ("mid-header", vec![0x81], vec![]),
        ("mid-payload", MASKED_HELLO[..8].to_vec(), vec![]),
        (
            "mid-fragmented message",
            frame(OP_TEXT, false, b"Hel", Some(KEY)),
            vec![],
        ),
    ];
    for (what, bytes, want) in cases {
        let (ws, mut peer) = server_pair(&ServerConfig::default(), b"").await;
        let task = recv_all(ws);
        send_raw(&mut peer, &bytes).await;
        drop(peer);
        let (mut ws, got, end) = task.await.unwrap();
        assert_eq!(got, want, "{what}");
        let err = end.expect_err(what);
        assert_eq!(err.close_code(), Some(CloseCode::ABNORMAL), "{what}: {err}");
        assert!(err.is_closed(), "{what}");
        assert!(!err.is_protocol() && !err.is_timeout(), "{what}: {err}");
        let info = err.close_info().unwrap();
        assert_eq!(info.cause, Some(CloseCause::PeerVanished), "{what}");
        assert_eq!(info.initiator, Initiator::Remote, "{what}");
        assert_eq!(info.sent, None, "{what}");
        assert!(ws.recv().await.unwrap().is_none(), "{what}");
    }
}

#[tokio::test]
async fn accepted_socket_reports_role_and_protocol() {
    let config = ServerConfig::default().subprotocols(vec!["chat".into()]);
    let (server_io, mut peer) = tokio::io::duplex(1 << 16);
    let req = String::from_utf8(REQUEST.to_vec()).unwrap().replace(
        "\r\n\r\n",
        "\r\nSec-WebSocket-Protocol: superchat, chat\r\n\r\n",
    );
    send_raw(&mut peer, req.as_bytes()).await;
    let ws = wsx::server::accept_with(server_io, &config, |_| Ok(wsx::server::Accept::default()))
        .await
        .unwrap();
    assert_eq!(ws.role(), Role::Server);
    assert_eq!(ws.protocol(), Some("chat"));
    let head = read_head(&mut peer).await.unwrap();
    assert_eq!(header(&head, "Sec-WebSocket-Protocol"), Some("chat"));
}

// ---- client side -------------------------------------------------------------

#[tokio::test]
async fn client_request_is_a_valid_upgrade() {
    let (_ws, _server, head) = client_pair(&ClientConfig::default(), b"").await;
    assert!(head.starts_with("GET / HTTP/1.1\r\n"), "{head}");
    assert_eq!(header(&head, "Host"), Some("x"));
    assert!(header(&head, "Upgrade")
        .unwrap()
        .eq_ignore_ascii_case("websocket"));
    assert!(header(&head, "Connection")
        .unwrap()
        .to_ascii_lowercase()
        .contains("upgrade"));
    assert_eq!(header(&head, "Sec-WebSocket-Version"), Some("13"));
    let key = header(&head, "Sec-WebSocket-Key").unwrap();
    assert_eq!(key.len(), 24, "base64 of 16 bytes: {key}");
}

#[tokio::test]
async fn client_delivers_a_frame_sent_with_the_101() {
    let mut after = vec![0x81, 0x02, b'h', b'i'];
    after.extend(frame(OP_BINARY, true, &[9; 300], None));
    let (mut ws, mut server, _) = client_pair(&ClientConfig::default(), &after).await;
    assert_eq!(ws.recv().await.unwrap(), Some(text("hi")));
    assert_eq!(
        ws.recv().await.unwrap(),
        Some(Message::binary(vec![9; 300]))
    );
    // Close from the server side so the client ends cleanly.
    send_raw(
        &mut server,
        &frame(OP_CLOSE, true, &close_payload(1000, ""), None),
    )
    .await;
    let task = recv_all(ws);
    let echo = read_frame(&mut server).await.unwrap();
    assert!(echo.masked);
    assert_eq!(echo.close_code(), Some(1000));
    // RFC 6455 §7.1.1: the server ends TCP first.
    server.shutdown().await.unwrap();
    expect_eof(&mut server).await;
    drop(server);
    let (_, got, end) = task.await.unwrap();
    end.unwrap();
    assert!(got.is_empty());
}

#[tokio::test]
async fn client_frames_are_masked() {
    let (mut ws, mut server, _) = client_pair(&ClientConfig::default(), b"").await;
    let sent = vec![
        text("hello"),
        text(""),
        Message::binary(vec![0u8; 1000]),
        Message::binary((0..=255u8).cycle().take(70_000).collect::<Vec<_>>()),
        Message::Ping(b"ping"[..].into()),
        Message::Pong(b"pong"[..].into()),
    ];
    for m in &sent {
        ws.send(m.clone()).await.unwrap();
    }
    for m in &sent {
        let f = read_frame(&mut server).await.unwrap();
        assert!(f.masked, "client frame without MASK bit: {m:?}");
        assert!(f.fin);
        let (op, payload) = match m {
            Message::Text(t) => (OP_TEXT, t.as_bytes().to_vec()),
            Message::Binary(b) => (OP_BINARY, b.to_vec()),
            Message::Ping(b) => (OP_PING, b.to_vec()),
            Message::Pong(b) => (OP_PONG, b.to_vec()),
        };
        assert_eq!(f.opcode, op);
        assert!(f.payload == payload, "payload of {op:#x} differs");
    }
    // Read the raw bytes of two equal frames: different masking keys.
    ws.send(text("same")).await.unwrap();
    ws.send(text("same")).await.unwrap();
    let mut raw = [0u8; 20];
    tokio::io::AsyncReadExt::read_exact(&mut server, &mut raw)
        .await
        .unwrap();
    assert_eq!(raw[1], 0x80 | 4);
    assert_eq!(raw[11], 0x80 | 4);
    assert_ne!(raw[2..6], raw[12..16], "masking keys repeat");

    // The close frame is masked too.
    ws.close(Some(CloseFrame::new(CloseCode::GOING_AWAY, "bye")))
        .await
        .unwrap();
    let f = read_frame(&mut server).await.unwrap();
    assert!(f.masked);
    assert_eq!(f.close_code(), Some(1001));
    assert_eq!(&f.payload[2..], b"bye");
    let task = recv_all(ws);
    send_raw(
        &mut server,
        &frame(OP_CLOSE, true, &close_payload(1001, ""), None),
    )
    .await;
    server.shutdown().await.unwrap();
    expect_eof(&mut server).await;
    drop(server);
    let (ws, _, end) = task.await.unwrap();
    end.unwrap();
    assert_eq!(ws.close_info().unwrap().initiator, Initiator::Local);
}

#[tokio::test]
async fn client_answers_ping_with_masked_pong() {
    let (ws, mut server, _) = client_pair(
        &ClientConfig::default(),
        &frame(OP_PING, true, b"srv", None),
    )
    .await;
    let task = recv_all(ws);
    let pong = read_frame(&mut server).await.unwrap();
    assert_eq!(
        pong,
        RawFrame {
            fin: true,
            rsv: 0,
            opcode: OP_PONG,
            masked: true,
            payload: b"srv".to_vec()
        }
    );
    drop(server);
    let (_, got, end) = task.await.unwrap();
    assert_eq!(got, vec![Message::Ping(b"srv"[..].into())]);
    assert_eq!(end.unwrap_err().close_code(), Some(CloseCode::ABNORMAL));
}

#[tokio::test]
async fn client_rejects_masked_server_frame_with_1002() {
    let (ws, mut server, _) = client_pair(&ClientConfig::default(), &masked(OP_TEXT, b"hi")).await;
    let task = recv_all(ws);
    let close = read_frame(&mut server).await.unwrap();
    assert!(close.masked);
    assert_eq!(close.close_code(), Some(1002));
    expect_eof(&mut server).await;
    drop(server);
    let (_, got, end) = task.await.unwrap();
    assert!(got.is_empty());
    let err = end.unwrap_err();
    assert!(err.is_protocol(), "{err}");
    assert_eq!(err.close_code(), Some(CloseCode::PROTOCOL_ERROR));
}

// ---- sending fragments, receiving events, refused commands -------------------

#[tokio::test]
async fn send_fragment_writes_the_right_opcodes() {
    use wsx::{DataKind, Fragment};
    let frag = |kind, data: &'static [u8], first, fin| Fragment {
        kind,
        data: bytes::Bytes::from_static(data),
        first,
        fin,
    };
    let (mut ws, mut peer) = server_pair(&ServerConfig::default(), b"").await;
    // Out of sequence: refused, and nothing is written.
    assert!(ws
        .send_fragment(frag(DataKind::Text, b"x", false, true))
        .await
        .is_err());
    ws.send_fragment(frag(DataKind::Text, b"Hel", true, false))
        .await
        .unwrap();
    // Control frames may go between fragments; data messages may not.
    ws.send(Message::Ping(b"mid"[..].into())).await.unwrap();
    assert!(ws.send(text("interleaved")).await.is_err());
    assert!(ws
        .send_fragment(frag(DataKind::Binary, b"x", true, true))
        .await
        .is_err());
    ws.send_fragment(frag(DataKind::Text, b"l", false, false))
        .await
        .unwrap();
    ws.send_fragment(frag(DataKind::Text, b"o", false, true))
        .await
        .unwrap();
    ws.send_fragment(frag(DataKind::Binary, b"\x01", true, true))
        .await
        .unwrap();
    let want = [
        (false, OP_TEXT, &b"Hel"[..]),
        (true, OP_PING, b"mid"),
        (false, OP_CONT, b"l"),
        (true, OP_CONT, b"o"),
        (true, OP_BINARY, b"\x01"),
    ];
    for (fin, opcode, payload) in want {
        let f = read_frame(&mut peer).await.unwrap();
        assert_eq!(
            (f.fin, f.opcode, &f.payload[..], f.masked),
            (fin, opcode, payload, false)
        );
    }
    let task = recv_all(ws);
    peer_close(&mut peer).await;
    drop(peer);
    task.await.unwrap().2.unwrap();
}

#[tokio::test]
async fn recv_event_delivers_fragments_when_configured() {
    use wsx::{DataKind, Event, Fragment};
    let config = ServerConfig::default().limits(
        wsx::Config::builder()
            .deliver_fragments(true)
            .build()
            .unwrap(),
    );
    let bytes = [
        frame(OP_BINARY, false, b"ab", Some(KEY)),
        masked(OP_PING, b"p"),
        frame(OP_CONT, true, b"c", Some(KEY)),
        MASKED_HELLO.to_vec(),
        masked(OP_CLOSE, &close_payload(1000, "")),
    ]
    .concat();
    let (mut ws, mut peer) = server_pair(&config, &bytes).await;
    let frag = |kind, data: &'static [u8], first, fin| {
        Event::Fragment(Fragment {
            kind,
            data: bytes::Bytes::from_static(data),
            first,
            fin,
        })
    };
    let want = vec![
        frag(DataKind::Binary, b"ab", true, false),
        Event::Ping(b"p"[..].into()),
        frag(DataKind::Binary, b"c", false, true),
        frag(DataKind::Text, b"Hello", true, true),
    ];
    for w in want {
        assert_eq!(ws.recv_event().await.unwrap(), Some(w));
    }
    let reader = tokio::spawn(async move {
        let end = ws.recv_event().await.unwrap();
        let after = ws.recv_event().await.unwrap();
        (end, after)
    });
    let pong = read_frame(&mut peer).await.unwrap();
    assert_eq!(pong.opcode, OP_PONG);
    let close = read_frame(&mut peer).await.unwrap();
    assert_eq!(close.close_code(), Some(1000));
    expect_eof(&mut peer).await;
    drop(peer);
    let (end, after) = reader.await.unwrap();
    match end {
        Some(Event::Closed(c)) => {
            assert!(c.is_clean());
            assert_eq!(c.code, CloseCode::NORMAL);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(after, None);
}

#[tokio::test]
async fn recv_refuses_fragments_it_cannot_represent() {
    let config = ServerConfig::default().limits(
        wsx::Config::builder()
            .deliver_fragments(true)
            .build()
            .unwrap(),
    );
    let (mut ws, _peer) = server_pair(&config, &MASKED_HELLO).await;
    let err = ws.recv().await.expect_err("fragment via recv()");
    assert!(err.to_string().contains("recv_event"), "{err}");
}

#[tokio::test]
async fn refused_commands_leave_the_connection_usable() {
    let (mut ws, mut peer) = server_pair(&ServerConfig::default(), b"").await;
    for bad in [CloseCode::ABNORMAL, CloseCode::NO_STATUS, CloseCode(999)] {
        let err = ws
            .close(Some(CloseFrame::new(bad, "")))
            .await
            .expect_err("unsendable close code");
        assert!(err.to_string().contains(&bad.0.to_string()), "{err}");
    }
    let err = ws
        .send(Message::Ping(vec![0u8; 126].into()))
        .await
        .expect_err("control frame too long");
    assert!(err.to_string().contains("125"), "{err}");
    ws.send(text("still open")).await.unwrap();
    let f = read_frame(&mut peer).await.unwrap();
    assert_eq!((f.opcode, &f.payload[..]), (OP_TEXT, &b"still open"[..]));
    let task = recv_all(ws);
    peer_close(&mut peer).await;
    drop(peer);
    task.await.unwrap().2.unwrap();
}

/// A peer that floods pings and never reads the pongs: the server stops
/// reading once its queue is past the high-water mark, so the queue stays
/// bounded; when the peer reads again, every pong arrives, in order.
#[tokio::test]
async fn ping_flood_from_a_peer_that_does_not_read_is_bounded() {
    use futures_util::FutureExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::io::AsyncWriteExt as _;

    const HIGH_WATER: usize = 4096;
    const PINGS: usize = 10_000;
    let config = ServerConfig::default().write_buffer_high_water(HIGH_WATER);
    let (server_io, mut peer) = tokio::io::duplex(16 << 10);
    peer.write_all(REQUEST).await.unwrap();
    let mut ws =
        wsx::server::accept_with(server_io, &config, |_| Ok(wsx::server::Accept::default()))
            .await
            .unwrap();
    read_head(&mut peer).await.unwrap();

    let max_buffered = Arc::new(AtomicUsize::new(0));
    let server = {
        let max_buffered = max_buffered.clone();
        tokio::spawn(async move {
            let mut pings = 0;
            loop {
                match ws.recv().await {
                    Ok(Some(Message::Ping(_))) => pings += 1,
                    Ok(Some(m)) => panic!("{m:?}"),
                    Ok(None) => return pings,
                    Err(e) => panic!("{e}"),
                }
                max_buffered.fetch_max(ws.buffered_amount(), Ordering::SeqCst);
            }
        })
    };

    let payload = |i: usize| format!("ping {i:06} {}", "z".repeat(100)).into_bytes();
    let flood: Vec<u8> = (0..PINGS)
        .flat_map(|i| masked(OP_PING, &payload(i)))
        .collect();
    let (mut rd, mut wr) = tokio::io::split(peer);
    let (blocked_tx, blocked_rx) = tokio::sync::oneshot::channel();
    let writer = tokio::spawn(async move {
        let mut blocked_tx = Some(blocked_tx);
        let mut off = 0;
        while off < flood.len() {
            let n = match wr.write(&flood[off..]).now_or_never() {
                Some(r) => r.unwrap(),
                None => {
                    // The pipe is full: the server stopped reading.
                    if let Some(tx) = blocked_tx.take() {
                        tx.send(()).unwrap();
                    }
                    wr.write(&flood[off..]).await.unwrap()
                }
            };
            off += n;
        }
        wr
    });
    blocked_rx
        .await
        .expect("the server never stopped reading the flood");
    let max = max_buffered.load(Ordering::SeqCst);
    assert!(
        max <= HIGH_WATER + (64 << 10),
        "{max} bytes of pongs queued for a peer that does not read"
    );
    // Now read: every pong, in order.
    for i in 0..PINGS {
        let f = read_frame(&mut rd).await.unwrap();
        assert_eq!(f.opcode, OP_PONG, "pong {i}");
        assert!(f.payload == payload(i), "pong {i}");
    }
    let wr = writer.await.unwrap();
    let mut peer = rd.unsplit(wr);
    peer_close(&mut peer).await;
    drop(peer);
    assert_eq!(server.await.unwrap(), PINGS);
    let max = max_buffered.load(Ordering::SeqCst);
    assert!(max <= HIGH_WATER + (64 << 10), "{max}");
}

#[tokio::test]
async fn messages_after_our_close_frame_still_arrive() {
    let (mut ws, mut peer) = server_pair(&ServerConfig::default(), b"").await;
    ws.close(Some(CloseFrame::new(CloseCode::GOING_AWAY, "restart")))
        .await
        .unwrap();
    let task = recv_all(ws);
    // The peer had these in flight when our close frame arrived; it must
    // not answer our close with pongs.
    send_raw(
        &mut peer,
        &[
            MASKED_HELLO.to_vec(),
            masked(OP_PING, b"no pong"),
            masked(OP_CLOSE, &close_payload(1001, "")),
        ]
        .concat(),
    )
    .await;
    let f = read_frame(&mut peer).await.unwrap();
    assert_eq!(f.close_code(), Some(1001));
    assert_eq!(&f.payload[2..], b"restart");
    // Nothing else: no pong after a close frame (RFC 6455 §5.5.1).
    expect_eof(&mut peer).await;
    drop(peer);
    let (ws, got, end) = task.await.unwrap();
    end.unwrap();
    assert_eq!(
        got,
        vec![text("Hello"), Message::Ping(b"no pong"[..].into())]
    );
    assert_eq!(ws.close_info().unwrap().code, CloseCode::GOING_AWAY);
}
