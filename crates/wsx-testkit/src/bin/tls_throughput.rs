//! Echo throughput over wss:// as a fraction of ws://.
//!
//! One process, a multi-thread tokio runtime with 2 worker threads: a plain
//! echo server and a TLS echo server (self-signed, rustls) on 127.0.0.1:0,
//! both without compression, and a client that opens C connections to one of
//! them and keeps D binary messages in flight on each (split halves: a writer
//! task that feeds messages while it holds credit and flushes when it runs
//! out, a reader task that checks every echo and returns the credit) for T
//! seconds. Every workload is measured over ws:// and wss:// R times,
//! interleaved (the order alternates per round), and the table reports the
//! median msg/s and MB/s of each and the median of the per-round wss/ws
//! ratios with their min-max.
//!
//! Both ends run in the same process on the same 2 threads, so the ratio
//! includes the TLS cost of the client and of the server.
//!
//! Every echo is checked: its length, an 8-byte sequence number at the start
//! of the payload (echoes must come back in order), and a check byte at the
//! end. Any mismatch or error exits with status 1.
//!
//! ```text
//! cargo run --release -p wsx-testkit --bin tls_throughput -- \
//!     [--conns 8] [--depth 16] [--secs 3] [--rounds 3] [--sizes 64,1024,16384,262144]
//! ```

use bytes::Bytes;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use wsx::tls::tokio_rustls::TlsAcceptor;
use wsx::{
    client::{ClientConfig, ClientRequest},
    Message, ServerConfig,
};

#[derive(Debug, Clone)]
struct Opts {
    conns: usize,
    depth: usize,
    secs: f64,
    rounds: usize,
    sizes: Vec<usize>,
}

fn parse_args() -> Result<Opts, String> {
    let mut o = Opts {
        conns: 8,
        depth: 16,
        secs: 3.0,
        rounds: 3,
        sizes: vec![64, 1024, 16 * 1024, 256 * 1024],
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--conns" | "-c" => o.conns = val()?.parse().map_err(|e| format!("--conns: {e}"))?,
            "--depth" | "-d" => o.depth = val()?.parse().map_err(|e| format!("--depth: {e}"))?,
            "--secs" | "-t" => o.secs = val()?.parse().map_err(|e| format!("--secs: {e}"))?,
            "--rounds" | "-r" => o.rounds = val()?.parse().map_err(|e| format!("--rounds: {e}"))?,
            "--sizes" => {
                o.sizes = val()?
                    .split(',')
                    .map(|s| s.trim().parse::<usize>())
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("--sizes: {e}"))?
            }
            "-h" | "--help" => {
                return Err("usage: tls_throughput [--conns N] [--depth N] [--secs S] \
                            [--rounds N] [--sizes B,B,...]"
                    .into())
            }
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }
    if o.conns == 0 || o.depth == 0 || o.rounds == 0 || o.secs <= 0.0 {
        return Err("--conns, --depth, --rounds and --secs must be positive".into());
    }
    if let Some(s) = o.sizes.iter().find(|&&s| s < 9) {
        return Err(format!(
            "message size {s}: at least 9 bytes (sequence number + check byte)"
        ));
    }
    Ok(o)
}

fn server_config() -> ServerConfig {
    ServerConfig::default().deflate(None)
}

async fn echo<S>(stream: S, config: &ServerConfig) -> wsx::Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut ws = wsx::server::accept_with(stream, config, |_| Ok(Default::default())).await?;
    // `recv` writes out what `feed` queued before it waits for input, so
    // echoes are batched while input is already buffered.
    while let Some(msg) = ws.recv().await? {
        if matches!(msg, Message::Binary(_) | Message::Text(_)) {
            ws.feed(msg).await?;
        }
    }
    Ok(())
}

async fn plain_server() -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let config = Arc::new(server_config());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            let config = config.clone();
            tokio::spawn(async move {
                if let Err(e) = echo(tcp, &config).await {
                    eprintln!("ws server connection: {e}");
                }
            });
        }
    });
    Ok(addr)
}

