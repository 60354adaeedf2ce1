//! The receive buffer follows the traffic: pipelined bursts get large reads,
//! a connection that calms down gives the large buffer back.

mod common;

use common::*;
use std::time::Instant;
use wsx_proto::{Config, Connection, Role};

/// One read of `bytes` through `recv_buffer`, as the tokio layer does; the
/// messages it completed.
fn read(c: &mut Connection, bytes: &[u8], now: Instant) -> usize {
    c.recv_buffer().extend_from_slice(bytes);
    c.handle_received(now);
    poll_all(c).len()
}

#[test]
fn bursts_grow_the_reads_and_quiet_traffic_shrinks_them() {
    let t0 = Instant::now();
    let mut c = Connection::server(Config::default(), t0);
    let small = to(Role::Server, FIN | TEXT, b"hi");
    // A quiet start reserves a small buffer.
    assert_eq!(read(&mut c, &small, t0), 1);
    let first = c.recv_buffer().capacity();
    assert!(first <= 8 << 10, "first reservation {first}");

    // A burst: every read brings more than was reserved (64 KiB of
    // pipelined 1 KiB messages), so the reservations double up to 64 KiB.
    let burst: Vec<u8> = (0..64)
        .flat_map(|_| to(Role::Server, FIN | BINARY, &[7; 1020]))
        .collect();
    let mut reserved = Vec::new();
    for _ in 0..6 {
        let spare = {
            let b = c.recv_buffer();
            b.capacity() - b.len()
        };
        reserved.push(spare);
        assert_eq!(read(&mut c, &burst, t0), 64);
    }
    assert!(
        reserved.windows(2).any(|w| w[1] > w[0]),
        "reservations did not grow: {reserved:?}"
    );
    let grown = c.recv_buffer().capacity();
    assert!(grown >= 32 << 10, "grown to {grown} only");

    // Then one small message per read: the next reservations halve, and the
    // big buffer goes back once it is twice what the traffic needs.
    for _ in 0..8 {
        assert_eq!(read(&mut c, &small, t0), 1);
    }
    let calm = c.recv_buffer().capacity();
    assert!(
        calm <= 8 << 10,
        "still {calm} bytes after the traffic calmed"
    );
}
