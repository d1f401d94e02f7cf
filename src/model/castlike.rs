//! `CastLike` nodes rewritten as the `Cast` they stand for, where the type they cast to
//! is known for certain.
//!
//! PyTorch's dynamo exporter emits a `CastLike` beside most arithmetic on constants (an
//! smp PSPNet has 22). ONNX defines `CastLike(x, like)` as `Cast(x, to = type of like)`
//! (with the same `saturate`), and ONNX Runtime has no CPU kernel for it: every session
//! expands each one through its function body, which makes building a session of such a
//! graph about a sixth slower. The incremental strategy builds a session per layer, so it
//! hands ONNX Runtime the `Cast` instead. The `like` input is then read by nobody in that
//! node, and the outputs are bit for bit the same.
//!
//! The type comes from what cannot be wrong: an initializer's stored type, a graph input's
//! declared type (ONNX Runtime enforces it), or the type ONNX Runtime itself gave the tensor
//! in a run (the shape probe's). Where none is known the node stays as it is.

use onnx_protobuf::{AttributeProto, GraphProto};

/// Rewrite every `CastLike` of the default domain whose `like` input has a type `known`
/// gives (ONNX code, not 0) as `Cast(to = that type)`, keeping the node's name, output and
/// `saturate`. Returns how many were rewritten.
pub fn to_cast(g: &mut GraphProto, known: impl Fn(&str) -> Option<i32>) -> usize {
    let mut rewritten = 0;
    for n in g.node.iter_mut() {
        let default_domain = n.domain.is_empty() || n.domain == "ai.onnx";
        if n.op_type != "CastLike" || !default_domain || n.input.len() != 2 || n.input[1].is_empty() {
            continue;
        }
        let Some(to) = known(&n.input[1]).filter(|&t| t != 0) else { continue };
        n.op_type = "Cast".into();
        n.input.truncate(1);
        n.attribute.retain(|a| a.name == "saturate");
        let mut a = AttributeProto::new();
        a.name = "to".into();
        a.type_ = onnx_protobuf::attribute_proto::AttributeType::INT.into();
        a.i = to as i64;
        n.attribute.push(a);
        rewritten += 1;
    }
    rewritten
}

#[cfg(test)]
mod tests {
    use super::*;
    use onnx_protobuf::NodeProto;

    fn node(op: &str, inputs: &[&str], output: &str, domain: &str) -> NodeProto {
        let mut n = NodeProto::new();
        n.op_type = op.into();
        n.name = format!("n_{output}");
        n.domain = domain.into();
        n.input = inputs.iter().map(|s| s.to_string()).collect();
        n.output = vec![output.into()];
        n
    }

    #[test]
    fn castlike_with_a_known_type_becomes_cast_keeping_saturate() {
        let mut g = GraphProto::new();
        let mut sat = node("CastLike", &["x", "like_f16"], "a", "");
        let mut s = AttributeProto::new();
        s.name = "saturate".into();
        s.i = 0;
        sat.attribute.push(s);
        g.node = vec![
            sat,
            node("CastLike", &["x", "unknown"], "b", ""),
            node("CastLike", &["x", "like_i64"], "c", "com.example"),
            node("Add", &["x", "like_i64"], "d", ""),
            node("CastLike", &["x", "like_i64"], "e", "ai.onnx"),
        ];
        let known = |name: &str| match name {
            "like_f16" => Some(10),
            "like_i64" => Some(7),
            _ => None,
        };
        assert_eq!(to_cast(&mut g, known), 2);
        let ops: Vec<&str> = g.node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(ops, ["Cast", "CastLike", "CastLike", "Add", "Cast"]);
        let a = &g.node[0];
        assert_eq!(
            (a.name.as_str(), a.input.as_slice(), a.output.as_slice()),
            ("n_a", &["x".to_string()][..], &["a".to_string()][..])
        );
        let attrs: Vec<(&str, i64)> = a.attribute.iter().map(|x| (x.name.as_str(), x.i)).collect();
        assert_eq!(attrs, [("saturate", 0), ("to", 10)]);
        assert_eq!(g.node[4].attribute.iter().find(|x| x.name == "to").map(|x| x.i), Some(7));
        assert_eq!(g.node[1].input.len(), 2);
    }
}
