//! The reconnect decision as plain data: [`Schedule`].
//!
//! No I/O and no clock. The caller reports each end of a connection (with
//! how long it lived, measured on its own clock) or each failed attempt; the
//! schedule answers [`Decision::Retry`] with the attempt's number and the
//! delay to sleep, or [`Decision::GiveUp`] with the reason. It owns every
//! rule of the policy: the attempt count and its reset after a stable
//! connection, [`Backoff::max_attempts`], the [`RetryPolicy`], the jittered
//! [`Backoff`] delay, and the server's `Retry-After` (capped at
//! [`MAX_RETRY_AFTER`]). [`ReconnectingClient`](crate::ReconnectingClient)
//! and `wsx connect --reconnect` both drive one, so they cannot drift apart.

use super::backoff::{Backoff, Jitter};
use super::policy::{Disconnect, RetryPolicy, MAX_RETRY_AFTER};
use std::fmt;
use std::time::Duration;

/// Counts reconnect attempts and decides, after each end or failure, whether
/// to try again and after how long.
///
/// ```
/// use std::time::Duration;
/// use wsx::{CloseCode, Closed, Initiator, reconnect::{Backoff, Decision, Disconnect, Jitter, RetryPolicy, Schedule}};
///
/// let mut schedule = Schedule::new(Backoff::default(), RetryPolicy::default(), Jitter::new(7));
/// let restart = Disconnect::Closed(Closed {
///     code: CloseCode(1012),
///     reason: String::new(),
///     initiator: Initiator::Remote,
///     sent: None,
///     cause: None,
/// });
/// // The connection lived 2 s and the server restarts (1012): attempt 1,
/// // after at most `Backoff::initial`.
/// match schedule.on_end(&restart, Duration::from_secs(2)) {
///     Decision::Retry { attempt, delay } => {
///         assert_eq!(attempt, 1);
///         assert!(delay <= Duration::from_millis(500));
///     }
///     Decision::GiveUp { reason } => unreachable!("{reason}"),
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Schedule {
    backoff: Backoff,
    retry: RetryPolicy,
    jitter: Jitter,
    /// Attempts since the last reset: the number of the latest `Retry`.
    attempt: u32,
}

/// What to do after a connection ended or an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Wait `delay`, then make attempt number `attempt` (from 1, counted
    /// since the last connection that stayed up for [`Backoff::reset_after`]).
    Retry {
        /// This attempt's number.
        attempt: u32,
        /// The wait before it: the jittered [`Backoff`] delay, or the
        /// server's `Retry-After` if that is longer (at most
        /// [`MAX_RETRY_AFTER`]).
        delay: Duration,
    },
    /// Do not reconnect.
    GiveUp {
        /// Why not.
        reason: GiveUpReason,
    },
}

/// Why a [`Schedule`] gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GiveUpReason {
    /// The [`RetryPolicy`] does not retry this cause (a normal close, a
    /// refused handshake, a protocol error...): another attempt would end
    /// the same way.
    Permanent,
    /// [`Backoff::max_attempts`] attempts in a row were made.
    MaxAttempts {
        /// How many (the limit).
        attempts: u32,
    },
}

impl fmt::Display for GiveUpReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GiveUpReason::Permanent => {
                f.write_str("the retry policy treats the cause as permanent")
            }
            GiveUpReason::MaxAttempts { attempts: 0 } => {
                f.write_str("reconnecting is turned off (no attempts allowed)")
            }
            GiveUpReason::MaxAttempts { attempts: 1 } => {
                f.write_str("the one reconnect attempt allowed was made")
            }
            GiveUpReason::MaxAttempts { attempts } => {
                write!(f, "all {attempts} reconnect attempts allowed were made")
            }
        }
    }
}

