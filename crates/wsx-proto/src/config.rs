//! Connection configuration: limits and timers, with documented defaults.

use std::time::Duration;

/// Settings for a [`crate::Connection`], built once with [`ConfigBuilder`].
///
/// ```
/// use std::time::Duration;
/// let config = wsx_proto::Config::builder()
///     .max_message_size(1 << 20)
///     .ping_interval(Some(Duration::from_secs(30)))
///     .build()
///     .unwrap();
/// assert_eq!(config.max_message_size(), 1 << 20);
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    max_frame_size: usize,
    max_message_size: usize,
    ping_interval: Option<Duration>,
    pong_timeout: Duration,
    close_timeout: Duration,
    deliver_fragments: bool,
    max_fragments: usize,
    min_fragment_average: usize,
    idle_timeout: Option<Duration>,
    send_frame_size: Option<usize>,
    buffer_release_delay: Option<Duration>,
}

/// 16 MiB: large enough for any sane message, small enough that a hostile
/// peer cannot make one connection hold much memory. Send bulk data over HTTP.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 16 << 20;
/// Frames are bounded like messages by default.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 16 << 20;
/// How long to wait for a pong (or any data) after a keepalive ping.
pub const DEFAULT_PONG_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for the peer's close frame after sending ours.
pub const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Most frames one message may have, whatever their size: 1,048,576 (with
/// the 16 MiB message limit, 16-byte fragments).
pub const DEFAULT_MAX_FRAGMENTS: usize = 1 << 20;
/// Past the first [`FREE_FRAGMENTS`] frames of a message, its frames must
/// carry this many payload bytes on average. Without such a rule a peer can
/// send empty or 1-byte continuation frames forever: no memory grows, but the
/// connection burns CPU and never completes a message. 16 bytes admits every
/// legitimate fragmentation we know (the Autobahn suite's finest is 4 MiB in
/// 64-byte fragments) while a flood of 1-byte fragments ends after ~1,100
/// frames.
pub const DEFAULT_MIN_FRAGMENT_AVERAGE: usize = 16;
/// Frames of a message that may be of any size (tiny or empty) before
/// [`DEFAULT_MIN_FRAGMENT_AVERAGE`] applies: per-byte fragmentation of short
/// messages (as some test suites do) stays legal.
pub const FREE_FRAGMENTS: usize = 1024;
/// How long a connection must receive and send nothing before it gives its
/// buffers back: long enough that a busy connection keeps them between
/// messages (no allocation per message), short enough that an idle one
/// costs little memory.
pub const DEFAULT_BUFFER_RELEASE_DELAY: Duration = Duration::from_secs(1);

impl Default for Config {
    fn default() -> Self {
        Config {
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            ping_interval: None,
            pong_timeout: DEFAULT_PONG_TIMEOUT,
            close_timeout: DEFAULT_CLOSE_TIMEOUT,
            deliver_fragments: false,
            max_fragments: DEFAULT_MAX_FRAGMENTS,
            min_fragment_average: DEFAULT_MIN_FRAGMENT_AVERAGE,
            idle_timeout: None,
            send_frame_size: None,
            buffer_release_delay: Some(DEFAULT_BUFFER_RELEASE_DELAY),
        }
    }
}

impl Config {
    /// A builder starting from the defaults.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder(Config::default())
    }
    /// Largest accepted frame payload; larger frames fail with 1009 before
    /// their payload is buffered. Default [`DEFAULT_MAX_FRAME_SIZE`].
    pub fn max_frame_size(&self) -> usize {
        self.max_frame_size
    }
    /// Largest accepted message (sum of its fragments); 1009 past it.
    /// Default [`DEFAULT_MAX_MESSAGE_SIZE`].
    pub fn max_message_size(&self) -> usize {
        self.max_message_size
    }
    /// Send a keepalive ping this often; `None` (the default) disables keepalive.
    pub fn ping_interval(&self) -> Option<Duration> {
        self.ping_interval
    }
    /// After a keepalive ping, the peer must send something within this time
    /// or the connection ends as 1006. Default [`DEFAULT_PONG_TIMEOUT`].
    pub fn pong_timeout(&self) -> Duration {
        self.pong_timeout
    }
    /// After sending a close frame, wait this long for the peer's. Default
    /// [`DEFAULT_CLOSE_TIMEOUT`].
    pub fn close_timeout(&self) -> Duration {
        self.close_timeout
    }
    /// Deliver data frames one by one as [`crate::Event::Fragment`] instead of
    /// whole messages (for streaming large messages). Default off.
    pub fn deliver_fragments(&self) -> bool {
        self.deliver_fragments
    }
    /// Most data frames one message may have; the next one fails the
    /// connection with 1009. Default [`DEFAULT_MAX_FRAGMENTS`].
    pub fn max_fragments(&self) -> usize {
        self.max_fragments
    }
    /// Past the first [`FREE_FRAGMENTS`] frames, a message's frames must
    /// average at least this many payload bytes, or the connection fails
    /// with 1009: floods of tiny or empty fragments end early. 0 turns the
    /// rule off. Default [`DEFAULT_MIN_FRAGMENT_AVERAGE`].
    pub fn min_fragment_average(&self) -> usize {
        self.min_fragment_average
    }
    /// Close the connection (1001, "idle") when no text or binary message
    /// was received or sent for this long; pings and pongs do not count.
    /// Received messages are timed exactly; a sent message postpones the
    /// close by up to one more period. `None` (the default): never, since
    /// many applications keep quiet subscribers open for hours.
    pub fn idle_timeout(&self) -> Option<Duration> {
        self.idle_timeout
    }
    /// Split each sent text or binary message whose payload (after
    /// compression) is longer than this into frames of at most this many
    /// bytes: for intermediaries with a frame-size limit, for interleaving
    /// pings with long messages, and for testing a peer's fragment handling.
    /// `None` (the default): one frame per message. Below 16 bytes, messages
    /// longer than about 16 KiB look like a fragment flood to peers that
    /// enforce an average fragment size ([`Config::min_fragment_average`]
    /// on a wsx peer: 1009).
    pub fn send_frame_size(&self) -> Option<usize> {
        self.send_frame_size
    }
    /// Give the receive and send buffers (and an unused compressor) back to
    /// the allocator once nothing was received or sent for this long
    /// (through [`crate::Connection::handle_timeout`]), so that an idle
    /// connection holds little memory while a busy one allocates nothing
    /// per message. While output waits for a peer that does not read, the
    /// check repeats at this interval. `None`: only when the caller asks
    /// ([`crate::Connection::shrink_buffers`]). Default
    /// [`DEFAULT_BUFFER_RELEASE_DELAY`].
    pub fn buffer_release_delay(&self) -> Option<Duration> {
        self.buffer_release_delay
    }
}

