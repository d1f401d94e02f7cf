//! The report: one serde struct for every command's result, writers that return bytes
//! (CSV, JSON, Markdown, text table), and one place that writes files atomically.

pub mod budget;
pub mod budget_chart;
pub mod confidence;
pub mod csv;
pub mod dual_axis;
pub mod html;
pub mod interval_chart;
pub mod markdown;
pub mod svg;
pub mod table;
pub mod timing;
pub mod write;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::metrics::dice::Dice;
use crate::metrics::score::Metric;
use crate::pair::Unmatched;

/// Version of the JSON report layout (`schemas/report.schema.json`).
pub const SCHEMA_VERSION: u32 = 1;

/// A complete audit (or data-free RMSE) report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Layout version of this JSON.
    pub schema_version: u32,
    /// Tool name and version.
    pub tool: ToolInfo,
    /// `audit` or `rmse`.
    pub command: String,
    /// The target model.
    pub target: ModelInfo,
    /// The source model.
    pub source: ModelInfo,
    /// Inference engine (audit only).
    pub engine: Option<EngineInfo>,
    /// The validation data (audit only).
    pub dataset: Option<DatasetInfo>,
    /// Settings that decide the verdicts.
    pub settings: Settings,
    /// Score of the unswapped target (audit only): `mean` is the metric (`settings.metric`:
    /// mean Dice, accuracy or agreement), `per_class` and `mean_fg` are Dice.
    pub baseline: Option<Dice>,
    /// One row per matched (layer, kind).
    pub rows: Vec<Row>,
    /// Parameters that could not be paired.
    pub unmatched: Vec<Unmatched>,
    /// Target (layer, kind) groups of the audited kinds without a swap result, and why
    /// (audit only; unmatched, quantized, inside control flow).
    pub not_audited: Vec<NotAudited>,
    /// Warnings (e.g. BN probably folded at export).
    pub warnings: Vec<String>,
    /// Verdicts and BN statistics.
    pub summary: Summary,
    /// Per kind, how well each data-free metric ranks the layers by measured Dice loss
    /// (audit only; empty otherwise).
    pub predictors: Vec<crate::predictors::Predictor>,
    /// What an adaptive audit (`--adaptive`) saved (null for an exact audit).
    pub adaptive: Option<AdaptiveInfo>,
    /// How the noise budget was searched and how it agrees with the decisions (`--budget`;
    /// absent without it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<budget::BudgetInfo>,
    /// How long the audit took (audit only; absent with `--no-timing` and in the demo's
    /// reports). The only field that differs between runs on the same inputs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timing: Option<timing::Timing>,
}

/// The cost and rule of an adaptive audit.
#[derive(Debug, Clone, Serialize)]
pub struct AdaptiveInfo {
    /// Images scored by the end of each round (prefixes of a seeded shuffle of the set).
    pub rounds: Vec<usize>,
    /// The stopping rule: `bonferroni` (a union bound over the planned rounds).
    pub rule: String,
    /// Level of each round's interval: 1 - (1 - confidence) / rounds.
    pub level_per_round: f64,
    /// Images put through the model: the baseline's and every swap's until it stopped.
    pub image_forwards: usize,
    /// What the exact audit puts through: every image for the baseline and every swap.
    pub exact_image_forwards: usize,
}

impl Report {
    /// What swaps were scored by (Dice for data-free reports).
    pub fn metric(&self) -> Metric {
        self.settings.metric.unwrap_or_default()
    }
}

/// A target (layer, kind) group the audit has no swap result for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotAudited {
    /// `conv` or `bn`.
    pub family: String,
    /// The layer's number in its family (null inside a subgraph: not numbered).
    pub layer: Option<usize>,
    /// Node name.
    pub node: String,
    /// Parameter kind.
    pub kind: String,
    /// Why it was not swapped.
    pub reason: String,
}

/// Tool identity.
#[derive(Debug, Clone, Serialize)]
pub struct ToolInfo {
    /// Always `reuse-audit`.
    pub name: String,
    /// Crate version.
    pub version: String,
}

impl Default for ToolInfo {
    fn default() -> Self {
        ToolInfo { name: "reuse-audit".into(), version: env!("CARGO_PKG_VERSION").into() }
    }
}

