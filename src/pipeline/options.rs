//! The settings that decide an audit's verdicts, shared by `rmse` and `audit`.

use anyhow::Result;

use crate::error::UserError;
use crate::model::{Family, Kind};
use crate::pair::MatchMode;

/// Pairing, kinds and decision thresholds (METHOD.md). `Default` is the tool's defaults.
#[derive(Debug, Clone)]
pub struct Options {
    /// Pairing method (`--match`).
    pub match_mode: MatchMode,
    /// Kinds to audit, in report order (`--kinds`).
    pub kinds: Vec<Kind>,
    /// Layer families to pair and audit (`--families`; default all). Layers of the others
    /// are left out before pairing, so their count may differ between the models.
    pub families: Vec<Family>,
    /// A swap is reusable when it loses at most this much mean Dice (`--tolerance`).
    pub tolerance: f64,
    /// The network is an RN when at least this share of conv W swaps is reusable
    /// (`--rn-threshold`).
    pub rn_threshold: f64,
    /// Two-sided confidence of the bootstrap intervals of every swap's loss and of the
    /// decisions they make (`--confidence`).
    pub confidence: f64,
    /// Bootstrap resamples per interval (`--bootstrap`).
    pub bootstrap: usize,
    /// No warnings or progress on stderr (`--quiet`).
    pub quiet: bool,
}

/// The fewest bootstrap resamples accepted: fewer cannot place a 95% interval's ends.
pub const MIN_BOOTSTRAP: usize = 100;

/// The most bootstrap resamples accepted: every swap's resampled losses are held at once
/// (8 bytes each), and more resamples than this place an interval's ends no better.
pub const MAX_BOOTSTRAP: usize = 100_000;

impl Default for Options {
    fn default() -> Self {
        Options {
            match_mode: MatchMode::Auto,
            kinds: Kind::ALL.to_vec(),
            families: Family::ALL.to_vec(),
            tolerance: 0.02,
            rn_threshold: 0.5,
            confidence: 0.95,
            bootstrap: 2000,
            quiet: false,
        }
    }
}

impl Options {
    /// Refuse settings no audit can use, naming the flag that sets them.
    pub fn validate(&self) -> Result<()> {
        if self.kinds.is_empty() {
            return Err(UserError::BadFlag { flag: "--kinds", reason: "no kind given".into() }.into());
        }
        if self.families.is_empty() {
            return Err(UserError::BadFlag { flag: "--families", reason: "no family given".into() }.into());
        }
        if !(self.tolerance.is_finite() && self.tolerance >= 0.0) {
            return Err(UserError::BadFlag {
                flag: "--tolerance",
                reason: format!("{} is not a finite number >= 0", self.tolerance),
            }
            .into());
        }
        if !(0.0..=1.0).contains(&self.rn_threshold) {
            return Err(UserError::BadFlag {
                flag: "--rn-threshold",
                reason: format!("{} is not in [0, 1]", self.rn_threshold),
            }
            .into());
        }
        if !(self.confidence > 0.0 && self.confidence < 1.0) {
            return Err(UserError::BadFlag {
                flag: "--confidence",
                reason: format!("{} is not strictly between 0 and 1 (e.g. 0.95)", self.confidence),
            }
            .into());
        }
        if self.bootstrap < MIN_BOOTSTRAP {
            return Err(UserError::BadFlag {
                flag: "--bootstrap",
                reason: format!(
                    "{} resamples are too few to place an interval's ends; give at least {MIN_BOOTSTRAP}",
                    self.bootstrap
                ),
            }
            .into());
        }
        if self.bootstrap > MAX_BOOTSTRAP {
            return Err(UserError::BadFlag {
                flag: "--bootstrap",
                reason: format!(
                    "{} resamples are more than the {MAX_BOOTSTRAP} accepted (every swap's resamples are held at once; \
                     2000, the default, places a 95% interval's ends well)",
                    self.bootstrap
                ),
            }
            .into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_flag() {
        assert!(Options::default().validate().is_ok());
        let bad = Options { tolerance: f64::NAN, ..Default::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("--tolerance"));
        let bad = Options { rn_threshold: 1.5, ..Default::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("--rn-threshold"));
        let bad = Options { kinds: vec![], ..Default::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("--kinds"));
        for c in [0.0, 1.0, f64::NAN, 95.0] {
            let bad = Options { confidence: c, ..Default::default() };
            assert!(bad.validate().unwrap_err().to_string().contains("--confidence"), "{c}");
        }
        let bad = Options { bootstrap: 99, ..Default::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("--bootstrap"));
        let bad = Options { families: vec![], ..Default::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("--families"));
    }
}
