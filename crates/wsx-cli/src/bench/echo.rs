//! The echo loop of one connection: a closed loop (a window of `--depth`
//! messages in flight, each echo lets the next one go) or an open loop (a
//! schedule at the connection's share of `--rate`, latency counted from the
//! scheduled time); every echo checked against what was sent, and timed.

use super::plan::{Clock, Plan};
use super::wire::Rx;
use hdrhistogram::Histogram;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::task::Poll;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use wsx::MaybeTlsStream;

/// Open loop: most bytes queued for writing. Messages past it stay due (their
/// latency still counts from their scheduled time) instead of piling up in
/// memory when the server falls behind.
const MAX_QUEUED: usize = 1 << 20;

/// Open loop: how long echoes may keep the run going after `-d` has passed.
const DRAIN_GRACE: Duration = Duration::from_secs(10);

/// What one step of the open loop did.
enum Step {
    /// Read this many bytes (0: the server closed).
    Read(usize),
    /// Messages are due.
    Due,
}

/// The state of one connection's echo loop.
pub(super) struct EchoLoop<'a> {
    plan: &'a Plan,
    /// Our frames, sent in turn (message `n` is `frames[n % len]`).
    frames: &'a [Vec<u8>],
    clock: Clock,
    /// Open loop: the time between two sends on this connection.
    interval: Option<Duration>,
    next_send: Instant,
    /// Frames to write next.
    wbuf: Vec<u8>,
    /// Open loop: how much of `wbuf` is already written.
    written: usize,
    /// When each message still awaiting its echo was sent (or scheduled).
    sent_at: VecDeque<Instant>,
    sent: u64,
    echoed: u64,
    stop_sending: bool,
    /// Counts not yet added to the shared stats.
    sent_reported: u64,
    wire_out: u64,
    wire_in: u64,
    errors: u64,
    total_echoes: u64,
}

impl<'a> EchoLoop<'a> {
    pub(super) fn new(plan: &'a Plan, frames: &'a [Vec<u8>], clock: Clock) -> Self {
        // Open loop: a send schedule instead of a window.
        let interval = plan
            .args
            .rate
            .map(|r| Duration::from_secs_f64(plan.args.connections as f64 / r.max(1e-9)));
        EchoLoop {
            plan,
            frames,
            clock,
            interval,
            next_send: Instant::now(),
            wbuf: Vec::with_capacity(frames[0].len() * plan.args.depth),
            written: 0,
            sent_at: VecDeque::with_capacity(plan.args.depth),
            sent: 0,
            echoed: 0,
            stop_sending: false,
            sent_reported: 0,
            wire_out: 0,
            wire_in: 0,
            errors: 0,
            total_echoes: 0,
        }
    }

    /// Sends and reads until every message due has been sent and echoed.
    pub(super) async fn run(
        mut self,
        tcp: &mut MaybeTlsStream,
        rx: &mut Rx,
        hist: &mut Histogram<u64>,
    ) -> Result<(), String> {
        if self.interval.is_none() {
            let now = Instant::now();
            for _ in 0..self.plan.args.depth {
                if self.may_send() {
                    self.queue(now);
                }
            }
            self.write(tcp).await?;
        }
        loop {
            let n = match self.interval {
                None => tcp.read_buf(rx.buffer()).await.map_err(|e| e.to_string())?,
                Some(iv) => match self.open_step(tcp, rx).await? {
                    Step::Read(n) => n,
                    Step::Due => {
                        self.queue_due(iv);
                        continue;
                    }
                },
            };
            if n == 0 {
                return Err(format!(
                    "server closed the connection with {} echoes outstanding",
                    self.sent_at.len()
                ));
            }
            self.wire_in += n as u64;
            let now = Instant::now();
            rx.received(now);
            let new_echoes = self.take_echoes(rx, now, hist)?;
            self.report_echoes(new_echoes);
            // Pongs the Connection queued for the server's pings (the open
            // loop writes them with its next step).
            rx.take_output(&mut self.wbuf);
            if self.interval.is_none() && !self.wbuf.is_empty() {
                self.write(tcp).await?;
            }
            self.report_wire();
            if self.stop_sending && self.sent_at.is_empty() {
                return Ok(());
            }
        }
    }

    /// Whether `-n` leaves room for another message.
    fn may_send(&self) -> bool {
        self.plan.per_conn_limit.is_none_or(|l| self.sent < l)
    }

    /// Queues the next message, as sent (or scheduled) at `at`.
    fn queue(&mut self, at: Instant) {
        let k = self.frames.len() as u64;
        self.wbuf
            .extend_from_slice(&self.frames[(self.sent % k) as usize]);
        self.sent_at.push_back(at);
        self.sent += 1;
    }

