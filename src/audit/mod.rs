//! The swap audit (METHOD.md protocol): baseline, then one swap per matched (layer, kind),
//! each scored on the validation set by the chosen metric (Dice, accuracy or agreement). Strategies evaluate the same swaps:
//! `naive` (new model and session per swap, the reference), `shared` (one session whose
//! swappable initializers are graph inputs, fed per run) and `incremental` (each swap runs
//! only the subgraph downstream of its layer, from cached activations; see `incremental`).

pub mod budget;
pub mod clock;
pub mod compare;
pub mod cost;
pub mod forward;
pub mod incremental;
pub mod progress;
pub mod scoring;
mod strategy;
mod tally;
pub mod work_bar;

use anyhow::Result;
use ndarray::Array3;

pub use progress::{Known, Progress, Sink};
pub use scoring::Scoring;
pub use strategy::{overridable_model, Strategy};
pub use tally::Tally;

use crate::data::preprocess::{Dataset, InputSpec};
use crate::engine::Engine;
use crate::metrics::dice::Dice;
use crate::metrics::score::Metric;
use crate::model::layout::Layout;
use crate::model::{Kind, Model};
use crate::pair::Pairing;
use compare::PairValues;
use forward::Feed;
use work_bar::WorkBar;

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
    /// Cache budget of the incremental strategy, MiB (`None`: the plan's default, see
    /// [`incremental::Plan::run`]).
    pub cache_mb: Option<usize>,
    /// A one-channel output's foreground threshold (0 for logits, 0.5 for probabilities).
    pub threshold: f32,
    /// Intervals and rounds (exact or adaptive).
    pub scoring: Scoring,
    /// One prediction per image (a classifier) rather than one per pixel.
    pub per_image: bool,
    /// What swaps are scored by.
    pub metric: Metric,
    /// Results known from a journal, a shard's pairs, where results go (see `progress`).
    pub progress: Option<&'a Progress<'a>>,
    /// The incremental plan's shape probe of `target` at the data's image size, when it
    /// already ran (beside the input-scaling probe); `None`: the plan runs it.
    pub shapes: Option<&'a cost::Probe>,
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

/// One swap's result: all of it is what the journal keeps of the swap.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SwapResult {
    /// The baseline's Dice on the images this swap was scored on.
    pub baseline: Dice,
    /// Dice with the swap, on those images.
    pub swapped: Dice,
    /// Images scored (all of them unless an adaptive audit stopped early).
    pub images: usize,
    /// Paired bootstrap interval of `baseline.mean - swapped.mean` at the outcome's `level`
    /// (NaN without resamples; journaled as null).
    #[serde(with = "progress::nan_as_null")]
    pub interval: (f64, f64),
    /// Images on which the swapped model's output held NaN or an infinity: their pixels
    /// there predict no class (scored as wrong), and the swap is not reusable.
    #[serde(default)]
    pub non_finite_images: usize,
}

/// The audit's Dice results.
#[derive(Debug, Clone)]
pub struct AuditOutcome {
    /// Classes scored.
    pub classes: usize,
    /// Dice of the unswapped target on every image.
    pub baseline: Dice,
    /// Result per pair (same order as `Pairing::pairs`), `None` for kinds not audited (and,
    /// in a shard, for the other shards' swaps).
    pub swaps: Vec<Option<SwapResult>>,
    /// Images in the set.
    pub images: usize,
    /// Images put through the model: the baseline's plus every swap run's.
    pub image_forwards: usize,
    /// What an exact audit puts through: every image for the baseline and every swap run.
    pub exact_image_forwards: usize,
    /// Images scored by the end of each round (one round when exact).
    pub rounds: Vec<usize>,
    /// Level of every interval (below `--confidence` when adaptive: one look of several).
    pub level: f64,
    /// Time and image forwards of what this run computed (nothing for results taken from
    /// a journal).
    pub clock: clock::RunClock,
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
    if let Some(done) = job.from_journal(&skipped)? {
        return Ok(done);
    }
    let (tally, strategy) = run_swaps(engine, job)?;
    let n = job.data.n();
    let mut outcome = tally.finish(&skipped, job.scoring.rounds(n), job.scoring.level(n), job.metric);
    job.absorb_known(&mut outcome);
    Ok((outcome, strategy))
}

