//! Validated settings built from raw command-line arguments.

use anyhow::Result;

use crate::cli::CommonArgs;
use crate::error::UserError;
use crate::model::Kind;
use crate::pair::MatchMode;
use crate::report::Format;

/// Settings shared by `rmse` and `audit`, checked.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Pairing method.
    pub match_mode: MatchMode,
    /// Kinds to audit, in report order.
    pub kinds: Vec<Kind>,
    /// Reusable-swap tolerance on mean Dice.
    pub tolerance: f64,
    /// RN threshold on the reusable share of conv W.
    pub rn_threshold: f64,
    /// Output folder.
    pub out: Option<std::path::PathBuf>,
    /// Formats to write.
    pub formats: Vec<Format>,
    /// JSON to stdout.
    pub json: bool,
    /// Quiet stderr.
    pub quiet: bool,
}

impl Settings {
    /// Validate raw flags.
    pub fn from_args(a: &CommonArgs) -> Result<Settings> {
        let mut kinds = Vec::new();
        for k in &a.kinds {
            let kind = Kind::parse(k).ok_or_else(|| UserError::BadFlag {
                flag: "--kinds",
                reason: format!("'{k}' is not one of W, B, RM, RV, RW, RB"),
            })?;
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        kinds.sort();
        if kinds.is_empty() {
            return Err(UserError::BadFlag { flag: "--kinds", reason: "no kind given".into() }.into());
        }
        if !(a.tolerance.is_finite() && a.tolerance >= 0.0) {
            return Err(UserError::BadFlag {
                flag: "--tolerance",
                reason: format!("{} is not a finite number >= 0", a.tolerance),
            }
            .into());
        }
        if !(0.0..=1.0).contains(&a.rn_threshold) {
            return Err(UserError::BadFlag {
                flag: "--rn-threshold",
                reason: format!("{} is not in [0, 1]", a.rn_threshold),
            }
            .into());
        }
        let mut formats = a.format.clone();
        formats.sort();
        formats.dedup();
        Ok(Settings {
            match_mode: MatchMode::parse(&a.match_mode),
            kinds,
            tolerance: a.tolerance,
            rn_threshold: a.rn_threshold,
            out: a.out.clone(),
            formats,
            json: a.json,
            quiet: a.quiet,
        })
    }
}
