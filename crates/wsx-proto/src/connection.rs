//! The connection state machine, after the opening handshake.
//!
//! Input: bytes ([`Connection::handle_data`], or [`Connection::recv_buffer`]
//! then [`Connection::handle_received`]), end of stream
//! ([`Connection::handle_eof`]) and expired timers
//! ([`Connection::handle_timeout`]). Output: events ([`Connection::poll_event`]),
//! bytes to write ([`Connection::transmit`]) and the next deadline
//! ([`Connection::poll_timeout`]). Commands: [`Connection::send`],
//! [`Connection::send_fragment`], [`Connection::close`].

use crate::close::{CloseCode, CloseFrame};
use crate::config::Config;
use crate::error::ProtocolError;
use crate::frame::{FrameHeader, OpCode};
use crate::mask::apply_mask;
use crate::outbuf::OutBuf;
use crate::utf8::{Utf8Bytes, Utf8Validator};
use crate::Message;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha12Rng;
use std::time::{Duration, Instant};

/// Which end of the connection this is. Clients mask what they send; servers
/// must not (RFC 6455 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The end that sent the opening handshake.
    Client,
    /// The end that accepted it.
    Server,
}

/// The kind of a data message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataKind {
    /// UTF-8 text.
    Text,
    /// Arbitrary bytes.
    Binary,
}

/// One data frame, delivered as it arrives when
/// [`Config::deliver_fragments`] is on, or sent with
/// [`Connection::send_fragment`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    /// Text or binary (continuation frames carry the message's kind).
    pub kind: DataKind,
    /// The payload. For text, already validated up to here, but a code point
    /// may straddle two fragments.
    pub data: Bytes,
    /// The first frame of its message.
    pub first: bool,
    /// The last frame of its message.
    pub fin: bool,
}

/// What the connection reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A whole text message.
    Text(Utf8Bytes),
    /// A whole binary message.
    Binary(Bytes),
    /// A data frame (only with [`Config::deliver_fragments`]).
    Fragment(Fragment),
    /// A ping; the pong has already been queued.
    Ping(Bytes),
    /// A pong.
    Pong(Bytes),
    /// The connection is over. Reported exactly once, after every message
    /// that arrived before the end.
    Closed(Closed),
}

/// Who started the closing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initiator {
    /// This end: `close()`, a protocol error it detected, or a timeout.
    Local,
    /// The peer: its close frame, or its disappearance.
    Remote,
}

/// Why a connection ended other than by a clean close handshake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CloseCause {
    /// The peer broke the protocol; the close frame carried its code.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The stream ended without a close frame.
    #[error("the peer closed the TCP connection without a close frame (it crashed, was killed, or a proxy cut the connection)")]
    PeerVanished,
    /// Nothing arrived within the pong timeout after a keepalive ping.
    #[error("peer did not answer a ping within {0:?}: dead peer or a network path that dropped the connection (e.g. a load balancer idle timeout; lower the ping interval)")]
    KeepaliveTimeout(Duration),
    /// The peer did not answer our close frame in time.
    #[error("peer did not answer the close frame within {0:?}")]
    CloseTimeout(Duration),
}

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// The code that describes the end: the peer's close code (1005 if its
    /// close frame had none); else the code this end sent when it failed the
    /// connection (1002, 1007, 1009); else 1006 (no close frame at all).
    pub code: CloseCode,
    /// The peer's close reason, or the error that failed the connection.
    pub reason: String,
    /// Who started it.
    pub initiator: Initiator,
    /// The close frame this end sent, if any.
    pub sent: Option<CloseFrame>,
    /// Set unless the close handshake completed normally.
    pub cause: Option<CloseCause>,
}

impl Closed {
    /// Both close frames were exchanged.
    pub fn is_clean(&self) -> bool {
        self.cause.is_none()
    }
}

/// A command the connection refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// A close frame was sent or received: nothing more may be sent (RFC 6455 §5.5.1).
    #[error("the connection is closing or closed; nothing may be sent after a close frame")]
    Closed,
    /// Control frames carry at most 125 bytes.
    #[error("control frame payload of {0} bytes; the limit is 125")]
    ControlTooLong(usize),
    /// 1005, 1006, 1015 and unassigned codes never go on the wire.
    #[error("close code {0} may not be sent (use 1000-1003, 1007-1014 or 3000-4999)")]
    InvalidCloseCode(CloseCode),
    /// A fragment out of sequence: a continuation with no first fragment, or
    /// a new message before the previous one's last fragment.
    #[error("fragment out of sequence: {0}")]
    FragmentSequence(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// We sent a close frame and wait for the peer's.
    CloseSent,
    /// Closed event queued or delivered.
    Done,
}

