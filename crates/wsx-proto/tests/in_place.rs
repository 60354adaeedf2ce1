//! Messages read in place (`poll_in_place`, `held`, `echo_held`) against
//! the owned path (`poll_event`, `send`): the same messages, the same
//! bytes written, and the refusals.

mod common;

use common::{drain as wire, encode_frame};
use proptest::prelude::*;
use std::time::Instant;
use wsx_proto::{Config, Connection, DataKind, Event, Held, Message, Polled, SendError};

/// A masked client frame, appended to `out`.
fn frame(out: &mut Vec<u8>, fin: bool, opcode: u8, payload: &[u8], key: [u8; 4]) {
    let b0 = if fin { 0x80 } else { 0 } | opcode;
    out.extend(encode_frame(b0, Some(key), payload));
}

/// What a client sends: one-frame messages, fragmented ones, pings,
/// invalid UTF-8 (which ends the connection with 1007).
#[derive(Debug, Clone)]
enum Sent {
    Text(String),
    Binary(Vec<u8>),
    Fragmented(Vec<u8>, usize),
    Ping(Vec<u8>),
    BadText,
}

fn sent() -> impl Strategy<Value = Sent> {
    prop_oneof![
        4 => "[a-zé€😀]{0,300}".prop_map(Sent::Text),
        4 => proptest::collection::vec(any::<u8>(), 0..300).prop_map(Sent::Binary),
        1 => (proptest::collection::vec(any::<u8>(), 0..100), 0usize..100)
            .prop_map(|(d, cut)| Sent::Fragmented(d, cut)),
        1 => proptest::collection::vec(any::<u8>(), 0..20).prop_map(Sent::Ping),
        1 => Just(Sent::BadText),
    ]
}

fn encode(msgs: &[Sent]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        let key = [i as u8, 0x5a, 0xc3, (i >> 8) as u8];
        match m {
            Sent::Text(t) => frame(&mut out, true, 0x1, t.as_bytes(), key),
            Sent::Binary(b) => frame(&mut out, true, 0x2, b, key),
            Sent::Fragmented(d, cut) => {
                let (a, b) = d.split_at((*cut).min(d.len()));
                frame(&mut out, false, 0x2, a, key);
                frame(&mut out, true, 0x0, b, key);
            }
            Sent::Ping(p) => frame(&mut out, true, 0x9, p, key),
            Sent::BadText => frame(&mut out, true, 0x1, &[0xc3, 0x28], key),
        }
    }
    out
}

/// An event, and what echoing it returned (when echoing data).
type Seen = (Event, Option<Result<(), SendError>>);

/// Feeds `input` in `chunk`-byte reads; returns the events (a held message
/// as the owned one) with what echoing it returned, and the bytes written.
fn run(
    input: &[u8],
    chunk: usize,
    in_place: Option<usize>,
    echo: bool,
    every: usize,
) -> (Vec<Seen>, Vec<u8>) {
    let now = Instant::now();
    let mut c = Connection::server(Config::default(), now);
    let mut seen = Vec::new();
    let mut polls = 0;
    let mut feed = |c: &mut Connection, seen: &mut Vec<_>| loop {
        // Every `every`-th poll (0: none) is a `poll_event`, which must let
        // a held message go first.
        polls += 1;
        let polled = match in_place {
            Some(max) if every == 0 || polls % every != 0 => c.poll_in_place(max),
            _ => c.poll_event().map(Polled::Event),
        };
        match polled {
            None => return,
            Some(Polled::Held(h)) => {
                assert!(h.len <= in_place.unwrap());
                let m = c.held_message().unwrap();
                assert_eq!(c.held().unwrap().len(), h.len);
                let ev = match m {
                    Message::Text(t) => {
                        assert_eq!(h.kind, DataKind::Text);
                        Event::Text(t)
                    }
                    Message::Binary(b) => {
                        assert_eq!(h.kind, DataKind::Binary);
                        Event::Binary(b)
                    }
                    m => panic!("held {m:?}"),
                };
                seen.push((ev, echo.then(|| c.echo_held())));
            }
            Some(Polled::Event(ev)) => {
                let msg = match &ev {
                    Event::Text(t) => Some(Message::Text(t.clone())),
                    Event::Binary(b) => Some(Message::Binary(b.clone())),
                    _ => None,
                };
                let sent = msg.filter(|_| echo).map(|m| c.send(m));
                seen.push((ev, sent));
            }
        }
    };
    for part in input.chunks(chunk.max(1)) {
        c.handle_data(part, now);
        feed(&mut c, &mut seen);
    }
    c.handle_eof();
    feed(&mut c, &mut seen);
    (seen, wire(&mut c))
}

