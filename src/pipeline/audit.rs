//! [`Audit`]: the full protocol as one builder — load and pair the models, load and
//! preprocess the data, run the baseline and every swap on ONNX Runtime, decide verdicts.

use std::path::PathBuf;

use anyhow::Result;

use super::{data_free_report, load_pair, name_the_model, probe, warn, Options};
use crate::audit::{self, AuditJob, Scoring, Strategy, Truth};
use crate::data::{self, Fit, LayoutHint, Normalize};
use crate::engine::{runtime, Device, LazyEngine};
use crate::error::UserError;
use crate::model::head::Head;
use crate::model::layout::{Layout, LayoutChoice};
use crate::report::{DatasetInfo, EngineInfo, Report};
use scaling::Probe;

mod results;
mod scaling;

use crate::model::quantized::CONV_OPS;
mod setters;

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
    cache_mb: usize,
    dynamic_batch: bool,
    device: Device,
    threads: usize,
    threshold: Option<f32>,
    min_baseline: f64,
    layout: LayoutChoice,
    size: Option<(usize, usize)>,
    adaptive: bool,
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
            cache_mb: 1024,
            dynamic_batch: false,
            device: Device::Cpu,
            threads: 0,
            threshold: None,
            min_baseline: 0.5,
            layout: LayoutChoice::Auto,
            size: None,
            adaptive: false,
        }
    }

    /// Run the audit on a runtime of its own (loaded only after models and data are checked).
    pub fn run(&self) -> Result<Report> {
        self.run_with(&LazyEngine::new(self.device, self.threads, self.options.quiet))
    }

    /// Run the audit on a shared runtime (several audits, one ONNX Runtime environment);
    /// the engine's device and threads apply, not this builder's. What ONNX Runtime refuses
    /// is reported as an error of the target's file, with ONNX Runtime's own words.
    pub fn run_with(&self, engine: &LazyEngine) -> Result<Report> {
        self.run_checked(engine).map_err(|e| name_the_model(e, &self.target))
    }

    fn run_checked(&self, engine: &LazyEngine) -> Result<Report> {
        let o = &self.options;
        o.validate()?;
        if self.batch == 0 {
            return Err(UserError::BadFlag { flag: "--batch", reason: "must be at least 1".into() }.into());
        }
        let Some(data_path) = &self.data else {
            return Err(UserError::BadFlag { flag: "--data", reason: "an audit needs validation data".into() }.into());
        };
        let labels_file = match &self.labels {
            Labels::File(p) => Some(p.as_path()),
            _ => None,
        };
        let label_free = self.labels == Labels::Baseline;
        let mut ctx = load_pair(&self.target, &self.source, &o.match_mode)?;
        warn(&ctx.warnings, o.quiet);
        let (mut report, values) = data_free_report(&ctx, o, "audit")?;
        let io = super::layout::resolve(&ctx.target, self.layout, self.size)?;
        warn(&io.conflicts, o.quiet);
        report.warnings.extend(io.conflicts.iter().cloned());
        if !o.quiet && (io.input.layout == Layout::Nhwc || io.output == Layout::Nhwc) {
            eprintln!("note: {}", io.evidence);
        }
        let (input, output) = (&io.input, io.output);
        let hint = LayoutHint { channels: input.channels, layout: input.layout };
        // A forced layout the graph contradicts is the likely cause of data that does not
        // fit: say so with the error.
        let layout_hint = |e: anyhow::Error| match io.conflicts.first() {
            Some(c) => e.context(format!("{c}; the data was read for {}", input.layout.pattern())),
            None => e,
        };
        let loaded = data::load_for(data_path, labels_file, &hint).map_err(layout_hint)?;
        if let Some(t) = self.threshold.filter(|t| !t.is_finite()) {
            return Err(
                UserError::BadFlag { flag: "--threshold", reason: format!("{t} is not a finite number") }.into()
            );
        }
        if !(0.0..=1.0).contains(&self.min_baseline) {
            return Err(UserError::BadFlag {
                flag: "--min-baseline",
                reason: format!("{} is not in [0, 1]", self.min_baseline),
            }
            .into());
        }
        // The probe batch: the output's meaning, the scaling that fits, a baseline check.
        let probe_samples = probe::probe_samples(&loaded.samples);
        let first_norm = if self.normalize == Normalize::Auto { Normalize::Zscore } else { self.normalize };
        let probe_data = data::preprocess::prepare(&probe_samples, input, first_norm, self.fit).map_err(layout_hint)?;
        if io.free_size {
            let flag = self.size.map(|(h, w)| format!("{h}x{w}"));
            probe::check_size(engine.get()?, &ctx.target, &probe_data, input, output, flag.as_deref())?;
        }
        let head = Head::of(&ctx.target);
        let channels = probe::output_channels(engine.get()?, &ctx.target, &probe_data, input, output)?;
        let rule = head.rule(channels, self.threshold).map_err(|why| match self.threshold {
            Some(_) if channels > 1 => UserError::BadFlag { flag: "--threshold", reason: why },
            _ => UserError::BadFile { path: self.target.clone(), reason: why },
        })?;
        let threshold = rule.threshold().unwrap_or(0.0);
        let (normalize, scores) = self.choose_scaling(
            engine.get()?,
            &ctx.target,
            Probe { samples: &probe_samples, data: &probe_data, input, output },
            &rule,
            label_free,
            &mut report.warnings,
        )?;
        let dataset = data::preprocess::prepare(&loaded.samples, input, normalize, self.fit)?;
        if self.dynamic_batch {
            ctx.target = super::dynamic_batch::verified(engine.get()?, &ctx.target, input, &dataset)?;
        }
        // Dynamic quantization scales activations per run: an image's result would depend on
        // the images that share its batch, so every image runs alone.
        let batch = match ctx.target.proto.graph.node.iter().find(|n| n.op_type == "DynamicQuantizeLinear") {
            Some(n) if self.batch > 1 => {
                let w = format!(
                    "the target quantizes activations per run (DynamicQuantizeLinear '{}'): one image per run, so no image's result depends on its batch mates",
                    n.name
                );
                warn(std::slice::from_ref(&w), o.quiet);
                report.warnings.push(w);
                1
            }
            _ => self.batch,
        };
        let scoring = Scoring {
            tolerance: o.tolerance,
            confidence: o.confidence,
            resamples: o.bootstrap,
            adaptive: self.adaptive,
            // The loss the report's delta_dice is: mean Dice (a --metric scoring accuracy or
            // agreement would pass bootstrap::share_correct).
            score: crate::metrics::bootstrap::mean_dice,
        };
        // Adaptive rounds are prefixes of a seeded shuffle: each a random sample of the set.
        let dataset =
            if self.adaptive { dataset.reordered(&audit::scoring::image_order(dataset.n())) } else { dataset };
        let job = AuditJob {
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
        };
        let engine = engine.get()?;
        let (outcome, strategy) = audit::run(engine, &job)?;
        if !label_free && outcome.baseline.mean < self.min_baseline {
            return Err(self.no_baseline(outcome.baseline.mean, "on the whole set", &scores, &rule).into());
        }
        results::fill(&mut report, &ctx.pairing, o, &outcome, self.adaptive);
        // The RN verdict is a share of the conv layers: over the audited ones only it would
        // speak for layers never swapped (quantized, unmatched, computed weights).
        let conv_total = ctx.target.proto.graph.node.iter().filter(|n| CONV_OPS.contains(&n.op_type.as_str())).count();
        let w_audited = report.rows.iter().filter(|r| r.kind == "W" && r.delta_dice.is_some()).count();
        if report.summary.rn.is_some() && w_audited < conv_total {
            report.summary.rn = None;
            let w = format!(
                "no RN verdict: conv W was swapped in {w_audited} of the target's {conv_total} conv layers ({} quantized and not audited, the rest unmatched or with computed weights); the reusable share of those {w_audited} is {:.0}%",
                ctx.target_layers.quantized.iter().filter(|q| !q.audited).count(),
                100.0 * report.summary.conv_w_reusable_share.unwrap_or(0.0)
            );
            warn(std::slice::from_ref(&w), o.quiet);
            report.warnings.push(w);
        }
        report.baseline = Some(outcome.baseline);
        report.engine = Some(EngineInfo {
            runtime: "onnxruntime".into(),
            version: runtime::ORT_VERSION.into(),
            provider: engine.provider.into(),
            strategy: strategy.name().into(),
        });
        report.dataset = Some(DatasetInfo {
            path: data_path.display().to_string(),
            format: loaded.format.into(),
            images: dataset.n(),
            channels: dataset.c(),
            height: dataset.h(),
            width: dataset.w(),
            classes: outcome.classes,
            labels: if label_free { "baseline" } else { "file" }.into(),
            normalize: format!("{normalize:?}").to_lowercase(),
            normalize_scores: scores,
            fit: format!("{:?}", self.fit).to_lowercase(),
            prediction: rule.describe(),
            layout: io.name(),
        });
        Ok(report)
    }
}
