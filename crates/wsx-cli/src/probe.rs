//! `wsx probe`: the opening handshake, shown step by step.

/// Examples shown by `wsx probe --help`.
pub const EXAMPLES: &str = "Examples:
  wsx probe ws://127.0.0.1:9001/";

/// Options of `wsx probe`.
#[derive(Debug, Clone, clap::Args)]
pub struct ProbeArgs {
    /// The ws:// URL.
    pub url: String,
}

/// Runs the probe; returns the exit code.
pub async fn run(args: ProbeArgs) -> u8 {
    eprintln!("wsx probe {}: not implemented yet", args.url);
    2
}
