//! The recent output of a session, bounded, addressed by absolute byte
//! offsets: each viewer keeps its own offset and reads on from it at its
//! own pace. A viewer whose offset fell out of the window (or too far
//! behind) is resynchronised from the screen instead: the PTY never waits
//! for a viewer, and memory never grows with a slow one.

use std::collections::VecDeque;

/// A bounded window of output bytes.
#[derive(Debug)]
pub struct OutputLog {
    buf: VecDeque<u8>,
    /// Absolute offset of `buf[0]`.
    start: u64,
    cap: usize,
}

/// A read from an offset the window no longer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lagged;

impl OutputLog {
    /// A window of at most `cap` bytes.
    pub fn new(cap: usize) -> OutputLog {
        OutputLog {
            buf: VecDeque::new(),
            start: 0,
            cap: cap.max(1),
        }
    }

    /// Appends output, dropping the oldest bytes beyond the cap.
    pub fn append(&mut self, bytes: &[u8]) {
        self.buf.extend(bytes);
        let over = self.buf.len().saturating_sub(self.cap);
        if over > 0 {
            self.buf.drain(..over);
            self.start += over as u64;
        }
    }

    /// The offset just past the newest byte.
    pub fn end(&self) -> u64 {
        self.start + self.buf.len() as u64
    }

    /// Up to `max` bytes from `pos` (empty when `pos` is the end).
    pub fn read(&self, pos: u64, max: usize) -> Result<Vec<u8>, Lagged> {
        if pos < self.start {
            return Err(Lagged);
        }
        let from = (pos - self.start) as usize;
        let to = self.buf.len().min(from.saturating_add(max));
        if from >= to {
            return Ok(Vec::new());
        }
        let (a, b) = self.buf.as_slices();
        let mut out = Vec::with_capacity(to - from);
        if from < a.len() {
            out.extend_from_slice(&a[from..to.min(a.len())]);
        }
        if to > a.len() {
            out.extend_from_slice(&b[from.saturating_sub(a.len())..to - a.len()]);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_on_from_an_offset_and_reports_a_lag_past_the_window() {
        let mut log = OutputLog::new(8);
        log.append(b"hello");
        assert_eq!(log.read(0, 100).unwrap(), b"hello");
        assert_eq!(log.read(2, 2).unwrap(), b"ll");
        log.append(b" world");
        assert_eq!(log.end(), 11);
        assert_eq!(log.read(0, 100), Err(Lagged));
        assert_eq!(log.read(3, 100).unwrap(), b"lo world");
        assert_eq!(log.read(11, 100).unwrap(), b"");
        // Across the ring's wrap-around.
        for i in 0..20u8 {
            log.append(&[i]);
            let end = log.end();
            assert_eq!(log.read(end - 3, 2).unwrap().len(), 2);
        }
        assert_eq!(
            log.read(log.end() - 8, 100).unwrap(),
            (12..20).collect::<Vec<u8>>()
        );
    }
}
