//! `--metric` (and `--mean`/`--std`) checked against the other flags, the labels' form and
//! what the model outputs, so a metric is never computed on something it does not score:
//! Dice needs a segmentation map, accuracy a classifier and class-id labels, agreement no
//! labels at all.

use anyhow::Result;

use super::{Audit, Labels};
use crate::data::preprocess::Dataset;
use crate::error::UserError;
use crate::metrics::score::Metric;
use crate::pipeline::output::OutputKind;

impl Audit {
    /// Flags that contradict each other, refused before any work.
    pub(super) fn check_metric_flags(&self) -> Result<()> {
        match (self.metric, &self.labels) {
            (Metric::Accuracy, Labels::Baseline) => {
                return Err(UserError::BadFlag {
                    flag: "--metric",
                    reason: "accuracy needs labels (one class id per image); label-free, use --metric agreement".into(),
                }
                .into())
            }
            (Metric::Agreement, Labels::File(p)) => {
                return Err(UserError::BadFlag {
                    flag: "--labels",
                    reason: format!(
                        "{}: --metric agreement is label-free (it compares with the unswapped target's own \
                         predictions); drop --labels, or use --metric dice/accuracy to score against labels",
                        p.display()
                    ),
                }
                .into())
            }
            _ => {}
        }
        if let Some(l) = self.ignore_label.filter(|_| self.labels == Labels::Baseline || self.metric.label_free()) {
            // Label-free, the truth is the target's own prediction, always a class: the
            // value would mark nothing, yet the flag was dropped without a word.
            return Err(UserError::BadFlag {
                flag: "--ignore-label",
                reason: format!(
                    "{l}: label-free (--labels baseline, --metric agreement) the truth is the unswapped target's own \
                     prediction, always one of its classes, so no pixel carries {l}; drop --ignore-label, or score \
                     against labels that mark pixels with it"
                ),
            }
            .into());
        }
        if let Some(ms) = &self.mean_std {
            if let Some(m) = ms.mean.iter().find(|m| !m.is_finite()) {
                return Err(UserError::BadFlag { flag: "--mean", reason: format!("{m} is not a finite number") }.into());
            }
            if let Some(s) = ms.std.iter().find(|s| !s.is_finite() || **s == 0.0) {
                return Err(UserError::BadFlag {
                    flag: "--std",
                    reason: format!("{s} is not a finite, non-zero number"),
                }
                .into());
            }
        }
        Ok(())
    }

    /// The metric against the model's output (`kind`) and, with labels, the labels' form.
    pub(super) fn check_metric_output(&self, kind: &OutputKind, data: &Dataset, label_free: bool) -> Result<()> {
        let out = kind.describe();
        match (self.metric, kind.per_image) {
            (Metric::Dice, true) => {
                return Err(UserError::BadFlag {
                    flag: "--metric",
                    reason: format!(
                        "dice (the default) scores segmentation maps, but the model's output {out} holds one score \
                         vector per image (a classifier): use --metric accuracy (labels: one class id per image) or \
                         --metric agreement (label-free)"
                    ),
                }
                .into())
            }
            (Metric::Accuracy, false) => {
                return Err(UserError::BadFlag {
                    flag: "--metric",
                    reason: format!(
                        "accuracy scores classifiers (one class per image, output N x classes), but the model's \
                         output {out} is a segmentation map: use --metric dice (or agreement)"
                    ),
                }
                .into())
            }
            _ => {}
        }
        if label_free || data.labels.is_none() {
            return Ok(());
        }
        match (kind.per_image, data.class_ids) {
            (true, false) => Err(UserError::BadData(format!(
                "the labels are label maps (N x H x W), but the model is a classifier (output {out}): give one class \
                 id per image (labels of shape N)"
            ))
            .into()),
            (false, true) => Err(UserError::BadData(format!(
                "the labels are one class id per image (shape N), but the model outputs a segmentation map ({out}): \
                 give N x H x W label maps"
            ))
            .into()),
            _ => Ok(()),
        }
    }
}
