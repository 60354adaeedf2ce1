//! What `wsx serve` does with each WebSocket: echo (with the console),
//! broadcast rooms, a program per connection, or one program for all. Each
//! is a handler on the library's server loop, which also closes every
//! connection with 1001 when the server stops.

use super::console::{next_console, ConsoleCmd};
use super::metrics::{Counts, Metrics};
use super::ServeArgs;
use bytes::Bytes;
use futures_sink::Sink;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Poll};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use wsx::{
    broadcast::{Broadcast, BroadcastConfig},
    server::Accepted,
    CloseCode, CloseFrame, MaybeTlsStream, Message, Received,
};

/// Boxed: a connection's task holds its handler's future for as long as the
/// socket lives, and an `async fn` keeps its by-value arguments next to the
/// futures it awaits; a pointer there instead of the 768-byte socket keeps
/// an idle connection small.
type Ws = Box<wsx::WebSocket<wsx::ServerStream<MaybeTlsStream>>>;

/// What every connection of one `wsx serve` shares.
pub struct State {
    pub args: ServeArgs,
    pub metrics: Arc<Metrics>,
    /// `--broadcast`: a room per path, in this process or on Redis.
    fanout: Option<wsx_fanout::Fanout>,
    /// `--exec-shared`: the program and its audience, started on first use.
    shared_exec: tokio::sync::Mutex<Option<SharedExec>>,
    /// `--console` commands.
    pub console: Option<tokio::sync::broadcast::Sender<ConsoleCmd>>,
    hub_config: BroadcastConfig,
}

/// A slow client is closed (1013, try again later) once --queue messages
/// wait for it, or one message waited 10 s; one message of the largest
/// size always fits.
fn hub_config(args: &ServeArgs) -> BroadcastConfig {
    BroadcastConfig::default()
        .max_queue_messages(Some(args.queue))
        .max_queue_bytes(args.max_message.max(1 << 20))
}

/// `--broadcast`'s rooms: on `--redis`, or in this process.
pub async fn fanout(args: &ServeArgs) -> Result<wsx_fanout::Fanout, String> {
    if !(args.history_ttl > 0.0 && args.history_ttl.is_finite()) {
        return Err(format!(
            "--history-ttl {}: give a number of seconds above 0",
            args.history_ttl
        ));
    }
    let config = wsx_fanout::FanoutConfig::default()
        .history(args.history as usize)
        .history_ttl(std::time::Duration::from_secs_f64(args.history_ttl))
        .broadcast(hub_config(args));
    match &args.redis {
        Some(url) => wsx_fanout::Fanout::redis(url, config).await.map_err(|e| {
            format!("--redis {url}: {e} (is redis-server running there? `redis-cli -u {url} ping` should say PONG)")
        }),
        None => Ok(wsx_fanout::Fanout::local(config)),
    }
}

/// One program for all clients (`--exec-shared`).
struct SharedExec {
    stdin: mpsc::Sender<Bytes>,
    hub: Broadcast,
}

/// How a connection ended, for the log and the metrics.
struct End {
    code: u16,
    reason: String,
}

impl State {
    pub fn new(args: ServeArgs, metrics: Arc<Metrics>, fanout: Option<wsx_fanout::Fanout>) -> Self {
        let hub_config = hub_config(&args);
        State {
            console: args.console.then(|| tokio::sync::broadcast::channel(64).0),
            args,
            metrics,
            fanout,
            shared_exec: tokio::sync::Mutex::new(None),
            hub_config,
        }
    }

    /// The mode's name, for the start-up line.
    pub fn mode(&self) -> &'static str {
        if self.args.broadcast {
            "broadcast"
        } else if self.args.exec.is_some() {
            "exec"
        } else if self.args.exec_shared.is_some() {
            "exec-shared"
        } else {
            "echo"
        }
    }
}

/// What a connection runs, with what only that mode needs (boxed: the
/// connection's future keeps a slot for it).
enum Mode {
    Echo,
    Broadcast(Box<str>),
    Exec(Box<(String, Vec<(String, String)>)>),
    ExecShared,
}

