//! What an audit settles before its first swap: both models loaded and paired, the
//! data-free report, the data loaded and preprocessed with the scaling chosen on the probe
//! batch, the output's meaning and prediction rule, images per run. [`Audit::run`] goes on
//! to the swaps; [`Audit::scorer`](super::Audit::scorer) scores whole models with the same
//! data and truth (the joint check of a reuse plan).

use std::sync::Arc;

use anyhow::Result;

use super::{Audit, Labels, Probe};
use crate::audit::compare::PairValues;
use crate::audit::{cost, Strategy};
use crate::data::preprocess::Dataset;
use crate::data::{self, LayoutHint, Normalize};
use crate::engine::LazyEngine;
use crate::error::UserError;
use crate::model::head::{Head, Rule};
use crate::model::layout::Layout;
use crate::pipeline::layout::Io;
use crate::pipeline::output::OutputKind;
use crate::pipeline::probe::{self, ScalingScore};
use crate::pipeline::{data_free_report_pending, load_pair_of, warn, PairContext, PendingRows};
use crate::report::Report;

/// An audit up to its first swap.
pub(crate) struct Prepared {
    /// The models and their pairing (the target made batch-dynamic with `--dynamic-batch`).
    pub ctx: PairContext,
    /// The data-free report, with the warnings so far.
    pub report: Report,
    /// Every paired parameter's values, checked finite.
    pub values: Arc<PairValues>,
    /// The report's weight rows, being computed beside the probes.
    pub rows: PendingRows,
    /// The model's input and output as fed and read.
    pub io: Io,
    /// The whole validation set, preprocessed.
    pub dataset: Dataset,
    /// The data's format (npz, npy, nifti, png).
    pub format: &'static str,
    /// What the first output holds.
    pub kind: OutputKind,
    /// How output channels become classes.
    pub rule: Rule,
    /// The input scaling chosen (or forced).
    pub normalize: Normalize,
    /// What each scaling tried scored on the probe batch.
    pub scores: Vec<ScalingScore>,
    /// The truth is the unswapped target's predictions.
    pub label_free: bool,
    /// Images per run.
    pub batch: usize,
    /// The incremental plan's shape probe, run beside the input-scaling probe (`None`: not
    /// run, or it failed and the plan runs it again to say why).
    pub shapes: Option<cost::Probe>,
}