#[derive(Debug)]
struct Current {
    header: FrameHeader,
    /// Payload bytes at the front of `rx` already unmasked and validated.
    processed: usize,
    /// The frame belongs to a text message (text, or a continuation of one).
    text: bool,
}

#[derive(Debug)]
struct Partial {
    kind: DataKind,
    /// Assembled payload (unused when delivering fragments).
    buf: BytesMut,
    len: u64,
    /// Frames so far (for `max_fragments`).
    frames: usize,
    /// Compressed (RSV1 on its first frame): `len` counts inflated bytes.
    compressed: bool,
}

/// Read at least this much per read call; big enough for many small frames.
const READ_CHUNK: usize = 64 * 1024;
/// Never reserve more than this ahead of data actually arriving, so a header
/// announcing a large frame does not allocate its size up front.
const MAX_RESERVE_AHEAD: usize = 256 * 1024;

/// A WebSocket connection after the opening handshake: the protocol, no I/O.
///
/// ```
/// use std::time::Instant;
/// use wsx_proto::{Config, Connection, Event, Message};
/// let now = Instant::now();
/// let mut server = Connection::server(Config::default(), now);
/// // The masked "Hello" of RFC 6455 §5.7.
/// server.handle_data(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58], now);
/// let Some(Event::Text(t)) = server.poll_event() else { panic!() };
/// assert_eq!(t, "Hello");
/// server.send(Message::Text(t)).unwrap();
/// let out = server.transmit();
/// assert_eq!(bytes::Buf::chunk(out), &[0x81, 0x05, b'H', b'e', b'l', b'l', b'o']);
/// ```
#[derive(Debug)]
pub struct Connection {
    role: Role,
    config: Config,
    /// Boxed: servers have none, and an idle connection should be small.
    rng: Option<Box<ChaCha12Rng>>,
    state: State,
    rx: BytesMut,
    eof: bool,
    cur: Option<Current>,
    msg: Option<Partial>,
    utf8: Utf8Validator,
    /// Kind of the fragmented message we are sending, if any.
    send_partial: Option<DataKind>,
    out: OutBuf,
    sent_close: Option<CloseFrame>,
    pending_closed: Option<Box<Closed>>,
    last_rx: Option<Instant>,
    next_ping: Option<Instant>,
    ping_sent_at: Option<Instant>,
    ping_payload: u64,
    pong_deadline: Option<Instant>,
    close_deadline: Option<Instant>,
    rtt: Option<Duration>,
    /// When the idle timeout is next checked (`Config::idle_timeout`).
    idle_deadline: Option<Instant>,
    /// Arrival of the last received text/binary frame.
    last_data_rx: Option<Instant>,
    /// A data frame was sent since the last idle check.
    sent_data: bool,
    /// RSV bits of the frame being written (RSV1 for a compressed message).
    next_rsv: u8,
    /// permessage-deflate, when negotiated (the extension seam).
    #[cfg(feature = "deflate")]
    deflate: Option<Box<crate::deflate::Codec>>,
}

/// RSV1: "per-message compressed" under permessage-deflate (RFC 7692 §6).
const RSV1: u8 = 0x40;

impl Connection {
    /// A server-side connection. `now` starts the keepalive timer.
    pub fn server(config: Config, now: Instant) -> Self {
        Self::new(Role::Server, config, None, now)
    }

    /// A client-side connection. `seed` seeds the CSPRNG (ChaCha12) that
    /// makes masking keys: pass 32 bytes from the OS in production, a
    /// constant in tests.
    pub fn client(config: Config, seed: [u8; 32], now: Instant) -> Self {
        Self::new(
            Role::Client,
            config,
            Some(Box::new(ChaCha12Rng::from_seed(seed))),
            now,
        )
    }

    fn new(role: Role, config: Config, rng: Option<Box<ChaCha12Rng>>, now: Instant) -> Self {
        let next_ping = config.ping_interval().map(|i| now + i);
        let idle_deadline = config.idle_timeout().map(|t| now + t);
        Connection {
            role,
            config,
            rng,
            state: State::Open,
            rx: BytesMut::new(),
            eof: false,
            cur: None,
            msg: None,
            utf8: Utf8Validator::default(),
            send_partial: None,
            out: OutBuf::default(),
            sent_close: None,
            pending_closed: None,
            last_rx: None,
            next_ping,
            ping_sent_at: None,
            ping_payload: 0,
            pong_deadline: None,
            close_deadline: None,
            rtt: None,
            idle_deadline,
            last_data_rx: None,
            sent_data: false,
            next_rsv: 0,
            #[cfg(feature = "deflate")]
            deflate: None,
        }
    }

