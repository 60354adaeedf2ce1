//! The closing handshake (RFC 6455 §5.5.1, §7), end of stream, and the
//! keepalive and close timers, on virtual time.

mod common;

use bytes::Bytes;
use common::*;
use std::time::{Duration, Instant};
use wsx_proto::{
    CloseCause, CloseCode, CloseFrame, Closed, Config, Connection, DataKind, Event, Fragment,
    Initiator, Message, Role, SendError,
};

const S: Role = Role::Server;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// The protocol's timers alone: the buffer release check (tested in
/// `buffers_go_back_only_after_a_quiet_delay`) would add its deadlines.
fn timers_only() -> wsx_proto::ConfigBuilder {
    Config::builder().buffer_release_delay(None)
}

fn server(t0: Instant) -> Connection {
    Connection::server(timers_only().build().unwrap(), t0)
}

fn keepalive() -> Config {
    timers_only()
        .ping_interval(Some(secs(30)))
        .pong_timeout(secs(10))
        .build()
        .unwrap()
}

/// The single `Closed` in `events`, which must be the only event.
fn only_closed(events: Vec<Event>) -> Closed {
    assert_eq!(events.len(), 1, "want only Closed: {}", summary(&events));
    the_closed(&events).clone()
}

/// After `Closed`: nothing more, ever.
fn assert_done(c: &mut Connection, now: Instant) {
    assert!(c.is_closed());
    assert_eq!(c.poll_event(), None);
    c.handle_data(&to(c.role(), FIN | TEXT, b"late"), now);
    c.handle_timeout(now + secs(3600));
    c.handle_eof();
    assert_eq!(
        c.poll_event(),
        None,
        "Closed is reported once, nothing after"
    );
    assert_eq!(c.poll_timeout(), None);
    assert_eq!(c.send(Message::text("x")), Err(SendError::Closed));
    assert_eq!(drain(c), Vec::<u8>::new());
}

// ---- closing handshake -----------------------------------------------------

#[test]
fn peer_initiated_close() {
    let t0 = Instant::now();
    let mut s = server(t0);
    let ev = feed(
        &mut s,
        &to(S, FIN | CLOSE, &close_payload(1000, b"bye")),
        t0,
    );
    let closed = only_closed(ev);
    assert_eq!(
        closed,
        Closed {
            code: CloseCode::NORMAL,
            reason: "bye".into(),
            initiator: Initiator::Remote,
            sent: Some(CloseFrame::new(CloseCode::NORMAL, "")),
            cause: None,
        }
    );
    assert!(closed.is_clean());
    // The reply echoes the code (§5.5.1).
    assert_eq!(drain(&mut s), hex("88 02 03 e8"));
    assert!(s.is_closing());
    assert_done(&mut s, t0);
}

#[test]
fn peer_initiated_close_to_client_gets_a_masked_reply() {
    let t0 = Instant::now();
    let mut c = conn(Role::Client, Config::default(), t0);
    let ev = feed(
        &mut c,
        &to(Role::Client, FIN | CLOSE, &close_payload(1001, b"going")),
        t0,
    );
    let closed = only_closed(ev);
    assert_eq!(
        (closed.code, closed.reason.as_str()),
        (CloseCode::GOING_AWAY, "going")
    );
    assert_eq!(closed.initiator, Initiator::Remote);
    assert!(closed.is_clean());
    let frames = parse_frames(&drain(&mut c));
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].b0, FIN | CLOSE);
    assert!(frames[0].mask.is_some());
    assert_eq!(frames[0].payload, close_payload(1001, b""));
    assert_done(&mut c, t0);
}

