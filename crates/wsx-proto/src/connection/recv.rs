//! Input: bytes from the transport and its end, parsed into events. Checks
//! each header against the connection's state, unmasks and validates
//! payloads as they arrive, reassembles messages, answers pings and close
//! frames, and fails the connection on a protocol error (RFC 6455 §7.1.7).

use super::{CloseCause, Closed, Connection, DataKind, Event, Fragment, Initiator, Role, State};
use crate::close::{CloseCode, CloseFrame};
use crate::error::ProtocolError;
use crate::frame::{FrameHeader, OpCode, RSV1};
use crate::mask::apply_mask;
use crate::utf8::Utf8Bytes;
use bytes::{Buf, Bytes, BytesMut};
use std::time::Instant;

/// The frame being parsed, once its header is in.
#[derive(Debug)]
pub(super) struct Current {
    header: FrameHeader,
    /// Payload bytes at the front of `rx` already unmasked and validated.
    processed: usize,
    /// The frame belongs to a text message (text, or a continuation of one).
    text: bool,
}

/// The data message being received, after its first frame.
#[derive(Debug)]
pub(super) struct Partial {
    kind: DataKind,
    /// Assembled payload (unused when delivering fragments).
    buf: BytesMut,
    len: u64,
    /// Frames so far (for `max_fragments`).
    frames: usize,
    /// Compressed (RSV1 on its first frame): `len` counts inflated bytes.
    compressed: bool,
}

/// The read size adapts to the traffic (as Netty's adaptive allocator): a
/// read that fills what was reserved doubles the next, up to `READ_MAX`, so
/// pipelined small frames still arrive many per call; a read that uses a
/// quarter or less halves it, down to `READ_MIN`, so a connection that gets
/// a message now and then keeps only a small buffer between them.
pub(super) const READ_MIN: usize = 4 * 1024;
/// See [`READ_MIN`].
const READ_MAX: usize = 64 * 1024;
/// Never reserve more than this ahead of data actually arriving, so a header
/// announcing a large frame does not allocate its size up front.
const MAX_RESERVE_AHEAD: usize = 256 * 1024;

/// Where a large frame's buffer starts its data, past a page boundary.
///
/// Large buffers come page-aligned from the allocator, as do the buffers
/// they are copied to and from (TLS records, the kernel's socket pages).
/// Copies between two addresses at nearly the same offset in their pages
/// (4K aliasing) run at a fraction of the speed (`rep movsb` here: glibc
/// takes a slower path for them, and the CPU stalls on the false
/// dependencies); half a page apart, they do not alias.
const PAGE_OFFSET: usize = 2048;

/// A buffer for a whole frame of `want` bytes holding `held` (part of its
/// header), its data starting [`PAGE_OFFSET`] into the allocation.
fn off_page_buffer(held: &[u8], want: usize) -> BytesMut {
    let mut buf = BytesMut::with_capacity(PAGE_OFFSET + want.max(held.len()));
    buf.resize(PAGE_OFFSET, 0);
    buf.advance(PAGE_OFFSET);
    buf.extend_from_slice(held);
    buf
}

