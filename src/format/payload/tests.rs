//! Tests of the payload as a whole: byte primitives, columns, tree layout and the bounds of
//! the decoder, through the same helpers.

use super::bytes::{put_bits, put_varint, varint_len, Bits, Reader};
use super::column::{
    as_integer, dictionary, index_width, put_f32s, read_f32s_vec, DICTIONARY, INTEGERS, RAW,
};
use super::tree::{feature_width, preorder_nodes};
use super::*;
use crate::error::WoodlotError;
use crate::format::testutil::{balanced_tree, largest_allocation_during, sample_forest};
use crate::format::validate_forest;

/// Decodes a payload as if it were the whole file (the tests' payloads have no meta).
fn decode_payload(payload: &[u8]) -> Result<Forest> {
    super::decode_payload(payload, payload.len())
}

fn reason(payload: &[u8]) -> String {
    match decode_payload(payload) {
        Err(WoodlotError::CorruptModel(m)) => m,
        Err(other) => panic!("expected CorruptModel, got {other:?}"),
        Ok(_) => panic!("expected an error, the payload decoded"),
    }
}

/// The sample forest's head followed by the given tree bodies (each given its length).
fn payload_with(bodies: &[Vec<u8>]) -> Vec<u8> {
    let mut forest = sample_forest();
    forest.trees.clear();
    let mut out = encode_unchecked(&forest);
    assert_eq!(out.pop(), Some(0), "an empty forest ends with n_trees 0");
    put_varint(&mut out, bodies.len() as u64);
    for body in bodies {
        put_varint(&mut out, body.len() as u64);
        out.extend_from_slice(body);
    }
    out
}

/// Tree 0 of the sample forest (3 features, 3 classes, 5 nodes), as bytes.
fn tree0() -> Vec<u8> {
    tree_bytes(&sample_forest().trees[0], 3)
}

fn column(values: &[f32]) -> Vec<u8> {
    let mut out = Vec::new();
    put_f32s(&mut out, values);
    out
}

fn read_column(bytes: &[u8], count: usize) -> std::result::Result<Vec<f32>, String> {
    let mut r = Reader::new(bytes);
    let v = read_f32s_vec(&mut r, count, "column")?;
    assert_eq!(r.remaining(), 0, "column left bytes over");
    Ok(v)
}

fn bits_of(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn the_sample_payload_matches_its_bodies() {
    let forest = sample_forest();
    let bodies: Vec<Vec<u8>> = forest.trees.iter().map(|t| tree_bytes(t, 3)).collect();
    assert_eq!(payload_with(&bodies), encode_unchecked(&forest));
    assert_eq!(decode_payload(&payload_with(&bodies)).unwrap(), forest);
}

#[test]
fn varints_round_trip_and_must_be_minimal() {
    for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), 1 << 63, u64::MAX] {
        let mut out = Vec::new();
        put_varint(&mut out, v);
        assert_eq!(out.len(), varint_len(v));
        let mut r = Reader::new(&out);
        assert_eq!(r.varint("v").unwrap(), v);
        assert_eq!(r.remaining(), 0);
    }
    let bad: [(&[u8], &str); 4] = [
        (&[0x80, 0x00], "redundant"),
        (&[0x81, 0x80, 0x00], "redundant"),
        (&[0xff; 9], "ends early"),
        (
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
            "longer than 64",
        ),
    ];
    for (bytes, expected) in bad {
        let m = Reader::new(bytes).varint("v").unwrap_err();
        assert!(m.contains(expected), "{bytes:?}: {m}");
    }
    let mut eleven = vec![0xff; 10];
    eleven.push(0);
    assert!(Reader::new(&eleven).varint("v").is_err());
}

