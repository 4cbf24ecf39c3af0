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

use super::bytes::{bit_length, put_bits, put_varint, varint_len, Bits, Reader};

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

/// An f32 column of `count` values, decoded into `out` (cleared first, its capacity reused).
pub(super) fn read_f32s(
    r: &mut Reader<'_>,
    count: usize,
    out: &mut Vec<f32>,
    what: &str,
) -> std::result::Result<(), String> {
    // Filled as a local: pushing through `out` reloaded its length from memory on every value
    // (a store into the buffer might have changed it, as far as the compiler knew).
    let mut values = std::mem::take(out);
    values.clear();
    let read = read_f32s_into(r, count, &mut values, what);
    *out = values;
    read
}

/// [`read_f32s`] into a vector of the caller's own.
#[inline(always)]
fn read_f32s_into(
    r: &mut Reader<'_>,
    count: usize,
    out: &mut Vec<f32>,
    what: &str,
) -> std::result::Result<(), String> {
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
            let width = index_width(k);
            let packed = r.packed(count, width, what)?;
            out.reserve_exact(count);
            let entries = &entries[..k];
            if !read_byte_indices(packed, count, width, entries, out) {
                out.clear();
                read_bit_indices(packed, count, width, entries, out, what)?;
            }
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

/// Dictionary indices of a width that divides 8 (1, 2, 4 or 8 bits: dictionaries of 1 to 4,
/// 9 to 16 and 129 to 256 entries; the leaf values of a fully grown forest, `0.0` and `1.0`,
/// take one bit), read a byte at a time into `out`: `false`, with `out` partly filled, when
/// the width does not divide 8, an index is out of range or the last byte's padding bits are
/// set, for [`read_bit_indices`] to name the fault. On the 100k x 50, 100-tree forest, whose
/// 6.6 million leaf values are one-bit indices, column reading was 14% of a load's profile with
/// the bit reader alone, 10% with this one; with the local vector of [`read_f32s`], the median
/// of 30 loads went from 95-99 ms to 90-92 ms (four alternating runs of both builds, one
/// process each).
fn read_byte_indices(
    packed: &[u8],
    count: usize,
    width: u32,
    entries: &[f32],
    out: &mut Vec<f32>,
) -> bool {
    match width {
        1 => read_indices_per_byte::<8>(packed, count, entries, out),
        2 => read_indices_per_byte::<4>(packed, count, entries, out),
        4 => read_indices_per_byte::<2>(packed, count, entries, out),
        8 => read_indices_per_byte::<1>(packed, count, entries, out),
        _ => false,
    }
}

/// [`read_byte_indices`] for `PER_BYTE` indices a byte: a fixed count the compiler unrolls.
fn read_indices_per_byte<const PER_BYTE: usize>(
    packed: &[u8],
    count: usize,
    entries: &[f32],
    out: &mut Vec<f32>,
) -> bool {
    let width = 8 / PER_BYTE as u32;
    let mask = (1u16 << width) - 1;
    let mut out_of_range = false;
    let mut decode = |byte: u8| -> [f32; PER_BYTE] {
        std::array::from_fn(|j| {
            let i = usize::from((u16::from(byte) >> (j as u32 * width)) & mask);
            out_of_range |= i >= entries.len();
            entries.get(i).copied().unwrap_or(0.0)
        })
    };
    let (full, tail) = (count / PER_BYTE, count % PER_BYTE);
    for &byte in packed.iter().take(full) {
        out.extend_from_slice(&decode(byte));
    }
    let padding_clear = match packed.get(full) {
        Some(&last) if tail > 0 => {
            out.extend_from_slice(&decode(last)[..tail]);
            u16::from(last) >> (tail as u32 * width) == 0
        }
        _ => true,
    };
    padding_clear && !out_of_range
}

/// Dictionary indices of any width, read bit by bit into `out`, with the first fault named.
fn read_bit_indices(
    packed: &[u8],
    count: usize,
    width: u32,
    entries: &[f32],
    out: &mut Vec<f32>,
    what: &str,
) -> std::result::Result<(), String> {
    let mut indices = Bits::new(packed, width);
    for _ in 0..count {
        let i = indices.next() as usize;
        let entry = entries.get(i).ok_or_else(|| {
            format!(
                "{what}: dictionary index {i} but only {} entries",
                entries.len()
            )
        })?;
        out.push(*entry);
    }
    indices.finish(what)
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
