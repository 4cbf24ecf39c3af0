//! Probe sets: a few synthetic rows and the exact probabilities the model gave them at save.
//!
//! A checksum proves the bytes did not change; it cannot prove the *code* reading them still
//! predicts the same (a new woodlot, a changed traversal rule, a float32/float64 mix-up). So at
//! save the store builds rows from the forest's own split thresholds, predicts them once, and
//! keeps rows and probabilities as a blob. `load(verify=True)`, `rollback` and `verify()` replay
//! them and demand bit-identical probabilities.
//!
//! The rows come from the model, never from the training data (the store never sees it): each
//! value sits exactly on a threshold (goes left), one ulp above it (goes right), between two
//! thresholds, or outside all of them. Values on and just past thresholds are the ones most
//! sensitive to a change in how splits compare, which is what the replay is meant to catch.
//!
//! The blob is binary and little-endian: `WDLPROBE`, format u32, rows u32, features u32,
//! classes u32, then `rows*features` f32 values and `rows*classes` f64 probabilities. Decoding
//! checks every length before allocating.

use ndarray::Array2;

use crate::error::{Result, WoodlotError};
use crate::forest::Forest;
use crate::rng::Rng;

const MAGIC: &[u8; 8] = b"WDLPROBE";
const FORMAT: u32 = 1;
const HEADER_LEN: usize = 8 + 4 * 4;
/// Seed of the row generator: fixed, so the same model always gets the same probes.
const SEED: u64 = 0x5052_4F42_4553; // "PROBES"

/// Probe rows and the probabilities the model gave them.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeSet {
    /// `rows x n_features` inputs.
    pub x: Array2<f32>,
    /// `rows x n_classes` probabilities, as predicted at save.
    pub proba: Array2<f64>,
}

/// How many probe rows a model of this width gets: 64, fewer for very wide data so the blob
/// stays around a megabyte at most.
pub fn default_rows(n_features: usize) -> usize {
    (262_144 / n_features.max(1)).clamp(4, 64)
}

/// The float just above `t` (`t.next_up()` without needing a newer toolchain).
fn next_up(t: f32) -> f32 {
    if t.is_nan() || t == f32::INFINITY {
        return t;
    }
    if t == 0.0 {
        return f32::from_bits(1);
    }
    let b = t.to_bits();
    f32::from_bits(if t > 0.0 { b + 1 } else { b - 1 })
}

/// Builds `rows` probe rows from the forest's thresholds and records its probabilities for them.
pub fn build(forest: &Forest, rows: usize) -> Result<ProbeSet> {
    let nf = forest.n_features as usize;
    // `n_features` of a decoded forest is bounded by its file's size (see `format::Claims`);
    // still, never let a product overflow into a panic.
    if rows
        .checked_mul(nf)
        .and_then(|v| v.checked_mul(4))
        .is_none()
    {
        return Err(WoodlotError::input(format!(
            "{rows} probe rows of {nf} features do not fit in memory"
        )));
    }
    let thresholds = thresholds_by_feature(forest);
    let mut rng = Rng::new(SEED);
    let mut x = Array2::<f32>::zeros((rows, nf));
    for r in 0..rows {
        // Features no tree splits on are absent: any value does, they keep 0.
        for (f, ts) in &thresholds {
            let f = *f as usize;
            let i = rng.below(ts.len() as u64) as usize;
            let t = ts[i];
            x[[r, f]] = match rng.below(4) {
                0 => t,
                1 => next_up(t),
                2 => match ts.get(i + 1) {
                    Some(u) => t + (u - t) / 2.0,
                    None => t + t.abs().max(1.0),
                },
                _ => {
                    if i == 0 {
                        t - t.abs().max(1.0)
                    } else {
                        t
                    }
                }
            };
        }
    }
    let proba = forest.predict_proba(x.view(), 1)?;
    Ok(ProbeSet { x, proba })
}

/// The sorted distinct finite thresholds of every feature some tree splits on, in feature
/// order. Sized by the forest's split nodes, not by `n_features` (a wide forest that splits on
/// a few features needs a few lists, not one per feature).
fn thresholds_by_feature(forest: &Forest) -> Vec<(u32, Vec<f32>)> {
    let mut pairs: Vec<(u32, f32)> = forest
        .trees
        .iter()
        .flat_map(|tree| tree.nodes.iter())
        .filter(|n| !n.is_leaf() && n.threshold.is_finite() && n.feature() < forest.n_features)
        .map(|n| (n.feature(), n.threshold))
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    // Equal under `==` (-0.0 and 0.0 are one threshold, the first in total order kept).
    pairs.dedup_by(|b, a| a.0 == b.0 && a.1 == b.1);
    let mut out: Vec<(u32, Vec<f32>)> = Vec::new();
    for (f, t) in pairs {
        match out.last_mut() {
            Some((last, ts)) if *last == f => ts.push(t),
            _ => out.push((f, vec![t])),
        }
    }
    out
}