proptest! {
    #[test]
    fn in_place_reads_and_echoes_as_the_owned_path_does(
        msgs in proptest::collection::vec(sent(), 0..40),
        chunk in 1usize..200,
        max in prop_oneof![Just(0usize), Just(20), Just(125), Just(usize::MAX)],
        echo in any::<bool>(),
        every in 0usize..4,
    ) {
        let input = encode(&msgs);
        let owned = run(&input, chunk, None, echo, 0);
        let held = run(&input, chunk, Some(max), echo, every);
        prop_assert_eq!(&owned.0, &held.0);
        prop_assert_eq!(owned.1, held.1);
    }
}

fn server_with(input: &[u8]) -> Connection {
    let now = Instant::now();
    let mut c = Connection::server(Config::default(), now);
    c.handle_data(input, now);
    c
}

#[test]
fn two_messages_in_one_read_are_held_one_after_the_other() {
    let mut input = Vec::new();
    frame(&mut input, true, 0x1, b"first", [1, 2, 3, 4]);
    frame(&mut input, true, 0x2, b"second!", [5, 6, 7, 8]);
    let mut c = server_with(&input);
    let held = |kind, len| Some(Polled::Held(Held { kind, len }));
    assert_eq!(c.poll_in_place(100), held(DataKind::Text, 5));
    assert_eq!(c.held(), Some(&b"first"[..]));
    assert_eq!(c.poll_in_place(100), held(DataKind::Binary, 7));
    assert_eq!(c.held(), Some(&b"second!"[..]));
    assert!(c.poll_in_place(100).is_none());
    assert_eq!(c.held(), None, "the poll let the second one go");
}

#[test]
fn larger_than_max_comes_as_an_event() {
    let mut input = Vec::new();
    frame(&mut input, true, 0x2, &[7; 21], [1, 2, 3, 4]);
    let mut c = server_with(&input);
    match c.poll_in_place(20) {
        Some(Polled::Event(Event::Binary(b))) => assert_eq!(&b[..], &[7; 21]),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.held(), None);
}

#[test]
fn echo_held_is_refused_with_nothing_held_and_after_a_close() {
    let mut input = Vec::new();
    frame(&mut input, true, 0x1, b"hi", [1, 2, 3, 4]);
    frame(&mut input, true, 0x1, b"again", [1, 2, 3, 4]);
    let mut c = server_with(&input);
    assert_eq!(c.echo_held(), Err(SendError::NothingHeld));
    assert!(matches!(c.poll_in_place(100), Some(Polled::Held(_))));
    assert_eq!(c.echo_held(), Ok(()));
    assert_eq!(
        c.echo_held(),
        Err(SendError::NothingHeld),
        "echoed once, let go"
    );
    assert_eq!(wire(&mut c), b"\x81\x02hi");
    assert!(matches!(c.poll_in_place(100), Some(Polled::Held(_))));
    c.close(None, Instant::now()).unwrap();
    assert_eq!(c.echo_held(), Err(SendError::Closed));
}

#[test]
fn a_held_message_survives_buffer_upkeep() {
    // The first message read in place is skipped lazily; upkeep between
    // polls (giving buffers back, reserving for a read) consumes the skip
    // and must leave the second, still held, intact.
    let mut input = Vec::new();
    frame(&mut input, true, 0x1, b"first", [1, 2, 3, 4]);
    frame(&mut input, true, 0x2, b"second!", [5, 6, 7, 8]);
    let mut c = server_with(&input);
    assert!(matches!(c.poll_in_place(100), Some(Polled::Held(_))));
    assert!(matches!(c.poll_in_place(100), Some(Polled::Held(_))));
    c.shrink_buffers();
    assert_eq!(c.held(), Some(&b"second!"[..]));
    let _ = c.recv_buffer();
    c.handle_received(Instant::now());
    assert_eq!(c.held(), Some(&b"second!"[..]));
    c.echo_held().unwrap();
    assert_eq!(wire(&mut c), b"\x82\x07second!");
    assert!(c.poll_in_place(100).is_none());
}
