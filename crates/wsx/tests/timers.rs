//! Timers on tokio's paused clock: keepalive pings and their timeout, the
//! close timeout, the opening-handshake timeouts. No real time passes: the
//! runtime jumps to the next timer whenever every task is idle.

mod common;

use common::*;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio::time::Instant;
use wsx::{
    client::ClientConfig, CloseCause, CloseCode, CloseFrame, Config, Message, Role, ServerConfig,
    WebSocket,
};

type Ws = WebSocket<DuplexStream>;

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Asserts `elapsed` is in `[at, at + 1s)`.
#[track_caller]
fn assert_at(elapsed: Duration, at: Duration, what: &str) {
    assert!(
        elapsed >= at && elapsed < at + secs(1),
        "{what}: at {elapsed:?}, expected within [{at:?}, {:?})",
        at + secs(1)
    );
}

fn keepalive_config() -> Config {
    Config::builder()
        .ping_interval(Some(secs(30)))
        .pong_timeout(secs(10))
        .build()
        .unwrap()
}

fn keepalive_server() -> ServerConfig {
    ServerConfig::default().limits(keepalive_config())
}

/// Calls `recv()` once in a task; returns the socket, the result, and when
/// it completed (relative to `start`).
fn recv_once(
    mut ws: Ws,
    start: Instant,
) -> tokio::task::JoinHandle<(Ws, wsx::Result<Option<Message>>, Duration)> {
    tokio::spawn(async move {
        let r = ws.recv().await;
        (ws, r, start.elapsed())
    })
}

#[track_caller]
fn assert_keepalive_timeout(r: &wsx::Result<Option<Message>>) {
    let err = r
        .as_ref()
        .expect_err("keepalive should fail the connection");
    assert_eq!(err.close_code(), Some(CloseCode::ABNORMAL), "{err}");
    assert!(err.is_timeout() && err.is_closed(), "{err}");
    assert!(!err.is_protocol(), "{err}");
    assert_eq!(
        err.close_info().unwrap().cause,
        Some(CloseCause::KeepaliveTimeout(secs(10)))
    );
}

#[tokio::test(start_paused = true)]
async fn keepalive_ping_arrives_after_the_interval() {
    let (ws, mut peer) = server_pair(&keepalive_server(), b"").await;
    let start = Instant::now();
    let task = recv_once(ws, start);
    // The peer reads nothing for 30 s of virtual time, then the ping.
    let ping = read_frame(&mut peer).await.unwrap();
    assert_at(start.elapsed(), secs(30), "ping");
    assert!(ping.fin && !ping.masked);
    assert_eq!(ping.opcode, OP_PING, "first byte 0x89");
    assert!(ping.payload.len() <= 125);
    drop(peer);
    let _ = task.await.unwrap();
}

/// A peer that is gone without TCP noticing: it never reads, writes or
/// closes again. The error must come pong_timeout after the ping (40 s).
#[tokio::test(start_paused = true)]
async fn keepalive_timeout_with_a_dead_peer_ends_at_40s() {
    let (ws, mut peer) = server_pair(&keepalive_server(), b"").await;
    let start = Instant::now();
    let task = recv_once(ws, start);
    let ping = read_frame(&mut peer).await.unwrap();
    assert_eq!(ping.opcode, OP_PING);
    assert_at(start.elapsed(), secs(30), "ping");
    // Keep `peer` open and silent.
    let (_ws, r, at) = task.await.unwrap();
    assert_keepalive_timeout(&r);
    assert_at(at, secs(40), "keepalive timeout reported");
    drop(peer);
}

/// A peer whose TCP stack still works (it sees our EOF and closes too) but
/// whose WebSocket layer does not answer.
#[tokio::test(start_paused = true)]
async fn keepalive_timeout_with_a_silent_peer_ends_at_40s() {
    let (ws, mut peer) = server_pair(&keepalive_server(), b"").await;
    let start = Instant::now();
    let task = recv_once(ws, start);
    let ping = read_frame(&mut peer).await.unwrap();
    assert_eq!(ping.opcode, OP_PING);
    // No close frame for a timeout: the server just ends TCP.
    expect_eof(&mut peer).await;
    assert_at(start.elapsed(), secs(40), "EOF after the timeout");
    drop(peer);
    let (_ws, r, at) = task.await.unwrap();
    assert_keepalive_timeout(&r);
    assert_at(at, secs(40), "keepalive timeout reported");
}