impl Connection {
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
        self.consume_skipped();
        let size = self.read_size as usize;
        let (want, whole_frame) = match &self.cur {
            // Room for the rest of the current frame, within reason.
            Some(c) => {
                let len = c.header.payload_len as usize;
                let rest = len.saturating_sub(self.rx.len());
                if len >= size && rest > 0 && self.rx.capacity() - self.rx.len() >= rest {
                    // A large frame whose rest fits (its buffer was made
                    // for all of it): growing now would copy what arrived.
                    (0, false)
                } else {
                    (rest.clamp(size, MAX_RESERVE_AHEAD), false)
                }
            }
            // Between frames: what is buffered is at most part of a header.
            None => {
                let hint = self.frame_hint as usize;
                let want = size.max(hint);
                // Grown for traffic that has since slowed down: give it back
                // (once per change of pace, not per message).
                if self.rx.is_empty() && self.rx.capacity() > 2 * want {
                    self.rx = BytesMut::new();
                }
                (want, hint > size)
            }
        };
        if whole_frame {
            // Large frames: room for a whole one like the last, now, which
            // copies next to nothing. Growing the buffer once the frame has
            // half arrived would copy that half (and whether it did would
            // depend on how the bytes arrived). `want` counts the part of a
            // header already here.
            if self.rx.capacity() < want {
                self.rx = off_page_buffer(&self.rx, want);
            }
        } else if self.rx.capacity() - self.rx.len() < want / 2 {
            // Top up at half: small frames come many per read.
            self.rx.reserve(want);
        }
        self.read_mark = (self.rx.len(), self.rx.capacity() - self.rx.len());
        &mut self.rx
    }

    /// Notes that bytes were appended to [`Connection::recv_buffer`] at `now`.
    pub fn handle_received(&mut self, now: Instant) {
        // Adapt the next read's size to this one (after recv_buffer only).
        let (start, spare) = std::mem::take(&mut self.read_mark);
        if spare > 0 {
            let got = self.rx.len().saturating_sub(start);
            let size = self.read_size as usize;
            if got >= spare {
                self.read_size = (size * 2).min(READ_MAX) as u32;
            } else if got * 4 <= size {
                self.read_size = (size / 2).max(READ_MIN) as u32;
            }
        }
        self.last_rx = Some(now);
        self.clock = now;
        self.arm_release(now);
        if self.state == State::Done {
            self.rx.clear();
            self.skip = 0;
            self.held = Default::default();
        }
    }

    /// The transport reached end of stream. Messages already received are
    /// still delivered; then `Closed` (1006 unless the close handshake was done).
    pub fn handle_eof(&mut self) {
        self.eof = true;
    }

    /// The next event, parsing buffered input as needed. `None`: feed more
    /// input (or the connection is over and `Closed` was already reported).
    /// A message [`Connection::poll_in_place`] held is let go first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.release_held();
        self.consume_skipped();
        loop {
            if let Some(closed) = self.pending_closed.take() {
                return Some(Event::Closed(*closed));
            }
            if self.state == State::Done {
                return None;
            }
            match self.whole_data_frame() {
                Some(Ok(ev)) => return Some(ev),
                Some(Err(e)) => {
                    self.fail(e);
                    continue;
                }
                None => {}
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

    /// The common case, parsed without the general machinery: a whole
    /// text or binary message in one frame (FIN, no RSV bits) at the front
    /// of `rx`, between messages, within the limits. `None` leaves
    /// everything else (a partial frame, a control frame, a fragment,
    /// compression, anything `step` would refuse) to `step`, with nothing
    /// consumed; what this accepts, `step` would accept too, with the same
    /// event.
    #[inline]
    fn whole_data_frame(&mut self) -> Option<Result<Event, ProtocolError>> {
        debug_assert_eq!(self.skip, 0, "poll_event consumes what was skipped first");
        let (n, len, text) = match self.whole_data_frame_at_front(0, usize::MAX)? {
            Ok(f) => f,
            Err(e) => return Some(Err(e)),
        };
        // Advancing the shared `Bytes` is a pointer bump; advancing `rx`
        // past the header on its own would cost a second `BytesMut` update.
        let mut payload = self.rx.split_to(n + len).freeze();
        payload.advance(n);
        Some(Ok(if text {
            Event::Text(Utf8Bytes::from_validated(payload))
        } else {
            Event::Binary(payload)
        }))
    }

    /// The checks of [`Connection::whole_data_frame`] for a frame `base`
    /// bytes into `rx` with a payload of at most `max` bytes, then the
    /// payload unmasked and validated where it lies: `(header length,
    /// payload length, text)`, nothing consumed (on an error, the frame is
    /// marked consumed: `skip`).
    #[inline(always)]
    pub(super) fn whole_data_frame_at_front(
        &mut self,
        base: usize,
        max: usize,
    ) -> Option<Result<(usize, usize, bool), ProtocolError>> {
        if self.cur.is_some() || self.msg.is_some() || self.config.deliver_fragments() {
            return None;
        }
        let Ok(Some((h, n))) = FrameHeader::decode(&self.rx[base..]) else {
            return None;
        };
        let text = match h.opcode {
            OpCode::TEXT => true,
            OpCode::BINARY => false,
            _ => return None,
        };
        // Clients mask every frame, servers none (RFC 6455 §5.1).
        if !h.fin || h.rsv != 0 || h.mask.is_some() != (self.role == Role::Server) {
            return None;
        }
        let len = h.payload_len;
        if len > (self.rx.len() - base - n) as u64
            || len > self.config.max_frame_size() as u64
            || len > self.config.max_message_size() as u64
            || len > max as u64
        {
            return None;
        }
        let len = len as usize;
        let payload = &mut self.rx[base + n..base + n + len];
        if let Some(key) = h.mask {
            apply_mask(payload, key, 0);
        }
        if text {
            let ok = self.utf8.feed(payload).and_then(|()| self.utf8.finish());
            if ok.is_err() {
                self.skip = base + n + len;
                return Some(Err(ProtocolError::InvalidUtf8));
            }
        }
        self.frame_hint = (len + FrameHeader::MAX_LEN).min(MAX_RESERVE_AHEAD) as u32;
        self.last_data_rx = self.last_rx;
        Some(Ok((n, len, text)))
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
        // Data frames come in runs of like sizes: the next gets room for one
        // like this (on the wire, header included at its largest).
        if !header.opcode.is_control() {
            self.frame_hint = (len + FrameHeader::MAX_LEN).min(MAX_RESERVE_AHEAD) as u32;
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
                    self.write_control(OpCode::PONG, &payload);
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
    pub(super) fn fail(&mut self, e: ProtocolError) {
        if self.state == State::Open {
            let frame = CloseFrame::new(e.close_code(), short_reason(&e));
            self.write_close(Some(&frame));
            self.sent_close = Some(frame);
        }
        self.end(Initiator::Local, Some(CloseCause::Protocol(e)), None);
    }

    pub(super) fn end(
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
        self.skip = 0;
        self.held = Default::default();
        self.cur = None;
        self.msg = None;
        self.timers.clear_all();
        self.pending_closed = Some(Box::new(Closed {
            code,
            reason,
            initiator,
            sent: self.sent_close.clone(),
            cause,
        }));
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
