//! The trace hash: FNV-1a (64 bit) over a textual record of every step.
//!
//! std's `DefaultHasher` is randomly keyed per process, so it cannot compare two runs; FNV is
//! fixed and simple. Records are written with `write!` straight into the hasher, so hashing a
//! message's `Debug` text allocates nothing.

use std::fmt;

/// A 64-bit FNV-1a hasher that is also a [`fmt::Write`] sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fnv(u64);

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

impl Fnv {
    pub(crate) fn new() -> Self {
        Fnv(OFFSET)
    }

    pub(crate) fn write_bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(PRIME);
        }
    }

    pub(crate) fn finish(&self) -> u64 {
        self.0
    }
}

impl fmt::Write for Fnv {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write_bytes(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write;

    fn fnv(bytes: &[u8]) -> u64 {
        let mut h = Fnv::new();
        h.write_bytes(bytes);
        h.finish()
    }

    #[test]
    fn matches_the_published_fnv1a_vectors() {
        assert_eq!(fnv(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn formatted_writes_hash_like_their_bytes() {
        let mut h = Fnv::new();
        write!(h, "s{} {:?};", 12, Some(3)).unwrap();
        assert_eq!(h.finish(), fnv(b"s12 Some(3);"));
    }
}