#[test]
fn local_close_then_peer_reply() {
    let t0 = Instant::now();
    let mut s = server(t0);
    let ours = CloseFrame::new(CloseCode::NORMAL, "done");
    s.close(Some(ours.clone()), t0).unwrap();
    assert_eq!(drain(&mut s), hex("88 06 03 e8 64 6f 6e 65"));
    assert!(s.is_closing() && !s.is_closed());
    assert_eq!(s.poll_event(), None);
    assert_eq!(
        s.poll_timeout(),
        Some(t0 + secs(5)),
        "default close timeout"
    );
    // Nothing may be sent after a close frame (§5.5.1).
    assert_eq!(s.send(Message::text("x")), Err(SendError::Closed));
    assert_eq!(
        s.send(Message::Ping(Bytes::from_static(b"p"))),
        Err(SendError::Closed)
    );
    assert_eq!(s.close(None, t0), Err(SendError::Closed));
    assert_eq!(drain(&mut s), Vec::<u8>::new());

    let t1 = t0 + secs(1);
    let ev = feed(&mut s, &to(S, FIN | CLOSE, &close_payload(1000, b"")), t1);
    let closed = only_closed(ev);
    assert_eq!(
        closed,
        Closed {
            code: CloseCode::NORMAL,
            reason: String::new(),
            initiator: Initiator::Local,
            sent: Some(ours),
            cause: None,
        }
    );
    assert_eq!(drain(&mut s), Vec::<u8>::new(), "no second close frame");
    assert_done(&mut s, t1);
}

#[test]
fn close_handshake_between_client_and_server() {
    let t0 = Instant::now();
    let mut client = Connection::client(Config::default(), SEED, t0);
    let mut server = server(t0);
    client
        .close(Some(CloseFrame::new(CloseCode(4001), "app says bye")), t0)
        .unwrap();
    let wire = drain(&mut client);
    let s_closed = only_closed(feed(&mut server, &wire, t0));
    assert_eq!(s_closed.code, CloseCode(4001));
    assert_eq!(s_closed.reason, "app says bye");
    assert_eq!(s_closed.initiator, Initiator::Remote);
    assert!(s_closed.is_clean());

    let wire = drain(&mut server);
    let c_closed = only_closed(feed(&mut client, &wire, t0));
    assert_eq!(c_closed.code, CloseCode(4001));
    assert_eq!(c_closed.initiator, Initiator::Local);
    assert!(c_closed.is_clean());
    assert_done(&mut client, t0);
    assert_done(&mut server, t0);
}

#[test]
fn local_close_without_reply_times_out() {
    let t0 = Instant::now();
    let config = timers_only().close_timeout(secs(2)).build().unwrap();
    let mut s = Connection::server(config, t0);
    s.close(Some(CloseFrame::new(CloseCode::GOING_AWAY, "")), t0)
        .unwrap();
    drain(&mut s);
    assert_eq!(s.poll_timeout(), Some(t0 + secs(2)));

    s.handle_timeout(t0 + secs(2) - Duration::from_millis(1));
    assert_eq!(s.poll_event(), None, "not yet");
    assert!(!s.is_closed());

    s.handle_timeout(t0 + secs(2));
    let closed = only_closed(poll_all(&mut s));
    assert_eq!(closed.code, CloseCode::ABNORMAL);
    assert_eq!(closed.cause, Some(CloseCause::CloseTimeout(secs(2))));
    assert_eq!(closed.initiator, Initiator::Local);
    assert_eq!(
        closed.sent,
        Some(CloseFrame::new(CloseCode::GOING_AWAY, ""))
    );
    assert!(!closed.is_clean());
    assert_done(&mut s, t0 + secs(2));
}

#[test]
fn empty_close_frame_is_1005_and_the_reply_is_empty() {
    let t0 = Instant::now();
    let mut s = server(t0);
    let closed = only_closed(feed(&mut s, &to(S, FIN | CLOSE, b""), t0));
    assert_eq!(
        closed,
        Closed {
            code: CloseCode::NO_STATUS,
            reason: String::new(),
            initiator: Initiator::Remote,
            sent: None,
            cause: None,
        }
    );
    assert!(closed.is_clean());
    assert_eq!(drain(&mut s), hex("88 00"));
    assert_done(&mut s, t0);
}

