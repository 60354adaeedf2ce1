//! `wsx connect`: the client.
//!
//! On a terminal (stdin and stdout both TTYs) it is a REPL: rustyline for
//! line editing and history, with incoming messages printed above the
//! prompt through rustyline's external printer. Otherwise it is a pipe:
//! stdin lines (or NUL-terminated records) go out as messages and received
//! messages are written to stdout, one per line, flushed.
//!
//! One connection is a *session*: a reader (messages to the screen) and a
//! writer (input to the socket) polled together, so a writer blocked by
//! backpressure never stops the reader. Input arrives over a channel from a
//! blocking thread (stdin or the line editor), so it outlives a session and
//! `--reconnect` can carry on where the dropped connection left off.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::io::{BufRead, IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify};
use wsx::MaybeTlsStream;
use wsx::{
    client::Handshaken,
    reconnect::{Backoff, Decision, Disconnect, GiveUpReason, Jitter, RetryPolicy, Schedule},
    CloseCause, CloseCode, CloseFrame, Closed, Event, Initiator, Message, WebSocket, WsReader,
    WsWriter,
};

/// Examples shown by `wsx connect --help`.
pub const EXAMPLES: &str = "Examples:
  wsx connect ws://127.0.0.1:9001/                    # interactive on a terminal (/help inside)
  echo hello | wsx connect ws://127.0.0.1:9001/       # one message per line, replies on stdout
  echo '{\"op\":\"sub\"}' | wsx connect --json ws://host/feed | jq .
  printf 'a\\0b\\0' | wsx connect -0 ws://127.0.0.1:9001/ # NUL-terminated records in and out
  echo ping | wsx connect --once ws://host/rpc        # send, print the first reply, exit
  wsx connect -H 'Authorization: Bearer TOKEN' --origin https://app.example ws://host/
  wsx connect --subprotocol graphql-transport-ws ws://host/graphql
  echo hi | wsx connect -v ws://127.0.0.1:9001/      # also print the negotiated extensions (stderr)
  wsx connect --reconnect --ping-interval 20 ws://host/stream
  wsx connect --reconnect --max-attempts 5 ws://host/stream # give up after 5 failed attempts in a row

End of input (pipes): the replies still on their way are printed before the
close. wsx closes with 1000 once nothing has arrived for 0.25 s and every
message sent has had one back (as many received as sent), or for 1 s if
fewer came back; at the latest 10 s after the end of input. --wait SECS
instead waits exactly SECS (--wait 0: close at once).

Interactive commands:
  /ping [data]            send a ping; its pong is shown with the round-trip time
  /close [code] [reason]  close (default 1000) and exit
  /binary <hex|base64>    send a binary message (hex if it parses as hex, else base64)
  //text                  send a message that starts with '/'
  /help                   list the commands; Ctrl-D or Ctrl-C closes with 1000

Output: text as is (`< text` on a terminal); binary as hex or base64
(--binary-format), never raw; --json pretty-prints JSON text messages.

Exit codes:
  0  normal close: we closed (end of input, /close, Ctrl-D, --once) and the
     server answered, or the server closed with 1000 or with no code (1005)
  1  the server closed with another code (1001, 1011, 4000, ...) or broke
     the protocol (we closed with 1002/1007/1009)
  2  usage error, cannot connect, handshake refused, or the connection was
     lost without a close (1006, I/O error, keepalive or close timeout)";

/// How binary messages are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BinaryFormat {
    /// Lowercase hex digits.
    Hex,
    /// Standard base64 with padding.
    Base64,
}

/// Options of `wsx connect`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectArgs {
    /// The ws:// URL (`ws://user:pass@host/` sends Basic authentication).
    pub url: String,
    #[command(flatten)]
    pub request: crate::request_args::RequestArgs,
    /// Send input lines as binary messages instead of text.
    #[arg(long)]
    pub binary: bool,
    /// Input and output records end with NUL instead of newline (not interactive).
    #[arg(short = '0', long = "null")]
    pub null: bool,
    /// Pretty-print received JSON text messages (other messages as is).
    #[arg(long)]
    pub json: bool,
    /// How binary messages are printed.
    #[arg(long, value_enum, default_value_t = BinaryFormat::Hex)]
    pub binary_format: BinaryFormat,
    /// Show pings and pongs (to stderr when piped), including keepalives.
    #[arg(long)]
    pub show_ping: bool,
    /// Send a keepalive ping every SECS; no answer within 10 s drops the connection.
    #[arg(long, value_name = "SECS", value_parser = parse_positive_secs)]
    pub ping_interval: Option<Duration>,
    /// After our close frame, wait this long for the server's.
    #[arg(long, value_name = "SECS", value_parser = parse_positive_secs, default_value = "5")]
    pub close_timeout: Duration,
    /// Reconnect (exponential backoff, full jitter, 0.5 s to 30 s) when the
    /// connection drops (1001, 1006, 1011, 1012, 1013, 1014 or an I/O error)
    /// or a reconnect fails that way (also 408, 429, 500, 502, 503, 504).
    #[arg(long)]
    pub reconnect: bool,
    /// With --reconnect: give up after N attempts in a row (a connection
    /// that stays up 10 s starts the count afresh). Default: no limit.
    #[arg(long, value_name = "N", requires = "reconnect", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_attempts: Option<u32>,
    /// Send all of stdin (a message per line), print the first reply, close, exit 0.
    #[arg(long, conflicts_with = "reconnect")]
    pub once: bool,
    /// At the end of input, keep receiving for exactly SECS seconds, then
    /// close (0: close at once). Without it, wsx closes once the replies
    /// stop (see "End of input" below).
    #[arg(long, value_name = "SECS", value_parser = parse_wait_secs)]
    pub wait: Option<Duration>,
    /// Largest accepted message, in bytes.
    #[arg(long, default_value_t = crate::default_max_message())]
    pub max_message: usize,
    /// Print the negotiated subprotocol and extensions (e.g. permessage-deflate
    /// and its parameters) to stderr after the handshake.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Do not offer permessage-deflate (offered by default, as browsers do).
    #[arg(long)]
    pub no_deflate: bool,
    /// Compression level when permessage-deflate is negotiated: 0 (none) to
    /// 9 (smallest, slowest).
    #[arg(long, value_name = "0-9", default_value_t = 6, value_parser = clap::value_parser!(u32).range(0..=9))]
    pub deflate_level: u32,
}

