//! What permessage-deflate costs per connection, measured with a counting
//! allocator: the compressor and inflater at several window sizes, and
//! that an idle connection gives the compressor back.
#![cfg(feature = "deflate")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Instant;
use wsx_proto::deflate::DeflateConfig;
use wsx_proto::handshake::parse_extensions;
use wsx_proto::{Config, Connection, Event, Message};

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Relaxed);
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Relaxed);
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn json(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "{{\"id\":{i},\"name\":\"user{i}\",\"score\":{}}},",
                i * 7 % 1000
            )
        })
        .collect()
}

/// A server and a client connection that negotiated `cfg` on both sides.
fn pair(cfg: &DeflateConfig) -> (Connection, Connection) {
    let now = Instant::now();
    let offer = parse_extensions(&cfg.offer()).unwrap();
    let s = cfg.negotiate_server(&offer).unwrap();
    let c = cfg
        .negotiate_client(&parse_extensions(&s.response).unwrap())
        .unwrap()
        .unwrap();
    let mut server = Connection::server(Config::default(), now);
    server.enable_deflate(s);
    let mut client = Connection::client(Config::default(), [1; 32], now);
    client.enable_deflate(c);
    (server, client)
}

fn drain(c: &mut Connection) -> Vec<u8> {
    use bytes::Buf;
    let out = c.transmit();
    out.copy_to_bytes(out.remaining()).to_vec()
}

#[test]
fn compressor_and_inflater_memory_by_window() {
    let msg = json(2000);
    let now = Instant::now();
    println!("window bits | compressor (server) | inflater (client)");
    for bits in [15u8, 12, 9] {
        let cfg = DeflateConfig {
            window_bits: bits,
            peer_window_bits: bits,
            ..Default::default()
        };
        let (mut server, mut client) = pair(&cfg);
        let before = LIVE.load(Relaxed);
        server.send(Message::text(msg.clone())).unwrap();
        let wire = drain(&mut server);
        let compressor = LIVE.load(Relaxed) - before;
        assert!(
            wire.len() < msg.len() / 3,
            "{} of {}",
            wire.len(),
            msg.len()
        );

        let before = LIVE.load(Relaxed);
        client.handle_data(&wire, now);
        let Some(Event::Text(t)) = client.poll_event() else {
            panic!("no message")
        };
        assert_eq!(t.as_str(), msg);
        drop(t);
        client.shrink_buffers();
        let inflater = LIVE.load(Relaxed).saturating_sub(before);
        println!(
            "{bits:>11} | {:>15} KiB | {:>13} KiB",
            compressor / 1024,
            inflater / 1024
        );
        assert!(
            compressor < 600 << 10,
            "compressor {compressor} B at {bits} bits"
        );
        assert!(inflater < 80 << 10, "inflater {inflater} B at {bits} bits");

        // Idle: the compressor goes back at the second idle check.
        let before = LIVE.load(Relaxed);
        server.shrink_buffers();
        server.shrink_buffers();
        let freed = before - LIVE.load(Relaxed);
        assert!(
            freed * 10 >= compressor * 9,
            "freed {freed} of {compressor}"
        );
    }
}
