//! Hash maps keyed by ids (and pointer addresses) with a multiplicative hash instead of SipHash:
//! the keys are lbd's own sequence numbers, not attacker-chosen, and the per-change paths look
//! up every virtual server of a large table.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use super::virtual_server::Id;

/// Fibonacci hashing of one integer key.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by integer keys; a correct fallback all the same.
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0 ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn write_i64(&mut self, v: i64) {
        self.write_u64(v as u64);
    }

    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
}

pub type IdBuild = BuildHasherDefault<IdHasher>;
pub type IdMap<V> = HashMap<Id, V, IdBuild>;
pub type IdSet = HashSet<Id, IdBuild>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_map_and_spread() {
        let m: IdMap<i64> = (0..10_000).map(|i| (i, i * 2)).collect();
        assert_eq!(m.len(), 10_000);
        assert_eq!(m.get(&4_321), Some(&8_642));
        // Consecutive ids land in different buckets of a small table.
        let lows: HashSet<u64> = (0..64i64)
            .map(|i| {
                let mut h = IdHasher::default();
                h.write_i64(i);
                h.finish() >> 58
            })
            .collect();
        assert!(lows.len() > 32, "{}", lows.len());
    }
}
