//! Bad input fails the connection (RFC 6455 §7.1.7) with the right close
//! code, both in the `Closed` event and in the close frame sent to the peer;
//! afterwards the connection is inert.

mod common;

use bytes::Bytes;
use common::*;
use std::time::{Duration, Instant};
use wsx_proto::{
    CloseCause, CloseCode, CloseFrame, Closed, Config, DataKind, Event, Fragment, Initiator,
    Message, ProtocolError, Role, SendError,
};

/// One row: what `role` receives and the close code it must fail with.
struct Case {
    role: Role,
    config: Config,
    input: Vec<u8>,
    code: u16,
    /// Events legitimately delivered before the failure.
    before: Vec<Event>,
}

impl Case {
    fn new(role: Role, input: Vec<u8>, code: u16) -> Self {
        Case {
            role,
            config: Config::default(),
            input,
            code,
            before: Vec::new(),
        }
    }

    fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    fn before(mut self, events: Vec<Event>) -> Self {
        self.before = events;
        self
    }

    /// Feeds the input whole, then byte by byte; both must fail the same way.
    fn check(self) -> Closed {
        let t0 = Instant::now();
        let whole = self.run(&[&self.input], t0);
        let bytes: Vec<&[u8]> = self.input.chunks(1).collect();
        let bytewise = self.run(&bytes, t0);
        assert_eq!(whole, bytewise, "whole vs byte by byte");
        whole.0
    }

    fn run(&self, chunks: &[&[u8]], t0: Instant) -> (Closed, Vec<u8>) {
        let mut c = conn(self.role, self.config.clone(), t0);
        let mut events = Vec::new();
        for chunk in chunks {
            events.extend(feed(&mut c, chunk, t0));
        }
        let closed = the_closed(&events).clone();
        let before = &events[..events.len() - 1];
        assert!(
            before == self.before,
            "events before Closed:\n   got {}\n  want {}",
            summary(before),
            summary(&self.before)
        );

        // The Closed event.
        assert_eq!(closed.code, CloseCode(self.code), "Closed.code: {closed:?}");
        assert_eq!(closed.initiator, Initiator::Local);
        assert!(!closed.is_clean());
        match &closed.cause {
            Some(CloseCause::Protocol(e)) => assert_eq!(e.close_code(), CloseCode(self.code)),
            other => panic!("cause {other:?}, want a protocol error"),
        }
        let sent = closed.sent.clone().expect("a close frame was sent");
        assert_eq!(sent.code, CloseCode(self.code));

        // The close frame on the wire: exactly one, after the pongs for the
        // pings delivered before the failure; masked iff we are the client.
        let out = drain(&mut c);
        let frames = parse_frames(&out);
        let (f, pongs) = frames.split_last().expect("a close frame");
        let pings = before
            .iter()
            .filter(|e| matches!(e, Event::Ping(_)))
            .count();
        assert_eq!(
            pongs.len(),
            pings,
            "want only pongs before the close: {frames:02x?}"
        );
        assert!(pongs.iter().all(|p| p.b0 == FIN | PONG), "{frames:02x?}");
        assert_eq!(f.b0, FIN | CLOSE);
        assert_eq!(f.mask.is_some(), self.role == Role::Client, "mask bit");
        assert!((2..=125).contains(&f.payload.len()), "{f:02x?}");
        assert_eq!(
            f.payload[..2],
            self.code.to_be_bytes(),
            "close code on the wire"
        );
        let reason = std::str::from_utf8(&f.payload[2..]).expect("UTF-8 reason");
        assert_eq!(reason, sent.reason);
        assert_eq!(
            CloseFrame::parse(&f.payload),
            Ok(Some(sent.clone())),
            "the peer can parse it"
        );

        // Inert afterwards.
        assert_inert(&mut c, t0);
        (closed, out)
    }
}

