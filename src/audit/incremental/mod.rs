//! Incremental evaluation: a swap at layer k changes only what is downstream of k. The
//! baseline runs once per chunk of images while keeping every tensor that enters a swapped
//! layer's downstream region (skip connections that cross it included); each swap then runs
//! only its region's subgraph, one session per layer shared by all kinds of that layer, with
//! the layer's own parameters as overridable inputs and everything else constant (so ONNX
//! Runtime still fuses it); a QDQ parameter's swap gets a session of its own with the
//! source's triple baked in (see `region`). Dice counts add up over chunks, so `--cache-mb`
//! bounds memory.
//! The regions run side by side on the engine's workers, the costliest first.

mod assemble;
pub mod labels;
mod region;
mod run;
pub mod schedule;
mod swaps;

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use anyhow::{bail, Context, Result};
use onnx_protobuf::{GraphProto, ModelProto, TensorProto};

use super::cost::{typed_value, CostModel, Probe};
use super::AuditJob;
use crate::engine::switches::switch;
use crate::engine::{Device, Engine, Runner};
use crate::model::graph::Topology;
use crate::model::{DType, Model, ParamSource};

/// One swapped layer's downstream region.
struct Region {
    /// Tensors it reads from outside (cached from the baseline run, or the image itself).
    frontier: Vec<String>,
    /// Its session (one worker at a time runs it).
    runner: Mutex<Runner>,
    /// Pairs (indices into `Pairing::pairs`) swapped at this layer.
    pairs: Vec<usize>,
}

/// A region before its session exists. Its model's bytes are assembled by the worker that
/// builds its session, and dropped once the session holds what it needs.
struct RegionModel {
    frontier: Vec<String>,
    pairs: Vec<usize>,
    /// FLOPs of all its swaps (downstream FLOPs x swaps), to run the costliest first.
    flops: f64,
    /// Its graph, without initializers.
    graph: GraphProto,
    /// The model's initializers it reads.
    initializers: Vec<usize>,
    /// Initializers replaced by a QDQ swap's triple.
    baked: Vec<TensorProto>,
    /// The swapped layer's node, for messages.
    node: String,
}

/// The plan: the baseline model with every frontier tensor as an extra output, and regions.
pub struct Plan {
    /// The baseline with the frontier tensors as outputs: one session per worker.
    cache_runners: Vec<Mutex<Runner>>,
    output: String,
    regions: Vec<Region>,
    /// Region indices, costliest (FLOPs downstream x swaps) first.
    order: Vec<usize>,
    workers: usize,
    bytes_per_image: usize,
    /// On CPU, the most images per run whose largest activation fits [`WORKING_SET`].
    batch_cap: Option<usize>,
    /// Whether the regions output labels (`labels`) instead of the model's float output.
    reduced: bool,
    /// Where the baseline run leaves the cached tensors, through an I/O binding (see
    /// [`cache_on`]); `None`: where ONNX Runtime returns outputs (host memory).
    cache_on: Option<Device>,
    /// When the baseline run keeps the image batches with the cache, for the regions that
    /// read the image (on the cache's device): the name of its copy among the baseline's
    /// outputs (see [`kept_image_name`]).
    kept_image: Option<String>,
    /// With one worker, whether its host work (counting labels, settling swaps) runs on a
    /// thread of its own beside the runs (see [`overlap_host`]).
    overlap_host: bool,
}

/// The baseline run's copy of the image batch (an `Identity` output), kept with the cache
/// under the input's name when the cache is bound to a device.
const KEPT_IMAGE: &str = "reuse_audit/kept_image";

/// A name for the kept image that no tensor or node of `g` uses: [`KEPT_IMAGE`], or it with
/// the first free `#2`, `#3`, ... (a model may name a tensor so, even its input: a second
/// producer would be refused, and a cached tensor of that name taken for the image).
fn kept_image_name(g: &GraphProto) -> String {
    let mut used: HashSet<&str> = HashSet::new();
    used.extend(g.input.iter().chain(&g.output).chain(&g.value_info).map(|v| v.name.as_str()));
    used.extend(g.initializer.iter().map(|t| t.name.as_str()));
    used.extend(g.sparse_initializer.iter().filter_map(|t| t.values.as_ref()).map(|t| t.name.as_str()));
    for n in &g.node {
        used.insert(n.name.as_str());
        used.extend(n.input.iter().chain(&n.output).map(String::as_str));
    }
    std::iter::once(KEPT_IMAGE.to_string())
        .chain((2..).map(|i| format!("{KEPT_IMAGE}#{i}")))
        .find(|name| !used.contains(name.as_str()))
        .unwrap_or_else(|| KEPT_IMAGE.to_string())
}

