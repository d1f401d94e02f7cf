//! The journal's header for an audit: sha256 of the models and data as evaluated, the
//! resolved settings the numbers depend on, every swap, and a shard's part of them.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use sha2::{Digest, Sha256};

use super::JournalSpec;
use crate::audit::cost::{probe_shapes, CostModel};
use crate::audit::{AuditJob, Strategy};
use crate::data::preprocess::Dataset;
use crate::engine::Engine;
use crate::journal::shard::{partition, Unit};
use crate::journal::{self, Fingerprint, Header, Inputs, Shard, ShardPart, SwapId};
use crate::model::graph::Topology;
use crate::model::{hex, Model};
use crate::pipeline::audit::Audit;
use crate::pipeline::PairContext;

/// sha256 (hex) of a model as evaluated: its graph with external data read in.
pub fn model_sha256(m: &Model) -> Result<String> {
    Ok(hex(&Sha256::digest(m.to_bytes()?)))
}

/// sha256 (hex) of the preprocessed images as fed and the labels.
pub fn data_sha256(d: &Dataset) -> String {
    let mut h = Sha256::new();
    h.update(format!("{:?} {:?} {}\n", d.images.shape(), d.layout, d.class_ids));
    let mut buf = Vec::with_capacity(1 << 16);
    for chunk in d.images.as_standard_layout().as_slice().unwrap_or(&[]).chunks(1 << 14) {
        buf.clear();
        buf.extend(chunk.iter().flat_map(|v| v.to_le_bytes()));
        h.update(&buf);
    }
    if let Some(l) = &d.labels {
        h.update(format!("labels {:?}\n", l.shape()));
        // As f64, however they are held: the same labels give the same fingerprint.
        let mut values = l.iter().peekable();
        while values.peek().is_some() {
            buf.clear();
            buf.extend(values.by_ref().take(1 << 13).flat_map(|v| v.to_le_bytes()));
            h.update(&buf);
        }
    }
    hex(&h.finalize())
}

/// Fingerprints of the evaluated models and data.
fn inputs(target: &Model, source: &Model, data_path: &Path, data: &Dataset) -> Result<Inputs> {
    let fp =
        |m: &Model| -> Result<Fingerprint> { Ok(Fingerprint { path: m.display_name(), sha256: model_sha256(m)? }) };
    Ok(Inputs {
        target: fp(target)?,
        source: fp(source)?,
        data: Fingerprint { path: data_path.display().to_string(), sha256: data_sha256(data) },
    })
}

/// Every swap of the whole audit (the pairs that run), in pair order.
pub fn swap_ids(job: &AuditJob) -> Vec<SwapId> {
    (0..job.pairing.pairs.len())
        .filter(|&i| job.runs(i))
        .map(|i| {
            let p = &job.pairing.pairs[i];
            let key =
                format!("{} {} {} {} <- {}", p.layer.family, p.layer.index, p.kind(), p.target.name, p.source.name);
            SwapId { pair: i, key }
        })
        .collect()
}

