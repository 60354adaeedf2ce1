//! Receiving in place: a whole one-frame text or binary message is read
//! where it arrived, in the receive buffer, instead of being split off as a
//! `Bytes` (a reference count taken and dropped per message, and a
//! shared-buffer bookkeeping step: a fifth of the instructions of echoing
//! a small message). The message stays held until the next poll; it can be
//! read, or queued back (echoed) with one copy into the send buffer.

use super::{Connection, DataKind, Event, SendError, State};
use crate::frame::{FrameHeader, OpCode};
use crate::utf8::Utf8Bytes;
use crate::Message;
use bytes::{Buf, Bytes};

/// A whole text or binary message held in the receive buffer, unmasked and
/// validated (text is valid UTF-8): read it with [`Connection::held`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// Text or binary.
    pub kind: DataKind,
    /// Payload length in bytes.
    pub len: usize,
}

/// What [`Connection::poll_in_place`] found.
#[derive(Debug, PartialEq)]
pub enum Polled {
    /// A message held in place until the next poll.
    Held(Held),
    /// Anything else, as [`Connection::poll_event`] returns it.
    Event(Event),
}

impl Connection {
    /// As [`Connection::poll_event`], except that a whole one-frame text or
    /// binary message of at most `max` bytes is not split off: it stays in
    /// the receive buffer, held until the next poll, and is read with
    /// [`Connection::held`] or queued back with [`Connection::echo_held`].
    /// Fragmented and compressed messages, and larger ones, come as events.
    ///
    /// Large payloads are better split off (`max` below 4 KiB, say): an
    /// owned one is sent back without a copy, a held one with one.
    ///
    /// ```
    /// use std::time::Instant;
    /// use wsx_proto::{Config, Connection, DataKind, Held, Polled};
    /// let now = Instant::now();
    /// let mut server = Connection::server(Config::default(), now);
    /// server.handle_data(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58], now);
    /// let Some(Polled::Held(Held { kind: DataKind::Text, len: 5 })) = server.poll_in_place(usize::MAX) else { panic!() };
    /// assert_eq!(server.held(), Some(&b"Hello"[..]));
    /// server.echo_held().unwrap();
    /// assert_eq!(bytes::Buf::chunk(server.transmit()), b"\x81\x05Hello");
    /// assert!(server.poll_in_place(usize::MAX).is_none());
    /// ```
    #[inline]
    pub fn poll_in_place(&mut self, max: usize) -> Option<Polled> {
        self.release_held();
        if self.pending_closed.is_none() && self.state != State::Done {
            match self.whole_data_frame_at_front(self.skip, max) {
                Some(Ok((n, len, text))) => {
                    let start = self.skip + n;
                    self.held = HeldAt {
                        start,
                        text,
                        end: start + len,
                    };
                    let kind = if text {
                        DataKind::Text
                    } else {
                        DataKind::Binary
                    };
                    return Some(Polled::Held(Held { kind, len }));
                }
                Some(Err(e)) => self.fail(e),
                None => {}
            }
        }
        self.poll_event().map(Polled::Event)
    }

    /// The payload of the message [`Connection::poll_in_place`] holds, if
    /// it holds one (until the next poll).
    pub fn held(&self) -> Option<&[u8]> {
        let h = &self.held;
        (h.end != 0).then(|| &self.rx[h.start..h.end])
    }

    /// An owned copy of the held message, as [`Connection::poll_event`]
    /// would have given it.
    pub fn held_message(&self) -> Option<Message> {
        let data = Bytes::copy_from_slice(self.held()?);
        Some(if self.held.text {
            Message::Text(Utf8Bytes::from_validated(data))
        } else {
            Message::Binary(data)
        })
    }

    /// Queues the held message back to the peer (same kind, same payload),
    /// copying it once, and lets it go. Refused as [`Connection::send`]
    /// refuses data (closing, mid-fragmented send), and when nothing is held.
    #[inline]
    pub fn echo_held(&mut self) -> Result<(), SendError> {
        let HeldAt { start, text, end } = self.held;
        let len = end.wrapping_sub(start);
        let plain = end != 0
            && self.state == State::Open
            && self.send_partial.is_none()
            && self.rng.is_none()
            && !self.compresses(len)
            && len <= self.config.send_frame_size().unwrap_or(usize::MAX);
        if !plain {
            return self.echo_held_otherwise();
        }
        // The common case (a server, no compression, one frame): the
        // header and a copy of the payload, straight from `rx` to `out`.
        self.sent_data = true;
        let h = FrameHeader {
            fin: true,
            rsv: 0,
            opcode: if text { OpCode::TEXT } else { OpCode::BINARY },
            mask: None,
            payload_len: len as u64,
        };
        self.out.push_frame_slice(&h, &self.rx[start..end]);
        self.note_sent();
        self.release_held();
        Ok(())
    }

    /// The rest of [`Connection::echo_held`]: refusals, and masked,
    /// compressed or fragmented sends (the general path, on a copy).
    #[inline(never)]
    fn echo_held_otherwise(&mut self) -> Result<(), SendError> {
        let msg = self.held_message().ok_or(SendError::NothingHeld)?;
        self.send(msg)?;
        self.release_held();
        Ok(())
    }

    /// Lets the held message go (consumes it from the receive buffer).
    /// Every poll does this first.
    #[inline(always)]
    pub fn release_held(&mut self) {
        let end = std::mem::take(&mut self.held).end;
        if end != 0 {
            // Advanced past later, with the rest of the batch.
            self.skip = end;
        }
    }

    /// Advances `rx` past what was read in place (one `BytesMut` update for
    /// a batch of messages: one per message cost ~35 instructions each).
    #[inline(always)]
    pub(super) fn consume_skipped(&mut self) {
        let skip = std::mem::take(&mut self.skip);
        if skip != 0 {
            self.rx.advance(skip.min(self.rx.len()));
            // A message still held lies past what was skipped.
            if self.held.end != 0 {
                self.held.start -= skip;
                self.held.end -= skip;
            }
        }
    }

    /// Whether a data message of `len` bytes would be compressed.
    #[inline(always)]
    fn compresses(&self, len: usize) -> bool {
        #[cfg(feature = "deflate")]
        if let Some(c) = &self.deflate {
            return c.should_compress(len);
        }
        let _ = len;
        false
    }
}

/// Where the held message's payload lies in `rx` (`end` 0: none held).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct HeldAt {
    start: usize,
    text: bool,
    end: usize,
}