/// `--wait`: zero or more seconds.
fn parse_wait_secs(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds (e.g. 2 or 0.5)"))?;
    if !v.is_finite() || !(0.0..=1e9).contains(&v) {
        return Err(format!("{s:?}: expected a number of seconds, 0 or more"));
    }
    Ok(Duration::from_secs_f64(v))
}

fn parse_positive_secs(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds (e.g. 5 or 0.5)"))?;
    if !v.is_finite() || v <= 0.0 || v > 1e9 {
        return Err(format!("{s:?}: expected a number of seconds above zero"));
    }
    Ok(Duration::from_secs_f64(v))
}

/// Exit code: normal close.
const EXIT_OK: u8 = 0;
/// Exit code: the peer closed with an error code.
const EXIT_PEER_ERROR: u8 = 1;
/// Exit code: usage, connection or handshake error.
const EXIT_FAILURE: u8 = 2;

/// Runs the client; returns the exit code.
pub async fn run(args: ConnectArgs) -> u8 {
    let (req, config) = match build_request(&args) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("wsx: {e}");
            return EXIT_FAILURE;
        }
    };
    let interactive =
        !args.once && std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    // Connect before anything else, so that a failure is a plain message.
    let (ws, hs) = match wsx::client::connect_with(&req, &config).await {
        Ok(x) => x,
        Err(e) => {
            crate::diagnose::eprint("wsx", &e);
            return EXIT_FAILURE;
        }
    };
    if args.verbose {
        for line in negotiated_lines(&ws, &hs) {
            eprintln!("wsx: {line}");
        }
    }
    let (tx, rx) = mpsc::channel(64);
    let mut input = InputQueue {
        rx,
        pending: VecDeque::new(),
    };
    let opts = Opts::from(&args);
    let repl = if interactive {
        // A terminal the editor cannot drive (TERM=dumb...) falls back to
        // the pipe behaviour.
        match Repl::start(&tx, opts.clone()) {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!("wsx: warning: no line editor ({e}); reading lines from stdin");
                None
            }
        }
    } else {
        None
    };
    let Some(repl) = repl else {
        let opts = Opts {
            linger: true,
            ..opts
        };
        spawn_stdin_reader(tx, args.null, args.binary);
        let out = Out {
            printer: None,
            terminator: if args.null { b'\0' } else { b'\n' },
        };
        warn_protocol(&hs, &args, &out);
        return drive(ws, &req, &config, &mut input, &out, &opts).await;
    };
    drop(tx);
    let out = repl.out.clone();
    out.info(&format!(
        "connected to {}{}; /help for commands, Ctrl-D to close",
        display_url(&req),
        hs.protocol
            .as_deref()
            .map(|p| format!(" (subprotocol {p})"))
            .unwrap_or_default()
    ));
    warn_protocol(&hs, &args, &out);
    let code = drive(ws, &req, &config, &mut input, &out, &opts).await;
    repl.finish();
    code
}

/// The request (URL, headers, subprotocols) and the client settings.
fn build_request(
    args: &ConnectArgs,
) -> Result<(wsx::client::ClientRequest, wsx::client::ClientConfig), String> {
    let (req, config) = crate::request_args::build_request(&args.url, &args.request)?;
    let protocol = wsx::Config::builder()
        .max_message_size(args.max_message)
        .max_frame_size(args.max_message)
        .ping_interval(args.ping_interval)
        .close_timeout(args.close_timeout)
        .build()
        .map_err(|e| e.to_string())?;
    let config = config.limits(protocol).deflate((!args.no_deflate).then(|| {
        wsx::wsx_proto::deflate::DeflateConfig {
            level: args.deflate_level,
            ..Default::default()
        }
    }));
    Ok((req, config))
}

/// The URL without credentials, for messages.
fn display_url(req: &wsx::client::ClientRequest) -> String {
    let scheme = if req.is_secure() { "wss" } else { "ws" };
    format!("{scheme}://{}{}", req.host_header(), req.path_and_query())
}

/// `-v`: what the handshake agreed on, e.g.
/// `extensions: permessage-deflate; server_max_window_bits=12` and the
/// compression parameters in force.
fn negotiated_lines(ws: &WebSocket<MaybeTlsStream>, hs: &Handshaken) -> Vec<String> {
    let header = |name: &str| {
        let values: Vec<&str> = hs
            .response
            .headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if values.is_empty() {
            "none".to_string()
        } else {
            values.join(", ")
        }
    };
    let mut lines = vec![
        format!("subprotocol: {}", header("sec-websocket-protocol")),
        format!("extensions: {}", header("sec-websocket-extensions")),
    ];
    lines.push(match ws.deflate() {
        Some(d) => {
            let p = &d.params;
            format!(
                "compression: permessage-deflate (server window 2^{}{}, client window 2^{}{})",
                p.server_max_window_bits,
                if p.server_no_context_takeover {
                    ", no context takeover"
                } else {
                    ""
                },
                p.client_max_window_bits,
                if p.client_no_context_takeover {
                    ", no context takeover"
                } else {
                    ""
                },
            )
        }
        None => "compression: off".to_string(),
    });
    lines
}

