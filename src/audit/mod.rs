//! The swap audit (METHOD.md protocol): baseline, then one swap per matched (layer, kind),
//! each scored on the validation set by the chosen metric (Dice, accuracy or agreement). Strategies evaluate the same swaps:
//! `naive` (new model and session per swap, the reference), `shared` (one session whose
//! swappable initializers are graph inputs, fed per run) and `incremental` (each swap runs
//! only the subgraph downstream of its layer, from cached activations; see `incremental`).

pub mod compare;
pub mod cost;
pub mod forward;
pub mod incremental;
pub mod progress;
mod strategy;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::Array3;

pub use progress::{Known, Progress, Sink};
pub use strategy::{overridable_model, Strategy};

use crate::data::preprocess::{Dataset, InputSpec};
use crate::engine::Engine;
use crate::metrics::dice::Dice;
use crate::metrics::score::Metric;
use crate::model::layout::Layout;
use crate::model::{Kind, Model};
use crate::pair::Pairing;
use compare::PairValues;
use forward::Feed;

/// Where the ground truth comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truth {
    /// Labels loaded with the data.
    Labels,
    /// The unswapped target's own predictions (label-free mode).
    Baseline,
}

/// What one audit needs.
pub struct AuditJob<'a> {
    /// The target model.
    pub target: &'a Model,
    /// Paired parameters.
    pub pairing: &'a Pairing,
    /// Their values.
    pub values: &'a PairValues,
    /// The target's input as it is fed (layout and size resolved).
    pub input: &'a InputSpec,
    /// How the target's output orders its axes.
    pub output: Layout,
    /// Preprocessed data, in the input's layout.
    pub data: &'a Dataset,
    /// Images per run.
    pub batch: usize,
    /// Ground truth source.
    pub truth: Truth,
    /// Kinds to swap.
    pub kinds: &'a [Kind],
    /// Evaluation strategy.
    pub strategy: Strategy,
    /// Hide the progress bar.
    pub quiet: bool,
    /// Cache budget of the incremental strategy, MiB.
    pub cache_mb: usize,
    /// A one-channel output's foreground threshold (0 for logits, 0.5 for probabilities).
    pub threshold: f32,
    /// One prediction per image (a classifier) rather than one per pixel.
    pub per_image: bool,
    /// What swaps are scored by.
    pub metric: Metric,
    /// Results known from a journal, a shard's pairs, where results go (see `progress`).
    pub progress: Option<&'a Progress<'a>>,
}

impl AuditJob<'_> {
    /// Whether pair `i` is audited (its kind was asked for).
    pub fn audits(&self, i: usize) -> bool {
        self.kinds.contains(&self.pairing.pairs[i].kind())
    }

    /// Whether pair `i`'s source parameter equals the target's bit for bit: its swap leaves
    /// the target as it is, so its Dice is the baseline's by construction.
    pub fn unchanged(&self, i: usize) -> bool {
        let (t, s) = (&self.values.target[i], &self.values.source[i]);
        // A QDQ swap writes the whole triple: equal dequantized values from different
        // triples still change what a fused quantized kernel computes.
        let same_triple = self.values.triples[i].as_ref().is_none_or(|(t, s)| t == s);
        same_triple && t.len() == s.len() && t.iter().zip(s).all(|(a, b)| a.to_bits() == b.to_bits())
    }

    /// Whether pair `i` is run: audited, and (except by the naive reference) changed.
    pub fn runs(&self, i: usize) -> bool {
        self.audits(i) && (self.strategy == Strategy::Naive || !self.unchanged(i))
    }
}

/// One swap's result: what the journal keeps of it (all of it, whatever it holds).
pub type SwapScore = Dice;

/// The audit's scores ([`Metric::score`]: the metric as `mean`, Dice per class).
#[derive(Debug, Clone)]
pub struct AuditOutcome {
    /// Classes scored.
    pub classes: usize,
    /// Score of the unswapped target.
    pub baseline: Dice,
    /// Score per pair (same order as `Pairing::pairs`), `None` for kinds not audited (and,
    /// in a shard, for the other shards' swaps).
    pub swaps: Vec<Option<SwapScore>>,
}

