//! The audit's journal (see [`crate::journal`]): its header (hashes of what is evaluated,
//! the resolved settings, every swap), opening it fresh, resumed or from merged shards, a
//! shard's part of the swaps, and the sink that appends each finished result.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Result;
use sha2::{Digest, Sha256};

use crate::audit::cost::{probe_shapes, CostModel};
use crate::audit::{AuditJob, Known, Sink, Strategy, SwapScore};
use crate::data::preprocess::Dataset;
use crate::engine::Engine;
use crate::error::{bad_file, UserError};
use crate::journal::shard::{partition, Unit};
use crate::journal::{self, Fingerprint, Header, Inputs, Record, Scope, Shard, ShardPart, SwapId, Writer};
use crate::metrics::dice::Dice;
use crate::model::graph::Topology;
use crate::model::{hex, Model};
use crate::pipeline::PairContext;

use super::Audit;

/// Where an audit's results are journaled.
#[derive(Debug, Clone)]
pub enum JournalPlan {
    /// A new journal at this path (refused when one is there: resume it or delete it).
    Fresh(PathBuf),
    /// Continue the journal at this path (a fresh start when there is none).
    Resume(PathBuf),
    /// Every result from joined shard journals (`merge`): nothing computed, nothing written.
    Merged(Box<(Header, Known)>),
}

/// An audit's journal: where, which shard, and the command line to record.
#[derive(Debug, Clone)]
pub struct JournalSpec {
    /// Where results come from and go.
    pub plan: JournalPlan,
    /// Compute only this shard's swaps.
    pub shard: Option<Shard>,
    /// The command line to record (see [`Header::args`]).
    pub args: Vec<String>,
}

