//! An axum app with a page at `/` and an echo WebSocket at `/ws`, served by
//! `axum::serve`; wsx does the upgrade (`wsx::axum::WebSocketUpgrade`,
//! feature `axum`).
//!
//! ```text
//! cargo run -p wsx --features axum --example axum_app -- [ADDR]   (default 127.0.0.1:9001)
//! ```
//! Then open http://127.0.0.1:9001/, or `wsx connect ws://127.0.0.1:9001/ws`.

use axum::response::{Html, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;
use wsx::axum::WebSocketUpgrade;
use wsx::Message;

/// A page that opens the WebSocket and shows what comes back.
async fn index() -> Html<&'static str> {
    Html(
        r#"<!doctype html>
<meta charset="utf-8"><title>wsx + axum</title>
<pre id="log"></pre>
<script>
  const log = (line) => { document.getElementById("log").textContent += line + "\n"; };
  const ws = new WebSocket(`ws://${location.host}/ws`);
  ws.onopen = () => ws.send("hello from the browser");
  ws.onmessage = (e) => log(`echo: ${e.data}`);
  ws.onclose = (e) => log(`closed (${e.code})`);
</script>
"#,
    )
}

/// The extractor checks the handshake (a request that is not a valid
/// upgrade gets 400 saying what is missing); `on_upgrade` checks the Origin
/// (403 for a foreign site), answers 101 and runs the closure in a task of
/// its own with the WebSocket.
async fn ws(upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(|mut ws| async move {
        while let Ok(Some(msg)) = ws.recv().await {
            if let Message::Text(_) | Message::Binary(_) = msg {
                if ws.send(msg).await.is_err() {
                    break;
                }
            }
        }
    })
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:9001".into());
    // http2_websockets: browsers on HTTP/2 open WebSockets as extended
    // CONNECTs, which a bare get() route would answer with 405.
    let app =
        wsx::axum::http2_websockets(Router::new().route("/", get(index)).route("/ws", get(ws)));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}/", listener.local_addr()?);
    // Small WebSocket messages should leave at once, not wait for Nagle.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await
}