impl Audit {
    /// The header of this audit's journal: `resolved` are settings decided on the way (the
    /// scaling chosen, the threshold read from the graph...).
    #[allow(clippy::too_many_arguments)]
    pub(in crate::pipeline) fn journal_header(
        &self,
        spec: &JournalSpec,
        ctx: &PairContext,
        data_path: &Path,
        dataset: &Dataset,
        job: &AuditJob,
        engine: &Engine,
        resolved: &[(&str, String)],
    ) -> Result<Header> {
        let o = &self.options;
        let lower = |d: &dyn std::fmt::Debug| format!("{d:?}").to_lowercase();
        let join = |v: Vec<String>| v.join(",");
        let mut settings: BTreeMap<String, String> = [
            ("onnxruntime", crate::engine::runtime::ORT_VERSION.to_string()),
            ("--strategy", self.strategy.name().to_string()),
            ("--device", lower(&self.device)),
            ("--tf32", engine.tf32().to_string()),
            ("--metric", self.metric.name().to_string()),
            ("--labels", format!("{:?} (truth: {:?})", self.labels, job.truth)),
            ("--fit", lower(&self.fit)),
            ("--size", format!("{:?}", self.size)),
            ("--mean/--std", format!("{:?}", self.mean_std)),
            ("--dynamic-batch", self.dynamic_batch.to_string()),
            ("--kinds", join(o.kinds.iter().map(|k| k.to_string()).collect())),
            ("--families", join(o.families.iter().map(|f| f.to_string()).collect())),
            ("--match", format!("{:?} ({})", o.match_mode, ctx.pairing.method)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        settings.extend(resolved.iter().map(|(k, v)| (k.to_string(), v.clone())));
        // The intervals depend on the level and resamples; an adaptive audit's stops (so the
        // images each swap is scored on) on the tolerance too.
        if let Some(l) = self.ignore_label {
            settings.insert("--ignore-label".into(), l.to_string());
        }
        // cuDNN's algorithm choice and kernel layout change rounding: a resume or a shard must
        // use the same.
        if engine.cuda.is_some() {
            settings.insert("REUSE_AUDIT_CUDNN_SEARCH".into(), engine.conv_search.name().into());
            settings.insert("REUSE_AUDIT_CUDA_NHWC".into(), engine.cuda_nhwc().to_string());
        }
        settings.insert("--confidence".into(), o.confidence.to_string());
        settings.insert("--bootstrap".into(), o.bootstrap.to_string());
        settings.insert("--adaptive".into(), self.adaptive.to_string());
        if self.adaptive {
            settings.insert("--tolerance (adaptive stops)".into(), o.tolerance.to_string());
        }
        let swaps = swap_ids(job);
        let shard = spec.shard.map(|s| ShardPart {
            index: s.index,
            count: s.count,
            pairs: shard_pairs(engine, job, &swaps, s, o.quiet),
        });
        let inputs = inputs(&ctx.target, &ctx.source, data_path, dataset)?;
        Ok(header(inputs, settings, swaps, shard, &spec.args))
    }
}

/// The header of this audit's journal.
pub(super) fn header(
    inputs: Inputs,
    settings: BTreeMap<String, String>,
    swaps: Vec<SwapId>,
    shard: Option<ShardPart>,
    args: &[String],
) -> Header {
    Header {
        journal: journal::FORMAT.into(),
        version: journal::VERSION,
        tool: env!("CARGO_PKG_VERSION").into(),
        inputs,
        settings,
        swaps,
        shard,
        args: args.to_vec(),
    }
}

/// The pairs of shard `s`: layers dealt by cost (FLOPs downstream of the layer x its swaps
/// for the incremental strategy; one full forward pass per swap otherwise).
fn shard_pairs(engine: &Engine, job: &AuditJob, swaps: &[SwapId], s: Shard, quiet: bool) -> Vec<usize> {
    let model = job.target;
    let downstream = (job.strategy == Strategy::Incremental)
        .then(|| {
            let d = job.data;
            // The probe that ran beside the scaling probe, when it did.
            let probe = match job.shapes {
                Some(p) => Some(p.clone()),
                None => probe_shapes(engine, model, &job.input.name, d.layout, [d.c(), d.h(), d.w()]).ok(),
            };
            probe.map(|probe| {
                let cost = CostModel::new(model, &probe.shapes);
                let topo = Topology::of(model);
                move |node: usize| cost.downstream(&topo, model, node)
            })
        })
        .flatten();
    let mut units: Vec<Unit> = Vec::new();
    let mut layers: Vec<usize> = Vec::new();
    for id in swaps {
        let node = job.pairing.pairs[id.pair].layer.node_index;
        let at = layers.iter().position(|&n| n == node).unwrap_or_else(|| {
            layers.push(node);
            units.push(Unit { pairs: Vec::new(), cost: 0.0 });
            layers.len() - 1
        });
        units[at].pairs.push(id.pair);
        units[at].cost += downstream.as_ref().map_or(1.0, |f| f(node).max(1.0));
    }
    let parts = partition(&units, s.count);
    let mine = parts.into_iter().nth(s.index - 1).unwrap_or_default();
    if !quiet {
        eprintln!(
            "shard {s}: {} of {} swap(s), {} of {} layer(s), dealt by {}",
            mine.len(),
            swaps.len(),
            units.iter().filter(|u| u.pairs.first().is_some_and(|p| mine.contains(p))).count(),
            units.len(),
            if downstream.is_some() { "FLOPs downstream of each layer" } else { "swap count" }
        );
    }
    mine
}
