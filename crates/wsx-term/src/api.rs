//! The HTTP side: the page, its assets, the REST API and the WebSocket
//! route, as an axum `Router` (nest it under any prefix: the page uses
//! relative URLs, so it also works behind a reverse proxy's sub-path).
//!
//! | route | what |
//! | --- | --- |
//! | `GET /` | the page (token, cookie or live ticket required; `?token=` sets the cookie) |
//! | `GET /assets/{file}` | xterm.js, its CSS and fit addon, the page's script |
//! | `GET /api/sessions` | every session and its state |
//! | `POST /api/sessions` | a new session (`command`, `cols`, `rows`, `env`, `cwd`) |
//! | `GET /api/sessions/{id}` | one session, with its screen as text |
//! | `DELETE /api/sessions/{id}` | end it (SIGHUP, then SIGKILL) |
//! | `POST /api/sessions/{id}/tickets` | a single-use viewer link (`{"role":"viewer"}`) |
//! | `POST /api/sessions/{id}/state` | state from the program (its own token) |
//! | `GET /api/ws/sessions/{id}` | the WebSocket (`wsx.term.v1`) |

use crate::auth::{credential, query_param, Credential, COOKIE};
use crate::protocol::{Role, SUBPROTOCOL};
use crate::session::SpawnOptions;
use crate::terminals::{Admission, CreateError, Terminals};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::sync::Arc;
use wsx::server::{Accept, HandshakeError, OriginPolicy, Upgrade};

/// Request bodies of the API are small JSON objects.
const MAX_BODY: usize = 64 << 10;

type Shared = State<Arc<Terminals>>;

/// The routes of a terminal server (see the module docs).
pub fn router(terminals: Arc<Terminals>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/assets/{file}", get(asset))
        .route("/api/sessions", get(list).post(create))
        .route("/api/sessions/{id}", get(show).delete(end))
        .route("/api/sessions/{id}/tickets", post(ticket))
        .route("/api/sessions/{id}/state", post(push_state))
        .route("/api/ws/sessions/{id}", get(websocket))
        .with_state(terminals)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = serde_json::json!({ "error": message.into() });
    (status, Json(body)).into_response()
}

/// The access token from any of its places; refuses a state-changing
/// request from another site (a page elsewhere cannot use the cookie).
#[allow(clippy::result_large_err)] // a Response, built only on refusal
fn authorize(
    t: &Terminals,
    method: &Method,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<(), Response> {
    match credential(headers, uri.query()) {
        Credential::Token(tok) if t.auth().is_token(tok) => {}
        Credential::Token(_) => return Err(error(StatusCode::UNAUTHORIZED, "wrong access token")),
        _ => {
            return Err(error(
                StatusCode::UNAUTHORIZED,
                "an access token is required: Authorization: Bearer TOKEN (printed by wsx term at start)",
            ))
        }
    }
    if method != Method::GET && method != Method::HEAD {
        let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        if let Err(e) = OriginPolicy::same_origin().check(origin, host) {
            return Err(error(StatusCode::FORBIDDEN, e.to_string()));
        }
    }
    Ok(())
}

async fn page(State(t): Shared, headers: HeaderMap, uri: Uri) -> Response {
    let query = uri.query();
    if let Some(tok) = query_param(query, "token") {
        if !t.auth().is_token(tok) {
            return (StatusCode::UNAUTHORIZED, "wrong access token\n").into_response();
        }
        // The token goes into a cookie, and out of the address bar (and
        // out of the history and any Referer).
        let rest: Vec<&str> = query
            .unwrap_or("")
            .split('&')
            .filter(|kv| !kv.starts_with("token=") && !kv.is_empty())
            .collect();
        let location = if rest.is_empty() {
            "./".to_string()
        } else {
            format!("./?{}", rest.join("&"))
        };
        let cookie = format!("{COOKIE}={tok}; HttpOnly; SameSite=Strict; Path=/");
        return Response::builder()
            .status(StatusCode::SEE_OTHER)
            .header(header::LOCATION, location)
            .header(header::SET_COOKIE, cookie)
            .body(axum::body::Body::empty())
            .expect("valid response");
    }
    let allowed = match credential(&headers, query) {
        Credential::Token(tok) => t.auth().is_token(tok),
        Credential::Ticket(ticket) => t.auth().ticket_is_live(ticket),
        Credential::None => false,
    };
    if !allowed {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "This terminal needs its access token: open the address wsx term printed at start (it ends in ?token=...).\n",
        )
            .into_response();
    }
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        crate::assets::INDEX_HTML,
    )
        .into_response()
}

async fn asset(Path(file): Path<String>) -> Response {
    match crate::assets::get(&file) {
        Some((body, content_type)) => (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, "max-age=3600"),
            ],
            body,
        )
            .into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no asset {file}")),
    }
}

async fn list(State(t): Shared, method: Method, headers: HeaderMap, uri: Uri) -> Response {
    if let Err(r) = authorize(&t, &method, &headers, &uri) {
        return r;
    }
    let all: Vec<_> = t.list().iter().map(|s| s.info()).collect();
    Json(all).into_response()
}

fn urls(id: &str) -> serde_json::Value {
    serde_json::json!({
        "page": format!("./?session={id}"),
        "websocket": format!("api/ws/sessions/{id}"),
        "state": format!("api/sessions/{id}/state"),
    })
}