/// After `Closed`: no events, no output, no timers, nothing may be sent.
fn assert_inert(c: &mut wsx_proto::Connection, t0: Instant) {
    assert!(c.is_closed() && c.is_closing());
    assert_eq!(c.poll_event(), None);
    assert_eq!(c.poll_event(), None);
    c.handle_data(&to(c.role(), FIN | TEXT, b"more"), t0);
    c.handle_data(&to(c.role(), FIN | PING, b"ping"), t0);
    c.handle_data(&to(c.role(), FIN | CLOSE, &close_payload(1000, b"")), t0);
    assert_eq!(
        c.poll_event(),
        None,
        "data after Closed must not be delivered"
    );
    c.handle_eof();
    c.handle_timeout(t0 + Duration::from_secs(3600));
    assert_eq!(c.poll_event(), None, "Closed is reported exactly once");
    assert_eq!(c.poll_timeout(), None);
    assert_eq!(c.send(Message::text("x")), Err(SendError::Closed));
    assert_eq!(c.send(Message::binary(vec![1])), Err(SendError::Closed));
    assert_eq!(
        c.send(Message::Ping(Bytes::from_static(b"p"))),
        Err(SendError::Closed)
    );
    assert_eq!(
        c.send_fragment(Fragment {
            kind: DataKind::Text,
            data: Bytes::from_static(b"x"),
            first: true,
            fin: false,
        }),
        Err(SendError::Closed)
    );
    assert_eq!(c.close(None, t0), Err(SendError::Closed));
    assert_eq!(drain(c), Vec::<u8>::new(), "nothing sent after the failure");
}

const S: Role = Role::Server;
const C: Role = Role::Client;

fn limits(max_frame: usize, max_message: usize) -> Config {
    Config::builder()
        .max_frame_size(max_frame)
        .max_message_size(max_message)
        .build()
        .unwrap()
}

fn fragments_on() -> Config {
    Config::builder().deliver_fragments(true).build().unwrap()
}

/// Only the first `n` bytes of `frame`.
fn prefix(mut frame: Vec<u8>, n: usize) -> Vec<u8> {
    frame.truncate(n);
    frame
}

/// κόσμε (the Autobahn 6.x example text).
const KOSME: &[u8] = &[
    0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5,
];

/// One `#[test]` per row.
macro_rules! table {
    ($($name:ident => $case:expr;)*) => {
        $(
            #[test]
            fn $name() {
                $case.check();
            }
        )*
    };
}

