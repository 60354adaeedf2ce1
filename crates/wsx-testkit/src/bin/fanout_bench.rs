//! The fan-out of `wsx serve --broadcast` (issue 17), in one process vs
//! across nodes on Redis, measured the same way in the same run:
//!
//! - in-process: one `wsx serve --broadcast` node holds every subscriber;
//! - Redis: two `wsx serve --broadcast --redis URL` nodes on the Redis at
//!   `--redis-port`, the subscribers split evenly, the publisher on the first.
//!
//! Per setup: `--subs` `wsx.pubsub.v1` subscribers join one room (at most
//! `--concurrency` handshakes at a time, each waiting for its `subscribed`),
//! then one publisher connection publishes `--messages` messages at `--rate`
//! per second. Each message's text is its send time (µs since an instant of
//! this process), so publish-to-receive latency is measured in one clock, at
//! the moment the subscriber's task reads the envelope. Reported:
//!
//! - delivered messages per second: deliveries counted by the subscribers /
//!   time from the first publish to the last subscriber having them all;
//! - deliveries per CPU-second of the wsx processes (utime+stime from
//!   /proc/PID/stat, before the first publish and after the last delivery);
//! - latency p50/p99/max (hdrhistogram);
//! - lost, duplicated and out-of-order deliveries (offsets per subscriber must
//!   be exactly start+1..=start+M, once each, in order, in one epoch), and
//!   subscribers the server closed (`wsx_slow_consumers_dropped` and what the
//!   clients saw); every server gets `--queue` large enough for the whole run;
//! - Redis: its CPU per publish (pid from `--redis-pidfile`).
//!
//! Recovery: `--recover` subscribers (split evenly over the nodes) leave, the
//! publisher publishes `--missed` more (the others get them live), then the
//! leavers reconnect all at once with `?since=OFFSET&epoch=EPOCH` (with Redis,
//! each to the other node): time per client from connecting to having all
//! missed messages (p50/p99), whether each got `recovered` with exactly the
//! missed ones in order, and the reads from Redis's history meanwhile
//! (`wsx_fanout_history_reads_total` summed over the nodes; Redis's EVALSHA
//! calls from `INFO commandstats`). The nodes still hold the room's recent
//! messages in memory, so with Redis the leavers then resume from the same
//! position once more, all at once, on a fresh third node that holds none:
//! what they missed has to come from Redis's history.
//!
//! Subscribers do not offer permessage-deflate (the fan-out, not
//! compression, is measured). Prints a markdown table and a line of raw
//! figures per setup; exits 1 when a check fails (lost, duplicated or
//! reordered messages, a closed subscriber, a failed recovery) or when the
//! run exceeds `--deadline` seconds. Every server it started is killed on
//! the way out.
//!
//! ```text
//! fanout_bench --wsx target/release/wsx --redis-port PORT --redis-pidfile DIR/redis.pid \
//!     [--subs 10000] [--messages 2000] [--rate 200] [--recover 1000] [--missed 100] \
//!     [--concurrency 200] [--queue N] [--setups local,redis] [--deadline 1200]
//! ```

use hdrhistogram::Histogram;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{oneshot, Barrier, Semaphore};
use tokio::task::JoinHandle;
use wsx::client::{ClientConfig, ClientRequest};
use wsx::{MaybeTlsStream, Message, WebSocket};

const PROTOCOL: &str = "wsx.pubsub.v1";
/// Histograms the subscribers record into (a subscriber's shard: id % SHARDS).
const SHARDS: usize = 16;
/// A phase that makes no progress for this long is over (and reported).
const STALL: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, PartialEq, Debug)]
enum Setup {
    Local,
    Redis,
}

impl Setup {
    fn name(self) -> &'static str {
        match self {
            Setup::Local => "in-process (1 node)",
            Setup::Redis => "Redis (2 nodes)",
        }
    }
    fn short(self) -> &'static str {
        match self {
            Setup::Local => "local",
            Setup::Redis => "redis",
        }
    }
}

struct Args {
    wsx: PathBuf,
    redis_port: Option<u16>,
    redis_pidfile: Option<PathBuf>,
    subs: usize,
    messages: u64,
    rate: f64,
    recover: usize,
    missed: u64,
    concurrency: usize,
    queue: Option<usize>,
    setups: Vec<Setup>,
    deadline: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        wsx: PathBuf::from("target/release/wsx"),
        redis_port: None,
        redis_pidfile: None,
        subs: 10_000,
        messages: 2000,
        rate: 200.0,
        recover: 1000,
        missed: 100,
        concurrency: 200,
        queue: None,
        setups: vec![Setup::Local, Setup::Redis],
        deadline: 1200,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or(format!("{a} needs a value"));
        macro_rules! num {
            () => {
                val()?.parse().map_err(|e| format!("{a}: {e}"))?
            };
        }
        match a.as_str() {
            "--wsx" => args.wsx = val()?.into(),
            "--redis-port" => args.redis_port = Some(num!()),
            "--redis-pidfile" => args.redis_pidfile = Some(val()?.into()),
            "--subs" => args.subs = num!(),
            "--messages" => args.messages = num!(),
            "--rate" => args.rate = num!(),
            "--recover" => args.recover = num!(),
            "--missed" => args.missed = num!(),
            "--concurrency" => args.concurrency = num!(),
            "--queue" => args.queue = Some(num!()),
            "--deadline" => args.deadline = num!(),
            "--setups" => {
                args.setups = val()?
                    .split(',')
                    .map(|s| match s {
                        "local" => Ok(Setup::Local),
                        "redis" => Ok(Setup::Redis),
                        _ => Err(format!("--setups: {s}? (local, redis)")),
                    })
                    .collect::<Result<_, _>>()?
            }
            _ => return Err(format!("unknown argument {a}")),
        }
    }
    if args.subs < 2 || args.messages == 0 || args.missed == 0 || args.concurrency == 0 {
        return Err("--subs 2+, --messages, --missed and --concurrency 1+".into());
    }
    if !(args.rate > 0.0 && args.rate.is_finite()) {
        return Err("--rate: messages per second, above 0".into());
    }
    if args.recover == 0 || args.recover > args.subs {
        return Err("--recover: 1 to --subs subscribers".into());
    }
    if args.setups.contains(&Setup::Redis)
        && (args.redis_port.is_none() || args.redis_pidfile.is_none())
    {
        return Err(
            "the Redis setup needs --redis-port and --redis-pidfile (or --setups local)".into(),
        );
    }
    Ok(args)
}

