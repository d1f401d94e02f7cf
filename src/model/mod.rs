//! Loading ONNX models (inline or external data) and reading/replacing their parameters.

pub mod batch;
pub mod control_flow;
pub mod elem_types;
pub mod folding;
pub mod graph;
pub mod head;
pub mod layers;
pub mod layout;
pub mod lift;
pub mod quantized;
pub mod random;
pub mod stride;
pub mod tensor;
pub mod tied;
pub mod train_mode;
pub mod upcast;
pub mod validate;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ndarray::ArrayD;
use onnx_protobuf::{Message, ModelProto, TensorProto};
use sha2::{Digest, Sha256};

pub use layers::{Family, Kind, Layer, Param};
pub use tensor::DType;

use crate::error::bad_file;

/// Where a parameter tensor lives in the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamSource {
    /// `graph.initializer[i]`.
    Initializer(usize),
    /// The `value` attribute of `graph.node[i]`, a `Constant` node.
    Constant(usize),
    /// The output of `graph.node[i]`, a `DequantizeLinear` of stored tensors: a QDQ
    /// parameter, whose values are dequantized and whose swap replaces its whole
    /// (quantized tensor, scale, zero point) triple (see [`quantized::qdq`]).
    Dequantized(usize),
}

/// A loaded ONNX model with every tensor's data held in memory.
#[derive(Clone)]
pub struct Model {
    /// The file it was read from.
    pub path: PathBuf,
    /// sha256 of the `.onnx` file's bytes (hex).
    pub sha256: String,
    /// The parsed model, external data already read in.
    pub proto: ModelProto,
    initializers: HashMap<String, usize>,
    constants: HashMap<String, usize>,
    identities: HashMap<String, String>,
    /// Initializers lifted from (or now read past) Constant/Identity/Cast nodes on load,
    /// with the node they came from, for messages.
    lifted: HashMap<String, String>,
    /// How the file computed in float16/bfloat16 before it was made to compute in float32 on
    /// load ([`upcast`]); `None` for a float32 model.
    pub upcast: Option<upcast::Upcast>,
}

impl Model {
    /// Read an ONNX file; external data is read from the model's folder and no further.
    pub fn load(path: &Path) -> Result<Model> {
        let bytes = crate::input::read(path)?;
        Model::from_bytes(&bytes, path)
    }

