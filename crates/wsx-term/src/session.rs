//! One terminal session: a program on a PTY, its screen, its recent output,
//! its events (viewers, resizes, state from the program) and its end.
//!
//! Four threads per session do the blocking work: a reader (output into
//! the output log, then a wake-up of every viewer), a parser (the log into
//! the server-side screen, behind the reader), a writer (input, in order),
//! and a waiter (the exit status). Viewers never touch the PTY's output
//! path: a slow one cannot hold the program back. The reader waits for the
//! parser only when the log would drop bytes the screen has not seen, so
//! the screen's cost runs beside the PTY's and the viewers' instead of in
//! their way.
//!
//! Locks: `screen` before `inner`, never the other way. Whoever needs the
//! screen as of the log's end (a snapshot, a resize) takes both and parses
//! what the parser has not reached yet ([`Session::caught_up`]).

use crate::output::{Lagged, OutputLog};
use crate::protocol::{Role, ServerMsg, MAX_COLS, MAX_ROWS};
use crate::screen::Screen;
use portable_pty::{ChildKiller, CommandBuilder, MasterPty, PtySize};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{mpsc, watch};

/// Events kept for viewers that are reading on (joins, resizes, states).
const EVENTS_KEPT: usize = 256;
/// After the program exits, how long its remaining output may take to
/// drain (a background process can hold the PTY open for ever).
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(1);
/// Bytes one PTY read takes.
const READ_CHUNK: usize = 64 << 10;
/// Bytes the parser takes from the log at a time.
const PARSE_CHUNK: usize = 256 << 10;

/// What to run, and how (the body of `POST /api/sessions`).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct SpawnOptions {
    /// Program and arguments; empty: the user's login shell.
    pub command: Vec<String>,
    /// Terminal width (default 80).
    pub cols: Option<u16>,
    /// Terminal height (default 24).
    pub rows: Option<u16>,
    /// Extra environment variables.
    pub env: BTreeMap<String, String>,
    /// Working directory (default: the server's).
    pub cwd: Option<PathBuf>,
}

impl SpawnOptions {
    /// Runs `argv` (program, then arguments); empty runs the user's login shell.
    ///
    /// ```
    /// let opts = wsx_term::SpawnOptions::new(["bash", "-i"]).env("PS1", "$ ").size(120, 40);
    /// assert_eq!(opts.command, ["bash", "-i"]);
    /// ```
    pub fn new<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            command: argv.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// Sets one environment variable for the program.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    /// Sets the first terminal size.
    pub fn size(mut self, cols: u16, rows: u16) -> Self {
        (self.cols, self.rows) = (Some(cols), Some(rows));
        self
    }

    /// Sets the working directory.
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }
}

/// Sizes and bounds of a session.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SessionLimits {
    /// Scrollback lines the server-side screen keeps (sent on attach).
    pub scrollback_lines: usize,
    /// Recent output kept for viewers reading on (bytes).
    pub output_window: usize,
    /// A viewer this many bytes behind is resynchronised from the screen
    /// (skipping the output in between) instead of replaying it. Default:
    /// the window, so a viewer that keeps up on average gets every byte.
    pub lag_limit: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            scrollback_lines: 10_000,
            output_window: 1 << 20,
            lag_limit: 1 << 20,
        }
    }
}

impl SessionLimits {
    /// Sets `scrollback_lines`.
    pub fn scrollback_lines(mut self, lines: usize) -> Self {
        self.scrollback_lines = lines;
        self
    }

    /// Sets `output_window` (bytes).
    pub fn output_window(mut self, bytes: usize) -> Self {
        self.output_window = bytes;
        self
    }

    /// Sets `lag_limit` (bytes).
    pub fn lag_limit(mut self, bytes: usize) -> Self {
        self.lag_limit = bytes;
        self
    }
}

/// How a program ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exit {
    /// Exit code, when it exited.
    pub code: Option<u32>,
    /// The signal that ended it, when one did.
    pub signal: Option<String>,
}