/// The pairs this run computes ([`AuditJob::computes`]), in pair order.
pub fn todo(job: &AuditJob) -> Vec<usize> {
    (0..job.pairing.pairs.len()).filter(|&i| job.computes(i)).collect()
}

/// The shape probe an incremental plan is built on ([`cost::plan_probe`]): the job's own
/// when it ran early, else run now.
pub fn plan_probe(engine: &Engine, job: &AuditJob) -> Result<cost::Probe> {
    if let Some(probe) = job.shapes {
        return Ok(probe.clone());
    }
    let d = job.data;
    let chw = [d.c(), d.h(), d.w()];
    cost::plan_probe(engine, job.target, &job.input.name, job.input.batch.is_none(), d.layout, chw)
}

/// The baseline and every swap that [`AuditJob::computes`], round by round.
fn run_swaps(engine: &Engine, job: &AuditJob) -> Result<(Tally, Strategy)> {
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
        let plan = match job.shapes {
            Some(probe) => incremental::Plan::new(engine, job, probe),
            None => {
                let t = crate::profile::span("plan: shape probe");
                let probe = plan_probe(engine, job);
                drop(t);
                probe.and_then(|probe| incremental::Plan::new(engine, job, &probe))
            }
        };
        match plan {
            Ok(plan) => {
                let bar = WorkBar::logged(job.data.n(), todo(job).len(), job.quiet, work_bar::log_every()?);
                let out = plan.run(job, &feed, job.cache_mb, &bar)?;
                bar.finish();
                plan.close(engine);
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

/// Naive and shared strategies: full forward passes, round by round (one round when exact).
fn run_full(engine: &Engine, job: &AuditJob, feed: &Feed) -> Result<Tally> {
    let mut open = todo(job);
    let bar = WorkBar::logged(job.data.n(), open.len(), job.quiet, work_bar::log_every()?);
    let mut eval = strategy::Evaluator::new(engine, job, feed)?;
    let n = job.data.n();
    let level = job.scoring.level(n);
    let mut tally: Option<Tally> = None;
    let mut labels_all: Option<Array3<u8>> = None;
    let mut start = 0;
    let rounds = job.scoring.rounds(n);
    for (r, &end) in rounds.iter().enumerate() {
        let mut timed = clock::RunClock::default();
        let (base_pred, classes) = timed.baseline(|| eval.baseline(start..end))?;
        let t = tally.get_or_insert_with(|| Tally::new(classes, n, job.pairing.pairs.len(), &todo(job)));
        t.clock.baseline += timed.baseline;
        bar.ran(end - start);
        let truth = match job.truth {
            Truth::Labels => {
                if labels_all.is_none() {
                    labels_all = Some(labels(job.data, classes)?);
                }
                labels_all.as_ref().map(|l| l.slice(ndarray::s![start..end, .., ..]).to_owned()).unwrap_or_default()
            }
            Truth::Baseline => base_pred.clone(),
        };
        t.add_baseline(start, base_pred.view(), truth.view());
        if r + 1 == rounds.len() {
            job.record_baseline(job.strategy, classes, &t.baseline_score(job.metric))?;
        }
        for &i in &open {
            let p = &job.pairing.pairs[i];
            bar.say(format!("{} {} {}", p.layer.family, p.layer.index, p.kind()));
            let pred = t.clock.swaps(|| eval.swap(i, start..end))?;
            bar.ran(end - start);
            t.add_swap(i, start, pred.view(), truth.view());
            // Journaled as soon as it is final (as `close_round` will find it).
            if let Some(result) = t.settled(i, end, None, &job.scoring, level, job.metric) {
                job.record_swap(i, &result)?;
            }
        }
        open = t.close_round(end, &job.scoring, level, &open);
        bar.round_closed(end, open.len());
        start = end;
    }
    bar.finish();
    tally.ok_or_else(|| anyhow::anyhow!("no data"))
}
