//! permessage-deflate over loopback: negotiation through the real handshake,
//! compressed frames on the wire, RFC 7692 examples from a raw peer, and
//! bombs.

mod common;

use common::*;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use wsx::wsx_proto::deflate::DeflateConfig;
use wsx::{
    client::{ClientConfig, ClientRequest},
    Message, Server, ServerConfig,
};

async fn echo_server(config: ServerConfig) -> SocketAddr {
    let server = Server::bind("127.0.0.1:0")
        .await
        .unwrap()
        .with_config(config);
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(|mut ws, _| async move {
        while let Ok(Some(msg)) = ws.recv().await {
            if matches!(msg, Message::Text(_) | Message::Binary(_)) && ws.send(msg).await.is_err() {
                break;
            }
        }
    }));
    addr
}

fn json_like(n: usize) -> String {
    (0..n)
        .map(|i| format!("{{\"id\":{i},\"name\":\"user{i}\",\"active\":true}},"))
        .collect()
}

#[tokio::test]
async fn wsx_client_and_server_negotiate_and_round_trip() {
    let addr = echo_server(ServerConfig::default()).await;
    let (mut ws, hs) = wsx::client::connect_with(
        &ClientRequest::new(&format!("ws://{addr}/")).unwrap(),
        &ClientConfig::default(),
    )
    .await
    .unwrap();
    let n = ws.deflate().expect("negotiated");
    assert_eq!(n.params.server_max_window_bits, 15);
    assert_eq!(hs.extensions.len(), 1);
    assert_eq!(hs.extensions[0].name, "permessage-deflate");
    for msg in [
        Message::text(json_like(2000)),
        Message::text("tiny"),
        Message::binary(vec![7u8; 100_000]),
        Message::text(json_like(3)),
        Message::text(""),
        Message::text("κόσμε ".repeat(1000)),
    ] {
        ws.send(msg.clone()).await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), Some(msg));
    }
    ws.close(None).await.unwrap();
    while ws.recv().await.unwrap().is_some() {}
}

#[tokio::test]
async fn compression_off_on_either_side_means_plain_frames() {
    for (server_deflate, client_deflate) in [
        (None, Some(DeflateConfig::default())),
        (Some(DeflateConfig::default()), None),
    ] {
        let addr = echo_server(ServerConfig::default().deflate(server_deflate)).await;
        let (mut ws, hs) = wsx::client::connect_with(
            &ClientRequest::new(&format!("ws://{addr}/")).unwrap(),
            &ClientConfig::default().deflate(client_deflate),
        )
        .await
        .unwrap();
        assert!(ws.deflate().is_none());
        assert!(hs.extensions.is_empty());
        let m = Message::text(json_like(100));
        ws.send(m.clone()).await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), Some(m));
    }
}

/// Raw handshake offering `offer`; returns the socket and the response head.
async fn raw_ws(addr: SocketAddr, offer: &str) -> (TcpStream, String) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: {offer}\r\n\r\n"
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let head = read_head(&mut tcp).await.unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    (tcp, head)
}

/// A masked frame with RSV1 set when `compressed`.
fn zframe(opcode: u8, fin: bool, compressed: bool, payload: &[u8]) -> Vec<u8> {
    let mut f = frame(opcode, fin, payload, Some(KEY));
    if compressed {
        f[0] |= 0x40;
    }
    f
}

#[tokio::test]
async fn rfc7692_frames_from_a_raw_client_are_inflated() {
    let addr = echo_server(ServerConfig::default()).await;
    let (mut tcp, head) = raw_ws(addr, "permessage-deflate; client_max_window_bits").await;
    assert_eq!(
        header(&head, "Sec-WebSocket-Extensions"),
        Some("permessage-deflate")
    );
    let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    // §7.2.3.1, then §7.2.3.2 (the shared window), then fragmented (§7.2.3.1
    // split in two: RSV1 only on the first frame).
    tcp.write_all(&zframe(OP_TEXT, true, true, &hello))
        .await
        .unwrap();
    tcp.write_all(&zframe(
        OP_TEXT,
        true,
        true,
        &[0xf2, 0x00, 0x11, 0x00, 0x00],
    ))
    .await
    .unwrap();
    // A new "Hello" in the shared window: first frame compressed, continuation not marked.
    tcp.write_all(&zframe(OP_TEXT, false, true, &[0xf2, 0x00]))
        .await
        .unwrap();
    tcp.write_all(&zframe(OP_CONT, true, false, &[0x11, 0x00, 0x00]))
        .await
        .unwrap();
    for _ in 0..3 {
        let f = read_frame(&mut tcp).await.unwrap();
        // "Hello" is below the server's 64-byte threshold: echoed plain.
        assert_eq!(
            (f.opcode, f.rsv, &f.payload[..]),
            (OP_TEXT, 0, &b"Hello"[..])
        );
    }
    // A long message comes back compressed (RSV1) and inflates to the original.
    let long = json_like(50);
    let mut c = flate2::Compress::new(flate2::Compression::default(), false);
    let mut z = Vec::with_capacity(long.len() + 64);
    c.compress_vec(long.as_bytes(), &mut z, flate2::FlushCompress::Sync)
        .unwrap();
    z.truncate(z.len() - 4);
    // A fresh connection: the raw client's compressor is new.
    let (mut tcp, _) = raw_ws(addr, "permessage-deflate").await;
    tcp.write_all(&zframe(OP_TEXT, true, true, &z))
        .await
        .unwrap();
    let f = read_frame(&mut tcp).await.unwrap();
    assert_eq!(f.rsv, 0x40, "compressed echo (RSV1)");
    assert!(
        f.payload.len() < long.len() / 3,
        "{} bytes",
        f.payload.len()
    );
    let mut d = flate2::Decompress::new(false);
    let mut out = Vec::with_capacity(long.len() + 16);
    let mut input = f.payload.clone();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    d.decompress_vec(&input, &mut out, flate2::FlushDecompress::Sync)
        .unwrap();
    assert_eq!(out, long.as_bytes());
}

