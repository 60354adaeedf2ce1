//! `wsx term` beside terminado (Jupyter's terminal server), measured the same
//! way in the same run: each measurement starts a fresh server process for
//! its one program and drives it over WebSockets from this process.
//!
//! - cat: `sh -c 'read x; cat FILE'` (FILE: text, `--mb` MB); the client
//!   attaches, presses Enter and counts output bytes until the session ends.
//!   MB/s = file size / time.
//! - flood: `yes` for `--flood-secs` with two viewers of one session, one
//!   that never reads after its handshake and one that does: the server's
//!   peak RSS (sampled every 50 ms) and what the reading viewer got.
//! - Ctrl-C: an interactive bash (prompt `READY-\# $ `); `--tries` times:
//!   type `yes`, wait for 1 MiB of output, send Ctrl-C and time until the
//!   next prompt arrives (the output still in flight included).
//!
//! Prints a markdown table; exits 1 when a measurement fails.
//!
//! ```text
//! term_bench --wsx target/release/wsx [--terminado PYTHON SCRIPT] \
//!     [--mb 100] [--flood-secs 5] [--tries 20]
//! ```

use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};
use wsx::client::{ClientConfig, ClientRequest};
use wsx::{MaybeTlsStream, Message, WebSocket};

const TOKEN: &str = "term-bench-token-0123456789";
const PROMPT: &str = "READY-\\# $ ";
const WAIT: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, PartialEq, Debug)]
enum Peer {
    Wsx,
    Terminado,
}

struct Args {
    wsx: PathBuf,
    terminado: Option<(PathBuf, PathBuf)>,
    mb: usize,
    flood_secs: u64,
    tries: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        wsx: PathBuf::from("target/release/wsx"),
        terminado: None,
        mb: 100,
        flood_secs: 5,
        tries: 20,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--wsx" => args.wsx = val()?.into(),
            "--terminado" => {
                let python = PathBuf::from(val()?);
                let script = PathBuf::from(it.next().ok_or("--terminado PYTHON SCRIPT")?);
                args.terminado = Some((python, script));
            }
            "--mb" => args.mb = val()?.parse().map_err(|e| format!("--mb: {e}"))?,
            "--flood-secs" => {
                args.flood_secs = val()?.parse().map_err(|e| format!("--flood-secs: {e}"))?
            }
            "--tries" => args.tries = val()?.parse().map_err(|e| format!("--tries: {e}"))?,
            _ => return Err(format!("unknown argument {a}")),
        }
    }
    Ok(args)
}

/// A server process for one program, killed when dropped.
struct Server {
    peer: Peer,
    child: Child,
    port: u16,
    /// wsx: the session's id; terminado: the URL path.
    session: String,
}

