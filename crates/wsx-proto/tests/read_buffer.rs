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

/// A run of large frames, each arriving in two reads split at `cut`: from
/// the second frame on, the buffer has room for the whole frame before its
/// first byte is read, so the second read lands right behind the first and
/// nothing that arrived is copied to a bigger buffer. (Before, whether a
/// 64 KiB echo copied its message once, twice or not at all depended on
/// where the reads happened to split it.)
fn large_frames_arrive_without_copies(payload: usize, cut: usize) {
    let t0 = Instant::now();
    let mut c = Connection::server(Config::default(), t0);
    let frame = to(Role::Server, FIN | BINARY, &vec![9u8; payload]);
    let cut = cut.min(frame.len() - 1);
    for i in 0..6 {
        let start = c.recv_buffer().as_ptr() as usize + c.recv_buffer().len();
        assert_eq!(read(&mut c, &frame[..cut], t0), 0);
        // The rest goes where the first part ended: same allocation.
        let at = {
            let b = c.recv_buffer();
            b.as_ptr() as usize + b.len()
        };
        if i > 0 {
            assert_eq!(
                at,
                start + cut,
                "frame {i} of {payload} bytes, cut at {cut}: the first part was moved"
            );
        }
        assert_eq!(read(&mut c, &frame[cut..], t0), 1);
    }
}

#[test]
fn large_frames_split_across_reads_are_not_copied() {
    for payload in [16 << 10, 65_536, 100_000, 200_000] {
        for cut in [1, 2, 14, 4096, 8192, 32_768, 65_000, 65_536, 150_000] {
            large_frames_arrive_without_copies(payload, cut);
        }
    }
}