/// A model as audited.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    /// Path as given.
    pub path: String,
    /// sha256 of the .onnx file.
    pub sha256: String,
    /// Number of Conv/ConvTranspose layers.
    pub conv_layers: usize,
    /// Number of BatchNormalization layers.
    pub bn_layers: usize,
    /// Number of linear layers (Gemm, MatMul with a stored weight); absent when 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub linear_layers: usize,
    /// Number of Instance/Group/LayerNormalization layers; absent when 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub norm_layers: usize,
    /// True when it has conv layers and no BN (BN probably folded at export).
    pub bn_probably_folded: bool,
    /// Its quantized conv layers (QDQ, QOperator, dynamic), each with whether it is audited
    /// and why (not); empty for a float model.
    pub quantized: Vec<crate::model::quantized::QuantizedLayer>,
    /// The half-precision type the file computes in (`float16`, `bfloat16`), when it does:
    /// audited in float32 with its weights upcast exactly (absent for a float32 model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub computes_in: Option<String>,
}

impl ModelInfo {
    /// One sentence on the quantized conv layers for the Markdown and HTML reports, when
    /// there are any: how many of each format, how many audited, and the first left out.
    pub fn quantized_line(&self) -> Option<String> {
        let q = &self.quantized;
        if q.is_empty() {
            return None;
        }
        let audited = q.iter().filter(|l| l.audited).count();
        let mut formats: Vec<&str> = q.iter().map(|l| l.format).collect();
        formats.dedup();
        let mut line = format!("{} quantized conv layer(s) ({}): {audited} audited", q.len(), formats.join(", "));
        if audited > 0 {
            line.push_str(", W (and a quantized B) swapped as (quantized tensor, scale, zero point) triples, RMSE on dequantized values");
        }
        if let Some(l) = q.iter().find(|l| !l.audited) {
            let left = q.len() - audited;
            line.push_str(&format!("; {left} not audited (first: conv {} `{}`: {})", l.layer, l.node, l.reason));
        }
        Some(line)
    }
}

/// The engine that ran the audit.
#[derive(Debug, Clone, Serialize)]
pub struct EngineInfo {
    /// Always `onnxruntime`.
    pub runtime: String,
    /// ONNX Runtime version of the library loaded.
    pub version: String,
    /// Execution provider that ran: `CPUExecutionProvider` or `CUDAExecutionProvider`.
    pub provider: String,
    /// Swap evaluation strategy.
    pub strategy: String,
    /// The GPU the CUDA provider ran on (`nvidia-smi`'s name; null on CPU).
    pub device: Option<String>,
    /// The CUDA runtime's version that was loaded (null on CPU).
    pub cuda_version: Option<String>,
    /// cuDNN's version that was loaded (null on CPU).
    pub cudnn_version: Option<String>,
    /// The CUDA/cuDNN libraries loaded for the provider, in loading order (absent on CPU).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cuda_libraries: Vec<String>,
    /// How cuDNN picked convolution algorithms (`heuristic`, `exhaustive` or `default`;
    /// `REUSE_AUDIT_CUDNN_SEARCH`); absent on CPU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cudnn_conv_search: Option<String>,
}

impl EngineInfo {
    /// What `engine` is, with the strategy that ran.
    pub fn of(engine: &crate::engine::Engine, strategy: &str) -> EngineInfo {
        let cuda = engine.cuda.as_ref();
        EngineInfo {
            runtime: "onnxruntime".into(),
            version: engine.version.clone(),
            provider: engine.provider.into(),
            strategy: strategy.into(),
            device: cuda.map(|_| engine.device_name()),
            cuda_version: cuda.and_then(|c| c.cuda_version.clone()),
            cudnn_version: cuda.and_then(|c| c.cudnn_version.clone()),
            cuda_libraries: cuda
                .map_or_else(Vec::new, |c| c.libraries.iter().map(|f| f.path.display().to_string()).collect()),
            cudnn_conv_search: cuda.map(|_| engine.conv_search.name().to_string()),
        }
    }
}

/// The validation data as fed.
#[derive(Debug, Clone, Serialize)]
pub struct DatasetInfo {
    /// `--data` as given.
    pub path: String,
    /// npz, npy, nifti or png.
    pub format: String,
    /// Number of images.
    pub images: usize,
    /// Channels fed.
    pub channels: usize,
    /// Height fed.
    pub height: usize,
    /// Width fed.
    pub width: usize,
    /// Classes (model output channels; 2 for a single sigmoid channel).
    pub classes: usize,
    /// `file` (ground truth given) or `baseline` (label-free: baseline predictions).
    pub labels: String,
    /// `--ignore-label`: the label value whose pixels were not scored (absent when none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignore_label: Option<u8>,
    /// The input scaling used (`--normalize`, or the one `auto` chose).
    pub normalize: String,
    /// Baseline mean Dice on the probe batch for each scaling tried, in the order tried
    /// (empty label-free).
    pub normalize_scores: Vec<crate::pipeline::probe::ScalingScore>,
    /// --fit.
    pub fit: String,
    /// How output channels became classes: argmax, or a one-channel threshold and why
    /// (read from the graph's last op, or `--threshold`).
    pub prediction: String,
    /// Axis order of the model's input and output as fed and read: `nchw` or `nhwc` when
    /// both agree, else `input/output` (e.g. `nchw/nhwc`). Detected from the graph unless
    /// `--layout` forced it.
    pub layout: String,
    /// `--mean`/`--std`: per-channel standardization applied after `normalize` (null when
    /// not given).
    pub mean_std: Option<crate::data::standardize::MeanStd>,
}