/// Where the cache is kept: on CUDA the baseline run's cached outputs are bound to the GPU's
/// memory (an I/O binding), so the tensors regions read never cross the bus.
/// `REUSE_AUDIT_CACHE_ON_DEVICE=0` keeps them in host memory instead; `=1` takes the binding
/// path on the CPU too (host memory either way: the tests use it to check it gives the same
/// numbers).
fn cache_on(engine: &Engine) -> Result<Option<Device>> {
    let on = switch("REUSE_AUDIT_CACHE_ON_DEVICE")?.unwrap_or(engine.device() == Device::Cuda);
    Ok(on.then(|| engine.device()))
}

/// Whether one worker's host work is pipelined beside its runs: on CUDA (where the runs are
/// the GPU's and the host work would leave it idle), not on the CPU (whose every core already
/// runs a worker). `REUSE_AUDIT_OVERLAP_HOST=1`/`0` forces it (the tests check on the CPU
/// that both paths give the same report bytes).
fn overlap_host(engine: &Engine) -> Result<bool> {
    Ok(switch("REUSE_AUDIT_OVERLAP_HOST")?.unwrap_or(engine.device() == Device::Cuda))
}

/// The cache budget without `--cache-mb`, MiB: a quarter of the GPU's free memory when the
/// cache is bound to the GPU (`nvidia-smi`; 1024 when it does not say), else 1024 of host
/// memory, or half the host memory there is room for ([`crate::data::memory::available`],
/// less `held`, the bytes the data set holds, under a `REUSE_AUDIT_MEMORY_MB` cap) when that
/// is less: a default cache larger than the machine has used to grow until the process was
/// killed, where a smaller one only cuts the set into more chunks. Returns the budget and,
/// when the room lowered it, why (for the plan's line on stderr). A quarter of the GPU
/// leaves the rest to the sessions' working memory, cuDNN's workspaces and handles; a
/// smaller budget costs no extra forward pass (each chunk's baseline covers its own images).
pub(super) fn default_cache_mb(cache_on: Option<Device>, held: u64) -> Result<(usize, Option<String>)> {
    const HOST: usize = 1024;
    if let Some(Device::Cuda) = cache_on {
        return Ok((crate::engine::hardware::gpu_free_mib().map_or(HOST, |free| (free / 4).max(HOST)), None));
    }
    let Some(room) = crate::data::memory::available()? else { return Ok((HOST, None)) };
    let have = if room.cap { room.bytes.saturating_sub(held) } else { room.bytes };
    let half = usize::try_from((have / 2) >> 20).unwrap_or(usize::MAX);
    Ok(match half < HOST {
        true => {
            (half, Some(format!("half the {} of memory available, {}", crate::data::memory::human(have), room.source)))
        }
        false => (HOST, None),
    })
}

/// Bytes of one activation tensor a CPU worker should keep in its core's cache: with
/// workers side by side, small batches that stay in L2 beat large ones (measured: the
/// bundled UNet audits about 7% faster at 2 to 8 images per run than at 16).
const WORKING_SET: usize = 1 << 20;

fn header(model: &Model) -> ModelProto {
    let mut m = ModelProto::new();
    m.ir_version = model.proto.ir_version.max(4);
    m.opset_import = model.proto.opset_import.clone();
    m.producer_name = "reuse-audit (downstream region)".into();
    m
}