/// Builds the peer's answer to a ping from the ping's payload.
type Answer = fn(&[u8]) -> Vec<u8>;

#[tokio::test(start_paused = true)]
async fn keepalive_answered_keeps_the_connection_open() {
    // (what the peer answers each ping with, whether rtt gets measured)
    let answers: [(&str, Answer, bool); 3] = [
        ("matching pong", |p| masked(OP_PONG, p), true),
        ("pong with other data", |_| masked(OP_PONG, b"x"), false),
        ("any data frame", |_| masked(OP_TEXT, b"alive"), false),
    ];
    for (what, answer, measures_rtt) in answers {
        let (mut ws, mut peer) = server_pair(&keepalive_server(), b"").await;
        let start = Instant::now();
        let peer_task = tokio::spawn(async move {
            // Answer three pings, each 1 s late.
            for n in 1..=3u32 {
                let ping = read_frame(&mut peer).await.unwrap();
                assert_eq!(ping.opcode, OP_PING);
                assert_at(start.elapsed(), secs(30) * n, "ping");
                tokio::time::sleep(secs(1)).await;
                send_raw(&mut peer, &answer(&ping.payload)).await;
            }
            peer
        });
        // Past the first pong deadline (40 s) and two more rounds.
        let mut got = Vec::new();
        let r = tokio::time::timeout_at(start + secs(95), async {
            loop {
                match ws.recv().await {
                    Ok(Some(m)) => got.push((start.elapsed(), m)),
                    other => return other,
                }
            }
        })
        .await;
        assert!(r.is_err(), "{what}: connection ended: {r:?}");
        assert_eq!(got.len(), 3, "{what}: {got:?}");
        for (i, (at, _)) in got.iter().enumerate() {
            assert_at(*at, secs(31 + 30 * i as u64), what);
        }
        if measures_rtt {
            let rtt = ws.rtt().expect("rtt after an answered ping");
            assert!(rtt >= secs(1) && rtt < secs(2), "{what}: rtt {rtt:?}");
        } else {
            assert_eq!(ws.rtt(), None, "{what}");
        }
        let peer = peer_task.await.unwrap();
        drop(peer);
    }
}

#[tokio::test(start_paused = true)]
async fn keepalive_runs_in_the_reader_half_of_a_split_socket() {
    let (ws, mut peer) = server_pair(&keepalive_server(), b"").await;
    let start = Instant::now();
    let (mut reader, _writer) = ws.split();
    let task = tokio::spawn(async move { (reader.recv().await, start.elapsed()) });
    let ping = read_frame(&mut peer).await.unwrap();
    assert_eq!(ping.opcode, OP_PING);
    assert_at(start.elapsed(), secs(30), "ping");
    expect_eof(&mut peer).await;
    drop(peer);
    let (r, at) = task.await.unwrap();
    assert_keepalive_timeout(&r);
    assert_at(at, secs(40), "keepalive timeout reported");
}

#[tokio::test(start_paused = true)]
async fn client_keepalive_pings_are_masked() {
    let config = ClientConfig::default().limits(keepalive_config());
    let (ws, mut server, _) = client_pair(&config, b"").await;
    let start = Instant::now();
    let task = recv_once(ws, start);
    let ping = read_frame(&mut server).await.unwrap();
    assert_eq!(ping.opcode, OP_PING);
    assert!(ping.masked);
    assert_at(start.elapsed(), secs(30), "client ping");
    expect_eof(&mut server).await;
    drop(server);
    let (ws, r, at) = task.await.unwrap();
    assert_eq!(ws.role(), Role::Client);
    assert_keepalive_timeout(&r);
    assert_at(at, secs(40), "client keepalive timeout");
}

// ---- close timeout -------------------------------------------------------------

