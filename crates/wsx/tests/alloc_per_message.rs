//! `WebSocket::recv` and `WebSocket::send` allocate nothing per message once
//! warm: a server socket (keepalive on, as `wsx serve` runs it) echoes
//! thousands of masked 20-byte and 1 KiB messages over an in-memory stream,
//! counted with a counting allocator on the one runtime thread; so do
//! `WebSocket::recv_in_place` and `HeldMessage::echo`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wsx::{Message, Received, WebSocket};
use wsx_proto::{Config, Connection};

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; it only
// counts allocations (and reallocations) made on the current thread.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: `ptr` came from this allocator (hence `System`) with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(|n| n.get())
}

fn client_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8], key: [u8; 4]) {
    out.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
}

/// The echo loop `wsx serve` runs, on one message at a time (`recv`, `send`),
/// with the test's client side driven on the same thread.
async fn check(size: usize, in_place: bool) {
    let (server_io, mut client_io) = tokio::io::duplex(1 << 20);
    let config = Config::builder()
        .ping_interval(Some(Duration::from_secs(30)))
        .build()
        .unwrap();
    let mut ws =
        WebSocket::from_connection(server_io, Connection::server(config, Instant::now()), &[]);
    let text = "a".repeat(size);
    let binary = vec![0x5au8; size];
    let mut frames = Vec::new();
    client_frame(&mut frames, 0x1, text.as_bytes(), [1, 2, 3, 4]);
    let split = frames.len();
    client_frame(&mut frames, 0x2, &binary, [4, 3, 2, 1]);
    let header = if size < 126 { 2 } else { 4 };
    let mut echoed = vec![0u8; 2 * (header + size)];

    let mut round = async |ws: &mut WebSocket<tokio::io::DuplexStream>| {
        for part in [&frames[..split], &frames[split..]] {
            client_io.write_all(part).await.unwrap();
            if in_place {
                match ws.recv_in_place(4095).await.unwrap().unwrap() {
                    Received::Held(m) => m.echo().unwrap(),
                    Received::Message(m) => panic!("not held: {m:?}"),
                }
                ws.flush().await.unwrap();
                continue;
            }
            let m = ws.recv().await.unwrap().unwrap();
            assert!(matches!(m, Message::Text(_) | Message::Binary(_)));
            ws.send(m).await.unwrap();
        }
        client_io.read_exact(&mut echoed).await.unwrap();
        assert_eq!(echoed[header], b'a');
    };
    let start = allocs();
    for _ in 0..100 {
        round(&mut ws).await;
    }
    assert!(allocs() > start, "the counter saw no allocation at all");
    let before = allocs();
    let rounds = 5_000;
    for _ in 0..rounds {
        round(&mut ws).await;
    }
    let n = allocs() - before;
    println!(
        "{size} B, in place {in_place}: {n} allocations for {} messages",
        2 * rounds
    );
    assert_eq!(
        n,
        0,
        "{size}-byte echo, in place {in_place}: {n} allocations in {} messages",
        2 * rounds
    );
}

#[test]
fn small_and_one_kib_messages_allocate_nothing() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for in_place in [false, true] {
            check(20, in_place).await;
            check(1024, in_place).await;
        }
    });
}
