//! The audit pipeline as a library: load and pair a model pair, compare weights without
//! data ([`rmse`]), or run the full swap audit ([`Audit`]) — each returns a [`Report`].
//!
//! The binary's commands only turn flags into these calls, print and apply CI gates; plans,
//! shards and adaptive audits build on the same entry points.

mod audit;
mod dynamic_batch;
pub mod layout;
mod options;
pub mod output;
mod pending_rows;
pub mod probe;

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;

pub use audit::scorer::Scorer;
pub use audit::{journaling, Audit, JournalPlan, JournalSpec, Labels};
pub use options::Options;
pub use pending_rows::PendingRows;

use crate::audit::compare::{self, PairValues};
use crate::audit::forward::NonFiniteOutput;
use crate::engine::{RuntimeFailure, UnusableOutput};
use crate::error::{bad_file, UserError};
use crate::model::folding;
use crate::model::layers::{scan, LayerScan};
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
    load_pair_of(target, source, mode, &Family::ALL)
}

/// Load both models and pair the parameters of the layers of these families. The two files
/// are read and checked side by side (the source on a thread of its own); when both are bad,
/// the target's error is the one reported, as when they were read one after the other.
pub fn load_pair_of(target: &Path, source: &Path, mode: &MatchMode, families: &[Family]) -> Result<PairContext> {
    let (t, s) = load_both(target, source);
    pair_models_of(t?, s?, mode, families)
}

/// [`Model::load`] of two files at once; a panic while loading the source (a bug) is an error.
fn load_both(target: &Path, source: &Path) -> (Result<Model>, Result<Model>) {
    std::thread::scope(|scope| {
        let s = scope.spawn(|| Model::load(source));
        let t = Model::load(target);
        let s = s.join().unwrap_or_else(|_| Err(anyhow::anyhow!("reading {} failed", source.display())));
        (t, s)
    })
}

/// Pair the parameters of two loaded models. A pair that cannot be paired is an error
/// naming both files; warnings about the models come once each, even for a model paired
/// with itself.
pub fn pair_models(t: Model, s: Model, mode: &MatchMode) -> Result<PairContext> {
    pair_models_of(t, s, mode, &Family::ALL)
}

/// [`pair_models`] on the layers of these families only (the scans keep every layer).
pub fn pair_models_of(t: Model, s: Model, mode: &MatchMode, families: &[Family]) -> Result<PairContext> {
    let (ts, ss) = (scan(&t), scan(&s));
    let mut warnings = Vec::new();
    for (m, sc) in [(&t, &ts), (&s, &ss)] {
        for w in model_warnings(m, sc) {
            push_once(&mut warnings, w);
        }
    }
    if let Some(w) = precision_warning(&t, &s) {
        push_once(&mut warnings, w);
    }
    let pairing = pair(&ts.only(families), &ss.only(families), mode).map_err(|e| match e.downcast::<UserError>() {
        Ok(UserError::Mismatch(why)) => {
            let mut why = format!("{} (target) and {} (source): {why}", t.display_name(), s.display_name());
            for (m, sc) in [(&t, &ts), (&s, &ss)] {
                if folding::Folding::of(sc) != folding::Folding::Kept {
                    why.push_str(&format!(
                        "; {} has (almost) no BatchNormalization: BN was probably folded at export (`reuse-audit inspect {}` says how to re-export with BN kept)",
                        m.display_name(),
                        m.display_name()
                    ));
                }
            }
            UserError::Mismatch(why).into()
        }
        Ok(other) => other.into(),
        Err(e) => e,
    })?;
    let mut pairing = pairing;
    pairing.drop_mismatched_triples(&t, &s);
    if pairing.pairs.iter().any(|p| p.layer.family == Family::Conv) {
        if let Some(w) = folding::pair_warning((&t, &ts), (&s, &ss)) {
            push_once(&mut warnings, w);
        }
    }
    if matches!(mode, MatchMode::Auto) && pairing.method == "position" {
        push_once(
            &mut warnings,
            format!(
                "initializer names differ between {} and {}: paired by family, position and role (--match position); check `reuse-audit match`",
                t.display_name(),
                s.display_name()
            ),
        );
    }
    Ok(PairContext { target: t, source: s, target_layers: ts, source_layers: ss, pairing, warnings })
}

