//! The sessions of one server: creating them within limits, finding them,
//! ending them, reaping detached and exited ones, and deciding who may
//! attach to which (the one decision the standalone server, hyper and axum
//! upgrades all use).

use crate::auth::{credential, Auth, Credential, TicketError};
use crate::protocol::{close, Role};
use crate::session::{Session, SessionLimits, SpawnOptions};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wsx::server::HandshakeError;

/// Settings of a [`Terminals`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TermConfig {
    /// Screen, scrollback and output window of each session.
    pub limits: SessionLimits,
    /// Sessions at once (running or exited, until reaped).
    pub max_sessions: usize,
    /// Viewers per session.
    pub max_viewers: usize,
    /// A running session with no viewer for this long is ended.
    pub detached_ttl: Duration,
    /// An exited session is removed this long after it ended.
    pub exited_ttl: Duration,
    /// How long a ticket may wait to be used.
    pub ticket_ttl: Duration,
    /// SIGHUP first; SIGKILL this long after, if the program is still there.
    pub kill_grace: Duration,
    /// Where the programs inside reach the API (`http://host:port/prefix`):
    /// given to them as `WSX_TERM_STATE_URL`.
    pub api_base: Option<String>,
}

impl Default for TermConfig {
    fn default() -> Self {
        TermConfig {
            limits: SessionLimits::default(),
            max_sessions: 32,
            max_viewers: 16,
            detached_ttl: Duration::from_secs(3600),
            exited_ttl: Duration::from_secs(300),
            ticket_ttl: Duration::from_secs(30),
            kill_grace: Duration::from_secs(2),
            api_base: None,
        }
    }
}

macro_rules! setters {
    ($($field:ident: $ty:ty),* $(,)?) => {
        impl TermConfig {
            $(
                #[doc = concat!("Sets `", stringify!($field), "`.")]
                pub fn $field(mut self, value: $ty) -> Self {
                    self.$field = value;
                    self
                }
            )*
        }
    };
}

setters!(
    limits: SessionLimits,
    max_sessions: usize,
    max_viewers: usize,
    detached_ttl: Duration,
    exited_ttl: Duration,
    ticket_ttl: Duration,
    kill_grace: Duration,
    api_base: Option<String>,
);

/// Why a session could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// `max_sessions` are open.
    #[error("{0} sessions are open (the limit); end one (DELETE /api/sessions/ID) or raise max_sessions")]
    TooMany(usize),
    /// The PTY or the program could not be started.
    #[error("{0}")]
    Spawn(std::io::Error),
}

/// What an upgrade to `/api/ws/sessions/{id}` may do.
#[derive(Debug)]
pub enum Admission {
    /// Attach to this session in this role.
    Attach(Arc<Session>, Role),
    /// Accept, then close with this code and reason (a browser can read a
    /// close code, not an HTTP status).
    Close(u16, String),
}

/// The sessions of a server, and who may use them.
#[derive(Debug)]
pub struct Terminals {
    config: TermConfig,
    auth: Auth,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
}

impl Terminals {
    /// With `config`, and `token` as the access token.
    pub fn new(config: TermConfig, token: String) -> Arc<Terminals> {
        Arc::new(Terminals {
            config,
            auth: Auth::new(token),
            sessions: Mutex::default(),
        })
    }

    /// The settings.
    pub fn config(&self) -> &TermConfig {
        &self.config
    }

    /// The access token and tickets.
    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Session>>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a session.
    pub fn create(&self, opts: &SpawnOptions) -> Result<Arc<Session>, CreateError> {
        let mut sessions = self.map();
        if sessions.len() >= self.config.max_sessions {
            return Err(CreateError::TooMany(self.config.max_sessions));
        }
        let id = crate::auth::random_secret()[..12].to_string();
        let state_token = crate::auth::random_secret();
        let mut env = vec![
            ("WSX_TERM_SESSION".to_string(), id.clone()),
            ("WSX_TERM_STATE_TOKEN".to_string(), state_token.clone()),
        ];
        if let Some(base) = &self.config.api_base {
            env.push((
                "WSX_TERM_STATE_URL".to_string(),
                format!("{}/api/sessions/{id}/state", base.trim_end_matches('/')),
            ));
        }
        let session = Session::spawn(id.clone(), opts, &self.config.limits, state_token, &env)
            .map_err(CreateError::Spawn)?;
        tracing::info!(session = %id, pid = ?session.info().pid, command = ?opts.command, "session started");
        sessions.insert(id, session.clone());
        Ok(session)
    }

