//! Commands from the application (send, send a fragment, close) and the
//! frames they write. Every frame leaves through the connection's
//! [`OutBuf`](crate::OutBuf), encoded by `frame::encode_frame_into`.

use super::timers::Timer;
use super::{Connection, DataKind, Fragment, PreparedMessage, Role, SendError, State};
use crate::close::CloseFrame;
use crate::frame::{FrameHeader, OpCode};
use crate::Message;
use bytes::Bytes;
use rand_chacha::rand_core::RngCore;
use std::time::Instant;

impl Connection {
    /// Queues a message. Text and binary are refused once a close frame was
    /// sent or received; so are pings and pongs.
    #[inline]
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
        let (op, payload) = frame_parts(msg);
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
                self.write_message(op, crate::frame::RSV1, z);
                return Ok(());
            }
            let _ = compress;
            self.write_message(op, 0, payload);
            return Ok(());
        }
        self.write_frame_bytes(op, 0, true, payload);
        Ok(())
    }

    /// Encodes a data message as one frame, or as several when it is longer
    /// than `Config::send_frame_size`; `rsv` goes on the first frame.
    #[inline(always)]
    fn write_message(&mut self, op: OpCode, rsv: u8, payload: Bytes) {
        let limit = self.config.send_frame_size().unwrap_or(usize::MAX);
        if payload.len() <= limit {
            self.write_frame_bytes(op, rsv, true, payload);
            return;
        }
        self.write_fragmented(op, rsv, payload, limit);
    }

    /// The rare case of [`Connection::write_message`], out of line so the
    /// common one inlines.
    #[inline(never)]
    fn write_fragmented(&mut self, op: OpCode, rsv: u8, payload: Bytes, limit: usize) {
        let mut rest = payload;
        let mut first = true;
        while !rest.is_empty() {
            let chunk = rest.split_to(limit.min(rest.len()));
            let (op, rsv) = if first {
                (op, rsv)
            } else {
                (OpCode::CONTINUATION, 0)
            };
            self.write_frame_bytes(op, rsv, rest.is_empty(), chunk);
            first = false;
        }
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
        self.note_sent();
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
        self.write_frame_bytes(op, 0, fragment.fin, fragment.data);
        Ok(())
    }

    /// Starts the closing handshake. `None` sends a close frame without a
    /// code (the peer sees 1005). The peer's reply (or the close timeout)
    /// ends the connection.
    pub fn close(&mut self, frame: Option<CloseFrame>, now: Instant) -> Result<(), SendError> {
        if self.state != State::Open {
            return Err(SendError::Closed);
        }
        self.clock = now;
        if let Some(f) = &frame {
            if !f.code.is_sendable() {
                return Err(SendError::InvalidCloseCode(f.code));
            }
        }
        self.write_close(frame.as_ref());
        self.sent_close = frame;
        self.state = State::CloseSent;
        self.timers
            .set(Timer::Close, now + self.config.close_timeout());
        self.timers.clear(Timer::Idle);
        Ok(())
    }

    // ---- encoding ----------------------------------------------------------

    pub(super) fn write_close(&mut self, frame: Option<&CloseFrame>) {
        let payload = frame.map(CloseFrame::encode).unwrap_or_default();
        self.write_control(OpCode::CLOSE, &payload);
    }

    /// A header for a frame of `len` bytes; a client's carries a fresh
    /// masking key.
    fn header(&mut self, op: OpCode, rsv: u8, fin: bool, len: usize) -> FrameHeader {
        FrameHeader {
            fin,
            rsv,
            opcode: op,
            mask: self.rng.as_mut().map(|r| r.next_u32().to_ne_bytes()),
            payload_len: len as u64,
        }
    }

    /// Queues a control frame (close, ping, pong), copying `payload`.
    pub(super) fn write_control(&mut self, op: OpCode, payload: &[u8]) {
        let h = self.header(op, 0, true, payload.len());
        self.out.push_frame_slice(&h, payload);
        self.note_sent();
    }

    /// Queues a frame, sharing `payload` when it needs no masking.
    #[inline(always)]
    fn write_frame_bytes(&mut self, op: OpCode, rsv: u8, fin: bool, payload: Bytes) {
        let h = self.header(op, rsv, fin, payload.len());
        self.out.push_frame(&h, payload);
        self.note_sent();
    }
}

/// The opcode and payload that carry `msg`.
pub(super) fn frame_parts(msg: Message) -> (OpCode, Bytes) {
    match msg {
        Message::Text(t) => (OpCode::TEXT, t.into_bytes()),
        Message::Binary(b) => (OpCode::BINARY, b),
        Message::Ping(p) => (OpCode::PING, p),
        Message::Pong(p) => (OpCode::PONG, p),
    }
}