table! {
    // §5.2: RSV1-3 must be 0 with no extension negotiated.
    rsv1_set => Case::new(S, to(S, 0xc1, b"Hello"), 1002);
    rsv2_set => Case::new(S, to(S, 0xa1, b"Hello"), 1002);
    rsv3_set => Case::new(S, to(S, 0x91, b"Hello"), 1002);
    rsv1_on_a_ping => Case::new(S, to(S, 0xc9, b""), 1002);
    rsv1_set_to_client => Case::new(C, to(C, 0xc1, b"Hello"), 1002);

    // §5.5: control frames are not fragmented and carry at most 125 bytes.
    fragmented_ping => Case::new(S, to(S, PING, b"Hello"), 1002);
    fragmented_pong => Case::new(S, to(S, PONG, b""), 1002);
    fragmented_close => Case::new(S, to(S, CLOSE, &close_payload(1000, b"")), 1002);
    ping_of_126_bytes => Case::new(S, to(S, FIN | PING, &[0; 126]), 1002);
    ping_of_126_bytes_fails_on_its_header => Case::new(
        S, prefix(to(S, FIN | PING, &[0; 126]), 8), 1002,
    );
    close_of_126_bytes => Case::new(
        S, to(S, FIN | CLOSE, &close_payload(1000, &[b'a'; 124])), 1002,
    );
    ping_of_126_bytes_to_client => Case::new(C, to(C, FIN | PING, &[0; 126]), 1002);

    // §5.2: the most significant bit of a 64-bit length must be 0.
    length_with_top_bit_set => Case::new(
        S, [&hex("82 ff 80 00 00 00 00 00 00 00")[..], &KEY].concat(), 1002,
    );
    length_with_top_bit_set_to_client => Case::new(
        C, hex("82 7f 80 00 00 00 00 00 00 05 48 65 6c 6c 6f"), 1002,
    );

    // §5.1: clients mask, servers do not.
    unmasked_frame_to_server => Case::new(S, hex("81 05 48 65 6c 6c 6f"), 1002);
    unmasked_ping_to_server => Case::new(S, hex("89 00"), 1002);
    masked_frame_to_client => Case::new(C, hex("81 85 37 fa 21 3d 7f 9f 4d 51 58"), 1002);
    masked_close_to_client => Case::new(
        C, encode_frame(FIN | CLOSE, Some(KEY), &[0x03, 0xe8]), 1002,
    );
    // Frames after the bad one are never looked at.
    unmasked_frame_then_valid_frames => Case::new(
        S,
        [hex("81 05 48 65 6c 6c 6f"), to(S, FIN | TEXT, b"ok"), to(S, FIN | PING, b"")].concat(),
        1002,
    );

    // §5.4: fragmentation sequence.
    continuation_without_start => Case::new(S, to(S, FIN | CONT, b"lo"), 1002);
    unfinished_continuation_without_start => Case::new(S, to(S, CONT, b"lo"), 1002);
    continuation_after_a_finished_message => Case::new(
        S, [to(S, FIN | TEXT, b"Hello"), to(S, FIN | CONT, b"!")].concat(), 1002,
    )
    .before(vec![Event::Text("Hello".into())]);
    text_frame_inside_fragmented_message => Case::new(
        S, [to(S, TEXT, b"Hel"), to(S, FIN | TEXT, b"lo")].concat(), 1002,
    );
    binary_frame_inside_fragmented_text => Case::new(
        S, [to(S, TEXT, b"Hel"), to(S, FIN | BINARY, b"lo")].concat(), 1002,
    );
    text_frame_inside_fragmented_message_with_fragments_on => Case::new(
        S, [to(S, TEXT, b"Hel"), to(S, FIN | TEXT, b"lo")].concat(), 1002,
    )
    .config(fragments_on())
    .before(vec![Event::Fragment(Fragment {
        kind: DataKind::Text,
        data: Bytes::from_static(b"Hel"),
        first: true,
        fin: false,
    })]);

    // §8.1: text must be UTF-8.
    invalid_utf8_text => Case::new(S, to(S, FIN | TEXT, &[b'a', 0xff, b'b']), 1007);
    invalid_utf8_text_to_client => Case::new(C, to(C, FIN | TEXT, &[b'a', 0xff, b'b']), 1007);
    overlong_encoding => Case::new(S, to(S, FIN | TEXT, &[0xc0, 0xaf]), 1007);
    utf16_surrogate => Case::new(S, to(S, FIN | TEXT, &[0xed, 0xa0, 0x80]), 1007);
    code_point_above_u10ffff => Case::new(S, to(S, FIN | TEXT, &[0xf4, 0x90, 0x80, 0x80]), 1007);
    text_ends_inside_a_code_point => Case::new(S, to(S, FIN | TEXT, &[b'a', 0xe2, 0x82]), 1007);
    fragmented_text_ends_inside_a_code_point => Case::new(
        S, [to(S, TEXT, b"a"), to(S, FIN | CONT, &[0xe2, 0x82])].concat(), 1007,
    );
    // Fail fast: the input stops right after the fragment with the bad byte;
    // the final fragment never arrives, yet the connection has already failed.
    invalid_utf8_split_across_fragments_fails_at_the_bad_fragment => Case::new(
        S,
        [to(S, TEXT, &[KOSME, &[0xf4][..]].concat()), to(S, CONT, &[0x90, 0x80, 0x80])].concat(),
        1007,
    );
    invalid_utf8_split_across_fragments_to_client => Case::new(
        C,
        [to(C, TEXT, &[KOSME, &[0xf4][..]].concat()), to(C, CONT, &[0x90, 0x80, 0x80])].concat(),
        1007,
    );
    // Fail fast within a frame: only 3 of its 100 payload bytes have arrived.
    invalid_utf8_fails_before_the_frame_is_complete => Case::new(
        S,
        prefix(to(S, FIN | TEXT, &[&[b'a', 0xff, b'b'][..], &[b'x'; 97]].concat()), 6 + 3),
        1007,
    );
    // With fragments delivered, the good fragment is delivered, the bad one is not.
    invalid_utf8_in_second_fragment_with_fragments_on => Case::new(
        S, [to(S, TEXT, b"Hel"), to(S, FIN | CONT, &[b'l', 0xff])].concat(), 1007,
    )
    .config(fragments_on())
    .before(vec![Event::Fragment(Fragment {
        kind: DataKind::Text,
        data: Bytes::from_static(b"Hel"),
        first: true,
        fin: false,
    })]);

    // §5.5.1: close frame payloads.
    close_with_one_byte_payload => Case::new(S, to(S, FIN | CLOSE, &[0x03]), 1002);
    close_with_one_byte_payload_to_client => Case::new(C, to(C, FIN | CLOSE, &[0x03]), 1002);
    close_reason_not_utf8 => Case::new(
        S, to(S, FIN | CLOSE, &close_payload(1000, &[b'o', 0xff, 0xfe])), 1007,
    );
    close_reason_ends_inside_a_code_point => Case::new(
        S, to(S, FIN | CLOSE, &close_payload(1000, &[0xe2, 0x82])), 1007,
    );

    // Limits: 1009, decided from the header before the payload is buffered.
    frame_over_max_frame_size_fails_on_its_header => Case::new(
        S, prefix(to(S, FIN | BINARY, &pattern(1001)), 2 + 2 + 4), 1009,
    )
    .config(limits(1000, 1 << 20));
    frame_at_max_frame_size_plus_one_to_client => Case::new(
        C, prefix(to(C, FIN | BINARY, &pattern(1001)), 2 + 2), 1009,
    )
    .config(limits(1000, 1 << 20));
    huge_64_bit_length_fails_without_allocating => Case::new(
        S, [&hex("82 ff 00 00 01 00 00 00 00 00")[..], &KEY].concat(), 1009,
    );
    text_frame_over_max_frame_size => Case::new(
        S, prefix(to(S, TEXT, &[b'a'; 2000]), 2 + 2 + 4 + 10), 1009,
    )
    .config(limits(1000, 1 << 20));
    single_frame_over_max_message_size => Case::new(
        S, prefix(to(S, FIN | BINARY, &pattern(1001)), 2 + 2 + 4), 1009,
    )
    .config(limits(1 << 20, 1000));
    // 600 + 600 > 1000: fails on the second fragment's header.
    message_over_max_message_size_across_fragments => Case::new(
        S,
        [to(S, BINARY, &pattern(600)), prefix(to(S, FIN | CONT, &pattern(600)), 8)].concat(),
        1009,
    )
    .config(limits(1000, 1000));
    message_over_max_message_size_across_many_fragments => Case::new(
        S,
        [
            to(S, TEXT, &[b'a'; 400]),
            to(S, FIN | PING, b"between"),
            to(S, CONT, &[b'b'; 400]),
            prefix(to(S, FIN | CONT, &[b'c'; 201]), 8),
        ]
        .concat(),
        1009,
    )
    .config(limits(1000, 1000))
    .before(vec![Event::Ping(Bytes::from_static(b"between"))]);
    message_over_max_message_size_with_fragments_on => Case::new(
        S,
        [to(S, BINARY, &pattern(600)), prefix(to(S, FIN | CONT, &pattern(600)), 8)].concat(),
        1009,
    )
    .config(Config::builder().max_message_size(1000).deliver_fragments(true).build().unwrap())
    .before(vec![Event::Fragment(Fragment {
        kind: DataKind::Binary,
        data: Bytes::from(pattern(600)),
        first: true,
        fin: false,
    })]);
}

