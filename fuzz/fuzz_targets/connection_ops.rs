//! A `Connection` driven by an arbitrary sequence of operations: peer bytes
//! (raw, or well-formed frames encoded for the role), sends, fragments,
//! close, timers, EOF, polling and partial writes.
//!
//! The target keeps a model of what must appear on the wire and checks the
//! decoded `transmit()` stream against it exactly:
//! - every successful `send`/`send_fragment`/`close` writes its frame, in
//!   order, with its payload; refused commands write nothing, and a command
//!   is refused exactly when the model says so (closing, control frame over
//!   125 bytes, fragment out of sequence, unsendable close code);
//! - the only other frames are a pong per ping received while open, a
//!   close frame when the peer's close or a protocol error ends an open
//!   connection, and keepalive pings (8-byte counters 1, 2, 3...), each
//!   checked where `handle_timeout` wrote it (one per call at most, only while
//!   open), so an application ping with the same payload is never mistaken
//!   for one;
//! - nothing follows the first close frame (RFC 6455 §5.5.1);
//! - `Closed` is emitted exactly once (after `handle_eof` at the latest),
//!   nothing after it, and `transmit()` never grows after it.
#![no_main]
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};
use wsx_fuzz::{encode_close, EventChecker, OutputChecker};
use wsx_proto::close::{CloseCode, CloseFrame};
use wsx_proto::frame::{FrameHeader, OpCode};
use wsx_proto::mask::apply_mask;
use wsx_proto::{
    CloseCause, Config, Connection, DataKind, Event, Fragment, Message, Role, SendError,
};

#[derive(Arbitrary, Debug)]
struct Input {
    client: bool,
    deliver_fragments: bool,
    /// max_frame_size = 1 + this (64 KiB if `big_limits`).
    max_frame: u8,
    /// max_message_size = 1 + this (64 KiB if `big_limits`).
    max_message: u8,
    big_limits: bool,
    /// Keepalive interval in ms (1 + this), if any.
    ping_interval_ms: Option<u8>,
    pong_timeout_ms: u8,
    close_timeout_ms: u8,
    /// `Config::buffer_release_delay` in ms (plus one); `None`: off.
    release_ms: Option<u8>,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug)]
enum Payload {
    Bytes(Vec<u8>),
    Text(String),
    /// `len` copies of `byte` (large payloads cheaply).
    Repeat {
        byte: u8,
        len: u16,
    },
}

impl Payload {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Payload::Bytes(b) => b.clone(),
            Payload::Text(s) => s.as_bytes().to_vec(),
            Payload::Repeat { byte, len } => vec![*byte; usize::from(*len)],
        }
    }
    fn text(&self) -> String {
        match self {
            Payload::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
            Payload::Text(s) => s.clone(),
            Payload::Repeat { byte, len } => {
                std::iter::repeat_n((byte & 0x7f) as char, usize::from(*len)).collect()
            }
        }
    }
}

#[derive(Arbitrary, Debug)]
enum SendKind {
    Text,
    Binary,
    Ping,
    Pong,
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// Raw bytes from the peer.
    Data(Vec<u8>),
    /// A frame from the peer, encoded for this role (masked to a server)
    /// unless `wrong_mask`; delivered in two pieces split at `split`.
    PeerFrame {
        fin: bool,
        rsv: u8,
        opcode: u8,
        payload: Payload,
        wrong_mask: bool,
        key: [u8; 4],
        split: u16,
    },
    /// A well-formed close frame from the peer.
    PeerClose {
        code: u16,
        reason: String,
    },
    /// Bytes through `recv_buffer()` + `handle_received()`.
    Recv(Vec<u8>),
    Send(SendKind, Payload),
    SendFragment {
        text: bool,
        first: bool,
        fin: bool,
        payload: Payload,
    },
    Close(Option<(u16, String)>),
    /// Advance the clock by this many ms and call `handle_timeout`.
    Timeout(u16),
    Eof,
    /// Poll up to this many events.
    Poll(u8),
    /// Write out up to this many bytes of `transmit()`, `step` at a time.
    Drain {
        max: u16,
        step: u16,
    },
    Shrink,
}

