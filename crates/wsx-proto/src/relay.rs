//! Frames as they are on the wire, for a relay that shows and forwards
//! them (`wsx proxy`): a reader that splits a byte stream into frames
//! (header, unmasked payload, bytes taken), the encoder that writes one
//! back (re-masked with a fresh key toward a server, RFC 6455 §5.3), and an
//! inflater that shows what a compressed message says without changing
//! what is forwarded.
//!
//! No rule of a connection is checked here beyond the frame format and a
//! size bound: a relay passes on what each side sent, and the other side
//! judges it.

use crate::deflate::{Codec, DeflateParams, InflateError, Negotiated};
use crate::error::ProtocolError;
use crate::frame::{encode_frame_into, FrameHeader, OpCode};
use crate::mask::apply_mask;
use bytes::{Bytes, BytesMut};

/// One frame as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    /// Its header, as sent (mask key included).
    pub header: FrameHeader,
    /// Its payload, unmasked.
    pub payload: Bytes,
    /// Bytes it took on the wire (header and payload).
    pub wire_len: usize,
}

impl RawFrame {
    /// Appends this frame to `out` with `mask` (a fresh key toward a
    /// server; `None` toward a client) and otherwise the same header:
    /// FIN, RSV bits, opcode, length.
    pub fn encode(&self, mask: Option<[u8; 4]>, out: &mut BytesMut) {
        let header = FrameHeader {
            mask,
            payload_len: self.payload.len() as u64,
            ..self.header
        };
        encode_frame_into(&header, &self.payload, out);
    }
}

/// Splits a byte stream into frames. Memory is bounded by the largest
/// frame allowed plus one read.
#[derive(Debug)]
pub struct FrameReader {
    buf: BytesMut,
    max_payload: u64,
}

impl FrameReader {
    /// A reader that refuses frames with a payload over `max_payload` bytes.
    pub fn new(max_payload: u64) -> Self {
        FrameReader {
            buf: BytesMut::with_capacity(8 << 10),
            max_payload,
        }
    }

    /// Adds bytes read from the stream.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The buffer to read into directly (e.g. `AsyncReadExt::read_buf`).
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Bytes received and not yet part of a returned frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next whole frame, if one has arrived.
    ///
    /// ```
    /// use wsx_proto::relay::FrameReader;
    /// let mut r = FrameReader::new(1 << 20);
    /// // "Hi", masked with key 1 2 3 4, then half of the next header.
    /// r.feed(&[0x81, 0x82, 1, 2, 3, 4, b'H' ^ 1, b'i' ^ 2, 0x89]);
    /// let f = r.next_frame().unwrap().unwrap();
    /// assert_eq!((&f.payload[..], f.wire_len, f.header.mask), (&b"Hi"[..], 8, Some([1, 2, 3, 4])));
    /// assert_eq!(r.next_frame().unwrap(), None);
    /// ```
    ///
    /// # Errors
    /// A malformed length, or a payload over the bound (the relay closes
    /// both sides: it cannot pass the frame on).
    pub fn next_frame(&mut self) -> Result<Option<RawFrame>, ProtocolError> {
        let Some((header, n)) = FrameHeader::decode(&self.buf)? else {
            return Ok(None);
        };
        if header.payload_len > self.max_payload {
            return Err(ProtocolError::FrameTooLarge {
                len: header.payload_len,
                max: usize::try_from(self.max_payload).unwrap_or(usize::MAX),
            });
        }
        let total = n + header.payload_len as usize;
        if self.buf.len() < total {
            self.buf.reserve(total - self.buf.len());
            return Ok(None);
        }
        let mut frame = self.buf.split_to(total);
        let mut payload = frame.split_off(n);
        if let Some(key) = header.mask {
            apply_mask(&mut payload, key, 0);
        }
        Ok(Some(RawFrame {
            header,
            payload: payload.freeze(),
            wire_len: total,
        }))
    }
}

/// Shows the compressed messages of one direction inflated
/// (permessage-deflate, RFC 7692), with the agreed parameters; what is
/// forwarded stays as it was.
#[derive(Debug)]
pub struct Inflater {
    codec: Codec,
    /// Inside a compressed message: its inflated bytes so far.
    message: Option<Vec<u8>>,
    /// Inside a message (compressed or not) that has more frames.
    in_message: bool,
    limit: usize,
}

impl Inflater {
    /// For the messages the server sends (`from_server`) or the client
    /// sends, under `params`; messages over `limit` bytes inflated are
    /// reported as such.
    pub fn new(params: DeflateParams, from_server: bool, limit: usize) -> Self {
        Inflater {
            codec: Codec::new(Negotiated::for_receiver(params, !from_server)),
            message: None,
            in_message: false,
            limit,
        }
    }

