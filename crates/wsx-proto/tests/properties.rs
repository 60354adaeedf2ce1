//! Round trips between a client and a server: whatever one end sends (whole
//! messages, fragmented messages with control frames in between, pings and
//! pongs) the other end receives exactly, however the bytes are chunked in
//! transit.

mod common;

use bytes::{Buf, Bytes};
use common::*;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::FileFailurePersistence;
use std::time::{Duration, Instant};
use wsx_proto::{Config, Connection, DataKind, Event, Fragment, Message, Role};

/// A ping or a pong with its payload (at most 125 bytes).
#[derive(Debug, Clone)]
enum Control {
    Ping(Vec<u8>),
    Pong(Vec<u8>),
}

/// What the sender does.
#[derive(Debug, Clone)]
enum Op {
    /// `send()` a whole text or binary message.
    Whole(DataKind, Vec<u8>),
    /// `send_fragment()` a message cut at `cuts` (sorted byte offsets), with
    /// the control frame `between[i]`, if any, after fragment `i`.
    Fragmented {
        kind: DataKind,
        data: Vec<u8>,
        cuts: Vec<usize>,
        between: Vec<Option<Control>>,
    },
    /// `send()` a ping or a pong.
    Control(Control),
}

/// xorshift64: cheap deterministic filler for large payloads.
fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// About `len` bytes of UTF-8 with 1- to 4-byte characters.
fn big_text(len: usize, seed: u64) -> Vec<u8> {
    const CHARS: &[char] = &[
        'a',
        'Z',
        ' ',
        '0',
        '\n',
        '\0',
        'é',
        'ß',
        'κ',
        '€',
        '中',
        '𝄞',
        '😀',
        '\u{10ffff}',
    ];
    let mut x = seed | 1;
    let mut s = String::with_capacity(len + 4);
    while s.len() < len {
        s.push(CHARS[(xorshift(&mut x) % CHARS.len() as u64) as usize]);
    }
    s.into_bytes()
}

fn big_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len).map(|_| xorshift(&mut x) as u8).collect()
}

/// Mostly small payloads, sometimes up to 70000 bytes (past the 16-bit length form).
fn payload(kind: DataKind) -> BoxedStrategy<Vec<u8>> {
    match kind {
        DataKind::Text => prop_oneof![
            3 => "\\PC{0,40}".prop_map(String::into_bytes),
            1 => (0usize..70000, any::<u64>()).prop_map(|(n, s)| big_text(n, s)),
        ]
        .boxed(),
        DataKind::Binary => prop_oneof![
            3 => proptest::collection::vec(any::<u8>(), 0..64),
            1 => (0usize..70000, any::<u64>()).prop_map(|(n, s)| big_bytes(n, s)),
        ]
        .boxed(),
    }
}

fn kind() -> impl Strategy<Value = DataKind> {
    prop_oneof![Just(DataKind::Text), Just(DataKind::Binary)]
}

fn message() -> impl Strategy<Value = (DataKind, Vec<u8>)> {
    kind().prop_flat_map(|k| payload(k).prop_map(move |p| (k, p)))
}

fn control() -> impl Strategy<Value = Control> {
    (
        any::<bool>(),
        proptest::collection::vec(any::<u8>(), 0..=125),
    )
        .prop_map(|(ping, p)| {
            if ping {
                Control::Ping(p)
            } else {
                Control::Pong(p)
            }
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => message().prop_map(|(k, d)| Op::Whole(k, d)),
        3 => (
            message(),
            proptest::collection::vec(any::<Index>(), 0..6),
            proptest::collection::vec(proptest::option::of(control()), 0..6),
        )
            .prop_map(|((kind, data), cuts, between)| {
                let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(data.len() + 1)).collect();
                cuts.sort_unstable();
                Op::Fragmented { kind, data, cuts, between }
            }),
        1 => control().prop_map(Op::Control),
    ]
}

/// How many bytes the transport moves at a time: cycled.
fn chunk_sizes() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(
        prop_oneof![1 => 1usize..16, 2 => 1usize..4096, 2 => 4096usize..100_000],
        1..8,
    )
}

fn event_of(kind: DataKind, data: &[u8]) -> Event {
    match kind {
        DataKind::Text => Event::Text(String::from_utf8(data.to_vec()).unwrap().into()),
        DataKind::Binary => Event::Binary(Bytes::copy_from_slice(data)),
    }
}