    /// Parse and check the bytes of an ONNX file as [`Model::load`] does: `path` names the
    /// file in messages, and its folder is where external data is read from (and no
    /// further). The fuzz target `onnx_model` enters here.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Model> {
        let mut proto = ModelProto::parse_from_bytes(bytes).map_err(|e| {
            bad_file(path, format!("not a valid ONNX model (protobuf decoding failed: {e}); is the file truncated?"))
        })?;
        if proto.graph.is_none() || proto.graph.node.is_empty() {
            return Err(bad_file(path, "not a valid ONNX model: it has no graph nodes"));
        }
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };
        let corrupt = |why: String| bad_file(path, format!("corrupt file: {why}"));
        let graph = proto.graph.mut_or_insert_default();
        validate::unique_names(graph).map_err(corrupt)?;
        validate::acyclic(graph).map_err(corrupt)?;
        if let Some(order) = validate::topological_order(graph).map_err(corrupt)? {
            let mut nodes: Vec<Option<onnx_protobuf::NodeProto>> = graph.node.drain(..).map(Some).collect();
            graph.node = order.into_iter().filter_map(|i| nodes[i].take()).collect();
        }
        let tensors = graph
            .initializer
            .iter_mut()
            .chain(graph.node.iter_mut().flat_map(|n| n.attribute.iter_mut().filter_map(|a| a.t.as_mut())));
        for t in tensors {
            // Dims first: external data is read by them.
            validate::dims(t).map_err(corrupt)?;
            tensor::internalize(t, &dir).map_err(|e| bad_file(path, format!("{e:#}")))?;
            validate::data(t).map_err(corrupt)?;
        }
        // Before anything reads it: matching, layers, swaps and RMSE all see float32.
        let upcast = upcast::upcast(graph).map_err(|why| bad_file(path, why))?;
        let sha256 = hex(&Sha256::digest(bytes));
        let mut model = Model::index(path.to_path_buf(), sha256, proto);
        model.upcast = upcast;
        Ok(model)
    }

    /// Build the lookup tables of a parsed model (one that computes in float32: a half one is
    /// made so first by [`upcast::upcast`], as [`Model::from_bytes`] does; `upcast` is left
    /// `None` here). Parameters held in Constant nodes or behind Identity/Cast nodes are lifted into
    /// initializers first (see [`lift`]); the model computes the same outputs.
    pub fn index(path: PathBuf, sha256: String, mut proto: ModelProto) -> Model {
        let lifted = match proto.graph.as_mut() {
            Some(g) => lift::lift(g),
            None => HashMap::new(),
        };
        let g = &proto.graph;
        let initializers = g.initializer.iter().enumerate().map(|(i, t)| (t.name.clone(), i)).collect();
        let mut constants = HashMap::new();
        let mut identities = HashMap::new();
        for (i, n) in g.node.iter().enumerate() {
            match n.op_type.as_str() {
                "Constant" if n.attribute.iter().any(|a| a.name == "value" && a.t.is_some()) => {
                    if let Some(o) = n.output.first() {
                        constants.insert(o.clone(), i);
                    }
                }
                "Identity" => {
                    if let (Some(i), Some(o)) = (n.input.first(), n.output.first()) {
                        identities.insert(o.clone(), i.clone());
                    }
                }
                _ => {}
            }
        }
        Model { path, sha256, proto, initializers, constants, identities, lifted, upcast: None }
    }

    /// The node an initializer was lifted from on load (`Constant node 'w1'`), if it was.
    pub fn lifted_from(&self, initializer: &str) -> Option<&str> {
        self.lifted.get(initializer).map(String::as_str)
    }

    /// Every lifted initializer with its node, sorted by name.
    pub fn lifted(&self) -> Vec<(&str, &str)> {
        let mut v: Vec<(&str, &str)> = self.lifted.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        v.sort();
        v
    }

    /// The file name, for messages.
    pub fn display_name(&self) -> String {
        self.path.display().to_string()
    }

    /// Follow Identity nodes from a node input to the initializer or Constant that
    /// holds the tensor, returning its name and location.
    pub fn resolve(&self, name: &str) -> Option<(String, ParamSource)> {
        let mut cur = name.to_string();
        for _ in 0..64 {
            if let Some(&i) = self.initializers.get(&cur) {
                return Some((cur, ParamSource::Initializer(i)));
            }
            if let Some(&i) = self.constants.get(&cur) {
                return Some((cur, ParamSource::Constant(i)));
            }
            cur = self.identities.get(&cur)?.clone();
        }
        None
    }

    /// The tensor proto of a parameter (of a QDQ parameter: its quantized tensor).
    pub fn tensor(&self, src: ParamSource) -> &TensorProto {
        let g = &self.proto.graph;
        match src {
            ParamSource::Initializer(i) => &g.initializer[i],
            ParamSource::Constant(n) => constant_tensor(&g.node[n]),
            ParamSource::Dequantized(n) => match g.node[n].input.first().and_then(|q| self.resolve(q)) {
                Some((_, s)) if !matches!(s, ParamSource::Dequantized(_)) => self.tensor(s),
                _ => TensorProto::default_instance(),
            },
        }
    }

    /// The values of a parameter as an f64 array of its ONNX dims (a QDQ parameter's
    /// dequantized values), with the file and tensor named on error.
    pub fn values(&self, p: &Param) -> Result<ArrayD<f64>> {
        if let ParamSource::Dequantized(n) = p.source {
            return quantized::qdq::at(self, n)
                .and_then(|d| quantized::qdq::dequantize(self, &d))
                .map_err(|e| bad_file(&self.path, format!("{e:#}")));
        }
        tensor::decode(self.tensor(p.source)).map_err(|e| match self.lifted_from(&p.name) {
            Some(node) => bad_file(&self.path, format!("{e:#} (held by {node})")),
            None => bad_file(&self.path, format!("{e:#}")),
        })
    }

    /// Replace a parameter's values (same number, row-major: a slice, a `Vec` or an
    /// ndarray array/view), keeping its shape and element type. A QDQ parameter is
    /// replaced as a triple instead ([`Model::set_triple`]).
    pub fn set_values<'a>(&mut self, p: &Param, values: impl IntoIterator<Item = &'a f64>) -> Result<()> {
        if let ParamSource::Dequantized(_) = p.source {
            anyhow::bail!("'{}' is quantized (QDQ): it is replaced as a (q, scale, zero point) triple", p.name);
        }
        tensor::set_values(self.tensor_mut(p.source)?, values)
    }

    /// Replace a QDQ parameter's quantized tensor, scale and zero point with `triple`'s
    /// (their names stay the target's).
    pub fn set_triple(&mut self, p: &Param, triple: &quantized::qdq::Triple) -> Result<()> {
        let ParamSource::Dequantized(n) = p.source else {
            anyhow::bail!("'{}' is not a QDQ parameter", p.name);
        };
        let d = quantized::qdq::at(self, n)?;
        let zero_point = match (&d.zero_point, &triple.zero_point) {
            (Some(z), Some(t)) => Some((z.1, t)),
            (None, None) => None,
            _ => anyhow::bail!("'{}': one triple has a zero point, the other not", p.name),
        };
        for (src, with) in [(d.q.1, &triple.q), (d.scale.1, &triple.scale)].into_iter().chain(zero_point) {
            let t = self.tensor_mut(src)?;
            let name = std::mem::take(&mut t.name);
            *t = with.clone();
            t.name = name;
        }
        Ok(())
    }

    fn tensor_mut(&mut self, src: ParamSource) -> Result<&mut TensorProto> {
        let g = self.proto.graph.mut_or_insert_default();
        match src {
            ParamSource::Initializer(i) => Ok(&mut g.initializer[i]),
            ParamSource::Constant(n) => g.node[n]
                .attribute
                .iter_mut()
                .find(|a| a.name == "value")
                .and_then(|a| a.t.as_mut())
                .context("Constant node lost its value"),
            ParamSource::Dequantized(_) => anyhow::bail!("a QDQ parameter has no single tensor"),
        }
    }

    /// Serialize the (possibly modified) model to bytes, all data inline.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        self.proto.write_to_bytes().with_context(|| format!("serializing {}", self.display_name()))
    }
}