/// The warnings about one model, each starting with its name: BN folded (or partly) with
/// the fix for its producer, parameters computed in the graph, tensors read by several layers.
pub fn model_warnings(m: &Model, sc: &LayerScan) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(u) = &m.upcast {
        out.push(format!("{}: {}", m.display_name(), u.warning()));
    }
    if let Some(w) = folding::warning(m, sc) {
        out.push(format!("{}: {w}", m.display_name()));
    }
    if let Some(q) = crate::model::quantized::summary(&sc.quantized) {
        out.push(format!("{}: {q}", m.display_name()));
    }
    if let Some(n) = crate::model::control_flow::summary(&crate::model::control_flow::nested_layers(m)) {
        out.push(format!("{}: {n}", m.display_name()));
    }
    if let Some(t) = crate::model::tied::summary(sc) {
        out.push(format!("{}: {t}", m.display_name()));
    }
    if let Some(w) = computed_parameters(sc) {
        out.push(format!("{}: {w}", m.display_name()));
    }
    out
}

/// One line for the layer parameter inputs a model computes instead of storing (a dynamo
/// export makes a zero bias for every bias-free conv): how many, and the first.
pub fn computed_parameters(sc: &LayerScan) -> Option<String> {
    let first = sc.skipped.first()?;
    // Only Conv/BN layers: the words this warning always had.
    let cnn = sc.layers.iter().all(|l| matches!(l.family, Family::Conv | Family::Bn));
    Some(format!(
        "{} {} parameter input(s) are computed in the graph, not stored (e.g. a zero bias made for a bias-free conv); they are not audited. First: {first}",
        sc.skipped.len(),
        if cnn { "Conv/BN" } else { "layer" }
    ))
}

/// A pair whose models compute in different precisions (a float16 export against a
/// float32 one): both are audited in float32, and what their weights differ by includes the
/// half type's rounding.
fn precision_warning(t: &Model, s: &Model) -> Option<String> {
    let name = |m: &Model| m.upcast.as_ref().map_or("float32".to_string(), |u| u.type_name());
    let (tn, sn) = (name(t), name(s));
    if tn == sn {
        return None;
    }
    let halves: Vec<&crate::model::upcast::Upcast> = [&t.upcast, &s.upcast].into_iter().flatten().collect();
    let mut names: Vec<String> = halves.iter().map(|u| u.type_name()).collect();
    names.dedup();
    let coarse = halves.iter().map(|u| u.rounding()).fold(0.0, f64::max);
    let step = if coarse > 2f64.powi(-10) { "2^-8" } else { "2^-11" };
    Some(format!(
        "{} computes in {tn} and {} in {sn}: their weights also differ by {} rounding (up to {step} of each value: an nRMSE of that order is rounding, not training); a swap puts the source's values into the float32-upcast target as they are",
        t.display_name(),
        s.display_name(),
        names.join(" and "),
    ))
}

/// Add a warning unless the list has it already.
pub fn push_once(warnings: &mut Vec<String>, w: String) {
    if !warnings.contains(&w) {
        warnings.push(w);
    }
}

/// Model summary for a report.
pub fn model_info(m: &Model, sc: &LayerScan) -> ModelInfo {
    ModelInfo {
        path: m.display_name(),
        sha256: m.sha256.clone(),
        conv_layers: sc.of(Family::Conv).count(),
        bn_layers: sc.of(Family::Bn).count(),
        linear_layers: sc.of(Family::Linear).count(),
        norm_layers: sc.of(Family::Norm).count(),
        bn_probably_folded: sc.bn_probably_folded(),
        quantized: sc.quantized.clone(),
        computes_in: m.upcast.as_ref().map(|u| u.type_name()),
    }
}