/// Runs one connection in the mode of the server. The set-up (request
/// fields, the open line, metrics) runs before the future is made: the
/// future lives as long as the connection, so it keeps only what the mode
/// and the close line need, not the request.
pub fn handle(
    state: Arc<State>,
    ws: Ws,
    accepted: Accepted<()>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let peer = accepted.peer;
    let path = accepted.uri.path().to_string();
    let mode = if state.args.broadcast {
        Mode::Broadcast(accepted.uri.query().unwrap_or("").into())
    } else if let Some(cmd) = &state.args.exec {
        Mode::Exec(Box::new((cmd.clone(), cgi_env(&state.args, &accepted))))
    } else if state.args.exec_shared.is_some() {
        Mode::ExecShared
    } else {
        Mode::Echo
    };
    drop(accepted);
    let http2 = ws.get_ref().is_http2();
    state.metrics.opened(http2);
    let extensions = ws.deflate().map_or("none", |d| d.response.as_str());
    let http = if http2 { "2 (CONNECT)" } else { "1.1 (101)" };
    tracing::info!(%peer, path, extensions, http, "open");
    async move {
        // All but echo are boxed: the future is sized for the largest mode
        // it may run, and echo (the common, idle-heavy case) should not pay
        // for a program's pipes or the console.
        let end = match mode {
            Mode::Broadcast(query) => Box::pin(broadcast(&state, ws, &path, &query, peer)).await,
            Mode::Exec(exec) => {
                let (cmd, env) = *exec;
                Box::pin(exec_one(&state, ws, &cmd, env)).await
            }
            Mode::ExecShared => Box::pin(exec_shared(&state, ws)).await,
            Mode::Echo if state.console.is_some() => Box::pin(echo_console(&state, ws)).await,
            Mode::Echo => echo(&state, ws).await,
        };
        state.metrics.closed(end.code);
        tracing::info!(%peer, path, code = end.code, reason = %end.reason, "close");
    }
}

fn end_of(close: Option<wsx::Closed>, result: Result<(), wsx::Error>) -> End {
    match (result, close) {
        (Ok(()), Some(c)) => End {
            code: c.code.0,
            reason: c.reason,
        },
        (Ok(()), None) => End {
            code: 1006,
            reason: "connection dropped".into(),
        },
        (Err(e), _) => End {
            code: e.close_code().map_or(1006, |c| c.0),
            reason: e.to_string(),
        },
    }
}

/// The next text or binary message of a reader; pongs are counted on the way.
async fn next_data(
    reader: &mut wsx::WsReader<wsx::ServerStream<MaybeTlsStream>>,
    metrics: &Metrics,
) -> Result<Option<Message>, wsx::Error> {
    loop {
        match reader.recv().await? {
            Some(msg @ (Message::Text(_) | Message::Binary(_))) => return Ok(Some(msg)),
            Some(Message::Pong(_)) => metrics.pong(),
            Some(_) => {}
            None => return Ok(None),
        }
    }
}

/// Echo: every text and binary message back, queued without a flush
/// (`recv` flushes before it waits, so pipelined echoes leave together).
/// Written with the poll functions: no message is held across an await,
/// and the future an idle connection keeps is a few words.
/// Up to this size an echoed message is copied from the receive buffer
/// to the send buffer; larger ones are shared (no copy), which costs a
/// reference count and pays off only past a copy of this size.
const ECHO_IN_PLACE_MAX: usize = 4 * 1024 - 1;

