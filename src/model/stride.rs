//! The network's total stride: how much its deepest path downsamples an image. A model
//! with free spatial dims only maps an `H x W` input to an `H x W` output when `H` and `W`
//! are multiples of it (`audit --size`).

use std::collections::HashMap;

use super::Model;

/// Ops that downsample by their `strides` attribute.
const STRIDED: [&str; 6] = ["Conv", "ConvInteger", "QLinearConv", "MaxPool", "AveragePool", "LpPool"];

/// The largest product of strides (rows, columns) over every path from the input: each
/// tensor's stride is its node's own stride (`strides` of a strided op, `blocksize` of
/// `SpaceToDepth`) times the largest stride among its inputs. Upsampling is not divided
/// out, so the bottleneck of a UNet decides. `(1, 1)` for a network that never downsamples.
pub fn total_stride(model: &Model) -> (usize, usize) {
    let mut at: HashMap<&str, (usize, usize)> = HashMap::new();
    let mut total = (1, 1);
    for node in &model.proto.graph.node {
        let inherited =
            node.input.iter().filter_map(|x| at.get(x.as_str())).fold((1, 1), |(a, b), &(h, w)| (a.max(h), b.max(w)));
        let own = own_stride(node);
        let s = (inherited.0.saturating_mul(own.0), inherited.1.saturating_mul(own.1));
        total = (total.0.max(s.0), total.1.max(s.1));
        for o in node.output.iter().filter(|o| !o.is_empty()) {
            at.insert(o.as_str(), s);
        }
    }
    total
}

fn own_stride(node: &onnx_protobuf::NodeProto) -> (usize, usize) {
    let attr = |name: &str| node.attribute.iter().find(|a| a.name == name);
    let positive = |v: i64| usize::try_from(v).ok().filter(|&v| v > 0).unwrap_or(1);
    if STRIDED.contains(&node.op_type.as_str()) {
        match attr("strides").map(|a| a.ints.as_slice()) {
            Some([h, w, ..]) => (positive(*h), positive(*w)),
            Some([h]) => (positive(*h), 1),
            _ => (1, 1),
        }
    } else if node.op_type == "SpaceToDepth" {
        let b = attr("blocksize").map_or(1, |a| positive(a.i));
        (b, b)
    } else {
        (1, 1)
    }
}

#[cfg(test)]
mod tests {
    use onnx_protobuf::{AttributeProto, ModelProto, NodeProto};

    use super::*;

    fn node(op: &str, input: &str, output: &str, strides: Option<[i64; 2]>) -> NodeProto {
        let mut n = NodeProto::new();
        n.op_type = op.into();
        n.input = vec![input.into()];
        n.output = vec![output.into()];
        if let Some(s) = strides {
            let mut a = AttributeProto::new();
            a.name = "strides".into();
            a.ints = s.to_vec();
            n.attribute.push(a);
        }
        n
    }

    #[test]
    fn deepest_path_decides_and_upsampling_is_not_divided() {
        let mut m = ModelProto::new();
        let g = m.graph.mut_or_insert_default();
        g.node = vec![
            node("Conv", "x", "a", None),
            node("MaxPool", "a", "b", Some([2, 2])),
            node("Conv", "b", "c", Some([2, 1])),
            node("ConvTranspose", "c", "d", Some([2, 2])),
            node("Conv", "x", "skip", None),
        ];
        let model = Model::index("m.onnx".into(), String::new(), m);
        assert_eq!(total_stride(&model), (4, 2));
    }
}
