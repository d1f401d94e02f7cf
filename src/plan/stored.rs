//! The target file as stored, and where a parameter the audit read lives in it.
//!
//! The audit reads models lifted (`model::lift`: Constant nodes made initializers,
//! Identity chains skipped, a Cast or Transpose of a stored tensor precomputed). A grafted
//! model must leave the file as it is but for the reused tensors, so the plan works on the
//! file's own graph: a parameter is followed back from the name the audit gave it to the
//! tensor the file stores (an initializer, or a Constant node's value) through the same
//! Identity, Cast and Transpose nodes, which are recorded as its `chain`.

use std::path::{Path, PathBuf};

use anyhow::Result;
use onnx_protobuf::{tensor_proto::DataLocation, GraphProto, Message, ModelProto, TensorProto};
use sha2::{Digest, Sha256};

use crate::error::bad_file;
use crate::model::{hex, tensor};

/// A model file parsed as stored, its external data read in (confined to its folder, as
/// `Model::load` reads it), nothing lifted.
#[derive(Clone)]
pub struct RawModel {
    /// The file.
    pub path: PathBuf,
    /// The parsed model.
    pub proto: ModelProto,
    /// The initializers whose data was external (the grafted model keeps them external).
    pub external: std::collections::BTreeSet<String>,
}

impl RawModel {
    /// Read `path`, refusing a file whose sha256 is not `sha256` (it changed since it was
    /// loaded for pairing).
    pub fn read(path: &Path, sha256: &str) -> Result<RawModel> {
        let bytes = crate::input::read(path)?;
        if hex(&Sha256::digest(&bytes)) != sha256 {
            return Err(bad_file(path, "the file changed while the plan was being made"));
        }
        let mut proto = ModelProto::parse_from_bytes(&bytes)
            .map_err(|e| bad_file(path, format!("not a valid ONNX model (protobuf decoding failed: {e})")))?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let g = proto.graph.mut_or_insert_default();
        let external = g
            .initializer
            .iter()
            .filter(|t| t.data_location.enum_value_or_default() == DataLocation::EXTERNAL)
            .map(|t| t.name.clone())
            .collect();
        let attr_tensors = g.node.iter_mut().flat_map(|n| n.attribute.iter_mut()).filter_map(|a| a.t.as_mut());
        for t in g.initializer.iter_mut().chain(attr_tensors) {
            tensor::internalize(t, &dir).map_err(|e| bad_file(path, format!("{e:#}")))?;
        }
        Ok(RawModel { path: path.to_path_buf(), proto, external })
    }

    /// The graph.
    pub fn graph(&self) -> &GraphProto {
        &self.proto.graph
    }
}

/// A tensor the file stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Slot {
    /// `graph.initializer[i]`.
    Initializer(usize),
    /// The `value` of `graph.node[i]`, a Constant.
    Constant(usize),
}

/// Where a value the audit read as a parameter is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The stored tensor.
    pub slot: Slot,
    /// Its name: the initializer's, or the Constant node's output.
    pub name: String,
    /// The nodes between it and the layer, layer side last (`Transpose(perm=[1, 0])`, ...).
    pub chain: Vec<String>,
}

/// Follow `value` back to the tensor the file stores (`None`: it is computed).
pub fn stored(g: &GraphProto, value: &str) -> Option<Stored> {
    let mut chain = Vec::new();
    let mut cur = value.to_string();
    for _ in 0..64 {
        if let Some(i) = g.initializer.iter().position(|t| t.name == cur) {
            chain.reverse();
            return Some(Stored { slot: Slot::Initializer(i), name: cur, chain });
        }
        let i = g.node.iter().position(|n| n.output.first().is_some_and(|o| *o == cur))?;
        let n = &g.node[i];
        let ints = |name: &str| n.attribute.iter().find(|a| a.name == name).map(|a| (a.i, a.ints.clone()));
        match n.op_type.as_str() {
            "Constant" if n.attribute.iter().any(|a| a.name == "value" && a.t.is_some()) => {
                chain.reverse();
                return Some(Stored { slot: Slot::Constant(i), name: cur, chain });
            }
            "Identity" => chain.push("Identity".to_string()),
            "Cast" => chain.push(format!("Cast(to={})", ints("to").map_or(0, |a| a.0))),
            "Transpose" => chain.push(format!("Transpose(perm={:?})", ints("perm").map(|a| a.1).unwrap_or_default())),
            _ => return None,
        }
        cur = n.input.first()?.clone();
    }
    None
}

/// The stored tensor at `slot`.
pub fn tensor_at(g: &GraphProto, slot: Slot) -> &TensorProto {
    match slot {
        Slot::Initializer(i) => &g.initializer[i],
        Slot::Constant(n) => g.node[n]
            .attribute
            .iter()
            .find(|a| a.name == "value")
            .and_then(|a| a.t.as_ref())
            .unwrap_or_else(|| TensorProto::default_instance()),
    }
}

/// The stored tensor at `slot`, to write.
pub fn tensor_at_mut(g: &mut GraphProto, slot: Slot) -> Option<&mut TensorProto> {
    match slot {
        Slot::Initializer(i) => g.initializer.get_mut(i),
        Slot::Constant(n) => g.node.get_mut(n)?.attribute.iter_mut().find(|a| a.name == "value")?.t.as_mut(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use onnx_protobuf::{AttributeProto, NodeProto};

    fn node(op: &str, input: &str, output: &str) -> NodeProto {
        let mut n = NodeProto::new();
        n.op_type = op.into();
        n.input = vec![input.into()];
        n.output = vec![output.into()];
        n
    }

    #[test]
    fn follows_identity_cast_and_transpose_to_the_stored_tensor() {
        let mut g = GraphProto::new();
        let mut w = TensorProto::new();
        w.name = "fc.weight".into();
        g.initializer.push(w);
        let mut t = node("Transpose", "fc.weight", "wt");
        let mut perm = AttributeProto::new();
        perm.name = "perm".into();
        perm.ints = vec![1, 0];
        t.attribute.push(perm);
        g.node.push(t);
        g.node.push(node("Identity", "wt", "wt_alias"));
        let mut c = NodeProto::new();
        c.op_type = "Constant".into();
        c.output = vec!["bias".into()];
        let mut v = AttributeProto::new();
        v.name = "value".into();
        v.t = Some(TensorProto::new()).into();
        c.attribute.push(v);
        g.node.push(c);
        g.node.push(node("Relu", "x", "y"));
        let s = stored(&g, "wt_alias").unwrap();
        assert_eq!(s.slot, Slot::Initializer(0));
        assert_eq!(s.name, "fc.weight");
        assert_eq!(s.chain, vec!["Transpose(perm=[1, 0])".to_string(), "Identity".to_string()]);
        let b = stored(&g, "bias").unwrap();
        assert_eq!((b.slot, b.name.as_str(), b.chain.len()), (Slot::Constant(2), "bias", 0));
        assert!(stored(&g, "y").is_none(), "a computed value is not stored");
    }
}
