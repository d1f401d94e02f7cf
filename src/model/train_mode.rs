//! BatchNormalization exported in training mode (a PyTorch model exported after `model.train()`
//! with `training=TrainingMode.PRESERVE`): ONNX Runtime then normalizes each batch with its own
//! mean and variance, not the stored running statistics. Every score of such a graph depends on
//! which images share a batch, and a swap of RM or RV changes nothing (their rows would read
//! "delta 0, reusable"), so a model that runs on images is refused; `inspect` warns.
//!
//! Training mode is `training_mode = 1` from opset 14 on; below it, as ONNX Runtime decides, a
//! node with more than one output (the running and saved statistics only training mode writes).

use onnx_protobuf::NodeProto;

use super::Model;

/// The main graph's BatchNormalization nodes that run in training mode, by node name (or the
/// first output where unnamed), with their 1-based BN layer number, in graph order.
pub fn training_bn(model: &Model) -> Vec<(usize, String)> {
    let opset =
        model.proto.opset_import.iter().find(|o| o.domain.is_empty() || o.domain == "ai.onnx").map_or(0, |o| o.version);
    model
        .proto
        .graph
        .node
        .iter()
        .filter(|n| n.op_type == "BatchNormalization" && (n.domain.is_empty() || n.domain == "ai.onnx"))
        .enumerate()
        .filter(|(_, n)| trains(n, opset))
        .map(|(i, n)| {
            (i + 1, if n.name.is_empty() { n.output.first().cloned().unwrap_or_default() } else { n.name.clone() })
        })
        .collect()
}

/// Whether one BatchNormalization node normalizes with batch statistics at `opset`.
fn trains(n: &NodeProto, opset: i64) -> bool {
    if opset >= 14 {
        n.attribute.iter().any(|a| a.name == "training_mode" && a.i != 0)
    } else {
        n.output.iter().filter(|o| !o.is_empty()).count() > 1
    }
}

/// The sentence that says what is wrong and how to fix it, or none for a model in inference mode.
pub fn reason(model: &Model) -> Option<String> {
    let bn = training_bn(model);
    let (layer, node) = bn.first()?;
    Some(format!(
        "{} BatchNormalization layer(s) run in training mode (first: bn {layer} '{node}'): ONNX Runtime normalizes \
         each batch with its own mean and variance, so every score depends on which images share a batch and the \
         running mean and variance (RM, RV) are never read; re-export the model in inference mode \
         (model.eval() before torch.onnx.export)",
        bn.len()
    ))
}
