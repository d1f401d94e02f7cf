//! `plan.json` (schemas/plan.schema.json): one serde struct, and its assembly with the
//! weight files from the grafts that survived.

use anyhow::Result;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::files::{self, Entry};
use super::graft::{self, Graft, TripleNames};
use super::record::{Origin, RecordRow};
use super::stored::{tensor_at, RawModel};
use super::verify::Verification;
use super::{Made, Request};
use crate::audit::compare::PairValues;
use crate::model::{hex, tensor, DType, Kind};
use crate::pipeline::PairContext;
use crate::report::ToolInfo;

/// Version of the `plan.json` layout.
pub const PLAN_SCHEMA_VERSION: u32 = 1;

/// A reuse plan.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Layout version of this JSON.
    pub schema_version: u32,
    /// Tool name and version.
    pub tool: ToolInfo,
    /// The target model (whose file `grafted.onnx` is a copy of, with the reused tensors in).
    pub target: PlanModel,
    /// The source model the reused tensors come from.
    pub source: PlanModel,
    /// The audit report the plan was made from.
    pub report: PlanReport,
    /// What decided the plan.
    pub settings: PlanSettings,
    /// One entry per reused (family, layer, kind), in report order.
    pub reuse: Vec<Reused>,
    /// The `reused.safetensors` keys to keep fixed when training: parameters (no gradient)
    /// and, for BN running statistics, buffers (see the README's "Using the plan").
    pub freeze: Vec<String>,
    /// Every audited (family, layer, kind) not reused, with why, in report order.
    pub dropped: Vec<Dropped>,
    /// The joint check on the validation data (`null` without `--data`: not checked).
    pub verification: Option<Verification>,
    /// The files written beside this one.
    pub files: PlanFiles,
    /// Warnings (also on stderr).
    pub warnings: Vec<String>,
}

/// A model file.
#[derive(Debug, Clone, Serialize)]
pub struct PlanModel {
    /// Path as given.
    pub path: String,
    /// sha256 of the file (the report's).
    pub sha256: String,
}

/// The report planned from.
#[derive(Debug, Clone, Serialize)]
pub struct PlanReport {
    /// `--report` as given (`null` for `audit --plan`: the audit's own report).
    pub path: Option<String>,
    /// sha256 of the report file (`null` for `audit --plan`).
    pub sha256: Option<String>,
}

/// The settings of a plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlanSettings {
    /// The report's tolerance: a swap, and the grafted model, may lose this much.
    pub tolerance: f64,
    /// What losses are in (`dice`, `accuracy`, `agreement`): the report's metric.
    pub metric: Option<String>,
    /// `--kinds` (`null`: every kind audited).
    pub kinds: Option<Vec<String>>,
    /// `--families` (`null`: every family audited).
    pub families: Option<Vec<String>>,
    /// `--include-undecided`: rows whose interval straddles the tolerance are reused too.
    pub include_undecided: bool,
    /// How the parameters were paired: name, position or file.
    pub match_method: String,
}

/// One reused tensor.
#[derive(Debug, Clone, Serialize)]
pub struct Reused {
    /// conv, bn, linear or norm.
    pub family: String,
    /// 1-based layer index within the family.
    pub layer: usize,
    /// Target node.
    pub node: String,
    /// W, B, RM, RV, RW or RB.
    pub kind: String,
    /// The target parameter, as the report names it.
    pub target_initializer: String,
    /// The source parameter copied in.
    pub source_initializer: String,
    /// The target file's tensors written in `grafted.onnx`: the parameter's, or a QDQ
    /// parameter's (quantized tensor, scale, zero point).
    pub stored_as: Vec<String>,
    /// Nodes between the stored tensor and the layer (a Cast or Transpose the audit
    /// precomputed); usually empty.
    pub chain: Vec<String>,
    /// A QDQ parameter's triple.
    pub quantized: Option<TripleNames>,
    /// Its key in `reused.safetensors`: the stored tensor's name, or for a QDQ parameter the
    /// DequantizeLinear output the layer reads (holding the dequantized float values).
    pub safetensors_key: String,
    /// Shape of that tensor.
    pub shape: Vec<usize>,
    /// Its element type (`float32`, ...).
    pub dtype: DType,
    /// The audit's loss of this swap alone.
    pub loss: f64,
    /// `reusable`, or `undecided` with `--include-undecided`.
    pub decision: String,
    /// A BN running statistic (RM, RV): a buffer in PyTorch, not a parameter.
    pub buffer: bool,
}

/// An audited tensor the plan does not reuse.
#[derive(Debug, Clone, Serialize)]
pub struct Dropped {
    /// conv, bn, linear or norm.
    pub family: String,
    /// Layer index within the family.
    pub layer: usize,
    /// Target node.
    pub node: String,
    /// Kind.
    pub kind: String,
    /// The target parameter.
    pub target_initializer: String,
    /// The source parameter.
    pub source_initializer: String,
    /// The audit's loss of this swap alone (null: not audited).
    pub loss: Option<f64>,
    /// Why it is not reused.
    pub reason: String,
    /// The joint check's step that dropped it (null: dropped before the check).
    pub step: Option<usize>,
}

