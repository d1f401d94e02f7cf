//! Quantized convolutions: QOperator (`QLinearConv`), dynamic (`ConvInteger`) and QDQ
//! (`DequantizeLinear` -> `Conv`) layers, found so that reports name them instead of
//! counting "0 conv layers" without a word.

use serde::Serialize;

use super::Model;

/// A quantized convolution the audit does not swap, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuantizedLayer {
    /// Node name (`op_N` when the file leaves it empty).
    pub node: String,
    /// `QLinearConv`, `ConvInteger`, or `Conv` (QDQ form).
    pub op: String,
    /// `QOperator`, `dynamic` or `QDQ`.
    pub format: &'static str,
    /// Why it is not audited.
    pub reason: String,
}

/// Why integer conv ops are not audited.
const INTEGER_REASON: &str = "its weight is an integer tensor with its own scale and zero point inside \
the quantized operator; swapping (q, scale, zero point) there is not implemented";

/// The quantized convolutions of a model, in graph order.
pub fn scan(model: &Model) -> Vec<QuantizedLayer> {
    let g = &model.proto.graph;
    let mut out = Vec::new();
    for (i, n) in g.node.iter().enumerate() {
        let node = if n.name.is_empty() { format!("{}_{}", n.op_type, i) } else { n.name.clone() };
        let (format, reason) = match n.op_type.as_str() {
            "QLinearConv" => ("QOperator", INTEGER_REASON.to_string()),
            "ConvInteger" => ("dynamic", INTEGER_REASON.to_string()),
            "Conv" | "ConvTranspose" => match n.input.get(1).and_then(|w| dequantized_from(model, w)) {
                Some(q) => (
                    "QDQ",
                    format!(
                        "its W is DequantizeLinear('{q}', scale, zero point): W (the quantized triple) is not swapped yet; a float B, if any, is audited"
                    ),
                ),
                None => continue,
            },
            _ => continue,
        };
        out.push(QuantizedLayer { node, op: n.op_type.clone(), format, reason });
    }
    out
}

/// The quantized tensor a value is dequantized from, when a DequantizeLinear of a stored
/// tensor produces it.
pub fn dequantized_from(model: &Model, name: &str) -> Option<String> {
    let dq = model
        .proto
        .graph
        .node
        .iter()
        .find(|n| n.op_type == "DequantizeLinear" && n.output.first().is_some_and(|o| o == name))?;
    let q = dq.input.first()?;
    model.resolve(q).map(|(stored, _)| stored)
}

/// One line for messages: how many quantized conv layers, of which formats, first names.
pub fn summary(layers: &[QuantizedLayer]) -> Option<String> {
    let first = layers.first()?;
    let count = |f: &str| layers.iter().filter(|l| l.format == f).count();
    let formats: Vec<String> =
        [("QOperator", "QLinearConv"), ("dynamic", "ConvInteger"), ("QDQ", "DequantizeLinear -> Conv")]
            .iter()
            .filter(|(f, _)| count(f) > 0)
            .map(|(f, op)| format!("{} {f} ({op})", count(f)))
            .collect();
    let names: Vec<&str> = layers.iter().take(4).map(|l| l.node.as_str()).collect();
    let more = if layers.len() > 4 { format!(" and {} more", layers.len() - 4) } else { String::new() };
    Some(format!(
        "quantized model: {} quantized conv layer(s) not audited: {}: {}{more}; {}",
        layers.len(),
        formats.join(", "),
        names.join(", "),
        first.reason
    ))
}
