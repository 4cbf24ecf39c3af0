//! The payload's byte primitives: LEB128 varints, packed bit arrays, and the bounded
//! [`Reader`] every decoder reads through. Each writer sits beside its reader.
//!
//! Varints are LEB128, minimal, at most 64 bits. Bit arrays are packed least significant bit
//! first, each starts on a byte boundary, and the padding bits of its last byte must be zero.
//! Every read checks the bytes that remain first, so a claimed length can never make a decoder
//! run past the end or allocate for bytes that are not there.

pub(super) fn bit_length(v: u32) -> u32 {
    u32::BITS - v.leading_zeros()
}

fn bit_length_u64(v: u64) -> u32 {
    u64::BITS - v.leading_zeros()
}

// ---------------------------------------------------------------------------------------------
// Varints

pub(super) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(super) fn varint_len(v: u64) -> usize {
    (bit_length_u64(v).max(1) as usize).div_ceil(7)
}

// ---------------------------------------------------------------------------------------------
// Bit arrays

/// Packs `values` in `width` bits each (`width <= 32`), least significant bit first; the last
/// byte is zero-padded.
pub(super) fn put_bits(out: &mut Vec<u8>, values: impl IntoIterator<Item = u32>, width: u32) {
    debug_assert!(width <= 32);
    let mask = (1u64 << width) - 1;
    let (mut acc, mut filled) = (0u64, 0u32);
    for v in values {
        acc |= (u64::from(v) & mask) << filled;
        filled += width;
        while filled >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            filled -= 8;
        }
    }
    if filled > 0 {
        out.push(acc as u8);
    }
}

/// Reads packed values of one width from a slice that holds exactly the bits of the values the
/// caller reads (see [`Reader::bit_array`]); [`Bits::finish`] checks that nothing else is set.
pub(super) struct Bits<'a> {
    bytes: std::slice::Iter<'a, u8>,
    acc: u64,
    have: u32,
    width: u32,
    mask: u64,
}

impl<'a> Bits<'a> {
    pub(super) fn new(bytes: &'a [u8], width: u32) -> Self {
        Self {
            bytes: bytes.iter(),
            acc: 0,
            have: 0,
            width,
            mask: (1u64 << width) - 1,
        }
    }

    /// The next value. Past the slice's end it reads zeros (a caller reading more values than
    /// it took bytes for gets them; it never does).
    #[inline]
    pub(super) fn next(&mut self) -> u32 {
        while self.have < self.width {
            self.acc |= u64::from(self.bytes.next().copied().unwrap_or(0)) << self.have;
            self.have += 8;
        }
        let v = (self.acc & self.mask) as u32;
        self.acc >>= self.width;
        self.have -= self.width;
        v
    }

    /// Every value was read: the padding bits of the last byte must be zero.
    pub(super) fn finish(self, what: &str) -> std::result::Result<(), String> {
        if self.acc != 0 || self.bytes.len() != 0 {
            return Err(format!("{what} has nonzero padding bits"));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The bounded reader

/// A cursor over a byte slice whose reads fail with a reason instead of running past the end.
pub(super) struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    pub(super) fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    pub(super) fn take(&mut self, n: usize, what: &str) -> std::result::Result<&'a [u8], String> {
        let rest = self.remaining();
        if n > rest {
            return Err(format!("{what} ends early: needs {n} bytes, {rest} remain"));
        }
        let out = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(out)
    }

    pub(super) fn u8(&mut self, what: &str) -> std::result::Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }

    /// A minimal LEB128 varint of at most 64 bits.
    #[inline]
    pub(super) fn varint(&mut self, what: &str) -> std::result::Result<u64, String> {
        // Most varints (node counts, n_samples, integer columns) are one byte.
        if let Some(&b) = self.bytes.get(self.at) {
            if b < 0x80 {
                self.at += 1;
                return Ok(u64::from(b));
            }
        }
        self.varint_slow(what)
    }

    fn varint_slow(&mut self, what: &str) -> std::result::Result<u64, String> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.u8(what)?;
            if i == 9 && b > 1 {
                return Err(format!("{what} is a varint longer than 64 bits"));
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                if b == 0 && i > 0 {
                    return Err(format!("{what} is a varint with redundant bytes"));
                }
                return Ok(v);
            }
        }
        Err(format!("{what} is a varint longer than 64 bits"))
    }

    /// The bytes of `count` packed values of `width` bits (`width <= 32`), as a [`Bits`]
    /// reader. The caller bounds `count` when `width` is 0 (no bytes are read then).
    pub(super) fn bit_array(
        &mut self,
        count: usize,
        width: u32,
        what: &str,
    ) -> std::result::Result<Bits<'a>, String> {
        Ok(Bits::new(self.packed(count, width, what)?, width))
    }

    /// The bytes of `count` packed values of `width` bits (see [`put_bits`]), for a reader
    /// of its own.
    pub(super) fn packed(
        &mut self,
        count: usize,
        width: u32,
        what: &str,
    ) -> std::result::Result<&'a [u8], String> {
        let n_bits = count
            .checked_mul(width as usize)
            .ok_or_else(|| format!("{what}: {count} values of {width} bits overflow"))?;
        self.take(n_bits.div_ceil(8), what)
    }

    /// `count` values of `width` bits, collected.
    #[cfg(test)]
    pub(super) fn bits(
        &mut self,
        count: usize,
        width: u32,
        what: &str,
    ) -> std::result::Result<Vec<u32>, String> {
        let mut bits = self.bit_array(count, width, what)?;
        let out = (0..count).map(|_| bits.next()).collect();
        bits.finish(what)?;
        Ok(out)
    }
}