async fn create(
    State(t): Shared,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    if let Err(r) = authorize(&t, &method, &headers, &uri) {
        return r;
    }
    if body.len() > MAX_BODY {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body over {MAX_BODY} bytes"),
        );
    }
    let opts: SpawnOptions = if body.iter().all(u8::is_ascii_whitespace) {
        SpawnOptions::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(o) => o,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("body: {e} (expected {{\"command\":[...],\"cols\":N,\"rows\":N,\"env\":{{}},\"cwd\":\"...\"}})"),
                )
            }
        }
    };
    match t.create(&opts) {
        Ok(s) => {
            let mut body = serde_json::to_value(s.info()).expect("serializes");
            body["urls"] = urls(s.id());
            (StatusCode::CREATED, Json(body)).into_response()
        }
        Err(e @ CreateError::TooMany(_)) => error(StatusCode::TOO_MANY_REQUESTS, e.to_string()),
        Err(CreateError::Spawn(e)) => error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

async fn show(
    State(t): Shared,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if let Err(r) = authorize(&t, &method, &headers, &uri) {
        return r;
    }
    match t.get(&id) {
        Some(s) => {
            let mut body = serde_json::to_value(s.info()).expect("serializes");
            body["urls"] = urls(&id);
            body["screen"] = s.screen_text().into();
            let viewers: Vec<_> = s
                .viewers()
                .into_iter()
                .map(|(v, role)| serde_json::json!({ "viewer": v, "role": role }))
                .collect();
            body["viewer_list"] = viewers.into();
            Json(body).into_response()
        }
        None => error(StatusCode::NOT_FOUND, format!("no session {id}")),
    }
}

async fn end(
    State(t): Shared,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if let Err(r) = authorize(&t, &method, &headers, &uri) {
        return r;
    }
    if t.end(&id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(StatusCode::NOT_FOUND, format!("no session {id}"))
    }
}

#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct TicketRequest {
    role: Option<Role>,
}

async fn ticket(
    State(t): Shared,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    if let Err(r) = authorize(&t, &method, &headers, &uri) {
        return r;
    }
    if t.get(&id).is_none() {
        return error(StatusCode::NOT_FOUND, format!("no session {id}"));
    }
    let req: TicketRequest = if body.iter().all(u8::is_ascii_whitespace) {
        TicketRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("body: {e} (expected {{\"role\":\"viewer\"|\"writer\"}})"),
                )
            }
        }
    };
    let role = req.role.unwrap_or(Role::Viewer);
    let ttl = t.config().ticket_ttl;
    let ticket = t.auth().issue_ticket(&id, role, ttl);
    Json(serde_json::json!({
        "ticket": ticket,
        "role": role,
        "expires_in": ttl.as_secs(),
        "page": format!("./?session={id}&ticket={ticket}"),
        "websocket": format!("api/ws/sessions/{id}?ticket={ticket}"),
    }))
    .into_response()
}

async fn push_state(
    State(t): Shared,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(session) = t.get(&id) else {
        return error(StatusCode::NOT_FOUND, format!("no session {id}"));
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(tok) if crate::auth::same_secret(tok.trim(), session.state_token()) => {}
        _ => return error(
            StatusCode::UNAUTHORIZED,
            "the session's state token is required: Authorization: Bearer $WSX_TERM_STATE_TOKEN",
        ),
    }
    if body.len() > MAX_BODY {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("state over {MAX_BODY} bytes"),
        );
    }
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(state) => {
            let seq = session.push_state(state);
            Json(serde_json::json!({ "seq": seq })).into_response()
        }
        Err(e) => error(StatusCode::BAD_REQUEST, format!("state is not JSON: {e}")),
    }
}

/// The WebSocket route for applications that serve this router with axum
/// (the standalone `wsx term` server decides upgrades before routing, with
/// the same [`Terminals::admit`]).
async fn websocket(
    State(t): Shared,
    Path(id): Path<String>,
    upgrade: wsx::axum::WebSocketUpgrade,
) -> Response {
    let up = upgrade.upgrade();
    let admission = match t.admit(&id, up.headers(), up.query()) {
        Ok(a) => a,
        Err(e) => return wsx::server::handshake_error_response(&e).map(axum::body::Body::new),
    };
    let protocol = up.select_protocol(&[SUBPROTOCOL]).map(str::to_string);
    upgrade.on_upgrade_with(
        move |_| {
            Ok(Accept {
                protocol,
                ..Accept::default()
            })
        },
        move |ws| crate::serve_admission(ws, admission),
    )
}

/// For [`wsx::Server::serve_with`]: the admission of an upgrade to
/// `/api/ws/sessions/{id}` (any other path: 404).
pub fn admit_upgrade(t: &Terminals, up: &Upgrade) -> Result<Admission, HandshakeError> {
    let Some(id) = crate::terminals::session_in_path(up.path()) else {
        return Err(HandshakeError::rejected(
            StatusCode::NOT_FOUND,
            format!(
                "no WebSocket at {}: terminals are at /api/ws/sessions/ID\n",
                up.path()
            ),
        ));
    };
    t.admit(id, up.headers(), up.query())
}
