//! The compute limit of an exact audit: tensor shapes from one probe run of ONNX Runtime
//! (every intermediate tensor exposed as an output), FLOPs per node, the FLOPs downstream of
//! each swapped layer, and `ideal_speedup = (swaps + 1) / (1 + Σ downstream / total)`.

use std::collections::{HashMap, HashSet};

use anyhow::Result;
use onnx_protobuf::{type_proto, TypeProto, ValueInfoProto};

use crate::engine::{Engine, Runner, View};
use crate::model::graph::{elem_types, Topology};
use crate::model::layout::Layout;
use crate::model::Model;

/// FLOPs of every node for one input image, and what lies downstream of each node.
#[derive(Debug, Clone)]
pub struct CostModel {
    /// FLOPs per node (multiply-add = 2).
    pub node_flops: Vec<f64>,
    /// Sum over all nodes.
    pub total: f64,
}

/// What one probe run of ONNX Runtime says about every tensor the graph computes.
#[derive(Debug, Clone, Default)]
pub struct Probe {
    /// Shape of every tensor for one image, `[1, c, h, w]` input; the input itself included.
    pub shapes: HashMap<String, Vec<usize>>,
    /// Element type (ONNX code) of every node output and of the input, as ONNX Runtime
    /// computed it: the last word where [`elem_types`]'s rules say nothing.
    pub types: HashMap<String, i32>,
    /// For a batch-dynamic model, the axes of each tensor whose size follows the batch (from
    /// a second run on two images, [`Probe::find_batch_axes`]); `None`: not probed, axis 0
    /// of a float tensor is taken to be the batch. An `Unsqueeze` at 0 moves the batch to
    /// axis 1, a `Reshape` may fold it into another dim.
    pub batch_axes: Option<HashMap<String, Vec<usize>>>,
}

impl Probe {
    /// Element types from the graph's rules, overridden by what the probe saw.
    pub fn elem_types(&self, model: &Model) -> HashMap<String, i32> {
        let mut t = elem_types(model);
        t.extend(self.types.iter().map(|(k, v)| (k.clone(), *v)));
        t
    }

    /// The axes of tensor `name` that follow the batch: as probed, else axis 0.
    pub fn batch_axes_of(&self, name: &str) -> Vec<usize> {
        self.batch_axes.as_ref().and_then(|m| m.get(name).cloned()).unwrap_or_else(|| vec![0])
    }
}

/// Run the model once on `input` (one image of `chw`, fed as `[1, c, h, w]` or,
/// channels-last, `[1, h, w, c]`) with every node output exposed
/// as a graph output. The outputs are declared without a type, so ONNX Runtime infers each
/// one (our rules never have to be right for the probe to run) and reports it.
pub fn probe_shapes(
    engine: &Engine,
    model: &Model,
    input_name: &str,
    layout: Layout,
    chw: [usize; 3],
) -> Result<Probe> {
    plan_probe(engine, model, input_name, false, layout, chw)
}

/// The shape probe an incremental plan is built on: [`probe_shapes`], and for a
/// batch-dynamic model (`dynamic_batch`) a second run of the same session on two images,
/// whose shapes give each tensor's axes that follow the batch ([`Probe::batch_axes`]). A
/// model that does not run on two images leaves them unset.
pub fn plan_probe(
    engine: &Engine,
    model: &Model,
    input_name: &str,
    dynamic_batch: bool,
    layout: Layout,
    chw: [usize; 3],
) -> Result<Probe> {
    let mut m = model.clone();
    let g = m.proto.graph.mut_or_insert_default();
    let mut existing: HashSet<String> = g.output.iter().map(|o| o.name.clone()).collect();
    let names: Vec<String> = g
        .node
        .iter()
        .flat_map(|n| n.output.iter().cloned())
        .filter(|o| !o.is_empty() && existing.insert(o.clone()))
        .collect();
    for name in names {
        let mut v = ValueInfoProto::new();
        v.name = name;
        g.output.push(v);
    }
    // A session on the calling thread, so no pool spins beside what follows; unoptimized, as
    // only the shapes and types are wanted (a graph that runs only as ONNX Runtime optimizes
    // it is probed as the audit runs it).
    let bytes = m.to_bytes()?;
    let [c, h, w] = chw;
    let image = |batch: usize| {
        let [a, b, d, e] = layout.from_nchw([batch, c, h, w]);
        ndarray::Array4::from_elem((a, b, d, e), 0.5f32)
    };
    let one = image(1);
    let run = |runner: &mut Runner, x: &ndarray::Array4<f32>| {
        runner.run_shapes(&[(input_name, View::F32(x.view().into_dyn()))])
    };
    let (mut runner, shapes) = match engine.probe_session(&bytes).and_then(|mut r| Ok((run(&mut r, &one)?, r))) {
        Ok((shapes, r)) => (r, shapes),
        Err(_) => {
            let mut r = engine.worker_session(&bytes)?;
            let shapes = run(&mut r, &one)?;
            (r, shapes)
        }
    };
    let mut probe = Probe::default();
    for (name, shape, ty) in shapes {
        probe.types.insert(name.clone(), ty);
        probe.shapes.insert(name, shape);
    }
    probe.shapes.insert(input_name.to_string(), one.shape().to_vec());
    probe.types.insert(input_name.to_string(), 1);
    if dynamic_batch {
        if let Ok(two) = run(&mut runner, &image(2)) {
            let axes = two
                .into_iter()
                .filter_map(|(name, two, _)| {
                    let one = probe.shapes.get(&name)?;
                    let differ = (0..one.len()).filter(|&i| one.len() != two.len() || one[i] != two[i]).collect();
                    Some((name, differ))
                })
                // The input: its batch leads in either layout.
                .chain(std::iter::once((input_name.to_string(), vec![0])))
                .collect();
            probe.batch_axes = Some(axes);
        }
    }
    Ok(probe)
}