// ---------------------------------------------------------------- processes

/// A `wsx serve --broadcast` process, killed when dropped.
struct Node {
    child: Child,
    port: u16,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn tail(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join("\n")
}

async fn start_node(args: &Args, redis: Option<&str>, tag: &str) -> Result<Node, String> {
    let port = free_port();
    let log = std::env::temp_dir().join(format!("fanout-bench-{tag}-{port}.log"));
    let err = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let queue = args
        .queue
        .unwrap_or(args.messages as usize + args.missed as usize + 1024);
    let mut command = Command::new(&args.wsx);
    command.args([
        "serve",
        "--broadcast",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--queue",
        &queue.to_string(),
    ]);
    if let Some(url) = redis {
        command.args(["--redis", url]);
    }
    let child = command
        .stdin(Stdio::null())
        .stdout(err.try_clone().map_err(|e| e.to_string())?)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", args.wsx.display()))?;
    let mut node = Node { child, port };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(status)) = node.child.try_wait() {
            return Err(format!(
                "wsx serve ({tag}) exited at start ({status}): {}",
                tail(&log)
            ));
        }
        if http_get(port, "/metrics").await.is_ok() {
            eprintln!(
                "fanout_bench: node {tag}: pid {} on 127.0.0.1:{port}, log {}",
                node.child.id(),
                log.display()
            );
            return Ok(node);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "wsx serve ({tag}) did not answer /metrics within 20 s: {}",
                tail(&log)
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A plain HTTP/1.0 GET on the loopback; the body of a 200.
async fn http_get(port: u16, path: &str) -> Result<String, String> {
    let get = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| e.to_string())?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP head")?;
        if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
            return Err(format!("GET {path}: {}", head.lines().next().unwrap_or("")));
        }
        Ok(body.to_string())
    };
    tokio::time::timeout(Duration::from_secs(10), get)
        .await
        .map_err(|_| format!("GET {path} on port {port}: no answer within 10 s"))?
}

/// Every sample of `/metrics`, summed over the nodes, by name (with labels).
async fn metrics(nodes: &[Node]) -> Result<HashMap<String, f64>, String> {
    let mut sum = HashMap::new();
    for node in nodes {
        let body = http_get(node.port, "/metrics").await?;
        for line in body.lines().filter(|l| !l.starts_with('#')) {
            if let Some((name, value)) = line.rsplit_once(' ') {
                if let Ok(v) = value.parse::<f64>() {
                    *sum.entry(name.to_string()).or_insert(0.0) += v;
                }
            }
        }
    }
    Ok(sum)
}

fn metric(m: &HashMap<String, f64>, name: &str) -> f64 {
    m.get(name).copied().unwrap_or(0.0)
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // After "pid (comm) ": state is field 3; utime and stime are 14 and 15.
    let rest = stat
        .rfind(") ")
        .map(|i| &stat[i + 2..])
        .ok_or("a /proc stat line without its command")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> Result<u64, String> {
        f.get(i)
            .and_then(|s| s.parse().ok())
            .ok_or(format!("/proc/{pid}/stat: field {}", i + 3))
    };
    Ok(field(11)? + field(12)?)
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn redis_pid(args: &Args) -> Result<u32, String> {
    let file = args.redis_pidfile.as_ref().expect("checked in parse_args");
    std::fs::read_to_string(file)
        .map_err(|e| format!("{}: {e}", file.display()))?
        .trim()
        .parse()
        .map_err(|e| format!("{}: {e}", file.display()))
}

/// `INFO commandstats`: calls per command.
fn redis_calls(args: &Args) -> Result<HashMap<String, u64>, String> {
    let port = args.redis_port.expect("checked in parse_args");
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["INFO", "commandstats"])
        .output()
        .map_err(|e| format!("redis-cli: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "redis-cli INFO commandstats: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let mut calls = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some((name, rest)) = line.trim().split_once(':') else {
            continue;
        };
        let Some(cmd) = name.strip_prefix("cmdstat_") else {
            continue;
        };
        let n = rest
            .split(',')
            .find_map(|kv| kv.strip_prefix("calls="))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        calls.insert(cmd.to_string(), n);
    }
    Ok(calls)
}

fn delta(a: &HashMap<String, u64>, b: &HashMap<String, u64>, cmd: &str) -> u64 {
    b.get(cmd)
        .copied()
        .unwrap_or(0)
        .saturating_sub(a.get(cmd).copied().unwrap_or(0))
}

// ------------------------------------------------------------------ clients

/// The first message after joining.
struct Hello {
    offset: u64,
    epoch: Option<String>,
    recovery: String,
    missed: u64,
    reason: Option<String>,
}

type Ws = WebSocket<MaybeTlsStream>;

async fn join(url: &str) -> Result<(Ws, Hello), String> {
    let req = ClientRequest::new(url)
        .map_err(|e| e.to_string())?
        .protocol(PROTOCOL);
    let config = ClientConfig::default().deflate(None);
    let (mut ws, _) = wsx::client::connect_with(&req, &config)
        .await
        .map_err(|e| format!("connect {url}: {e}"))?;
    if ws.protocol() != Some(PROTOCOL) {
        return Err(format!("{url}: the server did not accept {PROTOCOL}"));
    }
    let first = match tokio::time::timeout(STALL, ws.recv()).await {
        Err(_) => return Err(format!("{url}: no subscribed message within {STALL:?}")),
        Ok(Err(e)) => return Err(format!("{url}: {e}")),
        Ok(Ok(None)) => {
            return Err(format!(
                "{url}: closed before subscribed: {:?}",
                ws.close_info()
            ))
        }
        Ok(Ok(Some(Message::Text(t)))) => t,
        Ok(Ok(Some(other))) => return Err(format!("{url}: {other:?} before subscribed")),
    };
    let v: serde_json::Value = serde_json::from_str(first.as_str())
        .map_err(|e| format!("{url}: {e}: {}", first.as_str()))?;
    if v["type"] != "subscribed" {
        return Err(format!("{url}: first message {}", first.as_str()));
    }
    let hello = Hello {
        offset: v["offset"].as_u64().unwrap_or(0),
        epoch: v["epoch"].as_str().map(str::to_string),
        recovery: v["recovery"].as_str().unwrap_or("").to_string(),
        missed: v["missed"].as_u64().unwrap_or(0),
        reason: v["reason"].as_str().map(str::to_string),
    };
    Ok((ws, hello))
}

/// A string value `"key":"value"` of a flat JSON object (ours have no escapes).
fn json_str<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    let rest = &s[s.find(key)? + key.len()..];
    let rest = rest.strip_prefix('"')?;
    Some(&rest[..rest.find('"')?])
}