async fn echo(state: &State, mut ws: Ws) -> End {
    let mut counts = Counts::default();
    let result = std::future::poll_fn(|cx| loop {
        // Room first (above the high-water mark: write and wait), so the
        // message read next is queued at once; a peer that does not read
        // its echoes is not read either.
        if let Err(e) = ready!(Pin::new(&mut *ws).poll_ready(cx)) {
            return Poll::Ready(Err(e));
        }
        // Small messages are echoed from where they arrived; large ones
        // come owned and go back without a copy.
        match ready!(ws.poll_recv_in_place(cx, ECHO_IN_PLACE_MAX)) {
            Ok(Some(Received::Held(msg))) => {
                counts.echoed(msg.data().len() as u64, &state.metrics);
                if let Err(e) = msg.echo() {
                    return Poll::Ready(Err(e));
                }
            }
            Ok(Some(Received::Message(msg @ (Message::Text(_) | Message::Binary(_))))) => {
                counts.echoed(msg.len() as u64, &state.metrics);
                if let Err(e) = Pin::new(&mut *ws).start_send(msg) {
                    return Poll::Ready(Err(e));
                }
            }
            Ok(Some(Received::Message(Message::Pong(_)))) => state.metrics.pong(),
            Ok(Some(_)) => {}
            Ok(None) => return Poll::Ready(Ok(())),
            Err(e) => return Poll::Ready(Err(e)),
        }
    })
    .await;
    counts.flush(&state.metrics);
    end_of(ws.close_info().cloned(), result)
}

/// Echo with `--console`: its commands go to every connection.
async fn echo_console(state: &State, mut ws: Ws) -> End {
    let mut console = state.console.as_ref().map(|c| c.subscribe());
    let mut counts = Counts::default();
    let result = loop {
        tokio::select! {
            biased;
            cmd = next_console(&mut console) => {
                let r = match cmd {
                    ConsoleCmd::Close(f) => ws.close(Some(f)).await,
                    ConsoleCmd::Drop => {
                        counts.flush(&state.metrics);
                        // Dropping the socket sends a FIN without a close frame.
                        return End { code: 1006, reason: "dropped by the console (/drop)".into() };
                    }
                    ConsoleCmd::Ping(p) => ws.send(Message::Ping(p)).await,
                    ConsoleCmd::Send(t) => ws.send(Message::text(t)).await,
                };
                // A close already under way refuses further sends: not an error here.
                if let Err(e) = r {
                    tracing::debug!("console command not sent: {e}");
                }
            }
            r = ws.recv() => match r {
                Ok(Some(msg @ (Message::Text(_) | Message::Binary(_)))) => {
                    counts.echoed(msg.len() as u64, &state.metrics);
                    // Queue without flushing: recv() flushes before it waits,
                    // so pipelined echoes leave together.
                    if let Err(e) = ws.feed(msg).await {
                        break Err(e);
                    }
                }
                Ok(Some(Message::Pong(_))) => state.metrics.pong(),
                Ok(Some(_)) => {}
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            },
        }
    };
    counts.flush(&state.metrics);
    end_of(ws.close_info().cloned(), result)
}

/// `--broadcast`: a room per path, on the library's fan-out layer (in
/// this process or across nodes on Redis; `wsx.pubsub.v1` clients get
/// envelopes and resume with `?since=OFFSET&epoch=EPOCH`).
async fn broadcast(
    state: &State,
    mut ws: Ws,
    path: &str,
    query: &str,
    peer: std::net::SocketAddr,
) -> End {
    let Some(fanout) = &state.fanout else {
        return End {
            code: 1011,
            reason: "no rooms configured".into(),
        };
    };
    let envelope = ws.protocol() == Some(wsx_fanout::SUBPROTOCOL);
    let since = match wsx_fanout::resume_from_query(query) {
        Ok(s) => s,
        Err(e) => {
            let _ = ws
                .close(Some(CloseFrame::new(
                    CloseCode::POLICY_VIOLATION,
                    e.clone(),
                )))
                .await;
            return End {
                code: 1008,
                reason: e,
            };
        }
    };
    let opts = wsx_fanout::JoinOptions::default()
        .envelope(envelope)
        .since(since)
        .name(peer.to_string());
    let (result, closed, stats) = wsx_fanout::serve_member(fanout, *ws, path, opts).await;
    let mut counts = Counts {
        msgs_in: stats.received,
        bytes_in: stats.bytes_in,
        ..Counts::default()
    };
    counts.flush(&state.metrics);
    for _ in 0..stats.pongs {
        state.metrics.pong();
    }
    end_of(closed, result)
}

