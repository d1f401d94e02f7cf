//! [`Audit`]: the full protocol as one builder — load and pair the models, load and
//! preprocess the data, run the baseline and every swap on ONNX Runtime, decide verdicts.

use std::path::PathBuf;

use anyhow::Result;

use super::{name_the_model, warn, Options};
use crate::audit::SwapResult;
use crate::audit::{self, AuditJob, Scoring, Strategy, Truth};
use crate::data::standardize::MeanStd;
use crate::data::{Fit, Normalize};
use crate::engine::{Device, LazyEngine};
use crate::journal;
use crate::metrics::dice::Dice;
use crate::metrics::score::Metric;
use crate::model::layout::LayoutChoice;
use crate::report::timing::{Timing, TimingScope};
use crate::report::{DatasetInfo, EngineInfo, Report};
use prepare::Prepared;
use scaling::Probe;

mod budget;
mod constant_norm;
mod group_norm;
mod merged_ties;
mod metric;
mod prepare;
mod results;
mod scaling;
pub mod scored;
pub mod scorer;

mod coverage;
mod evidence;
pub mod journaling;
mod setters;

pub use journaling::{JournalPlan, JournalSpec};

/// Where the ground truth of the validation set comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Labels {
    /// Labels stored with the data (`.npz` `labels`, NIfTI `_gt`, PNG `masks/`).
    #[default]
    InData,
    /// A separate `.npy` labels file for `.npy` images.
    File(PathBuf),
    /// Label-free: the unswapped target's predictions are the truth.
    Baseline,
}

/// A configured audit of one target/source pair. Build it, then [`Audit::run`].
///
/// The bundled UNet pair (run from the repository root): the autoencoder's parameters
/// swapped into the segmentation UNet, scored on the bundled validation set.
///
/// ```
/// use reuse_audit::pipeline::{Audit, Options};
///
/// let report = Audit::new("models/unet-acdc-seg.onnx", "models/unet-acdc-ae.onnx")
///     .data("models/data/acdc-val.npz")
///     .options(Options { quiet: true, ..Options::default() })
///     .run()?;
/// let baseline = report.baseline.as_ref().expect("an audit has a baseline");
/// assert!(baseline.mean > 0.5, "the target segments its own validation data");
/// // Every matched (layer, kind) was swapped and scored.
/// assert!(report.rows.iter().all(|r| r.delta_dice.is_some()));
/// // The README's example: the UNet is not a reusable network for this source.
/// assert_eq!(report.summary.rn, Some(false));
/// # Ok::<(), anyhow::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Audit {
    target: PathBuf,
    source: PathBuf,
    data: Option<PathBuf>,
    labels: Labels,
    options: Options,
    normalize: Normalize,
    fit: Fit,
    batch: usize,
    strategy: Strategy,
    cache_mb: Option<usize>,
    dynamic_batch: bool,
    device: Device,
    tf32: bool,
    threads: usize,
    threshold: Option<f32>,
    output: Option<String>,
    min_baseline: f64,
    ignore_label: Option<u8>,
    layout: LayoutChoice,
    size: Option<(usize, usize)>,
    adaptive: bool,
    metric: Metric,
    mean_std: Option<MeanStd>,
    journal: Option<JournalSpec>,
    budget: Option<usize>,
}

impl Audit {
    /// An audit of `source`'s parameters swapped into `target`, with the tool's defaults.
    pub fn new(target: impl Into<PathBuf>, source: impl Into<PathBuf>) -> Audit {
        Audit {
            target: target.into(),
            source: source.into(),
            data: None,
            labels: Labels::InData,
            options: Options::default(),
            normalize: Normalize::Auto,
            fit: Fit::None,
            batch: 16,
            strategy: Strategy::Incremental,
            cache_mb: None,
            dynamic_batch: false,
            device: Device::Cpu,
            tf32: false,
            threads: 0,
            threshold: None,
            output: None,
            min_baseline: 0.5,
            ignore_label: None,
            layout: LayoutChoice::Auto,
            size: None,
            adaptive: false,
            metric: Metric::Dice,
            mean_std: None,
            journal: None,
            budget: None,
        }
    }

    /// Run the audit on a runtime of its own (loaded only after models and data are checked).
    pub fn run(&self) -> Result<Report> {
        self.run_with(&LazyEngine::new(self.device, self.threads, self.options.quiet).with_tf32(self.tf32))
    }

