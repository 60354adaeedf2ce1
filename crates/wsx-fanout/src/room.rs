//! A room as one node sees it: where its stream is (epoch, last offset
//! delivered here), its recent messages (the whole history in one process,
//! a cache of it with Redis), and its members' two hubs (plain payloads and
//! `wsx.pubsub.v1` envelopes: each message is encoded once per hub).
//! The decisions (duplicate, gap, what a resuming client gets) are plain
//! data here; `fanout.rs` carries them out.

use crate::wire::{Payload, Position};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::AtomicUsize;
use std::sync::Mutex;
use tokio::time::{Duration, Instant};
use wsx::broadcast::{Broadcast, BroadcastConfig};

/// A message of the room, as kept.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub offset: u64,
    pub payload: Payload,
    pub at: Instant,
}

/// What to do with a message that arrived at `offset` (same epoch).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// Already delivered (a gap fill got there first).
    Duplicate,
    /// The next one: deliver it.
    Next,
    /// Offsets `from..=to` are missing before it: fill them first.
    Gap { from: u64, to: u64 },
}

/// What a client resuming from a position gets.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Nothing missed.
    UpToDate,
    /// Offsets `from..=to` are kept here.
    Local { from: u64, to: u64 },
    /// Offsets `from..=to` must be read from the broker's history.
    Broker { from: u64, to: u64 },
    /// Cannot be had.
    Unrecoverable(String),
}

#[derive(Debug, Default)]
pub(crate) struct RoomState {
    /// The broker's view was read (Redis: the room's head at join time).
    pub initialized: bool,
    pub epoch: Option<String>,
    /// The newest offset delivered on this node (0: none).
    pub last: u64,
    /// Contiguous, ending at `last`.
    pub recent: VecDeque<Entry>,
    /// Idempotency keys seen (in one process; Redis keeps its own).
    pub keys: HashMap<String, (Position, Instant)>,
    pub key_order: VecDeque<(String, Instant)>,
    /// A gap the broker showed at the last check: its newest offset there.
    pub suspect: Option<u64>,
}

impl RoomState {
    pub fn arrival(&self, offset: u64) -> Arrival {
        if offset <= self.last {
            Arrival::Duplicate
        } else if offset == self.last + 1 {
            Arrival::Next
        } else {
            Arrival::Gap {
                from: self.last + 1,
                to: offset - 1,
            }
        }
    }

    /// Keeps `entry` (the next offset), at most `cap` entries.
    pub fn push(&mut self, entry: Entry, cap: usize) {
        debug_assert_eq!(entry.offset, self.last + 1);
        self.last = entry.offset;
        self.recent.push_back(entry);
        while self.recent.len() > cap.max(1) {
            self.recent.pop_front();
        }
    }

    /// Adds older entries read from the broker in front of `recent` (those
    /// that connect to it, up to `cap` in all).
    pub fn prepend(&mut self, older: &[Entry], cap: usize) {
        let mut next = self.recent.front().map_or(self.last + 1, |e| e.offset);
        for e in older.iter().rev() {
            if self.recent.len() >= cap.max(1) {
                break;
            }
            if e.offset + 1 == next {
                self.recent.push_front(e.clone());
                next = e.offset;
            }
        }
    }

    /// Forgets entries older than `ttl` (one process: they are the history).
    pub fn expire(&mut self, ttl: Duration, now: Instant) {
        while self
            .recent
            .front()
            .is_some_and(|e| now.saturating_duration_since(e.at) > ttl)
        {
            self.recent.pop_front();
        }
        while self
            .key_order
            .front()
            .is_some_and(|(_, at)| now.saturating_duration_since(*at) > ttl)
        {
            if let Some((k, at)) = self.key_order.pop_front() {
                if self.keys.get(&k).is_some_and(|(_, a)| *a == at) {
                    self.keys.remove(&k);
                }
            }
        }
    }

    /// A new epoch: what was kept belongs to the old one.
    pub fn reset(&mut self, epoch: String) {
        self.epoch = Some(epoch);
        self.last = 0;
        self.recent.clear();
        self.suspect = None;
    }

    /// What a client that last saw `since` gets, with at most `limit`
    /// messages recovered. `broker`: a history exists beyond `recent`.
    pub fn plan(&self, since: &Position, limit: usize, broker: bool) -> Plan {
        let Some(epoch) = &self.epoch else {
            return Plan::Unrecoverable(format!(
                "the room has no history (epoch {} is gone): it was lost or expired",
                since.epoch
            ));
        };
        if *epoch != since.epoch {
            return Plan::Unrecoverable(format!(
                "the room's history was lost (epoch {} is now {epoch})",
                since.epoch
            ));
        }
        if since.offset > self.last {
            return Plan::Unrecoverable(format!(
                "offset {} is past the room's newest, {}",
                since.offset, self.last
            ));
        }
        let missed = self.last - since.offset;
        if missed == 0 {
            return Plan::UpToDate;
        }
        if missed > limit as u64 {
            return Plan::Unrecoverable(format!(
                "{missed} messages were missed, more than the {limit} a room keeps"
            ));
        }
        let (from, to) = (since.offset + 1, self.last);
        match self.recent.front() {
            Some(first) if first.offset <= from => Plan::Local { from, to },
            _ if broker => Plan::Broker { from, to },
            _ => Plan::Unrecoverable(format!(
                "the messages after offset {} are too old: the history keeps {} now",
                since.offset,
                self.recent.len()
            )),
        }
    }

