//! `wsx term`: browser terminal sessions (the `wsx-term` crate) served by
//! the library's server core: its page, REST API and WebSocket endpoint.

use crate::serve::tls::{tls_acceptor, OriginArgs, TlsArgs};
use std::net::SocketAddr;
use std::time::Duration;
use wsx_term::{SessionLimits, SpawnOptions, TermConfig, Terminals};

pub const EXAMPLES: &str = "Examples:
  wsx term                         # your shell in the browser: open the printed address
  wsx term -- htop                 # another program
  wsx term --listen 0.0.0.0:7681 --tls-self-signed   # reachable from other machines, over https
  curl -H \"Authorization: Bearer $TOKEN\" http://127.0.0.1:7681/api/sessions

Sessions outlive their connections: reload the page and the screen is back. Every
request needs the access token (printed at start, or --token); viewer links with a
role come from POST /api/sessions/ID/tickets. The program inside can push state to
the page's status bar: curl -H \"Authorization: Bearer $WSX_TERM_STATE_TOKEN\" -d '{\"step\":2}' $WSX_TERM_STATE_URL";

/// `wsx term` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct TermArgs {
    /// Address to listen on (loopback unless told otherwise: whoever reaches
    /// it with the token runs commands as you).
    #[arg(long, default_value = "127.0.0.1:7681", value_name = "HOST:PORT")]
    pub listen: SocketAddr,
    /// The access token for the page, the API and the WebSocket (default: a
    /// random one, printed at start).
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
    /// Sessions at once (running or exited and not yet reaped).
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub max_sessions: usize,
    /// Viewers per session.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub max_viewers: usize,
    /// Scrollback lines kept per session (sent to a viewer that attaches).
    #[arg(long, default_value_t = 10_000, value_name = "LINES")]
    pub scrollback: usize,
    /// End a running session after SECS with no viewer attached.
    #[arg(long, default_value_t = 3600.0, value_name = "SECS")]
    pub detached_ttl: f64,
    /// Remove an exited session SECS after it ended.
    #[arg(long, default_value_t = 300.0, value_name = "SECS")]
    pub exited_ttl: f64,
    /// Start no session now (create them with POST /api/sessions).
    #[arg(long)]
    pub no_session: bool,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub origin: OriginArgs,
    /// The program to run and its arguments (default: your login shell).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

fn secs(s: f64, flag: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s).map_err(|_| format!("{flag} {s}: expected seconds >= 0"))
}

/// Runs the terminal server; returns the exit code.
pub async fn run(args: TermArgs) -> u8 {
    match serve(args).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("wsx: {e}");
            2
        }
    }
}

async fn serve(args: TermArgs) -> Result<(), String> {
    let token = args.token.clone().unwrap_or_else(wsx_term::random_secret);
    if token.len() < 16 {
        return Err("--token: at least 16 characters (it is all that guards a shell)".into());
    }
    let tls = tls_acceptor(&args.tls, args.listen, true)?;
    let http_scheme = if tls.is_some() { "https" } else { "http" };
    let server = wsx::Server::bind(args.listen).await.map_err(|e| {
        format!("cannot listen on {}: {e} (is another server using the port? pick another with --listen)", args.listen)
    })?;
    let local = server.local_addr().map_err(|e| e.to_string())?;
    // The programs inside reach the API on loopback when we listen on all interfaces.
    let api_host = if local.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), local.port())
    } else {
        local
    };
    let config = TermConfig::default()
        .limits(SessionLimits::default().scrollback_lines(args.scrollback))
        .max_sessions(args.max_sessions)
        .max_viewers(args.max_viewers)
        .detached_ttl(secs(args.detached_ttl, "--detached-ttl")?)
        .exited_ttl(secs(args.exited_ttl, "--exited-ttl")?)
        .api_base(Some(format!("{http_scheme}://{api_host}")));
    let terminals = Terminals::new(config, token.clone());
    let first = if args.no_session {
        None
    } else {
        let opts = SpawnOptions::new(args.command.iter().cloned());
        Some(terminals.create(&opts).map_err(|e| e.to_string())?)
    };
    let limits = crate::protocol_config(
        // Pastes arrive as one message: room for large ones.
        16 << 20,
        Some(Duration::from_secs(30)),
        None,
        None,
    )?;
    let server_config = wsx::ServerConfig::default()
        .limits(limits)
        .origin(args.origin.policy()?);
    let handle = server.handle();
    let session_query = first
        .as_ref()
        .map_or(String::new(), |s| format!("&session={}", s.id()));
    eprintln!(
        "wsx term: open {http_scheme}://{local}/?token={token}{session_query}\nwsx term: API {http_scheme}://{local}/api/sessions (Authorization: Bearer {token})"
    );
    tokio::spawn(async move {
        crate::serve::shutdown_signal().await;
        tracing::info!("shutting down: ending every session");
        handle.shutdown();
    });
    let server = server.with_config(server_config).with_acceptor(tls);
    let result = wsx_term::serve(server, terminals).await;
    result.map_err(|e| e.to_string())
}
