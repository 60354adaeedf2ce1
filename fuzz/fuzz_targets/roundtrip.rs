//! Differential round trip: one `Connection` sends, its peer receives.
//!
//! The sender (client or server) sends arbitrary messages, fragmented
//! messages cut at arbitrary byte offsets (text cut inside code points, pings
//! between fragments), pings and pongs; its `transmit()` bytes reach the
//! receiver in arbitrary pieces, through `handle_data` or `recv_buffer`.
//! Then the sender closes and the receiver's reply goes back. The sender may
//! split long messages (`Config::send_frame_size`).
//!
//! Oracles: the receiver reports exactly what was sent, in order (whole
//! messages, or with `deliver_fragments` the very fragments), each ping and
//! pong once, no error, and both ends see one clean `Closed` with the code
//! the sender used.
#![no_main]
use arbitrary::Arbitrary;
use bytes::Buf;
use libfuzzer_sys::fuzz_target;
use std::time::Instant;
use wsx_proto::close::{CloseCode, CloseFrame};
use wsx_proto::{Config, Connection, DataKind, Event, Fragment, Message};

#[derive(Arbitrary, Debug)]
enum Payload {
    Bytes(Vec<u8>),
    Text(String),
    Repeat { byte: u8, len: u16 },
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
            // Non-ASCII so that cuts land inside code points.
            Payload::Repeat { byte, len } => {
                let c = char::from_u32(0x80 + u32::from(*byte) * 97).unwrap_or('\u{20ac}');
                std::iter::repeat_n(c, usize::from(*len) / 4).collect()
            }
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    Text(Payload),
    Binary(Payload),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    /// A message sent as fragments cut at these offsets (mod its length),
    /// with a ping after each fragment if `pings`.
    Fragmented {
        text: bool,
        payload: Payload,
        cuts: Vec<u16>,
        pings: bool,
    },
    /// Move up to `max` bytes to the receiver, `step` bytes per call.
    Deliver {
        max: u16,
        step: u16,
        via_recv_buffer: bool,
    },
    /// Let the receiver report what it has.
    Poll,
}

#[derive(Arbitrary, Debug)]
struct Input {
    server_sends: bool,
    deliver_fragments: bool,
    /// The sender's `send_frame_size` (16 + this), when the receiver gets
    /// whole messages: the split must be invisible to it. Not below 16: a
    /// receiver's `min_fragment_average` (16) treats long messages in
    /// smaller frames as a fragment flood (1009), as it should.
    send_frame_size: Option<u8>,
    close_code: u16,
    ops: Vec<Op>,
}

/// What the receiver must report, in order.
#[derive(Debug, PartialEq)]
enum Want {
    Text(String),
    Binary(Vec<u8>),
    Fragment {
        kind: DataKind,
        data: Vec<u8>,
        first: bool,
        fin: bool,
    },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
}

fn got(e: Event) -> Result<Want, Event> {
    Ok(match e {
        Event::Text(t) => Want::Text(t.as_str().to_string()),
        Event::Binary(b) => Want::Binary(b.to_vec()),
        Event::Fragment(f) => Want::Fragment {
            kind: f.kind,
            data: f.data.to_vec(),
            first: f.first,
            fin: f.fin,
        },
        Event::Ping(p) => Want::Ping(p.to_vec()),
        Event::Pong(p) => Want::Pong(p.to_vec()),
        other => return Err(other),
    })
}

struct Pair {
    tx: Connection,
    rx: Connection,
    want: Vec<Want>,
    seen: usize,
    now: Instant,
    closed: Option<wsx_proto::Closed>,
}

impl Pair {
    fn deliver(&mut self, max: usize, step: usize, via_recv_buffer: bool) {
        let out = self.tx.transmit();
        let mut left = max.min(out.remaining());
        while left > 0 {
            let chunk = out.chunk();
            let take = chunk.len().min(left).min(step.max(1));
            if via_recv_buffer {
                self.rx.recv_buffer().extend_from_slice(&chunk[..take]);
                self.rx.handle_received(self.now);
            } else {
                self.rx.handle_data(&chunk[..take], self.now);
            }
            out.advance(take);
            left -= take;
        }
    }

    fn poll(&mut self) {
        while let Some(e) = self.rx.poll_event() {
            assert!(self.closed.is_none(), "receiver event after Closed: {e:?}");
            let e = match got(e) {
                Ok(w) => w,
                Err(Event::Closed(c)) => {
                    self.closed = Some(c);
                    continue;
                }
                Err(other) => panic!(
                    "receiver reported {other:?}; expected {:?}",
                    self.want.get(self.seen)
                ),
            };
            assert_eq!(
                Some(&e),
                self.want.get(self.seen),
                "receiver event #{} differs",
                self.seen
            );
            self.seen += 1;
        }
    }

    fn fragment(&mut self, kind: DataKind, data: &[u8], first: bool, fin: bool, fragments: bool) {
        let f = Fragment {
            kind,
            data: data.to_vec().into(),
            first,
            fin,
        };
        self.tx.send_fragment(f).expect("send_fragment in sequence");
        if fragments {
            self.want.push(Want::Fragment {
                kind,
                data: data.to_vec(),
                first,
                fin,
            });
        }
    }
}