#[test]
fn local_close_without_code() {
    let t0 = Instant::now();
    let mut s = server(t0);
    s.close(None, t0).unwrap();
    assert_eq!(drain(&mut s), hex("88 00"));
    let closed = only_closed(feed(&mut s, &to(S, FIN | CLOSE, b""), t0));
    assert_eq!(closed.code, CloseCode::NO_STATUS);
    assert_eq!(closed.initiator, Initiator::Local);
    assert_eq!(closed.sent, None);
    assert!(closed.is_clean());
}

#[test]
fn reserved_close_codes_are_refused_locally() {
    let t0 = Instant::now();
    let mut s = server(t0);
    for code in [0, 999, 1004, 1005, 1006, 1015, 2999, 5000] {
        assert_eq!(
            s.close(Some(CloseFrame::new(CloseCode(code), "")), t0),
            Err(SendError::InvalidCloseCode(CloseCode(code)))
        );
    }
    assert!(!s.is_closing());
    assert_eq!(drain(&mut s), Vec::<u8>::new());
    s.send(Message::text("still open")).unwrap();
}

#[test]
fn long_close_reason_is_truncated_on_a_char_boundary() {
    let t0 = Instant::now();
    let mut s = server(t0);
    s.close(
        Some(CloseFrame::new(CloseCode::NORMAL, "é".repeat(100))),
        t0,
    )
    .unwrap();
    let frames = parse_frames(&drain(&mut s));
    let p = &frames[0].payload;
    assert!(p.len() <= 125, "{} bytes", p.len());
    let reason = std::str::from_utf8(&p[2..]).unwrap();
    assert_eq!(reason, "é".repeat(61));
}

#[test]
fn peer_closes_in_the_middle_of_a_fragmented_message() {
    let t0 = Instant::now();
    let mut s = server(t0);
    assert!(feed(&mut s, &to(S, TEXT, b"Hel"), t0).is_empty());
    let closed = only_closed(feed(
        &mut s,
        &to(S, FIN | CLOSE, &close_payload(1000, b"")),
        t0,
    ));
    assert!(closed.is_clean());
    assert_eq!(drain(&mut s), hex("88 02 03 e8"));
}

// ---- end of stream ---------------------------------------------------------

#[test]
fn eof_mid_message_delivers_complete_messages_first() {
    let t0 = Instant::now();
    let mut s = server(t0);
    let input = [
        to(S, FIN | TEXT, b"one"),
        to(S, FIN | BINARY, b"two"),
        to(S, FIN | TEXT, b"three")[..8].to_vec(), // cut inside the payload
    ]
    .concat();
    s.handle_data(&input, t0);
    s.handle_eof();
    let ev = poll_all(&mut s);
    assert_eq!(
        ev[..2],
        [
            Event::Text("one".into()),
            Event::Binary(Bytes::from_static(b"two"))
        ]
    );
    let closed = the_closed(&ev);
    assert_eq!(ev.len(), 3);
    assert_eq!(closed.code, CloseCode::ABNORMAL);
    assert_eq!(closed.cause, Some(CloseCause::PeerVanished));
    assert_eq!(closed.initiator, Initiator::Remote);
    assert_eq!(closed.sent, None);
    assert!(!closed.is_clean());
    assert_done(&mut s, t0);
}

#[test]
fn eof_inside_a_header_or_a_fragmented_message() {
    let t0 = Instant::now();
    for input in [
        vec![],
        vec![0x81],
        to(S, TEXT, b"Hel"),
        [to(S, TEXT, b"Hel"), to(S, FIN | CONT, b"lo")[..3].to_vec()].concat(),
    ] {
        let mut s = server(t0);
        s.handle_data(&input, t0);
        s.handle_eof();
        let closed = only_closed(poll_all(&mut s));
        assert_eq!(closed.code, CloseCode::ABNORMAL, "{input:02x?}");
        assert_eq!(closed.cause, Some(CloseCause::PeerVanished));
    }
}

#[test]
fn eof_after_a_complete_fragmented_message_delivers_it() {
    let t0 = Instant::now();
    let mut s = server(t0);
    s.handle_data(
        &[to(S, TEXT, b"Hel"), to(S, FIN | CONT, b"lo")].concat(),
        t0,
    );
    s.handle_eof();
    let ev = poll_all(&mut s);
    assert!(
        ev.first() == Some(&Event::Text("Hello".into())),
        "the message must come before Closed: {}",
        summary(&ev)
    );
    assert_eq!(the_closed(&ev).cause, Some(CloseCause::PeerVanished));
}