fn control_event(c: &Control) -> Event {
    match c {
        Control::Ping(p) => Event::Ping(Bytes::copy_from_slice(p)),
        Control::Pong(p) => Event::Pong(Bytes::copy_from_slice(p)),
    }
}

fn control_message(c: &Control) -> Message {
    match c {
        Control::Ping(p) => Message::Ping(Bytes::copy_from_slice(p)),
        Control::Pong(p) => Message::Pong(Bytes::copy_from_slice(p)),
    }
}

fn fragment(kind: DataKind, data: &[u8], first: bool, fin: bool) -> Fragment {
    Fragment {
        kind,
        data: Bytes::copy_from_slice(data),
        first,
        fin,
    }
}

/// The pieces of `data` cut at `cuts`.
fn pieces<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut prev = 0;
    for &c in cuts.iter().chain(std::iter::once(&data.len())) {
        out.push(&data[prev..c]);
        prev = c;
    }
    out
}

/// Sends `op`; appends what the receiver must report: whole messages, or
/// with `fragments` one `Fragment` per data frame.
fn send_op(tx: &mut Connection, op: &Op, fragments: bool, expected: &mut Vec<Event>) {
    match op {
        Op::Whole(kind, data) => {
            let msg = match kind {
                DataKind::Text => Message::Text(String::from_utf8(data.clone()).unwrap().into()),
                DataKind::Binary => Message::binary(data.clone()),
            };
            tx.send(msg).unwrap();
            expected.push(if fragments {
                Event::Fragment(fragment(*kind, data, true, true))
            } else {
                event_of(*kind, data)
            });
        }
        Op::Fragmented {
            kind,
            data,
            cuts,
            between,
        } => {
            let pieces = pieces(data, cuts);
            let n = pieces.len();
            for (i, piece) in pieces.iter().enumerate() {
                let f = fragment(*kind, piece, i == 0, i == n - 1);
                tx.send_fragment(f.clone()).unwrap();
                if fragments {
                    expected.push(Event::Fragment(f));
                }
                if i < n - 1 {
                    if let Some(Some(c)) = between.get(i) {
                        tx.send(control_message(c)).unwrap();
                        expected.push(control_event(c));
                    }
                }
            }
            if !fragments {
                expected.push(event_of(*kind, data));
            }
        }
        Op::Control(c) => {
            tx.send(control_message(c)).unwrap();
            expected.push(control_event(c));
        }
    }
}

/// Moves up to `n` bytes from `tx` to `rx`; returns whether any moved.
fn pump(
    tx: &mut Connection,
    rx: &mut Connection,
    n: usize,
    now: Instant,
    got: &mut Vec<Event>,
) -> bool {
    let out = tx.transmit();
    let n = n.min(out.remaining());
    if n == 0 {
        return false;
    }
    let bytes = out.copy_to_bytes(n);
    got.extend(feed(rx, &bytes, now));
    true
}

fn round_trip(
    sender: Role,
    fragments: bool,
    ops: &[Op],
    chunks: &[usize],
) -> Result<(), TestCaseError> {
    let t0 = Instant::now();
    let config = Config::builder()
        .deliver_fragments(fragments)
        .build()
        .unwrap();
    let mut tx = conn(sender, Config::default(), t0);
    let mut rx = conn(peer_of(sender), config, t0);
    let mut expected = Vec::new();
    let mut got = Vec::new();
    let mut sizes = chunks.iter().cycle();
    let mut now = t0;
    for op in ops {
        send_op(&mut tx, op, fragments, &mut expected);
        // The transport moves some bytes while the sender keeps sending.
        now += Duration::from_millis(1);
        pump(&mut tx, &mut rx, *sizes.next().unwrap(), now, &mut got);
    }
    while pump(&mut tx, &mut rx, *sizes.next().unwrap(), now, &mut got) {}

    prop_assert!(
        got == expected,
        "\n   got {}\n  want {}",
        summary(&got),
        summary(&expected)
    );
    prop_assert_eq!(rx.poll_event(), None);
    prop_assert!(!rx.is_closing() && !tx.is_closing());
    prop_assert_eq!(tx.poll_event(), None, "the sender received nothing");

    // With fragments delivered, they reassemble into the messages sent.
    if fragments {
        let mut messages = Vec::new();
        let mut cur: Option<(DataKind, Vec<u8>)> = None;
        for e in &got {
            if let Event::Fragment(f) = e {
                prop_assert_eq!(f.first, cur.is_none(), "first flag");
                let (k, mut buf) = cur.take().unwrap_or((f.kind, Vec::new()));
                prop_assert_eq!(k, f.kind, "continuations carry the message kind");
                buf.extend_from_slice(&f.data);
                if f.fin {
                    messages.push(event_of(k, &buf));
                } else {
                    cur = Some((k, buf));
                }
            }
        }
        prop_assert!(cur.is_none(), "unfinished message");
        let sent: Vec<Event> = ops
            .iter()
            .filter_map(|op| match op {
                Op::Whole(k, d)
                | Op::Fragmented {
                    kind: k, data: d, ..
                } => Some(event_of(*k, d)),
                Op::Control(_) => None,
            })
            .collect();
        prop_assert!(messages == sent, "reassembled messages differ");
    }

    // Every ping was answered with a pong carrying its payload, in order.
    let pings: Vec<Vec<u8>> = expected
        .iter()
        .filter_map(|e| match e {
            Event::Ping(p) => Some(p.to_vec()),
            _ => None,
        })
        .collect();
    let replies = parse_frames(&drain(&mut rx));
    prop_assert!(replies
        .iter()
        .all(|f| f.b0 == FIN | PONG && f.mask.is_some() == (sender == Role::Server)));
    let pongs: Vec<Vec<u8>> = replies.into_iter().map(|f| f.payload).collect();
    prop_assert_eq!(pongs, pings);
    Ok(())
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::with_cases(cases)
    }
}

