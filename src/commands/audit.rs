//! `audit TARGET SOURCE --data PATH`: the full protocol, report, and CI gates.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::rmse::data_free_report;
use super::{emit, load_pair, warn};
use crate::audit::{self, AuditJob, Strategy, Truth};
use crate::cli::{GateArgs, RunArgs};
use crate::config::Settings;
use crate::data::{self, Fit, Normalize};
use crate::engine::{runtime, LazyEngine};
use crate::error::{GateFailed, UserError};
use crate::model::Kind;
use crate::report::{DatasetInfo, EngineInfo, Report};

/// Everything an audit needs besides the engine.
pub struct AuditRequest<'a> {
    /// Target model path.
    pub target: &'a Path,
    /// Source model path.
    pub source: &'a Path,
    /// Validated common settings.
    pub settings: &'a Settings,
    /// Validation data.
    pub data: PathBuf,
    /// Labels file, or None (labels inside the data, if any).
    pub labels_file: Option<PathBuf>,
    /// Label-free mode.
    pub label_free: bool,
    /// --normalize.
    pub normalize: Normalize,
    /// --fit.
    pub fit: Fit,
    /// --batch.
    pub batch: usize,
    /// --strategy.
    pub strategy: Strategy,
    /// --cache-mb.
    pub cache_mb: usize,
    /// --dynamic-batch: make a fixed batch-1 target batch-dynamic (verified).
    pub dynamic_batch: bool,
}

/// Run the audit and build its report.
pub fn audit_report(req: &AuditRequest, engine: &LazyEngine) -> Result<Report> {
    let s = req.settings;
    let mut ctx = load_pair(req.target, req.source, &s.match_mode)?;
    warn(&ctx.warnings, s.quiet);
    let (mut report, values) = data_free_report(&ctx, s, "audit")?;
    let loaded = data::load(&req.data, req.labels_file.as_deref())?;
    let input = ctx.target.input_spec()?;
    let dataset = data::preprocess::prepare(&loaded.samples, &input, req.normalize, req.fit)?;
    if req.dynamic_batch {
        ctx.target = batch_dynamic_verified(engine.get()?, &ctx.target, &dataset)?;
    }
    let truth = if req.label_free { Truth::Baseline } else { Truth::Labels };
    let job = AuditJob {
        target: &ctx.target,
        pairing: &ctx.pairing,
        values: &values,
        data: &dataset,
        batch: req.batch,
        truth,
        kinds: &s.kinds,
        strategy: req.strategy,
        quiet: s.quiet,
        cache_mb: req.cache_mb,
    };
    let engine = engine.get()?;
    let (outcome, strategy) = audit::run(engine, &job)?;
    let rows_by_pair: Vec<usize> =
        (0..ctx.pairing.pairs.len()).filter(|&i| s.kinds.contains(&ctx.pairing.pairs[i].kind())).collect();
    for (row, &i) in report.rows.iter_mut().zip(&rows_by_pair) {
        if let Some(d) = &outcome.swaps[i] {
            row.baseline_dice = Some(outcome.baseline.mean);
            row.swapped_dice = Some(d.mean);
            row.delta_dice = Some(outcome.baseline.mean - d.mean);
            row.dice_fg = Some(d.mean_fg);
            row.dice_class = d.per_class.clone();
        }
    }
    let bn = std::mem::take(&mut report.summary.bn);
    report.summary = crate::verdict::decide(&mut report.rows, s.tolerance, s.rn_threshold);
    report.summary.bn = bn;
    report.baseline = Some(outcome.baseline);
    report.engine = Some(EngineInfo {
        runtime: "onnxruntime".into(),
        version: runtime::ORT_VERSION.into(),
        provider: engine.provider.into(),
        strategy: strategy.name().into(),
    });
    report.dataset = Some(DatasetInfo {
        path: req.data.display().to_string(),
        format: loaded.format.into(),
        images: dataset.n(),
        channels: dataset.c(),
        height: dataset.h(),
        width: dataset.w(),
        classes: outcome.classes,
        labels: if req.label_free { "baseline" } else { "file" }.into(),
        normalize: format!("{:?}", req.normalize).to_lowercase(),
        fit: format!("{:?}", req.fit).to_lowercase(),
    });
    Ok(report)
}

/// Run `audit`.
pub fn run(target: &Path, source: &Path, s: &Settings, a: &RunArgs, g: &GateArgs) -> Result<()> {
    if a.batch == 0 {
        return Err(UserError::BadFlag { flag: "--batch", reason: "must be at least 1".into() }.into());
    }
    if let Some(m) = g.max_delta {
        if !m.is_finite() {
            return Err(
                UserError::BadFlag { flag: "--max-delta", reason: format!("{m} is not a finite number") }.into()
            );
        }
    }
    if let Some(spec) = &g.require_reusable {
        parse_requirement(spec)?; // refuse a bad spec before any work
    }
    let label_free = a.labels.as_deref() == Some("baseline");
    let req = AuditRequest {
        target,
        source,
        settings: s,
        data: a.data.clone(),
        labels_file: a.labels.as_ref().filter(|_| !label_free).map(PathBuf::from),
        label_free,
        normalize: a.normalize,
        fit: a.fit,
        batch: a.batch,
        strategy: a.strategy,
        cache_mb: a.cache_mb,
        dynamic_batch: a.dynamic_batch,
    };
    // The runtime loads only after models and data have been checked.
    let engine = LazyEngine::new(a.device, a.threads, s.quiet);
    let report = audit_report(&req, &engine)?;
    emit(&report, s)?;
    gates(&report, g)
}