fn constant_tensor(node: &onnx_protobuf::NodeProto) -> &TensorProto {
    node.attribute
        .iter()
        .find(|a| a.name == "value")
        .and_then(|a| a.t.as_ref())
        .unwrap_or_else(|| TensorProto::default_instance())
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Model {
    /// The graph inputs that share their name with an initializer. ONNX reads such an
    /// initializer as the input's default value: an IR < 4 export lists every parameter so;
    /// an image input listed so has its images replaced by a constant unless they are fed.
    pub fn shadowed_inputs(&self) -> Vec<&onnx_protobuf::ValueInfoProto> {
        self.proto.graph.input.iter().filter(|i| self.initializers.contains_key(&i.name)).collect()
    }

    /// Why the graph has no input to feed images to: none at all, or every one shadowed by
    /// an initializer of its name (the likely image input named: rank 4, the first input of
    /// a node that is not a parameter slot).
    fn no_input_reason(&self) -> String {
        let shadowed = self.shadowed_inputs();
        if shadowed.is_empty() {
            return "the graph has no input".into();
        }
        let feeds_a_node =
            |name: &str| self.proto.graph.node.iter().any(|n| n.input.first().is_some_and(|i| i == name));
        let likely = shadowed
            .iter()
            .find(|i| value_dims(i).len() == 4 && feeds_a_node(&i.name))
            .or_else(|| shadowed.iter().find(|i| feeds_a_node(&i.name)))
            .unwrap_or(&shadowed[0]);
        let init = self.initializers.get(&likely.name).and_then(|&k| self.proto.graph.initializer.get(k));
        let dims = init.map(|t| format!(" {:?}", t.dims)).unwrap_or_default();
        format!(
            "the graph's input '{}' has an initializer of the same name{dims}: ONNX reads it as the input's default \
             value, which leaves the graph no input for the images ({} graph input(s), every one named like an \
             initializer); remove the initializer '{}' from the model (or rename it) and keep the input",
            likely.name,
            shadowed.len(),
            likely.name
        )
    }

    /// The graph's real input (not an initializer; only one allowed): name and fixed dims, in the
    /// layout `--layout auto` detects (see [`layout`]).
    pub fn input_spec(&self) -> Result<crate::data::InputSpec> {
        self.input_spec_as(layout::detect(self).input.layout)
    }

    /// Why a parameter input `name` is not a stored tensor the tool can swap: a sparse
    /// initializer (ONNX Runtime densifies it; the tool reads dense tensors only), or a value
    /// the graph computes.
    pub fn not_stored_reason(&self, name: &str) -> &'static str {
        if self.is_sparse_initializer(name) {
            "is a sparse initializer (only dense tensors are read and swapped)"
        } else {
            "is computed, not a stored tensor"
        }
    }

    /// Whether `name` is one of the main graph's sparse initializers.
    pub fn is_sparse_initializer(&self, name: &str) -> bool {
        self.proto.graph.sparse_initializer.iter().any(|t| t.values.as_ref().is_some_and(|v| v.name == name))
    }

    /// The initializer named `name`, if the main graph has one.
    pub fn initializer(&self, name: &str) -> Option<&TensorProto> {
        self.initializers.get(name).and_then(|&k| self.proto.graph.initializer.get(k))
    }

    /// The graph's real input (not an initializer) read in `layout`: its channels, height and
    /// width are the dims that layout puts them at. A graph with more than one is refused.
    /// A graph with BatchNormalization in training mode is refused (see [`train_mode`]): fed
    /// images, it scores by how they are batched.
    pub fn input_spec_as(&self, layout: layout::Layout) -> Result<crate::data::InputSpec> {
        if let Some(why) = train_mode::reason(self) {
            return Err(bad_file(&self.path, why));
        }
        self.declared_input_as(layout)
    }

    /// The graph's real input as declared, for display (`inspect`): [`Model::input_spec`]
    /// without the training-mode check.
    pub fn declared_input(&self) -> Result<crate::data::InputSpec> {
        self.declared_input_as(layout::detect(self).input.layout)
    }

    fn declared_input_as(&self, layout: layout::Layout) -> Result<crate::data::InputSpec> {
        let g = &self.proto.graph;
        let real: Vec<_> = g.input.iter().filter(|i| !self.initializers.contains_key(&i.name)).collect();
        let input = *real.first().ok_or_else(|| bad_file(&self.path, self.no_input_reason()))?;
        if real.len() > 1 {
            // Fed only the first, ONNX Runtime fails on the first run with "Missing Input".
            let names: Vec<_> = real.iter().map(|i| format!("'{}'", i.name)).collect();
            return Err(bad_file(
                &self.path,
                format!(
                    "the graph has {} inputs ({}); reuse-audit feeds a model one image input: export it with \
                     the others fixed (or folded into the graph as constants)",
                    real.len(),
                    names.join(", ")
                ),
            ));
        }
        let dims = value_dims(input);
        let Ok(dims) = <[Option<usize>; 4]>::try_from(dims.as_slice()) else {
            return Err(bad_file(
                &self.path,
                format!(
                    "input '{}' has rank {}; reuse-audit audits 2D CNNs with N x C x H x W or N x H x W x C input",
                    input.name,
                    dims.len()
                ),
            ));
        };
        let elem = input.type_.tensor_type().elem_type;
        if elem != 1 {
            // Half-precision inputs were made float32 on load (`upcast`): anything else is not.
            return Err(bad_file(
                &self.path,
                format!(
                    "input '{}' is {}; the audit feeds float32 images (float16 and bfloat16 exports are audited in float32; re-export this one with a float32 input)",
                    input.name,
                    tensor::onnx_type_name(elem)
                ),
            ));
        }
        let [batch, channels, height, width] = layout.to_nchw(dims);
        Ok(crate::data::InputSpec { name: input.name.clone(), batch, channels, height, width, layout })
    }
}

