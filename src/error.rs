//! The one error type of the pure core.
//!
//! Every fallible core function returns [`Result`]. The binding layer maps each variant to a
//! Python exception class (`ValueError`, `woodlot.CorruptModelError`, ...), so the variants are
//! chosen by *what the caller should do*, not by where the error happened.

use std::io;

/// Everything that can go wrong in woodlot's core.
#[derive(Debug, thiserror::Error)]
pub enum WoodlotError {
    /// A hyperparameter is out of range or of the wrong kind; `name` is the parameter.
    #[error("invalid parameter `{name}`: {message}")]
    InvalidParameter {
        /// The parameter's name, as scikit-learn spells it.
        name: &'static str,
        /// What is wrong and what would be accepted.
        message: String,
    },
    /// The data handed to fit or predict is unusable (shape, values, labels).
    #[error("{0}")]
    InvalidInput(String),
    /// A model file or store file failed validation; the message says which check failed.
    #[error("corrupt model: {0}")]
    CorruptModel(String),
    /// A version reference (number, `"v3"`, `"latest"`, `"active"`, alias) names nothing in the
    /// store. Maps to `woodlot.VersionNotFoundError`, which is also a `KeyError`.
    #[error("{0}")]
    VersionNotFound(String),
    /// A concurrent change won a race this call depended on (e.g. a stale `expect_active`).
    /// Retrying after re-reading the store's state is the right reaction.
    #[error("{0}")]
    Conflict(String),
    /// A user-typed name (alias, reference) was refused: empty, too long, or containing
    /// separators, traversal, control or non-ASCII characters.
    #[error("invalid name: {0}")]
    InvalidName(String),
    /// The store refused an operation that is well-formed but not allowed in its current state
    /// (deleting the active version without `force`, rolling back with nothing to go back to,
    /// an unknown store format, ...).
    #[error("{0}")]
    Store(String),
    /// An operating-system I/O error, with what was being done.
    #[error("{context}: {source}")]
    Io {
        /// What woodlot was doing, e.g. "writing blob 3fa1...".
        context: String,
        /// The underlying OS error.
        #[source]
        source: io::Error,
    },
}

impl WoodlotError {
    /// Shorthand for [`WoodlotError::InvalidParameter`].
    pub fn param(name: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidParameter {
            name,
            message: message.into(),
        }
    }

    /// Shorthand for [`WoodlotError::InvalidInput`].
    pub fn input(message: impl Into<String>) -> Self {
        Self::InvalidInput(message.into())
    }

    /// Shorthand for [`WoodlotError::CorruptModel`].
    pub fn corrupt(message: impl Into<String>) -> Self {
        Self::CorruptModel(message.into())
    }

    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

/// The core's result type.
pub type Result<T, E = WoodlotError> = std::result::Result<T, E>;