#[tokio::test]
async fn rsv1_without_negotiation_and_on_control_frames_is_1002() {
    let addr = echo_server(ServerConfig::default()).await;
    // Not negotiated: RSV1 is a reserved bit.
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(REQUEST).await.unwrap();
    read_head(&mut tcp).await.unwrap();
    tcp.write_all(&zframe(
        OP_TEXT,
        true,
        true,
        &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
    ))
    .await
    .unwrap();
    assert_eq!(read_frame(&mut tcp).await.unwrap().close_code(), Some(1002));
    // Negotiated, but on a ping and on a continuation.
    let (mut tcp, _) = raw_ws(addr, "permessage-deflate").await;
    tcp.write_all(&zframe(OP_PING, true, true, b""))
        .await
        .unwrap();
    assert_eq!(read_frame(&mut tcp).await.unwrap().close_code(), Some(1002));
    let (mut tcp, _) = raw_ws(addr, "permessage-deflate").await;
    tcp.write_all(&zframe(OP_TEXT, false, false, b"a"))
        .await
        .unwrap();
    tcp.write_all(&zframe(OP_CONT, true, true, b"b"))
        .await
        .unwrap();
    assert_eq!(read_frame(&mut tcp).await.unwrap().close_code(), Some(1002));
    // Corrupt deflate data: 1007.
    let (mut tcp, _) = raw_ws(addr, "permessage-deflate").await;
    tcp.write_all(&zframe(OP_BINARY, true, true, &[0xff, 0xff, 0xff]))
        .await
        .unwrap();
    assert_eq!(read_frame(&mut tcp).await.unwrap().close_code(), Some(1007));
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A deflate bomb: 1 GiB of zeros in about 1 MB of compressed frames. The
/// server closes with 1009 as soon as the inflated size passes its limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deflate_bomb_is_closed_with_1009_and_bounded_memory() {
    let addr = echo_server(
        ServerConfig::default().limits(
            wsx::Config::builder()
                .max_message_size(1 << 20)
                .max_frame_size(1 << 20)
                .build()
                .unwrap(),
        ),
    )
    .await;
    // 1 GiB of zeros, sync-flushed every 16 MiB: one compressed message
    // in frames of at most 1 MiB.
    let mut c = flate2::Compress::new(flate2::Compression::best(), false);
    let zeros = vec![0u8; 16 << 20];
    let mut z = Vec::new();
    for _ in 0..64 {
        let mut part = Vec::with_capacity(64 << 10);
        c.compress_vec(&zeros, &mut part, flate2::FlushCompress::Sync)
            .unwrap();
        z.extend_from_slice(&part);
    }
    z.truncate(z.len() - 4);
    eprintln!("bomb: 1 GiB of zeros in {} bytes", z.len());
    assert!(z.len() < 2 << 20);
    let base = rss_kib();
    let (mut tcp, _) = raw_ws(addr, "permessage-deflate").await;
    let chunks: Vec<&[u8]> = z.chunks(256 << 10).collect();
    let mut wire = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let op = if i == 0 { OP_BINARY } else { OP_CONT };
        wire.extend(zframe(op, i + 1 == chunks.len(), i == 0, chunk));
    }
    let t0 = std::time::Instant::now();
    let _ = tcp.write_all(&wire).await; // the server may close mid-write
    let close = tokio::time::timeout(Duration::from_secs(10), read_frame(&mut tcp))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(close.close_code(), Some(1009), "{close:?}");
    let growth = rss_kib().saturating_sub(base);
    eprintln!(
        "bomb refused in {:?}; RSS growth {} KiB",
        t0.elapsed(),
        growth
    );
    assert!(growth < 32 << 10, "RSS grew by {growth} KiB");
}
