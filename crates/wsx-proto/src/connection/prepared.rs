//! [`PreparedMessage`]: a frame encoded once, sent on many connections.

use super::send::frame_parts;
use super::SendError;
use crate::frame::{encode_frame_into, FrameHeader};
use crate::Message;
use bytes::{Bytes, BytesMut};

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
    pub(super) frame: Bytes,
    pub(super) message: Message,
    pub(super) is_control: bool,
}

impl PreparedMessage {
    /// Encodes `message`.
    ///
    /// # Errors
    /// A ping or pong payload over 125 bytes.
    pub fn new(message: Message) -> Result<Self, SendError> {
        let (op, payload) = frame_parts(message.clone());
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
        let mut frame = BytesMut::with_capacity(h.encoded_len() + payload.len());
        encode_frame_into(&h, &payload, &mut frame);
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
