//! `wsx replay`: a recording's client side played against a server, the
//! differences in the server's answers reported (the library's replay).

use std::path::PathBuf;

/// Examples shown by `wsx replay --help`.
pub const EXAMPLES: &str = "Examples:
  wsx proxy --to ws://127.0.0.1:9001 --record session.jsonl   # record a session
  wsx replay session.jsonl ws://127.0.0.1:9001                 # play it again, as fast as it goes
  wsx replay session.jsonl ws://staging:9001 --speed 1         # with the original timing

Exit status: 0 when every server answer matched the recording, 1 when one differed, 2 on errors.";

/// Options of `wsx replay`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// A recording from `wsx proxy --record` (with payloads).
    pub file: PathBuf,
    /// The server: ws://HOST:PORT or wss://...; each recorded path is appended.
    pub url: String,
    /// Pace: 1 is the original timing, 2 twice as fast; without it, as fast as it goes.
    #[arg(long, value_name = "FACTOR")]
    pub speed: Option<f64>,
}

/// Runs the replay; returns the exit code.
pub async fn run(args: ReplayArgs) -> u8 {
    if args.speed.is_some_and(|s| !(s > 0.0 && s.is_finite())) {
        eprintln!("wsx: --speed: a factor above 0 (1 is the original timing)");
        return 2;
    }
    let conns = match wsx_proxy::replay::load(&args.file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wsx: {e}");
            return 2;
        }
    };
    if conns.is_empty() {
        eprintln!(
            "wsx: {}: no connection in the recording",
            args.file.display()
        );
        return 2;
    }
    let config = wsx::client::ClientConfig::default();
    let mut differed = false;
    for conn in &conns {
        match wsx_proxy::replay::replay(conn, &args.url, args.speed, &config).await {
            Ok(r) => {
                let verdict = if r.differences.is_empty() {
                    "same"
                } else {
                    "DIFFERENT"
                };
                println!(
                    "#{} {}: sent {}, server answered {} of {} recorded: {verdict}",
                    r.id, r.path, r.sent, r.received, r.expected
                );
                for d in &r.differences {
                    println!("  {d}");
                }
                differed |= !r.differences.is_empty();
            }
            Err(e) => {
                eprintln!("wsx: #{} {}: {e}", conn.id, conn.path);
                return 2;
            }
        }
    }
    u8::from(differed)
}