async fn tls_server() -> Result<SocketAddr, Box<dyn std::error::Error>> {
    let tls = wsx::tls::self_signed(&["localhost", "127.0.0.1"])?;
    let acceptor = TlsAcceptor::from(tls.config);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let config = Arc::new(server_config());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            let config = config.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let r = match acceptor.accept(tcp).await {
                    Ok(stream) => echo(stream, &config).await,
                    Err(e) => Err(e.into()),
                };
                if let Err(e) = r {
                    eprintln!("wss server connection: {e}");
                }
            });
        }
    });
    Ok(addr)
}

/// The payload of message `seq`: the sequence number (LE) in the first 8
/// bytes, a check byte derived from it at the end, filler in between.
fn payload(template: &[u8], seq: u64) -> Bytes {
    let mut v = template.to_vec();
    v[..8].copy_from_slice(&seq.to_le_bytes());
    let last = v.len() - 1;
    v[last] = check_byte(seq);
    Bytes::from(v)
}

fn check_byte(seq: u64) -> u8 {
    (seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8
}

fn verify(msg: &Message, size: usize, expected: u64) -> Result<(), String> {
    let data = match msg {
        Message::Binary(b) => b,
        other => return Err(format!("expected a binary echo, got {other:?}")),
    };
    if data.len() != size {
        return Err(format!(
            "echo {expected}: length {} instead of {size}",
            data.len()
        ));
    }
    let seq = u64::from_le_bytes(data[..8].try_into().expect("8 bytes"));
    if seq != expected {
        return Err(format!(
            "echo out of order: sequence {seq}, expected {expected}"
        ));
    }
    if data[size - 1] != check_byte(seq) {
        return Err(format!("echo {seq}: check byte differs"));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    msgs_per_sec: f64,
    mb_per_sec: f64,
}

struct Measured {
    sample: Sample,
    tls: Option<String>,
}

/// One cell: C connections to `url`, D in flight each, for `secs`.
async fn measure(url: &str, secure: bool, size: usize, o: &Opts) -> Result<Measured, String> {
    let mut config = ClientConfig::default().deflate(None);
    if secure {
        config.tls = Some(
            wsx::tls::TlsClientOptions {
                danger_accept_invalid_certs: true,
                ..Default::default()
            }
            .build()
            .map_err(|e| e.to_string())?,
        );
    }
    let req = ClientRequest::new(url).map_err(|e| e.to_string())?;
    let mut sockets = Vec::with_capacity(o.conns);
    let mut tls = None;
    for _ in 0..o.conns {
        let (ws, _) = wsx::client::connect_with(&req, &config)
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if secure && tls.is_none() {
            let conn = ws.get_ref().tls().ok_or("wss:// connection without TLS")?;
            tls = Some(format!(
                "{:?}, {:?}",
                conn.protocol_version().ok_or("no TLS version")?,
                conn.negotiated_cipher_suite()
                    .ok_or("no cipher suite")?
                    .suite()
            ));
        }
        sockets.push(ws);
    }

    let received = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let template: Arc<[u8]> = (0..size).map(|i| (i % 251) as u8).collect();
    let mut tasks = Vec::new();
    for ws in sockets {
        let (mut reader, mut writer) = ws.split();
        let credit = Arc::new(Semaphore::new(o.depth));
        let depth = o.depth as u32;
        let (stop_w, credit_w, template) = (stop.clone(), credit.clone(), template.clone());
        let write = tokio::spawn(async move {
            let mut seq = 0u64;
            while !stop_w.load(Ordering::Relaxed) {
                let permit = match credit_w.try_acquire() {
                    Ok(p) => p,
                    Err(_) => {
                        writer.flush().await.map_err(|e| e.to_string())?;
                        credit_w.acquire().await.map_err(|e| e.to_string())?
                    }
                };
                permit.forget();
                writer
                    .feed(Message::Binary(payload(&template, seq)))
                    .await
                    .map_err(|e| e.to_string())?;
                seq += 1;
            }
            writer.flush().await.map_err(|e| e.to_string())?;
            // Every message echoed: all the credit is back.
            let _all = credit_w
                .acquire_many(depth)
                .await
                .map_err(|e| e.to_string())?;
            writer.close(None).await.map_err(|e| e.to_string())?;
            Ok::<u64, String>(seq)
        });
        let received = received.clone();
        let read = tokio::spawn(async move {
            let mut expected = 0u64;
            while let Some(msg) = reader.recv().await.map_err(|e| e.to_string())? {
                verify(&msg, size, expected)?;
                expected += 1;
                received.fetch_add(1, Ordering::Relaxed);
                credit.add_permits(1);
            }
            Ok::<u64, String>(expected)
        });
        tasks.push((write, read));
    }

    let start = Instant::now();
    let before = received.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs_f64(o.secs)).await;
    let count = received.load(Ordering::Relaxed) - before;
    let elapsed = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);

    for (write, read) in tasks {
        let sent = write.await.map_err(|e| e.to_string())??;
        let got = read.await.map_err(|e| e.to_string())??;
        if sent != got {
            return Err(format!("{url}: sent {sent} messages, {got} echoed"));
        }
    }
    let msgs_per_sec = count as f64 / elapsed;
    Ok(Measured {
        sample: Sample {
            msgs_per_sec,
            mb_per_sec: msgs_per_sec * size as f64 / 1e6,
        },
        tls,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn size_label(size: usize) -> String {
    if size >= 1024 && size.is_multiple_of(1024) {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

fn thousands(x: f64) -> String {
    let s = format!("{:.0}", x);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn mb(x: f64) -> String {
    if x >= 100.0 {
        thousands(x)
    } else {
        format!("{x:.1}")
    }
}

async fn run(o: Opts) -> Result<(), String> {
    let ws_addr = plain_server().await.map_err(|e| e.to_string())?;
    let wss_addr = tls_server().await.map_err(|e| e.to_string())?;
    let ws_url = format!("ws://{ws_addr}/");
    let wss_url = format!("wss://{wss_addr}/");

    // samples[workload] = (ws samples, wss samples), one per round.
    let mut samples: Vec<(Vec<Sample>, Vec<Sample>)> = vec![Default::default(); o.sizes.len()];
    let mut tls_info = None;
    for round in 0..o.rounds {
        for (i, &size) in o.sizes.iter().enumerate() {
            // Alternate which goes first, so drift hits both alike.
            let order = if round % 2 == 0 {
                [false, true]
            } else {
                [true, false]
            };
            for secure in order {
                let url = if secure { &wss_url } else { &ws_url };
                let m = measure(url, secure, size, &o).await?;
                eprintln!(
                    "round {} {:>7} {:>4}: {:>10} msg/s {:>8} MB/s",
                    round + 1,
                    size_label(size),
                    if secure { "wss" } else { "ws" },
                    thousands(m.sample.msgs_per_sec),
                    mb(m.sample.mb_per_sec)
                );
                if secure {
                    samples[i].1.push(m.sample);
                    if tls_info.is_none() {
                        tls_info = m.tls;
                    }
                } else {
                    samples[i].0.push(m.sample);
                }
            }
        }
    }

    println!(
        "conns {}, depth {}, {} s per cell, {} rounds (ws/wss interleaved), deflate off, \
         client and server in one process (2 tokio worker threads)",
        o.conns, o.depth, o.secs, o.rounds
    );
    println!(
        "TLS: {}",
        tls_info.as_deref().unwrap_or("(no wss:// connection)")
    );
    println!();
    println!(
        "| workload | ws msg/s | wss msg/s | ws MB/s | wss MB/s | wss/ws (median [min-max]) |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for (&size, (ws, wss)) in o.sizes.iter().zip(&samples) {
        let ratios: Vec<f64> = ws
            .iter()
            .zip(wss)
            .map(|(a, b)| b.msgs_per_sec / a.msgs_per_sec)
            .collect();
        let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        println!(
            "| {} | {} | {} | {} | {} | {:.2} [{:.2}-{:.2}] |",
            size_label(size),
            thousands(median(ws.iter().map(|s| s.msgs_per_sec).collect())),
            thousands(median(wss.iter().map(|s| s.msgs_per_sec).collect())),
            mb(median(ws.iter().map(|s| s.mb_per_sec).collect())),
            mb(median(wss.iter().map(|s| s.mb_per_sec).collect())),
            median(ratios),
            lo,
            hi
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(run(o)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
