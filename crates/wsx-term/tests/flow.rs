//! Flow control under a flood: a program writing as fast as it can, one
//! viewer that never reads, one that does. Memory stays bounded, the reading
//! viewer keeps receiving, and Ctrl-C from a writer stops the program.
//! (Latency and throughput figures come from bench/term, not from here.)

mod common;

use common::*;
use std::time::Duration;
use tokio::time::Instant;
use wsx_term::protocol::ServerMsg;
use wsx_term::{SessionLimits, TermConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_with_a_stalled_viewer_stays_bounded_and_ctrl_c_stops_it() {
    // A small scrollback on both sides: what is left to measure is the flow.
    let limits = SessionLimits::default().scrollback_lines(1000);
    let srv = start(TermConfig::default().limits(limits)).await;
    let s = srv
        .terminals
        .create(&command(&["yes", "a flood line from yes"]))
        .unwrap();
    // Attached, then never read again: its socket buffers fill and stay full.
    let stalled = attach(srv.addr, s.id()).await;
    let mut reader = attach(srv.addr, s.id()).await;
    reader.scrollback = 1000;
    // The flood reaching the reader at all can take a while on a loaded
    // machine (CI saw nothing in the first second, once): wait for it, then
    // hold it to every second.
    let attached = reader.frames;
    assert!(
        reader
            .until(Duration::from_secs(10), |v| v.frames > attached)
            .await,
        "the reading viewer received no output within 10 s of attaching"
    );
    let rss_before = rss_kib();
    let mut peak = rss_before;
    for second in 0..5 {
        let frames = reader.frames;
        reader.until(Duration::from_secs(1), |_| false).await;
        assert!(reader.closed.is_none(), "{:?}", reader.closed);
        assert!(
            reader.frames > frames,
            "second {second}: the reading viewer received nothing while the other one stalled"
        );
        peak = peak.max(rss_kib());
    }
    let growth = peak.saturating_sub(rss_before);
    let resyncs = reader
        .msgs
        .iter()
        .filter(|m| matches!(m, ServerMsg::Snapshot { reason, .. } if reason == "lagged"))
        .count();
    eprintln!(
        "flood: {} frames, {} output bytes, {resyncs} resyncs; RSS {rss_before} -> peak {peak} KiB",
        reader.frames, reader.output_bytes
    );
    // Without a bound per viewer the stalled one's backlog alone would be
    // the whole flood (the reading viewer's bytes, above). The bound: the
    // session's 1 MiB window, two screens with 1,000 lines of scrollback
    // (2.5 MiB each), socket buffers.
    assert!(
        growth < 24 * 1024,
        "RSS grew by {growth} KiB under the flood"
    );

    // Ctrl-C from the writer: the terminal's line discipline signals yes.
    let sent = Instant::now();
    reader.type_str("\x03").await;
    assert!(
        reader
            .until(Duration::from_secs(5), |v| v.exit().is_some())
            .await,
        "yes still running 5 s after Ctrl-C"
    );
    eprintln!("Ctrl-C to exit message: {:?}", sent.elapsed());
    assert_eq!(reader.exit(), Some((None, Some("SIGINT".to_string()))));
    // Resyncs drawn over what it showed, then the rest of the output: the
    // reading viewer shows the session's screen.
    assert_eq!(reader.text(), s.screen_text(), "after {resyncs} resyncs");
    drop(stalled);
}
