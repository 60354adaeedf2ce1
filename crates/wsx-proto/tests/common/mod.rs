//! Helpers shared by the integration tests: an independent frame encoder and
//! decoder (so the tests do not trust the crate's own codec), and small
//! wrappers around the sans-IO API.
#![allow(dead_code)] // Each test crate uses a different subset.

use bytes::Buf;
use std::fmt::Write as _;
use std::time::Instant;
use wsx_proto::{Closed, Config, Connection, Event, Role};

/// The masking key of the RFC 6455 §5.7 examples.
pub const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
/// The CSPRNG seed of every test client.
pub const SEED: [u8; 32] = [7; 32];

pub const FIN: u8 = 0x80;
pub const CONT: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xa;

/// A connection of `role` starting at `now`.
pub fn conn(role: Role, config: Config, now: Instant) -> Connection {
    match role {
        Role::Client => Connection::client(config, SEED, now),
        Role::Server => Connection::server(config, now),
    }
}

/// The other end.
pub fn peer_of(role: Role) -> Role {
    match role {
        Role::Client => Role::Server,
        Role::Server => Role::Client,
    }
}

/// `"81 05 48"` -> `[0x81, 0x05, 0x48]`.
pub fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("hex byte"))
        .collect()
}

/// Encodes one frame with the minimal length form. `b0` is the first header
/// byte (FIN, RSV and opcode); `mask` sets the MASK bit and masks the payload.
pub fn encode_frame(b0: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![b0];
    let m = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => v.push(m | n as u8),
        n @ 126..=0xffff => {
            v.push(m | 126);
            v.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            v.push(m | 127);
            v.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(k) => {
            v.extend_from_slice(&k);
            v.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
        }
        None => v.extend_from_slice(payload),
    }
    v
}

/// A well-formed frame as the peer of a `role` endpoint sends it: masked
/// (with [`KEY`]) when `role` is the server, unmasked when it is the client.
pub fn to(role: Role, b0: u8, payload: &[u8]) -> Vec<u8> {
    encode_frame(b0, (role == Role::Server).then_some(KEY), payload)
}

/// A close frame payload: the code, big-endian, then the reason.
pub fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason);
    p
}

/// A frame decoded from a connection's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireFrame {
    /// The first header byte: FIN, RSV, opcode.
    pub b0: u8,
    pub mask: Option<[u8; 4]>,
    /// Unmasked.
    pub payload: Vec<u8>,
}

impl WireFrame {
    pub fn opcode(&self) -> u8 {
        self.b0 & 0x0f
    }
    pub fn fin(&self) -> bool {
        self.b0 & FIN != 0
    }
}

/// Decodes a byte stream into frames; panics on a truncated or non-minimal
/// frame (an endpoint must send only whole, minimally encoded frames).
pub fn parse_frames(mut b: &[u8]) -> Vec<WireFrame> {
    let mut frames = Vec::new();
    while !b.is_empty() {
        assert!(b.len() >= 2, "truncated header: {b:02x?}");
        let b0 = b[0];
        let masked = b[1] & 0x80 != 0;
        let (len, mut n) = match b[1] & 0x7f {
            126 => {
                let len = u16::from_be_bytes([b[2], b[3]]) as usize;
                assert!(len >= 126, "non-minimal 16-bit length {len}");
                (len, 4)
            }
            127 => {
                let len = u64::from_be_bytes(b[2..10].try_into().unwrap());
                assert!(len > 0xffff, "non-minimal 64-bit length {len}");
                (len as usize, 10)
            }
            len => (len as usize, 2),
        };
        let mask = masked.then(|| {
            let k = [b[n], b[n + 1], b[n + 2], b[n + 3]];
            n += 4;
            k
        });
        assert!(
            b.len() >= n + len,
            "truncated payload: want {len}, have {}",
            b.len() - n
        );
        let mut payload = b[n..n + len].to_vec();
        if let Some(k) = mask {
            for (i, x) in payload.iter_mut().enumerate() {
                *x ^= k[i % 4];
            }
        }
        frames.push(WireFrame { b0, mask, payload });
        b = &b[n + len..];
    }
    frames
}

/// Takes everything the connection wants to send.
pub fn drain(c: &mut Connection) -> Vec<u8> {
    let out = c.transmit();
    let n = out.remaining();
    out.copy_to_bytes(n).to_vec()
}

/// Polls events until `None`, then checks that the `None` was true: by
/// contract it means "feed more input", so polling again without new input
/// must still give `None`.
pub fn poll_all(c: &mut Connection) -> Vec<Event> {
    let mut v = Vec::new();
    while let Some(e) = c.poll_event() {
        v.push(e);
        assert!(v.len() < 1_000_000, "poll_event never returns None");
    }
    if let Some(e) = c.poll_event() {
        panic!(
            "poll_event returned None, then {} without new input: the None was \
             spurious (a frame that produced no event, e.g. a non-final fragment \
             or a close frame, ended the poll while complete frames or the Closed \
             event were still pending). Events before the None: {}",
            summary(std::slice::from_ref(&e)),
            summary(&v)
        );
    }
    v
}

/// `handle_data` then every event it produced.
pub fn feed(c: &mut Connection, data: &[u8], now: Instant) -> Vec<Event> {
    c.handle_data(data, now);
    poll_all(c)
}

/// The one `Closed` event among `events`, which must be the last one.
pub fn the_closed(events: &[Event]) -> &Closed {
    let n = events
        .iter()
        .filter(|e| matches!(e, Event::Closed(_)))
        .count();
    assert_eq!(n, 1, "want exactly one Closed event: {}", summary(events));
    match events.last() {
        Some(Event::Closed(c)) => c,
        _ => panic!("Closed is not the last event: {}", summary(events)),
    }
}

/// A short description of events (payloads abbreviated), for assertion messages.
pub fn summary(events: &[Event]) -> String {
    fn bytes(b: &[u8]) -> String {
        if b.len() <= 16 {
            format!("{b:02x?}")
        } else {
            format!("{} bytes {:02x?}..", b.len(), &b[..8])
        }
    }
    let mut s = String::from("[");
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = match e {
            Event::Text(t) => write!(s, "Text({})", bytes(t.as_bytes())),
            Event::Binary(b) => write!(s, "Binary({})", bytes(b)),
            Event::Fragment(f) => write!(
                s,
                "Fragment({:?} first={} fin={} {})",
                f.kind,
                f.first,
                f.fin,
                bytes(&f.data)
            ),
            Event::Ping(b) => write!(s, "Ping({})", bytes(b)),
            Event::Pong(b) => write!(s, "Pong({})", bytes(b)),
            Event::Closed(c) => write!(s, "Closed({} {:?} {:?})", c.code.0, c.initiator, c.cause),
        };
    }
    s.push(']');
    s
}

/// Deterministic filler bytes.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + (i >> 8)) as u8).collect()
}
