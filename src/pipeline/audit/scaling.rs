//! The input scaling an audit runs with: chosen on the probe batch (`--normalize auto`)
//! or forced, and the baseline guard (`--min-baseline`, Dice or accuracy) that refuses a
//! verdict on a model that does not segment (classify) the data; label-free, the one-class
//! warning.

use anyhow::Result;

use super::Audit;
use crate::audit::forward::Feed;
use crate::data::preprocess::{Dataset, InputSpec};
use crate::data::{Normalize, Sample};
use crate::engine::{Engine, Runner};
use crate::error::UserError;
use crate::metrics::score::Metric;
use crate::model::head::Rule;
use crate::model::layout::Layout;
use crate::model::Model;
use crate::pipeline::{probe, warn};

/// The probe batch as loaded and as prepared with the first scaling, and how it is fed.
pub(super) struct Probe<'a> {
    /// Samples of the probe batch.
    pub samples: &'a [Sample],
    /// The same, prepared (z-score, or the forced scaling).
    pub data: &'a Dataset,
    /// The model's input.
    pub input: &'a InputSpec,
    /// The output's layout.
    pub output: Layout,
    /// A classifier's output (one prediction per image).
    pub per_image: bool,
    /// A session of the target already built (the output-kind probe's), to reuse.
    pub session: Option<Runner>,
}

impl Audit {
    /// The scaling to run with and what each scaling tried scored on the probe (empty
    /// label-free); warnings go to `warnings` (and stderr unless quiet).
    pub(super) fn choose_scaling(
        &self,
        engine: &Engine,
        target: &Model,
        p: Probe,
        rule: &Rule,
        label_free: bool,
        warnings: &mut Vec<String>,
    ) -> Result<(Normalize, Vec<probe::ScalingScore>)> {
        let o = &self.options;
        let threshold = rule.threshold().unwrap_or(0.0);
        let first_norm = if self.normalize == Normalize::Auto { Normalize::Zscore } else { self.normalize };
        Ok(if label_free {
            let feed = Feed {
                data: p.data,
                input: p.input,
                batch: p.input.batch.unwrap_or(p.data.n()),
                threshold,
                output: p.output,
                per_image: p.per_image,
            };
            let (class, share) = probe::dominant_class_share(engine, target, &feed, p.session)?;
            if share >= 0.99 {
                let w = format!(
                    "label-free baseline: the target predicts class {class} on {:.1}% of the probe {}, so agreement with it says little; check the input scaling (--normalize) and the output rule ({})",
                    100.0 * share,
                    if p.per_image { "images" } else { "pixels" },
                    rule.describe()
                );
                warn(std::slice::from_ref(&w), o.quiet);
                warnings.push(w);
            }
            (first_norm, Vec::new())
        } else {
            let tries =
                if self.normalize == Normalize::Auto { probe::candidates(p.samples) } else { vec![self.normalize] };
            let how = probe::ProbeScoring {
                fit: self.fit,
                mean_std: self.mean_std.as_ref(),
                threshold,
                output: p.output,
                per_image: p.per_image,
                metric: self.metric,
                ignore_label: self.ignore_label,
            };
            let scores = probe::score_scalings(engine, target, p.samples, p.input, how, &tries, p.session)?;
            let best = probe::best(&scores).map(|b| (b.normalize, b.probe_dice)).unwrap_or((first_norm, 0.0));
            if best.1 < self.min_baseline {
                return Err(self.no_baseline(target, best.1, "on the probe batch", &scores, rule).into());
            }
            (best.0, scores)
        })
    }

    /// The baseline guard on the whole set: a baseline below `--min-baseline` is refused, and
    /// so is, with `--metric accuracy`, one no better than always answering the most frequent
    /// label (a classifier stuck on one class scores its share, 0.9 on a 90/10 set: every
    /// swap that leaves it stuck looks harmless). `--min-baseline 0` turns both off.
    pub(super) fn whole_set_guard(
        &self,
        target: &Model,
        (baseline, data): (f64, &Dataset),
        scores: &[probe::ScalingScore],
        rule: &Rule,
    ) -> Result<(), UserError> {
        if baseline < self.min_baseline {
            return Err(self.no_baseline(target, baseline, "on the whole set", scores, rule));
        }
        let labels = data.labels.as_ref().filter(|_| self.metric == Metric::Accuracy && self.min_baseline > 0.0);
        let Some(labels) = labels else { return Ok(()) };
        // Images whose label is `--ignore-label` are scored for no class: not counted here either.
        let ignored = |v: f64| self.ignore_label.is_some_and(|l| v == f64::from(l));
        let mut counts = std::collections::BTreeMap::<u64, usize>::new();
        let mut total = 0usize;
        for v in labels.iter().filter(|&v| !ignored(v)) {
            *counts.entry(v as u64).or_default() += 1;
            total += 1;
        }
        let Some((&class, &most)) = counts.iter().max_by_key(|&(c, n)| (*n, std::cmp::Reverse(*c))) else {
            return Ok(());
        };
        let share = most as f64 / total as f64;
        if baseline > share {
            return Ok(());
        }
        Err(UserError::BadData(format!(
            "the target {} does not classify this data: baseline accuracy {baseline:.3} on the whole set is no better \
             than always answering class {class}, the label of {:.1}% of the images (input scaling tried, probe \
             accuracy: {}; output rule: {}). No verdict is given, because every swap that leaves a model stuck on one \
             class looks harmless. Check the input scaling (--normalize, --mean, --std) and that the labels use the \
             model's class numbers; --min-baseline 0 audits anyway",
            self.target.display(),
            100.0 * share,
            scores
                .iter()
                .map(|s| format!("{} {:.3}", format!("{:?}", s.normalize).to_lowercase(), s.probe_dice))
                .collect::<Vec<_>>()
                .join(", "),
            rule.describe(),
        )))
    }

    /// The refusal when the baseline does not segment (classify) the data.
    pub(super) fn no_baseline(
        &self,
        target: &Model,
        mean: f64,
        on: &str,
        scores: &[probe::ScalingScore],
        rule: &Rule,
    ) -> UserError {
        // A model with several outputs may have the one to audit elsewhere.
        let which = super::scored::which_output(target);
        let which = if which.is_empty() { which } else { format!(", {which}") };
        let tried: Vec<String> = scores
            .iter()
            .map(|s| format!("{} {:.3}", format!("{:?}", s.normalize).to_lowercase(), s.probe_dice))
            .collect();
        let (does, score) = match self.metric {
            Metric::Accuracy => ("classify", "accuracy"),
            _ => ("segment", "mean Dice"),
        };
        UserError::BadData(format!(
            "the target {} does not {does} this data: baseline {score} {mean:.3} {on} is below --min-baseline {} \
             (input scaling tried, probe {}: {}; output rule: {}{which}). No verdict is given, because every swap of a \
             model that fails anyway looks harmless. Check that the labels use the model's class numbers, the input \
             scaling (--normalize), the size and channels fed, and the output rule (--threshold{}); --min-baseline 0 \
             audits anyway",
            self.target.display(),
            self.min_baseline,
            self.metric.label(),
            tried.join(", "),
            rule.describe(),
            if which.is_empty() { "" } else { ", --output" },
        ))
    }
}
