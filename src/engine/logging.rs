//! ONNX Runtime's own log, and its failures as one typed error.
//!
//! ONNX Runtime logs an error (in ANSI colour, on stderr) for every status it also returns,
//! so a refused model used to be reported twice: ORT's coloured line, then our error with the
//! same text. The environment gets a logger of ours instead: it prints nothing unless the user
//! asks for ONNX Runtime's log with `ORT_LOG=verbose|info|warning|error|fatal` (for debugging),
//! and then plainly, prefixed `onnxruntime:`, and never under `--quiet`. What ONNX Runtime
//! refuses reaches the user once, as a [`RuntimeFailure`] in our error, which the pipeline
//! turns into a user error naming the model file.

use std::sync::Arc;

use ort::logging::{LogLevel, LoggerFunction};

use crate::error::UserError;

/// A status ONNX Runtime returned: its message text, kept as it is.
#[derive(Debug, thiserror::Error)]
#[error("ONNX Runtime {stage}: {message}")]
pub struct RuntimeFailure {
    /// What failed: `refused the model` (building a session) or `run failed`.
    pub stage: &'static str,
    /// ONNX Runtime's own message.
    pub message: String,
}

impl RuntimeFailure {
    /// A session could not be built from the model.
    pub fn refused(e: impl std::fmt::Display) -> anyhow::Error {
        RuntimeFailure { stage: "refused the model", message: e.to_string() }.into()
    }

    /// A run of a built session failed.
    pub fn run(e: impl std::fmt::Display) -> anyhow::Error {
        RuntimeFailure { stage: "run failed", message: e.to_string() }.into()
    }
}

/// The level `ORT_LOG` asks for (`verbose`, `info`, `warning`, `error`, `fatal`), if any
/// (unset or empty: none). Another value is refused, naming the variable, rather than
/// ignored: the log asked for would silently never come.
pub fn requested_level() -> Result<Option<LogLevel>, UserError> {
    match std::env::var("ORT_LOG").ok().as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(name) => level_named(name).map(Some).ok_or_else(|| {
            UserError::Runtime(format!("ORT_LOG={name}: expected verbose, info, warning, error or fatal"))
        }),
    }
}

/// The model's first output cannot be scored: missing, of another element type, or of a
/// shape the audit does not read (the pipeline names the model file, as for a
/// [`RuntimeFailure`]).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UnusableOutput(pub String);

/// The log level a name stands for (case-insensitive); `None` for anything else.
pub fn level_named(name: &str) -> Option<LogLevel> {
    match name.to_ascii_lowercase().as_str() {
        "verbose" => Some(LogLevel::Verbose),
        "info" => Some(LogLevel::Info),
        "warning" | "warn" => Some(LogLevel::Warning),
        "error" => Some(LogLevel::Error),
        "fatal" => Some(LogLevel::Fatal),
        _ => None,
    }
}

/// The environment's logger: ONNX Runtime's messages at `min` or above on stderr, one plain
/// line each; with `min` `None` (no `ORT_LOG`, or `--quiet`) every message is dropped.
/// (The environment calls it at every level while it is being created.)
pub fn logger(min: Option<LogLevel>) -> LoggerFunction {
    Arc::new(move |level: LogLevel, _category: &str, _id: &str, location: &str, message: &str| {
        if min.is_some_and(|m| level >= m) {
            eprintln!("onnxruntime: [{}] {location}: {message}", tag(level));
        }
    })
}

/// One letter per level, as ONNX Runtime's own log writes it.
fn tag(level: LogLevel) -> char {
    match level {
        LogLevel::Verbose => 'V',
        LogLevel::Info => 'I',
        LogLevel::Warning => 'W',
        LogLevel::Error => 'E',
        LogLevel::Fatal => 'F',
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_names() {
        assert_eq!(level_named("Warning"), Some(LogLevel::Warning));
        assert_eq!(level_named("fatal"), Some(LogLevel::Fatal));
        assert_eq!(level_named("loud"), None);
    }

    #[test]
    fn failure_keeps_the_runtime_text() {
        let e = RuntimeFailure::run("Input channels C is not equal to kernel channels * group");
        assert_eq!(e.to_string(), "ONNX Runtime run failed: Input channels C is not equal to kernel channels * group");
    }
}
