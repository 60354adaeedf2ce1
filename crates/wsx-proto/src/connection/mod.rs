//! The connection state machine, after the opening handshake.
//!
//! Input: bytes ([`Connection::handle_data`], or [`Connection::recv_buffer`]
//! then [`Connection::handle_received`]), end of stream
//! ([`Connection::handle_eof`]) and expired timers
//! ([`Connection::handle_timeout`]). Output: events ([`Connection::poll_event`]),
//! bytes to write ([`Connection::transmit`]) and the next deadline
//! ([`Connection::poll_timeout`]). Commands: [`Connection::send`],
//! [`Connection::send_fragment`], [`Connection::close`].
//!
//! This file holds the state and the timers' handling; `recv.rs` the input,
//! `in_place.rs` messages read where they arrived, `send.rs` the commands and
//! frame writing, `event.rs` the public event types, `prepared.rs`
//! [`PreparedMessage`], `timers.rs` the deadlines.

mod event;
mod in_place;
mod prepared;
mod recv;
mod send;
mod timers;

pub use event::{CloseCause, Closed, DataKind, Event, Fragment, Initiator, SendError};
pub use in_place::{Held, Polled};
pub use prepared::PreparedMessage;

use crate::close::{CloseCode, CloseFrame};
use crate::config::Config;
use crate::frame::OpCode;
use crate::outbuf::OutBuf;
use crate::utf8::Utf8Validator;
use bytes::BytesMut;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha12Rng;
use std::time::{Duration, Instant};
use timers::{Timer, TimerTable};

