//! What an idle connection keeps on the server: the live heap of the
//! server's one runtime thread, per connection, once 300 WebSockets are open
//! and quiet (keepalive on, receive buffers given back). The handshake's
//! state (the request head, the accept path's futures) must be gone by then:
//! before it was freed at the handshake's end, each connection's task was
//! sized for it for the connection's whole life (~4 KB of a 5.4 KiB total).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::task::Poll;
use std::time::Duration;
use wsx::server::{Server, ServerConfig};

struct Counting;

/// Live bytes allocated by the server's thread (freed anywhere).
static LIVE: AtomicI64 = AtomicI64::new(0);

thread_local! {
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

fn counted() -> bool {
    COUNTED.try_with(Cell::get).unwrap_or(false)
}

// SAFETY: forwards every call to the system allocator unchanged; it only
// adds up the sizes allocated and freed on the counted thread.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if counted() {
            LIVE.fetch_add(layout.size() as i64, Relaxed);
        }
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if counted() {
            LIVE.fetch_add(layout.size() as i64, Relaxed);
        }
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if counted() {
            LIVE.fetch_add(new_size as i64 - layout.size() as i64, Relaxed);
        }
        // SAFETY: `ptr` came from this allocator (hence `System`) with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if counted() {
            LIVE.fetch_sub(layout.size() as i64, Relaxed);
        }
        // SAFETY: `ptr` came from `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const CONNS: usize = 300;

type Ws = Box<wsx::WebSocket<wsx::ServerStream<tokio::net::TcpStream>>>;

/// Echoes with the poll functions, as `wsx serve` does: an await on `send`
/// would keep a message's slot (and `send`'s state) in the future.
async fn echo(mut ws: Ws) {
    use futures_util::Sink;
    let _ = std::future::poll_fn(|cx| loop {
        std::task::ready!(Pin::new(&mut *ws).poll_ready(cx))?;
        match std::task::ready!(ws.poll_recv(cx))? {
            Some(m @ (wsx::Message::Text(_) | wsx::Message::Binary(_))) => {
                Pin::new(&mut *ws).start_send(m)?
            }
            Some(_) => {}
            None => return Poll::Ready(Ok::<(), wsx::Error>(())),
        }
    })
    .await;
    let _ = ws.flush().await;
}

#[test]
fn an_idle_connection_keeps_under_2_kib_and_no_handshake_state() {
    let (tx, rx) = std::sync::mpsc::channel();
    // The server on a thread of its own, everything it allocates counted.
    let server = std::thread::spawn(move || {
        COUNTED.with(|c| c.set(true));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let server = Server::bind("127.0.0.1:0")
                .await
                .unwrap()
                .with_config(ServerConfig::default());
            let handle = server.handle();
            tx.send((server.local_addr().unwrap(), handle)).unwrap();
            // The socket boxed before the handler's future is made (as `wsx
            // serve` does): the future then holds a pointer, not 768 bytes.
            server.serve(|ws, _| echo(Box::new(ws))).await.unwrap();
        });
    });
    let (addr, handle) = rx.recv().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let url = format!("ws://{addr}/");
        // One first, so the server's one-time allocations (its runtime's
        // I/O and timer structures, the first task) are in the baseline.
        let mut first = wsx::client::connect(&url).await.unwrap();
        first.send(wsx::Message::text("warm")).await.unwrap();
        first.recv().await.unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let before = LIVE.load(Relaxed);
        let mut clients = Vec::new();
        for _ in 0..CONNS {
            let mut ws = wsx::client::connect(&url).await.unwrap();
            ws.send(wsx::Message::text("hello")).await.unwrap();
            ws.recv().await.unwrap();
            clients.push(ws);
        }
        assert_eq!(handle.active_connections(), CONNS + 1);
        // Quiet past the buffer release delay (1 s): what is left is what
        // an idle connection keeps.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let per = (LIVE.load(Relaxed) - before) as f64 / CONNS as f64;
        eprintln!("live heap per idle connection: {per:.0} bytes");
        assert!(
            per < 2048.0,
            "an idle connection keeps {per:.0} bytes on the server (at most 2 KiB)"
        );
        // They all still work.
        for ws in &mut clients {
            ws.send(wsx::Message::text("still here")).await.unwrap();
            assert_eq!(
                ws.recv().await.unwrap(),
                Some(wsx::Message::text("still here"))
            );
        }
        handle.shutdown();
        drop(clients);
        drop(first);
    });
    server.join().unwrap();
}