proptest! {
    #![proptest_config(config(96))]

    #[test]
    fn client_to_server(
        ops in proptest::collection::vec(op(), 0..8),
        chunks in chunk_sizes(),
    ) {
        round_trip(Role::Client, false, &ops, &chunks)?;
    }

    #[test]
    fn server_to_client(
        ops in proptest::collection::vec(op(), 0..8),
        chunks in chunk_sizes(),
    ) {
        round_trip(Role::Server, false, &ops, &chunks)?;
    }

    #[test]
    fn client_to_server_delivering_fragments(
        ops in proptest::collection::vec(op(), 0..8),
        chunks in chunk_sizes(),
    ) {
        round_trip(Role::Client, true, &ops, &chunks)?;
    }

    #[test]
    fn server_to_client_delivering_fragments(
        ops in proptest::collection::vec(op(), 0..8),
        chunks in chunk_sizes(),
    ) {
        round_trip(Role::Server, true, &ops, &chunks)?;
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// Garbage never panics, and ends in at most one `Closed`, which is the
    /// last event; after end of stream there is always exactly one.
    #[test]
    fn arbitrary_input_never_panics(
        server in any::<bool>(),
        input in proptest::collection::vec(any::<u8>(), 0..200),
        chunks in proptest::collection::vec(1usize..20, 1..4),
    ) {
        let t0 = Instant::now();
        let role = if server { Role::Server } else { Role::Client };
        let config = Config::builder().max_frame_size(100).max_message_size(150).build().unwrap();
        let mut c = conn(role, config, t0);
        let mut events = Vec::new();
        let mut rest = &input[..];
        for n in chunks.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (a, b) = rest.split_at((*n).min(rest.len()));
            events.extend(feed(&mut c, a, t0));
            rest = b;
        }
        c.handle_eof();
        events.extend(poll_all(&mut c));
        let closed = the_closed(&events);
        prop_assert!(
            closed.code.is_sendable() || matches!(closed.code.0, 1005 | 1006),
            "{:?}", closed
        );
        prop_assert_eq!(c.poll_event(), None);
        // Whatever was sent parses as whole frames, the last one a close if any.
        let frames = parse_frames(&drain(&mut c));
        prop_assert!(frames.iter().all(|f| f.mask.is_some() == (role == Role::Client)));
        if let Some(last) = frames.iter().rposition(|f| f.opcode() == CLOSE) {
            prop_assert_eq!(last, frames.len() - 1);
        }
    }

}