/// Which end of the connection this is. Clients mask what they send; servers
/// must not (RFC 6455 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The end that sent the opening handshake.
    Client,
    /// The end that accepted it.
    Server,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// We sent a close frame and wait for the peer's.
    CloseSent,
    /// Closed event queued or delivered.
    Done,
}

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
    /// The message `poll_in_place` holds in `rx`.
    held: in_place::HeldAt,
    /// Bytes at the front of `rx` already read in place: advanced past
    /// once per batch (`consume_skipped`), not once per message.
    skip: usize,
    eof: bool,
    cur: Option<recv::Current>,
    msg: Option<recv::Partial>,
    utf8: Utf8Validator,
    /// Kind of the fragmented message we are sending, if any.
    send_partial: Option<DataKind>,
    out: OutBuf,
    sent_close: Option<CloseFrame>,
    pending_closed: Option<Box<Closed>>,
    last_rx: Option<Instant>,
    timers: TimerTable,
    ping_sent_at: Option<Instant>,
    ping_payload: u64,
    rtt: Option<Duration>,
    /// Arrival of the last received text/binary frame.
    last_data_rx: Option<Instant>,
    /// A data frame was sent since the last idle check.
    sent_data: bool,
    /// Something was queued since the last buffer release check.
    sent_since_release: bool,
    /// The latest time passed in: sends, which take no time, arm the
    /// release check from it.
    clock: Instant,
    /// How much the next read reserves (adapts to the traffic; recv.rs).
    read_size: u32,
    /// Wire length of the last data frame (at most 256 KiB): when it is
    /// more than a read, the next frame gets room for as much before its
    /// first byte arrives (recv.rs).
    frame_hint: u32,
    /// `rx`'s length and spare capacity when `recv_buffer` last handed it
    /// out: `handle_received` sees how much the read brought.
    read_mark: (usize, usize),
    /// permessage-deflate, when negotiated (the extension seam).
    #[cfg(feature = "deflate")]
    deflate: Option<Box<crate::deflate::Codec>>,
}

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
        let mut timers = TimerTable::default();
        if let Some(interval) = config.ping_interval() {
            timers.set(Timer::Ping, now + interval);
        }
        if let Some(idle) = config.idle_timeout() {
            timers.set(Timer::Idle, now + idle);
        }
        Connection {
            role,
            config,
            rng,
            state: State::Open,
            rx: BytesMut::new(),
            held: Default::default(),
            skip: 0,
            eof: false,
            cur: None,
            msg: None,
            utf8: Utf8Validator::default(),
            send_partial: None,
            out: OutBuf::default(),
            sent_close: None,
            pending_closed: None,
            last_rx: None,
            timers,
            ping_sent_at: None,
            ping_payload: 0,
            rtt: None,
            last_data_rx: None,
            sent_data: false,
            sent_since_release: false,
            clock: now,
            read_size: recv::READ_MIN as u32,
            frame_hint: 0,
            read_mark: (0, 0),
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
    ///
    /// A connection also does this by itself once it was quiet for
    /// [`Config::buffer_release_delay`] (through
    /// [`Connection::handle_timeout`]), so a busy connection keeps its
    /// buffers and allocates nothing per message.
    pub fn shrink_buffers(&mut self) {
        self.consume_skipped();
        if self.rx.is_empty() && self.cur.is_none() && self.rx.capacity() > 0 {
            self.rx = BytesMut::new();
            // Quiet since: the next read starts small again.
            self.frame_hint = 0;
        }
        self.out.shrink_if_empty();
        // Mid-message, the inflater holds the message's state: keep it.
        #[cfg(feature = "deflate")]
        if let (Some(codec), None) = (self.deflate.as_mut(), &self.msg) {
            codec.release_idle();
        }
    }

    // ---- timers ------------------------------------------------------------

    /// The next deadline at which [`Connection::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        // `end()` clears the table: a finished connection has no deadline.
        self.timers.next()
    }

    /// Lets timers act: keepalive pings, the pong deadline, the close
    /// timeout. Calling it early is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Done {
            return;
        }
        self.clock = now;
        if let (true, Some(delay)) = (
            self.timers.is_expired(Timer::Release, now),
            self.config.buffer_release_delay(),
        ) {
            let rx_next = self.last_rx.map(|t| t + delay);
            let tx_next = std::mem::take(&mut self.sent_since_release).then_some(now + delay);
            match rx_next.max(tx_next).filter(|t| *t > now) {
                Some(next) => self.timers.set(Timer::Release, next),
                None => {
                    self.timers.clear(Timer::Release);
                    self.shrink_buffers();
                }
            }
        }
        if self.timers.is_expired(Timer::Close, now) {
            self.end(
                Initiator::Local,
                Some(CloseCause::CloseTimeout(self.config.close_timeout())),
                None,
            );
            return;
        }
        if self.timers.is_expired(Timer::Pong, now) {
            self.timers.clear(Timer::Pong);
            let heard = matches!((self.last_rx, self.ping_sent_at), (Some(rx), Some(p)) if rx >= p);
            if !heard {
                self.end(
                    Initiator::Local,
                    Some(CloseCause::KeepaliveTimeout(self.config.pong_timeout())),
                    None,
                );
                return;
            }
        }
        if let Some(idle) = self.config.idle_timeout() {
            if self.timers.is_expired(Timer::Idle, now) {
                // Sends carry no timestamp: count one as happening now.
                let sent = std::mem::take(&mut self.sent_data).then_some(now + idle);
                let next = self.last_data_rx.map(|t| t + idle).max(sent);
                match next.filter(|n| *n > now) {
                    Some(n) => self.timers.set(Timer::Idle, n),
                    None => {
                        self.timers.clear(Timer::Idle);
                        let reason = format!("idle: no messages for {} s", idle.as_secs_f64());
                        let _ =
                            self.close(Some(CloseFrame::new(CloseCode::GOING_AWAY, reason)), now);
                        return;
                    }
                }
            }
        }
        if let Some(interval) = self.config.ping_interval() {
            if self.timers.is_expired(Timer::Ping, now) {
                self.timers.set(Timer::Ping, now + interval);
                if self.state == State::Open {
                    self.ping_payload = self.ping_payload.wrapping_add(1);
                    let payload = self.ping_payload.to_be_bytes();
                    self.write_control(OpCode::PING, &payload);
                    self.ping_sent_at = Some(now);
                    if self.timers.get(Timer::Pong).is_none() {
                        self.timers
                            .set(Timer::Pong, now + self.config.pong_timeout());
                    }
                }
            }
        }
        // A connection that only sends gets here through its other timers.
        if self.holds_buffers() {
            self.arm_release(now);
        }
    }

    /// Notes that something was queued to send: the buffers it used go back
    /// once the connection is quiet.
    pub(super) fn note_sent(&mut self) {
        self.sent_since_release = true;
        self.arm_release(self.clock);
    }

    /// Sets the buffer release check, unless it is set.
    fn arm_release(&mut self, now: Instant) {
        // A finished connection has no deadline.
        let Some(delay) = self.config.buffer_release_delay() else {
            return;
        };
        if self.state != State::Done && self.timers.get(Timer::Release).is_none() {
            self.timers.set(Timer::Release, now + delay);
        }
    }

    /// Whether [`Connection::shrink_buffers`] would have memory to give back.
    fn holds_buffers(&self) -> bool {
        #[cfg(feature = "deflate")]
        if self.deflate.as_ref().is_some_and(|c| c.holds_releasable()) {
            return true;
        }
        self.rx.capacity() > 0 || self.out.holds_memory()
    }
}
