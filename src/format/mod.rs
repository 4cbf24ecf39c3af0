//! The model file: one checksummed, self-describing byte format shared by `woodlot.dump` /
//! `woodlot.load`, pickling and the version store. Nothing on the load path runs pickle or any
//! code from the file.
//!
//! ```text
//! magic        8 bytes   0x89 'W' 'D' 'L' '\r' '\n' 0x1a '\n'
//! version      u16 major (2), u16 minor (1), u32 flags (0; unknown bits are rejected), LE
//! lengths      u64 meta_len, u64 payload_len, LE; 64 + meta_len + payload_len == file size
//! checksum     32 bytes: BLAKE3 of the whole file with these 32 bytes zeroed
//! meta         meta_len bytes of UTF-8 JSON, a [`ModelMeta`] (with the training histogram
//!              since 2.1)
//! payload      payload_len bytes, consumed exactly: the [`Forest`](crate::forest::Forest)
//!              without its trees in bincode 2 (serde, little-endian, fixed-width integers),
//!              then the trees as struct-of-arrays in depth-first preorder (see `payload`)
//! ```
//!
//! One concept per file:
//!
//! - [`header`](Header): the fixed 64-byte header and the checksum.
//! - [`ModelMeta`] (`meta`): the JSON meta section, readable on its own with [`read_meta`].
//! - `file`: whole files, [`encode`] / [`decode`]; [`decode`] checks size, magic, version,
//!   flags, lengths, checksum, meta, the claimed counts against the file's size, the bounded
//!   payload decode, meta/payload agreement, then the structure of every tree, each before the
//!   next step allocates.
//! - `claims`: what a file of a given size may claim (features, classes, trees).
//! - `payload`: the payload layout (`head`, `tree`, `column`, `bytes`); a tree stores its leaf
//!   bits and per-split and per-node arrays, and its child pointers and leaf rows are rebuilt
//!   from its depth-first preorder.
//! - `bounded`: the serde adapter that keeps bincode from allocating claimed lengths.
//! - [`validate_forest`] (`validate`): the structural checks, also usable on in-memory forests.
//! - [`ValidForest`] (`valid`): a forest known to pass them, saved without checking again
//!   ([`encode_valid`]); [`decode_for_prediction`] gives one with the forest's prediction
//!   layout, each tree decoded, validated and compiled in one parallel task.
//!
//! Every failed check is [`WoodlotError::CorruptModel`](crate::error::WoodlotError) with a
//! reason a person can act on; no input makes these functions panic.

mod bounded;
mod claims;
mod file;
mod header;
#[cfg(test)]
mod hostile_tests;
mod meta;
#[cfg(test)]
mod multi_output_tests;
mod payload;
#[cfg(test)]
mod speed;
#[cfg(test)]
mod testutil;
mod valid;
mod validate;

pub use claims::{most_features, Claims, FEATURES_FLOOR, MAX_DECODE_RATIO};
pub use file::{
    decode, decode_for_prediction, digest_hex, encode, encode_valid, read_meta, LoadedModel,
};
pub use header::{
    file_checksum, Header, FLAG_MULTI_OUTPUT, FORMAT_MAJOR, FORMAT_MINOR, HEADER_LEN, KNOWN_FLAGS,
    MAGIC, MAX_META_LEN, MAX_PAYLOAD_LEN,
};
pub use meta::{ModelMeta, CODEC, KIND};
pub use valid::ValidForest;
pub use validate::{validate_forest, LEAF_SUM_TOLERANCE};
