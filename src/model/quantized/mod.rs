//! Quantized convolutions: QOperator (`QLinearConv`), dynamic (`ConvInteger`) and QDQ
//! (`DequantizeLinear` -> `Conv`) layers, listed so that reports say which are audited.
//!
//! A QDQ conv's `W` (and a quantized `B`) is audited as its (quantized tensor, scale, zero
//! point) triple (see [`qdq`]); integer conv ops keep their weights inside the operator and
//! are not audited.

pub mod qdq;

use serde::Serialize;

use super::{DType, Kind, Model, Param, ParamSource};

/// Ops that make a conv layer, float or quantized: conv k is the graph's k-th of these.
pub const CONV_OPS: [&str; 4] = ["Conv", "ConvTranspose", "QLinearConv", "ConvInteger"];

/// A quantized convolution: whether the audit swaps it, and why (not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuantizedLayer {
    /// Conv layer number: the graph's k-th conv, float and quantized alike.
    pub layer: usize,
    /// Node name (`op_N` when the file leaves it empty).
    pub node: String,
    /// `QLinearConv`, `ConvInteger`, or `Conv`/`ConvTranspose` (QDQ form).
    pub op: String,
    /// `QOperator`, `dynamic` or `QDQ`.
    pub format: &'static str,
    /// Every quantized parameter of the layer (W, and B when it is quantized) is swapped
    /// and scored.
    pub audited: bool,
    /// Why it is not audited, or how it is.
    pub reason: String,
}

/// Why integer conv ops are not audited.
const INTEGER_REASON: &str = "its weight is an integer tensor with its own scale and zero point inside \
the quantized operator; swapping (q, scale, zero point) there is not implemented";

/// The quantized convolutions of a model, in graph order.
pub fn scan(model: &Model) -> Vec<QuantizedLayer> {
    let g = &model.proto.graph;
    let mut out = Vec::new();
    let mut layer = 0;
    for (i, n) in g.node.iter().enumerate() {
        if !CONV_OPS.contains(&n.op_type.as_str()) {
            continue;
        }
        layer += 1;
        let node = if n.name.is_empty() { format!("{}_{}", n.op_type, i) } else { n.name.clone() };
        let (format, audited, reason) = match n.op_type.as_str() {
            "QLinearConv" => ("QOperator", false, INTEGER_REASON.to_string()),
            "ConvInteger" => ("dynamic", false, INTEGER_REASON.to_string()),
            _ => match n.input.get(1).and_then(|w| qdq::find(model, w)) {
                Some(w) => {
                    let (audited, reason) = qdq_status(model, w, n.input.get(2));
                    ("QDQ", audited, reason)
                }
                None => continue,
            },
        };
        out.push(QuantizedLayer { layer, node, op: n.op_type.clone(), format, audited, reason });
    }
    out
}

/// Whether a QDQ conv's quantized parameters are all swappable, and the sentence saying how.
fn qdq_status(model: &Model, w: Result<qdq::Dequantize, String>, b: Option<&String>) -> (bool, String) {
    let b = b.filter(|b| !b.is_empty());
    let b_status = match b.and_then(|b| qdq::find(model, b)) {
        Some(Ok(d)) => Ok(format!("B is swapped as its triple ({})", qdq::describe(model, &d))),
        Some(Err(why)) => Err(format!("B is not audited: {why}")),
        None if b.is_some() => Ok("B is not quantized: audited like any float B".into()),
        None => Ok("no B".into()),
    };
    match (w, b_status) {
        (Ok(d), Ok(b)) => (
            true,
            format!(
                "W is swapped as its (quantized tensor, scale, zero point) triple ({}); weight metrics compare the dequantized values; {b}",
                qdq::describe(model, &d)
            ),
        ),
        (Ok(_), Err(b)) => (false, format!("W is swapped as its quantized triple; {b}")),
        (Err(why), b) => (false, format!("W is not audited: {why}; {}", b.unwrap_or_else(|e| e))),
    }
}

/// A QDQ parameter of a layer: its `Param` (named after the stored quantized tensor, with
/// the dequantized element type), `None` when `value` is not a QDQ parameter, `Some(Err)`
/// when it is one that cannot be swapped exactly (listed by [`scan`] with the reason).
pub fn param(model: &Model, value: &str, kind: Kind) -> Option<Result<Param, String>> {
    Some(qdq::find(model, value)?.map(|d| {
        let st = model.tensor(d.scale.1);
        Param {
            kind,
            name: d.q.0.clone(),
            source: ParamSource::Dequantized(d.node),
            dims: model.tensor(d.q.1).dims.clone(),
            dtype: DType::from_onnx(st.data_type).unwrap_or(DType::Float32),
        }
    }))
}

/// One line for messages about the quantized layers that are not audited: how many, of
/// which formats, first names and the first reason. `None` when every layer is audited.
pub fn summary(layers: &[QuantizedLayer]) -> Option<String> {
    let left: Vec<&QuantizedLayer> = layers.iter().filter(|l| !l.audited).collect();
    let first = left.first()?;
    let count = |f: &str| left.iter().filter(|l| l.format == f).count();
    let formats: Vec<String> =
        [("QOperator", "QLinearConv"), ("dynamic", "ConvInteger"), ("QDQ", "DequantizeLinear -> Conv")]
            .iter()
            .filter(|(f, _)| count(f) > 0)
            .map(|(f, op)| format!("{} {f} ({op})", count(f)))
            .collect();
    let names: Vec<&str> = left.iter().take(4).map(|l| l.node.as_str()).collect();
    let more = if left.len() > 4 { format!(" and {} more", left.len() - 4) } else { String::new() };
    Some(format!(
        "quantized model: {} quantized conv layer(s) not audited: {}: {}{more}; {}",
        left.len(),
        formats.join(", "),
        names.join(", "),
        first.reason
    ))
}