impl Exit {
    /// `exited, code 3` / `killed by SIGKILL`.
    pub fn describe(&self) -> String {
        match (&self.code, &self.signal) {
            (_, Some(sig)) => format!("killed by {sig}"),
            (Some(code), None) => format!("exited, code {code}"),
            (None, None) => "ended".to_string(),
        }
    }
}

/// `SIGINT` for "Interrupt": portable-pty reports a signal by the C
/// library's description (strsignal), the protocol by its name. A
/// description not in the table is passed on as it is.
fn signal_name(description: &str) -> String {
    const NAMES: &[(&str, &str)] = &[
        ("Hangup", "SIGHUP"),
        ("Interrupt", "SIGINT"),
        ("Quit", "SIGQUIT"),
        ("Illegal instruction", "SIGILL"),
        ("Trace/breakpoint trap", "SIGTRAP"),
        ("Aborted", "SIGABRT"),
        ("Bus error", "SIGBUS"),
        ("Floating point exception", "SIGFPE"),
        ("Killed", "SIGKILL"),
        ("User defined signal 1", "SIGUSR1"),
        ("Segmentation fault", "SIGSEGV"),
        ("User defined signal 2", "SIGUSR2"),
        ("Broken pipe", "SIGPIPE"),
        ("Alarm clock", "SIGALRM"),
        ("Terminated", "SIGTERM"),
    ];
    NAMES
        .iter()
        .find(|(d, _)| *d == description)
        .map_or_else(|| description.to_string(), |(_, n)| n.to_string())
}

/// A session as the REST API lists it.
#[derive(Debug, Clone, Serialize)]
pub struct SessionInfo {
    /// Its id.
    pub id: String,
    /// The program and its arguments (empty: the login shell).
    pub command: Vec<String>,
    /// `running` or `exited`.
    pub state: &'static str,
    /// How it ended, once it has.
    pub exit: Option<Exit>,
    /// The program's process id.
    pub pid: Option<u32>,
    /// Terminal width.
    pub cols: u16,
    /// Terminal height.
    pub rows: u16,
    /// Viewers attached now.
    pub viewers: usize,
    /// Seconds since the Unix epoch.
    pub created: u64,
}