fn json_u64(s: &str, key: &str) -> Option<u64> {
    let rest = &s[s.find(key)? + key.len()..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// A message envelope: epoch, offset, text. Without a full JSON parse: the
/// client reads 10,000 x rate of them per second.
fn parse_message(s: &str) -> Option<(&str, u64, Option<&str>)> {
    if !s.starts_with(r#"{"type":"message""#) {
        return None;
    }
    Some((
        json_str(s, r#""epoch":"#)?,
        json_u64(s, r#""offset":"#)?,
        json_str(s, r#""text":"#),
    ))
}

fn describe_end(ws: &Ws, err: Option<wsx::Error>) -> String {
    match (err, ws.close_info()) {
        (Some(e), _) => format!("error: {e}"),
        (None, Some(c)) => format!("closed {} {}", c.code, c.reason),
        (None, None) => "closed".into(),
    }
}

/// What the subscriber tasks share with the conductor.
struct Shared {
    t0: Instant,
    ready: AtomicUsize,
    failed: Mutex<Vec<String>>,
    /// Per subscriber, what the conductor polls.
    progress: Vec<Progress>,
    /// Latencies are recorded while set (the live phase).
    recording: AtomicBool,
    hists: Vec<Mutex<Histogram<u64>>>,
}

#[derive(Default)]
struct Progress {
    /// The highest offset received.
    max: AtomicU64,
    /// When the last message arrived (µs since t0).
    last_us: AtomicU64,
    /// Messages received.
    recv: AtomicU64,
    /// The connection ended without being asked to leave.
    closed: AtomicBool,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("histogram bounds")
}

impl Shared {
    fn new(subs: usize) -> Shared {
        Shared {
            t0: Instant::now(),
            ready: AtomicUsize::new(0),
            failed: Mutex::new(Vec::new()),
            progress: (0..subs).map(|_| Progress::default()).collect(),
            recording: AtomicBool::new(false),
            hists: (0..SHARDS).map(|_| Mutex::new(histogram())).collect(),
        }
    }
    fn now_us(&self) -> u64 {
        self.t0.elapsed().as_micros() as u64
    }
    /// Subscribers among `ids` that have offset `upto` (or were closed).
    fn caught_up(&self, ids: std::ops::Range<usize>, upto: u64) -> usize {
        self.progress[ids]
            .iter()
            .filter(|p| p.max.load(Relaxed) >= upto || p.closed.load(Relaxed))
            .count()
    }
    fn closed(&self) -> usize {
        self.progress
            .iter()
            .filter(|p| p.closed.load(Relaxed))
            .count()
    }
}

/// One subscriber's account of what it received.
#[derive(Default)]
struct Tally {
    id: usize,
    start: u64,
    epoch: Option<String>,
    /// Offsets seen, as bits from start+1.
    seen: Vec<u64>,
    recv: u64,
    uniq: u64,
    dups: u64,
    reordered: u64,
    /// In another epoch, or not after the join's offset.
    bad: u64,
    /// Frames other than message envelopes (errors).
    other: u64,
    note: Option<String>,
    max: u64,
    lat: Vec<u64>,
    closed: Option<String>,
}

impl Tally {
    fn on_text(&mut self, sh: &Shared, txt: &str) {
        let now = sh.now_us();
        let Some((epoch, offset, text)) = parse_message(txt) else {
            self.other += 1;
            if self.note.is_none() {
                self.note = Some(txt.chars().take(200).collect());
            }
            return;
        };
        self.recv += 1;
        let progress = &sh.progress[self.id];
        progress.recv.store(self.recv, Relaxed);
        progress.last_us.store(now, Relaxed);
        match &self.epoch {
            None => self.epoch = Some(epoch.to_string()),
            Some(e) if e != epoch => {
                self.bad += 1;
                return;
            }
            Some(_) => {}
        }
        if offset <= self.start {
            self.bad += 1;
            return;
        }
        let i = (offset - self.start - 1) as usize;
        if self.seen.len() <= i / 64 {
            self.seen.resize(i / 64 + 1, 0);
        }
        let bit = 1u64 << (i % 64);
        if self.seen[i / 64] & bit != 0 {
            self.dups += 1;
            return;
        }
        self.seen[i / 64] |= bit;
        self.uniq += 1;
        if offset < self.max {
            self.reordered += 1;
        } else {
            self.max = offset;
            progress.max.store(offset, Relaxed);
        }
        if sh.recording.load(Relaxed) {
            if let Some(sent) = text.and_then(|t| t.parse::<u64>().ok()) {
                self.lat.push(now.saturating_sub(sent));
                if self.lat.len() >= 256 {
                    self.flush(sh);
                }
            }
        }
    }

    fn has(&self, offset: u64) -> bool {
        let Some(i) = offset.checked_sub(self.start + 1).map(|i| i as usize) else {
            return false;
        };
        self.seen
            .get(i / 64)
            .is_some_and(|w| w & (1u64 << (i % 64)) != 0)
    }

    fn flush(&mut self, sh: &Shared) {
        if self.lat.is_empty() {
            return;
        }
        let mut h = sh.hists[self.id % SHARDS].lock().expect("histogram lock");
        for &v in &self.lat {
            h.saturating_record(v.max(1));
        }
        self.lat.clear();
    }
}

/// Joins (one of `--concurrency` at a time), then counts what arrives until
/// told to leave (or the server ends the connection).
async fn subscriber(
    sh: Arc<Shared>,
    id: usize,
    url: String,
    sem: Arc<Semaphore>,
    mut leave: oneshot::Receiver<()>,
) -> Tally {
    let mut t = Tally {
        id,
        ..Tally::default()
    };
    let permit = sem.acquire_owned().await;
    let mut ws = match join(&url).await {
        Ok((ws, hello)) => {
            t.start = hello.offset;
            ws
        }
        Err(e) => {
            sh.failed.lock().expect("lock").push(e.clone());
            t.closed = Some(e);
            return t;
        }
    };
    drop(permit);
    sh.ready.fetch_add(1, Relaxed);
    loop {
        tokio::select! {
            biased;
            _ = &mut leave => {
                let _ = ws.close(None).await;
                break;
            }
            r = ws.recv() => match r {
                Ok(Some(Message::Text(txt))) => t.on_text(&sh, txt.as_str()),
                Ok(Some(_)) => {}
                Ok(None) => {
                    t.closed = Some(describe_end(&ws, None));
                    sh.progress[id].closed.store(true, Relaxed);
                    break;
                }
                Err(e) => {
                    t.closed = Some(describe_end(&ws, Some(e)));
                    sh.progress[id].closed.store(true, Relaxed);
                    break;
                }
            }
        }
    }
    t.flush(&sh);
    t
}

/// The publishing connection (also a member: it gets its own messages).
struct Publisher {
    ws: Ws,
    start: u64,
    epoch: Option<String>,
    sent_us: Vec<u64>,
    /// The offsets of the acknowledged publishes, in order.
    acked: Vec<u64>,
    /// Acks in another epoch, marked duplicate, or not after the previous.
    bad_acks: u64,
    /// Acks more than one after the previous: a publish in between failed
    /// but took an offset.
    ack_gaps: u64,
    /// Errors, with how long after its publish each came (µs).
    errors: Vec<(u64, String)>,
    ack_us: Vec<u64>,
}

impl Publisher {
    fn answered(&self) -> usize {
        self.acked.len() + self.errors.len()
    }

    fn last_acked(&self) -> u64 {
        self.acked.last().copied().unwrap_or(self.start)
    }

    /// Publishes `n` messages at `rate` per second and waits for their acks;
    /// returns when the first was sent (µs since t0).
    async fn publish(&mut self, sh: &Shared, n: u64, rate: f64) -> Result<u64, String> {
        let begin = tokio::time::Instant::now();
        let want = self.sent_us.len() + n as usize;
        let mut first = None;
        let mut i = 0u64;
        while i < n || self.answered() < want {
            let next = begin + Duration::from_secs_f64(i as f64 / rate);
            tokio::select! {
                _ = tokio::time::sleep_until(next), if i < n => {
                    let us = sh.now_us();
                    first.get_or_insert(us);
                    let text = format!(r#"{{"type":"publish","text":"{us}"}}"#);
                    self.ws
                        .send(Message::text(text))
                        .await
                        .map_err(|e| format!("publisher: send: {e}"))?;
                    self.sent_us.push(us);
                    i += 1;
                }
                r = tokio::time::timeout(STALL, self.ws.recv()) => {
                    let msg = match r {
                        Err(_) => return Err(format!("publisher: no answer for {STALL:?} ({} of {want} answered)", self.answered())),
                        Ok(Err(e)) => return Err(format!("publisher: {e}")),
                        Ok(Ok(None)) => return Err(format!("publisher: {}", describe_end(&self.ws, None))),
                        Ok(Ok(Some(Message::Text(t)))) => t,
                        Ok(Ok(Some(_))) => continue,
                    };
                    let s = msg.as_str();
                    let took = self
                        .sent_us
                        .get(self.answered())
                        .map_or(0, |&sent| sh.now_us().saturating_sub(sent));
                    if s.starts_with(r#"{"type":"ack""#) {
                        self.ack_us.push(took);
                        let offset = json_u64(s, r#""offset":"#).unwrap_or(0);
                        let epoch = json_str(s, r#""epoch":"#).map(str::to_string);
                        if self.epoch.is_none() {
                            self.epoch = epoch.clone();
                        }
                        let prev = self.last_acked();
                        if offset <= prev || epoch != self.epoch || !s.contains(r#""duplicate":false"#) {
                            self.bad_acks += 1;
                        } else if offset > prev + 1 {
                            self.ack_gaps += 1;
                        }
                        self.acked.push(offset);
                    } else if s.starts_with(r#"{"type":"error""#) {
                        eprintln!("fanout_bench: publisher: {} ms after the publish: {s}", took / 1000);
                        self.errors.push((took, s.to_string()));
                    }
                }
            }
        }
        Ok(first.unwrap_or_else(|| sh.now_us()))
    }
}

/// A leaver's way back: connect with its position, time until it has every
/// missed message.
async fn recover_one(
    url: String,
    last: u64,
    missed: u64,
    barrier: Arc<Barrier>,
) -> (u64, Result<(), String>) {
    barrier.wait().await;
    let t = Instant::now();
    let check = async {
        let (mut ws, hello) = join(&url).await?;
        if hello.recovery != "recovered" || hello.missed != missed {
            return Err(format!(
                "subscribed: recovery {} missed {} ({})",
                hello.recovery,
                hello.missed,
                hello.reason.unwrap_or_default()
            ));
        }
        for k in 1..=missed {
            let txt = match tokio::time::timeout(STALL, ws.recv()).await {
                Err(_) => return Err(format!("message {k} of {missed}: nothing for {STALL:?}")),
                Ok(Err(e)) => return Err(format!("message {k} of {missed}: {e}")),
                Ok(Ok(None)) => {
                    return Err(format!(
                        "message {k} of {missed}: {}",
                        describe_end(&ws, None)
                    ))
                }
                Ok(Ok(Some(Message::Text(txt)))) => txt,
                Ok(Ok(Some(other))) => return Err(format!("message {k}: {other:?}")),
            };
            match parse_message(txt.as_str()) {
                Some((epoch, offset, _))
                    if offset == last + k && Some(epoch) == hello.epoch.as_deref() => {}
                _ => {
                    return Err(format!(
                        "message {k} of {missed}: expected offset {}, got {}",
                        last + k,
                        txt.as_str()
                    ))
                }
            }
        }
        let _ = ws.close(None).await;
        Ok(())
    };
    let r = check.await;
    (t.elapsed().as_micros() as u64, r)
}

// -------------------------------------------------------------- the run

/// Clients resuming at once: how long each took, and whether it got
/// exactly what it missed.
#[derive(Default)]
struct Round {
    n: usize,
    ok: usize,
    note: Option<String>,
    /// Sorted.
    us: Vec<u64>,
    history_reads: f64,
    evalsha: Option<u64>,
    xrange: Option<u64>,
}

impl Round {
    fn times(&self) -> String {
        format!(
            "{} / {}",
            ms(percentile(&self.us, 0.5)),
            ms(percentile(&self.us, 0.99))
        )
    }
    fn raw(&self) -> String {
        format!(
            "n={} ok={} us p50={} p99={} max={} history_reads={} evalsha={} xrange={}",
            self.n,
            self.ok,
            percentile(&self.us, 0.5),
            percentile(&self.us, 0.99),
            self.us.last().copied().unwrap_or(0),
            self.history_reads,
            self.evalsha.map_or("-".into(), |c| c.to_string()),
            self.xrange.map_or("-".into(), |c| c.to_string()),
        )
    }
}

/// Each (URL with ?since=&epoch=, last offset, messages missed) connects at
/// the same moment.
async fn round(urls: Vec<(String, u64, u64)>) -> Result<Round, String> {
    let barrier = Arc::new(Barrier::new(urls.len()));
    let tasks: Vec<_> = urls
        .into_iter()
        .map(|(u, last, missed)| tokio::spawn(recover_one(u, last, missed, barrier.clone())))
        .collect();
    let mut r = Round {
        n: tasks.len(),
        ..Round::default()
    };
    for task in tasks {
        let (us, result) = task.await.map_err(|e| format!("a recovering task: {e}"))?;
        r.us.push(us);
        match result {
            Ok(()) => r.ok += 1,
            Err(e) => {
                r.note.get_or_insert(e);
            }
        }
    }
    r.us.sort_unstable();
    Ok(r)
}

#[derive(Default)]
struct Report {
    nodes: usize,
    per_node: Vec<usize>,
    deliveries: u64,
    secs: f64,
    cpu_s: f64,
    /// This process's CPU over the same time (the subscribers' side).
    client_cpu_s: f64,
    lat: Option<Histogram<u64>>,
    lost: u64,
    dups: u64,
    reordered: u64,
    bad: u64,
    other: u64,
    closed: usize,
    closed_note: Option<String>,
    slow_dropped: f64,
    pub_errors: usize,
    pub_error_note: Option<String>,
    bad_acks: u64,
    ack_gaps: u64,
    /// Offsets delivered that no ack gave (a publish that failed but took one).
    unacked: u64,
    ack_p50_us: u64,
    ack_p99_us: u64,
    publish_gaps: f64,
    publish_gap_filled: f64,
    publish_history_reads: f64,
    redis_cpu_s: Option<f64>,
    redis_evalsha_publish: Option<u64>,
    recover: Round,
    /// Redis: the same again on a fresh node.
    fresh: Option<Round>,
    stalled: Vec<String>,
}

/// Waits until `have() >= want`; false when it made no progress for STALL.
async fn wait_for(want: usize, have: impl Fn() -> usize) -> bool {
    let (mut last, mut since) = (have(), Instant::now());
    loop {
        let now = have();
        if now >= want {
            return true;
        }
        if now != last {
            (last, since) = (now, Instant::now());
        } else if since.elapsed() > STALL {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

async fn run_setup(args: &Args, setup: Setup, clk: f64) -> Result<Report, String> {
    let sh = Arc::new(Shared::new(args.subs));
    let n = args.subs;
    let m = args.messages;
    let room = format!("/fanout-bench-{}-{}", std::process::id(), setup.short());
    let redis_url = args
        .redis_port
        .map(|p| format!("redis://127.0.0.1:{p}"))
        .filter(|_| setup == Setup::Redis);
    let count = if setup == Setup::Local { 1 } else { 2 };
    let mut nodes = Vec::new();
    for k in 0..count {
        let tag = format!("{}{k}", setup.short());
        nodes.push(start_node(args, redis_url.as_deref(), &tag).await?);
    }
    let pids: Vec<u32> = nodes.iter().map(|n| n.child.id()).collect();
    let ports: Vec<u16> = nodes.iter().map(|n| n.port).collect();
    let url = |k: usize, q: &str| format!("ws://127.0.0.1:{}{room}{q}", ports[k]);
    let mut report = Report {
        nodes: count,
        per_node: (0..count).map(|k| (k..n).step_by(count).count()).collect(),
        ..Report::default()
    };

    let (ws, hello) = join(&url(0, ""))
        .await
        .map_err(|e| format!("publisher: {e}"))?;
    let mut publisher = Publisher {
        ws,
        start: hello.offset,
        epoch: hello.epoch,
        sent_us: Vec::new(),
        acked: Vec::new(),
        bad_acks: 0,
        ack_gaps: 0,
        errors: Vec::new(),
        ack_us: Vec::new(),
    };

    eprintln!(
        "fanout_bench: {}: {n} subscribers joining, {} at a time",
        setup.short(),
        args.concurrency
    );
    let t_join = Instant::now();
    let sem = Arc::new(Semaphore::new(args.concurrency));
    let mut subs: Vec<Option<(oneshot::Sender<()>, JoinHandle<Tally>)>> = Vec::with_capacity(n);
    for i in 0..n {
        let (tx, rx) = oneshot::channel();
        let task = subscriber(sh.clone(), i, url(i % count, ""), sem.clone(), rx);
        subs.push(Some((tx, tokio::spawn(task))));
    }
    let joined = wait_for(n, || {
        sh.ready.load(Relaxed) + sh.failed.lock().expect("lock").len()
    })
    .await;
    let failed = sh.failed.lock().expect("lock").clone();
    if !failed.is_empty() || !joined {
        return Err(format!(
            "{}: {} of {n} subscribers joined; {} failed, the first: {}",
            setup.short(),
            sh.ready.load(Relaxed),
            failed.len(),
            failed.first().map_or("(none: stalled)", |s| s.as_str())
        ));
    }
    eprintln!(
        "fanout_bench: {}: joined in {:.1} s; publishing {m} at {}/s",
        setup.short(),
        t_join.elapsed().as_secs_f64(),
        args.rate
    );
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Phase 1: M messages live to everyone.
    let m0 = metrics(&nodes).await?;
    let cpu0: Vec<u64> = pids
        .iter()
        .map(|&p| cpu_ticks(p))
        .collect::<Result<_, _>>()?;
    let redis0 = match setup {
        Setup::Redis => Some((cpu_ticks(redis_pid(args)?)?, redis_calls(args)?)),
        Setup::Local => None,
    };
    let me0 = cpu_ticks(std::process::id())?;
    sh.recording.store(true, Relaxed);
    let first_us = publisher.publish(&sh, m, args.rate).await?;
    let a1 = publisher.last_acked();
    if !wait_for(n, || sh.caught_up(0..n, a1)).await {
        report.stalled.push(format!(
            "live: {} of {n} subscribers got offset {a1}; no progress for {STALL:?}",
            sh.caught_up(0..n, a1)
        ));
    }
    sh.recording.store(false, Relaxed);
    report.deliveries = sh.progress.iter().map(|p| p.recv.load(Relaxed)).sum();
    let last_us = sh
        .progress
        .iter()
        .map(|p| p.last_us.load(Relaxed))
        .max()
        .unwrap_or(0);
    let cpu1: Vec<u64> = pids
        .iter()
        .map(|&p| cpu_ticks(p))
        .collect::<Result<_, _>>()?;
    let me1 = cpu_ticks(std::process::id())?;
    report.client_cpu_s = me1.saturating_sub(me0) as f64 / clk;
    let m1 = metrics(&nodes).await?;
    if let Some((cpu, calls)) = &redis0 {
        let (cpu_after, calls_after) = (cpu_ticks(redis_pid(args)?)?, redis_calls(args)?);
        report.redis_cpu_s = Some(cpu_after.saturating_sub(*cpu) as f64 / clk);
        report.redis_evalsha_publish = Some(delta(calls, &calls_after, "evalsha"));
    }
    report.secs = last_us.saturating_sub(first_us).max(1) as f64 / 1e6;
    report.cpu_s = cpu0
        .iter()
        .zip(&cpu1)
        .map(|(a, b)| b.saturating_sub(*a) as f64 / clk)
        .sum();
    report.publish_gaps =
        metric(&m1, "wsx_fanout_gaps_total") - metric(&m0, "wsx_fanout_gaps_total");
    report.publish_gap_filled =
        metric(&m1, "wsx_fanout_gap_filled_total") - metric(&m0, "wsx_fanout_gap_filled_total");
    report.publish_history_reads = metric(&m1, "wsx_fanout_history_reads_total")
        - metric(&m0, "wsx_fanout_history_reads_total");
    eprintln!(
        "fanout_bench: {}: {} of {n} have all {m} after {:.1} s; recovery: {} leave",
        setup.short(),
        sh.caught_up(0..n, a1),
        report.secs,
        args.recover
    );

    // Phase 2: leavers, `missed` more, the leavers back at once.
    let mut tallies = Vec::with_capacity(n);
    let mut leavers = Vec::new();
    for slot in subs.iter_mut().take(args.recover) {
        let (tx, task) = slot.take().expect("a subscriber");
        let _ = tx.send(());
        let t = task.await.map_err(|e| format!("a subscriber task: {e}"))?;
        leavers.push((t.id, t.max, t.closed.is_none()));
        tallies.push(t);
    }
    let closed_leavers = leavers.iter().filter(|l| !l.2).count();
    let members = || async {
        metrics(&nodes)
            .await
            .map(|m| metric(&m, "wsx_fanout_members") as usize)
    };
    let t_leave = Instant::now();
    loop {
        let open = 1 + (n - args.recover) - (sh.closed() - closed_leavers);
        let now = members().await?;
        if now <= open {
            break;
        }
        if t_leave.elapsed() > STALL {
            return Err(format!(
                "{}: the servers still count {now} members {STALL:?} after {} left (expected {open})",
                setup.short(),
                args.recover
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    publisher.publish(&sh, args.missed, args.rate).await?;
    let a2 = publisher.last_acked();
    let stay = args.recover..n;
    if !wait_for(stay.len(), || sh.caught_up(stay.clone(), a2)).await {
        report.stalled.push(format!(
            "missed: {} of {} staying subscribers got offset {a2}; no progress for {STALL:?}",
            sh.caught_up(stay.clone(), a2),
            stay.len()
        ));
    }
    let m2 = metrics(&nodes).await?;
    let calls2 = match setup {
        Setup::Redis => Some(redis_calls(args)?),
        Setup::Local => None,
    };
    eprintln!(
        "fanout_bench: {}: {} reconnect at once with ?since=&epoch=",
        setup.short(),
        leavers.iter().filter(|l| l.2).count()
    );
    let epoch = publisher.epoch.clone().unwrap_or_default();
    let back: Vec<(usize, u64)> = leavers.iter().filter(|l| l.2).map(|l| (l.0, l.1)).collect();
    // With Redis, each resumes on the other node.
    let urls = back
        .iter()
        .map(|&(id, last)| {
            let k = (id % count + 1) % count;
            (
                url(k, &format!("?since={last}&epoch={epoch}")),
                last,
                a2 - last,
            )
        })
        .collect();
    report.recover = round(urls).await?;
    let m3 = metrics(&nodes).await?;
    report.recover.history_reads = metric(&m3, "wsx_fanout_history_reads_total")
        - metric(&m2, "wsx_fanout_history_reads_total");
    if let Some(c2) = &calls2 {
        let c3 = redis_calls(args)?;
        report.recover.evalsha = Some(delta(c2, &c3, "evalsha"));
        report.recover.xrange = Some(delta(c2, &c3, "xrange"));
    }
    if setup == Setup::Redis {
        // The same positions again on a node that has none of the room's
        // messages in memory: what it misses comes from Redis.
        let node = start_node(args, redis_url.as_deref(), "redis-fresh").await?;
        let port = node.port;
        nodes.push(node);
        eprintln!(
            "fanout_bench: {}: {} reconnect at once to a fresh third node",
            setup.short(),
            back.len()
        );
        let m4 = metrics(&nodes).await?;
        let c4 = redis_calls(args)?;
        let urls = back
            .iter()
            .map(|&(_, last)| {
                let q = format!("?since={last}&epoch={epoch}");
                (format!("ws://127.0.0.1:{port}{room}{q}"), last, a2 - last)
            })
            .collect();
        let mut fresh = round(urls).await?;
        let m5 = metrics(&nodes).await?;
        let c5 = redis_calls(args)?;
        fresh.history_reads = metric(&m5, "wsx_fanout_history_reads_total")
            - metric(&m4, "wsx_fanout_history_reads_total");
        fresh.evalsha = Some(delta(&c4, &c5, "evalsha"));
        fresh.xrange = Some(delta(&c4, &c5, "xrange"));
        report.fresh = Some(fresh);
    }
    let m3 = metrics(&nodes).await?;
    report.slow_dropped = metric(&m3, "wsx_slow_consumers_dropped_total");

    // The rest leave; every tally is checked.
    let mut rest = Vec::new();
    for (tx, task) in subs.iter_mut().filter_map(Option::take) {
        let _ = tx.send(());
        rest.push(task);
    }
    for task in rest {
        match tokio::time::timeout(STALL, task).await {
            Ok(Ok(t)) => tallies.push(t),
            _ => return Err(format!("{}: a subscriber did not leave", setup.short())),
        }
    }
    let _ = publisher.ws.close(None).await;
    drop(nodes);

    let mut lat = histogram();
    for h in &sh.hists {
        lat.add(&*h.lock().expect("lock"))
            .map_err(|e| e.to_string())?;
    }
    report.lat = Some(lat);
    for t in &tallies {
        let upto = if t.id < args.recover { a1 } else { a2 };
        let acked = publisher.acked.iter().filter(|&&o| o <= upto);
        let found = acked.clone().filter(|&&o| t.has(o)).count() as u64;
        report.lost += acked.count() as u64 - found;
        report.unacked += t.uniq - found;
        report.dups += t.dups;
        report.reordered += t.reordered;
        report.bad += t.bad;
        report.other += t.other;
        if let Some(c) = &t.closed {
            report.closed += 1;
            report.closed_note.get_or_insert_with(|| c.clone());
        }
        if let Some(note) = &t.note {
            report.closed_note.get_or_insert_with(|| note.clone());
        }
    }
    report.pub_errors = publisher.errors.len();
    report.pub_error_note = publisher
        .errors
        .first()
        .map(|(us, e)| format!("{e} ({} ms after the publish)", us / 1000));
    report.bad_acks = publisher.bad_acks;
    report.ack_gaps = publisher.ack_gaps;
    let mut acks = publisher.ack_us.clone();
    acks.sort_unstable();
    report.ack_p50_us = percentile(&acks, 0.5);
    report.ack_p99_us = percentile(&acks, 0.99);
    Ok(report)
}

fn problems(r: &Report) -> Vec<String> {
    let mut p = r.stalled.clone();
    if r.lost + r.dups + r.reordered + r.bad > 0 {
        p.push(format!(
            "lost {} duplicated {} out of order {} wrong epoch/offset {}",
            r.lost, r.dups, r.reordered, r.bad
        ));
    }
    if r.closed > 0 || r.slow_dropped > 0.0 {
        p.push(format!(
            "{} subscribers closed ({} as slow by the server): {}",
            r.closed,
            r.slow_dropped,
            r.closed_note.as_deref().unwrap_or("")
        ));
    }
    if r.pub_errors > 0 || r.bad_acks > 0 {
        p.push(format!(
            "{} publish errors (the first: {}), {} acks out of sequence, {} offsets skipped by the acks, {} deliveries of offsets no ack gave",
            r.pub_errors,
            r.pub_error_note.as_deref().unwrap_or(""),
            r.bad_acks,
            r.ack_gaps,
            r.unacked
        ));
    }
    for (what, round) in [
        ("recovery", Some(&r.recover)),
        ("fresh node", r.fresh.as_ref()),
    ] {
        if let Some(round) = round.filter(|x| x.ok < x.n) {
            p.push(format!(
                "{what}: {} of {} recovered exactly; the first failure: {}",
                round.ok,
                round.n,
                round.note.as_deref().unwrap_or("")
            ));
        }
    }
    p
}

fn ms(us: u64) -> String {
    let v = us as f64 / 1e3;
    if v < 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.0}")
    }
}

fn print_table(args: &Args, setups: &[Setup], reports: &[Report], clk: f64) {
    let cell = |f: &dyn Fn(&Report) -> String| -> String {
        reports.iter().map(f).collect::<Vec<_>>().join(" | ")
    };
    let q = |r: &Report, p: f64| r.lat.as_ref().map_or(0, |h| h.value_at_quantile(p));
    println!(
        "One publisher, {} subscribers in one room, {} messages at {}/s; then {} leave, {} more are published, and they come back at once with ?since=&epoch=.",
        args.subs, args.messages, args.rate, args.recover, args.missed
    );
    println!();
    let names: Vec<&str> = setups.iter().map(|s| s.name()).collect();
    println!("| measure | {} |", names.join(" | "));
    println!("|---|{}", "---|".repeat(names.len()));
    let rows: Vec<(String, String)> = vec![
        (
            "subscribers per node".into(),
            cell(&|r| {
                r.per_node
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(" + ")
            }),
        ),
        (
            "delivered messages/s (first publish to last delivery)".into(),
            cell(&|r| format!("{:.0}", r.deliveries as f64 / r.secs)),
        ),
        (
            "delivered per CPU-second of the wsx processes".into(),
            cell(&|r| format!("{:.0}", r.deliveries as f64 / r.cpu_s.max(1.0 / clk))),
        ),
        (
            "wsx CPU seconds while publishing (all nodes)".into(),
            cell(&|r| format!("{:.2}", r.cpu_s)),
        ),
        (
            "publish-to-receive latency p50 / p99 / max, ms".into(),
            cell(&|r| format!("{} / {} / {}", ms(q(r, 0.5)), ms(q(r, 0.99)), ms(q(r, 1.0)))),
        ),
        (
            "lost / duplicated / out of order".into(),
            cell(&|r| format!("{} / {} / {}", r.lost, r.dups, r.reordered)),
        ),
        (
            "publish errors / deliveries of offsets no ack gave".into(),
            cell(&|r| format!("{} / {}", r.pub_errors, r.unacked)),
        ),
        (
            "subscribers closed (by the server as slow)".into(),
            cell(&|r| format!("{} ({})", r.closed, r.slow_dropped)),
        ),
        (
            "Redis CPU per publish, µs".into(),
            cell(&|r| {
                r.redis_cpu_s.map_or("—".into(), |s| {
                    format!("{:.0}", s * 1e6 / args.messages as f64)
                })
            }),
        ),
        (
            format!(
                "recovery of {} missed, {} clients at once: time per client p50 / p99, ms",
                args.missed, args.recover
            ),
            cell(&|r| r.recover.times()),
        ),
        (
            format!("recovered exactly {} in order", args.missed),
            cell(&|r| format!("{} / {}", r.recover.ok, r.recover.n)),
        ),
        (
            "messages read from Redis's history during recovery".into(),
            cell(&|r| format!("{:.0}", r.recover.history_reads)),
        ),
        (
            "Redis EVALSHA calls during recovery".into(),
            cell(&|r| r.recover.evalsha.map_or("—".into(), |c| c.to_string())),
        ),
        (
            "the same on a fresh third node: time per client p50 / p99, ms".into(),
            cell(&|r| r.fresh.as_ref().map_or("—".into(), Round::times)),
        ),
        (
            "fresh node: recovered exactly / history reads / EVALSHA calls".into(),
            cell(&|r| {
                r.fresh.as_ref().map_or("—".into(), |f| {
                    format!(
                        "{} of {} / {:.0} / {}",
                        f.ok,
                        f.n,
                        f.history_reads,
                        f.evalsha.unwrap_or(0)
                    )
                })
            }),
        ),
    ];
    for (name, cells) in rows {
        println!("| {name} | {cells} |");
    }
    println!();
    for (s, r) in setups.iter().zip(reports) {
        let q = |p: f64| r.lat.as_ref().map_or(0, |h| h.value_at_quantile(p));
        let redis = match (r.redis_cpu_s, r.redis_evalsha_publish) {
            (Some(cpu), Some(calls)) => {
                format!(" redis_cpu_s={cpu:.2} redis_evalsha_publish={calls}")
            }
            _ => String::new(),
        };
        let fresh = r
            .fresh
            .as_ref()
            .map_or(String::new(), |f| format!(" fresh-node: {}", f.raw()));
        println!(
            "- {}: nodes={} subs={} messages={} rate={} deliveries={} secs={:.3} wsx_cpu_s={:.2} client_cpu_s={:.2} clk_tck={clk} \
             latency_us p50={} p90={} p99={} p99.9={} max={} lost={} dup={} reordered={} bad={} other_frames={} \
             closed={} slow_dropped={} publish_errors={} bad_acks={} ack_gaps={} unacked_deliveries={} ack_us p50={} p99={} \
             gaps={} gap_filled={} history_reads_live={}{redis} \
             recover: {}{fresh}",
            s.short(),
            r.nodes,
            args.subs,
            args.messages,
            args.rate,
            r.deliveries,
            r.secs,
            r.cpu_s,
            r.client_cpu_s,
            q(0.5),
            q(0.9),
            q(0.99),
            q(0.999),
            q(1.0),
            r.lost,
            r.dups,
            r.reordered,
            r.bad,
            r.other,
            r.closed,
            r.slow_dropped,
            r.pub_errors,
            r.bad_acks,
            r.ack_gaps,
            r.unacked,
            r.ack_p50_us,
            r.ack_p99_us,
            r.publish_gaps,
            r.publish_gap_filled,
            r.publish_history_reads,
            r.recover.raw(),
        );
    }
}

/// The soft limit on open files of this process (its servers inherit it).
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

async fn run(args: Args) -> Result<(), String> {
    let need = (args.subs + args.recover + 256) as u64;
    if let Some(limit) = open_files_limit() {
        if limit < need {
            return Err(format!(
                "the open files limit is {limit}; {} subscribers need about {need} (ulimit -n {need})",
                args.subs
            ));
        }
    }
    let clk = clock_ticks();
    let mut reports = Vec::new();
    for &setup in &args.setups {
        reports.push(run_setup(&args, setup, clk).await?);
    }
    print_table(&args, &args.setups, &reports, clk);
    let mut failed = Vec::new();
    for (s, r) in args.setups.iter().zip(&reports) {
        for p in problems(r) {
            failed.push(format!("{}: {p}", s.short()));
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("; "))
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("fanout_bench: {e}");
            return ExitCode::from(2);
        }
    };
    let deadline = Duration::from_secs(args.deadline);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    // On the deadline the run is dropped, and with it every server it started.
    let result = rt.block_on(async {
        match tokio::time::timeout(deadline, run(args)).await {
            Ok(r) => r,
            Err(_) => Err(format!(
                "the run did not finish within its deadline of {} s (--deadline); stopped",
                deadline.as_secs()
            )),
        }
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fanout_bench: {e}");
            ExitCode::FAILURE
        }
    }
}
