//! The queue of encoded bytes waiting to be written to the transport.

use bytes::{Buf, Bytes, BytesMut};
use std::collections::VecDeque;
use std::io::IoSlice;

/// Payloads at least this long are queued by reference (no copy) when they
/// need no masking; shorter ones are copied next to their header so that
/// many small frames leave in one write.
const ZERO_COPY_MIN: usize = 4096;

/// Encoded frames waiting for the transport, in order.
///
/// Implements [`bytes::Buf`]: write [`Buf::chunk`] (or
/// [`Buf::chunks_vectored`]) to the socket, then [`Buf::advance`] by what
/// was written.
#[derive(Debug, Default)]
pub struct OutBuf {
    /// Chunks before `tail`, never empty.
    queue: VecDeque<Bytes>,
    queued: usize,
    /// Small frames coalesce here.
    tail: BytesMut,
}

impl OutBuf {
    /// The coalescing buffer, for in-place encoding (e.g. masking).
    pub(crate) fn tail_mut(&mut self) -> &mut BytesMut {
        &mut self.tail
    }

    /// Appends a header and its payload, sharing the payload instead of
    /// copying it when it is large.
    #[inline]
    pub(crate) fn push_frame(&mut self, header: &[u8], payload: Bytes) {
        if payload.len() < ZERO_COPY_MIN {
            self.tail.reserve(header.len() + payload.len());
            self.tail.extend_from_slice(header);
            self.tail.extend_from_slice(&payload);
            return;
        }
        self.tail.extend_from_slice(header);
        self.push_payload(payload);
    }

    /// Appends a payload, sharing it instead of copying when it is large.
    pub(crate) fn push_payload(&mut self, payload: Bytes) {
        if payload.len() < ZERO_COPY_MIN {
            self.tail.extend_from_slice(&payload);
            return;
        }
        if !self.tail.is_empty() {
            let t = self.tail.split().freeze();
            self.queued += t.len();
            self.queue.push_back(t);
        }
        self.queued += payload.len();
        self.queue.push_back(payload);
    }

    /// Bytes waiting.
    pub fn len(&self) -> usize {
        self.queued + self.tail.len()
    }

    /// Nothing waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Releases the coalescing buffer's memory when idle.
    pub(crate) fn shrink_if_empty(&mut self) {
        if self.is_empty() && self.tail.capacity() > 0 {
            self.tail = BytesMut::new();
        }
    }
}

impl Buf for OutBuf {
    fn remaining(&self) -> usize {
        self.len()
    }

    fn chunk(&self) -> &[u8] {
        match self.queue.front() {
            Some(b) => b,
            None => &self.tail,
        }
    }

    fn advance(&mut self, mut cnt: usize) {
        assert!(cnt <= self.len(), "advance past the end of OutBuf");
        while cnt > 0 {
            match self.queue.front_mut() {
                Some(front) if front.len() <= cnt => {
                    cnt -= front.len();
                    self.queued -= front.len();
                    self.queue.pop_front();
                }
                Some(front) => {
                    front.advance(cnt);
                    self.queued -= cnt;
                    cnt = 0;
                }
                None => {
                    self.tail.advance(cnt);
                    cnt = 0;
                }
            }
        }
        if self.tail.is_empty() {
            // Lets the next frames reuse the buffer from its start.
            self.tail.clear();
        }
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for b in &self.queue {
            if n == dst.len() {
                return n;
            }
            dst[n] = IoSlice::new(b);
            n += 1;
        }
        if n < dst.len() && !self.tail.is_empty() {
            dst[n] = IoSlice::new(&self.tail);
            n += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_kept_across_copied_and_shared_chunks() {
        let mut o = OutBuf::default();
        o.push_frame(b"ab", Bytes::from(vec![b'x'; ZERO_COPY_MIN]));
        o.push_frame(b"cd", Bytes::new());
        let mut all = Vec::new();
        while o.has_remaining() {
            let c = o.chunk();
            let take = c.len().min(1000);
            all.extend_from_slice(&c[..take]);
            o.advance(take);
        }
        let mut want = b"ab".to_vec();
        want.extend(vec![b'x'; ZERO_COPY_MIN]);
        want.extend(b"cd");
        assert_eq!(all, want);
        assert!(o.is_empty());
    }

    #[test]
    fn vectored_chunks_cover_everything() {
        let mut o = OutBuf::default();
        o.push_frame(b"ab", Bytes::from(vec![1; ZERO_COPY_MIN]));
        o.push_frame(b"cd", Bytes::new());
        let mut slices = [IoSlice::new(&[]); 8];
        let n = o.chunks_vectored(&mut slices);
        let total: usize = slices[..n].iter().map(|s| s.len()).sum();
        assert_eq!((n, total), (3, o.len()));
    }
}
