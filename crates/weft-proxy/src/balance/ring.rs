//! A consistent-hash ring: each endpoint owns many points on a 64-bit circle (more for a
//! heavier weight); a key goes to the owner of the first point at or after its hash, so
//! adding or removing an endpoint moves only the keys near its points.

use std::sync::Arc;

use super::Balanced;

const POINTS_PER_WEIGHT: u32 = 100;
const MAX_POINTS: usize = 64 * 1024;

pub struct Ring {
    /// (point, endpoint index), sorted by point.
    points: Vec<(u64, usize)>,
}

impl Ring {
    pub fn new<E: Balanced>(endpoints: &[Arc<E>]) -> Ring {
        let mut points = Vec::new();
        for (i, e) in endpoints.iter().enumerate() {
            let n = POINTS_PER_WEIGHT * e.weight().clamp(1, 100);
            for k in 0..n {
                if points.len() >= MAX_POINTS {
                    break;
                }
                points.push((hash64(format!("{}-{k}", e.ring_key()).as_bytes()), i));
            }
        }
        points.sort_unstable();
        Ring { points }
    }

    pub fn lookup(&self, hash: u64) -> Option<usize> {
        if self.points.is_empty() {
            return None;
        }
        let i = self.points.partition_point(|(p, _)| *p < hash);
        let (_, e) = self.points.get(i).or_else(|| self.points.first())?;
        Some(*e)
    }
}

/// FNV-1a, then a final mix so that nearby inputs spread over the ring.
pub fn hash64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h
}