    /// The session with this id.
    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        self.map().get(id).cloned()
    }

    /// Every session, oldest first.
    pub fn list(&self) -> Vec<Arc<Session>> {
        let mut all: Vec<_> = self.map().values().cloned().collect();
        all.sort_by_key(|s| (s.info().created, s.id().to_string()));
        all
    }

    /// Ends a session's program and forgets the session; its viewers get
    /// the exit and a close.
    pub fn end(&self, id: &str) -> bool {
        let Some(session) = self.map().remove(id) else {
            return false;
        };
        session.terminate(self.config.kill_grace);
        true
    }

    /// Ends every session (the server is stopping).
    pub fn end_all(&self) {
        let all: Vec<_> = self.map().drain().map(|(_, s)| s).collect();
        for s in all {
            s.terminate(self.config.kill_grace);
        }
    }

    /// Removes exited sessions past `exited_ttl` and ends running ones
    /// detached past `detached_ttl`. Returns how many went.
    pub fn reap(&self) -> usize {
        let mut gone = Vec::new();
        let mut sessions = self.map();
        sessions.retain(|id, s| {
            let exited_long_ago = s
                .finished_for()
                .is_some_and(|t| t >= self.config.exited_ttl && s.viewers().is_empty());
            let abandoned = !s.is_finished()
                && s.detached_for()
                    .is_some_and(|t| t >= self.config.detached_ttl);
            if exited_long_ago || abandoned {
                tracing::info!(session = %id, abandoned, "session reaped");
                gone.push(s.clone());
                return false;
            }
            true
        });
        drop(sessions);
        for s in &gone {
            s.terminate(self.config.kill_grace);
        }
        gone.len()
    }

    /// Reaps every second until the returned task is aborted.
    pub fn spawn_reaper(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let Some(me) = me.upgrade() else { return };
                me.reap();
            }
        })
    }

    /// Who may attach: the access token (as a writer, or `?role=viewer`)
    /// or a ticket (its role). Missing or wrong credentials: 401 before
    /// the upgrade. An unknown session, a ticket for another session, or a
    /// full session: accepted, then closed with the protocol's code.
    pub fn admit(
        &self,
        session_id: &str,
        headers: &http::HeaderMap,
        query: Option<&str>,
    ) -> Result<Admission, HandshakeError> {
        let unauthorized = |why: &str| {
            HandshakeError::rejected(http::StatusCode::UNAUTHORIZED, format!("{why}\n"))
        };
        let role = match credential(headers, query) {
            Credential::Token(t) if self.auth.is_token(t) => {
                match crate::auth::query_param(query, "role") {
                    None => Role::Writer,
                    Some(r) => Role::parse(r).ok_or_else(|| {
                        HandshakeError::rejected(
                            http::StatusCode::BAD_REQUEST,
                            format!("role {r:?}: expected writer or viewer\n"),
                        )
                    })?,
                }
            }
            Credential::Token(_) => {
                return Err(unauthorized("wrong access token (the one wsx term printed at start, or --token)"))
            }
            Credential::Ticket(t) => match self.auth.redeem(t, session_id) {
                Ok(role) => role,
                Err(TicketError::Invalid) => {
                    return Err(unauthorized("ticket unknown, already used, or expired (tickets work once, within their lifetime)"))
                }
                Err(TicketError::OtherSession) => {
                    return Ok(Admission::Close(
                        close::FORBIDDEN,
                        "this ticket is for another session".into(),
                    ))
                }
            },
            Credential::None => {
                return Err(unauthorized("an access token is required: Authorization: Bearer TOKEN, the page's cookie, or ?token= (or a ticket: ?ticket=)"))
            }
        };
        let Some(session) = self.get(session_id) else {
            return Ok(Admission::Close(
                close::NO_SUCH_SESSION,
                format!("no session {session_id}"),
            ));
        };
        if session.viewers().len() >= self.config.max_viewers {
            return Ok(Admission::Close(
                close::TOO_MANY_VIEWERS,
                format!("{} viewers attached (the limit)", self.config.max_viewers),
            ));
        }
        Ok(Admission::Attach(session, role))
    }
}

/// The session id of a `/api/ws/sessions/{id}` path (under any prefix).
pub fn session_in_path(path: &str) -> Option<&str> {
    let (_, rest) = path.rsplit_once("/api/ws/sessions/")?;
    (!rest.is_empty() && !rest.contains('/')).then_some(rest)
}