    /// Turns on permessage-deflate as negotiated in the handshake; call it
    /// before any frame is handled or sent.
    #[cfg(feature = "deflate")]
    pub fn enable_deflate(&mut self, negotiated: crate::deflate::Negotiated) {
        self.deflate = Some(Box::new(crate::deflate::Codec::new(negotiated)));
    }

    /// The permessage-deflate agreement, if one was made.
    #[cfg(feature = "deflate")]
    pub fn deflate(&self) -> Option<&crate::deflate::Negotiated> {
        self.deflate
            .as_deref()
            .map(crate::deflate::Codec::negotiated)
    }

    fn compression_on(&self) -> bool {
        #[cfg(feature = "deflate")]
        return self.deflate.is_some();
        #[cfg(not(feature = "deflate"))]
        false
    }

    /// This end's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The round-trip time measured by the last answered keepalive ping.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// Whether the connection has ended (the `Closed` event is queued or delivered).
    pub fn is_closed(&self) -> bool {
        self.state == State::Done
    }

    /// Whether a close frame was sent or received: no data may be sent.
    pub fn is_closing(&self) -> bool {
        self.state != State::Open
    }

    // ---- input -------------------------------------------------------------

    /// Copies received bytes in. `now` is when they arrived.
    pub fn handle_data(&mut self, data: &[u8], now: Instant) {
        if self.state == State::Done {
            return;
        }
        self.rx.extend_from_slice(data);
        self.handle_received(now);
    }

    /// The buffer to read the transport into, with spare capacity reserved.
    /// Append to it (e.g. `read_buf`), then call [`Connection::handle_received`].
    pub fn recv_buffer(&mut self) -> &mut BytesMut {
        let want = match &self.cur {
            // Room for the rest of the current frame, within reason.
            Some(c) => (c.header.payload_len as usize)
                .saturating_sub(self.rx.len())
                .clamp(READ_CHUNK, MAX_RESERVE_AHEAD),
            None => READ_CHUNK,
        };
        if self.rx.capacity() - self.rx.len() < want / 2 {
            self.rx.reserve(want);
        }
        &mut self.rx
    }

    /// Notes that bytes were appended to [`Connection::recv_buffer`] at `now`.
    pub fn handle_received(&mut self, now: Instant) {
        self.last_rx = Some(now);
        if self.state == State::Done {
            self.rx.clear();
        }
    }

    /// The transport reached end of stream. Messages already received are
    /// still delivered; then `Closed` (1006 unless the close handshake was done).
    pub fn handle_eof(&mut self) {
        self.eof = true;
    }