#[test]
fn bits_round_trip_and_padding_must_be_zero() {
    for width in [0, 1, 2, 3, 7, 8, 9, 16, 31, 32] {
        let mask = ((1u64 << width) - 1) as u32;
        let values: Vec<u32> = (0..37u32)
            .map(|i| i.wrapping_mul(2_654_435_761) & mask)
            .collect();
        let mut out = Vec::new();
        put_bits(&mut out, values.iter().copied(), width);
        assert_eq!(out.len(), (37 * width as usize).div_ceil(8));
        let mut r = Reader::new(&out);
        assert_eq!(r.bits(37, width, "b").unwrap(), values, "width {width}");
        assert_eq!(r.remaining(), 0);
    }
    // 3 one-bit values use 3 bits of one byte; the other 5 must be zero.
    let m = Reader::new(&[0b0000_1101]).bits(3, 1, "b").unwrap_err();
    assert!(m.contains("nonzero padding"), "{m}");
    let m = Reader::new(&[0b101]).bits(9, 1, "b").unwrap_err();
    assert!(m.contains("ends early: needs 2 bytes, 1 remain"), "{m}");
}

#[test]
fn columns_pick_the_smallest_mode_and_round_trip_bit_exactly() {
    let distinct: Vec<f32> = (0..40).map(|i| i as f32 * 0.37 + 0.001).collect();
    let few = [0.0, 1.0, 1.0, 0.0, 0.5, 0.0, -0.0, 1.0, 0.0, 0.0, 1.0, 1.0];
    let integers: Vec<f32> = (0..40).map(|i| (i * 7) as f32).collect();
    let odd = [
        f32::NAN,
        -f32::NAN,
        f32::INFINITY,
        -0.0,
        f32::MIN_POSITIVE,
        4294967296.0,
    ];
    let cases: [(&[f32], u8); 6] = [
        (&[], RAW),
        (&distinct, RAW),
        (&few, DICTIONARY),
        (&integers, INTEGERS),
        (&[1.0; 100], DICTIONARY),
        (&odd, RAW),
    ];
    for (values, mode) in cases {
        let bytes = column(values);
        assert_eq!(bytes[0], mode, "{values:?}");
        let back = read_column(&bytes, values.len()).unwrap();
        assert_eq!(bits_of(&back), bits_of(values));
    }
    // 100 copies of one value: a mode byte, k - 1, one entry, 100 one-bit indices.
    assert_eq!(column(&[1.0; 100]).len(), 1 + 1 + 4 + 13);
    // -0.0 is not the integer 0; 2^32 is stored as u32::MAX, which casts back to 2^32.
    assert_eq!(as_integer(-0.0), None);
    assert_eq!(as_integer(f32::NAN), None);
    assert_eq!(as_integer(4294967296.0), Some(u32::MAX));
    assert_eq!(as_integer(0.5), None);
    // 257 distinct values do not fit a dictionary.
    let many: Vec<f32> = (0..257).map(|i| i as f32 + 0.5).collect();
    assert!(dictionary(&many).is_none());
    assert_eq!(column(&many)[0], RAW);
}

#[test]
fn hostile_columns_are_rejected() {
    let cases: [(Vec<u8>, usize, &str); 6] = [
        (vec![3], 1, "unknown column mode 3"),
        (vec![RAW, 0, 0, 0], 1, "ends early"),
        // Dictionary of 2 entries, index 3 of 2-bit width is out of range... width is 1
        // for k = 2, so use k = 3 (width 2) and index 3.
        (
            [&[DICTIONARY, 2][..], &[0; 12], &[0b11]].concat(),
            1,
            "dictionary index 3 but only 3 entries",
        ),
        ([&[DICTIONARY, 0][..], &[0; 4]].concat(), 9, "ends early"),
        (
            vec![INTEGERS, 0xff, 0xff, 0xff, 0xff, 0x10],
            1,
            "out of range",
        ),
        (vec![INTEGERS, 1, 2], 3, "ends early"),
    ];
    for (bytes, count, expected) in cases {
        let m = read_column(&bytes, count).unwrap_err();
        assert!(m.contains(expected), "{bytes:?}: {m}");
    }
    // A claimed column far longer than its bytes allocates nothing for it.
    for mode in [RAW, DICTIONARY, INTEGERS] {
        let bytes = [mode, 0, 0, 0, 0, 0];
        let (r, peak) = largest_allocation_during(|| {
            read_f32s_vec(&mut Reader::new(&bytes), 1 << 40, "c").map(|_| ())
        });
        assert!(r.is_err());
        assert!(peak < 4096, "mode {mode}: {peak}");
    }
}

