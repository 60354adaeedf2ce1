//! [`Http2Stream`]: one HTTP/2 stream as a byte stream, for a WebSocket.

use bytes::{Buf, Bytes};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Most bytes one write hands to HTTP/2 (as one DATA frame's worth of
/// capacity, or one copy into hyper's stream): small frames coalesce,
/// large payloads go in pieces the peer's window can take.
const MAX_WRITE: usize = 64 * 1024;

/// One WebSocket's HTTP/2 stream (RFC 8441): reads are the stream's DATA,
/// writes become DATA, shutdown ends the stream (`END_STREAM`). The end of
/// the peer's side, or a reset with `NO_ERROR` or `CANCEL`, reads as the
/// end of the stream; other resets are I/O errors naming the HTTP/2 error
/// code.
///
/// Received data is handed back to the flow-control window only as it is
/// read: a WebSocket whose application stops reading stops its peer, and
/// holds no more than its stream window.
pub struct Http2Stream {
    inner: Inner,
}

enum Inner {
    /// The server's side: hyper's upgraded stream.
    Server(hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>),
    /// The client's side, over the `h2` crate.
    Client(ClientIo),
}

impl std::fmt::Debug for Http2Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let side = match self.inner {
            Inner::Server(_) => "server",
            Inner::Client(_) => "client",
        };
        f.debug_struct("Http2Stream").field("side", &side).finish()
    }
}

impl Http2Stream {
    pub(crate) fn server(upgraded: hyper::upgrade::Upgraded) -> Self {
        Http2Stream {
            inner: Inner::Server(hyper_util::rt::TokioIo::new(upgraded)),
        }
    }

    pub(crate) fn client(
        send: h2::SendStream<Bytes>,
        recv: h2::RecvStream,
        open: OpenGuard,
    ) -> Self {
        Http2Stream {
            inner: Inner::Client(ClientIo {
                send,
                recv,
                chunk: Bytes::new(),
                eof: false,
                ended: false,
                _open: open,
            }),
        }
    }
}

/// Counts one of a connection's open WebSocket streams until dropped.
pub(crate) struct OpenGuard(Arc<AtomicUsize>);

impl OpenGuard {
    pub(crate) fn new(count: Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Relaxed);
        OpenGuard(count)
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

struct ClientIo {
    send: h2::SendStream<Bytes>,
    recv: h2::RecvStream,
    /// Received and not yet read.
    chunk: Bytes,
    /// The peer ended its side.
    eof: bool,
    /// We ended ours.
    ended: bool,
    _open: OpenGuard,
}

/// An `h2` error as I/O: a reset the peer meant as an orderly end
/// (`NO_ERROR`, `CANCEL`) is the end of the stream (`Ok(None)`).
fn h2_error(e: h2::Error) -> io::Result<()> {
    if e.is_reset() && matches!(e.reason(), Some(h2::Reason::NO_ERROR | h2::Reason::CANCEL)) {
        return Ok(());
    }
    if let Some(io) = e.get_io() {
        return Err(io::Error::new(io.kind(), e.to_string()));
    }
    Err(io::Error::other(format!("HTTP/2 stream: {e}")))
}

impl ClientIo {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            if !self.chunk.is_empty() {
                let n = self.chunk.len().min(buf.remaining());
                buf.put_slice(&self.chunk[..n]);
                self.chunk.advance(n);
                // The window reopens as the application reads, not before.
                let _ = self.recv.flow_control().release_capacity(n);
                return Poll::Ready(Ok(()));
            }
            if self.eof {
                return Poll::Ready(Ok(()));
            }
            match ready!(self.recv.poll_data(cx)) {
                Some(Ok(data)) => self.chunk = data,
                Some(Err(e)) => {
                    self.eof = true;
                    return Poll::Ready(h2_error(e));
                }
                None => self.eof = true,
            }
        }
    }

    fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let want: usize = bufs.iter().map(|b| b.len()).sum::<usize>().min(MAX_WRITE);
        if want == 0 {
            return Poll::Ready(Ok(0));
        }
        if self.ended {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write after the HTTP/2 stream was ended",
            )));
        }
        // Capacity is the peer's window granted to this stream: wait for it
        // (backpressure), then send no more than it.
        while self.send.capacity() == 0 {
            self.send.reserve_capacity(want);
            match ready!(self.send.poll_capacity(cx)) {
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    return Poll::Ready(match h2_error(e) {
                        Ok(()) => Err(io::Error::new(
                            io::ErrorKind::BrokenPipe,
                            "the peer ended the HTTP/2 stream",
                        )),
                        Err(e) => Err(e),
                    })
                }
                None => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        "the HTTP/2 stream is closed",
                    )))
                }
            }
        }
        let n = self.send.capacity().min(want);
        let mut data = Vec::with_capacity(n);
        for b in bufs {
            let take = (n - data.len()).min(b.len());
            data.extend_from_slice(&b[..take]);
            if data.len() == n {
                break;
            }
        }
        match self.send.send_data(Bytes::from(data), false) {
            Ok(()) => Poll::Ready(Ok(n)),
            Err(e) => Poll::Ready(Err(h2_error(e).err().unwrap_or_else(|| {
                io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the peer ended the HTTP/2 stream",
                )
            }))),
        }
    }

    fn shutdown(&mut self) -> io::Result<()> {
        if !self.ended {
            self.ended = true;
            self.send.send_data(Bytes::new(), true).or_else(h2_error)?;
        }
        Ok(())
    }
}

impl AsyncRead for Http2Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.get_mut().inner {
            Inner::Server(s) => Pin::new(s).poll_read(cx, buf),
            Inner::Client(c) => c.poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Http2Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().inner {
            Inner::Server(s) => Pin::new(s).poll_write(cx, &buf[..buf.len().min(MAX_WRITE)]),
            Inner::Client(c) => c.poll_write(cx, &[io::IoSlice::new(buf)]),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().inner {
            // hyper copies each write into a DATA frame of its own: gather a
            // frame's header and payload into one write rather than sending
            // a 2-byte DATA frame before each payload.
            Inner::Server(s) => {
                let first = bufs.iter().find(|b| !b.is_empty()).map_or(0, |b| b.len());
                if bufs.len() == 1 || first >= MAX_WRITE {
                    let b = bufs
                        .iter()
                        .find(|b| !b.is_empty())
                        .map_or(&[][..], |b| &b[..]);
                    return Pin::new(s).poll_write(cx, &b[..b.len().min(MAX_WRITE)]);
                }
                let total: usize = bufs.iter().map(|b| b.len()).sum::<usize>().min(MAX_WRITE);
                let mut data = Vec::with_capacity(total);
                for b in bufs {
                    let take = (total - data.len()).min(b.len());
                    data.extend_from_slice(&b[..take]);
                    if data.len() == total {
                        break;
                    }
                }
                Pin::new(s).poll_write(cx, &data)
            }
            Inner::Client(c) => c.poll_write(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().inner {
            Inner::Server(s) => Pin::new(s).poll_flush(cx),
            // The connection's task writes what send_data queued.
            Inner::Client(_) => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().inner {
            Inner::Server(s) => Pin::new(s).poll_shutdown(cx),
            Inner::Client(c) => Poll::Ready(c.shutdown()),
        }
    }
}
