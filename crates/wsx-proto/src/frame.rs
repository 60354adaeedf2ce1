//! The frame header codec (RFC 6455 §5.2).
//!
//! ```text
//!  0               1               2               3
//!  0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//! ```

use crate::error::ProtocolError;
use crate::mask::apply_mask;
use bytes::{BufMut, BytesMut};
use std::fmt;

const FIN: u8 = 0x80; // RFC 6455 §5.2
const RSV_MASK: u8 = 0x70; // RFC 6455 §5.2: RSV1 0x40, RSV2 0x20, RSV3 0x10
const OPCODE_MASK: u8 = 0x0f; // RFC 6455 §5.2
const MASK: u8 = 0x80; // RFC 6455 §5.2
const LEN_MASK: u8 = 0x7f; // RFC 6455 §5.2
const LEN_16: u8 = 126; // RFC 6455 §5.2: a 16-bit length follows
const LEN_64: u8 = 127; // RFC 6455 §5.2: a 64-bit length follows

/// RSV1, used by permessage-deflate (RFC 7692).
pub const RSV1: u8 = 0x40;

/// A frame opcode (§5.2): an open newtype over the 4-bit value.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct OpCode(u8);

impl OpCode {
    /// 0x0: continues a fragmented message.
    pub const CONTINUATION: OpCode = OpCode(0x0);
    /// 0x1: a text frame.
    pub const TEXT: OpCode = OpCode(0x1);
    /// 0x2: a binary frame.
    pub const BINARY: OpCode = OpCode(0x2);
    /// 0x8: close.
    pub const CLOSE: OpCode = OpCode(0x8);
    /// 0x9: ping.
    pub const PING: OpCode = OpCode(0x9);
    /// 0xA: pong.
    pub const PONG: OpCode = OpCode(0xa);

    /// The opcode for the low 4 bits of `b`.
    pub const fn from_u4(b: u8) -> OpCode {
        OpCode(b & OPCODE_MASK)
    }

    /// The 4-bit value.
    pub const fn as_u8(self) -> u8 {
        self.0
    }

    /// Close, ping and pong (opcodes 0x8-0xF).
    pub const fn is_control(self) -> bool {
        self.0 & 0x08 != 0
    }

    /// Opcodes RFC 6455 leaves reserved: 0x3-0x7 and 0xB-0xF.
    pub const fn is_reserved(self) -> bool {
        matches!(self.0, 0x3..=0x7 | 0xb..=0xf)
    }
}

impl fmt::Debug for OpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for OpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0x0 => f.write_str("continuation"),
            0x1 => f.write_str("text"),
            0x2 => f.write_str("binary"),
            0x8 => f.write_str("close"),
            0x9 => f.write_str("ping"),
            0xa => f.write_str("pong"),
            n => write!(f, "opcode {n:#x}"),
        }
    }
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Final fragment of a message.
    pub fin: bool,
    /// RSV1-3 as they sit in the first byte (`0x40 | 0x20 | 0x10`).
    pub rsv: u8,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, if the MASK bit is set.
    pub mask: Option<[u8; 4]>,
    /// The payload length.
    pub payload_len: u64,
}

impl FrameHeader {
    /// The longest header: 2 + 8 (64-bit length) + 4 (mask).
    pub const MAX_LEN: usize = 14;

    /// Decodes a header from the start of `buf`.
    ///
    /// Returns `Ok(None)` when `buf` holds only part of a header (not an
    /// error: read more), else the header and its length in bytes. Only
    /// wire-level errors are found here; the rules that depend on the
    /// connection (masking direction, reserved bits, fragmentation) are
    /// checked by [`crate::Connection`].
    ///
    /// ```
    /// use wsx_proto::frame::{FrameHeader, OpCode};
    /// let (h, n) = FrameHeader::decode(&[0x81, 0x05, b'H']).unwrap().unwrap();
    /// assert_eq!((h.opcode, h.fin, h.payload_len, n), (OpCode::TEXT, true, 5, 2));
    /// assert_eq!(FrameHeader::decode(&[0x81]).unwrap(), None);
    /// ```
    #[inline]
    pub fn decode(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
        if buf.len() < 2 {
            return Ok(None);
        }
        let (b0, b1) = (buf[0], buf[1]);
        let masked = b1 & MASK != 0;
        let (payload_len, mut n) = match b1 & LEN_MASK {
            LEN_16 => {
                if buf.len() < 4 {
                    return Ok(None);
                }
                (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4)
            }
            LEN_64 => {
                if buf.len() < 10 {
                    return Ok(None);
                }
                let len = u64::from_be_bytes(buf[2..10].try_into().expect("8 bytes"));
                if len >> 63 != 0 {
                    return Err(ProtocolError::LengthOverflow);
                }
                (len, 10)
            }
            len => (u64::from(len), 2),
        };
        let mask = if masked {
            if buf.len() < n + 4 {
                return Ok(None);
            }
            let key = [buf[n], buf[n + 1], buf[n + 2], buf[n + 3]];
            n += 4;
            Some(key)
        } else {
            None
        };
        Ok(Some((
            FrameHeader {
                fin: b0 & FIN != 0,
                rsv: b0 & RSV_MASK,
                opcode: OpCode::from_u4(b0),
                mask,
                payload_len,
            },
            n,
        )))
    }

