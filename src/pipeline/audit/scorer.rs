//! [`Scorer`]: whole models scored on an audit's validation set, with the audit's data,
//! preprocessing, prediction rule, metric and truth — what a reuse plan's joint check needs
//! (a target with many parameters swapped at once), by full forward passes.

use anyhow::{bail, Result};
use ndarray::Array3;

use super::prepare::Prepared;
use super::Audit;
use crate::audit::forward::{predictions, score, Feed};
use crate::engine::{Engine, LazyEngine};
use crate::metrics::dice::Dice;
use crate::metrics::score::Metric;
use crate::pipeline::name_the_model;

/// Scores models built from an audit's target (same inputs and outputs) as the audit scores
/// its swaps: [`Scorer::score`] gives what a swap's `swapped_dice` is, for any model.
pub struct Scorer<'e> {
    engine: &'e Engine,
    prepared: Prepared,
    truth: Array3<u8>,
    classes: usize,
    baseline: Dice,
    metric: Metric,
    data: std::path::PathBuf,
}

impl Audit {
    /// Prepare this audit's data and truth (labels, or label-free the target's own
    /// predictions) and score the unswapped target once, without running any swap. The
    /// baseline guard (`--min-baseline`) applies as in [`Audit::run`].
    pub fn scorer<'e>(&self, engine: &'e LazyEngine) -> Result<Scorer<'e>> {
        let prepared = self.prepare(engine).map_err(|e| name_the_model(e, &self.target))?;
        let engine = engine.get()?;
        let p = &prepared;
        let feed = feed(p);
        let bytes = p.ctx.target.to_bytes()?;
        let (pred, classes) =
            predictions(&mut engine.session(&bytes)?, &feed, &[]).map_err(|e| name_the_model(e, &self.target))?;
        let truth = if p.label_free { pred.clone() } else { crate::audit::labels(&p.dataset, classes)? };
        let baseline = score(pred.view(), truth.view(), classes, self.metric);
        if !p.label_free {
            self.whole_set_guard(&p.ctx.target, (baseline.mean, &p.dataset), &p.scores, &p.rule)?;
        }
        let data = self.data.clone().unwrap_or_default();
        Ok(Scorer { engine, prepared, truth, classes, baseline, metric: self.metric, data })
    }
}

fn feed(p: &Prepared) -> Feed<'_> {
    Feed {
        data: &p.dataset,
        input: &p.io.input,
        batch: p.io.input.batch.unwrap_or(p.batch.max(1)),
        threshold: p.rule.threshold().unwrap_or(0.0),
        output: p.io.output,
        per_image: p.kind.per_image,
    }
}

impl Scorer<'_> {
    /// The unswapped target's score (`mean` is the metric; per class Dice).
    pub fn baseline(&self) -> &Dice {
        &self.baseline
    }

    /// What the scores are in.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// Whether the truth is the target's own predictions (label-free).
    pub fn label_free(&self) -> bool {
        self.prepared.label_free
    }

    /// The validation data (`--data`).
    pub fn data(&self) -> &std::path::Path {
        &self.data
    }

    /// Images scored.
    pub fn images(&self) -> usize {
        self.prepared.dataset.n()
    }

    /// The input scaling used (`zscore`, ...), as the report's `dataset.normalize` says it.
    pub fn normalize(&self) -> String {
        format!("{:?}", self.prepared.normalize).to_lowercase()
    }

    /// Warnings the preparation gave (also printed unless quiet).
    pub fn warnings(&self) -> &[String] {
        &self.prepared.report.warnings
    }

    /// Score a serialized ONNX model with the target's inputs and outputs: a new session,
    /// every image through it, scored against the audit's truth. ONNX Runtime's refusals
    /// are errors of the model's bytes (name the file in the caller's context).
    pub fn score(&self, model: &[u8]) -> Result<Dice> {
        let feed = feed(&self.prepared);
        let (pred, classes) = predictions(&mut self.engine.session(model)?, &feed, &[])?;
        if classes != self.classes {
            bail!("the model gives {classes} classes, the target {}", self.classes);
        }
        Ok(score(pred.view(), self.truth.view(), classes, self.metric))
    }
}
