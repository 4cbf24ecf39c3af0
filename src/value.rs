//! The element types woodlot reads feature matrices in.
//!
//! Fit and predict accept `f32` and `f64` matrices of any memory layout without a copy in the
//! caller; values are compared as `f32`, as scikit-learn's trees do (they cast X to float32).

/// A feature value type: `f32` or `f64`.
pub trait FeatureValue: Copy + Send + Sync + 'static {
    /// The value as `f32`, the precision trees compare in.
    fn to_f32(self) -> f32;
    /// The value as `f64`, for fingerprints and statistics.
    fn to_f64(self) -> f64;
}

impl FeatureValue for f32 {
    #[inline]
    fn to_f32(self) -> f32 {
        self
    }
    #[inline]
    fn to_f64(self) -> f64 {
        self as f64
    }
}

impl FeatureValue for f64 {
    #[inline]
    fn to_f32(self) -> f32 {
        self as f32
    }
    #[inline]
    fn to_f64(self) -> f64 {
        self
    }
}
