//! What a fan-out layer counts, for `/metrics`.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Counters and gauges of one [`Fanout`](crate::Fanout); register them with
/// [`Fanout::register_metrics`](crate::Fanout::register_metrics).
#[derive(Debug, Default, Clone)]
pub struct Metrics {
    /// 1 while the broker answers (always 1 in one process).
    pub backend_up: Gauge,
    /// Rooms with members on this node.
    pub rooms: Gauge,
    /// Members on this node.
    pub members: Gauge,
    /// Messages published through this node.
    pub published: Counter,
    /// Publishes that failed (the broker was away).
    pub publish_errors: Counter,
    /// Publishes answered from an idempotency key (retries).
    pub duplicates: Counter,
    /// Messages queued to members on this node (one per recipient).
    pub delivered: Counter,
    /// Gaps noticed in what this node received from the broker.
    pub gaps: Counter,
    /// Messages this node filled in from the history after a gap.
    pub gap_filled: Counter,
    /// Messages lost to a gap that the history no longer held.
    pub gap_lost: Counter,
    /// Joins that resumed from a position and got what they missed.
    pub recovered: Counter,
    /// Joins that resumed from a position that could not be recovered.
    pub unrecoverable: Counter,
    /// Messages read from the broker's history (recoveries and gap fills).
    pub history_reads: Counter,
    /// Times the broker connection was lost.
    pub disconnects: Counter,
}

impl Metrics {
    pub(crate) fn register(&self, r: &mut Registry) {
        let r = r.sub_registry_with_prefix("wsx_fanout");
        r.register(
            "backend_up",
            "1 while the broker (Redis) answers; 0 during an outage",
            self.backend_up.clone(),
        );
        r.register(
            "rooms",
            "Rooms with members on this node",
            self.rooms.clone(),
        );
        r.register("members", "Room members on this node", self.members.clone());
        r.register(
            "published",
            "Messages published through this node",
            self.published.clone(),
        );
        r.register(
            "publish_errors",
            "Publishes that failed (broker away); the publisher was told",
            self.publish_errors.clone(),
        );
        r.register(
            "duplicates",
            "Publishes answered from an idempotency key (a retry)",
            self.duplicates.clone(),
        );
        r.register(
            "delivered",
            "Messages queued to members on this node (one per recipient)",
            self.delivered.clone(),
        );
        r.register(
            "gaps",
            "Gaps noticed in what this node received",
            self.gaps.clone(),
        );
        r.register(
            "gap_filled",
            "Messages filled in from the history after a gap",
            self.gap_filled.clone(),
        );
        r.register(
            "gap_lost",
            "Messages lost to a gap the history no longer held",
            self.gap_lost.clone(),
        );
        r.register(
            "recovered",
            "Resuming joins that got what they missed",
            self.recovered.clone(),
        );
        r.register(
            "unrecoverable",
            "Resuming joins told their missed messages are gone",
            self.unrecoverable.clone(),
        );
        r.register(
            "history_reads",
            "Messages read from the broker's history",
            self.history_reads.clone(),
        );
        r.register(
            "disconnects",
            "Times the broker connection was lost",
            self.disconnects.clone(),
        );
    }
}
