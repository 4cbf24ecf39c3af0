//! [`ValidForest`]: a forest that passed [`validate_forest`], so writing it need not check it
//! again.
//!
//! Saving validates first, so the encoder never writes a file the decoder would refuse; on a
//! large forest that check is a fifth of the save. A forest that was just validated (loaded
//! from a file, or checked once after its fit) and cannot have changed since need not pay it
//! again. The proof is this type: it is made only by [`ValidForest::check`] or by the decoder,
//! and it holds the forest behind an [`Arc`] it never lends mutably, so the forest it vouches
//! for is the forest it was given, unchanged. Anything built another way (from scikit-learn's
//! arrays, merged, edited) has no `ValidForest` and is validated when it is saved.

use std::sync::Arc;

use super::validate::validate_forest;
use crate::error::Result;
use crate::forest::Forest;

/// A forest known to pass [`validate_forest`] (see the module docs).
#[derive(Debug, Clone)]
pub struct ValidForest(Arc<Forest>);

impl ValidForest {
    /// Validates `forest`; the error is [`validate_forest`]'s.
    pub fn check(forest: Arc<Forest>) -> Result<Self> {
        validate_forest(&forest)?;
        Ok(Self(forest))
    }

    /// A forest the decoder has just validated, check by check.
    pub(super) fn validated_by_decoder(forest: Arc<Forest>) -> Self {
        Self(forest)
    }

    /// The forest.
    pub fn forest(&self) -> &Arc<Forest> {
        &self.0
    }
}
