//! `audit TARGET SOURCE --data PATH`: the full protocol, report, and CI gates.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::rmse::data_free_report;
use super::{emit, load_pair, warn};
use crate::audit::{self, AuditJob, Strategy, Truth};
use crate::cli::{GateArgs, RunArgs};
use crate::config::Settings;
use crate::data::{self, Fit, Normalize};
use crate::engine::{runtime, LazyEngine};
use crate::error::{GateFailed, UserError};
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
}

/// Run the audit and build its report.
pub fn audit_report(req: &AuditRequest, engine: &LazyEngine) -> Result<Report> {
    let s = req.settings;
    let ctx = load_pair(req.target, req.source, &s.match_mode)?;
    warn(&ctx.warnings, s.quiet);
    let (mut report, values) = data_free_report(&ctx, s, "audit")?;
    let loaded = data::load(&req.data, req.labels_file.as_deref())?;
    let input = ctx.target.input_spec()?;
    let dataset = data::preprocess::prepare(&loaded.samples, &input, req.normalize, req.fit)?;
    let truth = if req.label_free {
        Truth::Baseline
    } else {
        Truth::Labels
    };
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
    };
    let engine = engine.get()?;
    let outcome = audit::run(engine, &job)?;
    let rows_by_pair: Vec<usize> = (0..ctx.pairing.pairs.len())
        .filter(|&i| s.kinds.contains(&ctx.pairing.pairs[i].kind()))
        .collect();
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
        strategy: req.strategy.name().into(),
    });
    report.dataset = Some(DatasetInfo {
        path: req.data.display().to_string(),
        format: loaded.format.into(),
        images: dataset.n,
        channels: dataset.c,
        height: dataset.h,
        width: dataset.w,
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
        return Err(UserError::BadFlag {
            flag: "--batch",
            reason: "must be at least 1".into(),
        }
        .into());
    }
    if let Some(m) = g.max_delta {
        if !m.is_finite() {
            return Err(UserError::BadFlag {
                flag: "--max-delta",
                reason: format!("{m} is not a finite number"),
            }
            .into());
        }
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
    if failures.is_empty() {
        Ok(())
    } else {
        Err(GateFailed(failures.join("\n  ")).into())
    }
}