/// Apply the CI gates; a failure lists the failing rows.
pub fn gates(r: &Report, g: &GateArgs) -> Result<()> {
    let mut failures = Vec::new();
    if g.fail_if_not_reusable && r.summary.rn != Some(true) {
        failures.push(format!(
            "--fail-if-not-reusable: the network is not an RN (conv W reusable share {:.2} < {})",
            r.summary.conv_w_reusable_share.unwrap_or(0.0),
            r.settings.rn_threshold
        ));
    }
    if let Some(max) = g.max_delta {
        for row in &r.rows {
            if let Some(d) = row.delta_dice {
                if d.is_nan() || d > max {
                    failures.push(format!(
                        "--max-delta {max}: {} {} {} ({}) loses {d:.4} mean Dice",
                        row.family, row.layer, row.kind, row.node
                    ));
                }
            }
        }
    }
    if let Some(spec) = &g.require_reusable {
        for (kind, layers) in parse_requirement(spec)? {
            for row in r.rows.iter().filter(|row| row.kind == kind.to_string()) {
                let wanted = layers.as_ref().is_none_or(|l| l.contains(&row.layer));
                if wanted && row.reusable != Some(true) {
                    failures.push(format!(
                        "--require-reusable: {} {} {} ({}) is not reusable (delta {:.4})",
                        row.family,
                        row.layer,
                        row.kind,
                        row.node,
                        row.delta_dice.unwrap_or(f64::NAN)
                    ));
                }
            }
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(GateFailed(failures.join("\n  ")).into())
    }
}

/// Parse `W:1-5,7,B:*`: per kind, the layers required (None = every layer).
pub fn parse_requirement(spec: &str) -> Result<Vec<(Kind, Option<Vec<usize>>)>> {
    let bad = |why: String| -> anyhow::Error { UserError::BadFlag { flag: "--require-reusable", reason: why }.into() };
    let mut out: Vec<(Kind, Option<Vec<usize>>)> = Vec::new();
    for token in spec.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let range = match token.split_once(':') {
            Some((k, range)) => {
                let kind = Kind::parse(k).ok_or_else(|| bad(format!("'{k}' is not one of W, B, RM, RV, RW, RB")))?;
                out.push((kind, Some(Vec::new())));
                range
            }
            None if !out.is_empty() => token,
            None => return Err(bad(format!("'{token}' has no kind: write e.g. W:1-5"))),
        };
        let Some((_, layers)) = out.last_mut() else { unreachable!("pushed above") };
        if range == "*" {
            *layers = None;
            continue;
        }
        let (a, b) = range.split_once('-').unwrap_or((range, range));
        let (a, b): (usize, usize) = match (a.parse(), b.parse()) {
            (Ok(a), Ok(b)) if a >= 1 && a <= b => (a, b),
            _ => return Err(bad(format!("'{range}' is not a layer, a range like 1-5, or *"))),
        };
        if let Some(l) = layers.as_mut() {
            l.extend(a..=b);
        }
    }
    if out.is_empty() {
        return Err(bad("empty requirement".into()));
    }
    Ok(out)
}

/// The target made batch-dynamic, checked to give the same outputs as the original (one
/// image per run) on the first images of the data, to 1e-4 relative.
fn batch_dynamic_verified(
    engine: &crate::engine::Engine,
    target: &crate::model::Model,
    data: &crate::data::preprocess::Dataset,
) -> Result<crate::model::Model> {
    let dynamic = crate::model::batch::make_batch_dynamic(target)?;
    let input = target.input_spec()?;
    let k = data.n().min(4);
    let per = data.c() * data.h() * data.w();
    let all = data.images.as_slice().context("the images are not in standard layout")?;
    let images = &all[..k * per];
    let first_output = |r: &mut crate::engine::Runner, shape: &[usize], x: &[f32]| {
        r.run_views_first(&[(input.name.as_str(), crate::engine::View::F32(shape, x))], |_, v| Ok(v.to_vec()))
    };
    let mut one = engine.session(&target.to_bytes()?)?;
    let mut want = Vec::new();
    for i in 0..k {
        want.extend(first_output(&mut one, &[1, data.c(), data.h(), data.w()], &images[i * per..(i + 1) * per])?);
    }
    let got = engine
        .session(&dynamic.to_bytes()?)
        .and_then(|mut r| first_output(&mut r, &[k, data.c(), data.h(), data.w()], images))
        .map_err(|e| UserError::BadFlag {
            flag: "--dynamic-batch",
            reason: format!("the model does not run with a batch of {k}: {e:#}"),
        })?;
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1.0);
    let diff = want.iter().zip(&got).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    if got.len() != want.len() || diff.is_nan() || diff > 1e-4 * scale {
        return Err(UserError::BadFlag {
            flag: "--dynamic-batch",
            reason: format!("the model is not batch-agnostic: a batch of {k} differs from one image at a time by {diff}; run without --dynamic-batch"),
        }
        .into());
    }
    Ok(dynamic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirement_spec() {
        let r = parse_requirement("W:1-3,5,B:*").unwrap();
        assert_eq!(r, vec![(Kind::W, Some(vec![1, 2, 3, 5])), (Kind::B, None)]);
        assert!(parse_requirement("5").is_err());
        assert!(parse_requirement("Q:1").is_err());
        assert!(parse_requirement("W:3-1").is_err());
    }
}
