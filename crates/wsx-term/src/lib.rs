//! Browser terminal sessions over WebSocket, on wsx: programs on PTYs that
//! outlive their viewers, a server-side screen that reattaching viewers get
//! back as it is, several viewers per session with roles, per-viewer flow
//! control, a state channel from the program inside, and a REST API.
//!
//! `wsx term` (the CLI) serves it; an application embeds it:
//!
//! ```no_run
//! use wsx_term::{router, TermConfig, Terminals, SpawnOptions};
//!
//! # async fn run() -> std::io::Result<()> {
//! let terminals = Terminals::new(TermConfig::default(), wsx_term::random_secret());
//! terminals.spawn_reaper();
//! let session = terminals.create(&SpawnOptions::default()).expect("a shell on a PTY");
//! println!("session {}", session.id());
//! // The page, the REST API and /api/ws/sessions/{id}, under /term:
//! let app = axum::Router::new().nest("/term", router(terminals));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:7681").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! The wire protocol (`wsx.term.v1`) is in [`protocol`].

#![warn(missing_docs)]

mod api;
mod assets;
mod auth;
mod output;
pub mod protocol;
mod screen;
mod session;
mod terminals;
mod viewer;

pub use api::{admit_upgrade, router};
pub use auth::{random_secret, Auth};
pub use protocol::Role;
pub use session::{Exit, Session, SessionInfo, SessionLimits, SpawnOptions};
pub use terminals::{Admission, CreateError, TermConfig, Terminals};

use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use wsx::{CloseCode, CloseFrame, WebSocket};

/// Serves `terminals` on `server` (the library's one accept loop): upgrades
/// to `/api/ws/sessions/{id}` are admitted by [`Terminals::admit`] before
/// any routing, everything else goes to [`router`] through hyper. The
/// server's config gets the `wsx.term.v1` subprotocol. Sessions are
/// reaped ([`Terminals::reap`]) every second meanwhile. When the server
/// stops, every session is ended.
///
/// # Errors
/// As [`wsx::Server::serve`].
pub async fn serve<A: wsx::server::Acceptor>(
    server: wsx::Server<A>,
    terminals: Arc<Terminals>,
) -> wsx::Result<()> {
    let mut config = server.config().clone();
    if !config
        .subprotocols
        .iter()
        .any(|p| p == protocol::SUBPROTOCOL)
    {
        config.subprotocols.push(protocol::SUBPROTOCOL.to_string());
    }
    let admit = terminals.clone();
    let reaper = terminals.spawn_reaper();
    let result = server
        .with_config(config)
        .with_http(wsx::server::HttpService::new(router(terminals.clone())))
        .serve_with(
            move |up| admit_upgrade(&admit, up),
            |ws, accepted| serve_admission(ws, accepted.auth),
        )
        .await;
    reaper.abort();
    terminals.end_all();
    result
}

/// Runs an upgraded WebSocket as [`Terminals::admit`] decided: a viewer of
/// its session, or a close with the protocol's code.
pub async fn serve_admission<S>(mut ws: WebSocket<S>, admission: Admission)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match admission {
        Admission::Attach(session, role) => viewer::run(ws, session, role).await,
        Admission::Close(code, reason) => {
            let _ = ws
                .close(Some(CloseFrame::new(CloseCode(code), reason)))
                .await;
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
                while let Ok(Some(_)) = ws.recv().await {}
            })
            .await;
        }
    }
}