/// Settings that decide the verdicts.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Kinds audited.
    pub kinds: Vec<String>,
    /// Layer families paired and audited (`--families`); absent when all four were.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub families: Option<Vec<String>>,
    /// A swap is reusable when baseline - swapped score (mean Dice, or the metric's) <= tolerance.
    pub tolerance: f64,
    /// The network is reusable when at least this share of conv W swaps is reusable.
    pub rn_threshold: f64,
    /// Pairing method used: name, position or file.
    pub match_method: String,
    /// Two-sided confidence of the intervals and of the decisions (audit only).
    pub confidence: f64,
    /// Bootstrap resamples per interval (audit only).
    pub bootstrap: usize,
    /// Whether swaps were scored in rounds and stopped once decided (`--adaptive`).
    pub adaptive: bool,
    /// What swaps were scored by (`--metric`; null for data-free reports): `dice`,
    /// `accuracy` or `agreement`. `baseline`, `baseline_dice`, `swapped_dice`, `delta_dice`,
    /// `tolerance` and `max_delta` are in this metric; per-class columns stay Dice.
    pub metric: Option<Metric>,
    /// Whether the CUDA provider was allowed TF32 (`--tf32`); false on CPU and for
    /// data-free reports.
    pub tf32: bool,
}

/// One matched (layer, kind): a CSV row.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// conv, bn, linear or norm.
    pub family: String,
    /// 1-based layer index within the family (topological order).
    pub layer: usize,
    /// Target node name.
    pub node: String,
    /// ONNX op type.
    pub op: String,
    /// W, B, RM, RV, RW or RB.
    pub kind: String,
    /// Target initializer name.
    pub target_initializer: String,
    /// Source initializer name.
    pub source_initializer: String,
    /// Shape, e.g. `16x8x3x3`.
    pub shape: String,
    /// Number of scalars.
    pub numel: usize,
    /// sqrt(mean((t - s)^2)).
    pub rmse: f64,
    /// rmse / std(t); null when std(t) = 0 and rmse > 0.
    pub nrmse: Option<f64>,
    /// Cosine similarity of t and s.
    pub cosine: f64,
    /// Baseline mean Dice over all classes (audit only; with `--metric accuracy|agreement`,
    /// the baseline's accuracy or agreement).
    pub baseline_dice: Option<f64>,
    /// Mean Dice over all classes after this swap (audit only; or the metric's score).
    pub swapped_dice: Option<f64>,
    /// baseline_dice - swapped_dice (audit only).
    pub delta_dice: Option<f64>,
    /// Mean foreground Dice after this swap (audit only; Dice under every metric).
    pub dice_fg: Option<f64>,
    /// delta_dice <= tolerance (audit only).
    pub reusable: Option<bool>,
    /// ‖W_t − W_s‖₂ / ‖W_t‖₂ (conv and linear W only).
    pub spectral_rel: Option<f64>,
    /// Mean squared cosine of the principal angles between the filter banks' top singular subspaces (conv and linear W only).
    pub subspace_overlap: Option<f64>,
    /// Dice per class after this swap (audit only; empty otherwise; Dice under every
    /// metric: F1 per class for a classifier).
    pub dice_class: Vec<f64>,
    /// Lower end of the paired bootstrap interval of delta_dice (audit only).
    pub delta_dice_lo: Option<f64>,
    /// Upper end of the paired bootstrap interval of delta_dice (audit only).
    pub delta_dice_hi: Option<f64>,
    /// From the interval: reusable (delta_dice_hi <= tolerance), not_reusable
    /// (delta_dice_lo > tolerance), else undecided (audit only).
    pub decision: Option<crate::verdict::Decision>,
    /// Validation images this swap was scored on: all of them, or fewer when an adaptive
    /// audit stopped it early; baseline_dice is then the baseline's on the same images.
    pub images_used: Option<usize>,
    /// The noise budget's columns (`--budget`; absent without it): `rmse_budget`,
    /// `within_budget`, `budget_loss`, `rmse_budget_next`, `budget_next_loss`, `budget_note`.
    #[serde(flatten)]
    pub budget: Option<budget::RowBudget>,
    /// Images on which the swapped model's output held NaN or an infinity (audit only):
    /// those pixels predict no class and count as wrong, and a swap with any is not
    /// reusable, whatever its delta (a warning names it).
    pub non_finite_images: Option<usize>,
}

