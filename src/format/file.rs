//! Whole model files: encoding and decoding, header to payload.
//!
//! [`decode`] runs every check in order, each before the next step allocates: size, magic,
//! version, flags, lengths ([`Header::parse`]), checksum, meta JSON, bounded payload decode
//! (consumed exactly), meta/payload agreement, then [`validate_forest`].
//!
//! # Bounding the payload decode
//!
//! The payload is a bincode head (everything but the trees) and the trees in their own
//! struct-of-arrays layout ([`payload`](super::payload)). bincode 2 decodes an owned `String` by
//! allocating the claimed length before reading it, and checks the claim only against its
//! limit, a const generic (so it cannot be the payload's runtime length). Without a limit a
//! hostile length prefix aborts the process; with any fixed limit, a claim just below it still
//! allocates it. So the head is decoded through [`Bounded`](super::bounded), which sends strings
//! and byte buffers down bincode's borrowed path: the bytes must exist in the payload before
//! anything is allocated for them. Sequences (the out-of-bag estimates) go through serde, which
//! preallocates at most 1 MiB whatever the claimed length, then grows only as elements really
//! decode. The trees' reader checks every length against the bytes that remain before it
//! allocates, and the counts the meta and the head claim (features, classes, trees) are checked
//! against the file's size ([`Claims`]) before anything is sized from them.

use super::claims::{most_features, Claims, FEATURES_FLOOR};
use super::header::{seal, Header, FLAG_MULTI_OUTPUT, HEADER_LEN, MAX_META_LEN, MAX_PAYLOAD_LEN};
use super::meta::ModelMeta;
use super::payload;
use super::valid::ValidForest;
use super::validate::{
    in_parallel, tree_error, validate_decoded_tree, validate_forest, validate_forest_head,
};
use crate::error::{Result, WoodlotError};
use crate::forest::compiled::CompiledTree;
use crate::forest::{Forest, Predictor};
use crate::tree::Tree;
use std::sync::Arc;

/// Encodes `forest` as a model file, with `estimator` (a JSON object: classes, their dtype,
/// feature names, params) as the Python face recorded in the meta.
///
/// The forest is validated first: the encoder never writes a file the decoder would reject.
/// The output is a pure function of the inputs (byte-identical across runs).
pub fn encode(forest: &Forest, estimator: &serde_json::Value) -> Result<Vec<u8>> {
    validate_forest(forest).map_err(|e| match e {
        WoodlotError::CorruptModel(reason) => {
            WoodlotError::corrupt(format!("refusing to save an invalid forest: {reason}"))
        }
        other => other,
    })?;
    encode_checked(forest, estimator)
}

/// [`encode`] of a forest known to be valid ([`ValidForest`]), which skips validating it again:
/// the same bytes.
pub fn encode_valid(forest: &ValidForest, estimator: &serde_json::Value) -> Result<Vec<u8>> {
    encode_checked(forest.forest(), estimator)
}

/// [`encode`] after its validation.
fn encode_checked(forest: &Forest, estimator: &serde_json::Value) -> Result<Vec<u8>> {
    let meta = ModelMeta::for_forest(forest, estimator)?.to_json()?;
    let payload = payload::encode_payload(forest)?;
    // usize -> u64 widens on every target Rust supports.
    let (meta_len, payload_len) = (meta.len() as u64, payload.len() as u64);
    if meta_len > MAX_META_LEN {
        return Err(WoodlotError::input(format!(
            "model meta is {meta_len} bytes, more than a model file holds ({MAX_META_LEN})"
        )));
    }
    if payload_len > MAX_PAYLOAD_LEN {
        return Err(WoodlotError::input(format!(
            "forest encodes to {payload_len} bytes, more than a model file holds \
             ({MAX_PAYLOAD_LEN})"
        )));
    }
    let mut out = Vec::with_capacity(HEADER_LEN + meta.len() + payload.len());
    let mut header = Header::new(meta_len, payload_len);
    if forest.is_multi_output() {
        header.flags |= FLAG_MULTI_OUTPUT;
    }
    out.extend_from_slice(&header.to_bytes());
    out.extend_from_slice(&meta);
    out.extend_from_slice(&payload);
    seal(&mut out)?;
    // The decoder bounds what a file may claim by its size (see `claims`); never write a file
    // it would refuse. Only a very wide forest in a very small file can fail here.
    if u64::from(forest.n_features) > most_features(out.len()) {
        return Err(WoodlotError::input(format!(
            "cannot save a forest of {} features in a model file of {} bytes: a model file \
             holds at most {} features (one per byte of the file, at least {FEATURES_FLOOR})",
            forest.n_features,
            out.len(),
            most_features(out.len())
        )));
    }
    Ok(out)
}