/// An error of ONNX Runtime's about a model built from `path` (the model itself, or with
/// parameters swapped in), or its output not finite or not scorable, as a user error naming that file, with
/// the whole chain of messages (ONNX Runtime's text kept as it is); any other error unchanged.
pub fn name_the_model(err: anyhow::Error, path: &Path) -> anyhow::Error {
    let ours = err.chain().any(|c| c.downcast_ref::<UserError>().is_some());
    let theirs = |c: &(dyn std::error::Error + 'static)| {
        c.downcast_ref::<RuntimeFailure>().is_some()
            || c.downcast_ref::<NonFiniteOutput>().is_some()
            || c.downcast_ref::<UnusableOutput>().is_some()
    };
    if !ours && err.chain().any(theirs) {
        return bad_file(path, format!("{err:#}"));
    }
    err
}

/// Print warnings on stderr unless quiet.
pub fn warn(warnings: &[String], quiet: bool) {
    if !quiet {
        for w in warnings {
            eprintln!("warning: {}", crate::report::table::terminal_safe(w));
        }
    }
}

/// The data-free report of a loaded pair (`command` names it), and the checked values.
pub fn data_free_report(ctx: &PairContext, o: &Options, command: &str) -> Result<(Report, PairValues)> {
    let values = compare::pair_values(&ctx.target, &ctx.source, &ctx.pairing)?;
    let rows = compare::rows(&ctx.pairing, &values, &o.kinds, true);
    Ok((report_of(ctx, o, command, rows, &values), values))
}

/// The data-free report of a loaded pair with the given weight rows.
fn report_of(ctx: &PairContext, o: &Options, command: &str, rows: Vec<report::Row>, values: &PairValues) -> Report {
    Report {
        schema_version: report::SCHEMA_VERSION,
        tool: Default::default(),
        command: command.into(),
        target: model_info(&ctx.target, &ctx.target_layers),
        source: model_info(&ctx.source, &ctx.source_layers),
        engine: None,
        dataset: None,
        settings: report::Settings {
            kinds: o.kinds.iter().map(|k| k.to_string()).collect(),
            families: (o.families.len() < Family::ALL.len())
                .then(|| o.families.iter().map(|f| f.to_string()).collect()),
            tolerance: o.tolerance,
            rn_threshold: o.rn_threshold,
            match_method: ctx.pairing.method.into(),
            confidence: o.confidence,
            bootstrap: o.bootstrap,
            adaptive: false,
            metric: None,
            tf32: false,
        },
        baseline: None,
        rows,
        unmatched: ctx.pairing.unmatched.clone(),
        not_audited: vec![],
        warnings: ctx.warnings.clone(),
        summary: Summary { bn: compare::bn_stats(&ctx.pairing, values), ..Default::default() },
        predictors: vec![],
        adaptive: None,
        budget: None,
        timing: None,
    }
}

/// [`data_free_report`] with its weight rows (RMSE, cosine, the spectral metrics: an SVD per
/// conv bank) still being computed on a thread of their own, so that they overlap the
/// audit's probes and session builds; the report's `rows` stay empty until
/// [`PendingRows::join`].
pub fn data_free_report_pending(
    ctx: &PairContext,
    o: &Options,
    command: &str,
) -> Result<(Report, Arc<PairValues>, PendingRows)> {
    let values = Arc::new(compare::pair_values(&ctx.target, &ctx.source, &ctx.pairing)?);
    let rows = PendingRows::spawn(ctx.pairing.clone(), Arc::clone(&values), o.kinds.clone());
    Ok((report_of(ctx, o, command, Vec::new(), &values), values, rows))
}

/// The data-free comparison of a model pair (RMSE, nRMSE, cosine, MRM/MRV/MRW/MRB): the
/// report of `reuse-audit rmse`. Warnings are printed on stderr unless `o.quiet`.
pub fn rmse(target: &Path, source: &Path, o: &Options) -> Result<Report> {
    o.validate()?;
    let ctx = load_pair_of(target, source, &o.match_mode, &o.families)?;
    warn(&ctx.warnings, o.quiet);
    Ok(data_free_report(&ctx, o, "rmse")?.0)
}