/// `close()` and then a peer that never answers: the next `recv()` ends
/// with 1006 / CloseTimeout once the close timeout has passed.
#[tokio::test(start_paused = true)]
async fn close_timeout_with_a_peer_that_never_answers() {
    // (role, configured close timeout; None: the default 5 s)
    let cases = [
        (Role::Server, None),
        (Role::Server, Some(secs(2))),
        (Role::Client, None),
        (Role::Client, Some(secs(3))),
    ];
    let mut wrong_time = Vec::new();
    for (role, timeout) in cases {
        let mut protocol = Config::builder();
        if let Some(t) = timeout {
            protocol = protocol.close_timeout(t);
        }
        let protocol = protocol.build().unwrap();
        let expect = timeout.unwrap_or(secs(5));
        assert_eq!(protocol.close_timeout(), expect);
        let (mut ws, peer) = match role {
            Role::Server => {
                let config = ServerConfig::default().limits(protocol);
                server_pair(&config, b"").await
            }
            Role::Client => {
                let config = ClientConfig::default().limits(protocol);
                let (ws, server, _) = client_pair(&config, b"").await;
                (ws, server)
            }
        };
        let what = format!("{role:?} with close timeout {expect:?}");
        let start = Instant::now();
        ws.close(Some(CloseFrame::new(CloseCode::NORMAL, "")))
            .await
            .unwrap();
        // `peer` stays open and silent (it never even reads our close frame).
        let r = ws.recv().await;
        let at = start.elapsed();
        let err = r.expect_err(&what);
        assert_eq!(err.close_code(), Some(CloseCode::ABNORMAL), "{what}: {err}");
        assert!(err.is_timeout(), "{what}: {err}");
        let info = err.close_info().unwrap();
        assert_eq!(info.cause, Some(CloseCause::CloseTimeout(expect)), "{what}");
        assert_eq!(
            info.sent,
            Some(CloseFrame::new(CloseCode::NORMAL, "")),
            "{what}"
        );
        if !(at >= expect && at < expect + secs(1)) {
            wrong_time.push(format!("{what}: ended at {at:?}"));
        }
        drop(peer);
    }
    assert!(
        wrong_time.is_empty(),
        "recv() must end at the close timeout:\n{}",
        wrong_time.join("\n")
    );
}

/// The same, but the peer's TCP stack closes once it sees our EOF: the end
/// comes at the close timeout too.
#[tokio::test(start_paused = true)]
async fn close_timeout_with_a_peer_that_reads_but_never_answers() {
    let (mut ws, mut peer) = server_pair(&ServerConfig::default(), b"").await;
    let start = Instant::now();
    ws.close(Some(CloseFrame::new(CloseCode::NORMAL, "")))
        .await
        .unwrap();
    let task = recv_once(ws, start);
    let f = read_frame(&mut peer).await.unwrap();
    assert_eq!(f.close_code(), Some(1000));
    expect_eof(&mut peer).await;
    assert_at(start.elapsed(), secs(5), "EOF after the close timeout");
    drop(peer);
    let (_ws, r, at) = task.await.unwrap();
    let err = r.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(err.close_code(), Some(CloseCode::ABNORMAL));
    assert_at(at, secs(5), "close timeout reported");
}

/// A peer that answers the close frame in time ends the connection cleanly,
/// without waiting for the timer.
#[tokio::test(start_paused = true)]
async fn close_answered_before_the_timeout_is_clean() {
    let (mut ws, mut peer) = server_pair(&ServerConfig::default(), b"").await;
    let start = Instant::now();
    ws.close(Some(CloseFrame::new(CloseCode::NORMAL, "")))
        .await
        .unwrap();
    let task = recv_once(ws, start);
    let f = read_frame(&mut peer).await.unwrap();
    assert_eq!(f.close_code(), Some(1000));
    tokio::time::sleep(secs(4)).await;
    send_raw(&mut peer, &masked(OP_CLOSE, &close_payload(1000, ""))).await;
    expect_eof(&mut peer).await;
    drop(peer);
    let (ws, r, at) = task.await.unwrap();
    assert_eq!(r.unwrap(), None);
    assert!(ws.close_info().unwrap().is_clean());
    assert_at(at, secs(4), "clean close");
}