/// A dictionary column of `entries` (at most 256) and `indices`, as the encoder writes one.
fn dictionary_column(entries: &[f32], indices: &[u32], width: u32) -> Vec<u8> {
    let mut out = vec![DICTIONARY, (entries.len() - 1) as u8];
    for e in entries {
        out.extend_from_slice(&e.to_le_bytes());
    }
    put_bits(&mut out, indices.iter().copied(), width);
    out
}

/// Dictionaries whose index width divides 8 are read a byte at a time, the others bit by bit:
/// both give every value, for every count (whole bytes and a partial last byte).
#[test]
fn dictionary_columns_of_every_width_decode_every_value() {
    for k in [1usize, 2, 3, 4, 5, 9, 16, 17, 100, 256] {
        let width = index_width(k);
        let entries: Vec<f32> = (0..k).map(|i| i as f32 * 0.25 - 3.0).collect();
        for count in [0usize, 1, 2, 3, 7, 8, 9, 15, 16, 17, 100, 1001] {
            let indices: Vec<u32> = (0..count)
                .map(|i| (i.wrapping_mul(2_654_435_761) % k) as u32)
                .collect();
            let bytes = dictionary_column(&entries, &indices, width);
            let back = read_column(&bytes, count).unwrap();
            let expected: Vec<f32> = indices.iter().map(|&i| entries[i as usize]).collect();
            assert_eq!(bits_of(&back), bits_of(&expected), "k {k}, count {count}");
        }
    }
}

/// The byte-at-a-time reader refuses what the bit reader refuses, with the same reason: an
/// index past the dictionary anywhere in the column, and set padding bits in the last byte.
#[test]
fn dictionary_faults_are_named_for_every_width() {
    // k = 9 (4-bit indices): index 12 in the second byte.
    let bytes = dictionary_column(&[0.0; 9], &[0, 1, 12, 2], 4);
    let m = read_column(&bytes, 4).unwrap_err();
    assert!(m.contains("dictionary index 12 but only 9 entries"), "{m}");
    // k = 2 (1-bit indices): 3 values, a bit set past them.
    let mut bytes = dictionary_column(&[0.0, 1.0], &[1, 0, 1], 1);
    *bytes.last_mut().unwrap() |= 0b1000_0000;
    let m = read_column(&bytes, 3).unwrap_err();
    assert!(m.contains("nonzero padding"), "{m}");
    // k = 3 (2-bit indices): index 3 in the last, partial byte.
    let bytes = dictionary_column(&[0.0; 3], &[0, 1, 2, 0, 3], 2);
    let m = read_column(&bytes, 5).unwrap_err();
    assert!(m.contains("dictionary index 3 but only 3 entries"), "{m}");
    // k = 6 (3-bit indices, bit by bit): index 6.
    let bytes = dictionary_column(&[0.0; 6], &[5, 6], 3);
    let m = read_column(&bytes, 2).unwrap_err();
    assert!(m.contains("dictionary index 6 but only 6 entries"), "{m}");
}

/// Each node's `right` (a split's right child, a leaf's row) from leaf bits.
fn preorder_links(bits: &[u32]) -> std::result::Result<Vec<u32>, String> {
    let mut packed = Vec::new();
    put_bits(&mut packed, bits.iter().copied(), 1);
    let nodes = preorder_nodes(bits.len(), Bits::new(&packed, 1), &mut Vec::new(), |_| {
        (0, 0.0, false)
    })?;
    for (i, node) in nodes.iter().enumerate() {
        assert_eq!(node.is_leaf(), bits[i] == 1);
        if !node.is_leaf() {
            assert_eq!(node.left as usize, i + 1);
        }
    }
    Ok(nodes.iter().map(|n| n.right).collect())
}