    /// The encoded length of this header (minimal length encoding).
    #[inline]
    pub fn encoded_len(&self) -> usize {
        let len = match self.payload_len {
            0..=125 => 2,
            126..=0xffff => 4,
            _ => 10,
        };
        len + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Encodes the header into `out` with the minimal length encoding (§5.2)
    /// and returns the number of bytes written.
    #[inline(always)]
    pub fn encode(&self, out: &mut [u8; Self::MAX_LEN]) -> usize {
        out[0] = if self.fin { FIN } else { 0 } | (self.rsv & RSV_MASK) | self.opcode.0;
        let mask_bit = if self.mask.is_some() { MASK } else { 0 };
        let mut n = match self.payload_len {
            len @ 0..=125 => {
                out[1] = mask_bit | len as u8;
                2
            }
            len @ 126..=0xffff => {
                out[1] = mask_bit | LEN_16;
                out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                4
            }
            len => {
                out[1] = mask_bit | LEN_64;
                out[2..10].copy_from_slice(&len.to_be_bytes());
                10
            }
        };
        if let Some(key) = self.mask {
            out[n..n + 4].copy_from_slice(&key);
            n += 4;
        }
        n
    }
}

/// Appends a frame to `out`: `header`, then `payload`, masked in place with
/// the header's key if it has one. Every frame the crate sends is encoded here.
///
/// `payload` may be only the start of the frame's payload (usually none of
/// it): the caller then queues the rest, as [`crate::OutBuf`] does to share
/// a large unmasked payload instead of copying it.
#[inline(always)]
pub(crate) fn encode_frame_into(header: &FrameHeader, payload: &[u8], out: &mut BytesMut) {
    debug_assert!(payload.len() as u64 <= header.payload_len);
    let mut hb = [0u8; FrameHeader::MAX_LEN];
    let n = header.encode(&mut hb);
    out.reserve(FrameHeader::MAX_LEN + payload.len());
    // All 14 bytes, then cut to the header's length: a fixed-size copy is
    // a few moves, a variable one a call to memcpy (per message).
    let start = out.len() + n;
    out.put_slice(&hb);
    out.truncate(start);
    out.put_slice(payload);
    if let Some(key) = header.mask {
        apply_mask(&mut out[start..], key, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn length_forms() {
        for (len, size) in [
            (0u64, 2),
            (125, 2),
            (126, 4),
            (65535, 4),
            (65536, 10),
            (1 << 40, 10),
        ] {
            let h = FrameHeader {
                fin: true,
                rsv: 0,
                opcode: OpCode::BINARY,
                mask: None,
                payload_len: len,
            };
            let mut buf = [0; 14];
            assert_eq!(h.encode(&mut buf), size);
            assert_eq!(h.encoded_len(), size);
            assert_eq!(FrameHeader::decode(&buf[..size]).unwrap(), Some((h, size)));
            for cut in 0..size {
                assert_eq!(FrameHeader::decode(&buf[..cut]).unwrap(), None);
            }
        }
    }

    #[test]
    fn top_bit_of_64_bit_length_is_an_error() {
        let buf = [0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            FrameHeader::decode(&buf),
            Err(ProtocolError::LengthOverflow)
        );
    }

    #[test]
    fn non_minimal_lengths_are_accepted() {
        // 5 in the 16-bit form: senders must not do this, but it is unambiguous.
        let buf = [0x82, 0x7e, 0x00, 0x05];
        let (h, n) = FrameHeader::decode(&buf).unwrap().unwrap();
        assert_eq!((h.payload_len, n), (5, 4));
    }

    #[test]
    fn frames_encode_as_in_rfc_6455_5_7() {
        let hello = |mask| FrameHeader {
            fin: true,
            rsv: 0,
            opcode: OpCode::TEXT,
            mask,
            payload_len: 5,
        };
        let mut out = BytesMut::new();
        encode_frame_into(&hello(None), b"Hello", &mut out);
        assert_eq!(out[..], [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        out.clear();
        encode_frame_into(&hello(Some([0x37, 0xfa, 0x21, 0x3d])), b"Hello", &mut out);
        let masked = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        assert_eq!(out[..], masked);
        // The header alone, for a payload queued separately.
        out.clear();
        encode_frame_into(&hello(None), b"", &mut out);
        assert_eq!(out[..], [0x81, 0x05]);
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(
            fin: bool, rsv in 0u8..8, op in 0u8..16, mask: Option<[u8; 4]>,
            len in prop_oneof![0u64..200, 100u64..70000, 0u64..(1 << 63)],
        ) {
            let h = FrameHeader { fin, rsv: rsv << 4, opcode: OpCode::from_u4(op), mask, payload_len: len };
            let mut buf = [0; 14];
            let n = h.encode(&mut buf);
            prop_assert_eq!(FrameHeader::decode(&buf[..n]).unwrap(), Some((h, n)));
        }
    }
}