/// A server ends TCP after a clean close and returns at once, even while the
/// client keeps its side open: the client sent its close frame, so nothing
/// can follow that a reset would cost. After a protocol error it still
/// reads until the client's EOF (at most the close timeout), so that its
/// 1002 is not lost to a reset of data the client was still sending.
#[tokio::test(start_paused = true)]
async fn server_ends_at_once_after_a_clean_close_and_drains_after_an_error() {
    for clean in [true, false] {
        let (ws, mut peer) = server_pair(&ServerConfig::default(), b"").await;
        let start = Instant::now();
        let task = recv_once(ws, start);
        let bytes = if clean {
            masked(OP_CLOSE, &close_payload(1000, ""))
        } else {
            frame(OP_TEXT, true, b"unmasked", None) // 1002: clients must mask
        };
        send_raw(&mut peer, &bytes).await;
        let f = read_frame(&mut peer).await.unwrap();
        assert_eq!(f.close_code(), Some(if clean { 1000 } else { 1002 }));
        // The server's FIN, in both cases; the peer never closes its side
        // (it is dropped only at the end).
        expect_eof(&mut peer).await;
        let (ws, r, at) = task.await.unwrap();
        if clean {
            assert_eq!(r.unwrap(), None);
            assert!(ws.close_info().unwrap().is_clean());
            assert_at(at, secs(0), "clean close, client's side still open");
        } else {
            let err = r.expect_err("protocol error");
            assert!(err.is_protocol(), "{err}");
            assert_at(at, secs(5), "drain after 1002, up to the close timeout");
        }
        drop(peer);
    }
}

// ---- handshake timeouts ------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn server_handshake_timeout() {
    // (what the client sends, one byte per second if `drip`, handshake timeout)
    let cases: [(&str, &[u8], bool, Duration); 4] = [
        ("nothing", b"", false, secs(10)),
        (
            "half a request head",
            b"GET / HTTP/1.1\r\nHost: x\r\n",
            false,
            secs(10),
        ),
        // A slowloris client: steady progress must not extend the deadline.
        ("one byte per second", REQUEST, true, secs(10)),
        ("nothing, custom timeout", b"", false, secs(3)),
    ];
    for (what, bytes, drip, timeout) in cases {
        let config = ServerConfig::default().handshake_timeout(timeout);
        assert_eq!(ServerConfig::default().handshake_timeout, secs(10));
        let (server_io, mut peer) = tokio::io::duplex(1 << 16);
        let start = Instant::now();
        let client = tokio::spawn(async move {
            if drip {
                for b in bytes {
                    if peer.write_all(&[*b]).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(secs(1)).await;
                }
            } else {
                peer.write_all(bytes).await.unwrap();
            }
            // The server gives up by ending the stream.
            let rest = read_to_eof(&mut peer).await;
            (rest, start.elapsed())
        });
        let r =
            wsx::server::accept_with(server_io, &config, |_| Ok(wsx::server::Accept::default()))
                .await;
        let at = start.elapsed();
        let err = r.expect_err(what);
        assert!(err.is_timeout(), "{what}: {err}");
        assert!(!err.is_handshake() && !err.is_closed(), "{what}: {err}");
        assert!(err.to_string().contains("in time"), "{what}: {err}");
        assert_at(at, timeout, what);
        let (rest, eof_at) = client.await.unwrap();
        assert!(rest.is_empty(), "{what}: no response expected");
        assert_at(eof_at, timeout, what);
    }
}

#[tokio::test(start_paused = true)]
async fn client_handshake_timeout() {
    for timeout in [secs(10), secs(2)] {
        let config = ClientConfig::default().handshake_timeout(timeout);
        let (client_io, mut server) = tokio::io::duplex(1 << 16);
        let req = wsx::client::ClientRequest::new("ws://x/").unwrap();
        let start = Instant::now();
        // The server reads the request and never answers.
        let (r, head) = tokio::join!(
            wsx::client::handshake(&req, client_io, &config),
            read_head(&mut server)
        );
        assert!(head.unwrap().starts_with("GET / "));
        let err = r.expect_err("no answer");
        assert!(err.is_timeout(), "{err}");
        assert_at(start.elapsed(), timeout, "client handshake timeout");
        drop(server);
    }
}

#[tokio::test(start_paused = true)]
async fn client_stops_waiting_for_a_rejection_body() {
    // A 403 head with a body that never comes (no Content-Length, the
    // connection stays open): the error comes after a short wait, long
    // before the handshake timeout.
    let (client_io, mut server) = tokio::io::duplex(1 << 16);
    let req = wsx::client::ClientRequest::new("ws://x/").unwrap();
    let start = Instant::now();
    let script = async {
        read_head(&mut server).await.unwrap();
        server
            .write_all(b"HTTP/1.1 403 Forbidden\r\n\r\nno")
            .await
            .unwrap();
    };
    let config = ClientConfig::default();
    let (r, ()) = tokio::join!(wsx::client::handshake(&req, client_io, &config), script);
    let err = r.expect_err("403");
    let at = start.elapsed();
    assert!(at < secs(1), "waited {at:?} for the body");
    assert_eq!(rejection(&err), (403, b"no".to_vec()));
    drop(server);
}