#[test]
fn leaf_bits_must_be_exactly_one_preorder_tree() {
    // Sample tree 0: split, leaf, split, leaf, leaf.
    assert_eq!(
        preorder_links(&[0, 1, 0, 1, 1]).unwrap(),
        vec![2, 0, 4, 1, 2]
    );
    assert_eq!(preorder_links(&[1]).unwrap(), vec![0]);
    // A left spine: 0 -> (1, 6), 1 -> (2, 5), 2 -> (3, 4).
    assert_eq!(
        preorder_links(&[0, 0, 0, 1, 1, 1, 1]).unwrap(),
        vec![6, 5, 4, 0, 1, 2, 3]
    );
    let cases: [(&[u32], &str); 5] = [
        (
            &[1, 1],
            "complete the tree at node 0 but 2 nodes are stored",
        ),
        (
            &[0, 1, 1, 1],
            "complete the tree at node 2 but 4 nodes are stored",
        ),
        (&[0], "end with 2 children missing"),
        (&[0, 1], "end with 1 children missing"),
        (&[0, 0, 1, 1], "end with 1 children missing"),
    ];
    for (bits, expected) in cases {
        let m = preorder_links(bits).unwrap_err();
        assert!(m.contains(expected), "{bits:?}: {m}");
    }
}

#[test]
fn malformed_trees_are_rejected_with_the_tree_named() {
    let body = tree0();
    // Byte 0: node count 5; byte 1: leaf bits 0b11010 (nodes 1, 3, 4 are leaves).
    assert_eq!(&body[..2], &[5, 0b11010]);
    let edit = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = tree0();
        f(&mut b);
        reason(&payload_with(&[
            tree_bytes(&sample_forest().trees[1], 3),
            b,
        ]))
    };
    type Edit = Box<dyn Fn(&mut Vec<u8>)>;
    let cases: Vec<(Edit, &str)> = vec![
        // Node 1 a split too: the tree ends incomplete.
        (Box::new(|b| b[1] = 0b11000), "tree 1: leaf bits end with"),
        // Node 2 a leaf: the tree is complete after node 2.
        (
            Box::new(|b| b[1] = 0b11110),
            "tree 1: leaf bits complete the tree at node 2",
        ),
        // Padding bits of the leaf bitset.
        (
            Box::new(|b| b[1] |= 0x80),
            "tree 1: leaf bitset has nonzero padding",
        ),
        (Box::new(|b| b[0] = 0), "tree 1: has no nodes"),
        // One node fewer: the fifth leaf bit is now padding.
        (
            Box::new(|b| b[0] = 4),
            "tree 1: leaf bitset has nonzero padding",
        ),
        (
            Box::new(|b| {
                b[0] = 4;
                b[1] = 0b1010;
            }),
            "tree 1: leaf bits end with 1 children missing",
        ),
        // Three nodes that are one tree, but the arrays are those of five: they misalign.
        (
            Box::new(|b| {
                b[0] = 3;
                b[1] = 0b110;
            }),
            "tree 1: ",
        ),
        // Leaf bits that are not one tree (every node a split) and too few bytes after them
        // for five splits' arrays: the leaf bits come first, so they are what is reported.
        (
            Box::new(|b| {
                b[1] = 0;
                b.truncate(7);
            }),
            "tree 1: leaf bits end with 6 children missing",
        ),
        // An array one byte longer than the leaf bits say.
        (
            Box::new(|b| b.push(0)),
            "tree 1: 1 bytes left over after its arrays",
        ),
        // The last leaf value's column cut short.
        (
            Box::new(|b| {
                b.pop();
            }),
            "tree 1: leaf values ends early",
        ),
    ];
    for (f, expected) in cases {
        let m = edit(&*f);
        assert!(m.starts_with("payload: "), "{m}");
        assert!(m.contains(expected), "expected {expected:?}, got {m:?}");
    }
}

