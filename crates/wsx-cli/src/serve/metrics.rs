//! `/metrics` of `wsx serve`, in the OpenMetrics text format through
//! prometheus-client (the Prometheus project's own Rust client).

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::Mutex;

/// The server's metrics. Counters are shared atomics; per-connection counts
/// are added in batches ([`Counts`]) so that the hot path touches no shared
/// cache line per message.
pub struct Metrics {
    registry: Mutex<Registry>,
    pub open: Gauge,
    accepted: Counter,
    rejected: Counter,
    refused_busy: Counter,
    http_requests: Counter,
    msgs_in: Counter,
    msgs_out: Counter,
    bytes_in: Counter,
    bytes_out: Counter,
    pub dropped_slow: Counter,
    pongs: Counter,
    close_codes: Family<CloseCodeLabel, Counter>,
    websockets: Family<HttpLabel, Counter>,
    http2_connections: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let m = Metrics {
            registry: Mutex::new(Registry::default()),
            open: Gauge::default(),
            accepted: Counter::default(),
            rejected: Counter::default(),
            refused_busy: Counter::default(),
            http_requests: Counter::default(),
            msgs_in: Counter::default(),
            msgs_out: Counter::default(),
            bytes_in: Counter::default(),
            bytes_out: Counter::default(),
            dropped_slow: Counter::default(),
            pongs: Counter::default(),
            close_codes: Family::default(),
            websockets: Family::default(),
            http2_connections: Counter::default(),
        };
        // Both series from the start, at 0: "none over HTTP/2" is an answer.
        for http in ["1.1", "2"] {
            m.websockets.get_or_create(&HttpLabel { http }).inc_by(0);
        }
        {
            let mut r = m.registry.lock().unwrap_or_else(|e| e.into_inner());
            r.register(
                "wsx_connections_open",
                "Open WebSocket connections",
                m.open.clone(),
            );
            r.register(
                "wsx_connections",
                "WebSocket connections accepted",
                m.accepted.clone(),
            );
            r.register(
                "wsx_connections_rejected",
                "Upgrades refused or failed (Origin, malformed, TLS, timeouts) and connections refused as busy",
                m.rejected.clone(),
            );
            r.register(
                "wsx_connections_refused_busy",
                "Connections answered 503 at --max-connections",
                m.refused_busy.clone(),
            );
            r.register(
                "wsx_http_requests",
                "Plain HTTP requests answered (page, files, metrics)",
                m.http_requests.clone(),
            );
            r.register(
                "wsx_messages_received",
                "Text and binary messages received",
                m.msgs_in.clone(),
            );
            r.register(
                "wsx_messages_sent",
                "Text and binary messages sent",
                m.msgs_out.clone(),
            );
            r.register(
                "wsx_bytes_received",
                "Payload bytes received",
                m.bytes_in.clone(),
            );
            r.register("wsx_bytes_sent", "Payload bytes sent", m.bytes_out.clone());
            r.register(
                "wsx_slow_consumers_dropped",
                "Clients disconnected for not keeping up (broadcast)",
                m.dropped_slow.clone(),
            );
            r.register(
                "wsx_pongs_received",
                "Pongs received (answers to keepalive and console pings)",
                m.pongs.clone(),
            );
            r.register(
                "wsx_websockets",
                "WebSockets opened, by the HTTP version that carried the handshake (1.1: a 101 upgrade; 2: an RFC 8441 extended CONNECT on an HTTP/2 stream)",
                m.websockets.clone(),
            );
            r.register(
                "wsx_http2_connections",
                "Connections served as HTTP/2 (TLS ALPN h2, or h2c with --h2c)",
                m.http2_connections.clone(),
            );
            r.register(
                "wsx_close_codes",
                "Connections ended, by close code (1006: no close frame)",
                m.close_codes.clone(),
            );
        }
        m
    }
}

/// Raises `counter` to `value` (the server loop keeps its own counters).
fn sync(counter: &Counter, value: u64) {
    let now = counter.get();
    if value > now {
        counter.inc_by(value - now);
    }
}

impl Metrics {
    /// The OpenMetrics text, with the server loop's counters brought up to date.
    pub fn render(&self, server: &wsx::server::ServerHandle) -> String {
        sync(&self.refused_busy, server.refused_busy());
        sync(
            &self.rejected,
            server.failed_handshakes() + server.refused_busy(),
        );
        sync(&self.http_requests, server.http_requests());
        sync(&self.http2_connections, server.http2_connections());
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &registry);
        out
    }

    /// Adds metrics of another part (the fan-out layer) to the registry.
    pub fn register(&self, f: impl FnOnce(&mut Registry)) {
        f(&mut self.registry.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// A WebSocket was accepted, over HTTP/2 or HTTP/1.1.
    pub fn opened(&self, http2: bool) {
        self.accepted.inc();
        self.open.inc();
        let http = if http2 { "2" } else { "1.1" };
        self.websockets.get_or_create(&HttpLabel { http }).inc();
    }

    /// A WebSocket ended with `code`.
    pub fn closed(&self, code: u16) {
        self.open.dec();
        self.close_codes
            .get_or_create(&CloseCodeLabel { code })
            .inc();
    }

    /// Pongs are few (one per ping): counted at once, not batched.
    pub fn pong(&self) {
        self.pongs.inc();
    }
}

/// The `code` label of `wsx_close_codes` (typed: no string built per close).
#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct CloseCodeLabel {
    code: u16,
}

/// The `http` label of `wsx_websockets`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct HttpLabel {
    http: &'static str,
}

/// Per-connection counts, added to the shared metrics in batches.
#[derive(Default)]
pub struct Counts {
    pub msgs_in: u64,
    pub msgs_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Echoed messages count both in and out: kept once, split at the flush.
    pub echoes: u64,
    pub echo_bytes: u64,
}

impl Counts {
    pub fn flush(&mut self, m: &Metrics) {
        m.msgs_in.inc_by(self.msgs_in + self.echoes);
        m.msgs_out.inc_by(self.msgs_out + self.echoes);
        m.bytes_in.inc_by(self.bytes_in + self.echo_bytes);
        m.bytes_out.inc_by(self.bytes_out + self.echo_bytes);
        *self = Counts::default();
    }

    /// One message of `bytes` received and sent back.
    #[inline]
    pub fn echoed(&mut self, bytes: u64, m: &Metrics) {
        self.echoes += 1;
        self.echo_bytes += bytes;
        if self.echoes >= 128 {
            self.flush(m);
        }
    }

    pub fn maybe_flush(&mut self, m: &Metrics) {
        if self.msgs_in + self.msgs_out >= 256 {
            self.flush(m);
        }
    }
}