/// Warns when subprotocols were offered and the server chose none.
fn warn_protocol(hs: &Handshaken, args: &ConnectArgs, out: &Out) {
    if !args.request.subprotocols.is_empty() && hs.protocol.is_none() {
        out.info(&format!(
            "wsx: warning: the server selected none of the offered subprotocols ({}); it may not speak them",
            args.request.subprotocols.join(", ")
        ));
    }
}

// ---- options shared by the tasks ----------------------------------------------

#[derive(Debug, Clone)]
struct Opts {
    binary: bool,
    json: bool,
    binary_format: BinaryFormat,
    show_ping: bool,
    once: bool,
    reconnect: bool,
    max_attempts: Option<u32>,
    /// `--wait`: how long to keep receiving after the end of input.
    wait: Option<Duration>,
    /// Pipe mode: at the end of input, close once the replies stop
    /// ([`Linger`]); on a terminal, Ctrl-D closes at once.
    linger: bool,
    verbose: bool,
}

impl From<&ConnectArgs> for Opts {
    fn from(a: &ConnectArgs) -> Self {
        Opts {
            binary: a.binary,
            json: a.json,
            binary_format: a.binary_format,
            show_ping: a.show_ping,
            once: a.once,
            reconnect: a.reconnect,
            max_attempts: a.max_attempts,
            wait: a.wait,
            linger: false,
            verbose: a.verbose,
        }
    }
}

// ---- input ----------------------------------------------------------------------

/// What the user asked for.
#[derive(Debug)]
enum Input {
    /// A text or binary message.
    Data(Message),
    /// `/ping [data]`.
    Ping(Vec<u8>),
    /// `/close [code] [reason]`.
    Close(CloseFrame),
    /// End of input (EOF, Ctrl-D, Ctrl-C): close with 1000.
    Eof,
}

/// Input from the reading thread, plus what was set aside while reconnecting.
struct InputQueue {
    rx: mpsc::Receiver<Input>,
    pending: VecDeque<Input>,
}

impl InputQueue {
    /// The next item; `Eof` once the reading thread is gone. Cancel safe.
    async fn next(&mut self) -> Input {
        if let Some(i) = self.pending.pop_front() {
            return i;
        }
        self.rx.recv().await.unwrap_or(Input::Eof)
    }
}

/// Reads stdin on a blocking thread: one message per line (without its
/// `\n` or `\r\n`), or per NUL-terminated record; then `Eof`.
fn spawn_stdin_reader(tx: mpsc::Sender<Input>, null: bool, binary: bool) {
    std::thread::spawn(move || {
        let delim = if null { b'\0' } else { b'\n' };
        let stdin = std::io::stdin();
        let mut r = stdin.lock();
        let mut warned = false;
        loop {
            let mut buf = Vec::new();
            match r.read_until(delim, &mut buf) {
                Ok(0) => break,
                Ok(_) => {
                    if buf.last() == Some(&delim) {
                        buf.pop();
                        if !null && buf.last() == Some(&b'\r') {
                            buf.pop();
                        }
                    }
                    let msg = if binary {
                        Message::binary(buf)
                    } else {
                        match String::from_utf8(buf) {
                            Ok(s) => Message::text(s),
                            Err(e) => {
                                if !warned {
                                    warned = true;
                                    eprintln!("wsx: warning: input is not valid UTF-8, which a text message must be; sending such records as binary messages (--binary sends every record as binary)");
                                }
                                Message::binary(e.into_bytes())
                            }
                        }
                    };
                    if tx.blocking_send(Input::Data(msg)).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    eprintln!("wsx: cannot read stdin: {e}");
                    break;
                }
            }
        }
        let _ = tx.blocking_send(Input::Eof);
    });
}

// ---- output ---------------------------------------------------------------------

type Printer = Arc<Mutex<Box<dyn rustyline::ExternalPrinter + Send>>>;

/// Where messages and notices go: stdout/stderr when piped; above the
/// prompt, through the line editor, on a terminal.
#[derive(Clone)]
struct Out {
    printer: Option<Printer>,
    terminator: u8,
}

impl Out {
    /// A received message (already formatted). An error means stdout is
    /// gone (e.g. `| head -1` exited).
    fn message(&self, text: &str) -> std::io::Result<()> {
        match &self.printer {
            Some(p) => {
                print_above(p, format!("< {text}\n"));
                Ok(())
            }
            None => {
                let mut o = std::io::stdout().lock();
                o.write_all(text.as_bytes())?;
                o.write_all(&[self.terminator])?;
                o.flush()
            }
        }
    }

    /// A notice: stderr when piped, above the prompt on a terminal.
    fn info(&self, text: &str) {
        match &self.printer {
            Some(p) => print_above(p, format!("{text}\n")),
            None => eprintln!("{text}"),
        }
    }

    fn interactive(&self) -> bool {
        self.printer.is_some()
    }
}

fn print_above(p: &Printer, text: String) {
    let mut p = p.lock().unwrap_or_else(|e| e.into_inner());
    let _ = p.print(text);
}

