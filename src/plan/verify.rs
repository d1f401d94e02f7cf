//! The joint check: swaps were judged one at a time, together they can cost more. The
//! grafted model is scored on the validation set; while its loss exceeds the tolerance, the
//! reused tensor with the largest individual loss (the audit's, ties to the first in report
//! order) goes back to the target's and the model is scored again. Every step is recorded.

use anyhow::{Context, Result};
use serde::Serialize;

use super::graft::{apply, Graft};
use super::stored::RawModel;
use crate::pipeline::Scorer;
use onnx_protobuf::Message;

/// One scoring of a grafted model.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// 1-based.
    pub step: usize,
    /// Reused tensors grafted in this step.
    pub reused: usize,
    /// The grafted model's score (the report's metric).
    pub score: f64,
    /// Its Dice per class.
    pub per_class: Vec<f64>,
    /// baseline - score.
    pub loss: f64,
    /// loss <= tolerance.
    pub within_tolerance: bool,
    /// The reused tensor dropped after this step (`family layer kind (node)`), if one was.
    pub dropped: Option<String>,
    /// Its individual loss in the audit.
    pub dropped_loss: Option<f64>,
}

/// What the joint check measured.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    /// `--data` as given.
    pub data: String,
    /// Images scored.
    pub images: usize,
    /// `dice`, `accuracy` or `agreement`: what scores and losses are in.
    pub metric: String,
    /// Truth: `file` (labels) or `baseline` (label-free).
    pub labels: String,
    /// Input scaling used.
    pub normalize: String,
    /// The unswapped target's score in this check.
    pub baseline: f64,
    /// The baseline the report recorded.
    pub report_baseline: f64,
    /// Loss a plan may have (the report's tolerance).
    pub tolerance: f64,
    /// Every scoring, in order; the last is the plan's.
    pub steps: Vec<Step>,
    /// The final grafted model's score.
    pub score: f64,
    /// Its loss.
    pub loss: f64,
    /// loss <= tolerance.
    pub within_tolerance: bool,
}

/// The steps of a joint check, and the grafts it dropped with the step that dropped each.
pub type JointOutcome = (Vec<Step>, Vec<(Graft, usize)>);

/// Score the grafts together, dropping the largest individual loss until the loss is within
/// `tolerance`. Returns the steps and the grafts dropped, each with the step that dropped it.
pub fn joint(
    scorer: &Scorer,
    target: &RawModel,
    grafts: &mut Vec<Graft>,
    tolerance: f64,
    loss_of: &dyn Fn(&Graft) -> f64,
    label_of: &dyn Fn(&Graft) -> String,
) -> Result<JointOutcome> {
    let baseline = scorer.baseline().mean;
    let mut steps = Vec::new();
    let mut dropped = Vec::new();
    loop {
        let refs: Vec<&Graft> = grafts.iter().collect();
        // Scored as the audit scored the target: in float32 if it computes in half.
        let mut grafted = apply(target, &refs)?;
        crate::model::upcast::upcast(grafted.graph.mut_or_insert_default()).map_err(anyhow::Error::msg)?;
        let bytes = grafted.write_to_bytes()?;
        let score = scorer
            .score(&bytes)
            .with_context(|| format!("scoring the grafted model ({} reused tensors)", grafts.len()))?;
        let loss = baseline - score.mean;
        let within = loss <= tolerance;
        let n = steps.len() + 1;
        let mut step = Step {
            step: n,
            reused: grafts.len(),
            score: score.mean,
            per_class: score.per_class,
            loss,
            within_tolerance: within,
            dropped: None,
            dropped_loss: None,
        };
        // Largest individual loss; the first of equals.
        let worst = (0..grafts.len()).fold(None, |best: Option<usize>, i| match best {
            Some(b) if loss_of(&grafts[b]) >= loss_of(&grafts[i]) => Some(b),
            _ => Some(i),
        });
        match worst.filter(|_| !within) {
            Some(w) => {
                let g = grafts.remove(w);
                step.dropped = Some(label_of(&g));
                step.dropped_loss = Some(loss_of(&g));
                dropped.push((g, n));
                steps.push(step);
            }
            None => {
                steps.push(step);
                return Ok((steps, dropped));
            }
        }
    }
}
