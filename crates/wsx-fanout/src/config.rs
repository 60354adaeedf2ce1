//! Settings, and the errors a caller sees.

use std::time::Duration;
use wsx::broadcast::BroadcastConfig;

/// Settings of a [`Fanout`](crate::Fanout).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FanoutConfig {
    /// Messages kept per room for recovery (default 1,000): a client that
    /// missed at most this many gets them; one that missed more is told
    /// they are unrecoverable.
    pub history: usize,
    /// How long a room's history is kept after its last message (default
    /// 1 h); an idle room's history past it is gone (a new epoch follows).
    pub history_ttl: Duration,
    /// How long an idempotency key is remembered (default: `history_ttl`).
    pub idempotency_ttl: Option<Duration>,
    /// How long a presence entry lives without its node renewing it
    /// (default 15 s): a dead node's members disappear after this.
    pub presence_ttl: Duration,
    /// How often a node compares each room's newest offset in Redis with
    /// what it received (default 400 ms); a gap seen twice in a row is
    /// filled from the history, so within a second.
    pub gap_check: Duration,
    /// Each member's queue and slow-consumer policy.
    pub broadcast: BroadcastConfig,
    /// Prefix of every Redis key and channel (default `wsx`).
    pub prefix: String,
    /// Redis commands wait at most this long (default 2 s); a publish
    /// during an outage fails after about this, with a retryable error.
    pub redis_timeout: Duration,
}

impl Default for FanoutConfig {
    fn default() -> Self {
        FanoutConfig {
            history: 1000,
            history_ttl: Duration::from_secs(3600),
            idempotency_ttl: None,
            presence_ttl: Duration::from_secs(15),
            gap_check: Duration::from_millis(400),
            broadcast: BroadcastConfig::default(),
            prefix: "wsx".into(),
            redis_timeout: Duration::from_secs(2),
        }
    }
}

macro_rules! setters {
    ($($field:ident: $ty:ty),* $(,)?) => {
        impl FanoutConfig {
            $(
                #[doc = concat!("Sets `", stringify!($field), "`.")]
                pub fn $field(mut self, value: $ty) -> Self {
                    self.$field = value;
                    self
                }
            )*
        }
    };
}

setters!(
    history: usize,
    history_ttl: Duration,
    idempotency_ttl: Option<Duration>,
    presence_ttl: Duration,
    gap_check: Duration,
    broadcast: BroadcastConfig,
    prefix: String,
    redis_timeout: Duration,
);

/// A publish that did not happen.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct PublishError {
    /// What went wrong, and what to do.
    pub message: String,
    /// The same publish may work later (the broker is away): retry it,
    /// with the same idempotency key so that it is not published twice.
    pub retryable: bool,
}

/// A fan-out operation that could not be done.
#[derive(Debug, thiserror::Error)]
pub enum FanoutError {
    /// The broker is away; the operation may work later.
    #[error("{0}")]
    Unavailable(String),
    /// The request itself is wrong.
    #[error("{0}")]
    Invalid(String),
}
