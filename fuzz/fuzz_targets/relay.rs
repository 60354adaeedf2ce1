//! `relay::FrameReader` on arbitrary bytes fed in arbitrary pieces, and the
//! `Inflater` on whatever frames come out.
//!
//! Oracles:
//! - the frames returned are the same however the bytes were cut, and the
//!   bytes they took plus what is still buffered are exactly the bytes fed;
//! - each frame re-encoded with its own mask is its wire bytes, byte for
//!   byte, when the input used the minimal length form (and decodes back to
//!   the same frame otherwise);
//! - no payload exceeds the bound; an error is only `LengthOverflow` or
//!   `FrameTooLarge`, and is the same for every cutting;
//! - the inflater never returns more than its limit and never panics.
#![no_main]
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use wsx_proto::deflate::DeflateParams;
use wsx_proto::relay::{FrameReader, Inflater, RawFrame};
use wsx_proto::ProtocolError;

const MAX: u64 = 4096;
const LIMIT: usize = 8192;

fn run(data: &[u8], cut: usize) -> (Vec<RawFrame>, Option<ProtocolError>, usize) {
    let mut r = FrameReader::new(MAX);
    let mut frames = Vec::new();
    for piece in data.chunks(cut.max(1)) {
        r.feed(piece);
        loop {
            match r.next_frame() {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(e) => return (frames, Some(e), r.buffered()),
            }
        }
    }
    (frames, None, r.buffered())
}

fuzz_target!(|input: &[u8]| {
    let Some((&cut, data)) = input.split_first() else {
        return;
    };
    let (frames, err, buffered) = run(data, usize::from(cut % 64) + 1);
    let (whole, whole_err, whole_buffered) = run(data, data.len().max(1));
    assert_eq!(frames, whole, "the frames depend on how the bytes were cut");
    assert_eq!(err, whole_err);
    match &err {
        None => {
            let taken: usize = frames.iter().map(|f| f.wire_len).sum();
            assert_eq!(taken + buffered, data.len(), "bytes lost or invented");
            assert_eq!(buffered, whole_buffered);
        }
        Some(ProtocolError::LengthOverflow | ProtocolError::FrameTooLarge { .. }) => {}
        Some(other) => panic!("unexpected error {other:?}"),
    }
    let mut at = 0;
    for f in &frames {
        assert!(f.payload.len() as u64 <= MAX);
        let mut out = BytesMut::new();
        f.encode(f.header.mask, &mut out);
        let wire = &data[at..at + f.wire_len];
        if out.len() == f.wire_len {
            assert_eq!(
                &out[..],
                wire,
                "re-encoded frame differs from its wire bytes"
            );
        } else {
            // A non-minimal length form comes back minimal: same frame, fewer bytes.
            assert!(out.len() < f.wire_len);
            let mut again = FrameReader::new(MAX);
            again.feed(&out);
            let g = again.next_frame().unwrap().expect("a whole frame");
            assert_eq!((g.header, &g.payload), (f.header, &f.payload));
        }
        at += f.wire_len;
    }
    for from_server in [false, true] {
        let params = DeflateParams {
            server_no_context_takeover: cut & 1 != 0,
            client_no_context_takeover: cut & 2 != 0,
            server_max_window_bits: 8 + (cut >> 2) % 8,
            client_max_window_bits: 8 + (cut >> 5) % 8,
        };
        let mut inflater = Inflater::new(params, from_server, LIMIT);
        for f in &frames {
            if let Some(Ok(m)) = inflater.frame(&f.header, &f.payload) {
                assert!(m.len() <= LIMIT, "inflated past the limit");
            }
        }
    }
});
