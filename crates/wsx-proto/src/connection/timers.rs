//! Timers as data: one deadline per kind of timer, no clock. The connection
//! sets them from the `now` it is given; `poll_timeout` reports the earliest.

use std::time::Instant;

/// The connection's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timer {
    /// The peer must answer our close frame by then.
    Close,
    /// Something must arrive by then after a keepalive ping.
    Pong,
    /// The next keepalive ping.
    Ping,
    /// The next check of `Config::idle_timeout`.
    Idle,
    /// The buffers go back to the allocator if nothing arrived since.
    Release,
}

impl Timer {
    /// `Release` is the last variant.
    const COUNT: usize = Timer::Release as usize + 1;
}

/// A deadline per [`Timer`], each unset or set.
#[derive(Debug, Default, Clone)]
pub(super) struct TimerTable([Option<Instant>; Timer::COUNT]);

impl TimerTable {
    pub(super) fn set(&mut self, timer: Timer, at: Instant) {
        self.0[timer as usize] = Some(at);
    }

    pub(super) fn get(&self, timer: Timer) -> Option<Instant> {
        self.0[timer as usize]
    }

    pub(super) fn clear(&mut self, timer: Timer) {
        self.0[timer as usize] = None;
    }

    pub(super) fn clear_all(&mut self) {
        self.0 = [None; Timer::COUNT];
    }

    /// Whether `timer` is set and due at `now`.
    pub(super) fn is_expired(&self, timer: Timer, now: Instant) -> bool {
        self.get(timer).is_some_and(|at| now >= at)
    }

    /// The earliest deadline.
    pub(super) fn next(&self) -> Option<Instant> {
        self.0.iter().flatten().min().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn next_is_the_earliest_set_deadline() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut t = TimerTable::default();
        assert_eq!(t.next(), None);
        t.set(Timer::Ping, t0 + 3 * s);
        t.set(Timer::Idle, t0 + 2 * s);
        assert_eq!(t.next(), Some(t0 + 2 * s));
        assert!(t.is_expired(Timer::Idle, t0 + 2 * s));
        assert!(!t.is_expired(Timer::Ping, t0 + 2 * s));
        assert!(!t.is_expired(Timer::Close, t0 + 9 * s));
        t.clear(Timer::Idle);
        assert_eq!((t.get(Timer::Idle), t.next()), (None, Some(t0 + 3 * s)));
        t.clear_all();
        assert_eq!(t.next(), None);
    }
}
