//! The wsx client in `scripts/interop`: sends a suite of text and binary
//! messages to an echo server (Python `websockets`, Node `ws`), checks every
//! echo byte for byte and that permessage-deflate was negotiated, and prints
//! one JSON report line.
//!
//! ```text
//! interop_client URL SUITE
//! ```
//!
//! SUITE (written by `interop/messages.py suite FILE`) is a sequence of
//! records: one kind byte (`t` text, `b` binary), a 4-byte big-endian
//! length, the payload. Messages are sent pipelined while the echoes are
//! read (split halves), with the client's default configuration
//! (permessage-deflate offered). Exit status 1 on any mismatch.

use std::time::Duration;
use wsx::{ClientConfig, ClientRequest, Message};

fn parse_suite(data: &[u8]) -> Result<Vec<Message>, String> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        if rest.len() < 5 {
            return Err("truncated record header".into());
        }
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let payload = rest
            .get(5..5 + len)
            .ok_or("truncated record payload")?
            .to_vec();
        out.push(match rest[0] {
            b't' => Message::text(String::from_utf8(payload).map_err(|e| e.to_string())?),
            b'b' => Message::binary(payload),
            k => return Err(format!("unknown record kind {k}")),
        });
        rest = &rest[5 + len..];
    }
    Ok(out)
}

fn payload(m: &Message) -> (&'static str, &[u8]) {
    match m {
        Message::Text(t) => ("text", t.as_str().as_bytes()),
        Message::Binary(b) => ("binary", b),
        Message::Ping(b) => ("ping", b),
        Message::Pong(b) => ("pong", b),
    }
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(suite)) = (args.next(), args.next()) else {
        return Err("usage: interop_client URL SUITE".into());
    };
    let sent = parse_suite(&std::fs::read(&suite)?)?;
    let req = ClientRequest::new(&url)?;
    let (ws, hs) = wsx::connect_with(&req, &ClientConfig::default()).await?;
    let header: Vec<&str> = hs
        .response
        .headers()
        .get_all("sec-websocket-extensions")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let deflate = ws.deflate().map(|d| format!("{:?}", d.params));
    let (mut reader, mut writer) = ws.split();

    let to_send = sent.clone();
    let send = async move {
        for m in to_send {
            writer.feed(m).await?;
        }
        writer.flush().await?;
        Ok::<_, wsx::Error>(writer)
    };
    let count = sent.len();
    let recv = async move {
        let mut got = Vec::with_capacity(count);
        while got.len() < count {
            match reader.recv().await? {
                Some(m @ (Message::Text(_) | Message::Binary(_))) => got.push(m),
                Some(_) => {}
                None => break,
            }
        }
        Ok::<_, wsx::Error>((reader, got))
    };
    let (writer, (mut reader, got)) = tokio::time::timeout(Duration::from_secs(30), async {
        tokio::try_join!(send, recv)
    })
    .await
    .map_err(|_| "timed out waiting for the echoes")??;

    let mut errors = Vec::new();
    if got.len() != sent.len() {
        errors.push(format!("{} echoes for {} messages", got.len(), sent.len()));
    }
    for (k, (s, g)) in sent.iter().zip(&got).enumerate() {
        let ((sk, sb), (gk, gb)) = (payload(s), payload(g));
        if sk != gk {
            errors.push(format!("message {k}: sent {sk}, echo is {gk}"));
        } else if sb != gb {
            errors.push(format!(
                "message {k}: echo differs ({} bytes, sent {})",
                gb.len(),
                sb.len()
            ));
        }
    }
    // Close and wait for the server's close.
    let mut writer = writer;
    writer.close(None).await?;
    while reader.recv().await?.is_some() {}

    let ok = errors.is_empty() && deflate.is_some();
    let errors: Vec<String> = errors.iter().map(|e| json_str(e)).collect();
    println!(
        "{{\"ok\": {ok}, \"extensions\": {}, \"deflate\": {}, \"messages\": {}, \"payload\": {}, \"errors\": [{}]}}",
        json_str(&header.join(", ")),
        deflate.as_deref().map_or("null".to_string(), json_str),
        sent.len(),
        sent.iter().map(|m| m.len()).sum::<usize>(),
        errors.join(", ")
    );
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}