    /// Lets timers act: keepalive pings, the pong deadline, the close
    /// timeout. Calling it early is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Done {
            return;
        }
        if let Some(d) = self.close_deadline {
            if now >= d {
                self.close_deadline = None;
                self.end(
                    Initiator::Local,
                    Some(CloseCause::CloseTimeout(self.config.close_timeout())),
                    None,
                );
                return;
            }
        }
        if let Some(d) = self.pong_deadline {
            if now >= d {
                self.pong_deadline = None;
                let heard =
                    matches!((self.last_rx, self.ping_sent_at), (Some(rx), Some(p)) if rx >= p);
                if !heard {
                    self.end(
                        Initiator::Local,
                        Some(CloseCause::KeepaliveTimeout(self.config.pong_timeout())),
                        None,
                    );
                    return;
                }
            }
        }
        if let (Some(d), Some(idle)) = (self.idle_deadline, self.config.idle_timeout()) {
            if now >= d {
                // Sends carry no timestamp: count one as happening now.
                let sent = std::mem::take(&mut self.sent_data).then_some(now + idle);
                let next = self.last_data_rx.map(|t| t + idle).max(sent);
                match next.filter(|n| *n > now) {
                    Some(n) => self.idle_deadline = Some(n),
                    None => {
                        self.idle_deadline = None;
                        let reason = format!("idle: no messages for {} s", idle.as_secs_f64());
                        let _ =
                            self.close(Some(CloseFrame::new(CloseCode::GOING_AWAY, reason)), now);
                        return;
                    }
                }
            }
        }
        if let (Some(t), Some(interval)) = (self.next_ping, self.config.ping_interval()) {
            if now >= t {
                self.next_ping = Some(now + interval);
                if self.state == State::Open {
                    self.ping_payload = self.ping_payload.wrapping_add(1);
                    let payload = self.ping_payload.to_be_bytes();
                    self.write_frame(OpCode::PING, true, &payload);
                    self.ping_sent_at = Some(now);
                    if self.pong_deadline.is_none() {
                        self.pong_deadline = Some(now + self.config.pong_timeout());
                    }
                }
            }
        }
    }

    // ---- output ------------------------------------------------------------

    /// The next deadline at which [`Connection::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Done {
            return None;
        }
        [
            self.close_deadline,
            self.pong_deadline,
            self.next_ping,
            self.idle_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Bytes waiting to be written, as a [`bytes::Buf`]: write its chunks,
    /// then `advance` by what the transport took.
    pub fn transmit(&mut self) -> &mut OutBuf {
        &mut self.out
    }

    /// Bytes waiting to be written.
    pub fn pending_output(&self) -> usize {
        self.out.len()
    }

    /// Whether the receive buffer is allocated (see [`Connection::shrink_buffers`]).
    pub fn has_recv_buffer(&self) -> bool {
        self.rx.capacity() > 0
    }

    /// Releases idle buffers (call when nothing is in flight) so that an idle
    /// connection holds as little memory as possible.
    pub fn shrink_buffers(&mut self) {
        if self.rx.is_empty() && self.cur.is_none() && self.rx.capacity() > 0 {
            self.rx = BytesMut::new();
        }
        self.out.shrink_if_empty();
        // Mid-message, the inflater holds the message's state: keep it.
        #[cfg(feature = "deflate")]
        if let (Some(codec), None) = (self.deflate.as_mut(), &self.msg) {
            codec.release_idle();
        }
    }

    /// The next event, parsing buffered input as needed. `None`: feed more
    /// input (or the connection is over and `Closed` was already reported).
    pub fn poll_event(&mut self) -> Option<Event> {
        loop {
            if let Some(closed) = self.pending_closed.take() {
                return Some(Event::Closed(*closed));
            }
            if self.state == State::Done {
                return None;
            }
            let before = self.rx.len();
            match self.step() {
                Ok(Some(ev)) => return Some(ev),
                // A whole frame was consumed without an event (a non-final
                // fragment, a close): more may be buffered, parse on.
                Ok(None) if self.cur.is_none() && self.rx.len() < before => {}
                Ok(None) if self.eof => {
                    self.end(Initiator::Remote, Some(CloseCause::PeerVanished), None);
                }
                Ok(None) => return None,
                Err(e) => self.fail(e),
            }
        }
    }

    /// Parses at most one frame (or the part of one that has arrived).
    #[inline]
    fn step(&mut self) -> Result<Option<Event>, ProtocolError> {
        let (header, processed, text) = match self.cur.take() {
            Some(c) => (c.header, c.processed, c.text),
            None => {
                let Some((header, n)) = FrameHeader::decode(&self.rx)? else {
                    return Ok(None);
                };
                let text = self.check_header(&header)?;
                self.rx.advance(n);
                (header, 0, text)
            }
        };
        let len = header.payload_len as usize; // bounded by max_frame_size
        let avail = self.rx.len().min(len);
        if avail > processed {
            let chunk = &mut self.rx[processed..avail];
            if let Some(key) = header.mask {
                apply_mask(chunk, key, processed);
            }
            if text {
                // Validate as it arrives, to fail at the first bad byte.
                self.utf8
                    .feed(chunk)
                    .map_err(|_| ProtocolError::InvalidUtf8)?;
            }
        }
        if avail < len {
            self.cur = Some(Current {
                header,
                processed: avail,
                text,
            });
            return Ok(None);
        }
        let payload = self.rx.split_to(len).freeze();
        self.handle_frame(header, payload)
    }

    /// Checks a header against the connection's state; returns whether its
    /// payload is text.
    fn check_header(&self, h: &FrameHeader) -> Result<bool, ProtocolError> {
        // RFC 6455 §5.2: "MUST be 0 unless an extension is negotiated that
        // defines meanings for non-zero values". permessage-deflate defines
        // RSV1 on the first frame of a data message (RFC 7692 §6).
        let rsv1 = h.rsv & RSV1 != 0 && self.compression_on();
        if h.rsv & !if rsv1 { RSV1 } else { 0 } != 0 {
            return Err(ProtocolError::ReservedBitsSet(h.rsv >> 4));
        }
        if rsv1 && (h.opcode.is_control() || h.opcode == OpCode::CONTINUATION) {
            return Err(ProtocolError::CompressedBitMisplaced(h.opcode));
        }
        if h.opcode.is_reserved() {
            return Err(ProtocolError::ReservedOpcode(h.opcode.as_u8()));
        }
        // RFC 6455 §5.1: clients mask every frame, servers none.
        match (self.role, h.mask.is_some()) {
            (Role::Server, false) => return Err(ProtocolError::UnmaskedClientFrame),
            (Role::Client, true) => return Err(ProtocolError::MaskedServerFrame),
            _ => {}
        }
        if h.opcode.is_control() {
            // RFC 6455 §5.5: "All control frames MUST have a payload length of
            // 125 bytes or less and MUST NOT be fragmented."
            if !h.fin {
                return Err(ProtocolError::FragmentedControlFrame(h.opcode));
            }
            if h.payload_len > 125 {
                return Err(ProtocolError::ControlFrameTooLong {
                    opcode: h.opcode,
                    len: h.payload_len,
                });
            }
            return Ok(false);
        }
        let max_frame = self.config.max_frame_size();
        if h.payload_len > max_frame as u64 {
            return Err(ProtocolError::FrameTooLarge {
                len: h.payload_len,
                max: max_frame,
            });
        }
        let (kind, so_far, compressed) = match (h.opcode, &self.msg) {
            (OpCode::CONTINUATION, None) => return Err(ProtocolError::UnexpectedContinuation),
            (OpCode::CONTINUATION, Some(m)) => {
                if m.frames >= self.config.max_fragments() {
                    return Err(ProtocolError::TooManyFragments {
                        max: self.config.max_fragments(),
                    });
                }
                let avg = self.config.min_fragment_average() as u64;
                if avg > 0
                    && m.frames >= crate::config::FREE_FRAGMENTS
                    && (m.frames - crate::config::FREE_FRAGMENTS) as u64 * avg >= m.len
                {
                    return Err(ProtocolError::TinyFragments {
                        frames: m.frames + 1,
                        bytes: m.len,
                        average: self.config.min_fragment_average(),
                    });
                }
                (m.kind, m.len, m.compressed)
            }
            (op, Some(_)) => return Err(ProtocolError::ExpectedContinuation(op)),
            (OpCode::TEXT, None) => (DataKind::Text, 0, rsv1),
            (_, None) => (DataKind::Binary, 0, rsv1),
        };
        // A compressed message is measured after inflation (which stops at
        // the limit); its frames are bounded by max_frame_size above.
        let total = so_far + h.payload_len;
        let max_msg = self.config.max_message_size();
        if !compressed && total > max_msg as u64 {
            return Err(ProtocolError::MessageTooLarge {
                len: total,
                max: max_msg,
            });
        }
        // Compressed text is validated once inflated.
        Ok(kind == DataKind::Text && !compressed)
    }

    fn handle_frame(
        &mut self,
        h: FrameHeader,
        payload: Bytes,
    ) -> Result<Option<Event>, ProtocolError> {
        match h.opcode {
            OpCode::PING => {
                // RFC 6455 §5.5.2: answer with a pong carrying the same data,
                // unless we already sent a close frame.
                if self.state == State::Open {
                    self.write_frame(OpCode::PONG, true, &payload);
                }
                Ok(Some(Event::Ping(payload)))
            }
            OpCode::PONG => {
                if let Some(sent) = self.ping_sent_at {
                    if payload[..] == self.ping_payload.to_be_bytes() {
                        self.rtt = self.last_rx.map(|rx| rx.saturating_duration_since(sent));
                    }
                }
                Ok(Some(Event::Pong(payload)))
            }
            OpCode::CLOSE => {
                let frame = CloseFrame::parse(&payload)?;
                self.handle_close(frame);
                Ok(None)
            }
            _ => self.handle_data_frame(h, payload),
        }
    }

    fn handle_data_frame(
        &mut self,
        h: FrameHeader,
        payload: Bytes,
    ) -> Result<Option<Event>, ProtocolError> {
        self.last_data_rx = self.last_rx;
        let first = h.opcode != OpCode::CONTINUATION;
        let (kind, compressed, so_far) = match (&self.msg, h.opcode) {
            (Some(m), _) => (m.kind, m.compressed, m.len),
            (None, OpCode::TEXT) => (DataKind::Text, h.rsv & RSV1 != 0, 0),
            (None, _) => (DataKind::Binary, h.rsv & RSV1 != 0, 0),
        };
        let payload = if compressed {
            self.inflate(&payload, h.fin, so_far, kind)?
        } else {
            payload
        };
        if h.fin && kind == DataKind::Text {
            self.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        if self.config.deliver_fragments() {
            self.msg = if h.fin {
                None
            } else {
                let (len, frames) = self.msg.as_ref().map_or((0, 0), |m| (m.len, m.frames));
                Some(Partial {
                    kind,
                    buf: BytesMut::new(),
                    len: len + payload.len() as u64,
                    frames: frames + 1,
                    compressed,
                })
            };
            return Ok(Some(Event::Fragment(Fragment {
                kind,
                data: payload,
                first,
                fin: h.fin,
            })));
        }
        let payload = match (self.msg.take(), h.fin) {
            (None, true) => payload,
            (None, false) => {
                let mut buf = BytesMut::with_capacity(payload.len().max(1024));
                buf.extend_from_slice(&payload);
                self.msg = Some(Partial {
                    kind,
                    buf,
                    len: payload.len() as u64,
                    frames: 1,
                    compressed,
                });
                return Ok(None);
            }
            (Some(mut m), fin) => {
                m.buf.extend_from_slice(&payload);
                m.len += payload.len() as u64;
                m.frames += 1;
                if !fin {
                    self.msg = Some(m);
                    return Ok(None);
                }
                m.buf.freeze()
            }
        };
        Ok(Some(match kind {
            DataKind::Text => Event::Text(Utf8Bytes::from_validated(payload)),
            DataKind::Binary => Event::Binary(payload),
        }))
    }

    /// Inflates one frame of a compressed message, within the message limit.
    #[cfg(feature = "deflate")]
    fn inflate(
        &mut self,
        payload: &[u8],
        fin: bool,
        so_far: u64,
        kind: DataKind,
    ) -> Result<Bytes, ProtocolError> {
        use crate::deflate::InflateError;
        let max = self.config.max_message_size();
        let limit = max.saturating_sub(so_far as usize);
        let codec = self
            .deflate
            .as_mut()
            .expect("RSV1 accepted only with deflate on");
        let mut out = Vec::new();
        codec
            .decompress(payload, fin, &mut out, limit)
            .map_err(|e| match e {
                InflateError::TooLarge(n) => ProtocolError::MessageTooLarge {
                    len: so_far + n,
                    max,
                },
                InflateError::Invalid(why) => ProtocolError::InvalidCompressedData(why),
            })?;
        if kind == DataKind::Text {
            self.utf8
                .feed(&out)
                .map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        Ok(Bytes::from(out))
    }

    #[cfg(not(feature = "deflate"))]
    fn inflate(&mut self, _: &[u8], _: bool, _: u64, _: DataKind) -> Result<Bytes, ProtocolError> {
        unreachable!("RSV1 is refused without the deflate feature")
    }

    fn handle_close(&mut self, frame: Option<CloseFrame>) {
        match self.state {
            State::Open => {
                // RFC 6455 §5.5.1: answer with a close frame, typically
                // echoing the status code received.
                let reply = frame.as_ref().map(|f| CloseFrame::new(f.code, ""));
                self.write_close(reply.as_ref());
                self.sent_close = reply;
                self.end(Initiator::Remote, None, frame);
            }
            State::CloseSent => self.end(Initiator::Local, None, frame),
            State::Done => {}
        }
    }

    /// Fails the connection (RFC 6455 §7.1.7): send a close frame with the
    /// error's code unless one was sent, and stop reading.
    fn fail(&mut self, e: ProtocolError) {
        if self.state == State::Open {
            let frame = CloseFrame::new(e.close_code(), short_reason(&e));
            self.write_close(Some(&frame));
            self.sent_close = Some(frame);
        }
        self.end(Initiator::Local, Some(CloseCause::Protocol(e)), None);
    }

    fn end(
        &mut self,
        initiator: Initiator,
        cause: Option<CloseCause>,
        received: Option<CloseFrame>,
    ) {
        if self.state == State::Done {
            return;
        }
        let (code, reason) = match (&received, &cause, &self.sent_close) {
            (Some(f), _, _) => (f.code, f.reason.clone()),
            (None, None, _) => (CloseCode::NO_STATUS, String::new()),
            (None, Some(CloseCause::Protocol(e)), _) => (e.close_code(), e.to_string()),
            (None, Some(c), _) => (CloseCode::ABNORMAL, c.to_string()),
        };
        self.state = State::Done;
        self.rx = BytesMut::new();
        self.cur = None;
        self.msg = None;
        self.close_deadline = None;
        self.pong_deadline = None;
        self.next_ping = None;
        self.idle_deadline = None;
        self.pending_closed = Some(Box::new(Closed {
            code,
            reason,
            initiator,
            sent: self.sent_close.clone(),
            cause,
        }));
    }

    // ---- commands ----------------------------------------------------------

    /// Queues a message. Text and binary are refused once a close frame was
    /// sent or received; so are pings and pongs.
    pub fn send(&mut self, msg: Message) -> Result<(), SendError> {
        self.send_with(msg, true)
    }

    /// Queues a message without compressing it, whatever was negotiated
    /// (e.g. data that is already compressed, or latency-critical).
    pub fn send_uncompressed(&mut self, msg: Message) -> Result<(), SendError> {
        self.send_with(msg, false)
    }

    fn send_with(&mut self, msg: Message, compress: bool) -> Result<(), SendError> {
        if self.state != State::Open {
            return Err(SendError::Closed);
        }
        let (op, payload) = match msg {
            Message::Text(t) => (OpCode::TEXT, t.into_bytes()),
            Message::Binary(b) => (OpCode::BINARY, b),
            Message::Ping(p) => (OpCode::PING, p),
            Message::Pong(p) => (OpCode::PONG, p),
        };
        if op.is_control() {
            if payload.len() > 125 {
                return Err(SendError::ControlTooLong(payload.len()));
            }
        } else if self.send_partial.is_some() {
            return Err(SendError::FragmentSequence(
                "a fragmented message is being sent; finish it with a fin fragment first",
            ));
        } else {
            self.sent_data = true;
            #[cfg(feature = "deflate")]
            if let Some(codec) = self
                .deflate
                .as_mut()
                .filter(|c| compress && c.should_compress(payload.len()))
            {
                // RFC 7692 §7.2.1: the whole message is compressed, RSV1
                // on its first frame only.
                let z = Bytes::from(codec.compress(&payload));
                self.write_message(op, RSV1, z);
                return Ok(());
            }
            let _ = compress;
            self.write_message(op, 0, payload);
            return Ok(());
        }
        self.write_frame_bytes(op, true, payload);
        Ok(())
    }

    /// Encodes a data message as one frame, or as several when it is longer
    /// than [`Config::send_frame_size`]; `rsv` goes on the first frame.
    fn write_message(&mut self, op: OpCode, rsv: u8, payload: Bytes) {
        let limit = self.config.send_frame_size().unwrap_or(usize::MAX);
        if payload.len() <= limit {
            self.next_rsv = rsv;
            self.write_frame_bytes(op, true, payload);
            self.next_rsv = 0;
            return;
        }
        let mut rest = payload;
        let mut first = true;
        while !rest.is_empty() {
            let chunk = rest.split_to(limit.min(rest.len()));
            let (op, rsv) = if first {
                (op, rsv)
            } else {
                (OpCode::CONTINUATION, 0)
            };
            self.next_rsv = rsv;
            self.write_frame_bytes(op, rest.is_empty(), chunk);
            first = false;
        }
        self.next_rsv = 0;
    }

    /// Queues a message encoded once for many connections (broadcast): a
    /// server shares the encoded frame; a client, which must mask with its
    /// own key, encodes the message itself.
    pub fn send_prepared(&mut self, prepared: &PreparedMessage) -> Result<(), SendError> {
        if self.role == Role::Client {
            return self.send(prepared.message.clone());
        }
        if self.state != State::Open {
            return Err(SendError::Closed);
        }
        if self.send_partial.is_some() && !prepared.is_control {
            return Err(SendError::FragmentSequence(
                "a fragmented message is being sent; finish it with a fin fragment first",
            ));
        }
        self.sent_data |= !prepared.is_control;
        self.out.push_payload(prepared.frame.clone());
        Ok(())
    }

    /// Queues one data frame of a fragmented message. The first fragment
    /// sets the kind; the last has `fin`. Control messages may be sent in between.
    pub fn send_fragment(&mut self, fragment: Fragment) -> Result<(), SendError> {
        if self.state != State::Open {
            return Err(SendError::Closed);
        }
        let op = match (self.send_partial, fragment.first) {
            (None, true) => match fragment.kind {
                DataKind::Text => OpCode::TEXT,
                DataKind::Binary => OpCode::BINARY,
            },
            (Some(_), false) => OpCode::CONTINUATION,
            (None, false) => {
                return Err(SendError::FragmentSequence(
                    "continuation fragment without a first fragment",
                ))
            }
            (Some(_), true) => {
                return Err(SendError::FragmentSequence(
                    "first fragment while the previous message is unfinished",
                ))
            }
        };
        self.sent_data = true;
        self.send_partial = if fragment.fin {
            None
        } else {
            Some(fragment.kind)
        };
        self.write_frame_bytes(op, fragment.fin, fragment.data);
        Ok(())
    }

    /// Starts the closing handshake. `None` sends a close frame without a
    /// code (the peer sees 1005). The peer's reply (or the close timeout)
    /// ends the connection.
    pub fn close(&mut self, frame: Option<CloseFrame>, now: Instant) -> Result<(), SendError> {
        if self.state != State::Open {
            return Err(SendError::Closed);
        }
        if let Some(f) = &frame {
            if !f.code.is_sendable() {
                return Err(SendError::InvalidCloseCode(f.code));
            }
        }
        self.write_close(frame.as_ref());
        self.sent_close = frame;
        self.state = State::CloseSent;
        self.close_deadline = Some(now + self.config.close_timeout());
        self.idle_deadline = None;
        Ok(())
    }

    // ---- encoding ----------------------------------------------------------

    fn write_close(&mut self, frame: Option<&CloseFrame>) {
        let payload = frame.map(CloseFrame::encode).unwrap_or_default();
        self.write_frame(OpCode::CLOSE, true, &payload);
    }

    fn mask_key(&mut self) -> Option<[u8; 4]> {
        self.rng.as_mut().map(|r| r.next_u32().to_ne_bytes())
    }

    fn header(&mut self, op: OpCode, fin: bool, len: usize) -> FrameHeader {
        FrameHeader {
            fin,
            rsv: self.next_rsv,
            opcode: op,
            mask: self.mask_key(),
            payload_len: len as u64,
        }
    }

    /// Encodes a frame by copying `payload`.
    fn write_frame(&mut self, op: OpCode, fin: bool, payload: &[u8]) {
        let h = self.header(op, fin, payload.len());
        let mut hb = [0u8; FrameHeader::MAX_LEN];
        let n = h.encode(&mut hb);
        let tail = self.out.tail_mut();
        tail.reserve(n + payload.len());
        tail.put_slice(&hb[..n]);
        let start = tail.len();
        tail.put_slice(payload);
        if let Some(key) = h.mask {
            apply_mask(&mut tail[start..], key, 0);
        }
    }

    /// Encodes a frame, sharing `payload` when no masking is needed.
    #[inline]
    fn write_frame_bytes(&mut self, op: OpCode, fin: bool, payload: Bytes) {
        if self.role == Role::Client {
            return self.write_frame(op, fin, &payload);
        }
        let h = FrameHeader {
            fin,
            rsv: self.next_rsv,
            opcode: op,
            mask: None,
            payload_len: payload.len() as u64,
        };
        let mut hb = [0u8; FrameHeader::MAX_LEN];
        let n = h.encode(&mut hb);
        self.out.push_frame(&hb[..n], payload);
    }
}

/// A message encoded once as an unmasked (server) frame, to be sent on many
/// connections without encoding or copying it again.
///
/// ```
/// use std::time::Instant;
/// use wsx_proto::{Config, Connection, Message, PreparedMessage};
/// let shared = PreparedMessage::new(Message::text("to everyone")).unwrap();
/// let mut a = Connection::server(Config::default(), Instant::now());
/// a.send_prepared(&shared).unwrap();
/// assert_eq!(a.pending_output(), 2 + 11);
/// ```
#[derive(Debug, Clone)]
pub struct PreparedMessage {
    frame: Bytes,
    message: Message,
    is_control: bool,
}

impl PreparedMessage {
    /// Encodes `message`.
    ///
    /// # Errors
    /// A ping or pong payload over 125 bytes.
    pub fn new(message: Message) -> Result<Self, SendError> {
        let (op, payload) = match &message {
            Message::Text(t) => (OpCode::TEXT, t.as_bytes().clone()),
            Message::Binary(b) => (OpCode::BINARY, b.clone()),
            Message::Ping(p) => (OpCode::PING, p.clone()),
            Message::Pong(p) => (OpCode::PONG, p.clone()),
        };
        if op.is_control() && payload.len() > 125 {
            return Err(SendError::ControlTooLong(payload.len()));
        }
        let h = FrameHeader {
            fin: true,
            rsv: 0,
            opcode: op,
            mask: None,
            payload_len: payload.len() as u64,
        };
        let mut hb = [0u8; FrameHeader::MAX_LEN];
        let n = h.encode(&mut hb);
        let mut frame = BytesMut::with_capacity(n + payload.len());
        frame.put_slice(&hb[..n]);
        frame.put_slice(&payload);
        Ok(PreparedMessage {
            frame: frame.freeze(),
            is_control: op.is_control(),
            message,
        })
    }

    /// The message.
    pub fn message(&self) -> &Message {
        &self.message
    }
}

/// A close reason that fits in a close frame (123 bytes).
fn short_reason(e: &ProtocolError) -> String {
    let s = match e {
        ProtocolError::InvalidUtf8 => "invalid UTF-8 in text message".to_string(),
        ProtocolError::FrameTooLarge { max, .. } => format!("frame exceeds {max} bytes"),
        ProtocolError::MessageTooLarge { max, .. } => format!("message exceeds {max} bytes"),
        other => {
            let full = other.to_string();
            // Keep the part before any explanation in parentheses.
            full.split(" (RFC").next().unwrap_or(&full).to_string()
        }
    };
    let mut s = s;
    if s.len() > crate::close::MAX_REASON_LEN {
        let mut end = crate::close::MAX_REASON_LEN;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}
