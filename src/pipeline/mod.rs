//! The audit pipeline as a library: load and pair a model pair, compare weights without
//! data ([`rmse`]), or run the full swap audit ([`Audit`]) — each returns a [`Report`].
//!
//! The binary's commands only turn flags into these calls, print and apply CI gates; plans,
//! shards and adaptive audits build on the same entry points.

mod audit;
mod dynamic_batch;
pub mod layout;
mod options;
pub mod probe;

use std::path::Path;

use anyhow::Result;

pub use audit::{Audit, Labels};
pub use options::Options;

use crate::audit::compare::{self, PairValues};
use crate::model::layers::{scan, LayerScan, FOLDED_BN_HINT};
use crate::model::{Family, Model};
use crate::pair::{pair, MatchMode, Pairing};
use crate::report::{self, ModelInfo, Report, Summary};

/// Two loaded models, their layers and how they pair.
pub struct PairContext {
    /// Target model.
    pub target: Model,
    /// Source model.
    pub source: Model,
    /// Target layers.
    pub target_layers: LayerScan,
    /// Source layers.
    pub source_layers: LayerScan,
    /// The pairing.
    pub pairing: Pairing,
    /// Warnings to show and record (folded BN, computed parameters, pairing by position).
    pub warnings: Vec<String>,
}

/// Load both models and pair their parameters.
pub fn load_pair(target: &Path, source: &Path, mode: &MatchMode) -> Result<PairContext> {
    let t = Model::load(target)?;
    let s = Model::load(source)?;
    let (ts, ss) = (scan(&t), scan(&s));
    let mut warnings = Vec::new();
    for (m, sc) in [(&t, &ts), (&s, &ss)] {
        if sc.bn_probably_folded() {
            warnings.push(format!("{}: {FOLDED_BN_HINT}", m.display_name()));
        }
        if let Some(first) = sc.skipped.first() {
            warnings.push(format!(
                "{}: {} Conv/BN parameter input(s) are computed in the graph, not stored (e.g. a zero bias made for a bias-free conv); they are not audited. First: {first}",
                m.display_name(),
                sc.skipped.len()
            ));
        }
    }
    let pairing = pair(&ts, &ss, mode)?;
    if matches!(mode, MatchMode::Auto) && pairing.method == "position" {
        warnings.push("initializer names differ between the models: paired by family, position and role (--match position); check `reuse-audit match`".into());
    }
    Ok(PairContext { target: t, source: s, target_layers: ts, source_layers: ss, pairing, warnings })
}

/// Model summary for a report.
pub fn model_info(m: &Model, sc: &LayerScan) -> ModelInfo {
    ModelInfo {
        path: m.display_name(),
        sha256: m.sha256.clone(),
        conv_layers: sc.of(Family::Conv).count(),
        bn_layers: sc.of(Family::Bn).count(),
        bn_probably_folded: sc.bn_probably_folded(),
    }
}

/// Print warnings on stderr unless quiet.
pub fn warn(warnings: &[String], quiet: bool) {
    if !quiet {
        for w in warnings {
            eprintln!("warning: {w}");
        }
    }
}

/// The data-free report of a loaded pair (`command` names it), and the checked values.
pub fn data_free_report(ctx: &PairContext, o: &Options, command: &str) -> Result<(Report, PairValues)> {
    let values = compare::pair_values(&ctx.target, &ctx.source, &ctx.pairing)?;
    let rows = compare::rows(&ctx.pairing, &values, &o.kinds, true);
    let report = Report {
        schema_version: report::SCHEMA_VERSION,
        tool: Default::default(),
        command: command.into(),
        target: model_info(&ctx.target, &ctx.target_layers),
        source: model_info(&ctx.source, &ctx.source_layers),
        engine: None,
        dataset: None,
        settings: report::Settings {
            kinds: o.kinds.iter().map(|k| k.to_string()).collect(),
            tolerance: o.tolerance,
            rn_threshold: o.rn_threshold,
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

/// The data-free comparison of a model pair (RMSE, nRMSE, cosine, MRM/MRV/MRW/MRB): the
/// report of `reuse-audit rmse`. Warnings are printed on stderr unless `o.quiet`.
pub fn rmse(target: &Path, source: &Path, o: &Options) -> Result<Report> {
    o.validate()?;
    let ctx = load_pair(target, source, &o.match_mode)?;
    warn(&ctx.warnings, o.quiet);
    Ok(data_free_report(&ctx, o, "rmse")?.0)
}
