//! The end-of-input rule of pipe mode: when to close once stdin has ended.
//! Plain data and arithmetic on instants, tested without a clock.

use std::time::{Duration, Instant};

/// When to close after the end of input in a pipe: once the replies stop.
///
/// Closing at once loses replies: a server may answer our close at once
/// and drop what it was still producing (Python `websockets` does), or the
/// replies are simply still on the wire. So wsx keeps reading, and closes
/// with 1000 once nothing (no message, no fragment of one) has arrived for
/// a quiet period, counted from the end of input or the last arrival,
/// whichever is later:
/// - [`Linger::ANSWERED_QUIET`] (0.25 s) once at least as many messages came
///   back as were sent (an echo or request/response server is done: close
///   promptly; the slack covers a second reply close behind the first);
/// - [`Linger::QUIET`] (1 s) while fewer came back (a server that takes its
///   time, or never replies: it costs one second);
/// - and at the latest [`Linger::CAP`] (10 s) after the end of input, for a
///   server that keeps talking (a feed: keep stdin open to read it, or
///   `--wait SECS`).
///
/// Plain data, no clock: the caller passes the instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Linger {
    /// The end of input, after what was sent had been flushed.
    pub(super) eof: Instant,
    /// Data messages sent and received on this connection.
    pub(super) sent: u64,
    pub(super) received: u64,
    /// When the last message or fragment arrived.
    pub(super) last_arrival: Option<Instant>,
}

impl Linger {
    const ANSWERED_QUIET: Duration = Duration::from_millis(250);
    const QUIET: Duration = Duration::from_secs(1);
    const CAP: Duration = Duration::from_secs(10);

    /// The quiet period that closes: short once every message sent has
    /// had its reply.
    fn quiet(&self) -> Duration {
        if self.received >= self.sent {
            Self::ANSWERED_QUIET
        } else {
            Self::QUIET
        }
    }

    /// When to close, if nothing more arrives.
    pub(super) fn close_at(&self) -> Instant {
        let last = self.last_arrival.map_or(self.eof, |t| t.max(self.eof));
        (last + self.quiet()).min(self.eof + Self::CAP)
    }

    /// For `-v`: why it closes now.
    pub(super) fn explain(&self) -> String {
        let counts = format!("{} sent, {} received", self.sent, self.received);
        if self.close_at() == self.eof + Self::CAP {
            return format!(
                "closing {} s after it ({counts}): the server kept sending (--wait SECS reads longer)",
                Self::CAP.as_secs()
            );
        }
        format!(
            "closing after {} s without messages ({counts})",
            self.quiet().as_secs_f64()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_of_input_closes_once_the_replies_stop() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let rule = |sent, received, last: Option<u64>| Linger {
            eof: t0,
            sent,
            received,
            last_arrival: last.map(ms),
        };
        let table = [
            // (sent, received, last arrival in ms from the end of input, close at ms)
            // An echo: the reply came 3 ms after the end: 0.25 s later.
            (1, 1, Some(3), 253),
            // It had come before the end of input: 0.25 s from the end.
            (1, 1, Some(0), 250),
            (3, 5, None, 250),
            // Nothing sent (empty input): a short look for a greeting.
            (0, 0, None, 250),
            // No reply yet: 1 s after the end, or after the last arrival.
            (1, 0, None, 1000),
            (2, 1, Some(700), 1700),
            // A server that keeps sending: 10 s at the latest.
            (1, 500, Some(9_900), 10_000),
            (2, 1, Some(9_500), 10_000),
        ];
        for (sent, received, last, want) in table {
            let r = rule(sent, received, last);
            assert_eq!(r.close_at(), ms(want), "{r:?}");
        }
        assert_eq!(
            rule(1, 1, Some(3)).explain(),
            "closing after 0.25 s without messages (1 sent, 1 received)"
        );
        assert_eq!(
            rule(1, 0, None).explain(),
            "closing after 1 s without messages (1 sent, 0 received)"
        );
        assert!(rule(1, 9, Some(9_999))
            .explain()
            .starts_with("closing 10 s after it (1 sent, 9 received): the server kept sending"));
    }
}
