//! `rmse TARGET SOURCE`: the data-free report (RMSE/nRMSE/cosine, MRM/MRV/MRW/MRB).

use std::path::Path;

use anyhow::Result;

use super::{emit, load_pair, model_info, warn, PairContext};
use crate::audit::compare::{self, PairValues};
use crate::config::Settings;
use crate::report::{self, Report, Summary};

/// The data-free report of a pair, and the checked parameter values.
pub fn data_free_report(ctx: &PairContext, s: &Settings, command: &str) -> Result<(Report, PairValues)> {
    let values = compare::pair_values(&ctx.target, &ctx.source, &ctx.pairing)?;
    let rows = compare::rows(&ctx.pairing, &values, &s.kinds, true);
    let report = Report {
        schema_version: report::SCHEMA_VERSION,
        tool: Default::default(),
        command: command.into(),
        target: model_info(&ctx.target, &ctx.target_layers),
        source: model_info(&ctx.source, &ctx.source_layers),
        engine: None,
        dataset: None,
        settings: report::Settings {
            kinds: s.kinds.iter().map(|k| k.to_string()).collect(),
            tolerance: s.tolerance,
            rn_threshold: s.rn_threshold,
            match_method: ctx.pairing.method.into(),
        },
        baseline: None,
        rows,
        unmatched: ctx.pairing.unmatched.clone(),
        warnings: ctx.warnings.clone(),
        summary: Summary { bn: compare::bn_stats(&ctx.pairing, &values), ..Default::default() },
    };
    Ok((report, values))
}

/// Run `rmse`.
pub fn run(target: &Path, source: &Path, s: &Settings) -> Result<()> {
    let ctx = load_pair(target, source, &s.match_mode)?;
    warn(&ctx.warnings, s.quiet);
    let (report, _) = data_free_report(&ctx, s, "rmse")?;
    emit(&report, s)
}