#[test]
fn reserved_opcodes() {
    for role in [S, C] {
        for op in (0x3..=0x7).chain(0xb..=0xf) {
            for fin in [FIN, 0] {
                let closed = Case::new(role, to(role, fin | op, b"x"), 1002).check();
                assert!(
                    matches!(
                        closed.cause,
                        Some(CloseCause::Protocol(ProtocolError::ReservedOpcode(o))) if o == op
                    ),
                    "{role:?} opcode {op:#x}: {closed:?}"
                );
            }
        }
    }
}

#[test]
fn invalid_close_codes() {
    for code in [
        0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
    ] {
        for role in [S, C] {
            let closed =
                Case::new(role, to(role, FIN | CLOSE, &close_payload(code, b"")), 1002).check();
            assert!(
                matches!(
                    closed.cause,
                    Some(CloseCause::Protocol(ProtocolError::InvalidCloseCode(c))) if c == CloseCode(code)
                ),
                "{role:?} code {code}: {closed:?}"
            );
        }
    }
}

#[test]
fn valid_close_codes_are_accepted() {
    let t0 = Instant::now();
    for code in [
        1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 3999, 4000, 4999,
    ] {
        let mut c = conn(S, Config::default(), t0);
        let ev = feed(&mut c, &to(S, FIN | CLOSE, &close_payload(code, b"r")), t0);
        let closed = the_closed(&ev);
        assert_eq!(closed.code, CloseCode(code));
        assert!(closed.is_clean(), "{code}: {closed:?}");
        assert_eq!(
            drain(&mut c),
            encode_frame(FIN | CLOSE, None, &code.to_be_bytes())
        );
    }
}