impl Audit {
    /// Check the settings, load and pair the models, load and preprocess the data.
    pub(crate) fn prepare(&self, engine: &LazyEngine) -> Result<Prepared> {
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
        self.check_metric_flags()?;
        let label_free = self.labels == Labels::Baseline || self.metric.label_free();
        // ONNX Runtime loads on a thread of its own while the models and data are read.
        engine.preload();
        let t = crate::profile::span("load + pair models");
        let mut ctx = load_pair_of(&self.target, &self.source, &o.match_mode, &o.families)?;
        drop(t);
        if let Some(node) = crate::model::random::random_node(&ctx.target) {
            return Err(UserError::BadFile {
                path: self.target.clone(),
                reason: format!(
                    "node {node} draws random numbers on every run: the baseline and each swap would score \
                     different noise, so no swap's loss could be told from it; export the model without it \
                     (in eval mode, noise layers off)"
                ),
            }
            .into());
        }
        if let Some(name) = &self.output {
            super::scored::choose(&mut ctx.target, name)?;
        }
        // A layer that only feeds another output cannot change the scored one.
        ctx.warnings.extend(super::scored::leave_out(&ctx.target, &mut ctx.pairing));
        // A GroupNorm's InstanceNormalization placeholders are not its parameters.
        ctx.warnings.extend(super::group_norm::leave_out(&ctx.target, &ctx.target_layers, &mut ctx.pairing));
        // Nor are the constant 1/0 a norm layer without affine parameters is exported with.
        ctx.warnings.extend(super::constant_norm::leave_out(&ctx.target, &ctx.source, &mut ctx.pairing));
        // A tensor the exporter merged from several layers is no one layer's to swap.
        ctx.warnings.extend(super::merged_ties::leave_out(&ctx.source, &mut ctx.pairing));
        warn(&ctx.warnings, o.quiet);
        let t = crate::profile::span("weight values (checked)");
        let (mut report, values, rows) = data_free_report_pending(&ctx, o, "audit")?;
        drop(t);
        let io = crate::pipeline::layout::resolve(&ctx.target, self.layout, self.size)?;
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
        let t = crate::profile::span("data load");
        let loaded = data::load_for(data_path, labels_file, &hint).map_err(layout_hint)?;
        drop(t);
        warn(&loaded.unread, o.quiet);
        report.warnings.extend(loaded.unread.iter().cloned());
        data::preprocess::check_fed_size(&loaded.samples, input)?;
        data::preprocess::check_fixed_batch(&loaded.samples, input)
            .map_err(|why| UserError::BadFile { path: self.target.clone(), reason: why })?;
        // The set as fed (and its shuffled copy, adaptive), beside the samples as loaded.
        let fed = data::preprocess::fed_bytes(&loaded.samples, input);
        let held: u64 = loaded.samples.iter().map(|s| s.bytes()).sum();
        let copies = if self.adaptive { 2 } else { 1 };
        let what = format!("{} images fed to the model's input", loaded.samples.len());
        data::memory::check(
            fed.saturating_mul(copies),
            held,
            &what,
            data_path,
            "audit a subset, or at a smaller --size",
        )?;
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
        let mut probe_data =
            data::preprocess::prepare(&probe_samples, input, first_norm, self.fit).map_err(layout_hint)?;
        probe_data.ignore_label = self.ignore_label;
        if let Some(ms) = &self.mean_std {
            probe_data.standardize(ms)?;
        }
        if io.free_size {
            let flag = self.size.map(|(h, w)| format!("{h}x{w}"));
            probe::check_size(engine.get()?, &ctx.target, &probe_data, input, output, flag.as_deref())?;
        }
        let head = Head::of(&ctx.target);
        let t = crate::profile::span("probe: output kind");
        let (kind, session) =
            crate::pipeline::output::output_kind(engine.get()?, &ctx.target, &probe_data, input, output)?;
        drop(t);
        self.check_metric_output(&kind, &probe_data, label_free)?;
        let channels = kind.channels;
        let rule = head.rule(channels, self.threshold).map_err(|why| match self.threshold {
            Some(_) if channels > 1 => UserError::BadFlag { flag: "--threshold", reason: why },
            _ => UserError::BadFile { path: self.target.clone(), reason: why },
        })?;
        // The incremental plan's shape probe (one image of a constant value: it depends on the
        // model and the image size only) runs on a thread of its own beside the scaling probe,
        // unless the target is still to change (`--dynamic-batch`).
        let early_shapes = self.strategy == Strategy::Incremental && !self.dynamic_batch;
        let eng = engine.get()?;
        let (scaling, shapes) = std::thread::scope(|scope| {
            let shapes = early_shapes.then(|| {
                let (target, name, layout) = (&ctx.target, input.name.as_str(), probe_data.layout);
                let dynamic = input.batch.is_none();
                let chw = [probe_data.c(), probe_data.h(), probe_data.w()];
                scope.spawn(move || {
                    let _t = crate::profile::span("plan: shape probe (early, thread)");
                    cost::plan_probe(eng, target, name, dynamic, layout, chw)
                })
            });
            let t = crate::profile::span("probe: input scaling");
            let scaling = self.choose_scaling(
                eng,
                &ctx.target,
                Probe { samples: &probe_samples, data: &probe_data, input, output, per_image: kind.per_image, session },
                &rule,
                label_free,
                &mut report.warnings,
            );
            drop(t);
            // A failed (or panicked) probe is left to the plan, which runs it again and says why.
            (scaling, shapes.and_then(|h| h.join().ok()).and_then(Result::ok))
        });
        let (normalize, scores) = scaling?;
        let mut dataset = data::preprocess::prepare(&loaded.samples, input, normalize, self.fit)?;
        dataset.ignore_label = self.ignore_label;
        if let (Some(l), Some(labels), false) = (self.ignore_label, &dataset.labels, label_free) {
            if let Some(w) = super::evidence::ignored_labels(labels, l).map_err(UserError::BadData)? {
                warn(std::slice::from_ref(&w), o.quiet);
                report.warnings.push(w);
            }
        }
        if let Some(ms) = &self.mean_std {
            dataset.standardize(ms)?;
        }
        if self.dynamic_batch {
            ctx.target = crate::pipeline::dynamic_batch::verified(engine.get()?, &ctx.target, input, &dataset)?;
        }
        // Dynamic quantization scales activations per run: an image's result would depend on
        // the images that share its batch, so every image runs alone.
        let batch = match crate::model::batch::batch_mates_matter(&ctx.target) {
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
        Ok(Prepared {
            ctx,
            report,
            values,
            rows,
            io,
            dataset,
            format: loaded.format,
            kind,
            rule,
            normalize,
            scores,
            label_free,
            batch,
            shapes,
        })
    }
}
