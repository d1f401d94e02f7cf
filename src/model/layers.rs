//! Parametrized layers: Conv/ConvTranspose (W, B) and BatchNormalization (RM, RV, RW, RB),
//! numbered per family in topological order.

use std::fmt;

use serde::Serialize;

use super::{tensor, DType, Model, ParamSource};

/// Layer family: convolutions or batch normalizations, numbered separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// Conv and ConvTranspose nodes.
    Conv,
    /// BatchNormalization nodes.
    Bn,
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::Conv => "conv",
            Family::Bn => "bn",
        })
    }
}

/// Parameter kind, per METHOD.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Kind {
    /// Conv weight.
    W,
    /// Conv bias.
    B,
    /// BN running mean (`input_mean`).
    RM,
    /// BN running variance (`input_var`).
    RV,
    /// BN scale, gamma (`scale`).
    RW,
    /// BN shift, beta (`B`).
    RB,
}

impl Kind {
    /// All kinds in report order.
    pub const ALL: [Kind; 6] = [Kind::W, Kind::B, Kind::RM, Kind::RV, Kind::RW, Kind::RB];

    /// The family a kind belongs to.
    pub fn family(self) -> Family {
        match self {
            Kind::W | Kind::B => Family::Conv,
            _ => Family::Bn,
        }
    }

    /// Parse `W`, `B`, `RM`, `RV`, `RW`, `RB` (case-insensitive).
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.to_string().eq_ignore_ascii_case(s.trim()))
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// One parameter tensor of a layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// W, B, RM, RV, RW or RB.
    pub kind: Kind,
    /// Name of the initializer (or Constant output) that holds it, Identity nodes followed.
    pub name: String,
    /// Where the tensor lives.
    pub source: ParamSource,
    /// Shape.
    pub dims: Vec<i64>,
    /// Element type.
    pub dtype: DType,
}

impl Param {
    /// Number of scalars.
    pub fn numel(&self) -> usize {
        tensor::numel(&self.dims)
    }
}

/// A Conv/ConvTranspose or BatchNormalization node with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// conv or bn.
    pub family: Family,
    /// 1-based index within the family, in topological order.
    pub index: usize,
    /// Index of the node in `graph.node`.
    pub node_index: usize,
    /// Node name (may be empty in the file; then `op_N`).
    pub node: String,
    /// ONNX op type.
    pub op: String,
    /// BN epsilon (1e-5 when the attribute is absent); 0 for conv layers.
    pub epsilon: f64,
    /// The parameters found, in kind order.
    pub params: Vec<Param>,
}

impl Layer {
    /// The parameter of a kind, if the layer has it.
    pub fn param(&self, kind: Kind) -> Option<&Param> {
        self.params.iter().find(|p| p.kind == kind)
    }

    /// `conv 3` / `bn 2`, for messages.
    pub fn label(&self) -> String {
        format!("{} {} ({})", self.family, self.index, self.node)
    }
}

/// Problems found while collecting layers (parameters that are not constant tensors).
#[derive(Debug, Clone, PartialEq)]
pub struct LayerScan {
    /// Layers in topological order, conv and bn interleaved as in the graph.
    pub layers: Vec<Layer>,
    /// Parameter inputs that could not be resolved to a constant float tensor.
    pub skipped: Vec<String>,
    /// Quantized convolutions (QLinearConv, ConvInteger, QDQ): listed, not audited.
    pub quantized: Vec<super::quantized::QuantizedLayer>,
}

impl LayerScan {
    /// Layers of one family.
    pub fn of(&self, family: Family) -> impl Iterator<Item = &Layer> {
        self.layers.iter().filter(move |l| l.family == family)
    }

    /// True when the model has conv layers but no BatchNormalization: BN was
    /// probably folded into the convolutions at export.
    pub fn bn_probably_folded(&self) -> bool {
        self.of(Family::Conv).next().is_some() && self.of(Family::Bn).next().is_none()
    }
}

/// Find every parametrized layer of a model.
pub fn scan(model: &Model) -> LayerScan {
    let mut layers = Vec::new();
    let mut skipped = Vec::new();
    let (mut n_conv, mut n_bn) = (0, 0);
    for (i, node) in model.proto.graph.node.iter().enumerate() {
        let (family, roles): (Family, &[(usize, Kind)]) = match node.op_type.as_str() {
            "Conv" | "ConvTranspose" => (Family::Conv, &[(1, Kind::W), (2, Kind::B)]),
            // Integer convs are not audited (see `quantized`) but keep their place in the
            // numbering, so conv k is the k-th conv of the graph in every export of a net.
            "QLinearConv" | "ConvInteger" => {
                n_conv += 1;
                continue;
            }
            "BatchNormalization" => (Family::Bn, &[(1, Kind::RW), (2, Kind::RB), (3, Kind::RM), (4, Kind::RV)]),
            _ => continue,
        };
        let index = match family {
            Family::Conv => {
                n_conv += 1;
                n_conv
            }
            Family::Bn => {
                n_bn += 1;
                n_bn
            }
        };
        let node_name = if node.name.is_empty() { format!("{}_{}", node.op_type, i) } else { node.name.clone() };
        let mut params = Vec::new();
        for &(slot, kind) in roles {
            let Some(input) = node.input.get(slot).filter(|s| !s.is_empty()) else {
                continue;
            };
            match model.resolve(input) {
                Some((name, source)) => {
                    let t = model.tensor(source);
                    match DType::from_onnx(t.data_type) {
                        Some(dtype) => params.push(Param { kind, name, source, dims: t.dims.clone(), dtype }),
                        None => skipped.push(format!(
                            "{node_name}: {kind} '{input}' is {}{}",
                            tensor::onnx_type_name(t.data_type),
                            model.lifted_from(&name).map(|n| format!(" (held by {n})")).unwrap_or_default()
                        )),
                    }
                }
                // A QDQ parameter is its stored (q, scale, zero point) triple; one that cannot
                // be swapped exactly is listed with the quantized layers instead.
                None => match super::quantized::param(model, input, kind) {
                    Some(Ok(p)) => params.push(p),
                    Some(Err(_)) => {}
                    None => skipped.push(format!("{node_name}: {kind} '{input}' is computed, not a stored tensor")),
                },
            }
        }
        params.sort_by_key(|p| p.kind);
        let epsilon = match family {
            Family::Bn => node.attribute.iter().find(|a| a.name == "epsilon").map(|a| a.f as f64).unwrap_or(1e-5),
            Family::Conv => 0.0,
        };
        layers.push(Layer { family, index, node_index: i, node: node_name, op: node.op_type.clone(), epsilon, params });
    }
    LayerScan { layers, skipped, quantized: super::quantized::scan(model) }
}
