//! `FrameHeader::decode` on arbitrary bytes, checked against `encode`.
//!
//! Oracles, whenever decode returns `Some((h, n))`:
//! - `n <= input.len()`, and every prefix of `input[..n]` decodes to `Ok(None)`;
//! - `n == h.encoded_len()` iff the input used the minimal length form;
//! - `encode(h)` is `encoded_len()` bytes, decodes back to `(h, len)`, and for
//!   minimally encoded input equals `input[..n]` byte for byte;
//! - the header fields are exactly the bits of the input.
//!
//! And when decode errs, the error is `LengthOverflow` on a 64-bit length
//! with its top bit set: nothing else is a wire-level error.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wsx_proto::frame::FrameHeader;
use wsx_proto::ProtocolError;

fuzz_target!(|data: &[u8]| {
    let decoded = FrameHeader::decode(data);
    let (h, n) = match decoded {
        Ok(Some(x)) => x,
        Ok(None) => {
            // Only a short buffer is incomplete: the header needs 2, 4 or 10
            // bytes, plus 4 when masked.
            let need = header_len(data);
            assert!(
                data.len() < need,
                "Ok(None) although {need} header bytes are present"
            );
            return;
        }
        Err(e) => {
            assert_eq!(e, ProtocolError::LengthOverflow, "unexpected decode error");
            assert!(data.len() >= 10 && data[1] & 0x7f == 127 && data[2] & 0x80 != 0);
            return;
        }
    };
    assert!(
        n <= data.len(),
        "header length {n} past the input ({})",
        data.len()
    );
    assert!((2..=FrameHeader::MAX_LEN).contains(&n));
    assert_eq!(
        n,
        header_len(data),
        "header length disagrees with the length form"
    );

    // Fields are the input's bits.
    let (b0, b1) = (data[0], data[1]);
    assert_eq!(h.fin, b0 & 0x80 != 0);
    assert_eq!(h.rsv, b0 & 0x70);
    assert_eq!(h.opcode.as_u8(), b0 & 0x0f);
    assert_eq!(h.mask.is_some(), b1 & 0x80 != 0);
    if let Some(key) = h.mask {
        assert_eq!(&key[..], &data[n - 4..n]);
    }
    assert!(
        h.payload_len >> 63 == 0,
        "payload length with the top bit set"
    );

    let minimal = match b1 & 0x7f {
        126 => h.payload_len > 125,
        127 => h.payload_len > 0xffff,
        _ => true,
    };
    assert_eq!(
        minimal,
        n == h.encoded_len(),
        "minimal form {minimal} but n={n}, encoded_len={}",
        h.encoded_len()
    );

    let mut buf = [0u8; FrameHeader::MAX_LEN];
    let m = h.encode(&mut buf);
    assert_eq!(
        m,
        h.encoded_len(),
        "encode wrote {m} bytes, encoded_len says {}",
        h.encoded_len()
    );
    assert_eq!(
        FrameHeader::decode(&buf[..m]),
        Ok(Some((h, m))),
        "re-encoded header decodes differently"
    );
    if minimal {
        assert_eq!(
            &buf[..m],
            &data[..n],
            "minimal input not reproduced by encode"
        );
    }

    for cut in 0..n {
        assert_eq!(
            FrameHeader::decode(&data[..cut]),
            Ok(None),
            "prefix of {cut} bytes is not Ok(None)"
        );
    }
    // Trailing bytes after the header do not change the result.
    assert_eq!(FrameHeader::decode(&data[..n]), Ok(Some((h, n))));
});

/// The header length the first two bytes announce (2 if they are missing).
fn header_len(data: &[u8]) -> usize {
    if data.len() < 2 {
        return 2;
    }
    let len = match data[1] & 0x7f {
        126 => 4,
        127 => 10,
        _ => 2,
    };
    len + if data[1] & 0x80 != 0 { 4 } else { 0 }
}
