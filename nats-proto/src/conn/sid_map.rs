//! Maps keyed by ids this library allocates itself (subscription ids, request tokens, flush ids): small
//! sequential integers, looked up once or twice per message, where SipHash's resistance to chosen keys buys
//! nothing.
//!
//! `alloc` has no hash map, so the core's maps are [`Ids`]: the hashed [`IdMap`] with `std`, a `BTreeMap`
//! without. The core uses only what both have and never depends on their iteration order (it sorts ids
//! where order shows). Not a `BTreeMap` for both: in the std build that cost `handle_read` 27 more
//! instructions per message over 10 subscriptions, 128 over 1,000, and 126 per request's reply (callgrind).

#[cfg(feature = "std")]
use core::hash::BuildHasherDefault;
use core::hash::Hasher;

/// Fibonacci hashing of one `u64`: a multiply spreads sequential ids over the table's buckets.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only integer keys are hashed here; anything else still gets a sound (if slower) hash.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// A `HashMap` keyed by ids this library allocates (needs the `std` feature: `alloc` has no hash map).
#[cfg(feature = "std")]
pub type IdMap<V> = std::collections::HashMap<u64, V, BuildHasherDefault<IdHasher>>;

/// The core's map from ids: [`IdMap`] with `std`.
#[cfg(feature = "std")]
pub(crate) type Ids<V> = IdMap<V>;

/// The core's map from ids: a `BTreeMap` without `std`.
#[cfg(not(feature = "std"))]
pub(crate) type Ids<V> = alloc::collections::BTreeMap<u64, V>;

#[cfg(all(test, feature = "std"))]
mod tests {
    use core::hash::BuildHasher;

    use super::*;

    #[test]
    fn sequential_ids_spread_and_round_trip() {
        let mut m: IdMap<u64> = IdMap::default();
        for i in 0..10_000 {
            m.insert(i, i * 2);
        }
        assert!((0..10_000).all(|i| m.get(&i) == Some(&(i * 2))));
        // The top bits pick the bucket group: sequential ids must not share them.
        let build = BuildHasherDefault::<IdHasher>::default();
        let tops: std::collections::HashSet<u64> = (0..1024u64).map(|i| build.hash_one(i) >> 54).collect();
        assert!(tops.len() > 500, "top bits spread over {} values", tops.len());
    }
}
