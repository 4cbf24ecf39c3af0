//! BLAKE3 fingerprints of data sets.
//!
//! A version records the fingerprint of the exact data it was trained on, and a comparison the
//! fingerprint of the data it was evaluated on, so "were these two numbers measured on the same
//! rows?" has a checkable answer. Values are hashed as little-endian `f64` in row-major order
//! with the shape in front, so the fingerprint does not depend on the array's dtype width,
//! memory layout or strides, only on its values.

use ndarray::ArrayView2;

use crate::value::FeatureValue;

/// Incremental fingerprint of a data set made of several parts (features, labels, weights).
pub struct Fingerprinter {
    hasher: blake3::Hasher,
}

impl Default for Fingerprinter {
    fn default() -> Self {
        Self::new()
    }
}

impl Fingerprinter {
    /// Starts an empty fingerprint.
    pub fn new() -> Self {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"woodlot-data-fingerprint-v1");
        Self { hasher }
    }

    /// Adds a tagged part so that, say, labels can never be confused with weights.
    fn tag(&mut self, tag: &[u8], len: u64) {
        self.hasher.update(&(tag.len() as u64).to_le_bytes());
        self.hasher.update(tag);
        self.hasher.update(&len.to_le_bytes());
    }

    /// Adds a feature matrix, row-major, values as `f64` (NaN canonicalised).
    pub fn matrix<T: FeatureValue>(&mut self, name: &str, x: ArrayView2<'_, T>) -> &mut Self {
        self.tag(name.as_bytes(), x.nrows() as u64);
        self.hasher.update(&(x.ncols() as u64).to_le_bytes());
        let mut buf = Vec::with_capacity(x.ncols() * 8);
        for row in x.rows() {
            buf.clear();
            for v in row.iter() {
                let v = v.to_f64();
                let v = if v.is_nan() { f64::NAN } else { v };
                buf.extend_from_slice(&v.to_le_bytes());
            }
            self.hasher.update(&buf);
        }
        self
    }

    /// Adds a vector of numbers (labels, weights) as `f64`.
    pub fn numbers(&mut self, name: &str, values: impl ExactSizeIterator<Item = f64>) -> &mut Self {
        self.tag(name.as_bytes(), values.len() as u64);
        for v in values {
            self.hasher.update(&v.to_le_bytes());
        }
        self
    }

    /// Adds a list of strings (e.g. labels that are not numbers).
    pub fn strings<'a>(
        &mut self,
        name: &str,
        values: impl ExactSizeIterator<Item = &'a str>,
    ) -> &mut Self {
        self.tag(name.as_bytes(), values.len() as u64);
        for v in values {
            self.hasher.update(&(v.len() as u64).to_le_bytes());
            self.hasher.update(v.as_bytes());
        }
        self
    }

    /// The fingerprint as 64 lowercase hex digits.
    pub fn hex(&self) -> String {
        self.hasher.finalize().to_hex().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn layout_and_dtype_do_not_matter_values_do() {
        let a = array![[1.0f64, 2.0], [3.0, 4.0]];
        let f = a.t().to_owned().reversed_axes(); // same values, Fortran order
        let a32 = a.mapv(|v| v as f32);
        let h = |fp: &mut Fingerprinter| fp.hex();
        let h1 = h(Fingerprinter::new().matrix("X", a.view()));
        let h2 = h(Fingerprinter::new().matrix("X", f.view()));
        let h3 = h(Fingerprinter::new().matrix("X", a32.view()));
        assert_eq!(h1, h2);
        assert_eq!(h1, h3);
        let b = array![[1.0f64, 2.0], [3.0, 4.5]];
        assert_ne!(h1, h(Fingerprinter::new().matrix("X", b.view())));
    }

    #[test]
    fn parts_are_not_confused() {
        let one = Fingerprinter::new()
            .numbers("y", [1.0, 2.0].into_iter())
            .hex();
        let two = Fingerprinter::new()
            .numbers("w", [1.0, 2.0].into_iter())
            .hex();
        assert_ne!(one, two);
    }
}