impl Schedule {
    /// A schedule that waits as `backoff` says, retries what `retry`
    /// accepts, and draws its jitter from `jitter` (seed it for the same
    /// delays every run).
    pub fn new(backoff: Backoff, retry: RetryPolicy, jitter: Jitter) -> Self {
        Schedule {
            backoff,
            retry,
            jitter,
            attempt: 0,
        }
    }

    /// The number of the latest attempt (0 before any, and after a reset):
    /// after a successful reconnect, how many attempts it took.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// An established connection ended with `cause` after it was up for
    /// `lived`. A connection that lived at least [`Backoff::reset_after`]
    /// starts the count afresh (the next attempt is number 1 again); a
    /// shorter one keeps the delays growing, so a server that accepts and
    /// at once drops is not hammered.
    pub fn on_end(&mut self, cause: &Disconnect, lived: Duration) -> Decision {
        if lived >= self.backoff.reset_after {
            self.attempt = 0;
        }
        self.decide(cause)
    }

    /// An attempt to connect failed with `cause` (TCP, TLS, a refused or
    /// broken handshake). Nothing was up, so the count goes on.
    pub fn on_connect_error(&mut self, cause: &Disconnect) -> Decision {
        self.decide(cause)
    }

    fn decide(&mut self, cause: &Disconnect) -> Decision {
        // The policy first: a permanent cause is reported as such even when
        // the attempts are used up too.
        if !self.retry.should_retry(cause) {
            return Decision::GiveUp {
                reason: GiveUpReason::Permanent,
            };
        }
        let attempt = self.attempt.saturating_add(1);
        if let Some(max) = self.backoff.max_attempts {
            if attempt > max {
                return Decision::GiveUp {
                    reason: GiveUpReason::MaxAttempts { attempts: max },
                };
            }
        }
        self.attempt = attempt;
        // Drawn only for an attempt that is made: the same seed gives the
        // same delays whatever was given up on before.
        let mut delay = self.backoff.delay(attempt, self.jitter.next_unit());
        if let Some(asked) = cause.retry_after() {
            // The server said when to come back: not sooner.
            delay = delay.max(asked.min(MAX_RETRY_AFTER));
        }
        Decision::Retry { attempt, delay }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use wsx_proto::handshake::{ClientHandshakeError, Rejection};
    use wsx_proto::{CloseCode, Closed, Initiator};

    const fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }
    const fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }
    const SEED: u64 = 7;

    fn closed(code: u16) -> Disconnect {
        Disconnect::Closed(Closed {
            code: CloseCode(code),
            reason: String::new(),
            initiator: Initiator::Remote,
            sent: None,
            cause: None,
        })
    }

    fn refused() -> Disconnect {
        Disconnect::from(Error::from(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )))
    }

    /// A handshake answered with `status` and, if given, `Retry-After: value`.
    fn rejected(status: u16, retry_after: Option<&str>) -> Disconnect {
        let mut headers = http::HeaderMap::new();
        if let Some(v) = retry_after {
            headers.insert(http::header::RETRY_AFTER, v.parse().unwrap());
        }
        Disconnect::from(Error::from(ClientHandshakeError::Rejected(Box::new(
            Rejection {
                status: http::StatusCode::from_u16(status).unwrap(),
                headers,
                body: Default::default(),
            },
        ))))
    }

    fn schedule(backoff: Backoff) -> Schedule {
        Schedule::new(backoff, RetryPolicy::default(), Jitter::new(SEED))
    }

    #[track_caller]
    fn retry(d: Decision) -> (u32, Duration) {
        match d {
            Decision::Retry { attempt, delay } => (attempt, delay),
            Decision::GiveUp { reason } => panic!("gave up: {reason}"),
        }
    }

    #[test]
    fn attempts_count_up_with_jittered_growing_delays() {
        let b = Backoff::default();
        let mut s = schedule(b.clone());
        // The same seed: the delays the schedule must give.
        let mut twin = Jitter::new(SEED);
        let cause = refused();
        for want in 1..=10u32 {
            let (attempt, delay) = retry(s.on_connect_error(&cause));
            assert_eq!(attempt, want);
            assert_eq!(delay, b.delay(want, twin.next_unit()), "attempt {want}");
            assert!(delay <= b.ceiling(want), "attempt {want}: {delay:?}");
            assert_eq!(s.attempt(), want);
        }
    }

    #[test]
    fn jitter_spreads_delays_over_the_whole_ceiling() {
        // Attempt 3 of the default backoff: uniform in [0, 2 s].
        let mut lo = 0;
        let mut hi = 0;
        for seed in 0..1000 {
            let mut s = Schedule::new(
                Backoff::default(),
                RetryPolicy::default(),
                Jitter::new(seed),
            );
            let cause = refused();
            let _ = s.on_connect_error(&cause);
            let _ = s.on_connect_error(&cause);
            let (_, d) = retry(s.on_connect_error(&cause));
            assert!(d <= secs(2), "{d:?}");
            lo += usize::from(d < ms(500));
            hi += usize::from(d > ms(1500));
        }
        assert!((200..300).contains(&lo), "{lo} of 1000 below 0.5 s");
        assert!((200..300).contains(&hi), "{hi} of 1000 above 1.5 s");
    }

    #[test]
    fn a_stable_connection_resets_the_count_a_short_one_does_not() {
        let b = Backoff {
            reset_after: secs(10),
            ..Backoff::default()
        };
        let mut s = schedule(b);
        let drop = closed(1006);
        assert_eq!(retry(s.on_end(&drop, secs(60))).0, 1);
        assert_eq!(retry(s.on_connect_error(&refused())).0, 2);
        // Up again, but only for 9.999 s: still counting.
        assert_eq!(retry(s.on_end(&drop, ms(9_999))).0, 3);
        // Exactly reset_after is stable.
        assert_eq!(retry(s.on_end(&drop, secs(10))).0, 1);
        assert_eq!(retry(s.on_end(&drop, Duration::ZERO)).0, 2);
    }

    #[test]
    fn failed_attempts_never_reset_even_with_reset_after_zero() {
        let mut s = schedule(Backoff {
            reset_after: Duration::ZERO,
            ..Backoff::default()
        });
        let cause = refused();
        for want in 1..=3 {
            assert_eq!(retry(s.on_connect_error(&cause)).0, want);
        }
        // Any established connection is stable then.
        assert_eq!(retry(s.on_end(&closed(1001), Duration::ZERO)).0, 1);
    }

    #[test]
    fn max_attempts_gives_up_after_that_many_in_a_row() {
        let mut s = schedule(Backoff {
            max_attempts: Some(2),
            ..Backoff::default()
        });
        let cause = refused();
        assert_eq!(retry(s.on_end(&closed(1006), secs(1))).0, 1);
        assert_eq!(retry(s.on_connect_error(&cause)).0, 2);
        let gave_up = Decision::GiveUp {
            reason: GiveUpReason::MaxAttempts { attempts: 2 },
        };
        assert_eq!(s.on_connect_error(&cause), gave_up);
        assert_eq!(s.on_connect_error(&cause), gave_up, "and stays given up");
        assert_eq!(s.attempt(), 2);
        // A stable connection earns a fresh set of attempts.
        assert_eq!(retry(s.on_end(&closed(1006), secs(30))).0, 1);
    }

    #[test]
    fn max_attempts_zero_never_reconnects() {
        let mut s = schedule(Backoff {
            max_attempts: Some(0),
            ..Backoff::default()
        });
        assert_eq!(
            s.on_end(&closed(1001), secs(100)),
            Decision::GiveUp {
                reason: GiveUpReason::MaxAttempts { attempts: 0 }
            }
        );
    }

    #[test]
    fn the_policy_decides_what_is_retried() {
        let mut s = schedule(Backoff::default());
        let table = [
            (closed(1000), false),
            (closed(1001), true),
            (closed(1006), true),
            (closed(1008), false),
            (closed(1012), true),
            (closed(4000), false),
            (rejected(403, None), false),
            (rejected(503, None), true),
            (refused(), true),
        ];
        for (cause, retried) in table {
            let d = s.on_end(&cause, Duration::ZERO);
            assert_eq!(
                matches!(d, Decision::Retry { .. }),
                retried,
                "{cause}: {d:?}"
            );
            if !retried {
                assert_eq!(
                    d,
                    Decision::GiveUp {
                        reason: GiveUpReason::Permanent
                    }
                );
            }
        }
        // An application's own code that means "come back later".
        let mut s = Schedule::new(
            Backoff::default(),
            RetryPolicy::new(|d| d.is_transient() || d.close_code() == Some(CloseCode(4001))),
            Jitter::new(SEED),
        );
        assert_eq!(retry(s.on_end(&closed(4001), secs(1))).0, 1);
        assert!(matches!(
            s.on_end(&closed(4000), secs(1)),
            Decision::GiveUp { .. }
        ));
    }

    #[test]
    fn a_permanent_cause_is_reported_as_such_when_attempts_are_also_used_up() {
        let mut s = schedule(Backoff {
            max_attempts: Some(0),
            ..Backoff::default()
        });
        assert_eq!(
            s.on_end(&closed(1000), secs(1)),
            Decision::GiveUp {
                reason: GiveUpReason::Permanent
            }
        );
    }

    #[test]
    fn retry_after_stretches_the_delay_up_to_the_cap() {
        let b = Backoff::default();
        let table = [
            // (Retry-After, the least delay)
            (Some("7"), secs(7)),
            (Some(" 2 "), secs(2)),
            (Some("99999999999999999999999"), MAX_RETRY_AFTER),
            (Some("3600"), MAX_RETRY_AFTER),
            // An HTTP date and junk are ignored: only the backoff.
            (Some("Wed, 21 Oct 2015 07:28:00 GMT"), Duration::ZERO),
            (Some("-5"), Duration::ZERO),
            (None, Duration::ZERO),
        ];
        for (header, least) in table {
            let mut s = schedule(b.clone());
            let mut twin = Jitter::new(SEED);
            let (attempt, delay) = retry(s.on_connect_error(&rejected(429, header)));
            assert_eq!(attempt, 1);
            let jittered = b.delay(1, twin.next_unit());
            assert_eq!(delay, jittered.max(least), "Retry-After {header:?}");
        }
        // A backoff delay longer than what the server asked is kept.
        let long = Backoff {
            initial: secs(60),
            max: secs(60),
            ..Backoff::default()
        };
        let mut s = Schedule::new(long.clone(), RetryPolicy::default(), Jitter::new(SEED));
        let jittered = long.delay(1, Jitter::new(SEED).next_unit());
        assert!(jittered > secs(1), "{jittered:?}");
        assert_eq!(
            retry(s.on_connect_error(&rejected(503, Some("1")))).1,
            jittered
        );
    }

    #[test]
    fn a_retry_after_applies_to_the_attempt_after_that_refusal_only() {
        let b = Backoff::default();
        let mut s = schedule(b.clone());
        let mut twin = Jitter::new(SEED);
        let (_, first) = retry(s.on_connect_error(&rejected(503, Some("30"))));
        assert_eq!(first, secs(30).max(b.delay(1, twin.next_unit())));
        let (attempt, second) = retry(s.on_connect_error(&refused()));
        assert_eq!(attempt, 2);
        assert_eq!(second, b.delay(2, twin.next_unit()));
        assert!(second <= secs(1));
    }

    #[test]
    fn give_up_reasons_read_as_sentences() {
        assert_eq!(
            GiveUpReason::Permanent.to_string(),
            "the retry policy treats the cause as permanent"
        );
        assert_eq!(
            GiveUpReason::MaxAttempts { attempts: 3 }.to_string(),
            "all 3 reconnect attempts allowed were made"
        );
    }
}