/// Fixed dims of a graph value (`None` for symbolic or unknown dims).
pub fn value_dims(v: &onnx_protobuf::ValueInfoProto) -> Vec<Option<usize>> {
    use onnx_protobuf::tensor_shape_proto::dimension::Value;
    v.type_
        .tensor_type()
        .shape
        .dim
        .iter()
        .map(|d| match &d.value {
            Some(Value::DimValue(n)) if *n > 0 => Some(*n as usize),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_bytes_is_what_load_reads() {
        // The bundled UNet with external data (read from the model's folder by both).
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/external/unet-acdc-seg.onnx");
        let bytes = std::fs::read(&path).unwrap();
        let (a, b) = (Model::load(&path).unwrap(), Model::from_bytes(&bytes, &path).unwrap());
        assert_eq!((&a.sha256, &a.proto), (&b.sha256, &b.proto));
        assert!(a.proto.graph.initializer.iter().all(|t| !t.raw_data.is_empty() || !t.float_data.is_empty()));
        // Elsewhere its external data is not found: the same message either way.
        let dir = tempfile::tempdir().unwrap();
        let moved = dir.path().join("unet.onnx");
        std::fs::write(&moved, &bytes).unwrap();
        let e = |r: Result<Model>| format!("{:#}", r.err().unwrap());
        assert_eq!(e(Model::load(&moved)), e(Model::from_bytes(&bytes, &moved)));
        assert!(e(Model::load(&moved)).contains("cannot read external data"));
    }
}