#[test]
fn limits_are_inclusive() {
    // A frame and a message of exactly the limit are fine. Frames are fed
    // one handle_data call each.
    let t0 = Instant::now();
    let mut c = conn(S, limits(1000, 1000), t0);
    let ev = feed(&mut c, &to(S, FIN | BINARY, &pattern(1000)), t0);
    assert_eq!(ev, vec![Event::Binary(Bytes::from(pattern(1000)))]);
    assert!(feed(&mut c, &to(S, BINARY, &pattern(600)), t0).is_empty());
    let ev = feed(&mut c, &to(S, FIN | CONT, &pattern(400)), t0);
    let mut whole = pattern(600);
    whole.extend(pattern(400));
    assert_eq!(ev, vec![Event::Binary(Bytes::from(whole))]);
    assert!(drain(&mut c).is_empty());
}

#[test]
fn message_limit_counts_only_the_current_message() {
    let t0 = Instant::now();
    let mut c = conn(S, limits(1000, 1000), t0);
    for _ in 0..5 {
        let ev = feed(&mut c, &to(S, FIN | BINARY, &pattern(900)), t0);
        assert_eq!(ev, vec![Event::Binary(Bytes::from(pattern(900)))]);
    }
}

#[test]
fn valid_utf8_split_inside_a_code_point_across_fragments_is_fine() {
    let t0 = Instant::now();
    let text = "κόσμε €𝄞";
    let b = text.as_bytes();
    for cut in 0..=b.len() {
        let mut c = conn(S, Config::default(), t0);
        assert!(feed(&mut c, &to(S, TEXT, &b[..cut]), t0).is_empty());
        let ev = feed(&mut c, &to(S, FIN | CONT, &b[cut..]), t0);
        assert_eq!(ev, vec![Event::Text(text.into())], "cut at {cut}");
    }
}

#[test]
fn error_after_local_close_sends_no_second_close_frame() {
    let t0 = Instant::now();
    let mut c = conn(S, Config::default(), t0);
    let ours = CloseFrame::new(CloseCode::GOING_AWAY, "bye");
    c.close(Some(ours.clone()), t0).unwrap();
    assert_eq!(
        parse_frames(&drain(&mut c)),
        vec![WireFrame {
            b0: FIN | CLOSE,
            mask: None,
            payload: close_payload(1001, b"bye"),
        }]
    );
    let ev = feed(&mut c, &hex("81 05 48 65 6c 6c 6f"), t0); // unmasked
    let closed = the_closed(&ev);
    assert_eq!(ev.len(), 1);
    assert_eq!(closed.code, CloseCode::PROTOCOL_ERROR);
    assert_eq!(closed.sent, Some(ours));
    assert!(matches!(
        closed.cause,
        Some(CloseCause::Protocol(ProtocolError::UnmaskedClientFrame))
    ));
    assert_inert(&mut c, t0);
}

#[test]
fn events_before_the_bad_frame_are_delivered_first() {
    let t0 = Instant::now();
    let mut c = conn(S, Config::default(), t0);
    let input = [
        to(S, FIN | TEXT, b"one"),
        to(S, FIN | PING, b"p"),
        to(S, FIN | BINARY, b"two"),
        to(S, 0xc1, b"bad"),
        to(S, FIN | TEXT, b"never"),
    ]
    .concat();
    let ev = feed(&mut c, &input, t0);
    assert_eq!(
        ev[..3],
        [
            Event::Text("one".into()),
            Event::Ping(Bytes::from_static(b"p")),
            Event::Binary(Bytes::from_static(b"two")),
        ]
    );
    assert_eq!(the_closed(&ev).code, CloseCode::PROTOCOL_ERROR);
    assert_eq!(ev.len(), 4);
    // The pong, then the close frame.
    let frames = parse_frames(&drain(&mut c));
    let ops: Vec<u8> = frames.iter().map(|f| f.b0).collect();
    assert_eq!(ops, [FIN | PONG, FIN | CLOSE]);
}

