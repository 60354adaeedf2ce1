//! The report: throughput, bytes on the wire (the compression ratio with
//! `--deflate`), latency percentiles, our CPU share and the errors, as a
//! table or one JSON object.

use super::args::{BenchArgs, Mode, Payload};
use super::plan::Stats;
use hdrhistogram::Histogram;
use std::sync::atomic::Ordering::Relaxed;
use wsx::wsx_proto::deflate::DeflateParams;

/// `1234567` → `1,234,567`.
pub(super) fn fmt_int(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// The numbers the report shows, from the counters and the histogram.
struct Summary {
    messages: u64,
    handshakes: u64,
    errors: u64,
    connected: u64,
    h2_connections: u64,
    total: u64,
    /// Messages (handshakes in `--mode handshake`) per second.
    rate: f64,
    /// Payload megabytes per second.
    mbps: f64,
    /// Bytes on the wire per message each way (warm-up included).
    wire_sent: Option<f64>,
    wire_recv: Option<f64>,
    /// The payload size, for the wire ratio.
    size: usize,
    deflate: Option<DeflateParams>,
    /// p50, p90, p99, p99.9 and max in ms (0 without samples).
    latency_ms: [f64; 5],
}

impl Summary {
    fn new(args: &BenchArgs, stats: &Stats, hist: &Histogram<u64>, secs: f64) -> Summary {
        let messages = stats.messages.load(Relaxed);
        let handshakes = stats.handshakes.load(Relaxed);
        let count = if args.mode == Mode::Handshake {
            handshakes
        } else {
            messages
        };
        let rate = count as f64 / secs.max(1e-9);
        let sent = stats.sent.load(Relaxed);
        let total = stats.total.load(Relaxed);
        let per = |bytes: u64, n: u64| (n > 0).then(|| bytes as f64 / n as f64);
        let q = |p: f64| {
            if hist.is_empty() {
                0
            } else {
                hist.value_at_quantile(p)
            }
        };
        Summary {
            messages,
            handshakes,
            errors: stats.errors.load(Relaxed),
            connected: stats.connected.load(Relaxed),
            h2_connections: stats.h2_connections.load(Relaxed),
            total,
            rate,
            mbps: rate * args.size as f64 / 1e6,
            wire_sent: per(stats.wire_out.load(Relaxed), sent),
            wire_recv: per(stats.wire_in.load(Relaxed), total),
            size: args.size,
            deflate: stats.deflate.get().copied(),
            latency_ms: [
                ms(q(0.5)),
                ms(q(0.9)),
                ms(q(0.99)),
                ms(q(0.999)),
                ms(if hist.is_empty() { 0 } else { hist.max() }),
            ],
        }
    }

    /// Bytes on the wire per payload byte: the compression ratio with
    /// --deflate.
    fn ratio(&self, w: Option<f64>) -> Option<f64> {
        w.filter(|_| self.size > 0).map(|w| w / self.size as f64)
    }
}

/// Prints the report: a table, or one JSON object with `--json`.
pub(super) fn report(
    args: &BenchArgs,
    stats: &Stats,
    hist: &Histogram<u64>,
    secs: f64,
    cpu_share: f64,
    first_error: Option<&str>,
) {
    let s = Summary::new(args, stats, hist, secs);
    if args.json {
        println!("{}", json_report(args, &s, secs, cpu_share, first_error));
        return;
    }
    println!(
        "target      {}  ({:?} mode, {} connections, {} connected)",
        args.url, args.mode, args.connections, s.connected
    );
    match args.mode {
        Mode::Echo => echo_lines(args, &s, secs),
        Mode::Handshake => println!(
            "throughput  {} handshakes  {} handshakes/s",
            fmt_int(s.handshakes),
            fmt_int(s.rate as u64)
        ),
        Mode::Idle => println!(
            "held        {} idle connections for {secs:.1} s",
            s.connected
        ),
    }
    if !hist.is_empty() {
        let [p50, p90, p99, p999, max] = s.latency_ms;
        println!(
            "latency     p50 {p50:.3} ms  p90 {p90:.3} ms  p99 {p99:.3} ms  p99.9 {p999:.3} ms  max {max:.3} ms"
        );
    }
    if args.request.http2 {
        println!(
            "http        HTTP/2 (RFC 8441): {} sockets on {} connection(s)",
            s.connected, s.h2_connections
        );
    }
    println!("client cpu  {:.0}% of one core", 100.0 * cpu_share);
    println!("errors      {}", s.errors);
    if let Some(e) = first_error {
        println!("first error {e}");
    }
}

/// The table's lines for `--mode echo`: the load, the throughput, the
/// deflate agreement and the bytes on the wire.
fn echo_lines(args: &BenchArgs, s: &Summary, secs: f64) {
    let kind = match (args.payload, args.text) {
        (Payload::Json, _) => "JSON text",
        (Payload::Random, true) => "text",
        (Payload::Random, false) => "binary",
    };
    let load = match args.rate {
        Some(r) => format!("open loop at {} msg/s", fmt_int(r as u64)),
        None => format!("depth {}", args.depth),
    };
    println!(
        "load        {} B {kind} messages, {load}, {secs:.1} s measured",
        args.size
    );
    println!(
        "throughput  {} messages  {} msg/s  {:.2} MB/s payload",
        fmt_int(s.messages),
        fmt_int(s.rate as u64),
        s.mbps
    );
    let takeover = |no: bool| {
        if no {
            ", no context takeover"
        } else {
            ", context takeover"
        }
    };
    match (args.deflate, s.deflate) {
        (false, _) => println!("deflate     off"),
        (true, None) => println!("deflate     offered, NOT negotiated"),
        (true, Some(p)) => println!(
            "deflate     negotiated (server: window {}{}; client: window {}{})",
            p.server_max_window_bits,
            takeover(p.server_no_context_takeover),
            p.client_max_window_bits,
            takeover(p.client_no_context_takeover),
        ),
    }
    if let (Some(sent), Some(recv)) = (s.wire_sent, s.wire_recv) {
        let pct = |w: Option<f64>| {
            w.map_or_else(String::new, |w| format!(" ({:.1}% of payload)", 100.0 * w))
        };
        println!(
            "wire        sent {sent:.1} B/msg{}  received {recv:.1} B/msg{}  (payload {} B)",
            pct(s.ratio(s.wire_sent)),
            pct(s.ratio(s.wire_recv)),
            args.size
        );
    }
}

/// The report as one JSON object.
fn json_report(
    args: &BenchArgs,
    s: &Summary,
    secs: f64,
    cpu_share: f64,
    first_error: Option<&str>,
) -> serde_json::Value {
    let [p50, p90, p99, p999, max] = s.latency_ms;
    serde_json::json!({
        "url": args.url,
        "mode": format!("{:?}", args.mode).to_lowercase(),
        "connections": args.connections,
        "connected": s.connected,
        "http2_connections": s.h2_connections,
        "size": args.size,
        "depth": args.depth,
        "rate": args.rate,
        "text": args.text || args.payload == Payload::Json,
        "payload": format!("{:?}", args.payload).to_lowercase(),
        "deflate": {
            "offered": args.deflate,
            "negotiated": s.deflate.is_some(),
            "params": s.deflate.map(|p| serde_json::json!({
                "server_no_context_takeover": p.server_no_context_takeover,
                "client_no_context_takeover": p.client_no_context_takeover,
                "server_max_window_bits": p.server_max_window_bits,
                "client_max_window_bits": p.client_max_window_bits,
            })),
        },
        "wire_bytes_per_message": { "sent": s.wire_sent, "received": s.wire_recv },
        "wire_ratio": { "sent": s.ratio(s.wire_sent), "received": s.ratio(s.wire_recv) },
        "seconds": secs,
        "messages": s.messages,
        "messages_total": s.total,
        "handshakes": s.handshakes,
        "per_second": s.rate,
        "payload_mb_per_s": s.mbps,
        "errors": s.errors,
        "first_error": first_error,
        "latency_ms": {
            "p50": p50, "p90": p90, "p99": p99,
            "p999": p999, "max": max,
        },
        "client_cpu_share": cpu_share,
    })
}

#[cfg(test)]
mod tests {
    use super::fmt_int;

    #[test]
    fn thousands_are_separated_by_commas() {
        for (n, text) in [
            (0, "0"),
            (999, "999"),
            (1_000, "1,000"),
            (123_456, "123,456"),
            (1_234_567, "1,234,567"),
        ] {
            assert_eq!(fmt_int(n), text);
        }
    }
}
