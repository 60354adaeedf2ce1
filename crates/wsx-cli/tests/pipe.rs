//! Pipe mode against three echo servers: `printf 'hi\n' | wsx connect -v URL`
//! must print `hi`, exit 0 and close with 1000, and the server must see
//! that 1000, against `wsx serve`, Python `websockets` and Node `ws`.
//!
//! Python `websockets` answers a close frame at once and drops the echo it
//! was still producing: a client that closes as soon as its input ends
//! prints nothing there. This is the test that catches it.
//!
//! The Python and Node servers are the interop peers in echo mode
//! (`interop/python/peer.py server`, `interop/node/peer.mjs server`): they
//! print `listening PORT`, then one JSON line per connection with the close
//! code they received. They are installed by `scripts/pipe-peers` (which
//! then runs this test) or `scripts/interop`, both through
//! `scripts/peers.sh`, which also tells this test where they are. Missing
//! peers fail the test, unless WSX_SKIP_MISSING_PEERS=1 says to skip them.

mod common;

use common::{free_port, wait_listening, WSX};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(15);

/// The workspace root (scripts/, interop/).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

// ---- the client -----------------------------------------------------------------

struct Piped {
    code: i32,
    stdout: String,
    stderr: String,
    took: Duration,
}

/// `printf 'hi\n' | wsx connect -v URL`, killed after 15 s.
fn pipe_hi(url: &str) -> Piped {
    let started = Instant::now();
    let mut child = Command::new(WSX)
        .args(["connect", "-v", url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wsx connect");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"hi\n").unwrap();
    drop(stdin);
    let stdout = read_all(child.stdout.take().unwrap());
    let stderr = read_all(child.stderr.take().unwrap());
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > WAIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "wsx connect {url} did not exit within {WAIT:?}; stderr: {}",
                stderr.recv().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = started.elapsed();
    Piped {
        code: status.code().unwrap_or(-1),
        stdout: stdout.recv().unwrap(),
        stderr: stderr.recv().unwrap(),
        took,
    }
}

fn read_all(mut r: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        let _ = tx.send(s);
    });
    rx
}

/// What every server must get from the client: `hi` echoed and printed,
/// a prompt close (every message answered: the short quiet period), exit 0,
/// and 1000 both ways.
#[track_caller]
fn check_client(server: &str, p: &Piped) {
    let Piped {
        code,
        stdout,
        stderr,
        took,
    } = p;
    eprintln!("{server}: `printf 'hi\\n' | wsx connect` took {took:?}");
    assert_eq!(
        stdout, "hi\n",
        "{server}: the echo is missing; stderr: {stderr}"
    );
    assert_eq!(*code, 0, "{server}: exit code; stderr: {stderr}");
    assert!(
        stderr.contains(
            "wsx: end of input: closing after 0.25 s without messages (1 sent, 1 received)"
        ),
        "{server}: {stderr}"
    );
    assert!(
        stderr.contains("wsx: closed: sent 1000, the server answered 1000"),
        "{server}: {stderr}"
    );
}

// ---- servers ----------------------------------------------------------------------

