//! WebSockets over HTTP/2 (RFC 8441, extended `CONNECT`): the settings
//! both sides share ([`Http2Config`]), the stream a WebSocket runs over
//! ([`Http2Stream`]), and the client's connection ([`Http2Connection`]).
//! The server side lives with the accept loop (`serve/h2.rs`).
//!
//! Flow control is what makes or breaks many sockets on one connection:
//! HTTP/2 gives each stream a receive window and the whole connection
//! another. A WebSocket whose application never reads keeps its stream's
//! window full; if the connection window were smaller than the sum of the
//! stream windows, such sockets would use it up and stall every other socket
//! on the connection. So the connection window is
//! `max_streams × stream_window` (100 × 256 KiB = 25 MiB by default): one
//! stalled socket holds at most its 256 KiB, and the others go on. The same
//! numbers bound memory: a connection buffers at most that much unread
//! data, and the server advertises `max_streams` (a client that opens more
//! gets `REFUSED_STREAM`, which HTTP/2 defines as safe to retry).

mod client;
mod stream;

pub use client::Http2Connection;
pub use stream::Http2Stream;

/// HTTP/2 settings for WebSockets, on either side (see the module
/// documentation for why the windows are sized as they are).
///
/// ```
/// let h2 = wsx::http2::Http2Config::default().max_streams(50);
/// assert_eq!(h2.connection_window(), 50 * 256 * 1024);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Http2Config {
    /// Streams (WebSockets and plain requests) open at once on one
    /// connection; the server advertises it as
    /// `SETTINGS_MAX_CONCURRENT_STREAMS`. Default 100.
    pub max_streams: u32,
    /// Bytes a peer may send on one stream before it is read
    /// (`SETTINGS_INITIAL_WINDOW_SIZE`). Default 256 KiB: a 1 MiB message
    /// flows at the reader's pace in four window updates.
    pub stream_window: u32,
    /// Largest frame the peer may send (`SETTINGS_MAX_FRAME_SIZE`, 16 KiB
    /// to 16 MiB - 1). Default 64 KiB: a 64 KiB message in one DATA frame
    /// instead of four (bench/http2/run: server CPU per 64 KiB echo 0.72x
    /// of that with 16 KiB, per 1 KiB echo 0.72x).
    pub max_frame_size: u32,
    /// Advertise `SETTINGS_ENABLE_CONNECT_PROTOCOL` (RFC 8441) so clients
    /// open WebSockets on the connection. Default true; off, HTTP/2 still
    /// serves plain requests and browsers open WebSockets over HTTP/1.1.
    pub extended_connect: bool,
}

crate::setters!(Http2Config {
    max_streams: u32,
    stream_window: u32,
    max_frame_size: u32,
    extended_connect: bool,
});

/// The default [`Http2Config::stream_window`].
pub const DEFAULT_STREAM_WINDOW: u32 = 256 * 1024;

/// The default [`Http2Config::max_streams`].
pub const DEFAULT_MAX_STREAMS: u32 = 100;

impl Default for Http2Config {
    fn default() -> Self {
        Http2Config {
            max_streams: DEFAULT_MAX_STREAMS,
            stream_window: DEFAULT_STREAM_WINDOW,
            max_frame_size: 64 * 1024,
            extended_connect: true,
        }
    }
}

impl Http2Config {
    /// The connection's receive window: room for every stream's window at
    /// once (so no stream can starve the others), capped at HTTP/2's
    /// largest window (2^31 - 1).
    pub fn connection_window(&self) -> u32 {
        let want = u64::from(self.max_streams.max(1)) * u64::from(self.stream_window);
        u32::try_from(want.min((1 << 31) - 1)).unwrap_or(u32::MAX >> 1)
    }
}

/// The HTTP/2 connection preface a client with prior knowledge (h2c) sends
/// first (RFC 9113 §3.4).
pub(crate) const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