fn encode_binary(b: &[u8], f: BinaryFormat) -> String {
    match f {
        BinaryFormat::Hex => b.iter().map(|x| format!("{x:02x}")).collect(),
        BinaryFormat::Base64 => STANDARD.encode(b),
    }
}

/// A ping/pong payload for people: text if it is printable UTF-8.
fn show_payload(b: &[u8], f: BinaryFormat) -> String {
    if b.is_empty() {
        return "(empty)".into();
    }
    match std::str::from_utf8(b) {
        Ok(s) if !s.chars().any(char::is_control) => s.to_string(),
        _ => format!("[{} bytes] {}", b.len(), encode_binary(b, f)),
    }
}

fn format_rtt(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

/// Re-indents valid JSON like `serde_json::to_string_pretty`, keeping the
/// key order and the number spellings. `None` if `s` is not JSON.
fn pretty_json(s: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(s).ok()?;
    let mut out = String::with_capacity(s.len() * 2);
    let mut depth = 0usize;
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("  ");
        }
    };
    let mut chars = s.trim().chars().peekable();
    let (mut in_str, mut escaped) = (false, false);
    while let Some(c) = chars.next() {
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                out.push(c);
            }
            '{' | '[' => {
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                let close = if c == '{' { '}' } else { ']' };
                out.push(c);
                if chars.peek() == Some(&close) {
                    chars.next();
                    out.push(close);
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(',');
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    Some(out)
}

// ---- the REPL -------------------------------------------------------------------

/// The line editor on its own thread, and what restores the terminal.
struct Repl {
    out: Out,
    #[cfg(unix)]
    saved_termios: Option<nix::sys::termios::Termios>,
}

const HELP: &str = "commands:
  /ping [data]            send a ping; its pong is shown with the round-trip time
  /close [code] [reason]  close the connection (default 1000) and exit
  /binary <hex|base64>    send a binary message (hex if it parses as hex, else base64)
  //text                  send a message that starts with '/'
  /help                   this list
  Ctrl-D, Ctrl-C          close normally (1000) and exit
anything else is sent as a text message (binary with --binary)";

impl Repl {
    fn start(tx: &mpsc::Sender<Input>, opts: Opts) -> rustyline::Result<Repl> {
        let tx = tx.clone();
        // The editor thread may still be waiting for a key, with the
        // terminal in raw mode, when the connection ends: keep the settings
        // to put back before exiting.
        #[cfg(unix)]
        let saved_termios = nix::sys::termios::tcgetattr(std::io::stdin()).ok();
        let config = rustyline::Config::builder()
            .auto_add_history(false)
            .max_history_size(1000)?
            .history_ignore_dups(true)?
            .build();
        let mut rl = rustyline::DefaultEditor::with_config(config)?;
        let printer: Printer = Arc::new(Mutex::new(Box::new(rl.create_external_printer()?)));
        let out = Out {
            printer: Some(printer),
            terminator: b'\n',
        };
        std::thread::spawn(move || {
            use rustyline::error::ReadlineError;
            loop {
                let item = match rl.readline("> ") {
                    Ok(line) => {
                        if line.trim().is_empty() {
                            continue;
                        }
                        let _ = rl.add_history_entry(line.as_str());
                        match parse_repl_line(&line, &opts) {
                            Ok(Some(item)) => item,
                            Ok(None) => continue,
                            Err(msg) => {
                                println!("{msg}");
                                continue;
                            }
                        }
                    }
                    Err(ReadlineError::Eof | ReadlineError::Interrupted) => Input::Eof,
                    Err(e) => {
                        eprintln!("wsx: line editor: {e}");
                        Input::Eof
                    }
                };
                let last = matches!(item, Input::Eof | Input::Close(_));
                // After a close the terminal is left in its normal mode:
                // the editor is not reading any more.
                if tx.blocking_send(item).is_err() || last {
                    return;
                }
            }
        });
        Ok(Repl {
            out,
            #[cfg(unix)]
            saved_termios,
        })
    }

    /// Puts the terminal back (the editor thread may be stuck in raw mode
    /// waiting for a key) and clears the prompt.
    fn finish(self) {
        // Let the editor draw the last lines handed to it.
        std::thread::sleep(Duration::from_millis(50));
        #[cfg(unix)]
        if let Some(t) = &self.saved_termios {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSADRAIN,
                t,
            );
        }
        // Bracketed paste off, then erase the prompt line.
        let mut o = std::io::stdout().lock();
        let _ = o.write_all(b"\x1b[?2004l\r\x1b[2K");
        let _ = o.flush();
    }
}

/// One line typed at the prompt: `Ok(None)` when it was handled here (help).
fn parse_repl_line(line: &str, opts: &Opts) -> Result<Option<Input>, String> {
    let data = |s: &str| {
        Input::Data(if opts.binary {
            Message::binary(s.as_bytes().to_vec())
        } else {
            Message::text(s)
        })
    };
    let Some(cmdline) = line.strip_prefix('/') else {
        return Ok(Some(data(line)));
    };
    if cmdline.starts_with('/') {
        return Ok(Some(data(cmdline)));
    }
    let (cmd, rest) = cmdline
        .split_once(char::is_whitespace)
        .unwrap_or((cmdline, ""));
    let rest = rest.trim();
    match cmd {
        "help" | "h" | "?" => {
            println!("{HELP}");
            Ok(None)
        }
        "ping" => {
            if rest.len() > 125 {
                return Err(format!(
                    "a ping carries at most 125 bytes; this one has {}",
                    rest.len()
                ));
            }
            Ok(Some(Input::Ping(rest.as_bytes().to_vec())))
        }
        "close" | "quit" | "exit" => crate::parse_close(rest).map(|f| Some(Input::Close(f))),
        "binary" => {
            let (bytes, how) = parse_binary(rest)?;
            println!("[binary {} bytes, read as {how}]", bytes.len());
            Ok(Some(Input::Data(Message::binary(bytes))))
        }
        _ => Err(format!(
            "unknown command /{cmd}; /help lists the commands (//text sends a message starting with '/')"
        )),
    }
}

