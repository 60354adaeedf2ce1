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
#[inline(always)]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let key = rotate(key, offset);
    if buf.len() < 32 {
        // Small payloads (the common case): 8 bytes at a time, inline.
        let key8 = [
            key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
        ];
        let k = u64::from_ne_bytes(key8);
        let mut words = buf.chunks_exact_mut(8);
        for w in &mut words {
            let v = u64::from_ne_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]) ^ k;
            w.copy_from_slice(&v.to_ne_bytes());
        }
        // Whole words keep the key's phase; so does a 4-byte step.
        let rest = words.into_remainder();
        if let Some((w, tail)) = rest.split_first_chunk_mut::<4>() {
            *w = (u32::from_ne_bytes(*w) ^ u32::from_ne_bytes(key)).to_ne_bytes();
            return apply_mask_scalar(tail, key, 0);
        }
        return apply_mask_scalar(rest, key, 0);
    }
    apply_mask_blocks(buf, key);
}

// Out of line on purpose: compiled once, in a shape LLVM vectorizes (XOR of
// fixed-size 32-byte blocks), rather than re-optimized at every call site.
#[inline(never)]
fn apply_mask_blocks(buf: &mut [u8], key: [u8; 4]) {
    let mut block = [0u8; 32];
    for (i, b) in block.iter_mut().enumerate() {
        *b = key[i & 3];
    }
    let mut chunks = buf.chunks_exact_mut(32);
    for chunk in &mut chunks {
        let chunk: &mut [u8; 32] = chunk.try_into().expect("32-byte chunk");
        for (b, k) in chunk.iter_mut().zip(block.iter()) {
            *b ^= k;
        }
    }
    // Whole blocks consumed a multiple of 4 bytes: the key phase is unchanged.
    apply_mask_scalar(chunks.into_remainder(), key, 0);
}

/// The plain byte-at-a-time mask: the reference for [`apply_mask`].
#[inline]
pub fn apply_mask_scalar(buf: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[(i + offset) & 3];
    }
}

/// The key as seen from `offset` bytes into the payload (the bytes rotated
/// left), as integer arithmetic: a slice rotation is a call when not inlined.
#[inline]
fn rotate(key: [u8; 4], offset: usize) -> [u8; 4] {
    let shift = 8 * (offset & 3) as u32;
    u32::from_le_bytes(key).rotate_right(shift).to_le_bytes()
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
