//! Plain HTTP of `wsx serve`, through the server core's hyper connection:
//! the test page, `/metrics`, `/presence?room=PATH` (with `--broadcast`),
//! and `--static` files (tower-http's `ServeDir`:
//! `Range`, `Last-Modified`/`If-Modified-Since`, `HEAD`), all compressed
//! when the client accepts it.

use super::metrics::Metrics;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::{header, StatusCode};
use std::path::PathBuf;
use std::sync::Arc;
use tower_http::compression::CompressionLayer;
use tower_http::services::ServeDir;

/// The router for requests that are not WebSocket upgrades.
pub fn router(
    static_dir: Option<PathBuf>,
    metrics: Arc<Metrics>,
    server: wsx::server::ServerHandle,
    fanout: Option<wsx_fanout::Fanout>,
) -> Router {
    let metrics_route = get(move || {
        let body = metrics.render(&server);
        async move {
            (
                [(
                    header::CONTENT_TYPE,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )],
                body,
            )
        }
    });
    let mut router = Router::new().route("/metrics", metrics_route);
    if let Some(fanout) = fanout {
        router = router.route(
            "/presence",
            get(move |q: axum::extract::Query<PresenceQuery>| presence(fanout.clone(), q.0.room)),
        );
    }
    let router = match static_dir {
        // Files first; the test page at / when the directory has no index.
        Some(dir) => router.fallback_service(
            ServeDir::new(dir)
                .append_index_html_on_directories(true)
                .fallback(get(page_or_404)),
        ),
        None => router
            .route("/", get(page))
            .route("/index.html", get(page))
            .fallback(not_a_page),
    };
    router.layer(CompressionLayer::new())
}

#[derive(serde::Deserialize)]
struct PresenceQuery {
    room: String,
}

/// Who is in a room, on every node: `{"room","count","members":[{"node","member","name"}]}`.
async fn presence(fanout: wsx_fanout::Fanout, room: String) -> Response {
    match fanout.presence(&room).await {
        Ok(members) => axum::Json(serde_json::json!({
            "room": room,
            "count": members.len(),
            "members": members,
        }))
        .into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    }
}

async fn page() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response()
}

async fn page_or_404(uri: http::Uri) -> Response {
    if uri.path() == "/" || uri.path() == "/index.html" {
        return page().await;
    }
    (
        StatusCode::NOT_FOUND,
        format!("{}: no such file\n", uri.path()),
    )
        .into_response()
}

/// A page request on an endpoint that only speaks WebSocket: 426, saying so.
async fn not_a_page(uri: http::Uri) -> Response {
    let path = uri.path();
    (
        StatusCode::UPGRADE_REQUIRED,
        [
            (header::UPGRADE, "websocket"),
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
        ],
        format!(
            "{path} is a WebSocket endpoint: connect with a WebSocket client, e.g. `wsx connect ws://HOST{path}`\n"
        ),
    )
        .into_response()
}

/// The test page at `/`: connects back to the server and shows the exchange.
const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>wsx</title>
<style>
 body{font:15px system-ui,sans-serif;max-width:46em;margin:2em auto;padding:0 1em}
 #log{border:1px solid #ccc;border-radius:6px;height:20em;overflow:auto;padding:.5em;font-family:ui-monospace,monospace;white-space:pre-wrap}
 .out{color:#05a}.in{color:#070}.sys{color:#888}
 form{display:flex;gap:.5em;margin-top:.5em} input{flex:1;padding:.4em}
</style></head><body>
<h1>wsx</h1>
<p>This page talks to the server over WebSocket at <code id="url"></code>.</p>
<div id="log"></div>
<form id="f"><input id="msg" autocomplete="off" placeholder="type a message, press Enter" autofocus><button>Send</button></form>
<script>
const log = document.getElementById('log');
function line(cls, text){const d=document.createElement('div');d.className=cls;d.textContent=text;log.appendChild(d);log.scrollTop=log.scrollHeight;}
const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/';
document.getElementById('url').textContent = url;
let ws;
function connect(){
  ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  ws.onopen = () => line('sys', 'connected' + (ws.extensions ? ' (' + ws.extensions + ')' : ''));
  ws.onmessage = e => line('in', '< ' + (typeof e.data === 'string' ? e.data : '[binary ' + e.data.byteLength + ' bytes]'));
  ws.onclose = e => { line('sys', 'closed: ' + e.code + (e.reason ? ' ' + e.reason : '') + '; reconnecting in 2 s'); setTimeout(connect, 2000); };
}
connect();
document.getElementById('f').onsubmit = ev => {
  ev.preventDefault();
  const m = document.getElementById('msg');
  if (ws.readyState === 1 && m.value) { ws.send(m.value); line('out', '> ' + m.value); m.value = ''; }
};
</script></body></html>
"#;
