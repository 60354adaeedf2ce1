//! By message (`--by-message`): the proxy ends the WebSocket on each side
//! (a server to the client, a client to the upstream, each negotiating its
//! own compression as that peer asks) and relays whole messages; lines are
//! per message. Fragmentation and control frames are each hop's own; the
//! frame-level faults (`--no-pong`, `--corrupt`) need frame for frame.

use crate::event::{Dir, FrameEvent};
use crate::relay::Shared;
use crate::ProxyConfig;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use wsx::client::{ClientConfig, ClientRequest};
use wsx::server::Accept;
use wsx::{CloseFrame, Message};

/// Headers the handshakes make themselves.
const OWN: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-extensions",
    "sec-websocket-protocol",
    "content-length",
];

fn event(shared: &Shared, dir: Dir, m: &Message) -> FrameEvent {
    let (op, text) = match m {
        Message::Text(_) => (wsx_proto::frame::OpCode::TEXT, true),
        Message::Binary(_) => (wsx_proto::frame::OpCode::BINARY, false),
        Message::Ping(_) => (wsx_proto::frame::OpCode::PING, false),
        Message::Pong(_) => (wsx_proto::frame::OpCode::PONG, false),
    };
    let payload = match m {
        Message::Text(t) => t.as_bytes().clone(),
        Message::Binary(b) | Message::Ping(b) | Message::Pong(b) => b.clone(),
    };
    let frame = wsx_proto::relay::RawFrame {
        header: wsx_proto::frame::FrameHeader {
            fin: true,
            rsv: 0,
            opcode: op,
            mask: None,
            payload_len: payload.len() as u64,
        },
        payload,
        wire_len: 0,
    };
    let mut e = FrameEvent::new(shared.conn, dir, shared.t(), &frame, text);
    if shared.record_payloads {
        e.set_payload(&frame);
    }
    e.masked = dir == Dir::Up;
    e
}

