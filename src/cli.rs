//! Command-line definitions (clap). Values are validated into settings in `config`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use reuse_audit::audit::Strategy;
use reuse_audit::data::{Fit, Normalize};
use reuse_audit::engine::Device;
use reuse_audit::metrics::score::Metric;
use reuse_audit::model::layout::LayoutChoice;
use reuse_audit::report::Format;

/// Can the parameters of a pretrained CNN be reused for your task? Swap Conv/BN
/// parameters from a source ONNX model into a target one layer at a time, score Dice
/// with ONNX Runtime, compare weights by RMSE, and decide what is reusable.
#[derive(Debug, Parser)]
#[command(name = "reuse-audit", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
// Parsed once at start-up: the size of the `audit` variant costs nothing worth boxing for.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List a model's parametrized layers, shapes and opset; check whether BN was folded.
    Inspect {
        /// The ONNX model.
        model: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Also compute FLOPs per layer, downstream shares and the audit's ideal speedup
        /// (runs ONNX Runtime once to get every tensor's shape).
        #[arg(long)]
        flops: bool,
        /// Input height x width for --flops when the model's are not fixed, e.g. 256x256
        /// (only with --flops: nothing else reads it).
        #[arg(long, requires = "flops")]
        size: Option<String>,
    },
    /// Show how the layers of two models pair up and what is unmatched.
    Match {
        /// Target model (the task you care about).
        target: PathBuf,
        /// Source model (the pretrained candidate).
        source: PathBuf,
        /// Pairing: auto, name, position, or a CSV file `target_initializer,source_initializer`.
        #[arg(long = "match", default_value = "auto")]
        match_mode: String,
        /// Layer families to pair (as `audit --families`): conv, bn, linear, norm.
        #[arg(long, value_delimiter = ',', default_value = "conv,bn,linear,norm")]
        families: Vec<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Data-free per-layer RMSE, nRMSE, cosine and BN MRM/MRV/MRW/MRB.
    Rmse {
        /// Target model.
        target: PathBuf,
        /// Source model.
        source: PathBuf,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// The full protocol: baseline, one swap per (layer, kind), Dice, verdicts.
    Audit {
        /// Target model.
        target: PathBuf,
        /// Source model.
        source: PathBuf,
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        gates: GateArgs,
        /// Also make a reuse plan from this audit into this folder (another than --out):
        /// plan.json, reused.safetensors, grafted.onnx, checked jointly on --data (the
        /// default policy; `reuse-audit plan` takes the others).
        #[arg(long)]
        plan: Option<PathBuf>,
    },
    /// Turn an audit's report into a reuse plan: plan.json (what to load, freeze, and what
    /// was left out), reused.safetensors and grafted.onnx; with --data, checked jointly.
    Plan {
        /// Target model (the report's).
        target: PathBuf,
        /// Source model (the report's).
        source: PathBuf,
        /// The report.json of `reuse-audit audit TARGET SOURCE`.
        #[arg(long)]
        report: PathBuf,
        /// Folder to write plan.json, reused.safetensors and grafted.onnx into.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        policy: PolicyArgs,
        #[command(flatten)]
        check: CheckArgs,
        /// Print plan.json on stdout.
        #[arg(long)]
        json: bool,
        /// No progress or notes on stderr.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Pairwise per-layer RMSE between every pair of models (paper Figs. 11-12).
    Matrix {
        /// Two or more models of the same architecture.
        #[arg(required = true, num_args = 2..)]
        models: Vec<PathBuf>,
        /// Pairing: auto, name, position, or a CSV mapping file.
        #[arg(long = "match", default_value = "auto")]
        match_mode: String,
        /// Write matrix.csv, summary.csv, matrix.svg and matrix.html into this folder.
        #[arg(long)]
        out: Option<PathBuf>,
        /// No notes on stderr.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Join the results of `audit --shard K/N` runs into the report one run would write
    /// (byte for byte, `timing` aside), after checking that they belong together and are complete. Run it
    /// where the models and data are at the paths the shards were given (their hashes are
    /// checked): it loads them and runs the target once on a probe batch, as an audit does.
    Merge {
        /// The shards' --out folders (or their shard.journal files), every shard once.
        #[arg(required = true, num_args = 1..)]
        shards: Vec<PathBuf>,
        /// Write the report files into this folder.
        #[arg(long)]
        out: PathBuf,
        /// No notes on stderr.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Audit the bundled acdc UNet and PSPNet (seg target, ae source) and write reports/.
    Demo {
        /// Folder with the bundled models and data.
        #[arg(long, default_value = "models")]
        models: PathBuf,
        /// Where to write the reports.
        #[arg(long, default_value = "reports")]
        out: PathBuf,
        /// Swap evaluation strategy.
        #[arg(long, value_enum, default_value = "incremental")]
        strategy: Strategy,
        /// Intra-op threads (0 = all cores).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// No progress bars.
        #[arg(long, short)]
        quiet: bool,
    },
}

/// Flags shared by `rmse` and `audit`.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Pairing: auto, name, position, or a CSV file `target_initializer,source_initializer`.
    #[arg(long = "match", default_value = "auto")]
    pub match_mode: String,
    /// Write report files into this folder (default: print a table).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Report formats to write with --out (without --out nothing would be written: exit 2).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "csv,json", requires = "out")]
    pub format: Vec<Format>,
    /// Print the JSON report on stdout.
    #[arg(long)]
    pub json: bool,
    /// Parameter kinds to audit: W,B,RM,RV,RW,RB (in every family that has them).
    #[arg(long, value_delimiter = ',', default_value = "W,B,RM,RV,RW,RB")]
    pub kinds: Vec<String>,
    /// Layer families to pair and audit: conv (Conv/ConvTranspose: W, B), bn
    /// (BatchNormalization: RM, RV, RW, RB), linear (Gemm, MatMul+Add: W, B), norm
    /// (Instance/Group/LayerNormalization: RW, RB).
    #[arg(long, value_delimiter = ',', default_value = "conv,bn,linear,norm")]
    pub families: Vec<String>,
    /// A swap is reusable when baseline mean Dice - swapped mean Dice <= tolerance
    /// [default: 0.02] (audit only).
    #[arg(long)]
    pub tolerance: Option<f64>,
    /// RN when at least this share of conv layers has a reusable W [default: 0.5] (audit
    /// only).
    #[arg(long)]
    pub rn_threshold: Option<f64>,
    /// No progress bars or notes on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Flags of the swap run.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Validation data: .npz, .npy (with --labels), a NIfTI folder or a PNG folder.
    #[arg(long)]
    pub data: PathBuf,
    /// Labels .npy for .npy data, or `baseline` for label-free mode.
    #[arg(long)]
    pub labels: Option<String>,
    /// Input scaling: auto (best baseline on a probe batch), zscore, minmax, none, div255.
    #[arg(long, value_enum, default_value = "auto")]
    pub normalize: Normalize,
    /// Fit data to the model's input size.
    #[arg(long, value_enum, default_value = "none")]
    pub fit: Fit,
    /// Axis order of the model's input and output: auto (from the graph: a Transpose right
    /// after the input or before the output, else the declared dims), or force nchw/nhwc.
    #[arg(long, value_enum, default_value = "auto")]
    pub layout: LayoutChoice,
    /// Height x width to feed a model whose input size is free, e.g. 256x256 (the data is
    /// fitted with --fit; a multiple of the network's total stride). Default: the data's.
    #[arg(long, value_parser = size_arg)]
    pub size: Option<(usize, usize)>,
    /// Execution provider.
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: Device,
    /// With --device cuda: let convolutions and matrix products use TF32 (faster on tensor
    /// cores, about 1e-3 relative error: Dice may then differ from the CPU's). Off by default.
    #[arg(long)]
    pub tf32: bool,
    /// Threads (0 = all cores): intra-op threads of full forward passes; on CPU the
    /// incremental strategy runs this many swap regions side by side, one thread each.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Images per run when the batch dimension is dynamic (on CPU the incremental strategy
    /// runs fewer when one batch's largest activation would outgrow a core's cache).
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Swap evaluation strategy (all give the same report; incremental is the fastest).
    #[arg(long, value_enum, default_value = "incremental")]
    pub strategy: Strategy,
    /// Memory for cached activations of the incremental strategy, MiB (the validation set
    /// is processed in chunks that fit). Default: 1024 of host memory; on CUDA, where the
    /// cache stays in the GPU's memory, a quarter of the GPU's free memory.
    #[arg(long)]
    pub cache_mb: Option<usize>,
    /// For a model exported with a fixed batch of 1: make the batch dimension dynamic so
    /// several images run per call (checked against one-at-a-time outputs first).
    #[arg(long)]
    pub dynamic_batch: bool,
    /// Foreground threshold of a one-channel output (default: read from the graph: 0.5
    /// after Sigmoid, 0 for logits).
    #[arg(long)]
    pub threshold: Option<f32>,
    /// The graph output to score, by name (default: the first). For a model that exports
    /// an auxiliary head, or another map, before the one to audit.
    #[arg(long, value_name = "NAME")]
    pub output: Option<String>,
    /// With labels: no verdict when the unswapped target's mean Dice (accuracy) is below
    /// this (it does not segment or classify the data); 0 audits anyway.
    #[arg(long, default_value_t = 0.5)]
    pub min_baseline: f64,
    /// A label value that marks pixels not to score (e.g. 255, the "void" of VOC-style
    /// masks): those pixels count for no class, predicted or true. Must not be one of the
    /// model's classes.
    #[arg(long, value_name = "LABEL", value_parser = clap::value_parser!(u8))]
    pub ignore_label: Option<u8>,
    /// Two-sided confidence of each swap's loss interval (paired bootstrap over images):
    /// a swap is decided reusable or not only when its interval lies on one side of the
    /// tolerance, else undecided.
    #[arg(long, default_value_t = 0.95)]
    pub confidence: f64,
    /// Bootstrap resamples per interval (100 to 100000; fixed seed: reruns give the same bytes).
    #[arg(long, default_value_t = 2000)]
    pub bootstrap: usize,
    /// Score swaps on growing rounds of images (32, 64, 128, ..., all) and stop each one as
    /// soon as its interval lies on one side of the tolerance (each round's interval at
    /// 1 - (1 - confidence) / rounds: a union bound over the rounds).
    #[arg(long)]
    pub adaptive: bool,
    /// After the swaps, search each audited (layer, kind)'s noise budget: the largest RMSE
    /// of Gaussian noise on the target's own tensor that costs at most the tolerance
    /// (bisection in 7 probes on a geometric grid, each averaging --budget-draws seeded
    /// draws: 7 x 3 runs of each swap's downstream region by default). Adds rmse_budget,
    /// within_budget and their agreement with the decisions to the report.
    #[arg(long)]
    pub budget: bool,
    /// Noise draws averaged per --budget probe (fixed seeds). More draws steady the budget
    /// of layers where a rare noise direction costs far more than a typical one; the cost
    /// grows in proportion.
    #[arg(long, requires = "budget", default_value_t = reuse_audit::audit::budget::noise::DEFAULT_DRAWS as u64,
          value_parser = clap::value_parser!(u64).range(1..=64))]
    pub budget_draws: u64,
    /// What a swap is scored by: dice (segmentation maps), accuracy (classifiers, labels =
    /// one class id per image, top-1), agreement (label-free: share of pixels, or images,
    /// predicted as the unswapped target predicts them; loss = 1 - agreement).
    #[arg(long, value_enum, default_value = "dice")]
    pub metric: Metric,
    /// Per-channel mean subtracted after --normalize (one value, or one per channel), e.g.
    /// 0.485,0.456,0.406 with --normalize div255.
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    pub mean: Option<Vec<f32>>,
    /// Per-channel std divided by after --mean (one value, or one per channel).
    #[arg(long, value_delimiter = ',')]
    pub std: Option<Vec<f32>>,
    /// Leave `timing` (seconds, images per second) out of report.json, so that two runs on
    /// the same inputs write the same bytes in every file.
    #[arg(long)]
    pub no_timing: bool,
    /// Continue the audit a kill interrupted: the swaps in its journal (`OUT.journal`,
    /// beside --out) are kept, not computed again; a journal of other inputs or settings is
    /// refused. Without a journal the audit simply starts.
    #[arg(long)]
    pub resume: bool,
    /// Compute only shard K of N (1-based) of the swaps, dealt by cost, and write the
    /// result to OUT/shard.journal; `reuse-audit merge` joins the N shards into the report.
    /// `auto/N` takes K from the scheduler: SLURM_ARRAY_TASK_ID (a Slurm job array, offset
    /// by its first index) or JOB_COMPLETION_INDEX (a Kubernetes Indexed Job, 0-based).
    #[arg(long, value_name = "K/N|auto/N", value_parser = clap::value_parser!(reuse_audit::journal::scheduler::ShardArg))]
    pub shard: Option<reuse_audit::journal::scheduler::ShardArg>,
}

/// Which audited tensors a plan reuses.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// Reuse only these kinds (W,B,RM,RV,RW,RB; default: every kind the report judged
    /// reusable).
    #[arg(long, value_delimiter = ',')]
    pub kinds: Option<Vec<String>>,
    /// Reuse only these families (conv,bn,linear,norm).
    #[arg(long, value_delimiter = ',')]
    pub families: Option<Vec<String>>,
    /// Also reuse undecided rows (confidence interval across the tolerance); needs a report
    /// with a `decision` column.
    #[arg(long)]
    pub include_undecided: bool,
    /// Pairing: the audit's (auto, name, position, or its mapping FILE).
    #[arg(long = "match", default_value = "auto")]
    pub match_mode: String,
}