    /// Run the audit on a shared runtime (several audits, one ONNX Runtime environment);
    /// the engine's device and threads apply, not this builder's. What ONNX Runtime refuses
    /// is reported as an error of the target's file, with ONNX Runtime's own words.
    pub fn run_with(&self, engine: &LazyEngine) -> Result<Report> {
        self.run_checked(engine).map_err(|e| name_the_model(e, &self.target))
    }

    fn run_checked(&self, engine: &LazyEngine) -> Result<Report> {
        let started = std::time::Instant::now();
        let o = &self.options;
        let Prepared {
            ctx,
            mut report,
            values,
            rows,
            io,
            dataset,
            format,
            kind,
            rule,
            normalize,
            scores,
            label_free,
            batch,
            shapes,
        } = self.prepare(engine)?;
        let (input, output) = (&io.input, io.output);
        let threshold = rule.threshold().unwrap_or(0.0);
        let data_path = self.data.as_deref().unwrap_or(std::path::Path::new(""));
        let scoring = Scoring {
            tolerance: o.tolerance,
            confidence: o.confidence,
            resamples: o.bootstrap,
            adaptive: self.adaptive,
            // The loss the report's delta_dice is: mean Dice, or the share of items predicted
            // as their truth (accuracy; agreement label-free).
            score: match self.metric {
                Metric::Dice => crate::metrics::bootstrap::mean_dice,
                Metric::Accuracy | Metric::Agreement => crate::metrics::bootstrap::share_correct,
            },
        };
        // Adaptive rounds are prefixes of a seeded shuffle: each a random sample of the set.
        let dataset =
            if self.adaptive { dataset.reordered(&audit::scoring::image_order(dataset.n())) } else { dataset };
        let mut job = AuditJob {
            target: &ctx.target,
            pairing: &ctx.pairing,
            values: &values,
            input,
            output,
            data: &dataset,
            batch,
            truth: if label_free { Truth::Baseline } else { Truth::Labels },
            kinds: &o.kinds,
            strategy: self.strategy,
            quiet: o.quiet,
            cache_mb: self.cache_mb,
            threshold,
            scoring,
            per_image: kind.per_image,
            metric: self.metric,
            progress: None,
            shapes: shapes.as_ref(),
        };
        let engine = engine.get()?;
        // The journal: what it already holds is not computed again; each result is appended.
        let opened = match &self.journal {
            None => None,
            Some(spec) => {
                let resolved = [
                    ("--normalize", format!("{normalize:?}").to_lowercase()),
                    ("--threshold", format!("{threshold}")),
                    ("--layout", io.name()),
                    ("--batch", batch.to_string()),
                    ("provider", engine.provider.to_string()),
                    ("output", format!("{} {}", kind.describe(), rule.describe())),
                ];
                let header = self.journal_header(spec, &ctx, data_path, &dataset, &job, engine, &resolved)?;
                let opened = journaling::open(spec, &header, o.quiet)?;
                Some((header, opened))
            }
        };
        let sink =
            opened.as_ref().and_then(|(h, op)| op.writer.as_ref().map(|w| journaling::JournalSink::new(w, &h.swaps)));
        // Should the audit fail from here on, a journal without any swap or chunk of counts
        // goes, one with them stays to be resumed (a kill skips this: its journal stays).
        let known = opened.as_ref().map_or((0, 0), |(_, op)| (op.known.swaps.len(), op.known.chunks.len()));
        let mut guard = journaling::Guard::new(sink.as_ref(), known.0, known.1);
        let progress = opened.as_ref().map(|(_, op)| audit::Progress {
            known: &op.known,
            only: op.only.as_deref(),
            sink: sink.as_ref().map(|s| s as &dyn audit::Sink),
        });
        job.progress = progress.as_ref();
        if let (Some(JournalPlan::Merged(_)), Some(i)) =
            (self.journal.as_ref().map(|j| &j.plan), (0..ctx.pairing.pairs.len()).find(|&i| job.computes(i)))
        {
            anyhow::bail!("merge: swap {i} has no result in the shards");
        }
        let t = crate::profile::span("audit (all swaps)");
        let (outcome, strategy) = audit::run(engine, &job)?;
        drop(t);
        if !label_free {
            self.whole_set_guard(&ctx.target, (outcome.baseline.mean, &dataset), &scores, &rule)?;
        }
        let scope = match self.journal.as_ref().map(|j| &j.plan) {
            Some(JournalPlan::Merged(_)) => TimingScope::Shards,
            // Anything taken from the journal was computed by the killed run: swaps (an adaptive
            // audit journals them before the baseline), the baseline, or chunks of counts (a
            // chunked audit's, before either; taken only where this run's chunks are the same).
            Some(JournalPlan::Resume(_))
                if opened.as_ref().is_some_and(|(_, op)| op.known.baseline.is_some() || !op.known.swaps.is_empty())
                    || outcome.clock.image_forwards < outcome.image_forwards =>
            {
                TimingScope::Resumed
            }
            _ => TimingScope::Run,
        };
        let timing = |report_ready: f64| Timing::of_run(scope, report_ready, &outcome.clock, engine.device_name());
        // A shard's report would speak for swaps it did not compute: its result is the journal,
        // with the timing of this run when it computed something (`merge` adds them up).
        if self.journal.as_ref().is_some_and(|j| j.shard.is_some()) {
            if let (Some(w), true) =
                (opened.as_ref().and_then(|(_, op)| op.writer.as_ref()), outcome.clock.image_forwards > 0)
            {
                let record: journal::Record<Dice, SwapResult> =
                    journal::Record::Timing(timing(started.elapsed().as_secs_f64()));
                w.append(&record)?;
            }
            guard.disarm();
            report.rows = rows.join()?;
            return Ok(report);
        }
        let t = crate::profile::span("weight rows (join)");
        report.rows = rows.join()?;
        drop(t);
        let _verdict = crate::profile::span("verdict");
        results::fill(&mut report, &ctx.pairing, o, &outcome, self.adaptive);
        if let Some(draws) = self.budget {
            budget::apply(&mut report, &ctx.pairing, o, &audit::budget::run(engine, &job, draws)?);
        }
        // What the set can support: enough images for the intervals, every class in the labels.
        let mut evidence: Vec<String> = evidence::few_images(dataset.n(), o.confidence).into_iter().collect();
        if let (false, Metric::Dice, false, Some(labels)) =
            (label_free, self.metric, dataset.class_ids, &dataset.labels)
        {
            evidence.extend(evidence::absent_classes(labels, outcome.classes));
        }
        for w in evidence.into_iter().chain(results::non_finite_warnings(&report)) {
            warn(std::slice::from_ref(&w), o.quiet);
            report.warnings.push(w);
        }
        report.settings.metric = Some(self.metric);
        report.settings.tf32 = engine.tf32();
        // Verdicts over the audited groups only would speak for groups never swapped.
        report.not_audited = coverage::not_audited(&ctx, &o.families, &o.kinds, &report);
        for w in coverage::withhold(&mut report) {
            warn(std::slice::from_ref(&w), o.quiet);
            report.warnings.push(w);
        }
        report.baseline = Some(outcome.baseline);
        report.engine = Some(EngineInfo::of(engine, strategy.name()));
        report.dataset = Some(DatasetInfo {
            path: data_path.display().to_string(),
            format: format.into(),
            images: dataset.n(),
            channels: dataset.c(),
            height: dataset.h(),
            width: dataset.w(),
            classes: outcome.classes,
            labels: if label_free { "baseline" } else { "file" }.into(),
            ignore_label: self.ignore_label.filter(|_| !label_free),
            normalize: format!("{normalize:?}").to_lowercase(),
            normalize_scores: scores,
            fit: format!("{:?}", self.fit).to_lowercase(),
            prediction: {
                let p = match kind.per_image {
                    true => format!("one class per image (classifier output {}): {}", kind.describe(), rule.describe()),
                    false => rule.describe(),
                };
                match scored::which_output(&ctx.target) {
                    w if w.is_empty() => p,
                    w => format!("{p}; {w}"),
                }
            },
            layout: io.name(),
            mean_std: self.mean_std.clone(),
        });
        report.timing = match scope {
            TimingScope::Shards => {
                let known = opened.as_ref().map(|(_, op)| op.known.timings.as_slice()).unwrap_or_default();
                Timing::sum(known)
            }
            _ => Some(timing(started.elapsed().as_secs_f64())),
        };
        guard.disarm();
        Ok(report)
    }
}
