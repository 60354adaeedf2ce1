//! Independent receiving and sending halves of a [`WebSocket`].
//!
//! Both halves share the connection behind a mutex that is held only for
//! the duration of one poll (never across an await). The socket keeps one
//! waker per direction, and both halves may write (the reader flushes
//! automatic pongs), so the halves poll the socket with a shared waker that
//! wakes whichever of them is waiting: neither can strand the other.

use crate::error::Result;
use crate::socket::{now, WebSocket};
use futures_core::Stream;
use futures_sink::Sink;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use tokio::io::{AsyncRead, AsyncWrite};
use wsx_proto::{CloseFrame, Event, Fragment, Message};

#[derive(Default)]
struct Wakers {
    reader: Mutex<Option<Waker>>,
    writer: Mutex<Option<Waker>>,
}

impl Wake for Wakers {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        for slot in [&self.reader, &self.writer] {
            if let Some(w) = lock(slot).take() {
                w.wake();
            }
        }
    }
}

struct Shared<S> {
    ws: Mutex<WebSocket<S>>,
    wakers: Arc<Wakers>,
    waker: Waker,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves the data as consistent as the
    // panicking poll left it; keep going rather than poison every later call.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<S> Shared<S> {
    fn with<R>(
        &self,
        cx: &mut Context<'_>,
        reader: bool,
        f: impl FnOnce(&mut WebSocket<S>, &mut Context<'_>) -> R,
    ) -> R {
        let slot = if reader {
            &self.wakers.reader
        } else {
            &self.wakers.writer
        };
        {
            let mut w = lock(slot);
            match &*w {
                Some(old) if old.will_wake(cx.waker()) => {}
                _ => *w = Some(cx.waker().clone()),
            }
        }
        let mut inner_cx = Context::from_waker(&self.waker);
        f(&mut lock(&self.ws), &mut inner_cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocket<S> {
    /// Splits into a receiving and a sending half that can be used from
    /// different tasks.
    pub fn split(self) -> (WsReader<S>, WsWriter<S>) {
        let ws = self;
        let wakers = Arc::new(Wakers::default());
        let shared = Arc::new(Shared {
            ws: Mutex::new(ws),
            waker: Waker::from(wakers.clone()),
            wakers,
        });
        (
            WsReader {
                shared: shared.clone(),
            },
            WsWriter { shared },
        )
    }
}

/// The receiving half of a split [`WebSocket`]. It also answers pings and
/// runs keepalive timers, so keep a task receiving.
pub struct WsReader<S> {
    shared: Arc<Shared<S>>,
}

/// The sending half of a split [`WebSocket`].
pub struct WsWriter<S> {
    shared: Arc<Shared<S>>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsReader<S> {
    /// How the connection ended, once `recv` has reported the end.
    pub fn close_info(&self) -> Option<wsx_proto::Closed> {
        lock(&self.shared.ws).close_info().cloned()
    }

    /// See [`WebSocket::recv`].
    ///
    /// # Errors
    /// As [`WebSocket::recv`].
    ///
    /// # Cancel safety
    /// Cancel safe, as [`WebSocket::recv`].
    pub async fn recv(&mut self) -> Result<Option<Message>> {
        poll_fn(|cx| self.shared.with(cx, true, |ws, cx| ws.poll_recv(cx))).await
    }

    /// See [`WebSocket::recv_event`].
    ///
    /// # Errors
    /// As [`WebSocket::recv_event`].
    ///
    /// # Cancel safety
    /// Cancel safe, as [`WebSocket::recv`].
    pub async fn recv_event(&mut self) -> Result<Option<Event>> {
        poll_fn(|cx| self.shared.with(cx, true, |ws, cx| ws.poll_event(cx))).await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsWriter<S> {
    /// See [`WebSocket::send`].
    ///
    /// # Errors
    /// As [`WebSocket::send`].
    ///
    /// # Cancel safety
    /// As [`WebSocket::send`].
    pub async fn send(&mut self, msg: Message) -> Result<()> {
        self.feed(msg).await?;
        self.flush().await
    }

    /// See [`WebSocket::try_send`]: queues without waiting, or hands the
    /// message back when the write queue is full.
    ///
    /// # Errors
    /// As [`WebSocket::try_send`].
    pub fn try_send(&mut self, msg: Message) -> std::result::Result<(), crate::TrySendError> {
        // Register the shared waker: a half waiting on the socket is woken.
        let mut cx = Context::from_waker(&self.shared.waker);
        lock(&self.shared.ws).try_send_cx(msg, &mut cx)
    }

    /// See [`WebSocket::feed`].
    ///
    /// # Errors
    /// As [`WebSocket::send`].
    ///
    /// # Cancel safety
    /// Cancel safe: if cancelled, the message was not queued.
    pub async fn feed(&mut self, msg: Message) -> Result<()> {
        poll_fn(|cx| {
            self.shared
                .with(cx, false, |ws, cx| ws.poll_ready_inner(cx))
        })
        .await?;
        let mut ws = lock(&self.shared.ws);
        ws.conn_mut().send(msg)?;
        Ok(())
    }

    /// See [`WebSocket::feed_prepared`].
    ///
    /// # Errors
    /// As [`WebSocket::send`].
    ///
    /// # Cancel safety
    /// Cancel safe: if cancelled, the message was not queued.
    pub async fn feed_prepared(&mut self, msg: &wsx_proto::PreparedMessage) -> Result<()> {
        poll_fn(|cx| {
            self.shared
                .with(cx, false, |ws, cx| ws.poll_ready_inner(cx))
        })
        .await?;
        lock(&self.shared.ws).conn_mut().send_prepared(msg)?;
        Ok(())
    }

    /// See [`WebSocket::send_fragment`].
    ///
    /// # Errors
    /// As [`WebSocket::send_fragment`].
    ///
    /// # Cancel safety
    /// As [`WebSocket::send`].
    pub async fn send_fragment(&mut self, fragment: Fragment) -> Result<()> {
        poll_fn(|cx| {
            self.shared
                .with(cx, false, |ws, cx| ws.poll_ready_inner(cx))
        })
        .await?;
        lock(&self.shared.ws).conn_mut().send_fragment(fragment)?;
        self.flush().await
    }

    /// See [`WebSocket::flush`].
    ///
    /// # Errors
    /// An I/O error.
    ///
    /// # Cancel safety
    /// Cancel safe: unwritten bytes stay queued.
    pub async fn flush(&mut self) -> Result<()> {
        poll_fn(|cx| {
            self.shared
                .with(cx, false, |ws, cx| ws.poll_flush_inner(cx))
        })
        .await
    }

    /// See [`WebSocket::close`]; the reader half then sees the end.
    ///
    /// # Errors
    /// As [`WebSocket::close`].
    ///
    /// # Cancel safety
    /// Cancel safe: the close frame is queued before the first await.
    pub async fn close(&mut self, frame: Option<CloseFrame>) -> Result<()> {
        lock(&self.shared.ws).conn_mut().close(frame, now())?;
        // Wake the reader so it notices the closing state and its timer.
        self.shared.wakers.wake_by_ref();
        self.flush().await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WsReader<S> {
    type Item = Result<Message>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.shared
            .with(cx, true, |ws, cx| ws.poll_recv(cx))
            .map(Result::transpose)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WsWriter<S> {
    type Error = crate::Error;
    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.shared
            .with(cx, false, |ws, cx| ws.poll_ready_inner(cx))
    }
    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<()> {
        lock(&self.shared.ws).conn_mut().send(item)?;
        Ok(())
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.shared
            .with(cx, false, |ws, cx| ws.poll_flush_inner(cx))
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.shared
            .with(cx, false, |ws, cx| Pin::new(ws).poll_close(cx))
    }
}
