//! The `f32` column: how every float array of a tree (thresholds, impurities, weights, leaf
//! values) is stored, in the smallest of three modes.
//!
//! ```text
//! f32 column   u8 mode, then
//!              0 raw:        count x f32 LE
//!              1 dictionary: u8 k-1, k f32 LE (in order of first use), count indices of
//!                            max(1, bit length of k-1) bits each
//!              2 integers:   count varints u32, each value is `u as f32`
//! ```
//!
//! The encoder picks the smallest mode (the lowest mode on a tie), so encoding is a pure
//! function of the values. Every mode costs at least one bit per value, so a column's count is
//! bounded by its bytes before anything is allocated for it.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::bytes::{bit_length, put_bits, put_varint, varint_len, Reader};

/// f32 column modes.
pub(super) const RAW: u8 = 0;
pub(super) const DICTIONARY: u8 = 1;
pub(super) const INTEGERS: u8 = 2;

/// Largest dictionary of an f32 column.
pub(super) const MAX_DICTIONARY: usize = 256;

/// Bits per index of a dictionary of `k` entries (at least one, so that every value costs
/// input and a column's length is bounded by its bytes).
pub(super) fn index_width(k: usize) -> u32 {
    bit_length(u32::try_from(k.saturating_sub(1)).unwrap_or(u32::MAX)).max(1)
}

// ---------------------------------------------------------------------------------------------
// Writing

/// The value of `v` as an integer column entry, if `u as f32` gives back its exact bits.
pub(super) fn as_integer(v: f32) -> Option<u32> {
    let u = v as u32;
    ((u as f32).to_bits() == v.to_bits()).then_some(u)
}

/// Hashes an f32's bits for the encoder's dictionary: one multiply, high bits folded down (the
/// values are trusted, so no protection against collisions is needed).
#[derive(Default)]
pub(super) struct BitsHasher(u64);

impl Hasher for BitsHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u32(u32::from(b) ^ (self.0 as u32));
        }
    }

    fn write_u32(&mut self, v: u32) {
        let h = u64::from(v).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = h ^ (h >> 32);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The dictionary of `values` (distinct bit patterns in order of first use) and each value's
/// index, if there are at most [`MAX_DICTIONARY`] distinct values.
pub(super) fn dictionary(values: &[f32]) -> Option<(Vec<u32>, Vec<u32>)> {
    let mut entries: Vec<u32> = Vec::new();
    let mut index: HashMap<u32, u32, BuildHasherDefault<BitsHasher>> = HashMap::default();
    let mut indices = Vec::with_capacity(values.len());
    for v in values {
        let bits = v.to_bits();
        let i = match index.get(&bits) {
            Some(&i) => i,
            None => {
                if entries.len() == MAX_DICTIONARY {
                    return None;
                }
                let i = entries.len() as u32;
                entries.push(bits);
                index.insert(bits, i);
                i
            }
        };
        indices.push(i);
    }
    Some((entries, indices))
}

/// Writes an f32 column in its smallest mode (the lowest mode on a tie).
pub(super) fn put_f32s(out: &mut Vec<u8>, values: &[f32]) {
    let raw = 4 * values.len();
    let dict = if values.is_empty() {
        None
    } else {
        dictionary(values)
    };
    let dict_size = dict.as_ref().map(|(entries, _)| {
        1 + 4 * entries.len() + (values.len() * index_width(entries.len()) as usize).div_ceil(8)
    });
    let int_size: Option<usize> = values
        .iter()
        .map(|v| as_integer(*v).map(|u| varint_len(u64::from(u))))
        .sum();
    let mut best = (raw, RAW);
    for (size, mode) in [(dict_size, DICTIONARY), (int_size, INTEGERS)] {
        if let Some(size) = size {
            if size < best.0 {
                best = (size, mode);
            }
        }
    }
    out.push(best.1);
    match (best.1, dict) {
        (DICTIONARY, Some((entries, indices))) => {
            out.push((entries.len() - 1) as u8);
            for bits in &entries {
                out.extend_from_slice(&bits.to_le_bytes());
            }
            put_bits(out, indices, index_width(entries.len()));
        }
        (INTEGERS, _) => {
            for v in values {
                put_varint(out, u64::from(as_integer(*v).unwrap_or_default()));
            }
        }
        _ => {
            for v in values {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reading

/// An f32 column of `count` values, decoded into `out` (cleared first).
pub(super) fn read_f32s(
    r: &mut Reader<'_>,
    count: usize,
    out: &mut Vec<f32>,
    what: &str,
) -> std::result::Result<(), String> {
    out.clear();
    match r.u8(what)? {
        RAW => {
            let n = count
                .checked_mul(4)
                .ok_or_else(|| format!("{what}: {count} values overflow"))?;
            let bytes = r.take(n, what)?;
            out.extend(
                bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            );
        }
        DICTIONARY => {
            let k = usize::from(r.u8(what)?) + 1;
            let mut entries = [0f32; MAX_DICTIONARY];
            for (e, c) in entries.iter_mut().zip(r.take(4 * k, what)?.chunks_exact(4)) {
                *e = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
            // At least one bit per index: `count` is bounded by the bytes just taken.
            let mut indices = r.bit_array(count, index_width(k), what)?;
            out.reserve_exact(count);
            for _ in 0..count {
                let i = indices.next() as usize;
                if i >= k {
                    return Err(format!("{what}: dictionary index {i} but only {k} entries"));
                }
                out.push(entries[i]);
            }
            indices.finish(what)?;
        }
        INTEGERS => {
            // Each value takes at least one byte: never reserve more than remain.
            out.reserve_exact(count.min(r.remaining()));
            for _ in 0..count {
                let v = r.varint(what)?;
                let u =
                    u32::try_from(v).map_err(|_| format!("{what}: integer {v} is out of range"))?;
                out.push(u as f32);
            }
        }
        mode => return Err(format!("{what} has unknown column mode {mode}")),
    }
    Ok(())
}

/// An f32 column of `count` values.
#[cfg(test)]
pub(super) fn read_f32s_vec(
    r: &mut Reader<'_>,
    count: usize,
    what: &str,
) -> std::result::Result<Vec<f32>, String> {
    let mut out = Vec::new();
    read_f32s(r, count, &mut out, what)?;
    Ok(out)
}
