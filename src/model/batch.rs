//! Making a fixed batch-1 export batch-dynamic (many exports fix the batch at 1), so the
//! audit can run several images per call. The caller verifies the result on real data.

use anyhow::Result;
use onnx_protobuf::{NodeProto, ValueInfoProto};

use super::Model;
use crate::error::UserError;

fn set_dim0_symbolic(v: &mut ValueInfoProto) {
    let shape = v.type_.mut_or_insert_default().mut_tensor_type().shape.mut_or_insert_default();
    if let Some(d) = shape.dim.first_mut() {
        d.set_dim_param("batch".into());
    }
}

/// The model with dim 0 of its inputs and outputs symbolic, and intermediate shape hints
/// dropped (ONNX Runtime infers them again).
pub fn make_batch_dynamic(model: &Model) -> Result<Model> {
    let spec = model.input_spec()?;
    if spec.batch != Some(1) {
        return Err(UserError::BadFlag {
            flag: "--dynamic-batch",
            reason: format!("the input '{}' does not have a fixed batch of 1", spec.name),
        }
        .into());
    }
    let mut m = model.clone();
    let g = m.proto.graph.mut_or_insert_default();
    let inits: std::collections::HashSet<String> = g.initializer.iter().map(|t| t.name.clone()).collect();
    for i in g.input.iter_mut().filter(|i| !inits.contains(&i.name)) {
        set_dim0_symbolic(i);
    }
    for o in g.output.iter_mut() {
        set_dim0_symbolic(o);
    }
    g.value_info.clear();
    let mut out = Model::index(m.path.clone(), m.sha256.clone(), m.proto);
    out.upcast = model.upcast.clone();
    Ok(out)
}

/// The first node whose results depend on the images that share its run, if any:
/// `DynamicQuantizeLinear` quantizes activations with the range of the whole batch, so an
/// image's output changes with its batch mates.
pub fn batch_mates_matter(model: &Model) -> Option<&NodeProto> {
    model.proto.graph.node.iter().find(|n| n.op_type == "DynamicQuantizeLinear")
}