#[test]
fn eof_after_the_close_handshake_is_clean() {
    let t0 = Instant::now();
    let mut s = server(t0);
    s.handle_data(&to(S, FIN | CLOSE, &close_payload(1000, b"")), t0);
    s.handle_eof();
    let closed = only_closed(poll_all(&mut s));
    assert!(closed.is_clean(), "{closed:?}");
    assert_eq!(closed.code, CloseCode::NORMAL);
}

// ---- keepalive ---------------------------------------------------------------

/// Checks that the keepalive ping goes out at 30 s (not before); returns
/// the bytes sent.
fn keepalive_ping(s: &mut Connection, t0: Instant) -> Vec<u8> {
    assert_eq!(s.poll_timeout(), Some(t0 + secs(30)));
    s.handle_timeout(t0 + secs(29));
    assert_eq!(drain(s), Vec::<u8>::new(), "no ping before 30 s");
    s.handle_timeout(t0 + secs(30));
    let out = drain(s);
    let frames = parse_frames(&out);
    assert_eq!(frames.len(), 1, "one ping at 30 s: {frames:02x?}");
    assert_eq!(frames[0].b0, FIN | PING);
    assert_eq!(frames[0].mask.is_some(), s.role() == Role::Client);
    assert_eq!(s.poll_timeout(), Some(t0 + secs(40)), "pong deadline");
    out
}

fn payload_of(frame: &[u8]) -> Vec<u8> {
    parse_frames(frame).remove(0).payload
}

#[test]
fn keepalive_ping_at_30s_closed_1006_at_40s_without_answer() {
    let t0 = Instant::now();
    let mut s = Connection::server(keepalive(), t0);
    keepalive_ping(&mut s, t0);

    s.handle_timeout(t0 + secs(40) - Duration::from_millis(1));
    assert_eq!(s.poll_event(), None, "still open just before 40 s");
    s.handle_timeout(t0 + secs(40));
    let closed = only_closed(poll_all(&mut s));
    assert_eq!(closed.code, CloseCode::ABNORMAL);
    assert_eq!(closed.cause, Some(CloseCause::KeepaliveTimeout(secs(10))));
    assert_eq!(closed.initiator, Initiator::Local);
    assert!(!closed.is_clean());
    assert_done(&mut s, t0 + secs(40));
}

#[test]
fn keepalive_pong_at_35s_keeps_the_connection_open_and_measures_rtt() {
    let t0 = Instant::now();
    let mut s = Connection::server(keepalive(), t0);
    assert_eq!(s.rtt(), None);
    let payload = payload_of(&keepalive_ping(&mut s, t0));

    let ev = feed(&mut s, &to(S, FIN | PONG, &payload), t0 + secs(35));
    assert_eq!(ev, vec![Event::Pong(Bytes::from(payload.clone()))]);
    assert_eq!(s.rtt(), Some(secs(5)));

    s.handle_timeout(t0 + secs(40));
    assert_eq!(s.poll_event(), None);
    assert!(!s.is_closed());
    assert_eq!(s.poll_timeout(), Some(t0 + secs(60)), "next ping");
    assert_eq!(drain(&mut s), Vec::<u8>::new());

    s.handle_timeout(t0 + secs(60));
    let frames = parse_frames(&drain(&mut s));
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].b0, FIN | PING);
    assert_ne!(frames[0].payload, payload, "each ping is distinguishable");
    s.send(Message::text("still open")).unwrap();
}

#[test]
fn keepalive_any_data_counts_as_a_sign_of_life() {
    let t0 = Instant::now();
    let mut s = Connection::server(keepalive(), t0);
    keepalive_ping(&mut s, t0);
    let ev = feed(&mut s, &to(S, FIN | TEXT, b"busy"), t0 + secs(35));
    assert_eq!(ev, vec![Event::Text("busy".into())]);
    s.handle_timeout(t0 + secs(40));
    assert_eq!(s.poll_event(), None);
    assert!(!s.is_closed());
    assert_eq!(s.rtt(), None, "no pong, no RTT");
}

