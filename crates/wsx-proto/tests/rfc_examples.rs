//! The examples of RFC 6455 §5.7, received and sent.
//!
//! Every received vector is fed (a) whole, (b) byte by byte and (c) split in
//! two at every index; all three must give the same events and the same
//! reply bytes.

mod common;

use bytes::Bytes;
use common::*;
use std::time::Instant;
use wsx_proto::{Config, Connection, DataKind, Event, Fragment, Message, Role, SendError};

/// Feeds `input` to a fresh `role` connection in `chunks`, polling every
/// event after each one; returns the events and everything transmitted.
fn run(config: &Config, role: Role, chunks: &[&[u8]]) -> (Vec<Event>, Vec<u8>) {
    let t0 = Instant::now();
    let mut c = conn(role, config.clone(), t0);
    let mut events = Vec::new();
    for chunk in chunks {
        events.extend(feed(&mut c, chunk, t0));
    }
    (events, drain(&mut c))
}

/// Feeds `input` whole, byte by byte, through `recv_buffer` and split at
/// every index; each must produce exactly `expected` and the same output
/// bytes, which are returned.
fn check_with(config: Config, role: Role, input: &[u8], expected: &[Event]) -> Vec<u8> {
    let (events, out) = run(&config, role, &[input]);
    assert!(
        events == expected,
        "{role:?}, fed whole:\n   got {}\n  want {}",
        summary(&events),
        summary(expected)
    );

    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    let (events, out1) = run(&config, role, &bytes);
    assert!(
        events == expected,
        "{role:?}, fed byte by byte:\n   got {}\n  want {}",
        summary(&events),
        summary(expected)
    );
    assert_eq!(out1, out, "{role:?}, fed byte by byte: different output");

    // (d) Through recv_buffer()/handle_received() instead of handle_data().
    let t0 = Instant::now();
    let mut c = conn(role, config.clone(), t0);
    c.recv_buffer().extend_from_slice(input);
    c.handle_received(t0);
    let events = poll_all(&mut c);
    assert!(
        events == expected,
        "{role:?}, via recv_buffer:\n   got {}\n  want {}",
        summary(&events),
        summary(expected)
    );
    assert_eq!(
        drain(&mut c),
        out,
        "{role:?}, via recv_buffer: different output"
    );

    for i in 0..=input.len() {
        let (a, b) = input.split_at(i);
        let (events, out2) = run(&config, role, &[a, b]);
        assert!(
            events == expected,
            "{role:?}, split at {i}:\n   got {}\n  want {}",
            summary(&events),
            summary(expected)
        );
        assert_eq!(out2, out, "{role:?}, split at {i}: different output");
    }
    out
}

fn check(role: Role, input: &[u8], expected: &[Event]) -> Vec<u8> {
    check_with(Config::default(), role, input, expected)
}

fn text(s: &'static str) -> Event {
    Event::Text(s.into())
}

fn binary(b: Vec<u8>) -> Event {
    Event::Binary(Bytes::from(b))
}

fn concat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// One row of the table.
struct Vector {
    role: Role,
    config: Config,
    input: Vec<u8>,
    events: Vec<Event>,
    /// Frames the receiver must send back: (first header byte, payload).
    /// A client masks them, a server does not.
    replies: Vec<(u8, Vec<u8>)>,
}

impl Vector {
    fn new(role: Role, input: Vec<u8>, events: Vec<Event>) -> Self {
        Vector {
            role,
            config: Config::default(),
            input,
            events,
            replies: Vec::new(),
        }
    }

    fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    fn reply(mut self, b0: u8, payload: &[u8]) -> Self {
        self.replies.push((b0, payload.to_vec()));
        self
    }

    fn check(self) {
        let out = check_with(self.config, self.role, &self.input, &self.events);
        let frames = parse_frames(&out);
        let got: Vec<(u8, Vec<u8>)> = frames.iter().map(|f| (f.b0, f.payload.clone())).collect();
        assert_eq!(got, self.replies, "reply frames");
        for f in &frames {
            // RFC 6455 §5.1: a client masks every frame, a server none.
            assert_eq!(f.mask.is_some(), self.role == Role::Client, "mask bit");
        }
        if self.role == Role::Server {
            let want: Vec<u8> = self
                .replies
                .iter()
                .flat_map(|(b0, p)| encode_frame(*b0, None, p))
                .collect();
            assert_eq!(out, want, "exact reply bytes");
        }
    }
}

