//! [`WebSocket`]: a `wsx_proto::Connection` driven over an async stream.

use crate::error::{Error, Kind, Result};
use crate::in_place::{HeldMessage, Received};
use bytes::Buf;
use futures_core::Stream;
use futures_sink::Sink;
use std::future::{poll_fn, Future};
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll, Waker};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};
use wsx_proto::{CloseFrame, Closed, Connection, Event, Fragment, Held, Message, Polled, Role};

/// Default write-buffer high-water mark: `send`/`feed` wait while more than
/// this many bytes are queued for the socket. 1 MiB absorbs bursts without
/// letting a slow reader make a connection hold much memory.
pub const DEFAULT_WRITE_BUFFER_HIGH_WATER: usize = 1 << 20;

/// How long a WebSocket on an HTTP/2 stream waits, after the close
/// handshake, for the peer to end its side before the stream is reset (a
/// server after its own END_STREAM; a client for the server's, which over
/// TCP it would wait the close timeout for): long enough for the peer to
/// read the last close frame (a reset may make it drop unread data), short
/// enough that a peer that never ends its side (undici as a client,
/// hypercorn as a server) does not hold the socket for the close timeout.
pub const HTTP2_CLOSE_LINGER: Duration = Duration::from_millis(500);

/// First read of an idle connection goes to the stack: this much. Large
/// enough for a whole batch of pipelined small messages, so a busy connection
/// still needs one read per batch (a smaller one cost a second read syscall).
const STACK_READ: usize = 32 * 1024;

/// A read at least this large means large messages: the next read goes
/// straight to the heap buffer (see `WebSocket::reading_large`).
const LARGE_READ: usize = 8 * 1024;
/// While reads keep bringing data, the timer and the shutdown signal are
/// polled every this many reads (and before every wait).
const WATCH_EVERY_READS: u8 = 16;

/// Most `IoSlice`s handed to one vectored write.
const MAX_IOVECS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closing {
    /// Not closing.
    No,
    /// Flush what is queued (the close frame last).
    Flush,
    /// A client after a clean close: wait for the server to end TCP first
    /// (RFC 6455 §7.1.1), up to the close timeout.
    AwaitPeerEof,
    /// Half-close our side.
    Shutdown,
    /// Read until the peer's EOF so our close frame is not lost to a reset
    /// (after an unclean close, or on an HTTP/2 stream).
    Drain,
    Done,
}

/// A WebSocket connection over `S` (a `TcpStream`, a TLS stream, anything
/// `AsyncRead + AsyncWrite + Unpin`).
///
/// Receive with [`WebSocket::recv`] (or as a [`Stream`]); send with
/// [`WebSocket::send`], or [`WebSocket::feed`] several messages and
/// [`WebSocket::flush`] once (or as a [`Sink`]). Keep calling `recv`: it also
/// answers pings, runs keepalive timers and flushes queued bytes before it
/// waits for the socket. [`WebSocket::split`] gives independent halves.
pub struct WebSocket<S> {
    io: S,
    conn: Connection,
    timer: Option<Pin<Box<Sleep>>>,
    /// `timer`'s deadline is the one wanted and has not fired yet (its
    /// deadline is kept by the `Sleep`: no copy here, an idle connection
    /// should be small).
    timer_armed: bool,
    high_water: usize,
    protocol: Option<String>,
    /// How the connection ended, once it has (boxed: rarely set, and an
    /// idle connection should be small).
    closed: Option<Box<Closed>>,
    closing: Closing,
    close_deadline: Option<Instant>,
    read_eof: bool,
    /// After our shutdown, read until the peer's end at most this long
    /// (`None`: up to the close timeout). Closing with unread data resets
    /// the connection (TCP: RST; HTTP/2: RST_STREAM), and a reset can make
    /// the peer drop the close frame it has not read yet. HTTP/2 streams
    /// linger briefly: some clients (undici) never end their side.
    drain_limit: Option<Duration>,
    /// `recv` already returned the end (Ok(None) or the error).
    end_reported: bool,
    /// The last read was large (messages of many KiB are arriving): read
    /// straight into the receive buffer even when a message has just taken
    /// all of it, instead of onto the stack and copying. Cleared when the
    /// connection gives its buffers back (quiet; `buffer_release_delay`).
    reading_large: bool,
    /// Reads that brought data since the timer and the shutdown signal were
    /// last polled (`poll_watchers`).
    reads_unwatched: u8,
    /// Set by [`WebSocket::close_on`]: when it fires, close with 1001.
    shutdown: Option<Box<Shutdown>>,
    /// The waker both watchers (the armed timer, the shutdown signal) hold
    /// from their last poll, which returned pending: until one fires or the
    /// deadline moves, reading their state is enough (`poll_watchers`).
    watched: Option<Waker>,
}

