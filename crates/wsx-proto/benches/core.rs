//! Micro-benchmarks of the protocol core: frame headers, masking, UTF-8,
//! handshake parsing, and the full receive and send paths.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Instant;
use wsx_proto::frame::{FrameHeader, OpCode};
use wsx_proto::handshake::{ServerHandshake, Upgrade};
use wsx_proto::mask::{apply_mask, apply_mask_scalar};
use wsx_proto::utf8::Utf8Validator;
use wsx_proto::{Config, Connection, Event, Message, PreparedMessage};

const SIZES: [usize; 5] = [16, 125, 1024, 64 * 1024, 1 << 20];

fn headers(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame_header");
    for (name, len) in [("7bit", 20u64), ("16bit", 1024), ("64bit", 1 << 20)] {
        let h = FrameHeader {
            fin: true,
            rsv: 0,
            opcode: OpCode::BINARY,
            mask: Some([1, 2, 3, 4]),
            payload_len: len,
        };
        let mut buf = [0u8; FrameHeader::MAX_LEN];
        let n = h.encode(&mut buf);
        g.bench_function(BenchmarkId::new("decode", name), |b| {
            b.iter(|| FrameHeader::decode(black_box(&buf[..n])))
        });
        g.bench_function(BenchmarkId::new("encode", name), |b| {
            let mut out = [0u8; FrameHeader::MAX_LEN];
            b.iter(|| black_box(&h).encode(&mut out))
        });
    }
    g.finish();
}

fn masking(c: &mut Criterion) {
    let mut g = c.benchmark_group("mask");
    for size in SIZES {
        let mut data = vec![0x5au8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("wsx", size), &size, |b, _| {
            b.iter(|| apply_mask(black_box(&mut data), [1, 2, 3, 4], 0))
        });
        g.bench_with_input(BenchmarkId::new("plain_loop", size), &size, |b, _| {
            b.iter(|| apply_mask_scalar(black_box(&mut data), [1, 2, 3, 4], 0))
        });
    }
    g.finish();
}

fn utf8(c: &mut Criterion) {
    let mut g = c.benchmark_group("utf8");
    let sample = "WebSocket ist ein Protokoll — κόσμε — 🚀 ".repeat(1 << 15);
    for size in [16usize, 1024, 64 * 1024, 1 << 20] {
        let mut end = size.min(sample.len());
        while !sample.is_char_boundary(end) {
            end -= 1;
        }
        let data = &sample.as_bytes()[..end];
        g.throughput(Throughput::Bytes(data.len() as u64));
        g.bench_with_input(BenchmarkId::new("wsx_incremental", size), data, |b, d| {
            b.iter(|| {
                let mut v = Utf8Validator::default();
                v.feed(black_box(d)).unwrap();
                v.finish().unwrap()
            })
        });
        g.bench_with_input(BenchmarkId::new("std", size), data, |b, d| {
            b.iter(|| std::str::from_utf8(black_box(d)).unwrap().len())
        });
        g.bench_with_input(BenchmarkId::new("simdutf8", size), data, |b, d| {
            b.iter(|| simdutf8::basic::from_utf8(black_box(d)).unwrap().len())
        });
    }
    g.finish();
}

fn handshake(c: &mut Criterion) {
    let req = b"GET /chat?room=1 HTTP/1.1\r\nHost: server.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\nAccept: */*\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\nSec-WebSocket-Version: 13\r\n\r\n";
    c.bench_function("handshake/server_parse_validate_accept", |b| {
        b.iter(|| {
            let (r, _) = ServerHandshake::new()
                .handle_data(black_box(req))
                .unwrap()
                .unwrap();
            Upgrade::new(r)
                .unwrap()
                .accept(&Default::default())
                .unwrap()
        })
    });
}

/// Masked client frames in, events out: the server's whole receive path.
fn receive(c: &mut Criterion) {
    let mut g = c.benchmark_group("receive");
    for (size, text) in [
        (20usize, false),
        (1024, false),
        (1024, true),
        (64 * 1024, false),
    ] {
        let now = Instant::now();
        let mut client = Connection::client(Config::default(), [1; 32], now);
        let payload: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
        let batch = 64;
        for _ in 0..batch {
            let msg = if text {
                wsx_proto::Message::text(String::from_utf8(payload.clone()).unwrap())
            } else {
                wsx_proto::Message::binary(payload.clone())
            };
            client.send(msg).unwrap();
        }
        let out = client.transmit();
        let wire = bytes::Buf::copy_to_bytes(out, bytes::Buf::remaining(out));
        g.throughput(Throughput::Bytes((size * batch) as u64));
        let name = if text { "text" } else { "binary" };
        g.bench_with_input(BenchmarkId::new(name, size), &wire, |b, wire| {
            let mut server = Connection::server(Config::default(), now);
            b.iter(|| {
                server.handle_data(wire, now);
                let mut n = 0;
                while let Some(ev) = server.poll_event() {
                    if matches!(ev, Event::Text(_) | Event::Binary(_)) {
                        n += 1;
                    }
                }
                assert_eq!(n, batch);
            })
        });
    }
    g.finish();
}

/// Messages in, bytes out: the send path (encode, mask, queue) for each role,
/// and a prepared (broadcast) frame on a server.
fn send(c: &mut Criterion) {
    let mut g = c.benchmark_group("send");
    let batch = 64;
    for size in [20usize, 64 * 1024] {
        let payload = bytes::Bytes::from(vec![b'a'; size]);
        g.throughput(Throughput::Bytes((size * batch) as u64));
        for name in ["server", "client", "prepared"] {
            let now = Instant::now();
            let mut conn = match name {
                "client" => Connection::client(Config::default(), [1; 32], now),
                _ => Connection::server(Config::default(), now),
            };
            let prepared = PreparedMessage::new(Message::Binary(payload.clone())).unwrap();
            g.bench_function(BenchmarkId::new(name, size), |b| {
                b.iter(|| {
                    for _ in 0..batch {
                        if name == "prepared" {
                            conn.send_prepared(&prepared).unwrap();
                        } else {
                            conn.send(Message::Binary(payload.clone())).unwrap();
                        }
                    }
                    let out = conn.transmit();
                    let n = bytes::Buf::remaining(out);
                    bytes::Buf::advance(out, n);
                    n
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, headers, masking, utf8, handshake, receive, send);
criterion_main!(benches);
