//! The stream under a connection: TCP, TLS over TCP (either side), or an
//! HTTP/2 stream; and the server's [`ServerStream`].

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

pub use crate::http2::Http2Stream;

/// A connection's stream: plain TCP (`ws://`) or TLS (`wss://`), client
/// or server side, or a client's HTTP/2 stream (RFC 8441).
#[derive(Debug)]
pub enum MaybeTlsStream {
    /// `ws://`.
    Plain(TcpStream),
    /// `wss://`, client side.
    #[cfg(feature = "tls")]
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    /// `wss://`, server side (an accepted TLS connection).
    #[cfg(feature = "tls")]
    TlsServer(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// A stream of an HTTP/2 connection (`ws://` or `wss://` over HTTP/2,
    /// client side): the connection's TCP socket is shared with its other
    /// streams.
    Http2(Box<Http2Stream>),
}

impl MaybeTlsStream {
    /// The TCP socket underneath (`None` for an HTTP/2 stream, which
    /// shares its connection's socket).
    pub fn tcp(&self) -> Option<&TcpStream> {
        match self {
            MaybeTlsStream::Plain(s) => Some(s),
            #[cfg(feature = "tls")]
            MaybeTlsStream::Tls(s) => Some(s.get_ref().0),
            #[cfg(feature = "tls")]
            MaybeTlsStream::TlsServer(s) => Some(s.get_ref().0),
            MaybeTlsStream::Http2(_) => None,
        }
    }

    /// Whether the WebSocket runs over an HTTP/2 stream (RFC 8441).
    pub fn is_http2(&self) -> bool {
        matches!(self, MaybeTlsStream::Http2(_))
    }

    /// The TLS session, for `wss://` (version, cipher suite, ALPN, peer
    /// certificates).
    #[cfg(feature = "tls")]
    pub fn tls(&self) -> Option<&rustls::ClientConnection> {
        match self {
            MaybeTlsStream::Plain(_) => None,
            #[cfg(feature = "tls")]
            MaybeTlsStream::Tls(s) => Some(s.get_ref().1),
            #[cfg(feature = "tls")]
            MaybeTlsStream::TlsServer(_) => None,
            MaybeTlsStream::Http2(_) => None,
        }
    }
}

// `#[inline]`: one match on the hot path of every read and write; without
// it, where it is inlined depends on how the crate is split into codegen
// units (a new module moved it out of line: +44 instructions per echo).
impl AsyncRead for MaybeTlsStream {
    #[inline]
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(feature = "tls")]
            MaybeTlsStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            #[cfg(feature = "tls")]
            MaybeTlsStream::TlsServer(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            MaybeTlsStream::Http2(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MaybeTlsStream {
    #[inline]
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(feature = "tls")]
            MaybeTlsStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            #[cfg(feature = "tls")]
            MaybeTlsStream::TlsServer(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            MaybeTlsStream::Http2(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    #[inline]
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            #[cfg(feature = "tls")]
            MaybeTlsStream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            #[cfg(feature = "tls")]
            MaybeTlsStream::TlsServer(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            MaybeTlsStream::Http2(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }
    #[inline]
    fn is_write_vectored(&self) -> bool {
        match self {
            MaybeTlsStream::Plain(s) => s.is_write_vectored(),
            #[cfg(feature = "tls")]
            MaybeTlsStream::Tls(s) => s.is_write_vectored(),
            #[cfg(feature = "tls")]
            MaybeTlsStream::TlsServer(s) => s.is_write_vectored(),
            MaybeTlsStream::Http2(s) => s.is_write_vectored(),
        }
    }
    #[inline]
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_flush(cx),
            #[cfg(feature = "tls")]
            MaybeTlsStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            #[cfg(feature = "tls")]
            MaybeTlsStream::TlsServer(s) => Pin::new(s.as_mut()).poll_flush(cx),
            MaybeTlsStream::Http2(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(feature = "tls")]
            MaybeTlsStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            #[cfg(feature = "tls")]
            MaybeTlsStream::TlsServer(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            MaybeTlsStream::Http2(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The stream of a WebSocket that [`crate::Server::serve`] accepted: the
/// connection itself after an HTTP/1.1 upgrade, or one stream of an HTTP/2
/// connection (RFC 8441), which other WebSockets may share.
#[derive(Debug)]
pub enum ServerStream<S> {
    /// The connection (TCP or TLS), upgraded with `101 Switching Protocols`.
    Http1(S),
    /// A stream of an HTTP/2 connection, opened with extended `CONNECT`.
    Http2(Http2Stream),
}

impl<S> ServerStream<S> {
    /// Whether the WebSocket runs over an HTTP/2 stream (RFC 8441).
    pub fn is_http2(&self) -> bool {
        matches!(self, ServerStream::Http2(_))
    }

    /// The connection, for an HTTP/1.1 WebSocket (its TLS session, socket
    /// options); `None` over HTTP/2, whose connection other streams share.
    pub fn http1(&self) -> Option<&S> {
        match self {
            ServerStream::Http1(s) => Some(s),
            ServerStream::Http2(_) => None,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ServerStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerStream::Http1(s) => Pin::new(s).poll_read(cx, buf),
            ServerStream::Http2(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ServerStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ServerStream::Http1(s) => Pin::new(s).poll_write(cx, buf),
            ServerStream::Http2(s) => Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ServerStream::Http1(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            ServerStream::Http2(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }
    fn is_write_vectored(&self) -> bool {
        match self {
            ServerStream::Http1(s) => s.is_write_vectored(),
            ServerStream::Http2(s) => s.is_write_vectored(),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerStream::Http1(s) => Pin::new(s).poll_flush(cx),
            ServerStream::Http2(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerStream::Http1(s) => Pin::new(s).poll_shutdown(cx),
            ServerStream::Http2(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