/// A graph value of element type `ty` and unknown shape.
pub fn typed_value(name: &str, ty: i32) -> ValueInfoProto {
    shaped_value(name, ty, None)
}

/// A graph value of element type `ty`, with its shape when known (`None` dims are symbolic:
/// the batch). Knowing ranks and sizes lets ONNX Runtime pick its fast convolution layouts.
pub fn shaped_value(name: &str, ty: i32, dims: Option<&[Option<usize>]>) -> ValueInfoProto {
    let mut tt = type_proto::Tensor::new();
    tt.elem_type = ty;
    if let Some(dims) = dims {
        let mut shape = onnx_protobuf::TensorShapeProto::new();
        for d in dims {
            let mut dim = onnx_protobuf::tensor_shape_proto::Dimension::new();
            match d {
                Some(v) => dim.set_dim_value(*v as i64),
                None => dim.set_dim_param("batch".into()),
            }
            shape.dim.push(dim);
        }
        tt.shape = Some(shape).into();
    }
    let mut t = TypeProto::new();
    t.set_tensor_type(tt);
    let mut v = ValueInfoProto::new();
    v.name = name.into();
    v.type_ = Some(t).into();
    v
}

fn numel(s: &[usize]) -> f64 {
    s.iter().product::<usize>() as f64
}

impl CostModel {
    /// FLOPs per node from the probed shapes.
    pub fn new(model: &Model, shapes: &HashMap<String, Vec<usize>>) -> CostModel {
        let g = &model.proto.graph;
        let dims = |name: &str| -> Option<Vec<usize>> {
            shapes.get(name).cloned().or_else(|| {
                g.initializer
                    .iter()
                    .find(|t| t.name == name)
                    .map(|t| t.dims.iter().map(|&d| d.max(0) as usize).collect())
            })
        };
        let node_flops: Vec<f64> = g
            .node
            .iter()
            .map(|n| {
                let out = n.output.first().and_then(|o| dims(o)).unwrap_or_default();
                let inp = n.input.first().and_then(|i| dims(i)).unwrap_or_default();
                let w = n.input.get(1).and_then(|i| dims(i)).unwrap_or_default();
                let has_bias = n.input.get(2).is_some_and(|b| !b.is_empty());
                let kernel: f64 = n
                    .attribute
                    .iter()
                    .find(|a| a.name == "kernel_shape")
                    .map(|a| a.ints.iter().product::<i64>() as f64)
                    .unwrap_or(1.0);
                match n.op_type.as_str() {
                    "Conv" if w.len() >= 2 => numel(&out) * (2.0 * numel(&w[1..]) + f64::from(u8::from(has_bias))),
                    "ConvTranspose" if w.len() >= 2 => {
                        numel(&inp) * 2.0 * numel(&w[1..]) + if has_bias { numel(&out) } else { 0.0 }
                    }
                    "Gemm" | "MatMul" => numel(&out) * 2.0 * inp.last().copied().unwrap_or(1) as f64,
                    "BatchNormalization" => 2.0 * numel(&out),
                    "MaxPool" | "AveragePool" => numel(&out) * kernel,
                    "GlobalAveragePool" | "GlobalMaxPool" | "ReduceMean" | "ReduceSum" | "ReduceMax" => numel(&inp),
                    "Resize" | "Upsample" => 4.0 * numel(&out),
                    "Shape" | "Constant" | "Identity" | "Reshape" | "Flatten" | "Squeeze" | "Unsqueeze" | "Cast" => 0.0,
                    _ => n.output.iter().filter_map(|o| dims(o)).map(|d| numel(&d)).sum(),
                }
            })
            .collect();
        let total = node_flops.iter().sum();
        CostModel { node_flops, total }
    }

    /// FLOPs downstream of a node (itself included).
    pub fn downstream(&self, topo: &Topology, model: &Model, node: usize) -> f64 {
        topo.downstream(model, node).iter().zip(&self.node_flops).filter(|(d, _)| **d).map(|(_, f)| f).sum()
    }

    /// The most an exact strategy can gain over naive on compute, for swaps at these nodes
    /// (one entry per swap: a BN layer audited for four kinds appears four times).
    pub fn ideal_speedup(&self, topo: &Topology, model: &Model, swap_nodes: &[usize]) -> f64 {
        let mut cache: HashMap<usize, f64> = HashMap::new();
        let frac: f64 = swap_nodes
            .iter()
            .map(|&n| *cache.entry(n).or_insert_with(|| self.downstream(topo, model, n)) / self.total.max(1.0))
            .sum();
        (swap_nodes.len() as f64 + 1.0) / (1.0 + frac)
    }

    /// `1 + Σ downstream / total`: the audit's unavoidable work in full forward passes.
    pub fn forward_equivalents(&self, topo: &Topology, model: &Model, swap_nodes: &[usize]) -> f64 {
        (swap_nodes.len() as f64 + 1.0) / self.ideal_speedup(topo, model, swap_nodes)
    }
}
