//! Hostile lengths and fragment floods cost no memory: a global allocator
//! that tracks the peak of live heap bytes shows what the server allocated
//! while handling them (one test, so nothing else runs in the process).

mod common;

use common::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Relaxed) + layout.size();
        PEAK.fetch_max(live, Relaxed);
        LARGEST.fetch_max(layout.size(), Relaxed);
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

/// Peak live heap bytes above the level at the start, and the largest
/// single allocation, while `f` runs.
async fn measure<F: std::future::Future<Output = ()>>(f: F) -> (usize, usize) {
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    LARGEST.store(0, Relaxed);
    f.await;
    (PEAK.load(Relaxed) - base, LARGEST.load(Relaxed))
}

async fn raw_ws(addr: std::net::SocketAddr) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(REQUEST).await.unwrap();
    let head = read_head(&mut tcp).await.unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    tcp
}

#[tokio::test]
async fn hostile_lengths_and_fragment_floods_allocate_little() {
    let server = wsx::Server::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(
        server.serve(|mut ws, _| async move { while let Ok(Some(_)) = ws.recv().await {} }),
    );

    // A 2^63-1 byte frame announced: refused from its header (1009).
    let mut tcp = raw_ws(addr).await;
    let (peak, largest) = measure(async {
        let mut f = vec![0x82, 0xff];
        f.extend_from_slice(&(u64::MAX >> 1).to_be_bytes());
        f.extend_from_slice(&KEY);
        tcp.write_all(&f).await.unwrap();
        let reply = read_frame(&mut tcp).await.unwrap();
        assert_eq!(reply.close_code(), Some(1009), "{reply:?}");
    })
    .await;
    eprintln!("2^63-1 length header: peak +{peak} B, largest allocation {largest} B");
    assert!(largest < 256 << 10, "allocated {largest} B at once");
    assert!(peak < 1 << 20, "peak +{peak} B");

    // 100,000 one-byte fragments: closed at the cap, memory bounded.
    let mut wire = frame(OP_BINARY, false, b"x", Some(KEY));
    let one = frame(OP_CONT, false, b"x", Some(KEY));
    for _ in 1..100_000 {
        wire.extend_from_slice(&one);
    }
    let mut tcp = raw_ws(addr).await;
    let (peak, largest) = measure(async {
        let _ = tcp.write_all(&wire).await;
        let reply = read_frame(&mut tcp).await.unwrap();
        assert_eq!(reply.close_code(), Some(1009), "{reply:?}");
    })
    .await;
    eprintln!("100,000 one-byte fragments: peak +{peak} B, largest allocation {largest} B");
    assert!(peak < 2 << 20, "peak +{peak} B");
}
