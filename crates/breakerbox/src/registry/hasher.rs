//! [`KeyHasher`]: how a registry hashes its keys unless told otherwise.
//!
//! A wrapper, so that the hash function behind it is ours to change
//! without changing the public API.

use core::fmt;
use core::hash::{BuildHasher, Hasher};

use foldhash::fast::{FoldHasher, RandomState};

/// The registry's default [`BuildHasher`]: `foldhash`'s fast hash, seeded
/// per process and per registry.
///
/// Chosen by measurement (`BENCHMARKS.md` in the repository): a registry
/// lookup by a host-like `&str` key takes about half as long as with the
/// standard library's SipHash, and keys that differ only in their high bits
/// (ids packed as `tenant << 32`) spread as well as any other.
///
/// **Flooding.** Its seed is unpredictable from outside the process but is
/// not drawn from the operating system's secure source, and `foldhash` does
/// not claim to resist an attacker who can time lookups and choose keys to
/// collide (HashDoS). Where keys come from untrusted input (a header, a path
/// segment) and a registry may grow large, use
/// [`std::hash::RandomState`] (SipHash, seeded from the OS) through
/// [`RegistryBuilder::hasher`](super::RegistryBuilder::hasher); a
/// [capacity](super::RegistryBuilder::capacity) bounds what any key stream
/// can cost either way.
///
/// ```
/// use breakerbox::registry::KeyHasher;
/// use std::hash::BuildHasher;
///
/// let hasher = KeyHasher::new();
/// assert_eq!(hasher.hash_one("db-1:5432"), hasher.hash_one("db-1:5432"));
/// assert_ne!(hasher.hash_one("db-1:5432"), hasher.hash_one("db-2:5432"));
/// ```
#[derive(Clone, Default)]
pub struct KeyHasher(RandomState);

impl KeyHasher {
    /// A hasher builder with a fresh seed.
    pub fn new() -> KeyHasher {
        KeyHasher::default()
    }
}

impl BuildHasher for KeyHasher {
    type Hasher = KeyHash;

    #[inline(always)]
    fn build_hasher(&self) -> KeyHash {
        KeyHash(self.0.build_hasher())
    }
}

impl fmt::Debug for KeyHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyHasher").finish_non_exhaustive()
    }
}

/// The [`Hasher`] a [`KeyHasher`] builds.
pub struct KeyHash(FoldHasher<'static>);

impl Hasher for KeyHash {
    #[inline(always)]
    fn finish(&self) -> u64 {
        self.0.finish()
    }
    #[inline(always)]
    fn write(&mut self, bytes: &[u8]) {
        self.0.write(bytes);
    }
    #[inline(always)]
    fn write_u8(&mut self, i: u8) {
        self.0.write_u8(i);
    }
    #[inline(always)]
    fn write_u16(&mut self, i: u16) {
        self.0.write_u16(i);
    }
    #[inline(always)]
    fn write_u32(&mut self, i: u32) {
        self.0.write_u32(i);
    }
    #[inline(always)]
    fn write_u64(&mut self, i: u64) {
        self.0.write_u64(i);
    }
    #[inline(always)]
    fn write_u128(&mut self, i: u128) {
        self.0.write_u128(i);
    }
    #[inline(always)]
    fn write_usize(&mut self, i: usize) {
        self.0.write_usize(i);
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyHash").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `write` is passed on: keys that differ only in what one of them
    /// writes hash apart.
    #[test]
    fn each_write_reaches_the_hash() {
        let hasher = KeyHasher::new();
        let hash = |write: &dyn Fn(&mut KeyHash)| {
            let mut state = hasher.build_hasher();
            write(&mut state);
            state.finish()
        };
        type Write = &'static dyn Fn(&mut KeyHash);
        let pairs: [(Write, Write); 7] = [
            (&|h| h.write(b"a"), &|h| h.write(b"b")),
            (&|h| h.write_u8(1), &|h| h.write_u8(2)),
            (&|h| h.write_u16(1), &|h| h.write_u16(2)),
            (&|h| h.write_u32(1), &|h| h.write_u32(2)),
            (&|h| h.write_u64(1), &|h| h.write_u64(2)),
            (&|h| h.write_u128(1), &|h| h.write_u128(2)),
            (&|h| h.write_usize(1), &|h| h.write_usize(2)),
        ];
        for (i, (one, other)) in pairs.iter().enumerate() {
            assert_ne!(hash(*one), hash(*other), "write #{i}");
            assert_eq!(hash(*one), hash(*one), "write #{i}");
        }
        assert_eq!(format!("{hasher:?} {:?}", hasher.build_hasher()), "KeyHasher { .. } KeyHash { .. }");
    }
}
