//! Payload masking (RFC 6455 §5.3).
//!
//! Masking is an XOR with a 4-byte key repeated over the payload. Both
//! directions use the same function: applying it twice restores the input.

/// XORs `buf` with `key`, where `buf` starts `offset` bytes into the payload.
///
/// The offset lets a payload that arrives in pieces be unmasked piece by piece.
/// Short slices go a machine word at a time, longer ones in vector blocks
/// as wide as the CPU allows (SSE2, AVX2 or AVX-512, picked at run time);
/// [`apply_mask_scalar`] is the reference byte loop each is tested against.
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
        // Small payloads (the common case): inline, a word at a time.
        return apply_mask_words(buf, key);
    }
    apply_mask_blocks(buf, key);
}

/// 8 bytes at a time, then 4, then single bytes: for short slices, where
/// setting up vectors costs more than it saves.
#[inline(always)]
fn apply_mask_words(buf: &mut [u8], key: [u8; 4]) {
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
    apply_mask_scalar(rest, key, 0)
}

// Out of line on purpose: compiled once per instruction set, in a shape
// LLVM vectorizes (XOR of fixed-size blocks), rather than re-optimized at
// every call site. The widest vectors the CPU has are picked at run time
// (a cached flag: a few instructions), since a portable build may assume
// only SSE2: with AVX-512 a 1 KiB payload takes 16 vector steps, not 64.
#[inline(never)]
fn apply_mask_blocks(buf: &mut [u8], key: [u8; 4]) {
    #[cfg(all(target_arch = "x86_64", not(target_feature = "avx512bw")))]
    {
        if std::arch::is_x86_feature_detected!("avx512bw") {
            // SAFETY: `blocks_avx512` is safe code compiled with AVX-512BW
            // enabled; calling it is sound exactly when the CPU has that
            // feature, which was checked just above.
            #[allow(unsafe_code)]
            return unsafe { x86::blocks_avx512(buf, key) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: as above, for AVX2.
            #[allow(unsafe_code)]
            return unsafe { x86::blocks_avx2(buf, key) };
        }
    }
    blocks::<32>(buf, key);
}

/// XORs whole `N`-byte blocks (a multiple of 32), then a 32-byte one if
/// it fits, then the rest a word at a time. Every step is a multiple of 4
/// bytes until the last, so the key's phase never changes.
#[inline(always)]
fn blocks<const N: usize>(buf: &mut [u8], key: [u8; 4]) {
    let mut chunks = buf.chunks_exact_mut(N);
    for chunk in &mut chunks {
        xor_block::<N>(chunk.try_into().expect("N-byte chunk"), key);
    }
    let rest = chunks.into_remainder();
    if N > 32 && rest.len() >= 32 {
        let (block, tail) = rest.split_first_chunk_mut::<32>().expect("32 bytes");
        xor_block::<32>(block, key);
        return apply_mask_words(tail, key);
    }
    apply_mask_words(rest, key);
}

#[inline(always)]
fn xor_block<const N: usize>(block: &mut [u8; N], key: [u8; 4]) {
    let mut k = [0u8; N];
    for (i, b) in k.iter_mut().enumerate() {
        *b = key[i & 3];
    }
    for (b, k) in block.iter_mut().zip(k.iter()) {
        *b ^= k;
    }
}

/// The same block loop compiled for wider vectors (safe code: only calling
/// it needs the CPU check).
#[cfg(all(target_arch = "x86_64", not(target_feature = "avx512bw")))]
mod x86 {
    #[target_feature(enable = "avx512bw")]
    pub(super) fn blocks_avx512(buf: &mut [u8], key: [u8; 4]) {
        super::blocks::<64>(buf, key);
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn blocks_avx2(buf: &mut [u8], key: [u8; 4]) {
        super::blocks::<32>(buf, key);
    }
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

    /// Each compiled variant against the reference, whichever one this
    /// CPU would pick (the dispatch tests only that one).
    #[test]
    fn every_vector_width_equals_scalar() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let data: Vec<u8> = (0..=255u8).cycle().take(300).collect();
        type Variant = fn(&mut [u8], [u8; 4]);
        let mut variants: Vec<(&str, Variant)> = vec![("portable", blocks::<32>)];
        #[cfg(all(target_arch = "x86_64", not(target_feature = "avx512bw")))]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2 (checked above).
                #[allow(unsafe_code)]
                variants.push(("avx2", |b, k| unsafe { x86::blocks_avx2(b, k) }));
            }
            if std::arch::is_x86_feature_detected!("avx512bw") {
                // SAFETY: the CPU has AVX-512BW (checked above).
                #[allow(unsafe_code)]
                variants.push(("avx512", |b, k| unsafe { x86::blocks_avx512(b, k) }));
            }
        }
        for (name, f) in variants {
            for start in 0..8 {
                for len in 0..=data.len() - start {
                    let mut a = data.clone();
                    let mut b = data.clone();
                    f(&mut a[start..start + len], key);
                    apply_mask_scalar(&mut b[start..start + len], key, 0);
                    assert_eq!(a, b, "{name}: start {start} len {len}");
                }
            }
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
