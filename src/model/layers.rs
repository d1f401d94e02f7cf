//! Parametrized layers, numbered per family in topological order: Conv/ConvTranspose (W, B),
//! BatchNormalization (RM, RV, RW, RB), linear layers (Gemm, MatMul with a stored weight and
//! the bias of the Add after it: W, B) and the other normalizations (Instance-, Group- and
//! LayerNormalization: RW, RB). Which node inputs are parameters is decided in [`roles`].

pub mod roles;

use std::fmt;

use serde::Serialize;

use super::{tensor, DType, Model, ParamSource};

/// Layer family, each numbered separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// Conv and ConvTranspose nodes (kinds W, B).
    Conv,
    /// BatchNormalization nodes (kinds RM, RV, RW, RB).
    Bn,
    /// Gemm, and MatMul whose second input is a stored weight, with the bias of an Add
    /// after it (kinds W, B).
    Linear,
    /// InstanceNormalization, GroupNormalization and LayerNormalization (kinds RW, RB).
    Norm,
}

impl Family {
    /// Every family, in report order.
    pub const ALL: [Family; 4] = [Family::Conv, Family::Bn, Family::Linear, Family::Norm];

    /// The kinds a layer of this family can have.
    pub fn kinds(self) -> &'static [Kind] {
        match self {
            Family::Conv | Family::Linear => &[Kind::W, Kind::B],
            Family::Bn => &[Kind::RM, Kind::RV, Kind::RW, Kind::RB],
            Family::Norm => &[Kind::RW, Kind::RB],
        }
    }

    /// Parse `conv`, `bn`, `linear`, `norm` (case-insensitive).
    pub fn parse(s: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|f| f.to_string().eq_ignore_ascii_case(s.trim()))
    }

    /// The family a bare kind names in `--require-reusable` and the summary's per-kind
    /// lists: W and B are conv, RM..RB are BN (the names they had before the other families).
    pub fn home_of(kind: Kind) -> Family {
        match kind {
            Kind::W | Kind::B => Family::Conv,
            _ => Family::Bn,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::Conv => "conv",
            Family::Bn => "bn",
            Family::Linear => "linear",
            Family::Norm => "norm",
        })
    }
}

/// The name of a (family, kind) group in summaries and `--require-reusable`: the bare kind
/// for conv and BN (`W`, `RM`, as always), `family.kind` for the others (`linear.W`,
/// `norm.RW`).
pub fn group_name(family: Family, kind: Kind) -> String {
    if family == Family::home_of(kind) {
        kind.to_string()
    } else {
        format!("{family}.{kind}")
    }
}

/// Parse a group name: a bare kind (its home family, see [`Family::home_of`]) or
/// `family.kind` for any family that has the kind (`conv.W`, `linear.B`, `norm.RW`).
pub fn parse_group(s: &str) -> Option<(Family, Kind)> {
    match s.trim().split_once('.') {
        None => Kind::parse(s).map(|k| (Family::home_of(k), k)),
        Some((f, k)) => {
            let (f, k) = (Family::parse(f)?, Kind::parse(k)?);
            f.kinds().contains(&k).then_some((f, k))
        }
    }
}

/// Parameter kind, per METHOD.md; a layer's [`Family`] says which kinds it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Kind {
    /// Weight of a conv or linear layer.
    W,
    /// Bias of a conv or linear layer.
    B,
    /// BN running mean (`input_mean`).
    RM,
    /// BN running variance (`input_var`).
    RV,
    /// Scale (gamma) of a BN or norm layer.
    RW,
    /// Shift (beta) of a BN or norm layer.
    RB,
}

impl Kind {
    /// All kinds in report order.
    pub const ALL: [Kind; 6] = [Kind::W, Kind::B, Kind::RM, Kind::RV, Kind::RW, Kind::RB];

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

/// A parametrized node (for a MatMul, with the Add that holds its bias) and its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// conv, bn, linear or norm.
    pub family: Family,
    /// 1-based index within the family, in topological order.
    pub index: usize,
    /// Index of the node in `graph.node`.
    pub node_index: usize,
    /// Node name (may be empty in the file; then `op_N`).
    pub node: String,
    /// ONNX op type.
    pub op: String,
    /// BN/norm epsilon (1e-5 when the attribute is absent); 0 for conv and linear layers.
    pub epsilon: f64,
    /// W is stored inputs x outputs (MatMul; Gemm with `transB = 0`): the spectral metrics
    /// read its transpose, one row per output unit like a conv filter bank.
    pub w_in_out: bool,
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
    /// Layers in topological order, the families interleaved as in the graph.
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

    /// True when the model has conv layers but no BatchNormalization (nor another
    /// normalization that takes its place): BN was probably folded into the convolutions at
    /// export.
    pub fn bn_probably_folded(&self) -> bool {
        super::folding::Folding::of(self) == super::folding::Folding::Folded
    }

    /// The same scan with only the layers of these families (numbering kept).
    pub fn only(&self, families: &[Family]) -> LayerScan {
        let layers = self.layers.iter().filter(|l| families.contains(&l.family)).cloned().collect();
        LayerScan { layers, ..self.clone() }
    }
}

/// Find every parametrized layer of a model.
pub fn scan(model: &Model) -> LayerScan {
    let mut layers = Vec::new();
    let mut skipped = Vec::new();
    let mut numbers = [0usize; Family::ALL.len()];
    let graph = roles::GraphIndex::of(model);
    for (i, node) in model.proto.graph.node.iter().enumerate() {
        // Integer convs are not audited (see `quantized`) but keep their place in the
        // numbering, so conv k is the k-th conv of the graph in every export of a net.
        if matches!(node.op_type.as_str(), "QLinearConv" | "ConvInteger") {
            numbers[Family::Conv as usize] += 1;
            continue;
        }
        let Some(roles::Roles { family, inputs, w_in_out }) = roles::roles(model, &graph, i) else {
            continue;
        };
        numbers[family as usize] += 1;
        let index = numbers[family as usize];
        let node_name = if node.name.is_empty() { format!("{}_{}", node.op_type, i) } else { node.name.clone() };
        let mut params = Vec::new();
        for (kind, input) in inputs {
            match model.resolve(&input) {
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
                // A QDQ conv parameter is its stored (q, scale, zero point) triple; one that
                // cannot be swapped exactly is listed with the quantized layers instead.
                None if family == Family::Conv => match super::quantized::param(model, &input, kind) {
                    Some(Ok(p)) => params.push(p),
                    Some(Err(_)) => {}
                    None => skipped.push(format!("{node_name}: {kind} '{input}' {}", model.not_stored_reason(&input))),
                },
                None if super::quantized::qdq::producer(model, &input).is_some() => {
                    skipped.push(format!("{node_name}: {kind} '{input}' is quantized (DequantizeLinear)"))
                }
                None => skipped.push(format!("{node_name}: {kind} '{input}' {}", model.not_stored_reason(&input))),
            }
        }
        params.sort_by_key(|p| p.kind);
        let epsilon = match family {
            Family::Bn | Family::Norm => {
                node.attribute.iter().find(|a| a.name == "epsilon").map(|a| a.f as f64).unwrap_or(1e-5)
            }
            Family::Conv | Family::Linear => 0.0,
        };
        let op = node.op_type.clone();
        layers.push(Layer { family, index, node_index: i, node: node_name, op, epsilon, w_in_out, params });
    }
    LayerScan { layers, skipped, quantized: super::quantized::scan(model) }
}