    /// Open loop: one step. Writes what it can of the queue, then reads;
    /// reading never waits on writing, because a server stops reading while
    /// its echoes are not read (a `write_all` first deadlocked with any
    /// server that pushes back). Ends the run with an error when echoes are
    /// still missing [`DRAIN_GRACE`] after `-d`.
    async fn open_step(&mut self, tcp: &mut MaybeTlsStream, rx: &mut Rx) -> Result<Step, String> {
        let wake_at = if self.stop_sending {
            self.clock.end + DRAIN_GRACE
        } else {
            self.next_send
        };
        let timer = tokio::time::sleep_until(wake_at);
        tokio::pin!(timer);
        std::future::poll_fn(|cx| {
            while self.written < self.wbuf.len() {
                match Pin::new(&mut *tcp).poll_write(cx, &self.wbuf[self.written..]) {
                    Poll::Ready(Ok(0)) => {
                        return Poll::Ready(Err("the server stopped taking data".to_string()))
                    }
                    Poll::Ready(Ok(n)) => {
                        self.written += n;
                        self.wire_out += n as u64;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e.to_string())),
                    Poll::Pending => break,
                }
            }
            if self.written == self.wbuf.len() {
                self.wbuf.clear();
                self.written = 0;
            }
            match tokio_util::io::poll_read_buf(Pin::new(&mut *tcp), cx, rx.buffer()) {
                Poll::Ready(Ok(n)) => return Poll::Ready(Ok(Step::Read(n))),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e.to_string())),
                Poll::Pending => {}
            }
            // Past the cap, wait for the queue to drain before queuing more.
            if (self.stop_sending || self.wbuf.len() < MAX_QUEUED)
                && timer.as_mut().poll(cx).is_ready()
            {
                if self.stop_sending {
                    return Poll::Ready(Err(format!(
                        "{} echoes still missing {}s after the run ended: the server stopped answering",
                        self.sent_at.len(),
                        DRAIN_GRACE.as_secs()
                    )));
                }
                return Poll::Ready(Ok(Step::Due));
            }
            Poll::Pending
        })
        .await
    }

    /// Open loop: queues every message whose time has come (up to
    /// [`MAX_QUEUED`] bytes waiting to be written).
    fn queue_due(&mut self, iv: Duration) {
        let now = Instant::now();
        while self.next_send <= now
            && self.sent_at.len() < 100_000
            && self.wbuf.len() < MAX_QUEUED
            && self.may_send()
        {
            self.queue(self.next_send);
            self.next_send += iv;
        }
        if now >= self.clock.end || !self.may_send() {
            self.stop_sending = true;
        }
    }

    /// Writes what is queued.
    async fn write(&mut self, tcp: &mut MaybeTlsStream) -> Result<(), String> {
        tcp.write_all(&self.wbuf).await.map_err(|e| e.to_string())?;
        self.wire_out += self.wbuf.len() as u64;
        self.wbuf.clear();
        Ok(())
    }

    /// Checks and times the echoes that have arrived whole; in the closed
    /// loop each one lets the next message go. Returns how many count
    /// (after the warm-up).
    fn take_echoes(
        &mut self,
        rx: &mut Rx,
        now: Instant,
        hist: &mut Histogram<u64>,
    ) -> Result<u64, String> {
        let measuring = now >= self.clock.measure_from;
        let mut new_echoes = 0u64;
        let k = self.frames.len() as u64;
        loop {
            let next = (self.echoed % k) as usize;
            let Some(echo_ok) = rx.next_echo(
                self.plan.args.raw_tcp,
                &self.frames[next],
                &self.plan.payloads[next],
            )?
            else {
                return Ok(new_echoes);
            };
            // Pings and pongs from the server are not echoes.
            let Some(ok) = echo_ok else { continue };
            if !ok {
                self.errors += 1;
            }
            let t = self
                .sent_at
                .pop_front()
                .ok_or("more echoes than messages sent")?;
            if measuring && t >= self.clock.measure_from {
                let _ = hist.record((now - t).as_nanos().max(1) as u64);
                new_echoes += 1;
            }
            self.echoed += 1;
            self.total_echoes += 1;
            let done =
                self.plan.per_conn_limit.is_some_and(|l| self.echoed >= l) || now >= self.clock.end;
            if self.interval.is_none() && !done && self.may_send() {
                self.queue(now);
            }
            if done {
                self.stop_sending = true;
            }
        }
    }

    /// Adds the echoes and errors of the last read to the shared stats.
    fn report_echoes(&mut self, new_echoes: u64) {
        let stats = &self.plan.stats;
        if new_echoes > 0 {
            stats.messages.fetch_add(new_echoes, Relaxed);
        }
        if self.total_echoes > 0 {
            stats.total.fetch_add(self.total_echoes, Relaxed);
            self.total_echoes = 0;
        }
        if self.errors > 0 {
            stats.errors.fetch_add(self.errors, Relaxed);
            self.errors = 0;
        }
    }

    /// Adds the bytes and messages sent and received to the shared stats.
    fn report_wire(&mut self) {
        let stats = &self.plan.stats;
        stats
            .wire_out
            .fetch_add(std::mem::take(&mut self.wire_out), Relaxed);
        stats
            .wire_in
            .fetch_add(std::mem::take(&mut self.wire_in), Relaxed);
        stats
            .sent
            .fetch_add(self.sent - self.sent_reported, Relaxed);
        self.sent_reported = self.sent;
    }
}