/// A configuration value that makes no sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(&'static str);

/// Builds a [`Config`]; [`ConfigBuilder::build`] validates it.
#[derive(Debug, Clone)]
pub struct ConfigBuilder(Config);

impl ConfigBuilder {
    /// See [`Config::max_frame_size`].
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.0.max_frame_size = bytes;
        self
    }
    /// See [`Config::max_message_size`].
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.0.max_message_size = bytes;
        self
    }
    /// See [`Config::ping_interval`].
    pub fn ping_interval(mut self, interval: Option<Duration>) -> Self {
        self.0.ping_interval = interval;
        self
    }
    /// See [`Config::pong_timeout`].
    pub fn pong_timeout(mut self, timeout: Duration) -> Self {
        self.0.pong_timeout = timeout;
        self
    }
    /// See [`Config::close_timeout`].
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.0.close_timeout = timeout;
        self
    }
    /// See [`Config::deliver_fragments`].
    pub fn deliver_fragments(mut self, on: bool) -> Self {
        self.0.deliver_fragments = on;
        self
    }
    /// See [`Config::max_fragments`].
    pub fn max_fragments(mut self, frames: usize) -> Self {
        self.0.max_fragments = frames;
        self
    }
    /// See [`Config::min_fragment_average`].
    pub fn min_fragment_average(mut self, bytes: usize) -> Self {
        self.0.min_fragment_average = bytes;
        self
    }
    /// See [`Config::idle_timeout`].
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.0.idle_timeout = timeout;
        self
    }
    /// See [`Config::send_frame_size`].
    pub fn send_frame_size(mut self, bytes: Option<usize>) -> Self {
        self.0.send_frame_size = bytes;
        self
    }
    /// See [`Config::buffer_release_delay`].
    pub fn buffer_release_delay(mut self, delay: Option<Duration>) -> Self {
        self.0.buffer_release_delay = delay;
        self
    }
    /// Checks the values and returns the configuration.
    pub fn build(self) -> Result<Config, ConfigError> {
        let c = self.0;
        if c.max_frame_size == 0 || c.max_message_size == 0 {
            return Err(ConfigError("size limits must be at least 1 byte"));
        }
        if c.ping_interval == Some(Duration::ZERO) {
            return Err(ConfigError("ping_interval must be longer than zero"));
        }
        if c.send_frame_size == Some(0) {
            return Err(ConfigError("send_frame_size must be at least 1 byte"));
        }
        if c.max_fragments == 0 {
            return Err(ConfigError("max_fragments must be at least 1"));
        }
        if c.pong_timeout.is_zero()
            || c.close_timeout.is_zero()
            || c.idle_timeout == Some(Duration::ZERO)
            || c.buffer_release_delay == Some(Duration::ZERO)
        {
            return Err(ConfigError("timeouts must be longer than zero"));
        }
        Ok(c)
    }
}
