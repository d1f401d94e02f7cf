//! Validated settings built from raw command-line arguments: the library's
//! [`Options`] plus where and how the report goes.

use anyhow::Result;

use crate::cli::CommonArgs;
use reuse_audit::error::UserError;
use reuse_audit::model::{Family, Kind};
use reuse_audit::pair::MatchMode;
use reuse_audit::pipeline::Options;
use reuse_audit::report::Format;

/// Settings shared by `rmse` and `audit`, checked.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Pairing, kinds, thresholds, quiet.
    pub options: Options,
    /// Output folder.
    pub out: Option<std::path::PathBuf>,
    /// Formats to write.
    pub formats: Vec<Format>,
    /// JSON to stdout.
    pub json: bool,
}

impl Settings {
    /// Validate raw flags of `rmse`, which has no Dice: a tolerance or RN threshold would
    /// change nothing, so giving one is refused rather than ignored.
    pub fn for_rmse(a: &CommonArgs) -> Result<Settings> {
        for (flag, given) in [("--tolerance", a.tolerance.is_some()), ("--rn-threshold", a.rn_threshold.is_some())] {
            if given {
                return Err(UserError::BadFlag {
                    flag,
                    reason: "rmse computes no Dice, so it has no verdict to apply it to (it is an audit flag)".into(),
                }
                .into());
            }
        }
        Settings::from_args(a)
    }

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
        let families = parse_families(&a.families)?;
        let options = Options {
            match_mode: MatchMode::parse(&a.match_mode),
            kinds,
            families,
            tolerance: a.tolerance.unwrap_or(Options::default().tolerance),
            rn_threshold: a.rn_threshold.unwrap_or(Options::default().rn_threshold),
            quiet: a.quiet,
            ..Options::default()
        };
        options.validate()?;
        if let Some(out) = &a.out {
            reuse_audit::report::write::check_out(out)?;
        }
        let mut formats = a.format.clone();
        formats.sort();
        formats.dedup();
        Ok(Settings { options, out: a.out.clone(), formats, json: a.json })
    }
}

/// The `--families` flag's values, each once, sorted; an unknown name is exit 2.
pub fn parse_families(names: &[String]) -> Result<Vec<Family>> {
    let mut families = Vec::new();
    for f in names {
        let family = Family::parse(f).ok_or_else(|| UserError::BadFlag {
            flag: "--families",
            reason: format!("'{f}' is not one of conv, bn, linear, norm"),
        })?;
        if !families.contains(&family) {
            families.push(family);
        }
    }
    families.sort();
    Ok(families)
}