struct Model {
    role: Role,
    fragments: bool,
    /// Frames that must appear on the wire, in order: (opcode, fin, payload).
    expected: Vec<(OpCode, bool, Vec<u8>)>,
    /// We called close() successfully: a close frame is out, we wait.
    close_called: Option<Option<CloseFrame>>,
    /// A fragmented message we are sending is open.
    send_partial: bool,
    ev: EventChecker,
    /// Total bytes queued when Closed was seen.
    frozen: Option<usize>,
    /// Bytes given to the connection.
    fed: usize,
    /// A timer ended the connection (its Closed may not be polled yet).
    ended_by_timer: bool,
    /// When close() was called.
    close_time: Option<Instant>,
    keepalive: bool,
    /// Keepalive pings written so far (their payloads count 1, 2, 3...).
    keepalive_pings: u64,
    close_timeout: Duration,
}

impl Model {
    fn open(&self) -> bool {
        self.close_called.is_none() && self.ev.closed.is_none() && !self.ended_by_timer
    }

    fn poll(&mut self, conn: &mut Connection, out: &mut OutputChecker, max: usize) {
        for _ in 0..max {
            let Some(e) = conn.poll_event() else { break };
            let was_open = self.open();
            self.ev.check(&e, self.fragments);
            match &e {
                Event::Ping(p) if was_open => {
                    self.expected.push((OpCode::PONG, true, p.to_vec()));
                }
                Event::Closed(c) => {
                    assert!(
                        conn.is_closed(),
                        "Closed delivered but is_closed() is false"
                    );
                    assert_eq!(conn.poll_timeout(), None, "deadline after Closed");
                    let writes_close = matches!(c.cause, None | Some(CloseCause::Protocol(_)));
                    if was_open && writes_close {
                        // Reply to the peer's close, or fail the connection.
                        self.expected
                            .push((OpCode::CLOSE, true, encode_close(c.sent.as_ref())));
                    }
                    match &c.cause {
                        Some(CloseCause::CloseTimeout(d)) => {
                            assert!(self.ended_by_timer && self.close_called.is_some(), "{c:?}");
                            assert_eq!(*d, self.close_timeout);
                        }
                        Some(CloseCause::KeepaliveTimeout(_)) => {
                            assert!(self.ended_by_timer && self.keepalive, "{c:?}")
                        }
                        _ => assert!(
                            !self.ended_by_timer,
                            "timer ended the connection, yet {c:?}"
                        ),
                    }
                    if let Some(sent) = &self.close_called {
                        assert_eq!(
                            &c.sent, sent,
                            "Closed.sent is not the frame passed to close()"
                        );
                    }
                    self.frozen = Some(out.total_queued(conn));
                }
                _ => {}
            }
        }
    }
}