/// The joint check of a plan: the audit's data and preprocessing, read from the report
/// unless given.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Validation data to score grafted.onnx on (without it the plan is not checked jointly,
    /// and the flags below, which say how to score it, are refused).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Labels .npy for .npy data, or `baseline` (default: as the report's dataset.labels).
    #[arg(long, requires = "data")]
    pub labels: Option<String>,
    /// Input scaling (default: the one the audit used).
    #[arg(long, value_enum, requires = "data")]
    pub normalize: Option<Normalize>,
    /// Fit data to the model's input size (default: the audit's).
    #[arg(long, value_enum, requires = "data")]
    pub fit: Option<Fit>,
    /// Axis order of input and output (default: the audit's).
    #[arg(long, value_enum, requires = "data")]
    pub layout: Option<LayoutChoice>,
    /// Height x width fed (default: the audit's).
    #[arg(long, value_parser = size_arg, requires = "data")]
    pub size: Option<(usize, usize)>,
    /// Foreground threshold of a one-channel output (default: from the graph).
    #[arg(long, requires = "data")]
    pub threshold: Option<f32>,
    /// The graph output to score, by name (default: the first; give the audit's --output).
    #[arg(long, value_name = "NAME", requires = "data")]
    pub output: Option<String>,
    /// Per-channel mean after --normalize (default: the audit's).
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true, requires = "data")]
    pub mean: Option<Vec<f32>>,
    /// Per-channel std after --mean (default: the audit's).
    #[arg(long, value_delimiter = ',', requires = "data")]
    pub std: Option<Vec<f32>>,
    /// Images per run when the batch dimension is dynamic.
    #[arg(long, default_value_t = 16, requires = "data")]
    pub batch: usize,
    /// Execution provider.
    #[arg(long, value_enum, default_value = "cpu", requires = "data")]
    pub device: Device,
    /// Intra-op threads (0 = all cores).
    #[arg(long, default_value_t = 0, requires = "data")]
    pub threads: usize,
}

