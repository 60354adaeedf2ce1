//! A client that reconnects: [`ReconnectingClient`].
//!
//! A background task owns the connection. It connects, delivers what
//! arrives as [`ReconnectEvent`]s, and when the connection ends or cannot be
//! made, asks its [`Schedule`] whether to try again: the [`RetryPolicy`]
//! decides which causes are worth it, and a [`Backoff`] delay (exponential,
//! full jitter, capped) comes before each attempt. The application sees
//! `Reconnecting { attempt, delay, cause }` before each wait and
//! `Reconnected` after, so it can resubscribe.
//!
//! Messages are never queued across a reconnect: a send while there is no
//! connection hands the message back ([`NotSent`]). Whatever the application
//! sent on a connection that then dropped may or may not have reached the
//! server; only the application knows what to resend after `Reconnected`.
//!
//! Code map: `backoff` (delays and jitter), `policy` (why a connection
//! ended, and which ends are worth another attempt), `schedule` (the
//! decision as plain data, without I/O: also what `wsx connect --reconnect`
//! runs), `client` (the handle and the task that drives a schedule).

mod backoff;
mod client;
mod policy;
mod schedule;

pub use backoff::{Backoff, Jitter};
pub use client::{NotSent, ReconnectConfig, ReconnectEvent, ReconnectSender, ReconnectingClient};
pub use policy::{Disconnect, RetryPolicy, MAX_RETRY_AFTER};
pub use schedule::{Decision, GiveUpReason, Schedule};
