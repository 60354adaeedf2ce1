//! The run: the plan, the load-generator threads (a single-threaded
//! runtime each, connections spread over them), the clock started once all
//! connections are open, progress on a terminal, our own CPU use, and the
//! outcomes gathered for the report.

use super::args::{BenchArgs, Mode};
use super::modes::{connection, Outcome};
use super::plan::{measured, Clock, Plan, Stats};
use super::report::{fmt_int, report};
use hdrhistogram::Histogram;
use std::io::IsTerminal;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Runs the benchmark and prints the report; the exit code (1 when any
/// echo or connection failed).
///
/// # Errors
/// What stopped the run before it started (flags, request, TLS, address),
/// or a thread that panicked.
pub(super) fn run(args: BenchArgs) -> Result<u8, String> {
    let stats = Arc::new(Stats::default());
    // Connections first, then the clock starts for everyone at once.
    let (clock_tx, clock_rx) = watch::channel(None);
    let plan = Arc::new(Plan::new(&args, clock_rx, stats.clone())?);

    let progress = progress_bar(&args);
    let threads: Vec<_> = (0..args.threads)
        .map(|t| spawn_thread(plan.clone(), t))
        .collect();
    let (clock, cpu0) = oversee(&args, &stats, &threads, &clock_tx, progress.as_ref());
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    let (hist, first_error) = gather(threads)?;
    let measure_from = clock.map_or_else(Instant::now, |c| c.measure_from);
    let measured = if args.messages.is_some() {
        // Count-limited runs end when the last echo arrives.
        (Instant::now() - measure_from).as_secs_f64()
    } else {
        measured(&args).as_secs_f64()
    };
    // Our own CPU over the measured window, as a share of it.
    let cpu_share = match cpu0 {
        Some((c, t)) => (cpu_seconds() - c) / (Instant::now() - t).as_secs_f64().max(1e-9),
        None => 0.0,
    };
    report(
        &args,
        &stats,
        &hist,
        measured,
        cpu_share,
        first_error.as_deref(),
    );
    Ok(if stats.errors.load(Relaxed) > 0 { 1 } else { 0 })
}

/// Load-generator thread `t`: connection slots `t`, `t + threads`, ... on
/// a single-threaded runtime.
fn spawn_thread(plan: Arc<Plan>, t: usize) -> JoinHandle<Vec<Outcome>> {
    std::thread::spawn(move || -> Vec<Outcome> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let local = tokio::task::LocalSet::new();
            local
                .run_until(async move {
                    let mut handles = Vec::new();
                    let mut i = t;
                    while i < plan.args.connections {
                        handles.push(tokio::task::spawn_local(connection(plan.clone(), i)));
                        i += plan.args.threads;
                    }
                    let mut out = Vec::new();
                    for h in handles {
                        if let Ok(o) = h.await {
                            out.push(o);
                        }
                    }
                    out
                })
                .await
        })
    })
}

/// While the threads work: starts the clock once every connection is open
/// (or failed, or after a setup deadline; at once for handshakes), notes
/// our CPU time when measuring starts, shows progress. Returns the clock
/// and that CPU reading.
fn oversee(
    args: &BenchArgs,
    stats: &Stats,
    threads: &[JoinHandle<Vec<Outcome>>],
    clock_tx: &watch::Sender<Option<Clock>>,
    progress: Option<&indicatif::ProgressBar>,
) -> (Option<Clock>, Option<(f64, Instant)>) {
    let t0 = std::time::Instant::now();
    let mut last = (std::time::Instant::now(), 0u64);
    let mut cpu0 = None;
    let mut clock: Option<Clock> = None;
    let setup_deadline = Instant::now() + Duration::from_secs(30 + args.connections as u64 / 500);
    while threads.iter().any(|t| !t.is_finished()) {
        std::thread::sleep(Duration::from_millis(20));
        let ready =
            stats.connected.load(Relaxed) + stats.errors.load(Relaxed) >= args.connections as u64;
        if clock.is_none()
            && (args.mode == Mode::Handshake || ready || Instant::now() > setup_deadline)
        {
            let c = Clock::starting_now(args);
            clock = Some(c);
            let _ = clock_tx.send(Some(c));
        }
        if cpu0.is_none() && clock.is_some_and(|c| Instant::now() >= c.measure_from) {
            cpu0 = Some((cpu_seconds(), Instant::now()));
        }
        if last.0.elapsed() < Duration::from_millis(250) {
            continue;
        }
        if let Some(pb) = progress {
            let now = std::time::Instant::now();
            let m = stats.messages.load(Relaxed) + stats.handshakes.load(Relaxed);
            let rate = (m - last.1) as f64 / (now - last.0).as_secs_f64();
            last = (now, m);
            pb.set_message(format!(
                "{:5.1} s  {} connected  {} msg/s  {} errors",
                t0.elapsed().as_secs_f64(),
                stats.connected.load(Relaxed),
                fmt_int(rate as u64),
                stats.errors.load(Relaxed)
            ));
        }
    }
    (clock, cpu0)
}

/// The threads' outcomes: all latencies in one histogram, and the first
/// error.
fn gather(
    threads: Vec<JoinHandle<Vec<Outcome>>>,
) -> Result<(Histogram<u64>, Option<String>), String> {
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("histogram");
    let mut first_error = None;
    for t in threads {
        for o in t.join().map_err(|_| "a load-generator thread panicked")? {
            let _ = hist.add(&o.hist);
            if first_error.is_none() {
                first_error = o.first_error;
            }
        }
    }
    Ok((hist, first_error))
}

fn progress_bar(args: &BenchArgs) -> Option<indicatif::ProgressBar> {
    if args.json || !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = indicatif::ProgressBar::new_spinner();
    pb.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg}").expect("valid template"),
    );
    pb.enable_steady_tick(Duration::from_millis(100));
    Some(pb)
}

/// CPU seconds (user + system) used by this process so far, from
/// /proc/self/stat (Linux; USER_HZ is 100 there).
fn cpu_seconds() -> f64 {
    proc_cpu_seconds("/proc/self/stat").unwrap_or(0.0)
}

/// CPU seconds (user + system) of a process from its `stat` file.
fn proc_cpu_seconds(path: &str) -> Option<f64> {
    let s = std::fs::read_to_string(path).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}