// ---- more timer paths ----------------------------------------------------------

/// `recv()` is cancel safe: timing it out over and over while a frame
/// trickles in loses nothing.
#[tokio::test(start_paused = true)]
async fn recv_cancelled_by_timeouts_loses_nothing() {
    let (mut ws, mut peer) = server_pair(&ServerConfig::default(), b"").await;
    let mut bytes = MASKED_HELLO.to_vec();
    bytes.extend(frame(OP_TEXT, false, b"wor", Some(KEY)));
    bytes.extend(masked(OP_PING, b"!"));
    bytes.extend(frame(OP_CONT, true, b"ld", Some(KEY)));
    let writer = tokio::spawn(async move {
        for b in bytes {
            peer.write_all(&[b]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(700)).await;
        }
        peer
    });
    let mut got = Vec::new();
    let mut timeouts = 0;
    while got.len() < 3 {
        match tokio::time::timeout(Duration::from_millis(300), ws.recv()).await {
            Ok(r) => got.push(r.unwrap().unwrap()),
            Err(_) => timeouts += 1,
        }
    }
    assert!(timeouts > 10, "{timeouts}");
    assert_eq!(
        got,
        vec![
            Message::text("Hello"),
            Message::Ping(b"!"[..].into()),
            Message::text("world")
        ]
    );
    let mut peer = writer.await.unwrap();
    let pong = read_frame(&mut peer).await.unwrap();
    assert_eq!((pong.opcode, pong.payload), (OP_PONG, b"!".to_vec()));
}

/// The writer half's `close()` wakes a reader blocked on the socket, which
/// then runs the close timer.
#[tokio::test(start_paused = true)]
async fn split_close_wakes_the_blocked_reader() {
    let (ws, mut peer) = server_pair(&ServerConfig::default(), b"").await;
    let (mut reader, mut writer) = ws.split();
    let start = Instant::now();
    let task = tokio::spawn(async move { (reader.recv().await, start.elapsed()) });
    // Let the reader block first.
    tokio::time::sleep(secs(1)).await;
    writer
        .close(Some(CloseFrame::new(CloseCode::NORMAL, "")))
        .await
        .unwrap();
    let f = read_frame(&mut peer).await.unwrap();
    assert_eq!(f.close_code(), Some(1000));
    // The peer never answers, but its TCP closes once it sees our EOF.
    expect_eof(&mut peer).await;
    drop(peer);
    let (r, at) = task.await.unwrap();
    let err = r.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_at(at, secs(6), "close timeout, 5 s after close() at 1 s");
}

/// After a clean close a client waits for the server to end TCP (RFC 6455
/// §7.1.1), but not longer than the close timeout (counted from the
/// server's close frame).
#[tokio::test(start_paused = true)]
async fn client_waits_for_the_server_eof_at_most_the_close_timeout() {
    for server_closes_tcp in [true, false] {
        let (mut ws, mut server, _) = client_pair(&ClientConfig::default(), b"").await;
        let start = Instant::now();
        ws.close(Some(CloseFrame::new(CloseCode::NORMAL, "")))
            .await
            .unwrap();
        let task = recv_once(ws, start);
        let f = read_frame(&mut server).await.unwrap();
        assert_eq!(f.close_code(), Some(1000));
        tokio::time::sleep(secs(1)).await;
        send_raw(
            &mut server,
            &frame(OP_CLOSE, true, &close_payload(1000, ""), None),
        )
        .await;
        if server_closes_tcp {
            server.shutdown().await.unwrap();
        }
        // The client ends its side only after the server did (or gave up).
        expect_eof(&mut server).await;
        let eof_at = start.elapsed();
        drop(server);
        let (ws, r, at) = task.await.unwrap();
        assert_eq!(r.unwrap(), None, "server closes TCP: {server_closes_tcp}");
        assert!(ws.close_info().unwrap().is_clean());
        let want = if server_closes_tcp {
            secs(1)
        } else {
            secs(1 + 5)
        };
        assert_at(eof_at, want, "client EOF");
        assert_at(at, want, "recv() end");
    }
}