#[test]
fn keepalive_pong_with_other_payload_measures_no_rtt() {
    let t0 = Instant::now();
    let mut s = Connection::server(keepalive(), t0);
    keepalive_ping(&mut s, t0);
    feed(&mut s, &to(S, FIN | PONG, b"unsolicited"), t0 + secs(35));
    assert_eq!(s.rtt(), None);
}

#[test]
fn keepalive_between_a_client_and_a_server() {
    let t0 = Instant::now();
    let mut client = Connection::client(keepalive(), SEED, t0);
    let mut server = server(t0);
    let ping = keepalive_ping(&mut client, t0);
    let ev = feed(&mut server, &ping, t0 + secs(32));
    assert!(matches!(ev[..], [Event::Ping(_)]), "{}", summary(&ev));
    let pong = drain(&mut server);
    let ev = feed(&mut client, &pong, t0 + secs(35));
    assert!(matches!(ev[..], [Event::Pong(_)]), "{}", summary(&ev));
    assert_eq!(client.rtt(), Some(secs(5)));
    client.handle_timeout(t0 + secs(40));
    assert_eq!(client.poll_event(), None);
    assert!(!client.is_closed());
}

#[test]
fn no_keepalive_by_default() {
    let t0 = Instant::now();
    let mut s = server(t0);
    assert_eq!(s.poll_timeout(), None);
    s.handle_timeout(t0 + secs(3600));
    assert_eq!(drain(&mut s), Vec::<u8>::new());
    assert_eq!(s.poll_event(), None);
}

// ---- pings, pongs and data around the close ------------------------------

#[test]
fn pings_received_after_we_sent_close_are_not_answered() {
    let t0 = Instant::now();
    let mut s = server(t0);
    s.close(Some(CloseFrame::new(CloseCode::NORMAL, "")), t0)
        .unwrap();
    drain(&mut s);
    let ev = feed(&mut s, &to(S, FIN | PING, b"are you there"), t0);
    assert!(
        ev.iter().all(|e| matches!(e, Event::Ping(_))),
        "{}",
        summary(&ev)
    );
    assert_eq!(drain(&mut s), Vec::<u8>::new(), "no pong after our close");
    let closed = only_closed(feed(
        &mut s,
        &to(S, FIN | CLOSE, &close_payload(1000, b"")),
        t0,
    ));
    assert!(closed.is_clean());
}

#[test]
fn data_after_the_peers_close_is_not_delivered() {
    let t0 = Instant::now();
    let mut s = server(t0);
    let input = [
        to(S, FIN | TEXT, b"before"),
        to(S, FIN | CLOSE, &close_payload(1000, b"")),
        to(S, FIN | TEXT, b"after"),
        to(S, FIN | PING, b"after"),
    ]
    .concat();
    let ev = feed(&mut s, &input, t0);
    assert_eq!(ev.len(), 2, "{}", summary(&ev));
    assert_eq!(ev[0], Event::Text("before".into()));
    assert!(the_closed(&ev).is_clean());
    // Only the close reply: no pong for the ping after the close.
    assert_eq!(drain(&mut s), hex("88 02 03 e8"));
    assert_done(&mut s, t0);
}

#[test]
fn data_after_a_timeout_is_not_delivered() {
    let t0 = Instant::now();
    let mut s = Connection::server(keepalive(), t0);
    s.handle_timeout(t0 + secs(30));
    s.handle_timeout(t0 + secs(40));
    only_closed(poll_all(&mut s));
    assert_eq!(
        feed(&mut s, &to(S, FIN | TEXT, b"late"), t0 + secs(41)),
        vec![]
    );
}