/// CGI-style variables describing the connection, as websocketd sets them.
fn cgi_env(args: &ServeArgs, accepted: &Accepted<()>) -> Vec<(String, String)> {
    let (peer, path) = (accepted.peer, accepted.uri.path());
    let query = accepted.uri.query().unwrap_or("");
    let mut env = vec![
        ("GATEWAY_INTERFACE".into(), "websocketd-CGI/0.1".into()),
        (
            "SERVER_SOFTWARE".into(),
            format!("wsx/{}", env!("CARGO_PKG_VERSION")),
        ),
        ("SERVER_PROTOCOL".into(), "HTTP/1.1".into()),
        ("SERVER_NAME".into(), args.listen.ip().to_string()),
        ("SERVER_PORT".into(), args.listen.port().to_string()),
        ("REMOTE_ADDR".into(), peer.ip().to_string()),
        ("REMOTE_HOST".into(), peer.ip().to_string()),
        ("REMOTE_PORT".into(), peer.port().to_string()),
        ("REQUEST_METHOD".into(), "GET".into()),
        ("SCRIPT_NAME".into(), path.to_string()),
        ("PATH_INFO".into(), path.to_string()),
        ("QUERY_STRING".into(), query.to_string()),
        (
            "REQUEST_URI".into(),
            if query.is_empty() {
                path.to_string()
            } else {
                format!("{path}?{query}")
            },
        ),
    ];
    for (name, value) in &accepted.headers {
        let key = format!(
            "HTTP_{}",
            name.as_str().to_ascii_uppercase().replace('-', "_")
        );
        env.push((key, String::from_utf8_lossy(value.as_bytes()).into_owned()));
    }
    env
}

fn spawn_child(cmd: &str, env: &[(String, String)]) -> std::io::Result<tokio::process::Child> {
    tokio::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        // The child dies with its connection, whatever ends it.
        .kill_on_drop(true)
        .spawn()
}

/// The close frame for a child's exit: 1000 on success, 1011 otherwise.
fn exit_close(status: Option<std::process::ExitStatus>) -> CloseFrame {
    match status {
        Some(s) if s.success() => CloseFrame::new(CloseCode::NORMAL, "program exited"),
        Some(s) => CloseFrame::new(CloseCode::INTERNAL_ERROR, format!("program failed: {s}")),
        None => CloseFrame::new(CloseCode::INTERNAL_ERROR, "program could not be waited for"),
    }
}

/// Closes with 1011 because the program could not start, and reads to the end.
async fn cannot_start(mut ws: Ws) -> End {
    let _ = ws
        .close(Some(CloseFrame::new(
            CloseCode::INTERNAL_ERROR,
            "cannot start the program",
        )))
        .await;
    while let Ok(Some(_)) = ws.recv().await {}
    end_of(ws.close_info().cloned(), Ok(()))
}

/// A message as a line for a program's stdin.
fn as_line(msg: Message) -> Option<Vec<u8>> {
    let mut line = match msg {
        Message::Text(t) => t.as_bytes().to_vec(),
        Message::Binary(b) => b.to_vec(),
        _ => return None,
    };
    line.push(b'\n');
    Some(line)
}