/// Hex if it parses as hex (whitespace and a `0x` prefix allowed), else base64.
fn parse_binary(arg: &str) -> Result<(Vec<u8>, &'static str), String> {
    let compact: String = arg.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() {
        return Err(
            "usage: /binary <hex|base64>, e.g. /binary 68656c6c6f or /binary aGVsbG8=".into(),
        );
    }
    let hex = compact
        .strip_prefix("0x")
        .or_else(|| compact.strip_prefix("0X"))
        .unwrap_or(&compact);
    if hex.len() % 2 == 0 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digits"))
            .collect();
        return Ok((bytes, "hex"));
    }
    for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
        if let Ok(b) = engine.decode(&compact) {
            return Ok((b, "base64"));
        }
    }
    Err(format!(
        "{arg:?} is neither hex (pairs of 0-9a-f) nor base64"
    ))
}

// ---- the end of input ------------------------------------------------------------

/// When to close after the end of input in a pipe: once the replies stop.
///
/// Closing at once loses replies: a server may answer our close at once
/// and drop what it was still producing (Python `websockets` does), or the
/// replies are simply still on the wire. So wsx keeps reading, and closes
/// with 1000 once nothing (no message, no fragment of one) has arrived for
/// a quiet period, counted from the end of input or the last arrival,
/// whichever is later:
/// - [`Linger::ANSWERED_QUIET`] (0.25 s) once at least as many messages came
///   back as were sent (an echo or request/response server is done: close
///   promptly; the slack covers a second reply close behind the first);
/// - [`Linger::QUIET`] (1 s) while fewer came back (a server that takes its
///   time, or never replies: it costs one second);
/// - and at the latest [`Linger::CAP`] (10 s) after the end of input, for a
///   server that keeps talking (a feed: keep stdin open to read it, or
///   `--wait SECS`).
///
/// Plain data, no clock: the caller passes the instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Linger {
    /// The end of input, after what was sent had been flushed.
    eof: Instant,
    /// Data messages sent and received on this connection.
    sent: u64,
    received: u64,
    /// When the last message or fragment arrived.
    last_arrival: Option<Instant>,
}

impl Linger {
    const ANSWERED_QUIET: Duration = Duration::from_millis(250);
    const QUIET: Duration = Duration::from_secs(1);
    const CAP: Duration = Duration::from_secs(10);

    fn answered(&self) -> bool {
        self.received >= self.sent
    }

    /// When to close, if nothing more arrives.
    fn close_at(&self) -> Instant {
        let last = self.last_arrival.map_or(self.eof, |t| t.max(self.eof));
        let quiet = if self.answered() {
            Self::ANSWERED_QUIET
        } else {
            Self::QUIET
        };
        (last + quiet).min(self.eof + Self::CAP)
    }

    /// For `-v`: why it closes now.
    fn explain(&self) -> String {
        let counts = format!("{} sent, {} received", self.sent, self.received);
        if self.close_at() == self.eof + Self::CAP {
            return format!(
                "closing {} s after it ({counts}): the server kept sending (--wait SECS reads longer)",
                Self::CAP.as_secs()
            );
        }
        let quiet = if self.answered() {
            Self::ANSWERED_QUIET
        } else {
            Self::QUIET
        };
        format!(
            "closing after {} s without messages ({counts})",
            quiet.as_secs_f64()
        )
    }
}

/// Waits until [`Linger`] says the replies have stopped (the reader goes on
/// printing them meanwhile); returns the rule as it stood then.
async fn linger(shared: &Shared) -> Linger {
    let eof = Instant::now();
    loop {
        // Registered before the state is read: an arrival from here on
        // wakes us (a permit left by an earlier one only recomputes).
        let arrived = shared.arrival.notified();
        tokio::pin!(arrived);
        arrived.as_mut().enable();
        let rule = Linger {
            eof,
            sent: shared.sent.get(),
            received: shared.received.get(),
            last_arrival: shared.last_arrival.get(),
        };
        let at = rule.close_at();
        if Instant::now() >= at {
            return rule;
        }
        tokio::select! {
            () = tokio::time::sleep_until(at.into()) => {}
            () = &mut arrived => {}
        }
    }
}

// ---- sessions -------------------------------------------------------------------

/// How one connection ended.
enum End {
    Closed(Closed),
    Io(Arc<wsx::Error>),
    /// `recv` reported the end without a `Closed` event (not expected).
    Gone,
    /// stdout went away: we closed with 1000.
    OutputClosed,
}

struct Outcome {
    end: End,
    /// We sent (or meant to send) a close: do not reconnect.
    quitting: bool,
    /// `--once` printed its reply.
    replied: bool,
    lasted: Duration,
}

