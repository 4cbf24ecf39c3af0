//! The payload's head: the forest without its trees (sizes, hyperparameters, out-of-bag
//! estimate, lineage), in bincode 2 (serde, little-endian, fixed-width integers).
//!
//! bincode allocates an owned string's claimed length before reading it, so the head decodes
//! through [`Bounded`](crate::format::bounded) (see [`file`](crate::format::file)): nothing is
//! allocated for bytes the payload does not hold.

use bincode::config::{Configuration, Fixint, LittleEndian, NoLimit};
use bincode::error::DecodeError;
use serde::{Deserialize, Serialize};

use crate::error::{Result, WoodlotError};
use crate::forest::{FitInfo, Forest, ForestParams, OobEstimate};
use crate::format::bounded::BoundedSeed;
use crate::format::header::MAX_PAYLOAD_LEN;

/// The decode limit for the head: [`MAX_PAYLOAD_LEN`] as a `usize`.
pub(super) const PAYLOAD_LIMIT: usize = MAX_PAYLOAD_LEN as usize;
const _: () = assert!(
    MAX_PAYLOAD_LEN <= usize::MAX as u64,
    "the limit must fit a usize"
);

/// The forest without its trees, borrowed for encoding.
#[derive(Serialize)]
pub(super) struct HeadRef<'a> {
    pub(super) n_features: u32,
    pub(super) n_classes: u32,
    pub(super) params: &'a ForestParams,
    pub(super) oob: &'a Option<OobEstimate>,
    pub(super) fit_info: &'a FitInfo,
}

/// The forest without its trees, as decoded (same fields, same order as [`HeadRef`]).
#[derive(Deserialize)]
pub(super) struct Head {
    pub(super) n_features: u32,
    pub(super) n_classes: u32,
    pub(super) params: ForestParams,
    pub(super) oob: Option<OobEstimate>,
    pub(super) fit_info: FitInfo,
}

/// The head's bincode configuration (before the decode limit is added).
pub(super) fn head_config() -> Configuration<LittleEndian, Fixint, NoLimit> {
    bincode::config::standard().with_fixed_int_encoding()
}

/// The head of `forest`'s payload.
pub(super) fn encode_head(forest: &Forest) -> Result<Vec<u8>> {
    let head = HeadRef {
        n_features: forest.n_features,
        n_classes: forest.n_classes,
        params: &forest.params,
        oob: &forest.oob,
        fit_info: &forest.fit_info,
    };
    bincode::serde::encode_to_vec(&head, head_config())
        .map_err(|e| WoodlotError::input(format!("cannot encode the forest: {e}")))
}

/// Decodes the head at the start of `payload`: the head and the bytes it used.
pub(super) fn decode_head(payload: &[u8]) -> Result<(Head, usize)> {
    let config = head_config().with_limit::<PAYLOAD_LIMIT>();
    bincode::serde::seed_decode_from_slice(BoundedSeed::default(), payload, config)
        .map_err(|e| head_error(e, payload.len()))
}

fn head_error(e: DecodeError, len: usize) -> WoodlotError {
    match e {
        DecodeError::LimitExceeded => WoodlotError::corrupt(format!(
            "payload is damaged: a length inside it claims more than its {len} bytes"
        )),
        DecodeError::UnexpectedEnd { .. } => WoodlotError::corrupt(format!(
            "payload ends early: its {len} bytes hold less than the forest they describe"
        )),
        other => WoodlotError::corrupt(format!("payload does not decode as a forest: {other}")),
    }
}