impl Plan {
    /// Build the plan, or say why this model cannot be evaluated incrementally.
    pub fn new(engine: &Engine, job: &AuditJob, probe: &Probe) -> Result<Plan> {
        let model = job.target;
        let g = &model.proto.graph;
        let topo = Topology::of(model);
        let shapes = &probe.shapes;
        let types = probe.elem_types(model);
        let graph_inputs: HashSet<&str> = g.input.iter().map(|i| i.name.as_str()).collect();
        let output = g.output.first().map(|o| o.name.clone()).unwrap_or_default();
        let dynamic_batch = job.input.batch.is_none();
        // A region holding a node with subgraphs would need the tensors they read from
        // outside as inputs too; not supported yet.
        if let Some(n) = g.node.iter().find(|n| crate::model::control_flow::subgraphs(n).next().is_some()) {
            bail!(
                "the graph has control flow ({} '{}'); regions with subgraphs are not supported yet",
                n.op_type,
                n.name
            );
        }
        let mut by_layer: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, p) in job.pairing.pairs.iter().enumerate() {
            if !job.runs(i) {
                continue;
            }
            let qdq = matches!(p.target.source, ParamSource::Dequantized(_));
            if !qdq && (!matches!(p.target.source, ParamSource::Initializer(_)) || p.target.dtype != DType::Float32) {
                bail!("parameter '{}' is not a float32 initializer", p.target.name);
            }
            by_layer.entry(p.layer.node_index).or_default().push(i);
        }
        let cost = CostModel::new(model, shapes);
        // Labels computed in the regions' sessions, where wanted and applicable.
        let opset = model
            .proto
            .opset_import
            .iter()
            .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
            .map_or(0, |o| o.version);
        let wants_labels = labels::wanted(engine)?;
        let reduction = shapes.get(&output).filter(|_| wants_labels).and_then(|s| {
            let axis = if s.len() == 2 { 1 } else { job.output.nchw_axes()[1] };
            labels::Reduction::of(s, axis, job.threshold, opset)
        });
        let cx = region::Context { model, topo: &topo, shapes, types: &types, dynamic_batch, probe };
        let regions_span = crate::profile::span("plan: region graphs");
        let mut built: Vec<RegionModel> = Vec::new();
        let mut cached: Vec<String> = Vec::new();
        for (&node, pairs) in &by_layer {
            let region::RegionGraph { graph: sub, initializers, frontier, inside } = region::build(&cx, node, &output)?;
            for x in &frontier {
                if !graph_inputs.contains(x.as_str()) && !cached.contains(x) {
                    cached.push(x.clone());
                }
            }
            // A parameter shared with a layer outside the region (weight tying) would change
            // results the cache already holds. Shape/Size only read its shape, which a swap
            // keeps (exporters make zero biases that way).
            let reads_values = |n: usize| !matches!(g.node[n].op_type.as_str(), "Shape" | "Size");
            for &p in pairs {
                for name in region::written(model, &job.pairing.pairs[p].target)? {
                    if topo.consumers.get(&name).is_some_and(|c| c.iter().any(|&n| !inside[n] && reads_values(n))) {
                        bail!("parameter '{name}' is also used outside the downstream region of its layer");
                    }
                }
            }
            // Float parameters share one session per layer, as overridable inputs
            // (initializer + input); each QDQ swap gets a session with its triple baked in.
            let (float, quantized): (Vec<usize>, Vec<usize>) =
                pairs.iter().partition(|&&p| job.values.triples[p].is_none());
            let groups = std::iter::once(float).filter(|f| !f.is_empty()).chain(quantized.into_iter().map(|p| vec![p]));
            let downstream = cost.downstream(&topo, model, node);
            for group in groups {
                // Every pair that runs is an input, so the region is the same graph whichever
                // of them this run computes (a resumed or sharded run: see `audit::progress`).
                let computed: Vec<usize> = group.iter().copied().filter(|&p| job.computes(p)).collect();
                if computed.is_empty() {
                    continue;
                }
                let mut sub = sub.clone();
                let mut baked = Vec::new();
                for &p in &group {
                    let target = &job.pairing.pairs[p].target;
                    match &job.values.triples[p] {
                        Some((_, source)) => baked.extend(region::baked(model, target, source)?),
                        None if !sub.input.iter().any(|i| i.name == target.name) => {
                            sub.input.push(typed_value(&target.name, 1))
                        }
                        None => {}
                    }
                }
                match &reduction {
                    Some(r) => r.append(&mut sub, &output, opset),
                    None => sub.output.push(g.output[0].clone()),
                }
                built.push(RegionModel {
                    frontier: frontier.clone(),
                    flops: downstream * computed.len() as f64,
                    pairs: computed,
                    graph: sub,
                    initializers: initializers.clone(),
                    baked,
                    node: g.node[node].name.clone(),
                });
            }
        }
        drop(regions_span);
        let t = crate::profile::span("plan: baseline model");
        let cache_on = cache_on(engine)?;
        // With the cache bound to the device, the images the first layers' regions read are
        // kept there too (one upload per batch, in the baseline run, instead of one per swap).
        let image = &job.input.name;
        let image_kept = cache_on.is_some() && built.iter().any(|r| r.frontier.contains(image));
        let kept_image = image_kept.then(|| kept_image_name(g));
        let mut full = model.clone();
        let fg = full.proto.graph.mut_or_insert_default();
        for name in &cached {
            fg.output.push(typed_value(name, types.get(name).copied().unwrap_or(0)));
        }
        if let Some(kept) = &kept_image {
            let mut copy = onnx_protobuf::NodeProto::new();
            copy.op_type = "Identity".into();
            copy.name = kept.clone();
            copy.input = vec![image.clone()];
            copy.output = vec![kept.clone()];
            fg.node.push(copy);
            fg.output.push(typed_value(kept, 1));
        }
        let full = full.to_bytes()?;
        drop(t);
        let t = crate::profile::span("plan: sessions (wall)");
        let Sessions { cache_runners, regions, order } =
            start_sessions(engine, &full, &assemble::Encoded::of(g)?, &header(model), built)?;
        drop(t);
        let bytes_per_image = cached
            .iter()
            .chain(image_kept.then_some(image))
            .map(|n| {
                let size = types.get(n).map_or(8, |&t| crate::model::tensor::onnx_type_size(t));
                shapes.get(n).map(|s| s.iter().product::<usize>()).unwrap_or(0) * size
            })
            .sum();
        let largest = shapes
            .iter()
            .filter(|(n, _)| types.get(*n) == Some(&1))
            .map(|(_, s)| s.iter().product::<usize>() * 4)
            .max()
            .unwrap_or(0);
        let batch_cap = (engine.device() == Device::Cpu).then(|| (WORKING_SET / largest.max(1)).max(1));
        let workers = engine.workers();
        let reduced = reduction.is_some();
        Ok(Plan {
            cache_runners,
            output,
            regions,
            order,
            workers,
            bytes_per_image,
            batch_cap,
            reduced,
            cache_on,
            kept_image,
            overlap_host: overlap_host(engine)?,
        })
    }
}

