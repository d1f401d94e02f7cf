//! The [`Audit`] builder's setters: one per flag of `reuse-audit audit`.

use std::path::PathBuf;

use super::{Audit, Labels};
use crate::audit::Strategy;
use crate::data::standardize::MeanStd;
use crate::data::{Fit, Normalize};
use crate::engine::Device;
use crate::metrics::score::Metric;
use crate::model::layout::LayoutChoice;
use crate::pipeline::Options;

impl Audit {
    /// The validation data (`.npz`, `.npy`, a NIfTI folder or a PNG folder). Required.
    pub fn data(mut self, path: impl Into<PathBuf>) -> Audit {
        self.data = Some(path.into());
        self
    }

    /// Where the ground truth comes from (default: stored with the data).
    pub fn labels(mut self, labels: Labels) -> Audit {
        self.labels = labels;
        self
    }

    /// Pairing, kinds and thresholds.
    pub fn options(mut self, options: Options) -> Audit {
        self.options = options;
        self
    }

    /// No warnings or progress on stderr.
    pub fn quiet(mut self, quiet: bool) -> Audit {
        self.options.quiet = quiet;
        self
    }

    /// Per-image intensity scaling (default auto: the best baseline on a probe batch).
    pub fn normalize(mut self, normalize: Normalize) -> Audit {
        self.normalize = normalize;
        self
    }

    /// How data of another size is fitted to the model's input (default: refuse).
    pub fn fit(mut self, fit: Fit) -> Audit {
        self.fit = fit;
        self
    }

    /// Images per run (default 16; at least 1).
    pub fn batch(mut self, batch: usize) -> Audit {
        self.batch = batch;
        self
    }

    /// Evaluation strategy (default incremental; naive is the reference).
    pub fn strategy(mut self, strategy: Strategy) -> Audit {
        self.strategy = strategy;
        self
    }

    /// Activation cache budget of the incremental strategy, in MiB (default: 1024 of host
    /// memory; on CUDA with the cache in GPU memory, a quarter of the GPU's free memory).
    pub fn cache_mb(mut self, cache_mb: Option<usize>) -> Audit {
        self.cache_mb = cache_mb;
        self
    }

    /// Make a fixed batch-1 target batch-dynamic, after checking it is batch-agnostic.
    pub fn dynamic_batch(mut self, on: bool) -> Audit {
        self.dynamic_batch = on;
        self
    }

    /// Execution provider (default CPU).
    pub fn device(mut self, device: Device) -> Audit {
        self.device = device;
        self
    }

    /// Allow TF32 on CUDA (default off: Dice within 1e-3 of the CPU's); no effect on CPU.
    pub fn tf32(mut self, on: bool) -> Audit {
        self.tf32 = on;
        self
    }

    /// Worker threads (0 = all cores).
    pub fn threads(mut self, threads: usize) -> Audit {
        self.threads = threads;
        self
    }

    /// The foreground threshold of a one-channel output (default: read from the graph,
    /// 0.5 after `Sigmoid`, 0 for logits). Refused for multi-channel outputs.
    pub fn threshold(mut self, threshold: Option<f32>) -> Audit {
        self.threshold = threshold;
        self
    }

    /// The graph output to score, by name (default `None`: the first). Layers that do not
    /// reach it are left out of the scan (see `scored`).
    pub fn output(mut self, name: Option<String>) -> Audit {
        self.output = name;
        self
    }

    /// A label value whose pixels are not scored (`--ignore-label`; default none: every
    /// label must be a class).
    pub fn ignore_label(mut self, label: Option<u8>) -> Audit {
        self.ignore_label = label;
        self
    }

    /// With labels, refuse to decide anything when the baseline mean Dice is below this
    /// (default 0.5): the target does not segment the data, so every swap would look free.
    pub fn min_baseline(mut self, min: f64) -> Audit {
        self.min_baseline = min;
        self
    }

    /// How the model's input and output order their axes (default auto: detected from the
    /// graph, see [`crate::model::layout`]); `nchw`/`nhwc` force both.
    pub fn layout(mut self, layout: LayoutChoice) -> Audit {
        self.layout = layout;
        self
    }

    /// What swaps are scored by (default Dice): accuracy for classifiers with class-id
    /// labels, agreement (label-free) for any pixel or class output.
    pub fn metric(mut self, metric: Metric) -> Audit {
        self.metric = metric;
        self
    }

    /// Per-channel mean and std to standardize with after the per-image scaling (`--mean`,
    /// `--std`), in float32; `None` (default) leaves the scaled values as they are.
    pub fn mean_std(mut self, mean_std: Option<MeanStd>) -> Audit {
        self.mean_std = mean_std;
        self
    }

    /// Height x width to feed a model whose input size is free (default: the data's own
    /// size); the data is fitted to it with [`Audit::fit`]. Must be a multiple of the
    /// network's total stride.
    pub fn size(mut self, size: Option<(usize, usize)>) -> Audit {
        self.size = size;
        self
    }

    /// Journal every result as it finishes (`--out`'s journal, `--resume`, `--shard`,
    /// `merge`; see [`crate::journal`]). With a shard, the audit computes only that shard's
    /// swaps and its report is the data-free one: the journal is its result.
    pub fn journal(mut self, journal: Option<super::JournalSpec>) -> Audit {
        self.journal = journal;
        self
    }

    /// Score swaps in rounds of images (32, 64, 128, ..., the set) and stop each once its
    /// interval lies on one side of the tolerance (see `audit::scoring`). Default off.
    pub fn adaptive(mut self, on: bool) -> Audit {
        self.adaptive = on;
        self
    }

    /// Search every audited (layer, kind)'s noise budget after the swaps, averaging this
    /// many noise draws per probe: the largest RMSE of Gaussian noise on the target's tensor
    /// within the tolerance (see [`crate::audit::budget`]). Default None: no budget.
    pub fn budget(mut self, draws: Option<usize>) -> Audit {
        self.budget = draws;
        self
    }
}