/// One `#[test]` per row.
macro_rules! table {
    ($($name:ident => $vector:expr;)*) => {
        $(
            #[test]
            fn $name() {
                $vector.check();
            }
        )*
    };
}

table! {
    // "A single-frame unmasked text message"
    unmasked_hello_to_client => Vector::new(
        Role::Client,
        hex("81 05 48 65 6c 6c 6f"),
        vec![text("Hello")],
    );
    // "A single-frame masked text message"
    masked_hello_to_server => Vector::new(
        Role::Server,
        hex("81 85 37 fa 21 3d 7f 9f 4d 51 58"),
        vec![text("Hello")],
    );
    // "A fragmented unmasked text message"
    fragmented_unmasked_text_to_client => Vector::new(
        Role::Client,
        hex("01 03 48 65 6c 80 02 6c 6f"),
        vec![text("Hello")],
    );
    // The same, masked, to a server.
    fragmented_masked_text_to_server => Vector::new(
        Role::Server,
        concat(&[&to(Role::Server, TEXT, b"Hel"), &to(Role::Server, FIN | CONT, b"lo")]),
        vec![text("Hello")],
    );
    // The same with deliver_fragments: one event per frame.
    fragmented_text_delivered_as_fragments => Vector::new(
        Role::Client,
        hex("01 03 48 65 6c 80 02 6c 6f"),
        vec![
            Event::Fragment(Fragment {
                kind: DataKind::Text,
                data: Bytes::from_static(b"Hel"),
                first: true,
                fin: false,
            }),
            Event::Fragment(Fragment {
                kind: DataKind::Text,
                data: Bytes::from_static(b"lo"),
                first: false,
                fin: true,
            }),
        ],
    )
    .config(Config::builder().deliver_fragments(true).build().unwrap());
    // §5.4: control frames may be injected in the middle of a fragmented message.
    ping_between_fragments => Vector::new(
        Role::Client,
        hex("01 03 48 65 6c 89 02 68 69 80 02 6c 6f"),
        vec![Event::Ping(Bytes::from_static(b"hi")), text("Hello")],
    )
    .reply(FIN | PONG, b"hi");
    // "Unmasked Ping request and masked Ping response": a client answers an
    // unmasked ping with a masked pong.
    unmasked_ping_to_client_gets_masked_pong => Vector::new(
        Role::Client,
        hex("89 05 48 65 6c 6c 6f"),
        vec![Event::Ping(Bytes::from_static(b"Hello"))],
    )
    .reply(FIN | PONG, b"Hello");
    // A server answers a masked ping with an unmasked pong: 8a 05 48 65 6c 6c 6f.
    masked_ping_to_server_gets_unmasked_pong => Vector::new(
        Role::Server,
        concat(&[&hex("89 85"), &KEY, &hex("7f 9f 4d 51 58")]),
        vec![Event::Ping(Bytes::from_static(b"Hello"))],
    )
    .reply(FIN | PONG, b"Hello");
    // The masked pong of the example, received by the server.
    masked_pong_to_server => Vector::new(
        Role::Server,
        hex("8a 85 37 fa 21 3d 7f 9f 4d 51 58"),
        vec![Event::Pong(Bytes::from_static(b"Hello"))],
    );
    unmasked_pong_to_client => Vector::new(
        Role::Client,
        hex("8a 05 48 65 6c 6c 6f"),
        vec![Event::Pong(Bytes::from_static(b"Hello"))],
    );
    // "256 bytes binary message in a single unmasked frame"
    binary_256_to_client => Vector::new(
        Role::Client,
        concat(&[&hex("82 7e 01 00"), &pattern(256)]),
        vec![binary(pattern(256))],
    );
    binary_256_masked_to_server => Vector::new(
        Role::Server,
        {
            let mut v = hex("82 fe 01 00");
            v.extend_from_slice(&KEY);
            v.extend(pattern(256).iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
            v
        },
        vec![binary(pattern(256))],
    );
    // "64KiB binary message in a single unmasked frame"
    binary_64k_to_client => Vector::new(
        Role::Client,
        concat(&[&hex("82 7f 00 00 00 00 00 01 00 00"), &pattern(65536)]),
        vec![binary(pattern(65536))],
    );
}

#[test]
fn all_examples_back_to_back() {
    // One stream holding the examples a server can receive (the 64 KiB one
    // is left out: unmasking it at every split point is slow in debug builds).
    let input = [
        hex("81 85 37 fa 21 3d 7f 9f 4d 51 58"),
        to(Role::Server, TEXT, b"Hel"),
        hex("89 85 37 fa 21 3d 7f 9f 4d 51 58"), // a ping between fragments
        to(Role::Server, FIN | CONT, b"lo"),
        hex("8a 85 37 fa 21 3d 7f 9f 4d 51 58"),
        to(Role::Server, FIN | BINARY, &pattern(256)),
    ]
    .concat();
    let hello = Bytes::from_static(b"Hello");
    let out = check(
        Role::Server,
        &input,
        &[
            text("Hello"),
            Event::Ping(hello.clone()),
            text("Hello"),
            Event::Pong(hello),
            binary(pattern(256)),
        ],
    );
    assert_eq!(out, hex("8a 05 48 65 6c 6c 6f"));
}

// ---- the sending side ------------------------------------------------------

fn sent_by(role: Role, msg: Message) -> Vec<u8> {
    let mut c = conn(role, Config::default(), Instant::now());
    c.send(msg).unwrap();
    drain(&mut c)
}

#[test]
fn server_sends_unmasked_hello() {
    assert_eq!(
        sent_by(Role::Server, Message::text("Hello")),
        hex("81 05 48 65 6c 6c 6f")
    );
}

#[test]
fn server_sends_unmasked_ping_and_pong() {
    let hello = Bytes::from_static(b"Hello");
    assert_eq!(
        sent_by(Role::Server, Message::Ping(hello.clone())),
        hex("89 05 48 65 6c 6c 6f")
    );
    assert_eq!(
        sent_by(Role::Server, Message::Pong(hello)),
        hex("8a 05 48 65 6c 6c 6f")
    );
}

#[test]
fn server_sends_256_and_64k_binary_with_the_rfc_length_forms() {
    let out = sent_by(Role::Server, Message::binary(pattern(256)));
    assert_eq!(out, concat(&[&hex("82 7e 01 00"), &pattern(256)]));

    let out = sent_by(Role::Server, Message::binary(pattern(65536)));
    assert_eq!(
        out,
        concat(&[&hex("82 7f 00 00 00 00 00 01 00 00"), &pattern(65536)])
    );
}

#[test]
fn server_sends_fragmented_text_like_the_rfc() {
    let mut c = conn(Role::Server, Config::default(), Instant::now());
    for (data, first, fin) in [("Hel", true, false), ("lo", false, true)] {
        c.send_fragment(Fragment {
            kind: DataKind::Text,
            data: Bytes::from_static(data.as_bytes()),
            first,
            fin,
        })
        .unwrap();
    }
    assert_eq!(drain(&mut c), hex("01 03 48 65 6c 80 02 6c 6f"));
}

#[test]
fn client_sends_masked_frames_that_a_server_reads() {
    let t0 = Instant::now();
    let mut client = Connection::client(Config::default(), SEED, t0);
    client.send(Message::text("Hello")).unwrap();
    client.send(Message::binary(pattern(256))).unwrap();
    client.send(Message::binary(pattern(65536))).unwrap();
    client
        .send(Message::Ping(Bytes::from_static(b"Hello")))
        .unwrap();
    let out = drain(&mut client);

    let frames = parse_frames(&out);
    let want: Vec<(u8, Vec<u8>)> = vec![
        (0x81, b"Hello".to_vec()),
        (0x82, pattern(256)),
        (0x82, pattern(65536)),
        (0x89, b"Hello".to_vec()),
    ];
    let got: Vec<(u8, Vec<u8>)> = frames.iter().map(|f| (f.b0, f.payload.clone())).collect();
    assert_eq!(got, want);
    assert!(frames.iter().all(|f| f.mask.is_some()), "client must mask");
    // Header sizes: 2 + 4, 4 + 4, 10 + 4, 2 + 4.
    assert_eq!(out.len(), (6 + 5) + (8 + 256) + (14 + 65536) + (6 + 5));
    // Masking keys come from the CSPRNG: not all the same.
    let keys: Vec<[u8; 4]> = frames.iter().map(|f| f.mask.unwrap()).collect();
    assert!(keys.windows(2).any(|w| w[0] != w[1]), "keys {keys:02x?}");

    let mut server = Connection::server(Config::default(), t0);
    assert_eq!(
        feed(&mut server, &out, t0),
        vec![
            text("Hello"),
            binary(pattern(256)),
            binary(pattern(65536)),
            Event::Ping(Bytes::from_static(b"Hello")),
        ]
    );
    assert_eq!(drain(&mut server), hex("8a 05 48 65 6c 6c 6f"));
}

#[test]
fn same_seed_same_masks() {
    // The seed fully determines the client's output (useful for reproducible tests).
    let a = sent_by(Role::Client, Message::text("Hello"));
    let b = sent_by(Role::Client, Message::text("Hello"));
    assert_eq!(a, b);
    assert_eq!(a.len(), 11);
    assert_eq!(&a[..2], &[0x81, 0x85]);
}

#[test]
fn send_side_sequencing_and_limits() {
    let mut c = conn(Role::Server, Config::default(), Instant::now());
    let frag = |first, fin| Fragment {
        kind: DataKind::Binary,
        data: Bytes::from_static(b"x"),
        first,
        fin,
    };
    assert!(matches!(
        c.send_fragment(frag(false, true)),
        Err(SendError::FragmentSequence(_))
    ));
    c.send_fragment(frag(true, false)).unwrap();
    assert!(matches!(
        c.send_fragment(frag(true, true)),
        Err(SendError::FragmentSequence(_))
    ));
    assert!(matches!(
        c.send(Message::text("not now")),
        Err(SendError::FragmentSequence(_))
    ));
    // Control frames may go between fragments, but carry at most 125 bytes.
    c.send(Message::Ping(Bytes::from(vec![0; 125]))).unwrap();
    assert_eq!(
        c.send(Message::Ping(Bytes::from(vec![0; 126]))),
        Err(SendError::ControlTooLong(126))
    );
    assert_eq!(
        c.send(Message::Pong(Bytes::from(vec![0; 200]))),
        Err(SendError::ControlTooLong(200))
    );
    c.send_fragment(frag(false, true)).unwrap();
    c.send(Message::text("now")).unwrap();
    let frames = parse_frames(&drain(&mut c));
    let heads: Vec<u8> = frames.iter().map(|f| f.b0).collect();
    assert_eq!(heads, [BINARY, FIN | PING, FIN | CONT, FIN | TEXT]);
}

/// The smallest reproduction of the `poll_event` bug behind most failures in
/// this suite: a frame that yields no event (a non-final fragment, a close
/// frame) ends `poll_event` with `None` although more input is buffered.
#[test]
fn poll_event_does_not_stop_after_a_frame_without_an_event() {
    let t0 = Instant::now();
    let mut c = conn(Role::Client, Config::default(), t0);
    c.handle_data(&hex("01 03 48 65 6c 80 02 6c 6f"), t0);
    assert_eq!(
        c.poll_event(),
        Some(text("Hello")),
        "both fragments are buffered"
    );

    let mut c = conn(Role::Client, Config::default(), t0);
    c.handle_data(&hex("88 02 03 e8"), t0);
    assert!(
        matches!(c.poll_event(), Some(Event::Closed(_))),
        "the peer's close frame is buffered"
    );
}