/// An opened journal.
pub struct Opened {
    /// Results known already.
    pub known: Known,
    /// Where new results go (none when merging).
    pub writer: Option<Writer>,
    /// The shard's pairs.
    pub only: Option<Vec<usize>>,
}

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
        for chunk in l.as_standard_layout().as_slice().unwrap_or(&[]).chunks(1 << 13) {
            buf.clear();
            buf.extend(chunk.iter().flat_map(|v| v.to_le_bytes()));
            h.update(&buf);
        }
    }
    hex(&h.finalize())
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
    pub(super) fn journal_header(
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
pub fn header(
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
pub fn shard_pairs(engine: &Engine, job: &AuditJob, swaps: &[SwapId], s: Shard, quiet: bool) -> Vec<usize> {
    let model = job.target;
    let downstream = (job.strategy == Strategy::Incremental)
        .then(|| {
            let d = job.data;
            probe_shapes(engine, model, &job.input.name, d.layout, [d.c(), d.h(), d.w()]).ok().map(|probe| {
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

/// Open the journal `spec` names for an audit whose header is `now`.
pub fn open(spec: &JournalSpec, now: &Header, quiet: bool) -> Result<Opened> {
    let only = now.shard.as_ref().map(|s| s.pairs.clone());
    let scope = if now.shard.is_some() { Scope::Shards } else { Scope::Numbers };
    let note = |s: String| {
        if !quiet {
            eprintln!("{s}");
        }
    };
    match &spec.plan {
        JournalPlan::Merged(merged) => {
            let (was, known) = &**merged;
            let diff = was.differences(now, Scope::Shards);
            if !diff.is_empty() {
                return Err(UserError::Merge(format!(
                    "the shards were computed from other inputs than merge finds now (shards vs now: {})",
                    diff.join("; ")
                ))
                .into());
            }
            Ok(Opened { known: known.clone(), writer: None, only })
        }
        JournalPlan::Fresh(path) => match Writer::create(path, now)? {
            Some(w) => Ok(Opened { known: Known::default(), writer: Some(w), only }),
            None => {
                // Held by a running audit: say so rather than call it unfinished.
                drop(Writer::open_locked(path)?);
                let done = journal::read::<Dice, SwapScore>(path).ok().flatten().map(|l| l.known.swaps.len());
                Err(bad_file(
                    path,
                    format!(
                        "the journal of an unfinished audit ({}) is there: add --resume to continue it, or delete it to start over",
                        done.map_or("unreadable".to_string(), |n| format!("{n} swap(s) done"))
                    ),
                ))
            }
        },
        JournalPlan::Resume(path) => {
            let Some((file, bytes)) = Writer::open_locked(path)? else {
                note(format!("resume: no journal at {}: nothing to resume, the audit starts", path.display()));
                let w = Writer::create(path, now)?
                    .ok_or_else(|| bad_file(path, "appeared while this audit started; is another audit running?"))?;
                return Ok(Opened { known: Known::default(), writer: Some(w), only });
            };
            let Some(loaded) = journal::file::parse::<Dice, SwapScore>(&bytes, path)? else {
                note(format!("resume: the journal {} has no whole header: the audit starts over", path.display()));
                return Ok(Opened { known: Known::default(), writer: Some(Writer::start(file, path, now)?), only });
            };
            let mut diff = loaded.header.differences(now, scope);
            if loaded.header.shard != now.shard {
                let show =
                    |p: &Option<ShardPart>| p.as_ref().map_or("none".into(), |p| format!("{}/{}", p.index, p.count));
                diff.push(format!("shard: {} vs {}", show(&loaded.header.shard), show(&now.shard)));
            }
            if !diff.is_empty() {
                return Err(bad_file(
                    path,
                    format!(
                        "the journal is of another audit (journal vs now: {}); delete it to start over",
                        diff.join("; ")
                    ),
                ));
            }
            if let Some(t) = &loaded.torn {
                note(format!("resume: the journal's last line was cut short by the kill ('{t}…'): dropped"));
            }
            let total = now.shard.as_ref().map_or(now.swaps.len(), |s| s.pairs.len());
            let kept = loaded.known.swaps.len();
            note(format!(
                "resume: {kept} of {total} swap(s) kept from {}{}; {} left to compute",
                path.display(),
                if loaded.known.baseline.is_some() { " (and the baseline)" } else { "" },
                total - kept
            ));
            let w = Writer::resume(file, path, loaded.intact)?;
            Ok(Opened { known: loaded.known, writer: Some(w), only })
        }
    }
}

/// Appends each finished result to the journal.
pub struct JournalSink<'a> {
    writer: &'a Writer,
    swaps: &'a [SwapId],
    /// Swaps appended by this run.
    appended: AtomicUsize,
}

impl<'a> JournalSink<'a> {
    /// A sink into `writer` for an audit of `swaps`.
    pub fn new(writer: &'a Writer, swaps: &'a [SwapId]) -> Self {
        JournalSink { writer, swaps, appended: AtomicUsize::new(0) }
    }
}

/// On a failed audit (dropped armed): removes the journal when it holds no swap (nothing to
/// resume, so a rerun may simply start), else says how to go on from it.
pub struct Guard<'a> {
    sink: Option<&'a JournalSink<'a>>,
    known: usize,
    armed: bool,
}

impl<'a> Guard<'a> {
    /// Watch the journal `sink` writes to, which held `known` swaps when opened.
    pub fn new(sink: Option<&'a JournalSink<'a>>, known: usize) -> Self {
        Guard { sink, known, armed: true }
    }

    /// The audit succeeded: the journal is for the caller to publish or remove.
    pub fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        let Some(sink) = self.sink.filter(|_| self.armed) else { return };
        let path = sink.writer.path();
        let swaps = self.known + sink.appended.load(Ordering::Relaxed);
        if swaps == 0 {
            let _ = std::fs::remove_file(path);
        } else {
            eprintln!(
                "note: {swaps} finished swap(s) are kept in {}: rerun with --resume to go on from them",
                path.display()
            );
        }
    }
}

impl Sink for JournalSink<'_> {
    fn baseline(&self, strategy: Strategy, classes: usize, score: &Dice) -> Result<()> {
        let record: Record<Dice, SwapScore> = Record::Baseline(journal::BaselineRecord {
            strategy: strategy.name().into(),
            classes,
            result: score.clone(),
        });
        self.writer.append(&record)
    }

    fn swap(&self, pair: usize, score: &SwapScore) -> Result<()> {
        let key = self.swaps.iter().find(|s| s.pair == pair).map(|s| s.key.clone()).unwrap_or_default();
        let record: Record<Dice, SwapScore> = Record::Swap(journal::SwapRecord { pair, key, result: score.clone() });
        self.writer.append(&record)?;
        self.appended.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Fingerprints of the evaluated models and data.
pub fn inputs(target: &Model, source: &Model, data_path: &Path, data: &Dataset) -> Result<Inputs> {
    let fp =
        |m: &Model| -> Result<Fingerprint> { Ok(Fingerprint { path: m.display_name(), sha256: model_sha256(m)? }) };
    Ok(Inputs {
        target: fp(target)?,
        source: fp(source)?,
        data: Fingerprint { path: data_path.display().to_string(), sha256: data_sha256(data) },
    })
}
