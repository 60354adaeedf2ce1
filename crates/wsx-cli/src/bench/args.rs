//! The flags of `wsx bench`, and what they choose between.

/// What the messages contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Payload {
    /// Pseudo-random bytes (letters with `--text`): incompressible.
    Random,
    /// JSON-like text (an array of records with repeated keys and varying
    /// numbers and strings; deterministic), sent as text messages.
    Json,
}

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Send messages and time their echoes.
    Echo,
    /// Open, handshake and close connections as fast as possible.
    Handshake,
    /// Open connections and hold them idle (for memory per connection).
    Idle,
}

/// Examples shown by `wsx bench --help`.
pub const EXAMPLES: &str = "Every echo is checked (length and content); mismatches count as errors and make the exit code 1.

Examples:
  wsx bench ws://127.0.0.1:9001/ -c 100 -s 20 --depth 16 -d 10
  wsx bench ws://127.0.0.1:9001/ -c 10 -s 65536 --depth 4 --json
  wsx bench ws://127.0.0.1:9001/ -c 50 --rate 20000 -d 30      # open loop, latency from schedule
  wsx bench ws://127.0.0.1:9001/ -c 8 --mode handshake -d 5    # connections per second
  wsx bench ws://127.0.0.1:9001/ -c 10000 --mode idle -d 10    # hold idle connections
  wsx bench ws://127.0.0.1:9001/ -c 50 -s 16384 --payload json --deflate   # compression ratio
  wsx bench wss://127.0.0.1:9443/ --ca cert.pem -c 10 -s 1024   # over TLS (--insecure: no checks)";

/// Options of `wsx bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// The ws:// or wss:// URL of an echo server.
    pub url: String,
    /// Headers, subprotocols, credentials, wss:// trust and client
    /// certificate (--proxy is refused: measure the server, not a proxy).
    #[command(flatten)]
    pub request: crate::request_args::RequestArgs,
    /// Concurrent connections.
    #[arg(short = 'c', long, default_value_t = 10)]
    pub connections: usize,
    /// Message payload size in bytes.
    #[arg(short = 's', long, default_value_t = 20)]
    pub size: usize,
    /// Messages in flight per connection (closed loop).
    #[arg(long, default_value_t = 1)]
    pub depth: usize,
    /// Open loop: total messages per second across all connections, sent on
    /// schedule whether or not echoes came back; latency counts from the
    /// scheduled time (corrects coordinated omission).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Measured duration in seconds (after warm-up).
    #[arg(short = 'd', long, default_value_t = 10.0)]
    pub duration: f64,
    /// Stop after this many echoed messages (handshakes in `--mode
    /// handshake`) in total, warm-up included, instead of after a duration.
    #[arg(short = 'n', long)]
    pub messages: Option<u64>,
    /// Warm-up seconds before measuring.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Send text messages (default binary).
    #[arg(long)]
    pub text: bool,
    /// Message content; `json` implies text messages.
    #[arg(long, value_enum, default_value_t = Payload::Random)]
    pub payload: Payload,
    /// Offer permessage-deflate (RFC 7692) with client_no_context_takeover,
    /// so each connection compresses its payload once and resends it; fails
    /// if the server does not accept it. Reports bytes on the wire per message.
    #[arg(long)]
    pub deflate: bool,
    /// What to measure.
    #[arg(long, value_enum, default_value_t = Mode::Echo)]
    pub mode: Mode,
    /// Load-generator threads (each runs a single-threaded runtime).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Spread connections over this many source addresses 127.0.0.1..N
    /// (loopback targets only; default: one per 20,000 connections).
    #[arg(long)]
    pub source_ips: Option<u8>,
    /// The target is a raw TCP echo, not WebSocket: no handshake, and the
    /// exact frame bytes must come back (the floor for comparisons).
    #[arg(long)]
    pub raw_tcp: bool,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}