impl Plan {
    /// Release every session on a thread of the engine's ([`Engine::release`]): ONNX
    /// Runtime frees a session's kernels and weights one by one, tens of milliseconds for a
    /// few dozen sessions, which then overlap the verdict and the report.
    pub fn close(self, engine: &Engine) {
        engine.release(self);
    }
}

/// The running parts of a plan.
struct Sessions {
    cache_runners: Vec<Mutex<Runner>>,
    regions: Vec<Region>,
    /// Region indices in the order they run.
    order: Vec<usize>,
}

/// Sessions for the baseline (one per worker) and every region, built on the workers since
/// session set-up (graph optimization, weight packing) is single-threaded; a region's model
/// is assembled from `encoded` by the worker that builds its session. Returns them with the
/// order the regions run in: costliest first.
fn start_sessions(
    engine: &Engine,
    baseline: &[u8],
    encoded: &assemble::Encoded,
    head: &ModelProto,
    built: Vec<RegionModel>,
) -> Result<Sessions> {
    let mut order: Vec<usize> = (0..built.len()).collect();
    order.sort_by(|&a, &b| built[b].flops.total_cmp(&built[a].flops).then(a.cmp(&b)));
    let workers = engine.workers();
    // `None`: a baseline session; `Some(r)`: region r's, assembled in its builder's buffer.
    let items: Vec<Option<usize>> = std::iter::repeat_n(None, workers).chain(order.iter().map(|&r| Some(r))).collect();
    let builders = engine.build_threads();
    let buffers: Vec<Mutex<Vec<u8>>> = (0..builders).map(|_| Mutex::new(Vec::new())).collect();
    let mut sessions = schedule::parallel_map(builders, &items, |w, item| match *item {
        None => engine.worker_session(baseline),
        Some(r) => {
            let m = &built[r];
            let mut bytes = buffers[w].lock().map_err(|_| anyhow::anyhow!("a model buffer was poisoned"))?;
            assemble::model_bytes(head, &m.graph, &m.initializers, &m.baked, encoded, &mut bytes)
                .with_context(|| format!("the region of layer node '{}'", m.node))?;
            engine.worker_session(&bytes)
        }
    })?
    .into_iter();
    let cache_runners = sessions.by_ref().take(workers).map(Mutex::new).collect();
    let mut runners: Vec<Option<Runner>> = (0..built.len()).map(|_| None).collect();
    for (&r, runner) in order.iter().zip(sessions) {
        runners[r] = Some(runner);
    }
    let mut regions = Vec::with_capacity(built.len());
    for (runner, RegionModel { frontier, pairs, .. }) in runners.into_iter().zip(built) {
        let runner = runner.ok_or_else(|| anyhow::anyhow!("a region has no session"))?;
        regions.push(Region { frontier, runner: Mutex::new(runner), pairs });
    }
    Ok(Sessions { cache_runners, regions, order })
}
