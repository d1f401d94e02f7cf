//! The environment switches that tune the engine and the incremental strategy
//! (`REUSE_AUDIT_CACHE_ON_DEVICE`, `REUSE_AUDIT_OVERLAP_HOST`, `REUSE_AUDIT_REDUCE_ON_DEVICE`,
//! `REUSE_AUDIT_CUDA_NHWC`, `REUSE_AUDIT_CUDA_WORKERS`, and `REUSE_AUDIT_PROGRESS_SECS` for the
//! progress lines off a terminal): for A/B runs and tests, not flags. A value they cannot
//! take is refused (exit 2 naming the variable), never read as the default.

use crate::error::UserError;

/// The on/off switches, checked together when the engine loads ([`check`]), so that a bad
/// value stops the audit before anything runs instead of where the switch is read.
const SWITCHES: [&str; 4] = [
    "REUSE_AUDIT_CACHE_ON_DEVICE",
    "REUSE_AUDIT_OVERLAP_HOST",
    "REUSE_AUDIT_REDUCE_ON_DEVICE",
    "REUSE_AUDIT_CUDA_NHWC",
];

/// Refuse any switch set to a value it cannot take.
pub fn check() -> Result<(), UserError> {
    SWITCHES.iter().try_for_each(|name| switch(name).map(|_| ()))?;
    crate::audit::work_bar::log_every().map(|_| ())
}

/// An on/off switch: `Some(true)` for `1`, `Some(false)` for `0`, `None` when unset or empty.
pub fn switch(name: &'static str) -> Result<Option<bool>, UserError> {
    switch_of(name, std::env::var(name).ok().as_deref())
}

fn switch_of(name: &'static str, value: Option<&str>) -> Result<Option<bool>, UserError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some("1") => Ok(Some(true)),
        Some("0") => Ok(Some(false)),
        Some(other) => Err(UserError::Runtime(format!("{name}={other}: expected 0 or 1"))),
    }
}

/// A count within `low..=high`, or `None` when unset or empty.
pub fn count(name: &'static str, low: usize, high: usize) -> Result<Option<usize>, UserError> {
    count_of(name, std::env::var(name).ok().as_deref(), low, high)
}

fn count_of(name: &'static str, value: Option<&str>, low: usize, high: usize) -> Result<Option<usize>, UserError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (low..=high).contains(&n) => Ok(Some(n)),
            _ => Err(UserError::Runtime(format!("{name}={v}: expected a whole number from {low} to {high}"))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::{count_of, switch_of};

    #[test]
    fn switches_take_0_or_1_and_refuse_anything_else() {
        assert_eq!(switch_of("X", None).unwrap(), None);
        assert_eq!(switch_of("X", Some("")).unwrap(), None);
        assert_eq!(switch_of("X", Some("1")).unwrap(), Some(true));
        assert_eq!(switch_of("X", Some(" 0 ")).unwrap(), Some(false));
        let e = switch_of("REUSE_AUDIT_OVERLAP_HOST", Some("yes")).unwrap_err().to_string();
        assert_eq!(e, "REUSE_AUDIT_OVERLAP_HOST=yes: expected 0 or 1");
    }

    #[test]
    fn counts_take_whole_numbers_in_range_and_refuse_anything_else() {
        assert_eq!(count_of("X", None, 1, 8).unwrap(), None);
        assert_eq!(count_of("X", Some("2"), 1, 8).unwrap(), Some(2));
        assert_eq!(count_of("X", Some(" 8 "), 1, 8).unwrap(), Some(8));
        for bad in ["0", "9", "two", "-1", "1.5"] {
            let e = count_of("REUSE_AUDIT_CUDA_WORKERS", Some(bad), 1, 8).unwrap_err().to_string();
            assert_eq!(e, format!("REUSE_AUDIT_CUDA_WORKERS={bad}: expected a whole number from 1 to 8"));
        }
    }
}