/// Decodes and fully checks a model file, returning the forest and its meta.
///
/// Every failed check is [`WoodlotError::CorruptModel`] with the reason. Never panics, and
/// whatever the bytes, never allocates more than a small multiple of the file's size
/// ([`MAX_DECODE_RATIO`](super::claims::MAX_DECODE_RATIO) bytes per byte, tested): the counts
/// the file claims are checked against its size ([`Claims`]) before anything is sized from
/// them.
pub fn decode(bytes: &[u8]) -> Result<(Forest, ModelMeta)> {
    let (header, meta, payload) = claimed_payload(bytes)?;
    let mut forest = payload::decode_payload(payload, bytes.len())?;
    adopt_meta(&header, &meta, &mut forest)?;
    validate_forest(&forest)?;
    Ok((forest, meta))
}

/// The checked header and meta and the payload section, once the meta's counts pass
/// [`Claims`]: a claim the file cannot back is refused before the payload is read (the
/// payload's own counts are checked again, then must agree with these).
fn claimed_payload(bytes: &[u8]) -> Result<(Header, ModelMeta, &[u8])> {
    let (header, meta) = checked_meta(bytes)?;
    let (_, payload) = header.sections(bytes)?;
    Claims {
        n_features: meta.n_features,
        n_classes: meta.n_classes,
        n_trees: u64::from(meta.n_trees),
    }
    .check(bytes.len(), payload.len())?;
    Ok((header, meta, payload))
}

/// What the meta holds of a decoded forest, handed over once the two agree: the training
/// histogram (format 2.1; older readers skip it) and a multi-output forest's class counts,
/// which must agree with the header's multi-output flag. Both are checked with the rest of the
/// forest.
fn adopt_meta(header: &Header, meta: &ModelMeta, forest: &mut Forest) -> Result<()> {
    meta.check_matches(forest)?;
    forest.training_histogram = meta.training_histogram.clone();
    forest.output_classes = meta.output_classes.clone();
    if (header.flags & FLAG_MULTI_OUTPUT != 0) != forest.is_multi_output() {
        return Err(WoodlotError::corrupt(format!(
            "the header's multi-output flag is {} but the meta lists {} outputs",
            if header.flags & FLAG_MULTI_OUTPUT != 0 {
                "set"
            } else {
                "clear"
            },
            forest.outputs().len()
        )));
    }
    Ok(())
}

/// A model file decoded for serving: its forest ready to predict, the proof that it is valid
/// (so saving it again skips the check), and its meta.
#[derive(Debug)]
pub struct LoadedModel {
    /// The forest with its prediction layout built.
    pub predictor: Predictor,
    /// The same forest, validated.
    pub valid: ValidForest,
    /// The file's meta.
    pub meta: ModelMeta,
}

/// [`decode`], then the prediction layout ([`Predictor`]), with every check of `decode` and
/// the same first error for any input. Each tree is validated and compiled in the parallel
/// task that decodes it, while its arrays are in that core's cache, instead of in two more
/// passes over the whole forest; a tree's failed validation is reported only after the checks
/// `decode` runs before validating trees (every tree decodes, the meta agrees, the forest's own
/// facts pass), so the first error is `decode`'s.
pub fn decode_for_prediction(bytes: &[u8]) -> Result<LoadedModel> {
    let (header, meta, payload) = claimed_payload(bytes)?;
    // Each output's part of a leaf row sums to 1: the meta's outputs (checked against the
    // forest before any tree's failure is reported), or one output of every class.
    let check_and_compile = |t: usize, tree: &Tree, n_features: u32, n_classes: u32| {
        let one_output = [n_classes];
        let outputs: &[u32] = if meta.output_classes.is_empty() {
            &one_output
        } else {
            &meta.output_classes
        };
        // Compiled first: a tree the compiler lays out with class-vote leaves has only pure
        // leaf rows, which pass the leaf-row rule when all the classes are one output. (The
        // compiler refuses what it cannot lay out; a tree that then fails its checks is never
        // used.)
        let compiled = CompiledTree::new(tree, n_features as usize, n_classes as usize);
        let single_output = outputs == [n_classes];
        let rows_pure = single_output && compiled.as_ref().is_some_and(CompiledTree::votes);
        validate_decoded_tree(tree, n_features, n_classes, outputs, rows_pure)
            .map_err(|reason| tree_error(t, reason))?;
        Ok(compiled)
    };
    let (mut forest, checked) =
        payload::decode_payload_with(payload, bytes.len(), &check_and_compile)?;
    adopt_meta(&header, &meta, &mut forest)?;
    validate_forest_head(&forest)?;
    // The first failed tree in tree order, as `validate_forest` reports it.
    let pieces = checked.into_iter().collect::<Result<Vec<_>>>()?;
    let forest = Arc::new(forest);
    let predictor = in_parallel(|| Predictor::from_compiled_trees(Arc::clone(&forest), pieces))?;
    Ok(LoadedModel {
        predictor,
        valid: ValidForest::validated_by_decoder(forest),
        meta,
    })
}