/// A running or ended terminal session. Shared (`Arc`) by the registry,
/// its viewers and its PTY threads.
pub struct Session {
    id: String,
    command: Vec<String>,
    created: SystemTime,
    pid: Option<u32>,
    state_token: String,
    limits: SessionLimits,
    screen: Mutex<Screen>,
    inner: Mutex<Inner>,
    /// Output arrived (or ended): the parser wakes.
    unparsed: Condvar,
    /// The parser moved on: the reader may append again.
    parsed: Condvar,
    /// Bumped on every change; viewers wait on it (changes coalesce).
    version: watch::Sender<u64>,
    input: mpsc::Sender<Vec<u8>>,
    master: Mutex<Box<dyn MasterPty + Send>>,
    killer: Mutex<Box<dyn ChildKiller + Send + Sync>>,
    next_viewer: AtomicU64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

struct Inner {
    log: OutputLog,
    /// The log offset the screen has parsed up to.
    parsed: u64,
    /// `(rows, cols)` of the PTY (and of the screen once it catches up).
    size: (u16, u16),
    events: VecDeque<(u64, ServerMsg)>,
    next_event: u64,
    latest_state: Option<(u64, serde_json::Value)>,
    viewers: BTreeMap<u64, Role>,
    exit: Option<Exit>,
    output_done: bool,
    /// The exit is known and the output drained: viewers say so and close.
    finished: bool,
    /// When the last viewer left (None while one is attached).
    detached_since: Option<Instant>,
    finished_at: Option<Instant>,
}

impl Inner {
    fn push_event(&mut self, msg: ServerMsg) {
        self.events.push_back((self.next_event, msg));
        self.next_event += 1;
        if self.events.len() > EVENTS_KEPT {
            self.events.pop_front();
        }
    }
}

/// Where a viewer is: the next output offset and the next event.
#[derive(Debug, Clone, Copy)]
pub struct Cursor {
    output: u64,
    event: u64,
}

/// What a viewer is sent next.
#[derive(Debug, Default)]
pub struct Batch {
    /// Events, in order (states, joins, resizes).
    pub events: Vec<ServerMsg>,
    /// Output bytes to send as one binary frame.
    pub output: Vec<u8>,
    /// The viewer fell behind: this screen (and its size) replaces the
    /// output it skipped.
    pub resync: Option<(Vec<u8>, u16, u16)>,
    /// More output is waiting past this batch.
    pub more: bool,
    /// The program ended and everything before it was in earlier batches.
    pub exit: Option<Exit>,
}

/// What a viewer gets first.
#[derive(Debug)]
pub struct Attached {
    /// Its id in the session.
    pub viewer: u64,
    /// The screen now, and its size.
    pub snapshot: (Vec<u8>, u16, u16),
    /// The latest state of the program, if it pushed one.
    pub state: Option<ServerMsg>,
    /// Where it reads on from.
    pub cursor: Cursor,
    /// Wakes it on every change.
    pub changes: watch::Receiver<u64>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn clamp_size(cols: u16, rows: u16) -> (u16, u16) {
    (cols.clamp(2, MAX_COLS), rows.clamp(1, MAX_ROWS))
}

impl Session {
    /// Starts `opts.command` on a new PTY. `env` is added to the program's
    /// environment (the state channel's URL and token).
    pub(crate) fn spawn(
        id: String,
        opts: &SpawnOptions,
        limits: &SessionLimits,
        state_token: String,
        env: &[(String, String)],
    ) -> std::io::Result<Arc<Session>> {
        let (cols, rows) = clamp_size(opts.cols.unwrap_or(80), opts.rows.unwrap_or(24));
        let pty = portable_pty::native_pty_system()
            .openpty(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .map_err(|e| std::io::Error::other(format!("cannot open a PTY: {e}")))?;
        let mut cmd = if opts.command.is_empty() {
            CommandBuilder::new_default_prog()
        } else {
            CommandBuilder::from_argv(opts.command.iter().map(Into::into).collect())
        };
        cmd.env("TERM", "xterm-256color");
        cmd.env("COLORTERM", "truecolor");
        for (k, v) in env {
            cmd.env(k, v);
        }
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let cwd = match &opts.cwd {
            Some(dir) => dir.clone(),
            None => std::env::current_dir()?,
        };
        if !cwd.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("working directory {} does not exist", cwd.display()),
            ));
        }
        cmd.cwd(cwd);
        let mut child = pty.slave.spawn_command(cmd).map_err(|e| {
            let what = opts
                .command
                .first()
                .map_or("the login shell", String::as_str);
            std::io::Error::other(format!("cannot start {what}: {e}"))
        })?;
        // Only the child holds the slave: its exit ends our reads.
        drop(pty.slave);
        let reader = pty
            .master
            .try_clone_reader()
            .map_err(|e| std::io::Error::other(format!("PTY reader: {e}")))?;
        let writer = pty
            .master
            .take_writer()
            .map_err(|e| std::io::Error::other(format!("PTY writer: {e}")))?;
        let (input, input_rx) = mpsc::channel(64);
        let session = Arc::new(Session {
            id,
            command: opts.command.clone(),
            created: SystemTime::now(),
            pid: child.process_id(),
            state_token,
            limits: limits.clone(),
            screen: Mutex::new(Screen::new(rows, cols, limits.scrollback_lines)),
            inner: Mutex::new(Inner {
                // Room for two reads: the reader never drops unparsed bytes.
                log: OutputLog::new(limits.output_window.max(2 * READ_CHUNK)),
                parsed: 0,
                size: (rows, cols),
                events: VecDeque::new(),
                next_event: 0,
                latest_state: None,
                viewers: BTreeMap::new(),
                exit: None,
                output_done: false,
                finished: false,
                detached_since: Some(Instant::now()),
                finished_at: None,
            }),
            unparsed: Condvar::new(),
            parsed: Condvar::new(),
            version: watch::channel(0).0,
            input,
            master: Mutex::new(pty.master),
            killer: Mutex::new(child.clone_killer()),
            next_viewer: AtomicU64::new(1),
        });
        let name = |what: &str| format!("wsx-term {what} {}", session.id);
        let s = session.clone();
        std::thread::Builder::new()
            .name(name("reader"))
            .spawn(move || s.read_output(reader))?;
        let s = session.clone();
        std::thread::Builder::new()
            .name(name("parser"))
            .spawn(move || s.parse_output())?;
        std::thread::Builder::new()
            .name(name("writer"))
            .spawn(move || write_input(writer, input_rx))?;
        let s = session.clone();
        std::thread::Builder::new()
            .name(name("waiter"))
            .spawn(move || {
                let exit = match child.wait() {
                    Ok(status) => match status.signal() {
                        Some(sig) => Exit {
                            code: None,
                            signal: Some(signal_name(sig)),
                        },
                        None => Exit {
                            code: Some(status.exit_code()),
                            signal: None,
                        },
                    },
                    Err(e) => {
                        tracing::warn!(session = %s.id, "waiting for the program failed: {e}");
                        Exit {
                            code: None,
                            signal: None,
                        }
                    }
                };
                s.on_exit(exit);
            })?;
        Ok(session)
    }