/// State the reader and writer of one session share (same task).
#[derive(Default)]
struct Shared {
    pings: RefCell<VecDeque<(Vec<u8>, Instant)>>,
    quitting: Cell<bool>,
    replied: Cell<bool>,
    reply: Notify,
    /// Data messages sent and received on this connection, and when the
    /// last one (or a fragment of one) arrived: what [`Linger`] decides on.
    sent: Cell<u64>,
    received: Cell<u64>,
    last_arrival: Cell<Option<Instant>>,
    /// Wakes [`linger`] at each arrival: the reply that answers the last
    /// message brings the close forward.
    arrival: Notify,
}

type Reader = WsReader<MaybeTlsStream>;
type Writer = WsWriter<MaybeTlsStream>;

/// The reconnect decisions of `--reconnect`: the library's [`Schedule`]
/// (its default retry policy, `Retry-After`, `--max-attempts`), with a
/// shorter reset than the library's 30 s.
fn reconnect_schedule(opts: &Opts) -> Schedule {
    let backoff = Backoff {
        // An interactive tool: a connection that held for 10 s was a real
        // session, and the user would rather not wait half a minute.
        reset_after: Duration::from_secs(10),
        max_attempts: opts.max_attempts,
        ..Backoff::default()
    };
    Schedule::new(backoff, RetryPolicy::default(), Jitter::from_entropy())
}

/// Runs sessions until one ends for good (reconnecting in between with
/// `--reconnect`, as its [`Schedule`] decides); returns the exit code.
async fn drive(
    ws: WebSocket<MaybeTlsStream>,
    req: &wsx::client::ClientRequest,
    config: &wsx::client::ClientConfig,
    input: &mut InputQueue,
    out: &Out,
    opts: &Opts,
) -> u8 {
    let mut ws = ws;
    let mut schedule = reconnect_schedule(opts);
    loop {
        let outcome = session(ws, input, out, opts).await;
        // We closed, or stdout went away: not a question for the policy.
        let ours = outcome.quitting || matches!(outcome.end, End::OutputClosed);
        if !opts.reconnect || ours {
            report(&outcome, out, opts);
            return exit_code(&outcome, opts);
        }
        let mut decision = schedule.on_end(&outcome.end.disconnect(), outcome.lasted);
        if let Decision::GiveUp { reason } = decision {
            report(&outcome, out, opts);
            if reason != GiveUpReason::Permanent {
                give_up(reason, out);
            }
            return exit_code(&outcome, opts);
        }
        out.info(&format!(
            "wsx: connection lost: {}",
            describe_end(&outcome.end)
        ));
        ws = loop {
            let delay = match decision {
                Decision::Retry { attempt, delay } => {
                    out.info(&format!(
                        "wsx: reconnecting in {:.1} s (attempt {attempt})",
                        delay.as_secs_f64()
                    ));
                    delay
                }
                Decision::GiveUp { reason } => {
                    give_up(reason, out);
                    return EXIT_FAILURE;
                }
            };
            if or_quit(tokio::time::sleep(delay), input, out.interactive())
                .await
                .is_none()
            {
                return exit_code(&outcome, opts);
            }
            let Some(result) = or_quit(
                wsx::client::connect_with(req, config),
                input,
                out.interactive(),
            )
            .await
            else {
                return exit_code(&outcome, opts);
            };
            match result {
                Ok((ws, _)) => {
                    out.info("wsx: reconnected");
                    break ws;
                }
                Err(e) => {
                    let cause = Disconnect::from(e);
                    out.info(&format!("wsx: {cause}"));
                    decision = schedule.on_connect_error(&cause);
                }
            }
        };
    }
}

/// Says why `--reconnect` stopped, and what would make it go on.
fn give_up(reason: GiveUpReason, out: &Out) {
    let hint = match reason {
        GiveUpReason::MaxAttempts { .. } => {
            "raise --max-attempts, or leave it out to retry as long as the failures look transient"
        }
        // A refused handshake, a bad URL, a protocol error: the message
        // above names it.
        _ => "another attempt would fail the same way; fix the cause above and run again",
    };
    out.info(&format!("wsx: not reconnecting: {reason} ({hint})"));
}

/// Runs `fut`; on a terminal, gives up (None) if the user quits meanwhile.
/// Other input is kept for the next connection.
async fn or_quit<T>(
    fut: impl Future<Output = T>,
    input: &mut InputQueue,
    interactive: bool,
) -> Option<T> {
    if !interactive {
        return Some(fut.await);
    }
    tokio::pin!(fut);
    loop {
        tokio::select! {
            v = &mut fut => return Some(v),
            item = input.rx.recv() => match item {
                None | Some(Input::Eof | Input::Close(_)) => return None,
                Some(other) => input.pending.push_back(other),
            },
        }
    }
}

impl End {
    /// The end as the reconnect policy sees it (not for `OutputClosed`,
    /// which never reconnects).
    fn disconnect(&self) -> Disconnect {
        match self {
            End::Closed(c) => Disconnect::Closed(c.clone()),
            End::Io(e) => match e.close_info() {
                Some(c) => Disconnect::Closed(c.clone()),
                None => Disconnect::Error(e.clone()),
            },
            // An end without `Closed` is not expected: a lost connection.
            End::Gone | End::OutputClosed => Disconnect::from(wsx::Error::from(
                std::io::Error::from(std::io::ErrorKind::UnexpectedEof),
            )),
        }
    }
}