#[test]
fn auto_pong_is_queued_when_the_app_only_polls_events() {
    let t0 = Instant::now();
    let mut s = server(t0);
    let input = [to(S, FIN | PING, b"Hello"), to(S, FIN | PING, b"")].concat();
    let ev = feed(&mut s, &input, t0);
    assert_eq!(
        ev,
        vec![
            Event::Ping(Bytes::from_static(b"Hello")),
            Event::Ping(Bytes::new())
        ]
    );
    assert_eq!(drain(&mut s), hex("8a 05 48 65 6c 6c 6f 8a 00"));
}

#[test]
fn auto_pong_between_fragments_of_an_outgoing_message() {
    // A control frame may go between the fragments we send (§5.4).
    let t0 = Instant::now();
    let mut s = server(t0);
    let frag = |data: &'static [u8], first, fin| Fragment {
        kind: DataKind::Binary,
        data: Bytes::from_static(data),
        first,
        fin,
    };
    s.send_fragment(frag(b"ab", true, false)).unwrap();
    feed(&mut s, &to(S, FIN | PING, b"p"), t0);
    s.send_fragment(frag(b"cd", false, true)).unwrap();
    assert_eq!(drain(&mut s), hex("02 02 61 62 8a 01 70 80 02 63 64"));
}

// ---- idle timeout -----------------------------------------------------------

fn idle(t: u64) -> Config {
    timers_only().idle_timeout(Some(secs(t))).build().unwrap()
}

#[test]
fn idle_connection_is_closed_with_1001_after_the_timeout() {
    let t0 = Instant::now();
    let mut s = Connection::server(idle(60), t0);
    assert_eq!(s.poll_timeout(), Some(t0 + secs(60)));
    // A message at 50 s moves the deadline to 110 s.
    assert_eq!(
        feed(&mut s, &to(S, FIN | TEXT, b"hi"), t0 + secs(50)).len(),
        1
    );
    s.handle_timeout(t0 + secs(60));
    assert!(!s.is_closing());
    assert_eq!(s.poll_timeout(), Some(t0 + secs(110)));
    // Pings do not count as activity.
    let ev = feed(&mut s, &to(S, FIN | PING, b""), t0 + secs(100));
    assert!(matches!(ev[..], [Event::Ping(_)]));
    drain(&mut s);
    s.handle_timeout(t0 + secs(109));
    assert!(!s.is_closing());
    s.handle_timeout(t0 + secs(110));
    assert!(s.is_closing(), "idle for 60 s: close started");
    let out = parse_frames(&drain(&mut s));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].payload[..2], 1001u16.to_be_bytes());
    assert!(String::from_utf8_lossy(&out[0].payload[2..]).contains("idle"));
    // The close timer now runs; the peer's reply completes a clean close.
    assert_eq!(s.poll_timeout(), Some(t0 + secs(115)));
    let closed = only_closed(feed(
        &mut s,
        &to(S, FIN | CLOSE, &close_payload(1001, b"")),
        t0 + secs(111),
    ));
    assert_eq!(closed.initiator, Initiator::Local);
    assert_eq!(closed.code, CloseCode::GOING_AWAY);
}

#[test]
fn sending_postpones_the_idle_close() {
    let t0 = Instant::now();
    let mut s = Connection::server(idle(60), t0);
    s.send(Message::text("update")).unwrap();
    drain(&mut s);
    s.handle_timeout(t0 + secs(60));
    assert!(!s.is_closing(), "a message was sent in the period");
    assert_eq!(s.poll_timeout(), Some(t0 + secs(120)));
    s.handle_timeout(t0 + secs(120));
    assert!(s.is_closing());
}

#[test]
fn idle_timeout_off_by_default() {
    let t0 = Instant::now();
    let mut s = server(t0);
    assert_eq!(s.poll_timeout(), None);
    s.handle_timeout(t0 + secs(100_000));
    assert!(!s.is_closing());
}

