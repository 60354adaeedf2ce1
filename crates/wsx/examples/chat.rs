//! A chat room: each text message goes to everyone connected, prefixed with
//! its sender's address.
//!
//! ```text
//! cargo run -p wsx --example chat -- [ADDR]             (default 127.0.0.1:9001)
//! ```
//! Then open http://127.0.0.1:9001/ in two browser tabs, or run
//! `wsx connect ws://127.0.0.1:9001/` in two terminals.
//!
//! [`wsx::broadcast::Broadcast`] encodes a message once and queues it for every
//! subscriber. Each queue is bounded: a client that stops reading is closed
//! with 1013 ("try again later") instead of slowing the room down or growing
//! memory (see `BroadcastConfig`).

use wsx::server::{full, HttpService};
use wsx::{broadcast::Broadcast, Message, Server};

/// The page served to plain HTTP requests: a minimal browser client.
const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8"><title>wsx chat</title>
<pre id="log"></pre>
<form id="form"><input id="text" autofocus autocomplete="off"> <button>send</button></form>
<script>
  const log = (line) => { document.getElementById("log").textContent += line + "\n"; };
  const ws = new WebSocket(`ws://${location.host}/`);
  ws.onmessage = (e) => log(e.data);
  ws.onclose = (e) => log(`* disconnected (${e.code})`);
  document.getElementById("form").onsubmit = (e) => {
    e.preventDefault();
    const text = document.getElementById("text");
    ws.send(text.value);
    text.value = "";
  };
</script>
"#;

#[tokio::main]
async fn main() -> Result<(), wsx::Error> {
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:9001".into());
    let room = Broadcast::default();

    // Requests that are not WebSocket upgrades get the page.
    let page = HttpService::from_fn(|_req| async {
        http::Response::builder()
            .header(http::header::CONTENT_TYPE, "text/html; charset=utf-8")
            .body(full(PAGE))
            .expect("a valid response")
    });
    let server = Server::bind(&addr).await?.with_http(page);
    println!("chat room on http://{}/", server.local_addr()?);

    server
        .serve(move |ws, peer| {
            let room = room.clone();
            async move {
                // The sending half joins the room; this task keeps the
                // receiving half (which also answers pings and sees the close).
                let (mut reader, writer) = ws.split();
                let subscription = room.subscribe(writer);
                let joined = format!("* {peer} joined ({} here)", room.subscribers());
                room.send(Message::text(joined)).await.ok();

                while let Ok(Some(msg)) = reader.recv().await {
                    if let Message::Text(text) = msg {
                        // To everyone, the sender included.
                        room.send(Message::text(format!("{peer}: {text}")))
                            .await
                            .ok();
                    }
                }

                // Leave the room, then tell the others.
                drop(subscription);
                room.send(Message::text(format!("* {peer} left")))
                    .await
                    .ok();
            }
        })
        .await
}
