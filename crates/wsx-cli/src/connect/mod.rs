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
//!
//! Files: this one has the flags and starts the pieces; `input` (what the
//! user gives, the stdin thread), `repl` (the line editor and its `/`
//! commands), `output` (how messages and notices are printed), `session`
//! (one connection's reader and writer), `linger` (the end-of-input rule),
//! `drive` (sessions one after another, `--reconnect`), `exit` (the exit
//! code and the last words), `opts` (the options they share).

mod drive;
mod exit;
mod input;
mod linger;
mod opts;
mod output;
mod repl;
mod session;

use drive::drive;
use exit::EXIT_FAILURE;
use input::{spawn_stdin_reader, InputQueue};
use opts::Opts;
use output::{display_url, negotiated_lines, BinaryFormat, Out};
use repl::Repl;
use std::io::IsTerminal;
use std::time::Duration;
use tokio::sync::mpsc;
use wsx::client::Handshaken;

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
    #[arg(long, value_name = "0-9", default_value_t = wsx::wsx_proto::deflate::DEFAULT_LEVEL, value_parser = clap::value_parser!(u32).range(0..=9))]
    pub deflate_level: u32,
}

/// `--wait`: zero or more seconds.
fn parse_wait_secs(s: &str) -> Result<Duration, String> {
    let v = parse_secs(s, "2 or 0.5")?;
    if !v.is_finite() || !(0.0..=1e9).contains(&v) {
        return Err(format!("{s:?}: expected a number of seconds, 0 or more"));
    }
    Ok(Duration::from_secs_f64(v))
}

/// `--ping-interval`, `--close-timeout`: seconds above zero.
fn parse_positive_secs(s: &str) -> Result<Duration, String> {
    let v = parse_secs(s, "5 or 0.5")?;
    if !v.is_finite() || v <= 0.0 || v > 1e9 {
        return Err(format!("{s:?}: expected a number of seconds above zero"));
    }
    Ok(Duration::from_secs_f64(v))
}

/// A number of seconds; the error shows `example`.
fn parse_secs(s: &str, example: &str) -> Result<f64, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds (e.g. {example})"))
}

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
    } else if args.request.http2 {
        eprintln!("wsx: {}", output::http_line(&ws));
    }
    let (tx, rx) = mpsc::channel(64);
    let mut input = InputQueue::new(rx);
    let opts = Opts::from(&args);
    let repl = if interactive {
        start_repl(&tx, &opts)
    } else {
        None
    };
    let Some(repl) = repl else {
        let opts = Opts {
            linger: true,
            ..opts
        };
        spawn_stdin_reader(tx, args.null, args.binary);
        let out = Out::pipe(args.null);
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

/// The line editor, or `None` when the terminal cannot drive one
/// (TERM=dumb...): then the pipe behaviour.
fn start_repl(tx: &mpsc::Sender<input::Input>, opts: &Opts) -> Option<Repl> {
    match Repl::start(tx, opts.clone()) {
        Ok(r) => Some(r),
        Err(e) => {
            eprintln!("wsx: warning: no line editor ({e}); reading lines from stdin");
            None
        }
    }
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

/// Warns when subprotocols were offered and the server chose none.
fn warn_protocol(hs: &Handshaken, args: &ConnectArgs, out: &Out) {
    if !args.request.subprotocols.is_empty() && hs.protocol.is_none() {
        out.info(&format!(
            "wsx: warning: the server selected none of the offered subprotocols ({}); it may not speak them",
            args.request.subprotocols.join(", ")
        ));
    }
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
