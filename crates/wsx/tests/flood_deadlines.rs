//! A peer that never lets up: every read brings more frames, so the socket
//! never waits. The shutdown signal and the connection's deadlines must still
//! be honoured (the socket looks at them every few reads, not only before it
//! waits).

mod common;

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::CancellationToken;
use wsx::{CloseCause, Message, WebSocket};
use wsx_proto::{Config, Connection};

/// A client that sends masked 20-byte binary frames without end and takes
/// whatever is written to it. `coop`: spends tokio's task budget as a
/// `TcpStream` does (so the task yields now and then and timers can fire);
/// without it, reads never return `Pending` at all.
struct Flood {
    frame: Vec<u8>,
    at: usize,
    written: Arc<Mutex<Vec<u8>>>,
    coop: bool,
}

impl Flood {
    fn new(coop: bool) -> (Self, Arc<Mutex<Vec<u8>>>) {
        let frame = common::masked(common::OP_BINARY, &[7; 20]);
        let written = Arc::new(Mutex::new(Vec::new()));
        let flood = Flood {
            frame,
            at: 0,
            written: written.clone(),
            coop,
        };
        (flood, written)
    }
}

impl AsyncRead for Flood {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.coop {
            std::task::ready!(tokio::task::coop::poll_proceed(cx)).made_progress();
        }
        while buf.remaining() > 0 {
            let at = self.at;
            let n = buf.remaining().min(self.frame.len() - at);
            buf.put_slice(&self.frame[at..at + n]);
            self.at = (at + n) % self.frame.len();
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Flood {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.written.lock().unwrap().extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn shutdown_reaches_a_connection_whose_peer_never_pauses() {
    runtime().block_on(async {
        // No task budget: only the socket's own "every few reads" can see
        // the signal.
        let (io, written) = Flood::new(false);
        let token = CancellationToken::new();
        let mut ws = WebSocket::from_connection(
            io,
            Connection::server(Config::default(), Instant::now()),
            &[],
        )
        .close_on(token.clone());
        // A few messages first, then the server shuts down.
        for _ in 0..100 {
            assert!(matches!(ws.recv().await, Ok(Some(Message::Binary(_)))));
        }
        token.cancel();
        let mut after = 0;
        // Each read brings thousands of frames: a few reads' worth.
        while after < 1_000_000 {
            let out = written.lock().unwrap().clone();
            if let Some(i) = out.iter().position(|&b| b == 0x88) {
                // Close frame: code 1001 (going away).
                assert_eq!(&out[i + 2..i + 4], &1001u16.to_be_bytes());
                return;
            }
            match ws.recv().await {
                Ok(Some(_)) => after += 1,
                other => panic!("connection ended before sending its close: {other:?}"),
            }
        }
        panic!("no close frame after {after} messages since the shutdown");
    });
}

#[test]
fn close_timeout_ends_a_connection_whose_peer_never_pauses() {
    runtime().block_on(async {
        let (io, _written) = Flood::new(true);
        let config = Config::builder()
            .close_timeout(Duration::from_millis(100))
            .build()
            .unwrap();
        let mut ws =
            WebSocket::from_connection(io, Connection::server(config, Instant::now()), &[]);
        assert!(matches!(ws.recv().await, Ok(Some(Message::Binary(_)))));
        // We close; the peer never answers, it only sends more data.
        ws.close(None).await.unwrap();
        let start = Instant::now();
        loop {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "still open {:?} after a 100 ms close timeout",
                start.elapsed()
            );
            match ws.recv().await {
                Ok(Some(_)) => {}
                Err(e) => {
                    let closed = e.close_info().expect("a close, not another error");
                    assert!(
                        matches!(closed.cause, Some(CloseCause::CloseTimeout(_))),
                        "ended by {closed:?}"
                    );
                    break;
                }
                Ok(None) => panic!("a clean close, but the peer never sent one"),
            }
        }
    });
}
