//! Incremental UTF-8 validation for text messages (RFC 6455 §8.1).
//!
//! A text message may be split across frames, and a frame across reads, at
//! any byte, even inside a code point. [`Utf8Validator`] keeps the (at most
//! three) bytes of an unfinished code point between calls and reports an
//! error at the first byte that can never start or continue valid UTF-8, so
//! a connection fails fast instead of after buffering the whole message.

use bytes::Bytes;
use std::fmt;
use std::ops::Deref;

/// The text was not valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utf8Error;

impl fmt::Display for Utf8Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid UTF-8 in text")
    }
}

impl std::error::Error for Utf8Error {}

/// Validates UTF-8 fed in arbitrary pieces.
///
/// ```
/// use wsx_proto::utf8::Utf8Validator;
/// let mut v = Utf8Validator::default();
/// let euro = "€".as_bytes(); // e2 82 ac
/// v.feed(&euro[..1]).unwrap();
/// v.feed(&euro[1..]).unwrap();
/// v.finish().unwrap();
/// // 0xf4 0x90 can never begin a valid code point (> U+10FFFF): fails at once.
/// assert!(Utf8Validator::default().feed(&[0xf4, 0x90]).is_err());
/// ```
#[derive(Debug, Default, Clone)]
pub struct Utf8Validator {
    partial: [u8; 4],
    partial_len: u8,
}

impl Utf8Validator {
    /// Validates the next piece. Succeeds if everything so far is valid UTF-8
    /// or a valid prefix of it.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), Utf8Error> {
        if self.partial_len > 0 {
            let have = usize::from(self.partial_len);
            let width = width(self.partial[0]);
            let take = (width - have).min(data.len());
            self.partial[have..have + take].copy_from_slice(&data[..take]);
            let now = have + take;
            match simdutf8::compat::from_utf8(&self.partial[..now]) {
                Ok(_) => self.partial_len = 0,
                Err(e) if e.error_len().is_some() => return Err(Utf8Error),
                Err(_) => {
                    // Still a valid prefix; all input was consumed.
                    self.partial_len = now as u8;
                    return Ok(());
                }
            }
            data = &data[take..];
        }
        match simdutf8::compat::from_utf8(data) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_some() => Err(Utf8Error),
            Err(e) => {
                let tail = &data[e.valid_up_to()..];
                self.partial[..tail.len()].copy_from_slice(tail);
                self.partial_len = tail.len() as u8;
                Ok(())
            }
        }
    }

    /// Ends the text: an unfinished code point is an error. Resets the validator.
    pub fn finish(&mut self) -> Result<(), Utf8Error> {
        let pending = self.partial_len;
        self.partial_len = 0;
        if pending == 0 {
            Ok(())
        } else {
            Err(Utf8Error)
        }
    }

    /// Forgets any unfinished code point.
    pub fn reset(&mut self) {
        self.partial_len = 0;
    }
}

/// Length of the sequence a valid lead byte starts (only called on lead
/// bytes that `from_utf8` accepted as a valid prefix).
fn width(lead: u8) -> usize {
    match lead {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

/// Bytes known to hold valid UTF-8: the payload of a text message.
///
/// Cheap to clone (it shares the buffer) and dereferences to `str`.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Utf8Bytes(Bytes);

impl Utf8Bytes {
    /// Wraps `bytes` after checking that they are UTF-8.
    pub fn try_from_bytes(bytes: Bytes) -> Result<Self, Utf8Error> {
        simdutf8::basic::from_utf8(&bytes).map_err(|_| Utf8Error)?;
        Ok(Utf8Bytes(bytes))
    }

    /// Wraps bytes the caller has already validated.
    pub(crate) fn from_validated(bytes: Bytes) -> Self {
        debug_assert!(std::str::from_utf8(&bytes).is_ok());
        Utf8Bytes(bytes)
    }

    /// A `&'static str` without copying.
    pub const fn from_static(s: &'static str) -> Self {
        Utf8Bytes(Bytes::from_static(s.as_bytes()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Validated at construction; the checked conversion costs one pass
        // and keeps this crate free of `unsafe`.
        match std::str::from_utf8(&self.0) {
            Ok(s) => s,
            Err(_) => unreachable!("Utf8Bytes holds validated UTF-8"),
        }
    }

    /// The underlying bytes.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// Borrow the underlying bytes.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }
}

impl Deref for Utf8Bytes {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<String> for Utf8Bytes {
    fn from(s: String) -> Self {
        Utf8Bytes(Bytes::from(s))
    }
}

impl From<&str> for Utf8Bytes {
    fn from(s: &str) -> Self {
        Utf8Bytes(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl From<Utf8Bytes> for Bytes {
    fn from(s: Utf8Bytes) -> Self {
        s.0
    }
}

impl PartialEq<str> for Utf8Bytes {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Utf8Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check_split(data: &[u8], cuts: &[usize]) -> bool {
        let mut v = Utf8Validator::default();
        let mut prev = 0;
        for &c in cuts.iter().chain(std::iter::once(&data.len())) {
            let c = c.clamp(prev, data.len());
            if v.feed(&data[prev..c]).is_err() {
                return false;
            }
            prev = c;
        }
        v.finish().is_ok()
    }

    proptest! {
        #[test]
        fn agrees_with_std_on_random_bytes_and_splits(
            data in proptest::collection::vec(any::<u8>(), 0..64),
            mut cuts in proptest::collection::vec(0usize..64, 0..6),
        ) {
            cuts.sort();
            prop_assert_eq!(check_split(&data, &cuts), std::str::from_utf8(&data).is_ok());
        }

        #[test]
        fn agrees_with_std_on_mostly_valid_text(
            s in "\\PC{0,40}",
            flip in any::<Option<(usize, u8)>>(),
            mut cuts in proptest::collection::vec(0usize..200, 0..6),
        ) {
            let mut data = s.into_bytes();
            if let (Some((i, b)), false) = (flip, data.is_empty()) {
                let i = i % data.len();
                data[i] = b;
            }
            cuts.sort();
            prop_assert_eq!(check_split(&data, &cuts), std::str::from_utf8(&data).is_ok());
        }

        #[test]
        fn fails_at_first_invalid_byte(s in "\\PC{0,20}", junk in 0x80u8..=0xff) {
            // A prefix that std rejects with a definite error fails in feed(),
            // before finish() is reached.
            let mut data = s.into_bytes();
            data.push(junk);
            data.push(0x00);
            let std_definite = matches!(std::str::from_utf8(&data), Err(e) if e.error_len().is_some());
            let mut v = Utf8Validator::default();
            let mut failed = false;
            for b in &data {
                if v.feed(std::slice::from_ref(b)).is_err() { failed = true; break; }
            }
            prop_assert_eq!(failed, std_definite);
        }
    }

    #[test]
    fn autobahn_6_4_style_fail_fast() {
        // κόσμε followed by f4 90 80 80 (beyond U+10FFFF): must fail on the 0x90.
        let mut v = Utf8Validator::default();
        v.feed(&[
            0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5,
        ])
        .unwrap();
        v.feed(&[0xf4]).unwrap();
        assert_eq!(v.feed(&[0x90]), Err(Utf8Error));
    }

    #[test]
    fn unfinished_code_point_fails_at_finish() {
        let mut v = Utf8Validator::default();
        v.feed(&[0xe2, 0x82]).unwrap();
        assert_eq!(v.finish(), Err(Utf8Error));
        // finish() resets.
        v.feed(b"ok").unwrap();
        assert_eq!(v.finish(), Ok(()));
    }
}