/// A child process whose stdout (or stderr) lines arrive on a channel;
/// killed on drop.
struct Peer {
    name: &'static str,
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Peer {
    fn spawn(name: &'static str, mut cmd: Command, from_stderr: bool) -> Peer {
        cmd.stdin(Stdio::null());
        if from_stderr {
            cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        } else {
            cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the {name} server ({cmd:?}): {e}"));
        let out: Box<dyn Read + Send> = if from_stderr {
            Box::new(child.stderr.take().unwrap())
        } else {
            Box::new(child.stdout.take().unwrap())
        };
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Peer {
            name,
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first line that `pick` accepts (within 15 s).
    fn expect<T>(&mut self, what: &str, pick: impl Fn(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let got = pick(&line);
                    self.seen.push(line);
                    if let Some(v) = got {
                        return v;
                    }
                }
                Err(_) => panic!(
                    "the {} server printed no {what} within {WAIT:?}; its output:\n{}",
                    self.name,
                    self.seen.join("\n")
                ),
            }
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs an interop peer's echo server (`listening PORT`, then a JSON line
/// per connection), pipes `hi` through `wsx connect`, and checks both sides.
fn against_peer(name: &'static str, cmd: Command) {
    let mut peer = Peer::spawn(name, cmd, false);
    let port: u16 = peer.expect("`listening PORT` line", |l| {
        l.strip_prefix("listening ")?.trim().parse().ok()
    });
    let p = pipe_hi(&format!("ws://127.0.0.1:{port}/"));
    let report: serde_json::Value =
        peer.expect("JSON report line", |l| serde_json::from_str(l).ok());
    check_client(name, &p);
    assert_eq!(
        report["close_code"], 1000,
        "{name}: the close code the server received; its report: {report}"
    );
    assert_eq!(report["messages"], 1, "{name}: {report}");
}

// ---- where the peers are ------------------------------------------------------------

struct Peers {
    python: PathBuf,
    python_ready: bool,
    node_dir: PathBuf,
    node_ready: bool,
}

/// Asks scripts/peers.sh where scripts/pipe-peers and scripts/interop put
/// the peers (the venv's path depends on the Python version).
fn peers() -> Peers {
    let out = Command::new("bash")
        .arg("-c")
        .arg(
            "source scripts/peers.sh && peers_paths && \
             printf '%s\\n' \"$peer_python\" \"$peer_python_ready\" \"$peer_node_dir\" \"$peer_node_ready\"",
        )
        .current_dir(root())
        .output()
        .expect("run bash");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        out.status.success() && lines.len() == 4,
        "scripts/peers.sh could not say where the peers are (it needs bash, python3 and sha256sum): {}{}",
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    Peers {
        python: lines[0].into(),
        python_ready: lines[1] == "1",
        node_dir: lines[2].into(),
        node_ready: lines[3] == "1",
    }
}

/// A peer that is not installed fails the test, with how to install it;
/// WSX_SKIP_MISSING_PEERS=1 turns that into a loud skip (returns true).
fn missing(what: &str, path: &Path) -> bool {
    let how = format!(
        "{what} is not installed ({} missing). Run scripts/pipe-peers: it installs the \
         interop peers (as scripts/interop does) and runs this test. \
         WSX_SKIP_MISSING_PEERS=1 skips this check instead.",
        path.display()
    );
    if std::env::var_os("WSX_SKIP_MISSING_PEERS").is_some_and(|v| v == "1") {
        eprintln!("\n*** SKIPPED (WSX_SKIP_MISSING_PEERS=1): {how}\n");
        return true;
    }
    panic!("{how}");
}

// ---- the tests ----------------------------------------------------------------------

#[test]
fn pipe_hi_to_wsx_serve() {
    let port = free_port();
    let mut cmd = Command::new(WSX);
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")]);
    // Its log (stderr) has a line per connection: `close ... code=1000`.
    let mut serve = Peer::spawn("wsx serve", cmd, true);
    wait_listening(port);
    let p = pipe_hi(&format!("ws://127.0.0.1:{port}/"));
    let line = serve.expect("`close ... code=` log line", |l| {
        (l.contains(" close ") && l.contains(" code=")).then(|| l.to_string())
    });
    check_client("wsx serve", &p);
    assert!(
        line.contains(" code=1000 "),
        "wsx serve: the close code it received: {line}"
    );
}

#[test]
fn pipe_hi_to_python_websockets() {
    let peers = peers();
    if !peers.python_ready && missing("Python websockets (a venv)", &peers.python) {
        return;
    }
    let mut cmd = Command::new(&peers.python);
    cmd.arg(root().join("interop/python/peer.py")).arg("server");
    against_peer("Python websockets", cmd);
}

#[test]
fn pipe_hi_to_node_ws() {
    let peers = peers();
    let ws = peers.node_dir.join("node_modules/ws");
    if !peers.node_ready && missing("Node ws (npm ci in interop/node)", &ws) {
        return;
    }
    let mut cmd = Command::new("node");
    cmd.arg(peers.node_dir.join("peer.mjs")).arg("server");
    against_peer("Node ws", cmd);
}