#[test]
fn every_truncation_of_a_tree_is_rejected() {
    let one = tree_bytes(&sample_forest().trees[1], 3);
    for tree in [tree0(), tree_bytes(&balanced_tree(4, 3), 3)] {
        for cut in 0..tree.len() {
            let m = reason(&payload_with(&[one.clone(), tree[..cut].to_vec()]));
            assert!(m.contains("payload: tree 1: "), "cut {cut}: {m}");
            assert!(
                m.contains("ends early")
                    || m.contains("no nodes")
                    || m.contains("bytes follow its leaf bits"),
                "{cut}: {m}"
            );
        }
        // Cut the payload instead of the tree: its length claims more than remains.
        let full = payload_with(&[one.clone(), tree.clone()]);
        for cut in 1..=tree.len() {
            let m = reason(&full[..full.len() - cut]);
            assert!(m.contains("payload: tree 1: tree ends early"), "{cut}: {m}");
        }
    }
}

#[test]
fn counts_and_lengths_are_checked_before_allocating() {
    let one = tree_bytes(&sample_forest().trees[1], 3);
    let mut p = payload_with(std::slice::from_ref(&one));
    // n_trees is the byte before the one tree's length and body.
    let at = p.len() - one.len() - 2;
    assert_eq!(p[at], 1);
    p[at] = 100;
    let m = reason(&p);
    assert!(
        m.contains("payload claims 100 trees but its remaining"),
        "{m}"
    );
    // A node count of 2^32 + 1, and one whose leaf bits are not there.
    for (claim, expected) in [
        ((1u64 << 32) + 1, "more than u32"),
        (1 << 30, "leaf bitset ends early"),
    ] {
        let mut body = Vec::new();
        put_varint(&mut body, claim);
        body.extend_from_slice(&one[1..]);
        let p = payload_with(&[body]);
        let (r, peak) = largest_allocation_during(|| decode_payload(&p));
        let m = match r {
            Err(WoodlotError::CorruptModel(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(m.contains(expected), "{m}");
        assert!(peak < 4096, "{peak}");
    }
}

#[test]
fn huge_class_counts_cannot_make_leaf_columns_free() {
    // A leaf tree whose leaf value column is a one-entry dictionary: with n_classes from a
    // hostile head, the count is huge but every index still costs a bit.
    let mut forest = sample_forest();
    forest.n_classes = u32::MAX;
    forest.trees.truncate(1);
    forest.trees[0] = sample_forest().trees[1].clone();
    forest.trees[0].leaf_values = vec![1.0; 3];
    let p = encode_unchecked(&forest);
    let (r, peak) = largest_allocation_during(|| decode_payload(&p));
    assert!(r.is_err());
    assert!(peak < 4096, "{peak}");
}

#[test]
fn encoding_is_deterministic_and_valid_trees_come_back_exactly() {
    let mut forest = sample_forest();
    forest.trees.push(balanced_tree(6, 3));
    forest.trees.push(balanced_tree(0, 3));
    validate_forest(&forest).unwrap();
    let a = encode_payload(&forest).unwrap();
    assert_eq!(a, encode_payload(&forest).unwrap());
    let back = decode_payload(&a).unwrap();
    assert_eq!(back, forest);
    assert_eq!(encode_payload(&back).unwrap(), a);
}

#[test]
fn feature_widths() {
    assert_eq!(feature_width(0), 0);
    assert_eq!(feature_width(1), 0);
    assert_eq!(feature_width(2), 1);
    assert_eq!(feature_width(13), 4);
    assert_eq!(feature_width(256), 8);
    assert_eq!(feature_width(257), 9);
    assert_eq!(feature_width(u32::MAX), 32);
    // One feature: features take no bytes and decode as 0.
    let mut forest = sample_forest();
    forest.n_features = 1;
    for t in &mut forest.trees {
        for n in &mut t.nodes {
            if !n.is_leaf() {
                n.set_feature(0);
            }
        }
    }
    forest.params.max_features = crate::forest::MaxFeatures::All;
    validate_forest(&forest).unwrap();
    assert_eq!(
        decode_payload(&encode_payload(&forest).unwrap()).unwrap(),
        forest
    );
}
