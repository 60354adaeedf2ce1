//! The options the session, the REPL and the reconnect loop share, taken
//! from the flags once.

use super::output::BinaryFormat;
use std::time::Duration;

#[derive(Debug, Clone)]
pub(super) struct Opts {
    pub(super) binary: bool,
    pub(super) json: bool,
    pub(super) binary_format: BinaryFormat,
    pub(super) show_ping: bool,
    pub(super) once: bool,
    pub(super) reconnect: bool,
    pub(super) max_attempts: Option<u32>,
    /// `--wait`: how long to keep receiving after the end of input.
    pub(super) wait: Option<Duration>,
    /// Pipe mode: at the end of input, close once the replies stop
    /// ([`Linger`](super::linger::Linger)); on a terminal, Ctrl-D closes at once.
    pub(super) linger: bool,
    pub(super) verbose: bool,
}
