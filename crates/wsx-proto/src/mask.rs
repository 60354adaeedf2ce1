//! Payload masking (RFC 6455 §5.3).
//!
//! Masking is an XOR with a 4-byte key repeated over the payload. Both
//! directions use the same function: applying it twice restores the input.

/// XORs `buf` with `key`, where `buf` starts `offset` bytes into the payload.
///
/// The offset lets a payload that arrives in pieces be unmasked piece by piece.
/// Works a machine word at a time; [`apply_mask_scalar`] is the reference
/// byte loop it is property-tested against.
///
/// ```
/// let mut data = *b"Hello";
/// wsx_proto::mask::apply_mask(&mut data, [0x37, 0xfa, 0x21, 0x3d], 0);
/// assert_eq!(data, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
/// ```
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let key = rotate(key, offset);
    if buf.len() < 16 {
        return apply_mask_scalar(buf, key, 0);
    }
    // The key repeated twice, in memory order, so it lines up with the bytes.
    let key64 = u64::from_ne_bytes({
        let mut k = [0u8; 8];
        k[..4].copy_from_slice(&key);
        k[4..].copy_from_slice(&key);
        k
    });
    let mut chunks = buf.chunks_exact_mut(32);
    for chunk in &mut chunks {
        // Four independent words per iteration: LLVM turns this into SIMD XORs.
        for word in chunk.chunks_exact_mut(8) {
            let w = u64::from_ne_bytes(word.try_into().expect("8-byte chunk")) ^ key64;
            word.copy_from_slice(&w.to_ne_bytes());
        }
    }
    let rest = chunks.into_remainder();
    let mut words = rest.chunks_exact_mut(8);
    for word in &mut words {
        let w = u64::from_ne_bytes(word.try_into().expect("8-byte chunk")) ^ key64;
        word.copy_from_slice(&w.to_ne_bytes());
    }
    // Whole words consumed a multiple of 4 bytes, so the key phase is unchanged.
    apply_mask_scalar(words.into_remainder(), key, 0);
}

/// The plain byte-at-a-time mask: the reference for [`apply_mask`].
#[inline]
pub fn apply_mask_scalar(buf: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[(i + offset) & 3];
    }
}

#[inline]
fn rotate(key: [u8; 4], offset: usize) -> [u8; 4] {
    let mut k = key;
    k.rotate_left(offset & 3);
    k
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn fast_equals_scalar_at_every_length_and_alignment(
            data in proptest::collection::vec(any::<u8>(), 0..300),
            key in any::<[u8; 4]>(),
            start in 0usize..16,
            offset in 0usize..8,
        ) {
            let start = start.min(data.len());
            let mut fast = data.clone();
            let mut slow = data.clone();
            apply_mask(&mut fast[start..], key, offset);
            apply_mask_scalar(&mut slow[start..], key, offset);
            prop_assert_eq!(&fast, &slow);
            // Masking twice is the identity.
            apply_mask(&mut fast[start..], key, offset);
            prop_assert_eq!(&fast, &data);
        }

        #[test]
        fn piecewise_equals_whole(
            data in proptest::collection::vec(any::<u8>(), 0..200),
            key in any::<[u8; 4]>(),
            cut in 0usize..200,
        ) {
            let cut = cut.min(data.len());
            let mut whole = data.clone();
            apply_mask(&mut whole, key, 0);
            let mut pieces = data.clone();
            let (a, b) = pieces.split_at_mut(cut);
            apply_mask(a, key, 0);
            apply_mask(b, key, cut);
            prop_assert_eq!(whole, pieces);
        }
    }

    #[test]
    fn every_length_up_to_100_and_every_alignment() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let data: Vec<u8> = (0..=255u8).cycle().take(140).collect();
        for start in 0..16 {
            for len in 0..=100 {
                for offset in 0..4 {
                    let mut a = data.clone();
                    let mut b = data.clone();
                    apply_mask(&mut a[start..start + len], key, offset);
                    apply_mask_scalar(&mut b[start..start + len], key, offset);
                    assert_eq!(a, b, "start {start} len {len} offset {offset}");
                }
            }
        }
    }
}