/// Reads only the header and meta of a model file (for listings), after the header checks and
/// the checksum. The checksum covers the whole file, so this reads every byte, but it never
/// decodes the payload.
pub fn read_meta(bytes: &[u8]) -> Result<ModelMeta> {
    checked_meta(bytes).map(|(_, meta)| meta)
}

/// BLAKE3 of the whole file (checksum field included), in lowercase hex: the file's content
/// address.
pub fn digest_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// Size, magic, version, flags, lengths, checksum, meta.
fn checked_meta(bytes: &[u8]) -> Result<(Header, ModelMeta)> {
    let header = Header::parse(bytes)?;
    header.verify_checksum(bytes)?;
    let (meta, _) = header.sections(bytes)?;
    Ok((header, ModelMeta::from_json(meta)?))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::format::testutil::{
        assemble, balanced_tree, estimator, largest_allocation_during, reseal, sample_forest,
        sections, FINGERPRINT,
    };

    fn encoded() -> Vec<u8> {
        encode(&sample_forest(), &estimator()).unwrap()
    }

    fn reason(bytes: &[u8]) -> String {
        let m = match decode(bytes) {
            Err(WoodlotError::CorruptModel(m)) => m,
            Err(other) => panic!("expected CorruptModel, got {other:?}"),
            Ok(_) => panic!("expected an error, the file decoded"),
        };
        // The serving decoder refuses every such file with the same first error.
        match decode_for_prediction(bytes) {
            Err(WoodlotError::CorruptModel(fused)) => assert_eq!(fused, m),
            other => panic!("decode says {m:?}, decode_for_prediction {other:?}"),
        }
        m
    }

    /// `decode_for_prediction` gives what `decode` then `Predictor::new` give, or the same
    /// first error.
    fn assert_same_as_decode(bytes: &[u8]) -> bool {
        match (decode(bytes), decode_for_prediction(bytes)) {
            (Ok((forest, meta)), Ok(loaded)) => {
                assert_eq!(**loaded.valid.forest(), forest);
                assert!(Arc::ptr_eq(
                    loaded.valid.forest(),
                    loaded.predictor.forest()
                ));
                assert_eq!(loaded.meta, meta);
                assert_eq!(
                    loaded.predictor.compiled(),
                    Predictor::new(forest).compiled()
                );
                true
            }
            (Err(a), Err(b)) => {
                assert_eq!(a.to_string(), b.to_string());
                false
            }
            (a, b) => panic!("decode gave {a:?}, decode_for_prediction {b:?}"),
        }
    }

    /// Calls `check` on a copy of `bytes` with each bit past the header flipped, and with each
    /// byte past the header set to 0xff (huge lengths).
    fn for_every_tampering(bytes: &[u8], check: &mut impl FnMut(&mut Vec<u8>)) {
        for i in HEADER_LEN..bytes.len() {
            for bit in 0..8 {
                let mut copy = bytes.to_vec();
                copy[i] ^= 1 << bit;
                check(&mut copy);
            }
            let mut copy = bytes.to_vec();
            copy[i] = 0xff;
            check(&mut copy);
        }
    }

    #[test]
    fn decoding_for_prediction_agrees_with_decode_on_every_tampered_byte() {
        let bytes = encoded();
        assert!(assert_same_as_decode(&bytes));
        let limit = 1 << 20;
        let mut accepted = 0;
        let mut check = |copy: &mut Vec<u8>| {
            reseal(copy);
            let (same, peak) = largest_allocation_during(|| assert_same_as_decode(copy));
            assert!(
                peak <= limit,
                "a tampered file allocated {peak} bytes at once"
            );
            accepted += usize::from(same);
        };
        for_every_tampering(&bytes, &mut check);
        assert!(accepted > 0, "some flips decode to another valid forest");
    }

    /// A forest known valid saves to the bytes `encode` writes after checking it.
    #[test]
    fn encode_valid_writes_the_bytes_encode_writes() {
        let forest = Arc::new(sample_forest());
        let valid = crate::format::ValidForest::check(Arc::clone(&forest)).unwrap();
        assert_eq!(encode_valid(&valid, &estimator()).unwrap(), encoded());
        let loaded = decode_for_prediction(&encoded()).unwrap();
        assert_eq!(
            encode_valid(&loaded.valid, &estimator()).unwrap(),
            encoded()
        );
        // The check is validate_forest's.
        let mut broken = sample_forest();
        broken.trees[0].nodes[2].left = 1;
        let e = crate::format::ValidForest::check(Arc::new(broken)).unwrap_err();
        assert!(e.to_string().contains("tree 0 node 2"), "{e}");
    }

    #[test]
    fn round_trip() {
        let bytes = encoded();
        let (forest, meta) = decode(&bytes).unwrap();
        assert_eq!(forest, sample_forest());
        assert_eq!(meta, ModelMeta::for_forest(&forest, &estimator()).unwrap());
        assert_eq!(meta.estimator, estimator());
        assert_eq!(meta.library_version, env!("CARGO_PKG_VERSION"));
        assert_eq!(read_meta(&bytes).unwrap(), meta);
        assert_eq!(&bytes[..8], b"\x89WDL\r\n\x1a\n");
    }

    #[test]
    fn encode_is_byte_exact_and_stable_through_a_round_trip() {
        let a = encoded();
        assert_eq!(a, encoded());
        let (forest, meta) = decode(&a).unwrap();
        assert_eq!(encode(&forest, &meta.estimator).unwrap(), a);
        assert_eq!(digest_hex(&a), digest_hex(&encoded()));
    }

    #[test]
    fn digest_is_blake3_of_the_whole_file() {
        let a = encoded();
        let d = digest_hex(&a);
        assert_eq!(d.len(), 64);
        assert!(d
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
        assert_eq!(d, blake3::hash(&a).to_hex().as_str());
        let mut f = sample_forest();
        f.fit_info.n_samples = 5;
        f.oob = None;
        assert_ne!(digest_hex(&encode(&f, &estimator()).unwrap()), d);
    }

    #[test]
    fn encode_refuses_invalid_forests_and_non_object_estimators() {
        let mut f = sample_forest();
        f.trees[0].nodes[2].left = 1;
        let m = encode(&f, &estimator()).unwrap_err().to_string();
        assert!(
            m.contains("refusing to save an invalid forest: tree 0 node 2"),
            "{m}"
        );
        // A forest the file cannot hold exactly (not in preorder) is refused too.
        let mut f = sample_forest();
        f.trees[0].nodes[0].left = 2;
        f.trees[0].nodes[0].right = 1;
        let m = encode(&f, &estimator()).unwrap_err().to_string();
        assert!(m.contains("not in depth-first preorder"), "{m}");
        let e = encode(&sample_forest(), &serde_json::json!(null)).unwrap_err();
        assert!(matches!(e, WoodlotError::InvalidInput(_)));
    }

    #[test]
    fn truncation_anywhere_is_rejected() {
        let bytes = encoded();
        let (meta_at, payload_at) = sections(&bytes);
        assert!(reason(&bytes[..0]).contains("empty"));
        for n in [1, 8, 20, 32, 63] {
            assert!(reason(&bytes[..n]).contains(&format!("file is {n} bytes, shorter")));
        }
        for n in [meta_at, meta_at + 1, (meta_at + payload_at) / 2, payload_at] {
            assert!(
                reason(&bytes[..n]).contains("truncated"),
                "{}",
                reason(&bytes[..n])
            );
        }
        for n in [
            payload_at + 1,
            (payload_at + bytes.len()) / 2,
            bytes.len() - 1,
        ] {
            assert!(
                reason(&bytes[..n]).contains("truncated"),
                "{}",
                reason(&bytes[..n])
            );
        }
    }

    #[test]
    fn every_flipped_bit_is_rejected() {
        let bytes = encoded();
        let mut copy = bytes.clone();
        for bit in 0..bytes.len() * 8 {
            copy[bit / 8] ^= 1 << (bit % 8);
            assert!(decode(&copy).is_err(), "flipping bit {bit} went unnoticed");
            assert!(
                read_meta(&copy).is_err(),
                "flipping bit {bit} went unnoticed"
            );
            copy[bit / 8] ^= 1 << (bit % 8);
        }
        assert_eq!(copy, bytes);
    }

    /// Past the checksum: every bit flip, and every byte set to 0xff (huge lengths), of the
    /// meta and payload with a recomputed checksum must give an error or a valid forest, never a
    /// panic, a hang, or a large allocation.
    #[test]
    fn tampering_behind_a_valid_checksum_never_panics() {
        let bytes = encoded();
        let limit = 1 << 20;
        let start = Instant::now();
        let mut accepted = 0;
        let mut check = |copy: &mut Vec<u8>| {
            reseal(copy);
            let (result, peak) = largest_allocation_during(|| decode(copy));
            assert!(
                peak <= limit,
                "a tampered file allocated {peak} bytes at once"
            );
            if let Ok((forest, _)) = result {
                validate_forest(&forest).unwrap();
                accepted += 1;
            }
        };
        for_every_tampering(&bytes, &mut check);
        // Some flips land in values no check can judge (a name, an impurity, a threshold).
        assert!(
            accepted > 0 && accepted < (bytes.len() - HEADER_LEN) * 9,
            "{accepted}"
        );
        assert!(start.elapsed() < Duration::from_secs(60));
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut bytes = encoded();
        bytes.push(0);
        assert!(reason(&bytes).contains("1 unexpected trailing bytes"));
        // The same byte counted into the payload, with a valid checksum: bincode stops early.
        let payload_len = u64::from_le_bytes(bytes[24..32].try_into().unwrap());
        bytes[24..32].copy_from_slice(&(payload_len + 1).to_le_bytes());
        reseal(&mut bytes);
        assert!(reason(&bytes).contains("payload has 1 trailing bytes after the forest"));
    }

    #[test]
    fn other_files_are_named() {
        let mut zip = b"PK\x03\x04\x14\x00\x00\x00\x08\x00".to_vec();
        zip.resize(300, 0);
        assert!(reason(&zip).contains("zip archive"), "{}", reason(&zip));
        let mut pickle = b"\x80\x04\x95\x1a\x01\x00\x00\x00\x00\x00\x00\x8c\x07sklearn".to_vec();
        pickle.resize(300, 0);
        assert!(reason(&pickle).contains("pickle"), "{}", reason(&pickle));
        assert!(reason(&pickle[..3]).contains("pickle"));
        assert!(reason(b"").contains("empty"));
    }

    #[test]
    fn version_and_flags_are_checked_even_with_a_valid_checksum() {
        let mut bytes = encoded();
        bytes[8..10].copy_from_slice(&7u16.to_le_bytes());
        reseal(&mut bytes);
        let m = reason(&bytes);
        assert!(
            m.contains("format version 7.1 is newer than this woodlot"),
            "{m}"
        );
        let mut bytes = encoded();
        bytes[12..16].copy_from_slice(&4u32.to_le_bytes());
        reseal(&mut bytes);
        assert!(reason(&bytes).contains("unknown flag bits 0x4"));
        // An earlier or a later minor version of the same major loads.
        for minor in [0u16, 3] {
            let mut bytes = encoded();
            bytes[10..12].copy_from_slice(&minor.to_le_bytes());
            reseal(&mut bytes);
            assert_eq!(decode(&bytes).unwrap().0, sample_forest());
        }
    }

    #[test]
    fn huge_lengths_neither_overflow_nor_allocate() {
        for (at, value) in [
            (16, 1u64 << 62),
            (24, 1u64 << 62),
            (16, u64::MAX),
            (24, u64::MAX - 63),
        ] {
            let mut bytes = encoded();
            bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
            reseal(&mut bytes);
            let (r, peak) = largest_allocation_during(|| decode(&bytes));
            assert!(r.is_err());
            assert!(peak < 4096, "{peak}");
        }
    }

    #[test]
    fn meta_must_agree_with_the_payload() {
        let bytes = encoded();
        let (meta_at, payload_at) = sections(&bytes);
        let mut meta: serde_json::Value =
            serde_json::from_slice(&bytes[meta_at..payload_at]).unwrap();
        meta["n_features"] = 4.into();
        let file = assemble(&serde_json::to_vec(&meta).unwrap(), &bytes[payload_at..]);
        assert!(reason(&file).contains("meta says n_features is 4 but the payload has 3"));
        meta["n_features"] = 3.into();
        meta["codec"] = "bincode1".into();
        let file = assemble(&serde_json::to_vec(&meta).unwrap(), &bytes[payload_at..]);
        assert!(reason(&file).contains("codec"));
        let file = assemble(b"{not json", &bytes[payload_at..]);
        assert!(reason(&file).contains("not a valid woodlot meta JSON"));
    }

    /// A histogram the meta carries is checked like the rest of the forest: a damaged one is
    /// refused with the reason, and the encoder refuses to write one.
    #[test]
    fn a_damaged_training_histogram_is_refused() {
        let mut forest = sample_forest();
        let x = ndarray::Array2::from_shape_fn((10, 3), |(i, j)| (i * (j + 1)) as f64);
        let binned = crate::tree::BinnedMatrix::from_matrix(x.view()).unwrap();
        forest.training_histogram = Some(crate::forest::TrainingHistogram::from_binned(&binned));
        forest.fit_info.n_samples = 10;
        let bytes = encode(&forest, &estimator()).unwrap();
        assert_eq!(decode(&bytes).unwrap().0, forest);
        let (meta_at, payload_at) = sections(&bytes);
        let mut meta: serde_json::Value =
            serde_json::from_slice(&bytes[meta_at..payload_at]).unwrap();
        meta["training_histogram"]["counts"][1][0] = 99.into();
        let file = assemble(&serde_json::to_vec(&meta).unwrap(), &bytes[payload_at..]);
        let m = reason(&file);
        assert!(
            m.contains("training histogram: the counts of feature 1"),
            "{m}"
        );
        meta["training_histogram"]["edges"] = serde_json::json!([[1.0]]);
        let file = assemble(&serde_json::to_vec(&meta).unwrap(), &bytes[payload_at..]);
        assert!(reason(&file).contains("for 3 features"));
        meta["training_histogram"] = serde_json::json!("not a histogram");
        let file = assemble(&serde_json::to_vec(&meta).unwrap(), &bytes[payload_at..]);
        assert!(reason(&file).contains("not a valid woodlot meta"));
        forest.fit_info.n_samples = 11;
        let m = encode(&forest, &estimator()).unwrap_err().to_string();
        assert!(
            m.contains("training histogram counts 10 rows, the fit 11"),
            "{m}"
        );
    }

    /// A change that breaks a forest.
    type Tamper = Box<dyn Fn(&mut Forest)>;

    /// Values the payload stores but only the validator can judge. (The child pointers and leaf
    /// rows are not stored: malformed structure is rejected by the payload reader, see its tests.)
    #[test]
    fn invalid_stored_values_are_rejected_after_decoding() {
        let bytes = encoded();
        let (meta_at, payload_at) = sections(&bytes);
        let meta = &bytes[meta_at..payload_at];
        let cases: Vec<(Tamper, &str)> = vec![
            (
                // Features take 2 bits for 3 features: 3 is the one value out of range.
                Box::new(|f| f.trees[0].nodes[0].set_feature(3)),
                "tree 0 node 0: feature 3 is out of range",
            ),
            (
                Box::new(|f| f.trees[0].nodes[2].threshold = f32::NAN),
                "tree 0 node 2: threshold is NaN",
            ),
            (
                Box::new(|f| f.trees[1].leaf_values[0] = 0.9),
                "tree 1 node 0: leaf values sum to",
            ),
            (
                Box::new(|f| f.trees[1].leaf_values[2] = f32::NAN),
                "tree 1 node 0: leaf value NaN",
            ),
            (
                Box::new(|f| f.trees[0].stats.impurity[3] = f32::INFINITY),
                "tree 0 node 3: impurity is inf",
            ),
            (
                Box::new(|f| f.trees[0].stats.weighted_n_samples[4] = -2.0),
                "tree 0 node 4: weighted_n_samples is -2",
            ),
        ];
        for (tamper, expected) in cases {
            let mut forest = sample_forest();
            tamper(&mut forest);
            let file = assemble(meta, &crate::format::payload::encode_unchecked(&forest));
            let m = reason(&file);
            assert!(m.contains(expected), "expected {expected:?}, got {m:?}");
        }
    }

    /// Byte offset of a `u64` length prefix in the payload, checked against its known value so a
    /// change in the forest's layout fails here instead of testing nothing.
    fn prefix_at(payload: &[u8], at: usize, expected: usize) -> usize {
        let v = u64::from_le_bytes(payload[at..at + 8].try_into().unwrap());
        assert_eq!(v, expected as u64, "payload layout changed: fix the offset");
        at
    }

    /// A file whose payload has `value` written over the u64 at `at`, with a valid checksum.
    fn with_prefix(bytes: &[u8], at: usize, value: u64) -> Vec<u8> {
        let (_, payload_at) = sections(bytes);
        let mut file = bytes.to_vec();
        file[payload_at + at..payload_at + at + 8].copy_from_slice(&value.to_le_bytes());
        reseal(&mut file);
        file
    }

    fn assert_fails_fast_and_small(file: &[u8], max_alloc: usize) -> String {
        let start = Instant::now();
        let (result, peak) = largest_allocation_during(|| decode(file));
        let took = start.elapsed();
        let m = match result {
            Err(WoodlotError::CorruptModel(m)) => m,
            other => panic!("expected CorruptModel, got {other:?}"),
        };
        assert!(
            peak <= max_alloc,
            "allocated {peak} bytes at once (max {max_alloc}): {m}"
        );
        assert!(took < Duration::from_secs(1), "took {took:?}: {m}");
        m
    }

    /// `payload` with the one-byte varint at `at` replaced by the varint of `claim`.
    fn with_varint(payload: &[u8], at: usize, claim: u64) -> Vec<u8> {
        assert!(payload[at] < 0x80, "payload layout changed: fix the offset");
        let mut out = payload[..at].to_vec();
        let mut v = claim;
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
        out.extend_from_slice(&payload[at + 1..]);
        out
    }

    #[test]
    fn hostile_tree_lengths_fail_fast_without_allocating() {
        let forest = sample_forest();
        let bytes = encoded();
        let (meta_at, payload_at) = sections(&bytes);
        let (meta, payload) = (&bytes[meta_at..payload_at], &bytes[payload_at..]);
        // Layout: head, n_trees varint, then per tree a length varint and the tree (node count
        // varint first). Both trees are short, so every varint here is one byte.
        let trees: Vec<Vec<u8>> = forest
            .trees
            .iter()
            .map(|t| crate::format::payload::tree_bytes(t, forest.n_features))
            .collect();
        let trees_len = 1 + trees.iter().map(|t| 1 + t.len()).sum::<usize>();
        let n_trees_at = payload.len() - trees_len;
        assert_eq!(payload[n_trees_at], 2, "payload layout changed");
        let len_at = n_trees_at + 1;
        assert_eq!(
            payload[len_at] as usize,
            trees[0].len(),
            "payload layout changed"
        );
        let nodes_at = len_at + 1;
        assert_eq!(payload[nodes_at], 5, "payload layout changed");
        for at in [n_trees_at, len_at, nodes_at] {
            for claim in [1u64 << 50, 1 << 32, (1 << 32) + 1, u64::MAX] {
                let file = assemble(meta, &with_varint(payload, at, claim));
                let m = assert_fails_fast_and_small(&file, 4096);
                assert!(m.contains("payload"), "{m}");
            }
        }
        // A node count the leaf bits cannot hold.
        let file = assemble(meta, &with_varint(payload, nodes_at, 100));
        let m = assert_fails_fast_and_small(&file, 4096);
        assert!(m.contains("payload: tree 0: "), "{m}");
    }

    #[test]
    fn hostile_string_lengths_fail_fast_without_allocating() {
        let bytes = encoded();
        let (_, payload_at) = sections(&bytes);
        let payload = &bytes[payload_at..];
        let text = payload
            .windows(FINGERPRINT.len())
            .position(|w| w == FINGERPRINT.as_bytes());
        let at = prefix_at(payload, text.unwrap() - 8, FINGERPRINT.len());
        let rest = (payload.len() - at - 8) as u64;
        for claim in [
            rest + 1,
            1 << 20,
            1 << 39,
            MAX_PAYLOAD_LEN,
            1 << 50,
            u64::MAX,
        ] {
            let m = assert_fails_fast_and_small(&with_prefix(&bytes, at, claim), 4096);
            assert!(
                m.contains("ends early") || m.contains("claims more than its"),
                "{m}"
            );
        }
    }

    #[test]
    fn a_large_forest_round_trips() {
        let mut forest = sample_forest();
        forest.trees = vec![
            balanced_tree(15, 3),
            balanced_tree(3, 3),
            balanced_tree(12, 3),
        ];
        validate_forest(&forest).unwrap();
        let bytes = encode(&forest, &estimator()).unwrap();
        let (_, payload_at) = sections(&bytes);
        assert!(bytes.len() - payload_at > 1 << 20);
        assert_eq!(decode(&bytes).unwrap().0, forest);
        let mut forest = sample_forest();
        forest.trees = vec![forest.trees[0].clone(); 20_000];
        let bytes = encode(&forest, &estimator()).unwrap();
        assert_eq!(decode(&bytes).unwrap().0, forest);
    }

    /// The builder's output must satisfy the validator: fit real forests and round-trip them.
    #[test]
    fn fitted_forests_round_trip() {
        use crate::forest::{ClassWeight, Criterion, ForestParams, SizeSpec};
        let n = 240;
        let x = ndarray::Array2::from_shape_fn((n, 4), |(i, j)| {
            let noise = ((i * 7 + j * 13) % 17) as f64;
            if j == 0 {
                (i % 3) as f64 * 10.0 + noise
            } else {
                noise
            }
        });
        let y: Vec<u32> = (0..n).map(|i| (i % 3) as u32).collect();
        let configs = [
            ForestParams {
                n_estimators: 8,
                oob_score: true,
                random_state: 7,
                ..ForestParams::default()
            },
            ForestParams {
                n_estimators: 5,
                max_depth: Some(4),
                criterion: Criterion::Entropy,
                class_weight: ClassWeight::BalancedSubsample,
                max_samples: Some(SizeSpec::Fraction(0.5)),
                random_state: 42,
                ..ForestParams::default()
            },
        ];
        for params in configs {
            let forest = Forest::fit(x.view(), &y, 3, None, &params, 1).unwrap();
            validate_forest(&forest).unwrap();
            let bytes = encode(&forest, &estimator()).unwrap();
            let (back, meta) = decode(&bytes).unwrap();
            assert_eq!(back, forest);
            // The training histogram travels in the meta, bit for bit.
            assert!(back.training_histogram.is_some());
            assert_eq!(back.training_histogram, forest.training_histogram);
            assert_eq!(meta.training_histogram, forest.training_histogram);
            assert_eq!(meta.n_trees as usize, params.n_estimators);
            assert_eq!(encode(&back, &meta.estimator).unwrap(), bytes);
        }
    }

    /// Every growth mode the builder has: missing values (both directions), best-first growth
    /// (`max_leaf_nodes`), cost-complexity pruning, a single class, one feature. Each must come
    /// out in preorder, round-trip exactly and re-encode byte-identically.
    #[test]
    fn fitted_forests_of_every_kind_round_trip() {
        use crate::forest::{ForestParams, MaxFeatures};
        let n = 300;
        let x = ndarray::Array2::from_shape_fn((n, 5), |(i, j)| {
            let v = ((i * 31 + j * 17) % 23) as f64 + (i % 3) as f64 * 7.0 * (j == 0) as u8 as f64;
            // A missing value in about one cell in seven, in every column.
            if (i + 3 * j) % 7 == 0 {
                f64::NAN
            } else {
                v
            }
        });
        let y3: Vec<u32> = (0..n).map(|i| (i % 3) as u32).collect();
        let y1 = vec![0u32; n];
        let base = ForestParams {
            n_estimators: 6,
            random_state: 3,
            ..ForestParams::default()
        };
        let cases: Vec<(ForestParams, &[u32], usize, &str)> = vec![
            (base.clone(), &y3, 3, "missing values"),
            (
                ForestParams {
                    max_leaf_nodes: Some(9),
                    ..base.clone()
                },
                &y3,
                3,
                "best-first",
            ),
            (
                ForestParams {
                    ccp_alpha: 0.01,
                    ..base.clone()
                },
                &y3,
                3,
                "ccp pruning",
            ),
            (base.clone(), &y1, 1, "one class"),
            (
                ForestParams {
                    max_features: MaxFeatures::All,
                    max_depth: Some(3),
                    oob_score: true,
                    ..base.clone()
                },
                &y3,
                3,
                "oob, shallow",
            ),
        ];
        for (params, y, n_classes, what) in cases {
            let forest = Forest::fit(x.view(), y, n_classes, None, &params, 1).unwrap();
            validate_forest(&forest).unwrap_or_else(|e| panic!("{what}: {e}"));
            let splits = forest
                .trees
                .iter()
                .flat_map(|t| &t.nodes)
                .filter(|n| !n.is_leaf());
            let (mut left, mut right) = (0, 0);
            for s in splits {
                if s.missing_left() {
                    left += 1
                } else {
                    right += 1
                }
            }
            if what == "missing values" {
                assert!(left > 0 && right > 0, "{what}: {left} left, {right} right");
            }
            if n_classes > 1 {
                assert!(left + right > 0, "{what}: no split");
            }
            let bytes = encode(&forest, &estimator()).unwrap();
            let (back, meta) = decode(&bytes).unwrap();
            assert_eq!(back, forest, "{what}");
            assert_eq!(encode(&back, &meta.estimator).unwrap(), bytes, "{what}");
        }
        // One feature: features take no bits.
        let x1 = x.slice(ndarray::s![.., 0..1]).to_owned();
        let forest = Forest::fit(x1.view(), &y3, 3, None, &base, 1).unwrap();
        let bytes = encode(&forest, &estimator()).unwrap();
        assert_eq!(decode(&bytes).unwrap().0, forest);
    }
}
