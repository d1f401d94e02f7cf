//! User-fixable errors (bad input or usage) and the exit-code policy.

use std::path::PathBuf;

/// An error the user can fix: a bad file, flag or model. Exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// A path that does not exist or cannot be read.
    #[error("cannot read {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    /// A file that exists but is not a valid instance of its format.
    #[error("{path}: {reason}")]
    BadFile { path: PathBuf, reason: String },
    /// A flag with a value that cannot be used.
    #[error("invalid value for {flag}: {reason}")]
    BadFlag { flag: &'static str, reason: String },
    /// Two models that cannot be paired.
    #[error("models do not match: {0}")]
    Mismatch(String),
    /// Data that does not fit the model.
    #[error("data does not fit the model: {0}")]
    BadData(String),
    /// A requested execution provider or runtime that is not available.
    #[error("{0}")]
    Runtime(String),
    /// Shard results that do not make one whole audit (`merge`).
    #[error("cannot merge: {0}")]
    Merge(String),
}

/// A gate requested on the command line that did not pass. Exit code 1.
#[derive(Debug, thiserror::Error)]
#[error("gate failed: {0}")]
pub struct GateFailed(pub String);

/// The process exit code for an error: 1 for a failed gate, 2 for everything else
/// (bad input or usage, and internal failures, which are also reported).
pub fn exit_code(err: &anyhow::Error) -> i32 {
    if err.downcast_ref::<GateFailed>().is_some() {
        1
    } else {
        2
    }
}

/// Shorthand for a [`UserError::BadFile`].
pub fn bad_file(path: impl Into<PathBuf>, reason: impl Into<String>) -> anyhow::Error {
    UserError::BadFile { path: path.into(), reason: reason.into() }.into()
}