fuzz_target!(|input: Input| {
    let now = Instant::now();
    let config = || {
        Config::builder()
            .deliver_fragments(input.deliver_fragments)
            .build()
            .expect("config")
    };
    let split = input
        .send_frame_size
        .filter(|_| !input.deliver_fragments)
        .map(|n| 16 + usize::from(n));
    let sender = || {
        Config::builder()
            .deliver_fragments(input.deliver_fragments)
            .send_frame_size(split)
            .build()
            .expect("config")
    };
    let (tx, rx) = if input.server_sends {
        (
            Connection::server(sender(), now),
            Connection::client(config(), [9; 32], now),
        )
    } else {
        (
            Connection::client(sender(), [9; 32], now),
            Connection::server(config(), now),
        )
    };
    let frags = input.deliver_fragments;
    let mut p = Pair {
        tx,
        rx,
        want: Vec::new(),
        seen: 0,
        now,
        closed: None,
    };

    for op in &input.ops {
        match op {
            Op::Text(pl) => {
                let s = pl.text();
                p.tx.send(Message::text(s.clone())).expect("send text");
                p.want.push(if frags {
                    Want::Fragment {
                        kind: DataKind::Text,
                        data: s.into_bytes(),
                        first: true,
                        fin: true,
                    }
                } else {
                    Want::Text(s)
                });
            }
            Op::Binary(pl) => {
                let b = pl.bytes();
                p.tx.send(Message::binary(b.clone())).expect("send binary");
                p.want.push(if frags {
                    Want::Fragment {
                        kind: DataKind::Binary,
                        data: b,
                        first: true,
                        fin: true,
                    }
                } else {
                    Want::Binary(b)
                });
            }
            Op::Ping(b) | Op::Pong(b) => {
                let b = &b[..b.len().min(125)];
                let is_ping = matches!(op, Op::Ping(_));
                let msg = if is_ping {
                    Message::Ping(b.to_vec().into())
                } else {
                    Message::Pong(b.to_vec().into())
                };
                p.tx.send(msg).expect("send control");
                p.want.push(if is_ping {
                    Want::Ping(b.to_vec())
                } else {
                    Want::Pong(b.to_vec())
                });
            }
            Op::Fragmented {
                text,
                payload,
                cuts,
                pings,
            } => {
                let (kind, data) = if *text {
                    (DataKind::Text, payload.text().into_bytes())
                } else {
                    (DataKind::Binary, payload.bytes())
                };
                let mut at: Vec<usize> = cuts
                    .iter()
                    .map(|&c| usize::from(c) % (data.len() + 1))
                    .collect();
                at.push(0);
                at.push(data.len());
                at.sort_unstable();
                at.dedup();
                // Pieces between consecutive cuts; an empty message is one empty fragment.
                let pieces: Vec<&[u8]> = if at.len() < 2 {
                    vec![&data[..]]
                } else {
                    at.windows(2).map(|w| &data[w[0]..w[1]]).collect()
                };
                for (i, piece) in pieces.iter().enumerate() {
                    let fin = i + 1 == pieces.len();
                    p.fragment(kind, piece, i == 0, fin, frags);
                    if *pings && !fin {
                        p.tx.send(Message::Ping(vec![i as u8].into()))
                            .expect("ping between fragments");
                        p.want.push(Want::Ping(vec![i as u8]));
                    }
                }
                if !frags {
                    p.want.push(match kind {
                        DataKind::Text => Want::Text(String::from_utf8(data).expect("text")),
                        DataKind::Binary => Want::Binary(data),
                    });
                }
            }
            Op::Deliver {
                max,
                step,
                via_recv_buffer,
            } => p.deliver(usize::from(*max), usize::from(*step), *via_recv_buffer),
            Op::Poll => p.poll(),
        }
    }

    // Close: everything arrives, then a clean close both ways.
    let code = CloseCode(1000 + input.close_code % 4000);
    let code = if code.is_sendable() {
        code
    } else {
        CloseCode::NORMAL
    };
    p.tx.close(Some(CloseFrame::new(code, "bye")), now)
        .expect("close");
    p.deliver(usize::MAX, 1 << 20, false);
    p.poll();
    assert_eq!(
        p.seen,
        p.want.len(),
        "receiver missed events: {:?}",
        &p.want[p.seen..]
    );
    let closed = p
        .closed
        .take()
        .expect("receiver: no Closed after the close frame");
    assert!(closed.is_clean(), "receiver: unclean close {closed:?}");
    assert_eq!(closed.code, code, "receiver: close code");
    assert_eq!(closed.reason, "bye");
    assert_eq!(closed.initiator, wsx_proto::Initiator::Remote);

    // The receiver's answers go back: a pong per ping, then its close reply.
    let pings: Vec<Vec<u8>> = p
        .want
        .iter()
        .filter_map(|w| match w {
            Want::Ping(b) => Some(b.clone()),
            _ => None,
        })
        .collect();
    let back = {
        let out = p.rx.transmit();
        out.copy_to_bytes(out.remaining())
    };
    p.tx.handle_data(&back, now);
    let mut pongs = Vec::new();
    let mut tx_closed = None;
    while let Some(e) = p.tx.poll_event() {
        assert!(tx_closed.is_none(), "sender event after Closed: {e:?}");
        match e {
            Event::Pong(b) => pongs.push(b.to_vec()),
            Event::Closed(c) => tx_closed = Some(c),
            other => panic!("sender got {other:?} from the receiver"),
        }
    }
    assert_eq!(pongs, pings, "pongs back differ from the pings sent");
    let c = tx_closed.expect("sender: no Closed after the close reply");
    assert!(c.is_clean(), "sender: unclean close {c:?}");
    assert_eq!(c.code, code, "sender: the reply echoes the code");
    assert_eq!(c.initiator, wsx_proto::Initiator::Local);
});