fn max_fragments(n: usize, deliver: bool) -> Config {
    Config::builder()
        .max_fragments(n)
        .deliver_fragments(deliver)
        .build()
        .unwrap()
}

#[test]
fn fragment_cap_is_inclusive_and_fails_with_1009() {
    for deliver in [false, true] {
        let t0 = Instant::now();
        let mut c = conn(S, max_fragments(4, deliver), t0);
        // Exactly 4 frames: one message.
        let mut wire = to(S, TEXT, b"a");
        wire.extend(to(S, CONT, b""));
        wire.extend(to(S, CONT, b"b"));
        wire.extend(to(S, FIN | CONT, b"c"));
        let ev = feed(&mut c, &wire, t0);
        assert!(
            !ev.iter().any(|e| matches!(e, Event::Closed(_))),
            "{}",
            summary(&ev)
        );
        // The next message: a 5th frame is one too many.
        let mut wire = to(S, BINARY, b"");
        for _ in 0..4 {
            wire.extend(to(S, CONT, b""));
        }
        let ev = feed(&mut c, &wire, t0);
        let closed = the_closed(&ev).clone();
        assert_eq!(closed.code, CloseCode::MESSAGE_TOO_BIG);
        assert!(closed.reason.contains("max_fragments"), "{}", closed.reason);
        let out = parse_frames(&drain(&mut c));
        assert_eq!(out.last().unwrap().payload[..2], 1009u16.to_be_bytes());
    }
}

#[test]
fn tiny_fragment_floods_are_cut_off_by_the_default_rule() {
    // 100,000 one-byte fragments: past the first 1,024 frames they must
    // average 16 bytes, so the flood ends at frame 1,094 with 1009.
    let t0 = Instant::now();
    let mut c = conn(S, Config::default(), t0);
    let mut wire = to(S, TEXT, b"x");
    let one = to(S, CONT, b"x");
    for _ in 1..100_000 {
        wire.extend_from_slice(&one);
    }
    let ev = feed(&mut c, &wire, t0);
    let closed = the_closed(&ev);
    assert_eq!(closed.code, CloseCode::MESSAGE_TOO_BIG, "{}", closed.reason);
    assert!(
        closed.reason.contains("1094 frames") && closed.reason.contains("tiny"),
        "names the flood: {}",
        closed.reason
    );
    assert_eq!(ev.len(), 1, "no message delivered: {}", summary(&ev));
    // Empty fragments: at frame 1,025.
    let mut c = conn(S, Config::default(), t0);
    let mut wire = to(S, BINARY, b"");
    let empty = to(S, CONT, b"");
    for _ in 0..2000 {
        wire.extend_from_slice(&empty);
    }
    let ev = feed(&mut c, &wire, t0);
    assert!(
        the_closed(&ev).reason.contains("1025 frames"),
        "{}",
        the_closed(&ev).reason
    );
}

#[test]
fn fine_but_legitimate_fragmentation_is_accepted() {
    // Autobahn 9.3.1: 4 MiB of text in 64-byte fragments (65,536 of them,
    // and an empty final one), and per-byte fragmentation of a short text.
    let t0 = Instant::now();
    let mut c = conn(S, Config::default(), t0);
    let chunk = [b'a'; 64];
    let mut wire = to(S, TEXT, &chunk);
    let cont = to(S, CONT, &chunk);
    for _ in 1..65_536 {
        wire.extend_from_slice(&cont);
    }
    wire.extend(to(S, FIN | CONT, b""));
    let ev = feed(&mut c, &wire, t0);
    assert!(
        matches!(&ev[..], [Event::Text(t)] if t.len() == 4 << 20),
        "{}",
        summary(&ev)
    );
    let mut wire = Vec::new();
    for (i, b) in b"per-byte fragments".iter().enumerate() {
        let op = if i == 0 { TEXT } else { CONT };
        let fin = if i == 17 { FIN } else { 0 };
        wire.extend(to(S, op | fin, &[*b]));
    }
    let ev = feed(&mut c, &wire, t0);
    assert!(
        matches!(&ev[..], [Event::Text(t)] if t.as_str() == "per-byte fragments"),
        "{}",
        summary(&ev)
    );
}