    /// The reader thread: output into the log, then a wake-up.
    fn read_output(&self, mut reader: Box<dyn Read + Send>) {
        let mut buf = vec![0u8; READ_CHUNK];
        let cap = self.limits.output_window.max(2 * READ_CHUNK) as u64;
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    {
                        let mut inner = lock(&self.inner);
                        // The log keeps what the screen has not parsed:
                        // a program faster than the parser waits here.
                        while inner.log.end() + n as u64 - inner.parsed > cap {
                            inner = self.parsed.wait(inner).unwrap_or_else(|e| e.into_inner());
                        }
                        inner.log.append(&buf[..n]);
                    }
                    self.unparsed.notify_one();
                    self.version.send_modify(|v| *v += 1);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // EIO: the program and everything holding the PTY are gone.
                Err(_) => break,
            }
        }
        let mut inner = lock(&self.inner);
        inner.output_done = true;
        if inner.exit.is_some() && !inner.finished {
            inner.finished = true;
            inner.finished_at = Some(Instant::now());
        }
        drop(inner);
        self.unparsed.notify_one();
        self.version.send_modify(|v| *v += 1);
    }

    /// The parser thread: the log into the screen, until the output ends
    /// and all of it is parsed.
    fn parse_output(&self) {
        loop {
            {
                let mut inner = lock(&self.inner);
                while inner.parsed == inner.log.end() {
                    if inner.output_done {
                        return;
                    }
                    inner = self.unparsed.wait(inner).unwrap_or_else(|e| e.into_inner());
                }
            }
            let mut screen = lock(&self.screen);
            self.parse_some(&mut screen, PARSE_CHUNK);
        }
    }

    /// Parses up to `max` bytes past `parsed` into `screen` (whose lock the
    /// caller holds, so no one else parses meanwhile); false when there were none.
    fn parse_some(&self, screen: &mut Screen, max: usize) -> bool {
        let (from, bytes) = {
            let inner = lock(&self.inner);
            // The reader never drops unparsed bytes: this read cannot lag.
            let bytes = inner.log.read(inner.parsed, max).unwrap_or_default();
            (inner.parsed, bytes)
        };
        if bytes.is_empty() {
            return false;
        }
        screen.process(&bytes);
        let mut inner = lock(&self.inner);
        debug_assert_eq!(inner.parsed, from);
        inner.parsed = from + bytes.len() as u64;
        drop(inner);
        self.parsed.notify_one();
        true
    }

    /// The screen as of the log's end, and the session's state with it:
    /// both locks held (screen, then inner), everything parsed.
    fn caught_up(&self) -> (MutexGuard<'_, Screen>, MutexGuard<'_, Inner>) {
        let mut screen = lock(&self.screen);
        // The bulk without holding up the reader; a flood does not keep
        // this going past the end it found.
        let target = lock(&self.inner).log.end();
        while lock(&self.inner).parsed < target && self.parse_some(&mut screen, PARSE_CHUNK) {}
        // The rest (what arrived meanwhile) with the reader held.
        let mut inner = lock(&self.inner);
        let rest = inner.log.read(inner.parsed, usize::MAX).unwrap_or_default();
        screen.process(&rest);
        inner.parsed = inner.log.end();
        self.parsed.notify_one();
        (screen, inner)
    }

    fn on_exit(&self, exit: Exit) {
        tracing::info!(session = %self.id, "program {}", exit.describe());
        let deadline = Instant::now() + DRAIN_AFTER_EXIT;
        lock(&self.inner).exit = Some(exit);
        // Output the program wrote before it exited is still arriving.
        while !lock(&self.inner).output_done && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut inner = lock(&self.inner);
        if !inner.finished {
            inner.finished = true;
            inner.finished_at = Some(Instant::now());
        }
        drop(inner);
        self.version.send_modify(|v| *v += 1);
    }

    /// The session's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The token the program inside uses to push its state.
    pub(crate) fn state_token(&self) -> &str {
        &self.state_token
    }

    /// A viewer joins: it gets the screen, the latest state and a cursor.
    pub fn attach(&self, role: Role) -> Attached {
        let viewer = self.next_viewer.fetch_add(1, Ordering::Relaxed);
        let changes = self.version.subscribe();
        let (mut screen, mut inner) = self.caught_up();
        inner.viewers.insert(viewer, role);
        inner.detached_since = None;
        let viewers = inner.viewers.len();
        let (rows, cols) = screen.size();
        let snapshot = (screen.snapshot(), cols, rows);
        drop(screen);
        let state = inner
            .latest_state
            .as_ref()
            .map(|(seq, state)| ServerMsg::State {
                seq: *seq,
                state: state.clone(),
            });
        let cursor = Cursor {
            output: inner.log.end(),
            event: inner.next_event,
        };
        inner.push_event(ServerMsg::Joined {
            viewer,
            role,
            viewers,
        });
        drop(inner);
        self.version.send_modify(|v| *v += 1);
        Attached {
            viewer,
            snapshot,
            state,
            cursor,
            changes,
        }
    }

    /// A viewer leaves.
    pub fn detach(&self, viewer: u64) {
        let mut inner = lock(&self.inner);
        if inner.viewers.remove(&viewer).is_none() {
            return;
        }
        let viewers = inner.viewers.len();
        if viewers == 0 {
            inner.detached_since = Some(Instant::now());
        }
        inner.push_event(ServerMsg::Left { viewer, viewers });
        drop(inner);
        self.version.send_modify(|v| *v += 1);
    }

    /// What `cursor` has not been sent yet: events, up to `max` output bytes
    /// (or a fresh screen if it fell behind), and the end once everything
    /// before it was sent. Advances `cursor`.
    pub fn next_batch(&self, cursor: &mut Cursor, max: usize) -> Batch {
        let mut inner = lock(&self.inner);
        let mut batch = Batch::default();
        let first_kept = inner.events.front().map_or(inner.next_event, |(n, _)| *n);
        if cursor.event < first_kept {
            // Missed events (a very slow reader): the state is what matters.
            if let Some((seq, state)) = &inner.latest_state {
                batch.events.push(ServerMsg::State {
                    seq: *seq,
                    state: state.clone(),
                });
            }
            cursor.event = first_kept;
        }
        for (n, msg) in &inner.events {
            if *n >= cursor.event {
                batch.events.push(msg.clone());
            }
        }
        cursor.event = inner.next_event;
        let end = inner.log.end();
        let behind = end - cursor.output;
        match inner.log.read(cursor.output, max) {
            Ok(bytes) if behind <= self.limits.lag_limit as u64 => {
                cursor.output += bytes.len() as u64;
                batch.output = bytes;
            }
            Ok(_) | Err(Lagged) => {
                drop(inner);
                let mut screen;
                (screen, inner) = self.caught_up();
                let (rows, cols) = screen.size();
                batch.resync = Some((screen.resync(), cols, rows));
                cursor.output = inner.log.end();
            }
        }
        let end = inner.log.end();
        batch.more = cursor.output < end;
        if inner.finished && !batch.more {
            batch.exit = inner.exit.clone();
        }
        batch
    }

    /// Writes input to the program (in order; waits while the program does
    /// not read and 64 writes are queued).
    pub async fn write(&self, bytes: Vec<u8>) -> bool {
        self.input.send(bytes).await.is_ok()
    }

    /// Resizes the PTY (and the screen); viewers are told.
    pub fn resize(&self, cols: u16, rows: u16) -> std::io::Result<()> {
        let (cols, rows) = clamp_size(cols, rows);
        if lock(&self.inner).size == (rows, cols) {
            return Ok(());
        }
        // What the program wrote before is parsed at the size it had.
        let (mut screen, mut inner) = self.caught_up();
        self.master
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .resize(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .map_err(|e| std::io::Error::other(format!("PTY resize: {e}")))?;
        screen.resize(rows, cols);
        inner.size = (rows, cols);
        drop(screen);
        inner.push_event(ServerMsg::Resize { cols, rows });
        drop(inner);
        self.version.send_modify(|v| *v += 1);
        Ok(())
    }

    /// State from the program inside, to every viewer in order.
    pub fn push_state(&self, state: serde_json::Value) -> u64 {
        let mut inner = lock(&self.inner);
        let seq = inner.latest_state.as_ref().map_or(0, |(s, _)| *s) + 1;
        inner.latest_state = Some((seq, state.clone()));
        inner.push_event(ServerMsg::State { seq, state });
        drop(inner);
        self.version.send_modify(|v| *v += 1);
        seq
    }

    /// Ends the program: SIGHUP (a terminal's hang-up), then SIGKILL to its
    /// process group after `grace` if it is still there.
    pub fn terminate(self: &Arc<Self>, grace: Duration) {
        if lock(&self.inner).exit.is_some() {
            return;
        }
        let _ = self.killer.lock().unwrap_or_else(|e| e.into_inner()).kill();
        let me = self.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline {
                if lock(&me.inner).exit.is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if let Some(pid) = me.pid.and_then(|p| i32::try_from(p).ok()) {
                use nix::sys::signal::{kill, killpg, Signal};
                use nix::unistd::Pid;
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        });
    }

    /// Whether the program has ended and its output is drained.
    pub fn is_finished(&self) -> bool {
        lock(&self.inner).finished
    }

    /// How long it has had no viewer (None: one is attached).
    pub fn detached_for(&self) -> Option<Duration> {
        lock(&self.inner).detached_since.map(|t| t.elapsed())
    }

    /// How long ago it finished (None: still running).
    pub fn finished_for(&self) -> Option<Duration> {
        lock(&self.inner).finished_at.map(|t| t.elapsed())
    }

    /// The visible text of the screen.
    pub fn screen_text(&self) -> String {
        self.caught_up().0.text()
    }

    /// Viewers attached now, with their roles.
    pub fn viewers(&self) -> Vec<(u64, Role)> {
        lock(&self.inner)
            .viewers
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect()
    }

    /// As the REST API lists it.
    pub fn info(&self) -> SessionInfo {
        let inner = lock(&self.inner);
        let (rows, cols) = inner.size;
        SessionInfo {
            id: self.id.clone(),
            command: self.command.clone(),
            state: if inner.finished { "exited" } else { "running" },
            exit: inner.exit.clone(),
            pid: self.pid,
            cols,
            rows,
            viewers: inner.viewers.len(),
            created: self
                .created
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }
}

/// The writer thread: input in order, until the session is dropped.
fn write_input(mut writer: Box<dyn Write + Send>, mut rx: mpsc::Receiver<Vec<u8>>) {
    while let Some(bytes) = rx.blocking_recv() {
        if writer
            .write_all(&bytes)
            .and_then(|()| writer.flush())
            .is_err()
        {
            break;
        }
    }
}