impl Drop for Server {
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

fn start(args: &Args, peer: Peer, shared: bool, cmd: &[&str]) -> Result<Server, String> {
    let port = free_port();
    let log = std::env::temp_dir().join(format!("term-bench-{peer:?}-{port}.log"));
    let err = std::fs::File::create(&log).map_err(|e| e.to_string())?;
    let mut command = match peer {
        Peer::Wsx => {
            let mut c = Command::new(&args.wsx);
            c.args([
                "term",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--token",
                TOKEN,
                "--",
            ]);
            c
        }
        Peer::Terminado => {
            let (python, script) = args.terminado.as_ref().expect("terminado configured");
            let mut c = Command::new(python);
            c.arg(script)
                .arg(if shared { "named" } else { "unique" })
                .arg(port.to_string());
            c
        }
    };
    let child = command
        .args(cmd)
        .env("PS1", PROMPT)
        .env("TERM", "xterm-256color")
        .stdin(Stdio::null())
        .stdout(err.try_clone().map_err(|e| e.to_string())?)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("starting {peer:?}: {e}"))?;
    let mut server = Server {
        peer,
        child,
        port,
        session: String::new(),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let ready = match peer {
            Peer::Wsx => text
                .split("&session=")
                .nth(1)
                .map(|rest| rest.split_whitespace().next().unwrap_or("").to_string()),
            Peer::Terminado => text.contains("listening").then(|| {
                if shared {
                    "/websocket/bench"
                } else {
                    "/websocket"
                }
                .to_string()
            }),
        };
        if let Some(s) = ready {
            server.session = s;
            return Ok(server);
        }
        if Instant::now() > deadline {
            return Err(format!("{peer:?} did not start within 20 s: {text}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What a viewer receives, as terminal bytes.
enum Output {
    Bytes(Vec<u8>),
    Other,
    Ended,
}

struct Viewer {
    peer: Peer,
    ws: WebSocket<MaybeTlsStream>,
}

impl Viewer {
    async fn attach(server: &Server) -> Result<Viewer, String> {
        let (url, proto) = match server.peer {
            Peer::Wsx => (
                format!(
                    "ws://127.0.0.1:{}/api/ws/sessions/{}?token={TOKEN}",
                    server.port, server.session
                ),
                Some("wsx.term.v1"),
            ),
            Peer::Terminado => (
                format!("ws://127.0.0.1:{}{}", server.port, server.session),
                None,
            ),
        };
        let mut req = ClientRequest::new(&url).map_err(|e| e.to_string())?;
        if let Some(p) = proto {
            req = req.protocol(p);
        }
        let (ws, _) = wsx::client::connect_with(&req, &ClientConfig::default())
            .await
            .map_err(|e| format!("{:?} attach: {e}", server.peer))?;
        Ok(Viewer {
            peer: server.peer,
            ws,
        })
    }

    async fn input(&mut self, text: &str) -> Result<(), String> {
        let msg = match self.peer {
            Peer::Wsx => Message::binary(text.as_bytes().to_vec()),
            Peer::Terminado => Message::text(serde_json::json!(["stdin", text]).to_string()),
        };
        self.ws.send(msg).await.map_err(|e| e.to_string())
    }

    async fn next(&mut self) -> Result<Output, String> {
        let msg = match tokio::time::timeout(WAIT, self.ws.recv()).await {
            Err(_) => return Err(format!("{:?}: nothing for {WAIT:?}", self.peer)),
            Ok(Err(e)) => return Err(format!("{:?}: {e}", self.peer)),
            Ok(Ok(None)) => return Ok(Output::Ended),
            Ok(Ok(Some(m))) => m,
        };
        Ok(match (self.peer, msg) {
            (Peer::Wsx, Message::Binary(b)) => Output::Bytes(b.to_vec()),
            (Peer::Terminado, Message::Text(t)) => {
                let v: serde_json::Value =
                    serde_json::from_str(t.as_str()).map_err(|e| e.to_string())?;
                match (v[0].as_str(), v[1].as_str()) {
                    (Some("stdout"), Some(s)) => Output::Bytes(s.as_bytes().to_vec()),
                    (Some("disconnect"), _) => Output::Ended,
                    _ => Output::Other,
                }
            }
            _ => Output::Other,
        })
    }

    /// Reads until `needle` arrives (true) or the session ends (false).
    async fn until(&mut self, needle: &[u8]) -> Result<bool, String> {
        let mut tail: Vec<u8> = Vec::new();
        loop {
            match self.next().await? {
                Output::Bytes(b) => {
                    tail.extend_from_slice(&b);
                    if tail.windows(needle.len()).any(|w| w == needle) {
                        return Ok(true);
                    }
                    let keep = tail.len().saturating_sub(needle.len());
                    tail.drain(..keep);
                }
                Output::Other => {}
                Output::Ended => return Ok(false),
            }
        }
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?.to_string();
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

/// Seconds to print the whole file, and the bytes that arrived.
async fn cat(args: &Args, peer: Peer, file: &str) -> Result<(f64, u64), String> {
    let script = format!("read x; cat {file}");
    let server = start(args, peer, false, &["sh", "-c", &script])?;
    let mut v = Viewer::attach(&server).await?;
    // wsx: hello, snapshot; terminado: setup. Then the program waits for Enter.
    tokio::time::sleep(Duration::from_millis(300)).await;
    v.input("\r").await?;
    let t0 = Instant::now();
    let mut bytes = 0u64;
    loop {
        match v.next().await? {
            Output::Bytes(b) => bytes += b.len() as u64,
            Output::Other => {}
            Output::Ended => break,
        }
    }
    Ok((t0.elapsed().as_secs_f64(), bytes))
}

/// Peak server RSS (KiB) before and during the flood; bytes the reading viewer got.
async fn flood(args: &Args, peer: Peer) -> Result<(u64, u64, u64), String> {
    let server = start(args, peer, true, &["yes", "a flood line from yes"])?;
    let pid = server.child.id();
    let stalled = Viewer::attach(&server).await?;
    let mut reader = Viewer::attach(&server).await?;
    let before = rss_kib(pid);
    let mut peak = before;
    let mut bytes = 0u64;
    let end = Instant::now() + Duration::from_secs(args.flood_secs);
    let mut sample = Instant::now();
    while Instant::now() < end {
        match tokio::time::timeout(Duration::from_millis(50), reader.next()).await {
            Ok(Ok(Output::Bytes(b))) => bytes += b.len() as u64,
            Ok(Ok(Output::Other)) | Err(_) => {}
            Ok(Ok(Output::Ended)) => return Err(format!("{peer:?}: the flood ended early")),
            Ok(Err(e)) => return Err(e),
        }
        if sample.elapsed() >= Duration::from_millis(50) {
            peak = peak.max(rss_kib(pid));
            sample = Instant::now();
        }
    }
    peak = peak.max(rss_kib(pid));
    drop(stalled);
    Ok((before, peak, bytes))
}

/// Milliseconds from Ctrl-C to the next prompt, per try.
async fn ctrl_c(args: &Args, peer: Peer) -> Result<Vec<f64>, String> {
    let server = start(args, peer, false, &["bash", "--norc", "--noprofile", "-i"])?;
    let mut v = Viewer::attach(&server).await?;
    if !v.until(b"READY-").await? {
        return Err(format!("{peer:?}: no prompt"));
    }
    let mut times = Vec::new();
    for _ in 0..args.tries {
        v.input("yes\r").await?;
        let mut got = 0usize;
        while got < 1 << 20 {
            match v.next().await? {
                Output::Bytes(b) => got += b.len(),
                Output::Other => {}
                Output::Ended => return Err(format!("{peer:?}: bash ended")),
            }
        }
        v.input("\x03").await?;
        let t0 = Instant::now();
        if !v.until(b"READY-").await? {
            return Err(format!("{peer:?}: bash ended"));
        }
        times.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    Ok(times)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn write_file(mb: usize) -> Result<String, String> {
    let path = std::env::temp_dir().join(format!("term-bench-{mb}mb.txt"));
    let want = (mb * 1_000_000) as u64;
    if std::fs::metadata(&path).map(|m| m.len()).ok() != Some(want) {
        let mut text = Vec::with_capacity(want as usize);
        let mut n = 0u64;
        while (text.len() as u64) < want {
            n += 1;
            text.extend_from_slice(
                format!("{n:09} the quick brown fox jumps over the lazy dog, 0123456789\n")
                    .as_bytes(),
            );
        }
        text.truncate(want as usize);
        std::fs::write(&path, &text).map_err(|e| e.to_string())?;
    }
    Ok(path.display().to_string())
}

async fn run(args: Args) -> Result<(), String> {
    let file = write_file(args.mb)?;
    let mut peers = vec![Peer::Wsx];
    if args.terminado.is_some() {
        peers.push(Peer::Terminado);
    }
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut cat_rate = Vec::new();
    let mut cat_bytes = Vec::new();
    let mut rss = Vec::new();
    let mut flood_mb = Vec::new();
    let mut c50 = Vec::new();
    let mut c95 = Vec::new();
    let mut cmax = Vec::new();
    for &peer in &peers {
        eprintln!("term_bench: {peer:?}: cat {} MB", args.mb);
        let (secs, bytes) = cat(&args, peer, &file).await?;
        cat_rate.push(format!("{:.1}", args.mb as f64 / secs));
        cat_bytes.push(format!("{:.1}", bytes as f64 / 1e6));
        eprintln!("term_bench: {peer:?}: flood {} s", args.flood_secs);
        let (before, peak, bytes) = flood(&args, peer).await?;
        rss.push(format!(
            "{:.1} -> {:.1}",
            before as f64 / 1024.0,
            peak as f64 / 1024.0
        ));
        flood_mb.push(format!("{:.1}", bytes as f64 / 1e6));
        eprintln!("term_bench: {peer:?}: Ctrl-C x {}", args.tries);
        let mut t = ctrl_c(&args, peer).await?;
        t.sort_by(f64::total_cmp);
        c50.push(format!("{:.0}", percentile(&t, 0.5)));
        c95.push(format!("{:.0}", percentile(&t, 0.95)));
        cmax.push(format!("{:.0}", t[t.len() - 1]));
    }
    rows.push((format!("cat {} MB: MB/s", args.mb), cat_rate));
    rows.push(("cat: MB that reached the viewer".into(), cat_bytes));
    rows.push((
        format!(
            "yes {} s, one viewer stalled: server RSS MiB, start -> peak",
            args.flood_secs
        ),
        rss,
    ));
    rows.push(("yes: MB the reading viewer got".into(), flood_mb));
    rows.push((
        format!("Ctrl-C under yes to prompt, p50 ms ({} tries)", args.tries),
        c50,
    ));
    rows.push(("Ctrl-C p95 ms".into(), c95));
    rows.push(("Ctrl-C max ms".into(), cmax));
    let names: Vec<&str> = peers
        .iter()
        .map(|p| match p {
            Peer::Wsx => "wsx term",
            Peer::Terminado => "terminado",
        })
        .collect();
    println!("| measure | {} |", names.join(" | "));
    println!("|---|{}", "---|".repeat(names.len()));
    for (name, cells) in rows {
        println!("| {name} | {} |", cells.join(" | "));
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("term_bench: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("term_bench: {e}");
            ExitCode::FAILURE
        }
    }
}