/// BN shift/scale statistics of one layer.
#[derive(Debug, Clone, Serialize)]
pub struct BnStats {
    /// BN layer index.
    pub layer: usize,
    /// Node name.
    pub node: String,
    /// Output shift from swapping RM.
    pub mrm: f64,
    /// Output scale from swapping RV.
    pub mrv: f64,
    /// Output scale from swapping RW (null when every target gamma is 0).
    pub mrw: Option<f64>,
    /// Output shift from swapping RB.
    pub mrb: f64,
}

/// Verdicts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Reusable network verdict (null without an audit of conv W).
    pub rn: Option<bool>,
    /// Share of conv layers whose W swap is reusable (conv only: linear W does not count).
    pub conv_w_reusable_share: Option<f64>,
    /// Reusable layer indices per group: `W`..`RB` for conv and BN, `linear.W`,
    /// `linear.B`, `norm.RW`, `norm.RB` for the other families.
    pub reusable: BTreeMap<String, Vec<usize>>,
    /// Non-reusable layer indices per group (as `reusable`).
    pub not_reusable: BTreeMap<String, Vec<usize>>,
    /// Share of (layer, kind) groups that are reusable (null when some group of the
    /// audited kinds was not audited: see `not_audited`).
    pub reuse_share_groups: Option<f64>,
    /// Share of scalar parameters that are reusable (null as `reuse_share_groups`).
    pub reuse_share_scalars: Option<f64>,
    /// Largest delta_dice of any swap.
    pub max_delta: Option<f64>,
    /// Layer indices per kind whose interval contains the tolerance (decision undecided).
    pub undecided: BTreeMap<String, Vec<usize>>,
    /// Share of conv layers whose W swap is decided reusable (undecided counted as not).
    pub conv_w_reusable_share_lo: Option<f64>,
    /// Share of conv layers whose W swap is reusable or undecided (undecided counted as reusable).
    pub conv_w_reusable_share_hi: Option<f64>,
    /// The RN verdict at the stated confidence: reusable when even the low share reaches
    /// the RN threshold, not_reusable when even the high share stays below it, else
    /// undecided (null when `rn` is).
    pub rn_decision: Option<crate::verdict::Decision>,
    /// MRM, MRV, MRW, MRB per BN layer.
    pub bn: Vec<BnStats>,
}

/// Report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Format {
    /// report.csv
    Csv,
    /// report.json
    Json,
    /// report.md (a CI job summary)
    Md,
    /// report.html (self-contained, inline SVG) plus figures/*.svg
    Html,
}

impl Format {
    /// The file name a format is written to.
    pub fn file_name(self) -> &'static str {
        match self {
            Format::Csv => "report.csv",
            Format::Json => "report.json",
            Format::Md => "report.md",
            Format::Html => "report.html",
        }
    }

    /// Serialize a report in this format.
    pub fn render(self, r: &Report) -> anyhow::Result<Vec<u8>> {
        Ok(match self {
            Format::Csv => csv::render(r)?,
            Format::Json => json(r)?,
            Format::Md => markdown::render(r).into_bytes(),
            Format::Html => html::render(r, &html::figures(r)).into_bytes(),
        })
    }
}

/// Every file of a report in the requested formats: `(relative path, bytes)`; HTML also
/// brings its figures as `figures/*.svg`.
pub fn files(r: &Report, formats: &[Format]) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for f in formats {
        if *f == Format::Html {
            let figs = html::figures(r);
            out.push((f.file_name().to_string(), html::render(r, &figs).into_bytes()));
            out.extend(figs.into_iter().map(|fig| (format!("figures/{}", fig.file), fig.svg.into_bytes())));
        } else {
            out.push((f.file_name().to_string(), f.render(r)?));
        }
    }
    Ok(out)
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Pretty JSON with a trailing newline.
pub fn json<T: Serialize>(value: &T) -> anyhow::Result<Vec<u8>> {
    let mut out = serde_json::to_vec_pretty(value)?;
    out.push(b'\n');
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests;
