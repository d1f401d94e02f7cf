//! GroupNorm as PyTorch's TorchScript exporter writes it below opset 18: `Reshape` to
//! `N x groups x -1`, `InstanceNormalization` whose scale and bias are constants 1 and 0
//! (one per group), `Reshape` back, then `Mul` by the GroupNorm's weight and `Add` of its bias.
//! The InstanceNormalization is a norm layer whose RW/RB are those placeholders, the same in
//! every model: their swap reads "delta 0, reusable" while the GroupNorm's own weight and
//! bias are never swapped. Such layers are left out of the scan and listed as not audited
//! with the reason (the reuse shares are then withheld), and a warning says how to export
//! GroupNorm as one node.

use std::collections::HashSet;

use crate::model::graph::Topology;
use crate::model::layers::LayerScan;
use crate::model::{Kind, Model};
use crate::pair::Pairing;

/// The `not_audited` reason of such a layer's RW and RB.
pub const REASON: &str = "InstanceNormalization with constant scale 1 and bias 0 after a Reshape: a GroupNorm exported as Reshape -> InstanceNormalization -> Reshape -> Mul -> Add, whose weight and bias (read by the Mul and Add) are not audited";

/// Node indices of the InstanceNormalization layers of `layers` that are such a
/// decomposition: input made by a `Reshape`, RW all 1 and RB all 0.
pub fn placeholder_nodes(model: &Model, layers: &LayerScan) -> HashSet<usize> {
    let topo = Topology::of(model);
    let nodes = &model.proto.graph.node;
    let all = |l: &crate::model::layers::Layer, kind: Kind, v: f64| {
        l.param(kind).and_then(|p| model.values(p).ok()).is_some_and(|a| a.iter().all(|&x| x == v))
    };
    layers
        .layers
        .iter()
        .filter(|l| l.op == "InstanceNormalization")
        .filter(|l| {
            let input = nodes[l.node_index].input.first();
            input.and_then(|i| topo.producer.get(i)).is_some_and(|&p| nodes[p].op_type == "Reshape")
        })
        .filter(|l| all(l, Kind::RW, 1.0) && all(l, Kind::RB, 0.0))
        .map(|l| l.node_index)
        .collect()
}

/// Drop the pairs of such layers; a warning naming them (`None` when there are none).
pub fn leave_out(model: &Model, layers: &LayerScan, pairing: &mut Pairing) -> Option<String> {
    let off = placeholder_nodes(model, layers);
    let mut names: Vec<String> = Vec::new();
    pairing.pairs.retain(|p| {
        let keep = !off.contains(&p.layer.node_index);
        if !keep && !names.contains(&p.layer.label()) {
            names.push(p.layer.label());
        }
        keep
    });
    if names.is_empty() {
        return None;
    }
    Some(format!(
        "{} norm layer(s) ({}) are GroupNorms exported as Reshape -> InstanceNormalization (constant scale 1, bias 0) -> Reshape -> Mul -> Add: the InstanceNormalization's constants are not the GroupNorm's weight and bias, which are not audited (listed as not audited; no reuse share). Export GroupNorm as one GroupNormalization node to audit them: torch.onnx.export(..., dynamo=True, optimize=False, opset_version=21)",
        names.len(),
        names.join(", ")
    ))
}
