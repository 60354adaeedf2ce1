//! Rooms, presence and recovery of missed messages for wsx: in one process
//! ([`Fanout::local`]) or across nodes on Redis ([`Fanout::redis`]).
//!
//! Connections join rooms ([`Fanout::join`]) and anything published to a
//! room ([`Fanout::publish`]) reaches every member on every node, in the
//! same order. Every message gets a position: the room's epoch (which
//! changes when the room's history is lost) and an offset (from 1, without
//! gaps). A room keeps its last messages (`history`, for `history_ttl`); a
//! client that reconnects with its last position gets exactly what it
//! missed, in order, before the live messages, or is told plainly that it
//! cannot be recovered (too old, or a new epoch) so it reloads its state.
//!
//! # Delivery guarantee
//!
//! A publish that returned `Ok` is in the room's history and reaches every
//! member connected at the time, in offset order, at most once per
//! connection; a member that drops and resumes from its last position gets
//! every message it missed exactly once, as long as they are still in the
//! history (the last `history` messages, within `history_ttl`), and is told
//! otherwise. A node that loses its Redis subscription reads what it missed
//! back from the history (within about a second of noticing). A publish that
//! returned an error was not published, except when the connection broke
//! (or the call timed out) after Redis ran it: then the position was taken, and a retry with the
//! same idempotency key returns it instead of publishing twice; without a
//! key, that retry is the one place a duplicate can appear. A member too
//! slow for its queue is closed (1013 by default) rather than silently
//! skipped, and resumes like any reconnecting client.
//!
//! The wire for plain WebSocket clients is in [`wire`].

#![warn(missing_docs)]
// Without Redis, the broker-facing half of the room logic is idle.
#![cfg_attr(not(feature = "redis"), allow(dead_code, unused_imports, unused_mut))]

mod config;
mod fanout;
mod metrics;
#[cfg(feature = "redis")]
mod redis_backend;
mod room;
mod serve;
pub mod wire;

pub use config::{FanoutConfig, FanoutError, PublishError};
pub use fanout::{Fanout, JoinError, JoinOptions, Member, PresenceEntry, Published};
pub use metrics::Metrics;
pub use serve::{resume_from_query, serve_member, MemberStats};
pub use wire::{Payload, Position, Recovery, ServerMsg, SUBPROTOCOL};