/// The shutdown signal: the token, for a cheap look, and its future, polled
/// to register the task's waker.
struct Shutdown {
    token: tokio_util::sync::CancellationToken,
    wait: Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>,
}

impl<S> std::fmt::Debug for WebSocket<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket")
            .field("role", &self.conn.role())
            .field("protocol", &self.protocol)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

pub(crate) fn now() -> std::time::Instant {
    Instant::now().into_std()
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocket<S> {
    /// Wraps a stream whose opening handshake is done. `leftover` are bytes
    /// read past the handshake (the first frames).
    pub fn from_connection(io: S, conn: Connection, leftover: &[u8]) -> Self {
        let mut conn = conn;
        if !leftover.is_empty() {
            conn.handle_data(leftover, now());
        }
        WebSocket {
            io,
            conn,
            timer: None,
            timer_armed: false,
            high_water: DEFAULT_WRITE_BUFFER_HIGH_WATER,
            protocol: None,
            closed: None,
            closing: Closing::No,
            close_deadline: None,
            read_eof: false,
            drain_limit: None,
            end_reported: false,
            reading_large: false,
            reads_unwatched: 0,
            shutdown: None,
            watched: None,
        }
    }

    /// Closes with 1001 ("server shutting down") when `token` is cancelled,
    /// as soon as the application next polls `recv`. [`crate::Server::serve`]
    /// does this for its connections; for others (e.g. upgraded through
    /// hyper), pass [`crate::server::ServerHandle::shutdown_token`] or a token of
    /// your own.
    pub fn close_on(mut self, token: tokio_util::sync::CancellationToken) -> Self {
        let wait = Box::pin(token.clone().cancelled_owned());
        self.shutdown = Some(Box::new(Shutdown { token, wait }));
        self.watched = None;
        self
    }

    pub(crate) fn with_protocol(mut self, protocol: Option<String>) -> Self {
        self.protocol = protocol;
        self
    }

    /// An HTTP/2 stream: read to the peer's end after our shutdown for at
    /// most [`HTTP2_CLOSE_LINGER`] (see `drain_limit`).
    pub(crate) fn with_http2_linger(mut self) -> Self {
        self.drain_limit = Some(HTTP2_CLOSE_LINGER);
        self
    }

    pub(crate) fn with_high_water(mut self, bytes: usize) -> Self {
        self.high_water = bytes.max(1);
        self
    }

    /// The subprotocol the handshake selected.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The permessage-deflate agreement, when the handshake made one.
    #[cfg(feature = "deflate")]
    pub fn deflate(&self) -> Option<&wsx_proto::deflate::Negotiated> {
        self.conn.deflate()
    }

    /// Client or server.
    pub fn role(&self) -> Role {
        self.conn.role()
    }

    /// The round-trip time of the last answered keepalive ping.
    pub fn rtt(&self) -> Option<Duration> {
        self.conn.rtt()
    }

    /// How the connection ended, once `recv` has reported the end.
    pub fn close_info(&self) -> Option<&Closed> {
        self.closed.as_deref()
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// Bytes queued for the socket.
    pub fn buffered_amount(&self) -> usize {
        self.conn.pending_output()
    }

    // ---- receiving -----------------------------------------------------------

    /// Receives the next message. Pings are answered automatically (and
    /// reported); `Ok(None)` means the close handshake completed — see
    /// [`WebSocket::close_info`] for the peer's code and reason.
    ///
    /// # Errors
    /// The connection ended abnormally (protocol error, vanished peer,
    /// keepalive timeout: [`Error::close_info`] says which) or an I/O error.
    ///
    /// # Cancel safety
    /// Cancel safe: all parse state lives in the connection, so dropping the
    /// future loses no data; the next call continues where this one stopped.
    pub async fn recv(&mut self) -> Result<Option<Message>> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Receives the next protocol event, including data fragments when
    /// [`wsx_proto::Config::deliver_fragments`] is on and the final
    /// `Closed`. Returns `None` after `Closed` was delivered.
    ///
    /// # Errors
    /// I/O errors on the transport.
    ///
    /// # Cancel safety
    /// Cancel safe, as [`WebSocket::recv`].
    pub async fn recv_event(&mut self) -> Result<Option<Event>> {
        poll_fn(|cx| self.poll_event(cx)).await
    }

    /// Polls for the next message; see [`WebSocket::recv`].
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Message>>> {
        self.poll_next::<Event, _>(cx, 0, message_of)
    }

    /// Polls for the next event; see [`WebSocket::recv_event`].
    pub fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Event>>> {
        self.poll_next::<Event, _>(cx, 0, |ev| Ok(Some(ev)))
    }

    /// Receives the next message as [`WebSocket::recv`] does, except that a
    /// whole one-frame text or binary message of at most `max` bytes is
    /// read where it arrived ([`Received::Held`]): no `Bytes` is split off
    /// for it, so no reference count is taken and dropped per message.
    /// Read it, or [`HeldMessage::echo`] it, before the next receive.
    ///
    /// ```no_run
    /// # async fn f(mut ws: wsx::WebSocket<tokio::net::TcpStream>) -> wsx::Result<()> {
    /// use wsx::Received;
    /// while let Some(received) = ws.recv_in_place(4096).await? {
    ///     match received {
    ///         Received::Held(msg) => println!("{} bytes", msg.data().len()),
    ///         Received::Message(msg) => println!("{msg:?}"),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`WebSocket::recv`].
    ///
    /// # Cancel safety
    /// Cancel safe, as [`WebSocket::recv`].
    pub async fn recv_in_place(&mut self, max: usize) -> Result<Option<Received<'_, S>>> {
        let got = poll_fn(|cx| self.poll_got(cx, max)).await?;
        Ok(got.map(|g| self.received(g)))
    }

    /// Polls for the next message; see [`WebSocket::recv_in_place`].
    #[inline]
    pub fn poll_recv_in_place(
        &mut self,
        cx: &mut Context<'_>,
        max: usize,
    ) -> Poll<Result<Option<Received<'_, S>>>> {
        let got = ready!(self.poll_got(cx, max));
        Poll::Ready(got.map(|g| g.map(|g| self.received(g))))
    }

    /// The loop of `poll_recv_in_place`, giving back nothing borrowed (a
    /// borrow returned from inside the loop would hold `self` for all of it).
    #[inline(always)]
    fn poll_got(&mut self, cx: &mut Context<'_>, max: usize) -> Poll<Result<Option<Got>>> {
        self.poll_next::<Polled, _>(cx, max, |p| match p {
            Polled::Held(h) => Ok(Some(Got::Held(h))),
            Polled::Event(ev) => Ok(message_of(ev)?.map(Got::Message)),
        })
    }

    fn received(&mut self, got: Got) -> Received<'_, S> {
        match got {
            Got::Held(held) => Received::Held(HeldMessage::new(&mut self.conn, held)),
            Got::Message(m) => Received::Message(m),
        }
    }

    /// The loop of [`WebSocket::poll_event`], handing each event to `map`
    /// where it is produced: `poll_recv` turns it into a message there,
    /// instead of moving it out (an `Event` is 96 bytes) and matching again.
    /// `E` says what is taken from the connection: events, or events and
    /// held messages (of at most `max` bytes).
    #[inline(always)]
    fn poll_next<E: Take, T>(
        &mut self,
        cx: &mut Context<'_>,
        max: usize,
        map: impl FnOnce(E) -> Result<Option<T>>,
    ) -> Poll<Result<Option<T>>> {
        loop {
            if self.closed.is_some() {
                // Finish the TCP side of the close before reporting the end,
                // so every queued byte (replies, the close frame) is written.
                ready!(self.poll_closing(cx));
                if self.end_reported {
                    return Poll::Ready(Ok(None));
                }
                self.end_reported = true;
                let c = self.closed.as_deref().expect("closed").clone();
                return Poll::Ready(map(E::end(c)));
            }
            if let Some(ev) = E::take(&mut self.conn, max) {
                match ev.closed() {
                    Ok(c) => {
                        self.start_closing(c);
                        continue;
                    }
                    Err(ev) => return Poll::Ready(map(ev)),
                }
            }
            // Need input. First push out what is queued (replies, our own
            // messages): a Pending here only means the socket is full.
            let backed_up = match self.poll_write_out(cx) {
                Poll::Ready(Ok(())) => false,
                Poll::Ready(Err(e)) if peer_gone(&e) => {
                    self.peer_gone();
                    continue;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                Poll::Pending => true,
            };
            // The timer and the shutdown signal must be polled (registered
            // with this waker) before every wait; while reads keep bringing
            // data, every few reads is enough for a peer that never lets up
            // to still meet its deadlines. (Polling them before every read
            // cost as much as parsing a small message.)
            if self.reads_unwatched >= WATCH_EVERY_READS && self.poll_watchers(cx) {
                continue;
            }
            // Stop reading while the peer does not read our replies: TCP
            // then pushes back on it, and our queue stays bounded.
            let read = if backed_up && self.conn.pending_output() > self.high_water {
                Poll::Pending
            } else {
                self.poll_read_in(cx)
            };
            let read = match read {
                Poll::Ready(r) => {
                    self.reads_unwatched = self.reads_unwatched.saturating_add(1);
                    r
                }
                // The buffers go back once the connection stays quiet
                // (wsx_proto::Config::buffer_release_delay, through the timer), not
                // here: under load that would free and reallocate them per
                // batch of messages.
                Poll::Pending => {
                    if self.poll_watchers(cx) {
                        continue;
                    }
                    return Poll::Pending;
                }
            };
            match read {
                Ok(0) => self.conn.handle_eof(),
                Ok(_) => {}
                Err(e) if peer_gone(&e) => self.peer_gone(),
                Err(e) => return Poll::Ready(Err(e.into())),
            }
        }
    }

    /// The peer reset the connection: nothing more can be read or written.
    /// Ends like an EOF without a close frame (1006, `PeerVanished`), after
    /// the frames already buffered.
    fn peer_gone(&mut self) {
        self.read_eof = true;
        self.conn.handle_eof();
    }

    fn poll_read_in(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let n = if self.conn.has_recv_buffer() || self.reading_large {
            let buf = self.conn.recv_buffer();
            ready!(tokio_util::io::poll_read_buf(
                Pin::new(&mut self.io),
                cx,
                buf
            ))?
        } else {
            ready!(self.poll_read_via_stack(cx))?
        };
        self.reading_large = n >= LARGE_READ;
        if n == 0 {
            self.read_eof = true;
        } else {
            self.conn.handle_received(now());
        }
        Poll::Ready(Ok(n))
    }

    /// No buffer (the connection was idle): read onto the stack first, so
    /// that waiting costs no heap memory; allocate once data is here.
    ///
    /// Out of line on purpose: inlined, its 32 KiB array made every
    /// `poll_recv` call probe eight stack pages, per message.
    #[inline(never)]
    fn poll_read_via_stack(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut stack = [std::mem::MaybeUninit::<u8>::uninit(); STACK_READ];
        let mut rb = ReadBuf::uninit(&mut stack);
        ready!(Pin::new(&mut self.io).poll_read(cx, &mut rb))?;
        let data = rb.filled();
        if !data.is_empty() {
            self.conn.recv_buffer().extend_from_slice(data);
        }
        Poll::Ready(Ok(data.len()))
    }

    /// Polls the shutdown signal and the timer (registering the waker with
    /// both); returns true if either fired and the connection acted on it.
    fn poll_watchers(&mut self, cx: &mut Context<'_>) -> bool {
        self.reads_unwatched = 0;
        let deadline = self.next_deadline();
        // Polling them again with the same waker would only register it
        // again (~350 instructions, per wait): when both already hold it and
        // the deadline did not move, their state says whether one fired.
        let registered = self
            .watched
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
            && deadline.is_none_or(|d| self.timer_armed_for(d));
        if registered {
            let cancelled = self
                .shutdown
                .as_ref()
                .is_some_and(|s| s.token.is_cancelled());
            let elapsed = deadline.is_some() && self.timer.as_ref().is_some_and(|t| t.is_elapsed());
            if !cancelled && !elapsed {
                return false;
            }
        }
        self.watched = None;
        if let Some(signal) = &mut self.shutdown {
            if signal.wait.as_mut().poll(cx).is_ready() {
                self.shutdown = None;
                if !self.conn.is_closing() {
                    let frame =
                        CloseFrame::new(wsx_proto::CloseCode::GOING_AWAY, "server shutting down");
                    let _ = self.conn.close(Some(frame), now());
                }
                return true;
            }
        }
        if self.poll_timer(cx, deadline) {
            return true;
        }
        self.watched = Some(cx.waker().clone());
        false
    }

    /// The connection's next deadline: its own timers and the close deadline.
    fn next_deadline(&self) -> Option<Instant> {
        match (self.conn.poll_timeout(), self.close_deadline) {
            (Some(a), Some(b)) => Some(Instant::from_std(a).min(b)),
            (Some(a), None) => Some(Instant::from_std(a)),
            (None, b) => b,
        }
    }

    /// The timer is armed for `deadline` and has been polled since.
    fn timer_armed_for(&self, deadline: Instant) -> bool {
        self.timer_armed
            && self
                .timer
                .as_ref()
                .is_some_and(|t| t.deadline() == deadline)
    }

    /// Arms the timer for `deadline` (the connection's next one); returns
    /// true if it fired (and the connection handled it).
    fn poll_timer(&mut self, cx: &mut Context<'_>, deadline: Option<Instant>) -> bool {
        let Some(deadline) = deadline else {
            return false;
        };
        self.arm_timer(deadline);
        let timer = self.timer.as_mut().expect("armed");
        if timer.as_mut().poll(cx).is_ready() {
            self.timer_armed = false;
            self.conn.handle_timeout(now());
            if !self.conn.has_recv_buffer() {
                // Quiet long enough to give the buffer back: wait on the
                // stack again.
                self.reading_large = false;
            }
            return true;
        }
        false
    }

    fn arm_timer(&mut self, deadline: Instant) {
        if self.timer_armed_for(deadline) {
            return;
        }
        match &mut self.timer {
            Some(t) => t.as_mut().reset(deadline),
            None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
        }
        self.timer_armed = true;
    }

    // ---- closing -------------------------------------------------------------

    fn start_closing(&mut self, c: Closed) {
        // After a clean close a client waits for the server to end TCP
        // first; in every other case we end it ourselves.
        self.closing = Closing::Flush;
        // After a timeout the peer is presumed gone: one best-effort attempt
        // to write and shut down, no further wait for it.
        let timed_out = matches!(
            c.cause,
            Some(
                wsx_proto::CloseCause::KeepaliveTimeout(_) | wsx_proto::CloseCause::CloseTimeout(_)
            )
        );
        self.close_deadline = Some(if timed_out {
            Instant::now()
        } else {
            Instant::now() + self.conn.config().close_timeout()
        });
        self.closed = Some(Box::new(c));
    }

    fn poll_closing(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            let timed_out = self.close_deadline_passed(cx);
            match self.closing {
                Closing::No | Closing::Done => return Poll::Ready(()),
                Closing::Flush => {
                    match self.poll_write_out(cx) {
                        Poll::Pending if !timed_out => return Poll::Pending,
                        Poll::Ready(Err(_)) | Poll::Pending => {
                            // Cannot write: nothing more to do on this socket.
                            self.closing = Closing::Done;
                            continue;
                        }
                        Poll::Ready(Ok(())) => {}
                    }
                    let clean = self.closed.as_ref().is_some_and(|c| c.is_clean());
                    self.closing = if self.role() == Role::Client && clean && !self.read_eof {
                        self.shorten_close_deadline();
                        Closing::AwaitPeerEof
                    } else {
                        Closing::Shutdown
                    };
                }
                Closing::AwaitPeerEof => {
                    if timed_out || self.read_eof {
                        self.closing = Closing::Shutdown;
                        continue;
                    }
                    match self.poll_discard(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(_) => self.closing = Closing::Shutdown,
                    }
                }
                Closing::Shutdown => {
                    match Pin::new(&mut self.io).poll_shutdown(cx) {
                        Poll::Pending if !timed_out => return Poll::Pending,
                        _ => {}
                    }
                    // After both close frames the peer sends no more data
                    // (RFC 6455 §5.5.1), so closing cannot reset away our
                    // frame: no wait for its EOF (a read and a wake-up per
                    // connection). HTTP/2 streams still wait for the peer's
                    // end of stream, else dropping one would reset it.
                    let clean = self.closed.as_ref().is_some_and(|c| c.is_clean());
                    self.closing =
                        if self.read_eof || timed_out || (clean && self.drain_limit.is_none()) {
                            Closing::Done
                        } else {
                            self.shorten_close_deadline();
                            Closing::Drain
                        };
                }
                Closing::Drain => {
                    if timed_out || self.read_eof {
                        self.closing = Closing::Done;
                        continue;
                    }
                    match self.poll_discard(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(_) => self.closing = Closing::Done,
                    }
                }
            }
        }
    }

    /// Waiting for the peer's end after the close handshake: at most
    /// `drain_limit` from now, when there is one (HTTP/2 streams).
    fn shorten_close_deadline(&mut self) {
        if let Some(limit) = self.drain_limit {
            let soon = Instant::now() + limit;
            self.close_deadline = Some(self.close_deadline.map_or(soon, |d| d.min(soon)));
        }
    }

    fn close_deadline_passed(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(deadline) = self.close_deadline else {
            return false;
        };
        if Instant::now() >= deadline {
            return true;
        }
        self.arm_timer(deadline);
        let _ = self.timer.as_mut().expect("armed").as_mut().poll(cx);
        false
    }

    /// Reads and throws away until EOF or error.
    fn poll_discard(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut scratch = [0u8; 1024];
        loop {
            let mut rb = ReadBuf::new(&mut scratch);
            match ready!(Pin::new(&mut self.io).poll_read(cx, &mut rb)) {
                Ok(()) if rb.filled().is_empty() => {
                    self.read_eof = true;
                    return Poll::Ready(());
                }
                Ok(()) => {}
                Err(_) => {
                    self.read_eof = true;
                    return Poll::Ready(());
                }
            }
        }
    }

    // ---- sending -------------------------------------------------------------

    /// Writes what is queued, until the socket takes no more.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.conn.pending_output() > 0 {
            let out = self.conn.transmit();
            let n = if self.io.is_write_vectored() && out.chunk().len() < out.remaining() {
                let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
                let k = out.chunks_vectored(&mut slices);
                ready!(Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..k]))?
            } else {
                ready!(Pin::new(&mut self.io).poll_write(cx, out.chunk()))?
            };
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.conn.transmit().advance(n);
        }
        Poll::Ready(Ok(()))
    }

    /// Waits until the queue is below the high-water mark.
    fn poll_send_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        while self.conn.pending_output() >= self.high_water {
            match self.poll_write_out(cx) {
                Poll::Ready(r) => r?,
                // A partial write may already have made room.
                Poll::Pending if self.conn.pending_output() < self.high_water => break,
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Writes everything queued and flushes the stream.
    fn poll_flush_all(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        ready!(self.poll_write_out(cx))?;
        ready!(Pin::new(&mut self.io).poll_flush(cx))?;
        Poll::Ready(Ok(()))
    }

    /// Queues `msg` and writes everything queued.
    ///
    /// # Errors
    /// The connection is closing (a close frame was sent or received), a
    /// control payload exceeds 125 bytes, or an I/O error.
    ///
    /// # Cancel safety
    /// If cancelled after the message was queued, it is still sent by a
    /// later `send`, `flush` or `recv`. If cancelled while waiting for room
    /// (the queue above the high-water mark), the message was not queued.
    pub async fn send(&mut self, msg: Message) -> Result<()> {
        self.feed(msg).await?;
        self.flush().await
    }

    /// Queues `msg` if the queue is below the high-water mark and writes
    /// what the socket takes now, without waiting; when the queue is full,
    /// hands `msg` back ([`TrySendError::Full`]) so the caller can drop it,
    /// keep it, or wait with [`WebSocket::send`].
    ///
    /// ```no_run
    /// # async fn run(ws: &mut wsx::WebSocket<tokio::net::TcpStream>) -> Result<(), wsx::Error> {
    /// match ws.try_send(wsx::Message::text("tick")) {
    ///     Ok(()) => {}
    ///     Err(wsx::TrySendError::Full(_msg)) => { /* the peer is slow: skip this tick */ }
    ///     Err(wsx::TrySendError::Error(e)) => return Err(e),
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// `Full(msg)`; or `Error`: the connection is closing, a control payload
    /// exceeds 125 bytes, or an I/O error.
    pub fn try_send(&mut self, msg: Message) -> std::result::Result<(), TrySendError> {
        // Nothing waits on this poll: with `&mut self`, any other pending
        // operation on this socket re-registers its waker when next polled.
        self.try_send_cx(msg, &mut Context::from_waker(std::task::Waker::noop()))
    }

    pub(crate) fn try_send_cx(
        &mut self,
        msg: Message,
        cx: &mut Context<'_>,
    ) -> std::result::Result<(), TrySendError> {
        if self.conn.pending_output() >= self.high_water {
            if let Poll::Ready(Err(e)) = self.poll_write_out(cx) {
                return Err(TrySendError::Error(e.into()));
            }
            if self.conn.pending_output() >= self.high_water {
                return Err(TrySendError::Full(msg));
            }
        }
        self.conn
            .send(msg)
            .map_err(|e| TrySendError::Error(e.into()))?;
        match self.poll_write_out(cx) {
            Poll::Ready(Err(e)) => Err(TrySendError::Error(e.into())),
            _ => Ok(()),
        }
    }

    /// As [`WebSocket::send`], but never compressed, whatever was
    /// negotiated (already-compressed data, or latency that matters more
    /// than bytes).
    ///
    /// # Errors
    /// As [`WebSocket::send`].
    ///
    /// # Cancel safety
    /// As [`WebSocket::send`].
    pub async fn send_uncompressed(&mut self, msg: Message) -> Result<()> {
        poll_fn(|cx| self.poll_send_ready(cx)).await?;
        self.conn.send_uncompressed(msg)?;
        self.flush().await
    }

    /// Queues `msg` without flushing, waiting first while the queue is above
    /// the high-water mark. Small messages queued together leave in one
    /// write; `recv` and `flush` write them.
    ///
    /// # Errors
    /// As [`WebSocket::send`].
    ///
    /// # Cancel safety
    /// Cancel safe: if cancelled, the message was not queued.
    pub async fn feed(&mut self, msg: Message) -> Result<()> {
        poll_fn(|cx| self.poll_send_ready(cx)).await?;
        self.conn.send(msg)?;
        Ok(())
    }

    /// Queues a message encoded once for many connections (see
    /// [`wsx_proto::PreparedMessage`]), without flushing; waits first while the
    /// queue is above the high-water mark.
    ///
    /// # Errors
    /// As [`WebSocket::send`].
    ///
    /// # Cancel safety
    /// Cancel safe: if cancelled, the message was not queued.
    pub async fn feed_prepared(&mut self, msg: &wsx_proto::PreparedMessage) -> Result<()> {
        poll_fn(|cx| self.poll_send_ready(cx)).await?;
        self.conn.send_prepared(msg)?;
        Ok(())
    }

    /// Queues one frame of a fragmented message (see
    /// [`wsx_proto::Connection::send_fragment`]) and writes what is queued.
    ///
    /// # Errors
    /// As [`WebSocket::send`], plus fragments out of sequence.
    ///
    /// # Cancel safety
    /// As [`WebSocket::send`].
    pub async fn send_fragment(&mut self, fragment: Fragment) -> Result<()> {
        poll_fn(|cx| self.poll_send_ready(cx)).await?;
        self.conn.send_fragment(fragment)?;
        self.flush().await
    }

    /// Writes everything queued.
    ///
    /// # Errors
    /// An I/O error.
    ///
    /// # Cancel safety
    /// Cancel safe: unwritten bytes stay queued.
    pub async fn flush(&mut self) -> Result<()> {
        poll_fn(|cx| self.poll_flush_all(cx)).await
    }

    /// Starts the close handshake with `frame` (`None`: no status code) and
    /// flushes. Keep calling [`WebSocket::recv`] until it returns `Ok(None)`:
    /// messages the peer sent before its close frame still arrive.
    ///
    /// # Errors
    /// The connection is already closing, an unsendable close code, or I/O.
    ///
    /// # Cancel safety
    /// Cancel safe: the close frame is queued before the first await.
    pub async fn close(&mut self, frame: Option<CloseFrame>) -> Result<()> {
        self.conn.close(frame, now())?;
        self.flush().await
    }

    pub(crate) fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    pub(crate) fn poll_ready_inner(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.poll_send_ready(cx)
    }

    pub(crate) fn poll_flush_inner(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.poll_flush_all(cx)
    }
}

/// What `poll_next` takes from the connection.
trait Take: Sized {
    fn take(conn: &mut Connection, max: usize) -> Option<Self>;
    /// The end of the connection, taken out (to finish closing first).
    fn closed(self) -> std::result::Result<Closed, Self>;
    /// The end, as this.
    fn end(c: Closed) -> Self;
}

impl Take for Event {
    #[inline(always)]
    fn take(conn: &mut Connection, _: usize) -> Option<Self> {
        conn.poll_event()
    }
    #[inline(always)]
    fn closed(self) -> std::result::Result<Closed, Self> {
        match self {
            Event::Closed(c) => Ok(c),
            ev => Err(ev),
        }
    }
    fn end(c: Closed) -> Self {
        Event::Closed(c)
    }
}

impl Take for Polled {
    #[inline(always)]
    fn take(conn: &mut Connection, max: usize) -> Option<Self> {
        conn.poll_in_place(max)
    }
    #[inline(always)]
    fn closed(self) -> std::result::Result<Closed, Self> {
        match self {
            Polled::Event(Event::Closed(c)) => Ok(c),
            p => Err(p),
        }
    }
    fn end(c: Closed) -> Self {
        Polled::Event(Event::Closed(c))
    }
}

/// A message of `poll_recv_in_place`, before it borrows the socket.
enum Got {
    Held(Held),
    Message(Message),
}

/// What [`WebSocket::poll_recv`] returns for an event: data inline, the
/// rest (with its error building) out of line, so the common case costs a move.
#[inline(always)]
fn message_of(ev: Event) -> Result<Option<Message>> {
    match ev {
        Event::Text(t) => Ok(Some(Message::Text(t))),
        Event::Binary(b) => Ok(Some(Message::Binary(b))),
        ev => other_message_of(ev),
    }
}

/// The whole mapping, of which [`message_of`] repeats the data arms inline.
/// (One inline match with cold error builders measured +15 instructions
/// per echo: the 96-byte `Closed` arm then moves through the hot path.)
#[inline(never)]
fn other_message_of(ev: Event) -> Result<Option<Message>> {
    match ev {
        Event::Text(t) => Ok(Some(Message::Text(t))),
        Event::Binary(b) => Ok(Some(Message::Binary(b))),
        Event::Ping(b) => Ok(Some(Message::Ping(b))),
        Event::Pong(b) => Ok(Some(Message::Pong(b))),
        Event::Fragment(_) => Err(Error::new(Kind::Unsupported(
            "recv() got a fragment: with deliver_fragments on, use recv_event()".into(),
        ))),
        Event::Closed(c) if c.is_clean() => Ok(None),
        Event::Closed(c) => Err(Error::new(Kind::Closed(Box::new(c)))),
    }
}

/// A read or write error that means the peer is gone, as an EOF without a
/// close frame would: a TCP reset (an aborted peer, `SO_LINGER` 0, a
/// middlebox), a write after one, or, over TLS, TCP ending without
/// `close_notify` (rustls reports that as `UnexpectedEof`). Reported as 1006
/// like a plain EOF, not as an I/O error: how a peer vanished should not
/// change what `recv` says.
fn peer_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
    )
}

/// Why [`WebSocket::try_send`] did not queue a message.
#[derive(Debug)]
pub enum TrySendError {
    /// The write queue is at its high-water mark (the peer reads slower than
    /// we send); the message is handed back.
    Full(Message),
    /// The message cannot be sent at all.
    Error(Error),
}

impl std::fmt::Display for TrySendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str(
                "write queue full: the peer reads slower than messages are sent (message handed back)",
            ),
            TrySendError::Error(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for TrySendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TrySendError::Full(_) => None,
            TrySendError::Error(e) => Some(e),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WebSocket<S> {
    type Item = Result<Message>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_recv(cx).map(Result::transpose)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WebSocket<S> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.get_mut().poll_send_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<()> {
        self.get_mut().conn.send(item)?;
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.get_mut().poll_flush_all(cx)
    }

    /// Sends a normal close (1000) if none was sent, and flushes.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        if !this.conn.is_closing() {
            this.conn.close(
                Some(CloseFrame::new(wsx_proto::CloseCode::NORMAL, "")),
                now(),
            )?;
        }
        this.poll_flush_all(cx)
    }
}
