//! What one connection slot does, by `--mode`: echo (the window or the
//! schedule lives in [`EchoLoop`]), handshakes one after another, or idle.

use super::args::Mode;
use super::conn::{open, open_raw};
use super::echo::EchoLoop;
use super::plan::Plan;
use super::wire::{close_frame, data_frame, deflate_connection, Rx};
use hdrhistogram::Histogram;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use wsx::wsx_proto::deflate::DeflateParams;
use wsx::wsx_proto::Connection;
use wsx::MaybeTlsStream;

/// What a connection slot brings back: its latencies and its error.
pub(super) struct Outcome {
    pub(super) hist: Histogram<u64>,
    pub(super) first_error: Option<String>,
}

/// One connection slot, `i` of `--connections`, in the chosen mode.
pub(super) async fn connection(plan: Arc<Plan>, i: usize) -> Outcome {
    let mut out = Outcome {
        hist: Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram"),
        first_error: None,
    };
    let result = match plan.args.mode {
        Mode::Echo => echo(&plan, i, &mut out.hist).await,
        Mode::Handshake => handshakes(&plan, i, &mut out.hist).await,
        Mode::Idle => idle(&plan, i).await,
    };
    if let Err(e) = result {
        plan.stats.errors.fetch_add(1, Relaxed);
        out.first_error = Some(e);
    }
    out
}

/// `--mode idle`: holds the connection open until the end, silent.
async fn idle(plan: &Plan, i: usize) -> Result<(), String> {
    let (mut tcp, _, _) = open(plan, i).await?;
    plan.stats.connected.fetch_add(1, Relaxed);
    let clock = plan.clock().await;
    let mut buf = [0u8; 256];
    tokio::select! {
        _ = tokio::time::sleep_until(clock.end) => Ok(()),
        r = tcp.read(&mut buf) => match r {
            Ok(0) => Err("server closed an idle connection".into()),
            Ok(_) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// `--mode handshake`: opens, times and closes connections one after another.
async fn handshakes(plan: &Plan, i: usize, hist: &mut Histogram<u64>) -> Result<(), String> {
    let clock = plan.clock().await;
    let close = close_frame();
    let mut opened = 0u64;
    loop {
        let t = Instant::now();
        // -n counts handshakes here (per connection slot, warm-up included).
        if t >= clock.end || plan.per_conn_limit.is_some_and(|l| opened >= l) {
            return Ok(());
        }
        opened += 1;
        let (mut tcp, _, _) = open(plan, i).await?;
        let done = Instant::now();
        if t >= clock.measure_from {
            let _ = hist.record((done - t).as_nanos() as u64);
            plan.stats.handshakes.fetch_add(1, Relaxed);
        }
        // Close properly: our close frame, then wait for the server's end.
        tcp.write_all(&close).await.map_err(|e| e.to_string())?;
        read_to_end(&mut tcp).await;
    }
}

/// The compressed frames for `negotiated`: shared by every connection with
/// the same agreement (the first one makes them), else made for this one.
fn deflate_frames<'a>(
    plan: &'a Plan,
    conn: &mut Connection,
    negotiated: DeflateParams,
    own: &'a mut Vec<Vec<u8>>,
) -> Result<&'a [Vec<u8>], String> {
    let make = |conn: &mut Connection| -> Result<Vec<Vec<u8>>, String> {
        plan.payloads
            .iter()
            .map(|p| data_frame(conn, p, plan.text))
            .collect()
    };
    if plan.deflate_frames.get().is_none() {
        let frames = make(conn)?;
        let _ = plan.deflate_frames.set((negotiated, frames));
    }
    match plan.deflate_frames.get() {
        Some((p, frames)) if *p == negotiated => Ok(frames),
        _ => {
            *own = make(conn)?;
            Ok(own)
        }
    }
}

/// `--mode echo`: sends messages (a window of `--depth`, or on the
/// `--rate` schedule), checks and times every echo, then closes.
async fn echo(plan: &Plan, i: usize, hist: &mut Histogram<u64>) -> Result<(), String> {
    let (mut tcp, rbuf, negotiated) = if plan.args.raw_tcp {
        open_raw(plan, i).await?
    } else {
        open(plan, i).await?
    };
    // With deflate, a Connection decodes the echoes and made our frame.
    let mut rx = match negotiated {
        None => Rx::Frames(rbuf),
        Some(n) => Rx::Proto(Box::new(deflate_connection(n, &rbuf, i))),
    };
    let mut own_frames = Vec::new();
    let frames: &[Vec<u8>] = match &mut rx {
        Rx::Frames(_) => &plan.frames,
        Rx::Proto(conn) => {
            let params = conn.deflate().expect("deflate enabled").params;
            deflate_frames(plan, conn, params, &mut own_frames)?
        }
    };
    plan.stats.connected.fetch_add(1, Relaxed);
    let clock = plan.clock().await;
    tokio::time::sleep_until(clock.start).await;
    EchoLoop::new(plan, frames, clock)
        .run(&mut tcp, &mut rx, hist)
        .await?;
    close(&mut tcp, plan.args.raw_tcp).await;
    Ok(())
}

/// The end of an echo connection: our close frame (a raw TCP echo gets a
/// FIN), then what the server still sends, for at most 2 s.
async fn close(tcp: &mut MaybeTlsStream, raw_tcp: bool) {
    if !raw_tcp {
        let _ = tcp.write_all(&close_frame()).await;
    } else {
        let _ = tcp.shutdown().await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), read_to_end(tcp)).await;
}

/// Reads and drops what the server sends until it closes the connection
/// (or it fails).
async fn read_to_end(tcp: &mut MaybeTlsStream) {
    let mut buf = [0u8; 1024];
    while let Ok(n) = tcp.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}