fn exit_code(o: &Outcome, opts: &Opts) -> u8 {
    if opts.once && o.replied {
        return EXIT_OK;
    }
    match &o.end {
        End::OutputClosed => EXIT_OK,
        End::Io(_) | End::Gone => EXIT_FAILURE,
        End::Closed(c) => match (&c.cause, c.initiator) {
            (None, Initiator::Local) => EXIT_OK,
            (None, Initiator::Remote) if matches!(c.code.0, 1000 | 1005) => EXIT_OK,
            (None, Initiator::Remote) => EXIT_PEER_ERROR,
            (Some(CloseCause::Protocol(_)), _) => EXIT_PEER_ERROR,
            (Some(_), _) => EXIT_FAILURE,
        },
    }
}

fn describe_end(end: &End) -> String {
    match end {
        // The library's words for it, as `ReconnectingClient` reports it.
        End::Closed(c) => Disconnect::Closed(c.clone()).to_string(),
        End::Io(e) => e.to_string(),
        End::Gone => "the connection ended".into(),
        End::OutputClosed => "stdout was closed".into(),
    }
}

/// Says how the session ended: always on a terminal (`closed: CODE
/// REASON`); when piped, on stderr unless it was a normal close (with `-v`,
/// that too: both close codes).
fn report(o: &Outcome, out: &Out, opts: &Opts) {
    if out.interactive() {
        let line = match &o.end {
            End::Closed(c) => match &c.cause {
                None => {
                    // The server's reply often carries no reason: show ours.
                    let reason = match (&c.sent, c.initiator) {
                        (Some(sent), Initiator::Local) if c.reason.is_empty() => &sent.reason,
                        _ => &c.reason,
                    };
                    format!("closed: {} {reason}", c.code.0)
                }
                Some(cause) => format!("closed: {} ({cause})", c.code.0),
            },
            other => format!("closed: {}", describe_end(other)),
        };
        out.info(line.trim_end());
        return;
    }
    let normal = match &o.end {
        End::Closed(c) => {
            c.cause.is_none()
                && (c.initiator == Initiator::Local || matches!(c.code.0, 1000 | 1005))
        }
        End::OutputClosed => true,
        _ => false,
    };
    if !normal {
        out.info(&format!("wsx: {}", describe_end(&o.end)));
    } else if opts.verbose {
        if let End::Closed(c) = &o.end {
            out.info(&format!("wsx: {}", describe_clean_close(c)));
        }
    }
}

/// `closed: sent 1000, the server answered 1000`, or `closed by the server
/// with 1000, answered 1000`.
fn describe_clean_close(c: &Closed) -> String {
    let sent = c
        .sent
        .as_ref()
        .map_or_else(|| "no code".to_string(), |f| f.code.0.to_string());
    match c.initiator {
        Initiator::Local => format!("closed: sent {sent}, the server answered {}", c.code.0),
        Initiator::Remote => format!("closed by the server with {}, answered {sent}", c.code.0),
    }
}

/// One connection: prints what arrives, sends what the user gives, until
/// the connection ends (or stdout goes away).
async fn session(
    ws: WebSocket<MaybeTlsStream>,
    input: &mut InputQueue,
    out: &Out,
    opts: &Opts,
) -> Outcome {
    let started = Instant::now();
    let shared = Shared::default();
    let (mut rx, mut tx) = ws.split();
    let end = {
        let reader = read_loop(&mut rx, out, opts, &shared);
        let writer = write_loop(&mut tx, input, out, opts, &shared);
        tokio::pin!(reader, writer);
        tokio::select! {
            end = &mut reader => end,
            never = &mut writer => match never {},
        }
    };
    if matches!(end, End::OutputClosed) {
        shared.quitting.set(true);
        let _ = tx.close(Some(CloseFrame::new(CloseCode::NORMAL, ""))).await;
        // Finish the close handshake (bounded by the close timeout).
        while let Ok(Some(ev)) = rx.recv_event().await {
            if matches!(ev, Event::Closed(_)) {
                break;
            }
        }
    }
    Outcome {
        end,
        quitting: shared.quitting.get(),
        replied: shared.replied.get(),
        lasted: started.elapsed(),
    }
}

async fn read_loop(rx: &mut Reader, out: &Out, opts: &Opts, shared: &Shared) -> End {
    loop {
        let ev = match rx.recv_event().await {
            Ok(Some(ev)) => ev,
            Ok(None) => return End::Gone,
            Err(e) => return End::Io(Arc::new(e)),
        };
        let text = match ev {
            Event::Text(t) => match opts.json.then(|| pretty_json(&t)).flatten() {
                Some(pretty) => pretty,
                None => t.as_str().to_owned(),
            },
            Event::Binary(b) => {
                let enc = encode_binary(&b, opts.binary_format);
                if out.interactive() {
                    format!("[binary {} bytes] {enc}", b.len())
                } else {
                    enc
                }
            }
            Event::Ping(p) => {
                if opts.show_ping {
                    out.info(&format!("< ping {}", show_payload(&p, opts.binary_format)));
                }
                continue;
            }
            Event::Pong(p) => {
                let sent = {
                    let mut pings = shared.pings.borrow_mut();
                    let i = pings.iter().position(|(d, _)| d[..] == p[..]);
                    i.and_then(|i| pings.remove(i)).map(|(_, at)| at)
                };
                let shown = show_payload(&p, opts.binary_format);
                match sent {
                    Some(at) => out.info(&format!("< pong {shown} ({})", format_rtt(at.elapsed()))),
                    None if opts.show_ping => out.info(&format!("< pong {shown} (keepalive)")),
                    None => {}
                }
                continue;
            }
            Event::Fragment(_) => {
                // A message is on its way: the replies have not stopped.
                shared.last_arrival.set(Some(Instant::now()));
                shared.arrival.notify_one();
                continue;
            }
            Event::Closed(c) => return End::Closed(c),
        };
        shared.received.set(shared.received.get() + 1);
        shared.last_arrival.set(Some(Instant::now()));
        shared.arrival.notify_one();
        if opts.once && shared.replied.get() {
            continue;
        }
        if out.message(&text).is_err() {
            return End::OutputClosed;
        }
        if opts.once {
            shared.replied.set(true);
            shared.reply.notify_one();
        }
    }
}