/// Run the baseline and every swap; returns the outcome and the strategy that ran.
pub fn run(engine: &Engine, job: &AuditJob) -> Result<(AuditOutcome, Strategy)> {
    let skipped: Vec<usize> = (0..job.pairing.pairs.len()).filter(|&i| job.audits(i) && !job.runs(i)).collect();
    if !skipped.is_empty() && !job.quiet {
        eprintln!(
            "note: {} swap(s) not run: the source's parameter equals the target's bit for bit, so the swapped model is the target (delta 0)",
            skipped.len()
        );
    }
    let (mut outcome, strategy) = match job.from_journal()? {
        Some(done) => done,
        None => {
            let (mut outcome, strategy) = run_swaps(engine, job)?;
            job.fill_known(&mut outcome.swaps);
            (outcome, strategy)
        }
    };
    for i in skipped {
        outcome.swaps[i] = Some(outcome.baseline.clone());
    }
    Ok((outcome, strategy))
}

/// The baseline and every swap that [`AuditJob::computes`].
fn run_swaps(engine: &Engine, job: &AuditJob) -> Result<(AuditOutcome, Strategy)> {
    let input = job.input;
    let feed = Feed {
        data: job.data,
        input,
        batch: input.batch.unwrap_or(job.batch.max(1)),
        threshold: job.threshold,
        output: job.output,
        per_image: job.per_image,
    };
    if job.strategy == Strategy::Incremental {
        let d = job.data;
        let plan = cost::probe_shapes(engine, job.target, &input.name, d.layout, [d.c(), d.h(), d.w()])
            .and_then(|probe| incremental::Plan::new(engine, job, &probe));
        match plan {
            Ok(plan) => {
                let bar = progress(1, job.quiet);
                let out = plan.run(job, &feed, job.cache_mb, &bar)?;
                bar.finish_and_clear();
                return Ok((out, Strategy::Incremental));
            }
            Err(why) => {
                if !job.quiet {
                    eprintln!("note: incremental evaluation does not apply ({why:#}); using --strategy shared");
                }
                let shared = AuditJob { strategy: Strategy::Shared, ..*job };
                return Ok((run_full(engine, &shared, &feed)?, Strategy::Shared));
            }
        }
    }
    Ok((run_full(engine, job, &feed)?, job.strategy))
}

/// The ground-truth labels checked against the class count (an error when there are none).
pub fn labels(data: &Dataset, classes: usize) -> Result<Array3<u8>> {
    data.checked_labels(classes)?.ok_or_else(|| {
        crate::error::UserError::BadData(
            "the data has no labels: give --labels FILE or use --labels baseline (label-free)".into(),
        )
        .into()
    })
}

/// Naive and shared strategies: full forward passes.
fn run_full(engine: &Engine, job: &AuditJob, feed: &Feed) -> Result<AuditOutcome> {
    let todo: Vec<usize> = (0..job.pairing.pairs.len()).filter(|&i| job.computes(i)).collect();
    let bar = progress(todo.len() as u64 + 1, job.quiet);
    let mut eval = strategy::Evaluator::new(engine, job, feed)?;
    let (base_pred, classes) = eval.baseline()?;
    bar.inc(1);
    let truth = match job.truth {
        Truth::Labels => labels(job.data, classes)?,
        Truth::Baseline => base_pred.clone(),
    };
    let baseline = forward::score(base_pred.view(), truth.view(), classes, job.metric);
    job.record_baseline(job.strategy, classes, &baseline)?;
    let mut swaps = vec![None; job.pairing.pairs.len()];
    for i in todo {
        let p = &job.pairing.pairs[i];
        bar.set_message(format!("{} {} {}", p.layer.family, p.layer.index, p.kind()));
        let pred = eval.swap(i)?;
        let score = forward::score(pred.view(), truth.view(), classes, job.metric);
        job.record_swap(i, &score)?;
        swaps[i] = Some(score);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(AuditOutcome { classes, baseline, swaps })
}

fn progress(len: u64, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} swaps {pos}/{len} [{bar:30}] {elapsed} (ETA {eta}) {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