impl ProbeSet {
    /// The blob bytes.
    pub fn encode(&self) -> Vec<u8> {
        let (rows, nf) = self.x.dim();
        let nc = self.proba.ncols();
        let mut out = Vec::with_capacity(HEADER_LEN + rows * nf * 4 + rows * nc * 8);
        out.extend_from_slice(MAGIC);
        for v in [FORMAT, rows as u32, nf as u32, nc as u32] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in self.x.iter() {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in self.proba.iter() {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// Parses a blob, checking magic, format and exact length before allocating.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let bad = |why: &str| WoodlotError::corrupt(format!("probe set: {why}"));
        if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
            return Err(bad("not a probe set (bad magic or too short)"));
        }
        let word = |i: usize| {
            u32::from_le_bytes(bytes[8 + 4 * i..12 + 4 * i].try_into().unwrap()) as usize
        };
        let (format, rows, nf, nc) = (word(0), word(1), word(2), word(3));
        if format != FORMAT as usize {
            return Err(bad(&format!("unknown format {format}")));
        }
        let want = rows
            .checked_mul(nf)
            .and_then(|a| a.checked_mul(4))
            .and_then(|a| {
                rows.checked_mul(nc)
                    .and_then(|b| b.checked_mul(8))
                    .and_then(|b| a.checked_add(b))
            })
            .and_then(|a| a.checked_add(HEADER_LEN));
        if want != Some(bytes.len()) {
            return Err(bad("length does not match its header"));
        }
        let mut off = HEADER_LEN;
        let xs: Vec<f32> = (0..rows * nf)
            .map(|i| f32::from_le_bytes(bytes[off + 4 * i..off + 4 * i + 4].try_into().unwrap()))
            .collect();
        off += rows * nf * 4;
        let ps: Vec<f64> = (0..rows * nc)
            .map(|i| f64::from_le_bytes(bytes[off + 8 * i..off + 8 * i + 8].try_into().unwrap()))
            .collect();
        Ok(Self {
            x: Array2::from_shape_vec((rows, nf), xs).map_err(|e| bad(&e.to_string()))?,
            proba: Array2::from_shape_vec((rows, nc), ps).map_err(|e| bad(&e.to_string()))?,
        })
    }

    /// Predicts the rows again and demands bit-identical probabilities.
    pub fn replay(&self, forest: &Forest) -> Result<()> {
        let (rows, nf) = self.x.dim();
        if nf != forest.n_features as usize || self.proba.ncols() != forest.n_classes as usize {
            return Err(WoodlotError::corrupt(format!(
                "probe set is {rows}x{nf} with {} classes but the model has {} features and {} classes",
                self.proba.ncols(),
                forest.n_features,
                forest.n_classes
            )));
        }
        let now = forest.predict_proba(self.x.view(), 1)?;
        for ((r, k), want) in self.proba.indexed_iter() {
            let got = now[[r, k]];
            if got.to_bits() != want.to_bits() {
                return Err(WoodlotError::corrupt(format!(
                    "probe replay failed: row {r}, class {k}: saved probability {want:?}, now {got:?}; \
                     the model no longer predicts as it did when it was saved"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testutil::tiny_forest;

    #[test]
    fn next_up_steps_one_ulp() {
        assert!(next_up(1.0) > 1.0 && next_up(1.0) - 1.0 < 1e-6);
        assert!(next_up(-1.0) > -1.0);
        assert!(next_up(0.0) > 0.0);
        assert!(next_up(-0.0) > 0.0);
    }

    #[test]
    fn probes_round_trip_and_replay() {
        let forest = tiny_forest();
        let p = build(&forest, 16).unwrap();
        assert_eq!(p.x.dim(), (16, forest.n_features as usize));
        // Both sides of the root split are exercised.
        let t = forest.trees[0].nodes[0].threshold;
        let f = forest.trees[0].nodes[0].feature() as usize;
        assert!(p.x.column(f).iter().any(|v| *v <= t) && p.x.column(f).iter().any(|v| *v > t));
        let bytes = p.encode();
        let q = ProbeSet::decode(&bytes).unwrap();
        assert_eq!(p, q);
        q.replay(&forest).unwrap();
        assert_eq!(build(&forest, 16).unwrap(), p, "probes are deterministic");
    }

    #[test]
    fn replay_catches_a_changed_model() {
        let forest = tiny_forest();
        let p = build(&forest, 32).unwrap();
        let mut changed = forest.clone();
        let root = &mut changed.trees[0].nodes[0];
        root.threshold = next_up(root.threshold);
        let err = p.replay(&changed).unwrap_err();
        assert!(
            matches!(err, WoodlotError::CorruptModel(ref m) if m.contains("probe replay failed"))
        );
    }

    #[test]
    fn damaged_blobs_are_rejected() {
        let p = build(&tiny_forest(), 8).unwrap();
        let bytes = p.encode();
        for cut in [0, 7, 8, HEADER_LEN - 1, HEADER_LEN, bytes.len() - 1] {
            assert!(ProbeSet::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(ProbeSet::decode(&long).is_err());
        let mut huge = bytes.clone();
        huge[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(ProbeSet::decode(&huge).is_err());
    }

    #[test]
    fn probe_rows_are_the_ones_earlier_versions_built() {
        // Stores keep probes built at save; a rebuilt probe set must stay the same bytes for
        // the same model (frozen digest of a fitted forest's probes).
        use crate::forest::ForestParams;
        let mut rng = Rng::new(5);
        let x = Array2::from_shape_fn((300, 7), |(i, j)| {
            if j == 6 {
                0.0
            } else {
                (rng.unit_f64() * 8.0).round() - 4.0 + (i % 3) as f64
            }
        });
        let y: Vec<u32> = (0..300).map(|i| (i % 3) as u32).collect();
        let params = ForestParams {
            n_estimators: 6,
            random_state: 3,
            ..Default::default()
        };
        let forest = Forest::fit(x.view(), &y, 3, None, &params, 1).unwrap();
        let bytes = build(&forest, default_rows(7)).unwrap().encode();
        assert_eq!(
            blake3::hash(&bytes).to_hex().to_string(),
            "6bb2e16a4e94798d40eeaec542cd2c351af91e3f6c48eaa24555406902e7722e"
        );
    }
}