    /// Takes the next data frame of the direction (control frames are
    /// ignored). At the end of a compressed message: `Some(Ok(inflated))`,
    /// or `Some(Err(why))` when it does not inflate; otherwise `None`.
    pub fn frame(
        &mut self,
        header: &FrameHeader,
        payload: &[u8],
    ) -> Option<Result<Vec<u8>, String>> {
        let op = header.opcode;
        if op.is_control() {
            return None;
        }
        if op != OpCode::CONTINUATION {
            // A new message: compressed when its first frame has RSV1.
            self.message = (header.rsv & 0x40 != 0).then(Vec::new);
            self.in_message = true;
        } else if !self.in_message {
            return None;
        }
        if header.fin {
            self.in_message = false;
        }
        let out = self.message.as_mut()?;
        if let Err(e) = self.codec.decompress(payload, header.fin, out, self.limit) {
            self.message = None;
            self.in_message = !header.fin && self.in_message;
            return Some(Err(match e {
                InflateError::TooLarge(n) => format!("inflates past {} bytes ({n})", self.limit),
                InflateError::Invalid(why) => format!("does not inflate: {why}"),
            }));
        }
        if header.fin {
            return self.message.take().map(Ok);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deflate::DeflateConfig;

    #[test]
    fn frames_split_at_any_boundary_and_reencode_byte_for_byte() {
        let mut wire = BytesMut::new();
        let frames = [
            (true, OpCode::TEXT, Some([9, 8, 7, 6]), b"hello".to_vec()),
            (false, OpCode::BINARY, None, vec![0u8; 300]),
            (true, OpCode::CONTINUATION, None, vec![1u8; 70_000]),
            (true, OpCode::PING, Some([1, 1, 1, 1]), b"p".to_vec()),
        ];
        for (fin, opcode, mask, payload) in &frames {
            let h = FrameHeader {
                fin: *fin,
                rsv: 0,
                opcode: *opcode,
                mask: *mask,
                payload_len: payload.len() as u64,
            };
            encode_frame_into(&h, payload, &mut wire);
        }
        for chunk in [1usize, 3, 7, 1000, wire.len()] {
            let mut r = FrameReader::new(1 << 20);
            let mut got = Vec::new();
            let mut again = BytesMut::new();
            for piece in wire.chunks(chunk) {
                r.feed(piece);
                while let Some(f) = r.next_frame().unwrap() {
                    f.encode(f.header.mask, &mut again);
                    got.push(f);
                }
            }
            assert_eq!(got.len(), frames.len());
            for (f, (fin, opcode, mask, payload)) in got.iter().zip(&frames) {
                assert_eq!(
                    (f.header.fin, f.header.opcode, f.header.mask),
                    (*fin, *opcode, *mask)
                );
                assert_eq!(&f.payload[..], &payload[..]);
            }
            assert_eq!(again, wire, "chunks of {chunk}");
            assert_eq!(got.iter().map(|f| f.wire_len).sum::<usize>(), wire.len());
        }
    }

    #[test]
    fn an_oversized_frame_is_refused_from_its_header() {
        let mut r = FrameReader::new(100);
        r.feed(&[0x82, 0x7e, 0x01, 0x00]); // 256 bytes announced
        assert!(matches!(
            r.next_frame(),
            Err(ProtocolError::FrameTooLarge { len: 256, max: 100 })
        ));
    }

    #[test]
    fn a_compressed_fragmented_message_is_shown_inflated() {
        // A server that compresses with context takeover: two messages.
        let params = DeflateParams {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        };
        let mut sender = Codec::new(Negotiated::for_receiver(params, false));
        let mut inflater = Inflater::new(params, true, 1 << 20);
        for text in ["hello hello hello", "hello again, hello"] {
            let z = sender.compress(text.as_bytes());
            let (a, b) = z.split_at(z.len() / 2);
            let first = FrameHeader {
                fin: false,
                rsv: 0x40,
                opcode: OpCode::TEXT,
                mask: None,
                payload_len: a.len() as u64,
            };
            assert_eq!(inflater.frame(&first, a), None);
            let ping = FrameHeader {
                fin: true,
                rsv: 0,
                opcode: OpCode::PING,
                mask: None,
                payload_len: 0,
            };
            assert_eq!(inflater.frame(&ping, b""), None);
            let last = FrameHeader {
                fin: true,
                rsv: 0,
                opcode: OpCode::CONTINUATION,
                mask: None,
                payload_len: b.len() as u64,
            };
            assert_eq!(inflater.frame(&last, b), Some(Ok(text.as_bytes().to_vec())));
        }
        // An uncompressed message is not reported; garbage is, plainly.
        let plain = FrameHeader {
            fin: true,
            rsv: 0,
            opcode: OpCode::TEXT,
            mask: None,
            payload_len: 2,
        };
        assert_eq!(inflater.frame(&plain, b"hi"), None);
        let bad = FrameHeader { rsv: 0x40, ..plain };
        assert!(matches!(inflater.frame(&bad, &[0xff, 0xff]), Some(Err(_))));
        let _ = DeflateConfig::default();
    }
}
