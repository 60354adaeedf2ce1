//! The receive and send paths of a small message allocate nothing per message
//! once the connection's buffers are warm: counted with a counting allocator
//! while a server connection echoes thousands of masked 20-byte and 1 KiB
//! messages (text and binary, one frame and several per read), both as
//! owned messages (`poll_event`, `send`) and in place (`poll_in_place`,
//! `echo_held`).

use bytes::{Buf, BufMut, BytesMut};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Instant;
use wsx_proto::{Config, Connection, Event, Message, Polled};

struct Counting;

thread_local! {
    // Per thread, so the test harness's other threads do not count.
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the allocator runs during thread teardown too.
    let _ = ALLOCS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: forwards every call to the system allocator unchanged; it only
// counts allocations (and reallocations) made on the current thread.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
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

/// A client frame (masked) for `payload`, written into `out`.
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

/// Feeds `wire` to the server in reads of `per_read` bytes, echoes every
/// message and drains what it sends into `sink` (reused). Returns messages seen.
fn echo(
    server: &mut Connection,
    wire: &[u8],
    per_read: usize,
    sink: &mut BytesMut,
    in_place: bool,
) -> usize {
    let now = Instant::now();
    let mut seen = 0;
    for chunk in wire.chunks(per_read) {
        server.recv_buffer().put_slice(chunk);
        server.handle_received(now);
        while let Some(p) = in_place.then(|| server.poll_in_place(usize::MAX)).flatten() {
            match p {
                Polled::Held(_) => server.echo_held().unwrap(),
                Polled::Event(other) => panic!("unexpected {other:?}"),
            }
            seen += 1;
        }
        while let Some(ev) = server.poll_event() {
            let msg = match ev {
                Event::Text(t) => Message::Text(t),
                Event::Binary(b) => Message::Binary(b),
                other => panic!("unexpected {other:?}"),
            };
            server.send(msg).unwrap();
            seen += 1;
        }
        let out = server.transmit();
        while out.has_remaining() {
            let c = out.chunk();
            if sink.len() + c.len() > sink.capacity() {
                sink.clear();
            }
            sink.extend_from_slice(c);
            let n = c.len();
            out.advance(n);
        }
    }
    seen
}

fn check(size: usize, per_read_msgs: usize, in_place: bool) {
    let mut server = Connection::server(Config::default(), Instant::now());
    let text = "a".repeat(size);
    let binary = vec![0xa5u8; size];
    // One round: a text and a binary message, keys varying.
    let mut wire = Vec::new();
    for i in 0..100u8 {
        client_frame(&mut wire, 0x1, text.as_bytes(), [i, 1, 2, 3]);
        client_frame(&mut wire, 0x2, &binary, [3, i, 1, 2]);
    }
    let frame_len = wire.len() / 200;
    let per_read = frame_len * per_read_msgs;
    let mut sink = BytesMut::with_capacity(1 << 20);

    // Warm-up: buffers grow to their working size (which the counter sees).
    let start = allocs();
    assert_eq!(echo(&mut server, &wire, per_read, &mut sink, in_place), 200);
    assert!(allocs() > start, "the counter saw no allocation at all");
    for _ in 0..10 {
        assert_eq!(echo(&mut server, &wire, per_read, &mut sink, in_place), 200);
    }
    let before = allocs();
    let rounds = 50;
    for _ in 0..rounds {
        assert_eq!(echo(&mut server, &wire, per_read, &mut sink, in_place), 200);
    }
    let n = allocs() - before;
    let messages = rounds * 200;
    println!("{size} B, {per_read_msgs} per read, in place {in_place}: {n} allocations for {messages} messages");
    assert_eq!(
        n, 0,
        "{size}-byte echo, {per_read_msgs} messages per read, in place {in_place}: {n} allocations in {messages} messages"
    );
}

#[test]
fn small_messages_one_per_read() {
    check(20, 1, false);
}

#[test]
fn small_messages_sixteen_per_read() {
    check(20, 16, false);
}

#[test]
fn one_kib_messages() {
    check(1024, 1, false);
    check(1024, 16, false);
}

#[test]
fn in_place_small_messages() {
    check(20, 1, true);
    check(20, 16, true);
}

#[test]
fn in_place_one_kib_messages() {
    check(1024, 1, true);
    check(1024, 16, true);
}