/// Sends input until a close; never returns (the reader ends the session).
async fn write_loop(
    tx: &mut Writer,
    input: &mut InputQueue,
    out: &Out,
    opts: &Opts,
    shared: &Shared,
) -> Infallible {
    loop {
        match input.next().await {
            Input::Data(m) => {
                if tx.feed(m.clone()).await.is_err() {
                    // Not queued: keep it for the next connection.
                    input.pending.push_front(Input::Data(m));
                    break;
                }
                shared.sent.set(shared.sent.get() + 1);
                // Batch what is already waiting into one write; the next
                // send, ping or close flushes.
                let more = !input.pending.is_empty() || !input.rx.is_empty();
                if !more && tx.flush().await.is_err() {
                    break;
                }
            }
            Input::Ping(p) => {
                shared
                    .pings
                    .borrow_mut()
                    .push_back((p.clone(), Instant::now()));
                if tx.send(Message::Ping(p.into())).await.is_err() {
                    break;
                }
            }
            Input::Close(frame) => {
                shared.quitting.set(true);
                let _ = tx.close(Some(frame)).await;
                break;
            }
            Input::Eof => {
                // Whatever is still queued must go out before we wait.
                if tx.flush().await.is_err() {
                    break;
                }
                if opts.once {
                    shared.reply.notified().await;
                } else if let Some(wait) = opts.wait {
                    tokio::time::sleep(wait).await;
                } else if opts.linger {
                    let rule = linger(shared).await;
                    if opts.verbose {
                        out.info(&format!("wsx: end of input: {}", rule.explain()));
                    }
                }
                shared.quitting.set(true);
                let _ = tx.close(Some(CloseFrame::new(CloseCode::NORMAL, ""))).await;
                break;
            }
        }
    }
    std::future::pending().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_argument_is_hex_if_it_can_be() {
        assert_eq!(parse_binary("6869").unwrap(), (b"hi".to_vec(), "hex"));
        assert_eq!(parse_binary("0x68 69").unwrap(), (b"hi".to_vec(), "hex"));
        assert_eq!(parse_binary("aGk=").unwrap(), (b"hi".to_vec(), "base64"));
        assert_eq!(parse_binary("aGk").unwrap(), (b"hi".to_vec(), "base64"));
        assert!(parse_binary("").is_err());
        assert!(parse_binary("not base64!").is_err());
    }

    #[test]
    fn close_arguments() {
        assert_eq!(
            crate::parse_close("").unwrap(),
            CloseFrame::new(CloseCode::NORMAL, "")
        );
        assert_eq!(
            crate::parse_close("4000 bye now").unwrap(),
            CloseFrame::new(CloseCode(4000), "bye now")
        );
        assert_eq!(
            crate::parse_close("bye").unwrap(),
            CloseFrame::new(CloseCode::NORMAL, "bye")
        );
        assert!(crate::parse_close("1006").is_err());
        assert!(crate::parse_close("70000").is_err());
    }

    #[test]
    fn json_is_reindented_in_order() {
        assert_eq!(
            pretty_json(r#"{"b":1,"a":[1,2],"e":{},"s":"x, {y}: \"z\""}"#).unwrap(),
            "{\n  \"b\": 1,\n  \"a\": [\n    1,\n    2\n  ],\n  \"e\": {},\n  \"s\": \"x, {y}: \\\"z\\\"\"\n}"
        );
        assert_eq!(pretty_json(" 12 ").unwrap(), "12");
        assert!(pretty_json("hello").is_none());
    }

    #[test]
    fn end_of_input_closes_once_the_replies_stop() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let rule = |sent, received, last: Option<u64>| Linger {
            eof: t0,
            sent,
            received,
            last_arrival: last.map(ms),
        };
        let table = [
            // (sent, received, last arrival in ms from the end of input, close at ms)
            // An echo: the reply came 3 ms after the end: 0.25 s later.
            (1, 1, Some(3), 253),
            // It had come before the end of input: 0.25 s from the end.
            (1, 1, Some(0), 250),
            (3, 5, None, 250),
            // Nothing sent (empty input): a short look for a greeting.
            (0, 0, None, 250),
            // No reply yet: 1 s after the end, or after the last arrival.
            (1, 0, None, 1000),
            (2, 1, Some(700), 1700),
            // A server that keeps sending: 10 s at the latest.
            (1, 500, Some(9_900), 10_000),
            (2, 1, Some(9_500), 10_000),
        ];
        for (sent, received, last, want) in table {
            let r = rule(sent, received, last);
            assert_eq!(r.close_at(), ms(want), "{r:?}");
        }
        assert_eq!(
            rule(1, 1, Some(3)).explain(),
            "closing after 0.25 s without messages (1 sent, 1 received)"
        );
        assert_eq!(
            rule(1, 0, None).explain(),
            "closing after 1 s without messages (1 sent, 0 received)"
        );
        assert!(rule(1, 9, Some(9_999))
            .explain()
            .starts_with("closing 10 s after it (1 sent, 9 received): the server kept sending"));
    }
}
