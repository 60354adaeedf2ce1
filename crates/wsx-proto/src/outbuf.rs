//! The queue of encoded bytes waiting to be written to the transport.

use crate::frame::{encode_frame_into, FrameHeader};
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
    /// Appends a frame, copying (and masking, for a client) `payload`.
    #[inline(always)]
    pub(crate) fn push_frame_slice(&mut self, header: &FrameHeader, payload: &[u8]) {
        encode_frame_into(header, payload, &mut self.tail);
    }

    /// Appends a frame, sharing `payload` instead of copying it when it is
    /// large and needs no masking.
    #[inline(always)]
    pub(crate) fn push_frame(&mut self, header: &FrameHeader, payload: Bytes) {
        if header.mask.is_some() || payload.len() < ZERO_COPY_MIN {
            encode_frame_into(header, &payload, &mut self.tail);
            return;
        }
        // The header alone here; the payload follows by reference.
        encode_frame_into(header, &[], &mut self.tail);
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

    /// The coalescing buffer holds memory.
    pub(crate) fn holds_memory(&self) -> bool {
        self.tail.capacity() > 0
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
    use crate::frame::OpCode;

    /// An unmasked binary frame header for `len` payload bytes.
    fn header(fin: bool, len: usize) -> FrameHeader {
        FrameHeader {
            fin,
            rsv: 0,
            opcode: OpCode::BINARY,
            mask: None,
            payload_len: len as u64,
        }
    }

    #[test]
    fn order_is_kept_across_copied_and_shared_chunks() {
        let mut o = OutBuf::default();
        o.push_frame(
            &header(false, ZERO_COPY_MIN),
            vec![b'x'; ZERO_COPY_MIN].into(),
        );
        o.push_frame(&header(true, 0), Bytes::new());
        let mut all = Vec::new();
        while o.has_remaining() {
            let c = o.chunk();
            let take = c.len().min(1000);
            all.extend_from_slice(&c[..take]);
            o.advance(take);
        }
        let mut want = vec![0x02, 0x7e, 0x10, 0x00];
        want.extend(vec![b'x'; ZERO_COPY_MIN]);
        want.extend([0x82, 0x00]);
        assert_eq!(all, want);
        assert!(o.is_empty());
    }

    #[test]
    fn vectored_chunks_cover_everything() {
        let mut o = OutBuf::default();
        o.push_frame(&header(false, ZERO_COPY_MIN), vec![1; ZERO_COPY_MIN].into());
        o.push_frame(&header(true, 0), Bytes::new());
        let mut slices = [IoSlice::new(&[]); 8];
        let n = o.chunks_vectored(&mut slices);
        let total: usize = slices[..n].iter().map(|s| s.len()).sum();
        assert_eq!((n, total), (3, o.len()));
    }
}