/// Issue 14 (fuzz `connection_ops`): bytes that will fail the connection are
/// only judged when parsed (`poll_event`); until then they are as good as
/// still in the socket, and keepalive pings may go out. Once the failure is
/// decided, the close frame is the last frame: no keepalive ping after it,
/// and an application ping with the keepalive's payload is an ordinary ping.
#[test]
fn keepalive_pings_stop_once_a_buffered_protocol_error_is_parsed() {
    let t0 = Instant::now();
    let cfg = timers_only()
        .ping_interval(Some(secs(30)))
        .pong_timeout(secs(3600))
        .build()
        .unwrap();
    let mut s = Connection::server(cfg, t0);
    // RSV1|RSV3 without an extension: a 1002 failure once parsed.
    s.handle_data(&to(S, FIN | 0x50 | BINARY, b"bad"), t0);
    s.handle_timeout(t0 + secs(30));
    s.handle_timeout(t0 + secs(60));
    s.send(Message::Ping(Bytes::copy_from_slice(&1u64.to_be_bytes())))
        .unwrap();
    let before: Vec<_> = parse_frames(&drain(&mut s))
        .into_iter()
        .map(|f| (f.b0, f.payload))
        .collect();
    let ping = |n: u64| (FIN | PING, n.to_be_bytes().to_vec());
    assert_eq!(before, vec![ping(1), ping(2), ping(1)]);

    let closed = only_closed(poll_all(&mut s));
    assert_eq!(closed.code, CloseCode::PROTOCOL_ERROR);
    for t in [90, 120, 3600] {
        s.handle_timeout(t0 + secs(t));
    }
    assert_eq!(s.send(Message::Ping(Bytes::new())), Err(SendError::Closed));
    let after = parse_frames(&drain(&mut s));
    assert_eq!(after.len(), 1, "only the close frame: {after:02x?}");
    assert_eq!(after[0].b0, FIN | CLOSE);
    assert_eq!(after[0].payload[..2], 1002u16.to_be_bytes());
}

#[test]
fn buffers_go_back_only_after_a_quiet_delay() {
    use wsx_proto::config::DEFAULT_BUFFER_RELEASE_DELAY as D;
    let t0 = Instant::now();
    let mut c = Connection::server(Config::default(), t0);
    let ms = Duration::from_millis;
    assert_eq!(c.poll_timeout(), None, "no buffers, no timer");
    let m = to(S, 0x81, b"hi");
    // Read the way the tokio layer reads: into the connection's buffer.
    let feed = |c: &mut Connection, bytes: &[u8], now: Instant| {
        c.recv_buffer().extend_from_slice(bytes);
        c.handle_received(now);
        poll_all(c)
    };
    assert_eq!(feed(&mut c, &m, t0).len(), 1);
    assert!(c.has_recv_buffer());
    assert_eq!(c.poll_timeout(), Some(t0 + D));

    // Busy: a message just before the check keeps the buffers (no
    // reallocation per message); the check moves on.
    assert_eq!(feed(&mut c, &m, t0 + D - ms(100)).len(), 1);
    c.handle_timeout(t0 + D);
    assert!(c.has_recv_buffer(), "released while busy");
    assert_eq!(c.poll_timeout(), Some(t0 + 2 * D - ms(100)));

    // Quiet for the delay: released, and no timer left.
    c.handle_timeout(t0 + 2 * D - ms(100));
    assert!(!c.has_recv_buffer(), "kept while quiet");
    assert_eq!(c.poll_timeout(), None);

    // A connection that only sends is armed by its other timers.
    // A connection that only sends: armed from the last time it was given.
    let mut k = Connection::server(Config::default(), t0);
    k.send(Message::text("push")).unwrap();
    drain(&mut k);
    assert_eq!(k.poll_timeout(), Some(t0 + D));
    k.send(Message::text("more")).unwrap();
    drain(&mut k);
    // It sent since the last check: kept, checked again a delay later.
    k.handle_timeout(t0 + D);
    assert_eq!(k.poll_timeout(), Some(t0 + 2 * D));
    k.handle_timeout(t0 + 2 * D);
    assert_eq!(k.poll_timeout(), None, "quiet: released");

    // Off: no release timer; the caller shrinks when it wants.
    let mut off = server(t0);
    assert_eq!(feed(&mut off, &m, t0).len(), 1);
    off.send(Message::text("hi")).unwrap();
    drain(&mut off);
    assert_eq!(off.poll_timeout(), None);
}
