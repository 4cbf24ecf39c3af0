//! What a model file of a given size may claim.
//!
//! A few counts in a file size things long after decoding: `n_features` sizes every probe row,
//! the compiled layout's cut table and `feature_importances_`; `n_classes` sizes every
//! probability row; `n_trees` sizes the tree vector. A damaged or hostile file of a kilobyte
//! could claim 2^32 - 1 features, 2^16 classes or millions of trees, and the first thing sized
//! from the claim would abort the process. So each claim is checked against what the file's
//! bytes can really hold, before anything is sized from it, and the encoder applies the same
//! rule so it never writes a file the decoder refuses:
//!
//! - `n_features <= max(FEATURES_FLOOR, file size)`: nothing in the file costs a byte per
//!   feature, so a real wide model trained on `n` features may be smaller than `n` bytes; the
//!   floor keeps every realistic model readable while bounding what a tiny file can make
//!   others allocate (a few MB), and above it a claimed feature costs a byte of file;
//! - `n_classes <= 8 * payload size`: every tree stores `n_classes` values for each leaf, each
//!   at least one bit;
//! - `n_trees <= payload size / MIN_TREE_BYTES`: every tree costs at least that many bytes.
//!
//! Together with the bounded decode (see [`file`](super::file)), this makes "a model file never
//! makes woodlot allocate much more than its own size" true: at most a small constant factor
//! (the tests hold decoding to [`MAX_DECODE_RATIO`] bytes per byte of file, see
//! `hostile_tests.rs`).

use crate::error::{Result, WoodlotError};

/// Feature counts up to this are accepted from a file of any size.
pub const FEATURES_FLOOR: u64 = 1 << 16;

/// The fewest bytes a tree takes in the payload (length, node count, leaf bits, four column
/// modes, an `n_samples` varint).
pub const MIN_TREE_BYTES: usize = 8;

/// What decoding a file may allocate, per byte of the file (plus a small constant): a
/// dictionary-coded `f32` column spends one bit per value and decodes to 32, a node costs
/// about 1.4 bytes and takes 32 in memory plus the validator's 9.
pub const MAX_DECODE_RATIO: usize = 48;

/// The counts a file claims, checked against its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claims {
    /// Number of input features.
    pub n_features: u32,
    /// Number of classes.
    pub n_classes: u32,
    /// Number of trees.
    pub n_trees: u64,
}

impl Claims {
    /// Refuses (as corrupt) a claim the file's bytes cannot back: `file_len` is the whole
    /// file, `payload_len` its payload section.
    pub fn check(&self, file_len: usize, payload_len: usize) -> Result<()> {
        let max_features = most_features(file_len);
        if u64::from(self.n_features) > max_features {
            return Err(WoodlotError::corrupt(format!(
                "file claims {} features but a model file of {file_len} bytes holds at most \
                 {max_features}: it is damaged or was not written by woodlot",
                self.n_features
            )));
        }
        let max_classes = (payload_len as u64).saturating_mul(8);
        if u64::from(self.n_classes) > max_classes {
            return Err(WoodlotError::corrupt(format!(
                "file claims {} classes but its payload of {payload_len} bytes holds at most \
                 {max_classes} (every leaf stores a value per class)",
                self.n_classes
            )));
        }
        let max_trees = (payload_len / MIN_TREE_BYTES) as u64;
        if self.n_trees > max_trees {
            return Err(WoodlotError::corrupt(format!(
                "file claims {} trees but its payload of {payload_len} bytes holds at most \
                 {max_trees}",
                self.n_trees
            )));
        }
        Ok(())
    }
}

/// The most features a file of `file_len` bytes may claim.
pub fn most_features(file_len: usize) -> u64 {
    FEATURES_FLOOR.max(file_len as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(n_features: u32, n_classes: u32, n_trees: u64) -> Claims {
        Claims {
            n_features,
            n_classes,
            n_trees,
        }
    }

    #[test]
    fn a_kilobyte_cannot_claim_huge_counts() {
        let (file, payload) = (1024, 900);
        claims(65_536, 7_200, 112).check(file, payload).unwrap();
        for (c, what) in [
            (claims(u32::MAX, 3, 1), "features"),
            (claims(65_537, 3, 1), "features"),
            (claims(3, 1 << 16, 1), "classes"),
            (claims(3, 7_201, 1), "classes"),
            (claims(3, 3, 3_000_000), "trees"),
            (claims(3, 3, 113), "trees"),
        ] {
            let err = c.check(file, payload).unwrap_err();
            assert!(
                matches!(&err, WoodlotError::CorruptModel(m) if m.contains(what)),
                "{c:?}: {err}"
            );
        }
    }

    #[test]
    fn large_files_may_claim_proportionally_more_features() {
        claims(5_000_000, 3, 1).check(5_000_000, 100).unwrap();
        assert!(claims(5_000_001, 3, 1).check(5_000_000, 100).is_err());
    }
}