    /// Kept entries `from..=to` (as `plan` said they are).
    pub fn slice(&self, from: u64, to: u64) -> Vec<Entry> {
        self.recent
            .iter()
            .filter(|e| e.offset >= from && e.offset <= to)
            .cloned()
            .collect()
    }
}

/// A room on this node.
#[derive(Debug)]
pub(crate) struct Room {
    pub name: String,
    pub state: tokio::sync::Mutex<RoomState>,
    /// Members without the subprotocol: the payloads.
    pub plain: Broadcast,
    /// Members with `wsx.pubsub.v1`: envelopes.
    pub enveloped: Broadcast,
    /// Members, counted under the node's room map lock.
    pub members: AtomicUsize,
    /// Who is here on this node: member id -> name.
    pub presence: Mutex<BTreeMap<u64, String>>,
}

impl Room {
    pub fn new(name: &str, config: &BroadcastConfig) -> Room {
        Room {
            name: name.to_string(),
            state: tokio::sync::Mutex::new(RoomState::default()),
            plain: Broadcast::new(config.clone()),
            enveloped: Broadcast::new(config.clone()),
            members: AtomicUsize::new(0),
            presence: Mutex::new(BTreeMap::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn entry(offset: u64) -> Entry {
        Entry {
            offset,
            payload: Payload {
                text: true,
                data: Bytes::from(offset.to_string()),
            },
            at: Instant::now(),
        }
    }

    fn pos(epoch: &str, offset: u64) -> Position {
        Position {
            epoch: epoch.into(),
            offset,
        }
    }

    #[test]
    fn arrivals_in_order_duplicates_and_gaps() {
        let mut s = RoomState::default();
        s.reset("e".into());
        assert_eq!(s.arrival(1), Arrival::Next);
        s.push(entry(1), 10);
        assert_eq!(s.arrival(1), Arrival::Duplicate);
        assert_eq!(s.arrival(5), Arrival::Gap { from: 2, to: 4 });
    }

    #[test]
    fn a_resume_is_planned_from_what_is_kept_or_refused_with_the_reason() {
        let mut s = RoomState::default();
        s.reset("e".into());
        for o in 1..=10 {
            s.push(entry(o), 4); // keeps 7..=10
        }
        assert_eq!(s.plan(&pos("e", 10), 100, false), Plan::UpToDate);
        assert_eq!(
            s.plan(&pos("e", 6), 100, false),
            Plan::Local { from: 7, to: 10 }
        );
        assert_eq!(
            s.plan(&pos("e", 2), 100, true),
            Plan::Broker { from: 3, to: 10 }
        );
        let too_old = s.plan(&pos("e", 2), 100, false);
        assert!(matches!(too_old, Plan::Unrecoverable(r) if r.contains("too old")));
        // N missed recover, N+1 do not.
        assert_eq!(
            s.plan(&pos("e", 6), 4, false),
            Plan::Local { from: 7, to: 10 }
        );
        let over = s.plan(&pos("e", 5), 4, true);
        assert!(matches!(over, Plan::Unrecoverable(r) if r.contains("5 messages were missed")));
        let other = s.plan(&pos("old", 3), 100, true);
        assert!(matches!(other, Plan::Unrecoverable(r) if r.contains("epoch old is now e")));
        let future = s.plan(&pos("e", 11), 100, true);
        assert!(matches!(future, Plan::Unrecoverable(r) if r.contains("past")));
        assert_eq!(
            s.slice(7, 10).iter().map(|e| e.offset).collect::<Vec<_>>(),
            [7, 8, 9, 10]
        );
        // What the broker gave for offsets 3..=10 is kept in front (those
        // that connect, up to the cap): the next resume from 4 is local.
        let older: Vec<Entry> = (3..=10).map(entry).collect();
        s.prepend(&older, 6);
        assert_eq!(
            s.recent.iter().map(|e| e.offset).collect::<Vec<_>>(),
            [5, 6, 7, 8, 9, 10]
        );
        assert_eq!(
            s.plan(&pos("e", 4), 100, true),
            Plan::Local { from: 5, to: 10 }
        );
        s.prepend(&older, 100);
        assert_eq!(s.recent.front().unwrap().offset, 3);
    }
}