/// Runs one connection by message, from the client's request.
pub(crate) async fn run(
    incoming: wsx::server::Incoming<Box<dyn crate::relay::Io>>,
    config: &ProxyConfig,
    shared: &Arc<Shared>,
) -> Result<(), String> {
    let request = incoming.request();
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let scheme = if config.upstream.tls.is_some() {
        "wss"
    } else {
        "ws"
    };
    let url = format!(
        "{scheme}://{}{}",
        config.upstream.authority,
        config.upstream.path_for(&path)
    );
    let mut req = ClientRequest::new(&url).map_err(|e| format!("{url}: {e}"))?;
    for (name, value) in request.headers() {
        if OWN.contains(&name.as_str()) {
            continue;
        }
        if let Ok(v) = value.to_str() {
            req = req.header(name.as_str(), v).map_err(|e| e.to_string())?;
        }
    }
    let offered = |name: &str| {
        request
            .headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
    };
    for p in offered("sec-websocket-protocol") {
        req = req.protocol(p);
    }
    let client_wants_deflate = offered("sec-websocket-extensions")
        .iter()
        .any(|e| e.starts_with("permessage-deflate"));
    let mut client_config = ClientConfig::default();
    client_config.tls = config.upstream.tls.clone();
    if !client_wants_deflate {
        client_config.deflate = None;
    }
    let (upstream, done) = match wsx::client::connect_with(&req, &client_config).await {
        Ok(x) => x,
        Err(e) => {
            let why = format!("the upstream refused or failed: {e}");
            let _ = incoming
                .respond(
                    http::StatusCode::BAD_GATEWAY,
                    &[("Content-Type", "text/plain; charset=utf-8")],
                    format!("wsx proxy: {why}\n").as_bytes(),
                )
                .await;
            shared
                .conn_event("refused", format!("{path}: {why}"), None, None)
                .await;
            return Ok(());
        }
    };
    let protocol = done.protocol.clone();
    let selected = protocol.clone();
    let client = incoming
        .accept(move |_| {
            Ok(Accept {
                protocol: selected,
                ..Accept::default()
            })
        })
        .await
        .map_err(|e| format!("the client's handshake failed: {e}"))?;
    let exts = format!(
        "client side: {}; upstream side: {}",
        client.deflate().map_or("none", |d| d.response.as_str()),
        upstream.deflate().map_or("none", |d| d.response.as_str())
    );
    shared
        .conn_event("open", format!("{path} (by message)"), protocol, Some(exts))
        .await;

    let (mut c_r, mut c_w) = client.split();
    let (mut u_r, mut u_w) = upstream.split();
    let faults = shared.faults.clone();
    let up = {
        let shared = shared.clone();
        let faults = faults.clone();
        async move {
            loop {
                match c_r.recv().await {
                    Ok(Some(m)) => {
                        if !pass(&shared, &faults, Dir::Up, &m).await {
                            return (String::from("stopped by a fault"), None);
                        }
                        if matches!(m, Message::Ping(_) | Message::Pong(_)) {
                            continue; // each hop answers its own pings
                        }
                        if u_w.send(m).await.is_err() {
                            return ("the server's side failed".to_string(), None);
                        }
                        if let Some(why) = count(&shared, Dir::Up) {
                            return (why, None);
                        }
                    }
                    _ => {
                        let close = c_r.close_info().map(|c| (c.code, c.reason.clone()));
                        if let Some((code, reason)) = &close {
                            let _ = u_w
                                .close(Some(CloseFrame::new(*code, reason.clone())))
                                .await;
                        }
                        return ("the client closed".to_string(), close);
                    }
                }
            }
        }
    };
    let down = {
        let shared = shared.clone();
        async move {
            loop {
                match u_r.recv().await {
                    Ok(Some(m)) => {
                        if !pass(&shared, &faults, Dir::Down, &m).await {
                            return (String::from("stopped by a fault"), None);
                        }
                        if matches!(m, Message::Ping(_) | Message::Pong(_)) {
                            continue;
                        }
                        if c_w.send(m).await.is_err() {
                            return ("the client's side failed".to_string(), None);
                        }
                        if let Some(why) = count(&shared, Dir::Down) {
                            return (why, None);
                        }
                    }
                    _ => {
                        let close = u_r.close_info().map(|c| (c.code, c.reason.clone()));
                        if let Some((code, reason)) = &close {
                            let _ = c_w
                                .close(Some(CloseFrame::new(*code, reason.clone())))
                                .await;
                        }
                        return ("the server closed".to_string(), close);
                    }
                }
            }
        }
    };
    tokio::pin!(up, down);
    let (first, up_first) = tokio::select! {
        r = &mut up => (r.0, true),
        r = &mut down => (r.0, false),
    };
    // The other side's answer to a close, briefly.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        if up_first {
            let _ = (&mut down).await;
        } else {
            let _ = (&mut up).await;
        }
    })
    .await;
    shared.conn_event("end", first, None, None).await;
    Ok(())
}

/// Reports a message and applies the per-message faults; false: stop.
async fn pass(shared: &Shared, faults: &crate::faults::Faults, dir: Dir, m: &Message) -> bool {
    let mut e = shared.report.then(|| event(shared, dir, m));
    if let Some((d, t)) = faults.delay {
        if t.covers(dir) {
            tokio::time::sleep(d.base).await;
            if let Some(e) = e.as_mut() {
                e.fault = Some(format!("delayed {}ms", d.base.as_millis()));
            }
        }
    }
    if let Some(e) = e {
        let _ = shared.events.send(crate::Event::Frame(e)).await;
    }
    if let Some((rate, t)) = faults.throttle {
        if t.covers(dir) {
            tokio::time::sleep(Duration::from_secs_f64(m.len() as f64 / rate as f64)).await;
        }
    }
    !shared.stop.is_cancelled()
}

/// Counts a data message; a reason when a fault ends the connection now.
fn count(shared: &Shared, dir: Dir) -> Option<String> {
    let idx = usize::from(dir == Dir::Down);
    let m = shared.messages[idx].fetch_add(1, Ordering::Relaxed) + 1;
    let total =
        shared.messages[0].load(Ordering::Relaxed) + shared.messages[1].load(Ordering::Relaxed);
    if let Some((n, t)) = shared.faults.drop_after_messages {
        let c = if t == crate::faults::Target::Both {
            total
        } else {
            m
        };
        if t.covers(dir) && c >= n {
            shared.stop.cancel();
            return Some(format!(
                "dropped both connections after {n} messages (--drop-after)"
            ));
        }
    }
    None
}