fuzz_target!(|input: Input| {
    let role = if input.client {
        Role::Client
    } else {
        Role::Server
    };
    let config = Config::builder()
        .deliver_fragments(input.deliver_fragments)
        .max_frame_size(if input.big_limits {
            64 << 10
        } else {
            1 + usize::from(input.max_frame)
        })
        .max_message_size(if input.big_limits {
            64 << 10
        } else {
            1 + usize::from(input.max_message)
        })
        .ping_interval(
            input
                .ping_interval_ms
                .map(|ms| Duration::from_millis(1 + u64::from(ms))),
        )
        .pong_timeout(Duration::from_millis(1 + u64::from(input.pong_timeout_ms)))
        .close_timeout(Duration::from_millis(1 + u64::from(input.close_timeout_ms)))
        .buffer_release_delay(
            input
                .release_ms
                .map(|ms| Duration::from_millis(1 + u64::from(ms))),
        )
        .build()
        .expect("valid config");
    let mut now = Instant::now();
    let mut conn = match role {
        Role::Server => Connection::server(config, now),
        Role::Client => Connection::client(config, [7; 32], now),
    };
    let mut out = OutputChecker::new(role);
    let mut m = Model {
        role,
        fragments: input.deliver_fragments,
        expected: Vec::new(),
        close_called: None,
        send_partial: false,
        ev: EventChecker::for_config(conn.config()),
        frozen: None,
        fed: 0,
        ended_by_timer: false,
        close_time: None,
        keepalive: input.ping_interval_ms.is_some(),
        keepalive_pings: 0,
        close_timeout: Duration::from_millis(1 + u64::from(input.close_timeout_ms)),
    };

    for op in &input.ops {
        match op {
            Op::Data(d) => {
                m.fed += d.len();
                conn.handle_data(d, now);
            }
            Op::PeerFrame {
                fin,
                rsv,
                opcode,
                payload,
                wrong_mask,
                key,
                split,
            } => {
                let masked = (m.role == Role::Server) != *wrong_mask;
                let mut body = payload.bytes();
                let h = FrameHeader {
                    fin: *fin,
                    rsv: (rsv & 7) << 4,
                    opcode: OpCode::from_u4(*opcode),
                    mask: masked.then_some(*key),
                    payload_len: body.len() as u64,
                };
                let mut hb = [0u8; FrameHeader::MAX_LEN];
                let n = h.encode(&mut hb);
                if let Some(k) = h.mask {
                    apply_mask(&mut body, k, 0);
                }
                let mut wire = hb[..n].to_vec();
                wire.extend_from_slice(&body);
                let at = usize::from(*split) % (wire.len() + 1);
                m.fed += wire.len();
                conn.handle_data(&wire[..at], now);
                conn.handle_data(&wire[at..], now);
            }
            Op::PeerClose { code, reason } => {
                let mut body = code.to_be_bytes().to_vec();
                let mut end = reason.len().min(123);
                while !reason.is_char_boundary(end) {
                    end -= 1;
                }
                body.extend_from_slice(&reason.as_bytes()[..end]);
                let key = [1, 2, 3, 4];
                let masked = m.role == Role::Server;
                let h = FrameHeader {
                    fin: true,
                    rsv: 0,
                    opcode: OpCode::CLOSE,
                    mask: masked.then_some(key),
                    payload_len: body.len() as u64,
                };
                let mut hb = [0u8; FrameHeader::MAX_LEN];
                let n = h.encode(&mut hb);
                if masked {
                    apply_mask(&mut body, key, 0);
                }
                let mut wire = hb[..n].to_vec();
                wire.extend_from_slice(&body);
                m.fed += wire.len();
                conn.handle_data(&wire, now);
            }
            Op::Recv(d) => {
                m.fed += d.len();
                conn.recv_buffer().extend_from_slice(d);
                conn.handle_received(now);
            }
            Op::Send(kind, payload) => {
                let (msg, op) = match kind {
                    SendKind::Text => (Message::text(payload.text()), OpCode::TEXT),
                    SendKind::Binary => (Message::binary(payload.bytes()), OpCode::BINARY),
                    SendKind::Ping => (Message::Ping(payload.bytes().into()), OpCode::PING),
                    SendKind::Pong => (Message::Pong(payload.bytes().into()), OpCode::PONG),
                };
                let bytes = match &msg {
                    Message::Text(t) => t.as_bytes().to_vec(),
                    Message::Binary(b) | Message::Ping(b) | Message::Pong(b) => b.to_vec(),
                };
                let too_long = op.is_control() && bytes.len() > 125;
                let sequence = !op.is_control() && m.send_partial;
                let ok = m.open() && !too_long && !sequence;
                assert_eq!(
                    conn.is_closing(),
                    !m.open(),
                    "is_closing() disagrees with the model"
                );
                match conn.send(msg) {
                    Ok(()) => {
                        assert!(
                            ok,
                            "send accepted: open {}, too long {too_long}, mid-fragment {sequence}",
                            m.open()
                        );
                        m.expected.push((op, true, bytes));
                    }
                    Err(e) => {
                        assert!(!ok, "send refused: {e:?}");
                        match e {
                            SendError::Closed => assert!(!m.open()),
                            SendError::ControlTooLong(n) => assert!(too_long && n == bytes.len()),
                            SendError::FragmentSequence(_) => assert!(sequence),
                            other => panic!("send: unexpected error {other:?}"),
                        }
                    }
                }
            }
            Op::SendFragment {
                text,
                first,
                fin,
                payload,
            } => {
                let data = payload.bytes();
                let kind = if *text {
                    DataKind::Text
                } else {
                    DataKind::Binary
                };
                let in_sequence = *first != m.send_partial;
                let ok = m.open() && in_sequence;
                let op = match (first, text) {
                    (false, _) => OpCode::CONTINUATION,
                    (true, true) => OpCode::TEXT,
                    (true, false) => OpCode::BINARY,
                };
                let frag = Fragment {
                    kind,
                    data: data.clone().into(),
                    first: *first,
                    fin: *fin,
                };
                match conn.send_fragment(frag) {
                    Ok(()) => {
                        assert!(
                            ok,
                            "send_fragment accepted: open {}, in sequence {in_sequence}",
                            m.open()
                        );
                        m.send_partial = !fin;
                        m.expected.push((op, *fin, data));
                    }
                    Err(e) => {
                        assert!(!ok, "send_fragment refused: {e:?}");
                        match e {
                            SendError::Closed => assert!(!m.open()),
                            SendError::FragmentSequence(_) => assert!(!in_sequence),
                            other => panic!("send_fragment: unexpected error {other:?}"),
                        }
                    }
                }
            }
            Op::Close(frame) => {
                let frame = frame
                    .as_ref()
                    .map(|(c, r)| CloseFrame::new(CloseCode(*c), r.clone()));
                let sendable = frame.as_ref().is_none_or(|f| f.code.is_sendable());
                let ok = m.open() && sendable;
                match conn.close(frame.clone(), now) {
                    Ok(()) => {
                        assert!(ok, "close accepted: open {}, sendable {sendable}", m.open());
                        m.expected
                            .push((OpCode::CLOSE, true, encode_close(frame.as_ref())));
                        m.close_called = Some(frame);
                        m.close_time = Some(now);
                        assert!(conn.is_closing());
                        assert!(
                            conn.poll_timeout().is_some(),
                            "no close deadline after close()"
                        );
                    }
                    Err(e) => {
                        assert!(!ok, "close refused: {e:?}");
                        match e {
                            SendError::Closed => assert!(!m.open()),
                            SendError::InvalidCloseCode(c) => {
                                assert!(!sendable && !c.is_sendable())
                            }
                            other => panic!("close: unexpected error {other:?}"),
                        }
                    }
                }
            }
            Op::Timeout(ms) => {
                now += Duration::from_millis(u64::from(*ms));
                let was_closed = conn.is_closed();
                let before = out.total_queued(&conn);
                conn.handle_timeout(now);
                // The only frame a timer writes is one keepalive ping (no idle
                // timeout is configured here), and only while open. It joins
                // the expected wire where it was written, so the oracle never
                // has to guess whether a ping with payload 1, 2, 3... was the
                // application's or the keepalive's (issue 14).
                let written = out.total_queued(&conn) - before;
                if written > 0 {
                    let mask = if m.role == Role::Client { 4 } else { 0 };
                    assert_eq!(
                        written,
                        2 + mask + 8,
                        "handle_timeout wrote {written} bytes: not one keepalive ping"
                    );
                    assert!(m.keepalive, "a keepalive ping without ping_interval");
                    assert!(
                        m.open(),
                        "keepalive ping written after the close was sent or the connection ended"
                    );
                    m.keepalive_pings += 1;
                    m.expected
                        .push((OpCode::PING, true, m.keepalive_pings.to_be_bytes().to_vec()));
                }
                if !was_closed && conn.is_closed() {
                    m.ended_by_timer = true;
                    // The close timeout only fires once it has passed.
                    if let (Some(t), false) = (m.close_time, m.keepalive) {
                        assert!(now >= t + m.close_timeout, "close timeout fired early");
                    }
                    assert!(
                        m.close_time.is_some() || m.keepalive,
                        "a timer ended a connection with no timer"
                    );
                }
                if let Some(t) = conn.poll_timeout() {
                    assert!(
                        t > now,
                        "poll_timeout {t:?} not after handle_timeout({now:?})"
                    );
                }
            }
            Op::Eof => conn.handle_eof(),
            Op::Poll(n) => m.poll(&mut conn, &mut out, usize::from(*n)),
            Op::Drain { max, step } => {
                out.drain_some(&mut conn, usize::from(*max), usize::from(*step))
            }
            Op::Shrink => conn.shrink_buffers(),
        }
        if let Some(total) = m.frozen {
            assert_eq!(
                out.total_queued(&conn),
                total,
                "transmit() grew after Closed ({op:?})"
            );
        }
    }

    // The end: the stream ends, every event is delivered, Closed among them.
    conn.handle_eof();
    m.poll(&mut conn, &mut out, usize::MAX);
    assert_eq!(conn.poll_event(), None);
    let closed =
        m.ev.closed
            .clone()
            .expect("no Closed event after handle_eof");
    assert!(
        m.ev.data_bytes <= m.fed,
        "{} data bytes delivered from {} fed",
        m.ev.data_bytes,
        m.fed
    );
    out.drain_all(&mut conn);

    // The wire is exactly the expected frames (keepalive pings included, at
    // the point where handle_timeout wrote them).
    let mut next = 0;
    for (i, f) in out.frames.iter().enumerate() {
        let got = (f.opcode(), f.header.fin, f.payload.clone());
        if m.expected.get(next) == Some(&got) {
            next += 1;
        } else {
            panic!(
                "frame #{i} on the wire is unexpected: {got:?}; expected next {:?} (closed: {closed:?})",
                m.expected.get(next)
            );
        }
    }
    assert_eq!(
        next,
        m.expected.len(),
        "frames missing from the wire: {:?}",
        &m.expected[next..]
    );
    if out.close_at.is_some() {
        assert!(closed.sent.is_some() || out.close_payload() == Some(&[][..]));
    }
});
