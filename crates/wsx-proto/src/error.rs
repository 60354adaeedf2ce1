//! Protocol errors. Each maps to the close code that is sent for it.

use crate::close::CloseCode;
use crate::frame::OpCode;

/// The peer broke RFC 6455 (or a configured limit); the connection fails and
/// [`ProtocolError::close_code`] is sent in the close frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// RSV1-3 set while no negotiated extension defines them (§5.2).
    #[error("reserved bits {0:#05b} set in a frame header but no extension that uses them was negotiated (RFC 6455 §5.2)")]
    ReservedBitsSet(u8),
    /// Opcodes 0x3-0x7 and 0xB-0xF are reserved (§5.2).
    #[error("reserved opcode {0:#x} (RFC 6455 §5.2)")]
    ReservedOpcode(u8),
    /// Control frames must not be fragmented (§5.5).
    #[error("fragmented control frame ({0}): control frames must have FIN set (RFC 6455 §5.5)")]
    FragmentedControlFrame(OpCode),
    /// Control frames carry at most 125 bytes (§5.5).
    #[error(
        "control frame ({opcode}) with a {len}-byte payload; the limit is 125 (RFC 6455 §5.5)"
    )]
    ControlFrameTooLong {
        /// Which control frame.
        opcode: OpCode,
        /// Its announced length.
        len: u64,
    },
    /// 64-bit lengths must have the most significant bit clear (§5.2).
    #[error("64-bit payload length with the most significant bit set (RFC 6455 §5.2)")]
    LengthOverflow,
    /// Client-to-server frames must be masked (§5.1).
    #[error("client frame not masked: the client violates RFC 6455 §5.1 (every client frame must be masked)")]
    UnmaskedClientFrame,
    /// Server-to-client frames must not be masked (§5.1).
    #[error(
        "server frame masked: the server violates RFC 6455 §5.1 (server frames must not be masked)"
    )]
    MaskedServerFrame,
    /// A continuation frame arrived with no message in progress (§5.4).
    #[error("continuation frame with no fragmented message in progress (RFC 6455 §5.4)")]
    UnexpectedContinuation,
    /// A new text or binary frame arrived before the previous message's final fragment (§5.4).
    #[error("new {0} frame while a fragmented message is unfinished; expected a continuation (RFC 6455 §5.4)")]
    ExpectedContinuation(OpCode),
    /// A text message (or close reason) is not valid UTF-8 (§8.1).
    #[error("text message is not valid UTF-8 (RFC 6455 §8.1)")]
    InvalidUtf8,
    /// A close frame with a 1-byte payload (§5.5.1).
    #[error("close frame with a 1-byte payload; a close code needs 2 bytes (RFC 6455 §5.5.1)")]
    CloseFrameTooShort,
    /// A close code that must not be sent (§7.4).
    #[error("close frame with invalid code {0} (RFC 6455 §7.4)")]
    InvalidCloseCode(CloseCode),
    /// A close reason that is not UTF-8 (§5.5.1).
    #[error("close reason is not valid UTF-8 (RFC 6455 §5.5.1)")]
    InvalidCloseReason,
    /// A frame larger than `max_frame_size`.
    #[error("frame of {len} bytes exceeds max_frame_size ({max} bytes); raise the limit if such frames are expected")]
    FrameTooLarge {
        /// The announced payload length.
        len: u64,
        /// The configured limit.
        max: usize,
    },
    /// A message larger than `max_message_size`.
    #[error("message of at least {len} bytes exceeds max_message_size ({max} bytes); raise the limit if such messages are expected")]
    MessageTooLarge {
        /// The size the message had reached.
        len: u64,
        /// The configured limit.
        max: usize,
    },
    /// RSV1 (compressed) on a control or continuation frame (RFC 7692 §6.1).
    #[error("RSV1 (compressed) set on a {0} frame; permessage-deflate marks only the first frame of a data message (RFC 7692 §6.1)")]
    CompressedBitMisplaced(OpCode),
    /// A compressed message that does not inflate (RFC 7692 §7.2.2).
    #[error("compressed message does not inflate: {0} (the peer's deflate stream is corrupt)")]
    InvalidCompressedData(String),
    /// A flood of tiny or empty fragments (`min_fragment_average`).
    #[error("message of {bytes} bytes in {frames} frames: a flood of tiny or empty fragments (past the first 1024 frames they must average {average} bytes; see min_fragment_average)")]
    TinyFragments {
        /// Frames so far, this one included.
        frames: usize,
        /// Payload bytes so far.
        bytes: u64,
        /// The configured minimum average.
        average: usize,
    },
    /// A message split into more frames than `max_fragments`.
    #[error("message split into more than {max} frames exceeds max_fragments; a flood of tiny or empty fragments (raise max_fragments if the peer legitimately fragments this finely)")]
    TooManyFragments {
        /// The configured limit.
        max: usize,
    },
}

impl ProtocolError {
    /// The close code to send for this error: 1002, 1007 or 1009.
    pub fn close_code(&self) -> CloseCode {
        // Every variant is listed (as rustls maps every error to an alert):
        // a new one must choose its code.
        match self {
            ProtocolError::InvalidUtf8
            | ProtocolError::InvalidCloseReason
            | ProtocolError::InvalidCompressedData(_) => CloseCode::INVALID_PAYLOAD,
            ProtocolError::FrameTooLarge { .. }
            | ProtocolError::MessageTooLarge { .. }
            | ProtocolError::TooManyFragments { .. }
            | ProtocolError::TinyFragments { .. } => CloseCode::MESSAGE_TOO_BIG,
            ProtocolError::ReservedBitsSet(_)
            | ProtocolError::ReservedOpcode(_)
            | ProtocolError::FragmentedControlFrame(_)
            | ProtocolError::ControlFrameTooLong { .. }
            | ProtocolError::LengthOverflow
            | ProtocolError::UnmaskedClientFrame
            | ProtocolError::MaskedServerFrame
            | ProtocolError::UnexpectedContinuation
            | ProtocolError::ExpectedContinuation(_)
            | ProtocolError::CloseFrameTooShort
            | ProtocolError::InvalidCloseCode(_)
            | ProtocolError::CompressedBitMisplaced(_) => CloseCode::PROTOCOL_ERROR,
        }
    }
}
