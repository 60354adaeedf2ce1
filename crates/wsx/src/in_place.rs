//! Messages read where they arrived: what [`WebSocket::recv_in_place`]
//! gives (the sans-IO side is `wsx_proto::Connection::poll_in_place`).

use crate::error::Result;
use std::marker::PhantomData;
use wsx_proto::{Connection, DataKind, Held, Message};

#[cfg(doc)]
use crate::WebSocket;

/// A message from [`WebSocket::recv_in_place`].
#[derive(Debug)]
pub enum Received<'a, S> {
    /// A text or binary message read in place, in the receive buffer.
    Held(HeldMessage<'a, S>),
    /// Any other message (fragmented, compressed, larger than asked, a
    /// ping or pong), owned as [`WebSocket::recv`] gives it.
    Message(Message),
}

/// A whole text or binary message in the socket's receive buffer, unmasked
/// and validated; it borrows the socket until read or echoed.
#[derive(Debug)]
pub struct HeldMessage<'a, S> {
    conn: &'a mut Connection,
    held: Held,
    _socket: PhantomData<&'a mut S>,
}

impl<'a, S> HeldMessage<'a, S> {
    #[inline]
    pub(crate) fn new(conn: &'a mut Connection, held: Held) -> Self {
        Self {
            conn,
            held,
            _socket: PhantomData,
        }
    }

    /// Text or binary.
    #[inline]
    pub fn kind(&self) -> DataKind {
        self.held.kind
    }

    /// The payload (for text, valid UTF-8).
    #[inline]
    pub fn data(&self) -> &[u8] {
        self.conn.held().unwrap_or_default()
    }

    /// The text, if it is a text message.
    pub fn text(&self) -> Option<&str> {
        // Validated on arrival; checked again here rather than trusted
        // without `unsafe`.
        (self.held.kind == DataKind::Text)
            .then(|| std::str::from_utf8(self.data()).ok())
            .flatten()
    }

    /// An owned copy, as [`WebSocket::recv`] would have given it.
    pub fn to_message(&self) -> Message {
        self.conn
            .held_message()
            .expect("a HeldMessage exists only while its message is held")
    }

    /// Queues the message back to the peer (one copy into the send
    /// buffer), without flushing: as [`WebSocket::feed`], the next receive
    /// or flush writes it.
    ///
    /// # Errors
    /// The connection is closing, or a fragmented send is under way.
    #[inline]
    pub fn echo(self) -> Result<()> {
        self.conn.echo_held()?;
        Ok(())
    }
}