proptest! {
    #![proptest_config(config(64))]

    /// The same bytes, chunked differently, give the same events.
    #[test]
    fn chunking_does_not_matter(
        ops in proptest::collection::vec(op(), 0..4),
        cut in any::<Index>(),
    ) {
        let t0 = Instant::now();
        let mut tx = conn(Role::Client, Config::default(), t0);
        let mut ignored = Vec::new();
        for op in &ops {
            send_op(&mut tx, op, false, &mut ignored);
        }
        let bytes = drain(&mut tx);
        let mut whole = conn(Role::Server, Config::default(), t0);
        let a = feed(&mut whole, &bytes, t0);
        let mut split = conn(Role::Server, Config::default(), t0);
        let (x, y) = bytes.split_at(cut.index(bytes.len() + 1));
        let mut b = feed(&mut split, x, t0);
        b.extend(feed(&mut split, y, t0));
        prop_assert!(a == b, "\n whole {}\n split {}", summary(&a), summary(&b));
        prop_assert!(a == ignored, "\n whole {}\n  sent {}", summary(&a), summary(&ignored));
    }
}

/// One frame as a peer might send it, well-formed or not: a first byte that
/// is usually a whole text or binary frame (the receiver's fast path) and
/// sometimes anything else, masked or not, a length in the 7-, 16- or
/// 64-bit form (minimal or not), and a payload that is UTF-8 or not.
fn raw_frame() -> impl Strategy<Value = Vec<u8>> {
    let b0 = prop_oneof![
        4 => Just(FIN | TEXT),
        4 => Just(FIN | BINARY),
        1 => Just(TEXT),
        1 => Just(BINARY),
        1 => Just(FIN | CONT),
        1 => Just(FIN | PING),
        1 => Just(FIN | PONG),
        1 => Just(FIN | CLOSE),
        1 => Just(FIN | 0x40 | TEXT),
        1 => Just(FIN | 0x10 | BINARY),
        1 => any::<u8>(),
    ];
    let len = prop_oneof![4 => 0usize..130, 1 => 126usize..400];
    let payload = prop_oneof![
        Just(None),
        Just(Some("héllo wörld ✓ ".as_bytes())),
        Just(Some(&b"\xff\xfe bad"[..])),
        Just(Some(&[0xe2, 0x9c][..])),
    ];
    (
        b0,
        prop::bool::weighted(0.9),
        0u8..3,
        len,
        payload,
        any::<u64>(),
        any::<[u8; 4]>(),
    )
        .prop_map(|(b0, masked, long_form, len, pattern, seed, key)| {
            let data: Vec<u8> = match pattern {
                None => big_bytes(len, seed),
                Some(p) => p.iter().copied().cycle().take(len).collect(),
            };
            let mut v = encode_frame(b0, masked.then_some(key), &data);
            // The same length in a longer form than the minimal one: 16-bit
            // (form 1, when it is 7-bit) or 64-bit (form 2).
            let minimal = if len < 126 { 0 } else { 1 };
            if long_form > minimal {
                let old = if minimal == 0 { 0 } else { 2 };
                let new: Vec<u8> = if long_form == 1 {
                    (len as u16).to_be_bytes().to_vec()
                } else {
                    (len as u64).to_be_bytes().to_vec()
                };
                v[1] = (v[1] & 0x80) | if long_form == 1 { 126 } else { 127 };
                v.splice(2..2 + old, new);
            }
            v
        })
}

proptest! {
    #![proptest_config(config(512))]

    /// The receiver parses a whole single-frame message at the front of its
    /// buffer on a fast path and anything else on the general one. Fed all
    /// at once, frames take the fast path where they can; fed a byte at a
    /// time, never (the header comes in before the payload). Both must give
    /// the same events and send the same bytes, well-formed input or not,
    /// within the limits or not.
    #[test]
    fn fast_path_agrees_with_general_path(
        server in any::<bool>(),
        frames in proptest::collection::vec(raw_frame(), 1..5),
        small_limits in any::<bool>(),
    ) {
        let t0 = Instant::now();
        let role = if server { Role::Server } else { Role::Client };
        let config = || if small_limits {
            Config::builder().max_frame_size(100).max_message_size(150).build().unwrap()
        } else {
            Config::default()
        };
        let bytes = frames.concat();
        let mut whole = conn(role, config(), t0);
        let mut a = feed(&mut whole, &bytes, t0);
        let mut bytewise = conn(role, config(), t0);
        let mut b = Vec::new();
        for byte in &bytes {
            b.extend(feed(&mut bytewise, std::slice::from_ref(byte), t0));
        }
        whole.handle_eof();
        a.extend(poll_all(&mut whole));
        bytewise.handle_eof();
        b.extend(poll_all(&mut bytewise));
        prop_assert!(a == b, "\n   whole {}\nbytewise {}", summary(&a), summary(&b));
        prop_assert_eq!(drain(&mut whole), drain(&mut bytewise));
    }
}