/// CI gates (exit code 1 when one fails).
#[derive(Debug, Args)]
pub struct GateArgs {
    /// Fail when the network is not an RN at the stated confidence (its RN decision is
    /// not_reusable, or there is no verdict); an undecided verdict passes unless --strict.
    #[arg(long)]
    pub fail_if_not_reusable: bool,
    /// Make undecided fail the gates too: --fail-if-not-reusable unless the RN decision is
    /// reusable, --require-reusable unless each row's decision is reusable.
    /// Needs one of those two gates.
    #[arg(long)]
    pub strict: bool,
    /// Fail when any audited swap loses more than this mean Dice (at least 0).
    #[arg(long)]
    pub max_delta: Option<f64>,
    /// Fail when any of these (kind, layers) is decided not reusable (or, with --strict,
    /// is not decided reusable), e.g. `W:1-5,7,B:*` (`*` = every layer); a bare kind is conv
    /// (W, B) or BN (RM..RB); prefix the others: `linear.W:1-2,norm.RW:*`.
    #[arg(long)]
    pub require_reusable: Option<String>,
}

/// `--size HxW`.
fn size_arg(s: &str) -> Result<(usize, usize), String> {
    reuse_audit::pipeline::layout::parse_size(s, "--size").map_err(|e| match e {
        reuse_audit::error::UserError::BadFlag { reason, .. } => reason,
        other => other.to_string(),
    })
}