impl Dropped {
    /// A report row left out, with why.
    pub fn of(row: &RecordRow, reason: String, step: Option<usize>) -> Dropped {
        Dropped {
            family: row.family.clone(),
            layer: row.layer,
            node: row.node.clone(),
            kind: row.kind.clone(),
            target_initializer: row.target_initializer.clone(),
            source_initializer: row.source_initializer.clone(),
            loss: row.delta_dice,
            reason,
            step,
        }
    }
}

/// The files of a plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlanFiles {
    /// `reused.safetensors`.
    pub safetensors: String,
    /// `grafted.onnx`.
    pub grafted: String,
    /// `grafted.onnx.data` when the grafted model keeps its tensors outside (as the target
    /// did); `null`: self-contained.
    pub grafted_data: Option<String>,
}

/// Put the plan and its files together from the grafts kept.
#[allow(clippy::too_many_arguments)]
pub(super) fn assemble<'r>(
    req: &Request,
    ctx: &PairContext,
    values: &PairValues,
    raw: &RawModel,
    grafts: &[Graft],
    row_of: &dyn Fn(usize) -> &'r RecordRow,
    mut dropped: Vec<Dropped>,
    verification: Option<Verification>,
    warnings: Vec<String>,
) -> Result<Made> {
    let refs: Vec<&Graft> = grafts.iter().collect();
    let grafted = graft::apply(raw, &refs)?;
    let mut reuse = Vec::new();
    let mut entries = Vec::new();
    for g in grafts {
        let (row, p) = (row_of(g.pair), &ctx.pairing.pairs[g.pair]);
        let entry = match &g.triple {
            Some(_) => Entry { key: g.key.clone(), dtype: p.target.dtype, values: values.source[g.pair].clone() },
            None => {
                let t = tensor_at(&grafted.graph, g.writes[0].0);
                let dtype = graft::dtype_of(t).unwrap_or(DType::Float32);
                Entry { key: g.key.clone(), dtype, values: tensor::decode(t)? }
            }
        };
        reuse.push(Reused {
            family: row.family.clone(),
            layer: row.layer,
            node: row.node.clone(),
            kind: row.kind.clone(),
            target_initializer: row.target_initializer.clone(),
            source_initializer: row.source_initializer.clone(),
            stored_as: g.writes.iter().map(|w| w.1.clone()).collect(),
            chain: g.chain.clone(),
            quantized: g.triple.clone(),
            safetensors_key: entry.key.clone(),
            shape: entry.values.shape().to_vec(),
            dtype: entry.dtype,
            loss: row.delta_dice.unwrap_or(f64::NAN),
            decision: row.decision.clone().unwrap_or_else(|| "reusable".into()),
            buffer: matches!(p.kind(), Kind::RM | Kind::RV),
        });
        entries.push(entry);
    }
    let mut freeze: Vec<String> = Vec::new();
    for r in &reuse {
        if !freeze.contains(&r.safetensors_key) {
            freeze.push(r.safetensors_key.clone());
        }
    }
    let order = |d: &Dropped| {
        req.record.rows.iter().position(|r| r.family == d.family && r.layer == d.layer && r.kind == d.kind)
    };
    dropped.sort_by_key(order);
    let mut out = files::grafted(&grafted, &raw.external)?;
    let external = out.iter().any(|(name, _)| name == files::GRAFTED_DATA);
    out.push((files::SAFETENSORS.into(), files::safetensors(&entries)?));
    let rec = &req.record;
    let plan = Plan {
        schema_version: PLAN_SCHEMA_VERSION,
        tool: ToolInfo::default(),
        target: PlanModel { path: req.target.display().to_string(), sha256: ctx.target.sha256.clone() },
        source: PlanModel { path: req.source.display().to_string(), sha256: ctx.source.sha256.clone() },
        report: match &req.origin {
            Origin::File(p) => PlanReport {
                path: Some(p.display().to_string()),
                sha256: crate::input::read(p).ok().map(|b| hex(&Sha256::digest(&b))),
            },
            Origin::Audit => PlanReport { path: None, sha256: None },
        },
        settings: PlanSettings {
            tolerance: rec.settings.tolerance,
            metric: rec.settings.metric.clone(),
            kinds: req.policy.kinds.as_ref().map(|k| k.iter().map(|k| k.to_string()).collect()),
            families: req.policy.families.as_ref().map(|f| f.iter().map(|f| f.to_string()).collect()),
            include_undecided: req.policy.include_undecided,
            match_method: ctx.pairing.method.into(),
        },
        reuse,
        freeze,
        dropped,
        verification,
        files: PlanFiles {
            safetensors: files::SAFETENSORS.into(),
            grafted: files::GRAFTED.into(),
            grafted_data: external.then(|| files::GRAFTED_DATA.into()),
        },
        warnings,
    };
    out.insert(0, (files::PLAN.into(), crate::report::json(&plan)?));
    Ok(Made { plan, files: out })
}