/// `--exec`: one program per connection.
async fn exec_one(state: &State, mut ws: Ws, cmd: &str, env: Vec<(String, String)>) -> End {
    let mut child = match spawn_child(cmd, &env) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("cannot run {cmd:?}: {e}");
            return Box::pin(cannot_start(ws)).await;
        }
    };
    let mut stdin = child.stdin.take();
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let mut counts = Counts::default();
    let mut stdout_open = true;
    let result = loop {
        tokio::select! {
            r = ws.recv() => match r {
                Ok(Some(msg @ (Message::Text(_) | Message::Binary(_)))) => {
                    counts.msgs_in += 1;
                    counts.bytes_in += msg.len() as u64;
                    if let (Some(w), Some(line)) = (stdin.as_mut(), as_line(msg)) {
                        if w.write_all(&line).await.is_err() || w.flush().await.is_err() {
                            stdin = None; // the program stopped reading
                        }
                    }
                }
                Ok(Some(Message::Pong(_))) => state.metrics.pong(),
                Ok(Some(_)) => {}
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            },
            line = lines.next_line(), if stdout_open => match line {
                Ok(Some(l)) => {
                    counts.msgs_out += 1;
                    counts.bytes_out += l.len() as u64;
                    if let Err(e) = ws.send(Message::text(l)).await {
                        break Err(e);
                    }
                }
                Ok(None) | Err(_) => {
                    // The program closed its output: wait for it, then close.
                    stdout_open = false;
                    let status = child.wait().await.ok();
                    let _ = ws.close(Some(exit_close(status))).await;
                }
            },
        }
    };
    counts.flush(&state.metrics);
    // Connection over: kill the program if it still runs, and reap it.
    drop(stdin);
    let _ = child.start_kill();
    let _ = child.wait().await;
    end_of(ws.close_info().cloned(), result)
}

/// The shared program of `--exec-shared`, started on first use (and again
/// after it exits): its stdout lines go to everyone through one
/// `Broadcast`; its exit closes every client (1000, or 1011 if it failed).
async fn shared_program(state: &State) -> Option<(mpsc::Sender<Bytes>, Broadcast)> {
    let mut slot = state.shared_exec.lock().await;
    if let Some(s) = slot.as_ref() {
        if !s.stdin.is_closed() {
            return Some((s.stdin.clone(), s.hub.clone()));
        }
    }
    let cmd = state.args.exec_shared.clone()?;
    let env = vec![
        (
            "SERVER_SOFTWARE".to_string(),
            format!("wsx/{}", env!("CARGO_PKG_VERSION")),
        ),
        (
            "SERVER_PORT".to_string(),
            state.args.listen.port().to_string(),
        ),
    ];
    let mut child = match spawn_child(&cmd, &env) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("cannot run {cmd:?}: {e}");
            return None;
        }
    };
    let hub = Broadcast::new(state.hub_config.clone());
    let (stdin_tx, mut stdin_rx) = mpsc::channel::<Bytes>(1024);
    let mut stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    tokio::spawn(async move {
        while let Some(line) = stdin_rx.recv().await {
            if stdin.write_all(&line).await.is_err() || stdin.flush().await.is_err() {
                break;
            }
        }
    });
    let (out_hub, metrics) = (hub.clone(), state.metrics.clone());
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        let mut counts = Counts::default();
        while let Ok(Some(l)) = lines.next_line().await {
            let n = l.len() as u64;
            if let Ok(d) = out_hub.send(Message::text(l)).await {
                counts.msgs_out += d.queued as u64;
                counts.bytes_out += n * d.queued as u64;
                metrics.dropped_slow.inc_by(d.closed as u64);
                counts.maybe_flush(&metrics);
            }
        }
        counts.flush(&metrics);
        let status = child.wait().await.ok();
        tracing::info!(?status, "shared program exited; closing its clients");
        out_hub.close_all(exit_close(status));
    });
    *slot = Some(SharedExec {
        stdin: stdin_tx.clone(),
        hub: hub.clone(),
    });
    Some((stdin_tx, hub))
}

/// `--exec-shared`: every client talks to the one program.
async fn exec_shared(state: &State, ws: Ws) -> End {
    let Some((stdin, hub)) = shared_program(state).await else {
        return Box::pin(cannot_start(ws)).await;
    };
    let (mut reader, writer) = ws.split();
    let _subscription = hub.subscribe(writer);
    let mut counts = Counts::default();
    let result = loop {
        let msg = match next_data(&mut reader, &state.metrics).await {
            Ok(Some(m)) => m,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        counts.msgs_in += 1;
        counts.bytes_in += msg.len() as u64;
        if let Some(line) = as_line(msg) {
            let _ = stdin.send(Bytes::from(line)).await;
        }
    };
    counts.flush(&state.metrics);
    end_of(reader.close_info(), result)
}
