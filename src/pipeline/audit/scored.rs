//! Layers that cannot change the scored output. The audit scores the graph's first output;
//! a layer that only feeds another output (an auxiliary head such as torchvision's
//! `aux_classifier`, exported beside the main output) leaves it untouched whatever its
//! parameters, so its swap would read as "delta 0, reusable" and count in the verdicts. Such
//! layers are left out of the swap scan and listed as not audited with the reason; the
//! verdicts speak for the network that produces the scored output. `--output NAME` makes
//! another output the first (so the one scored).

use std::collections::HashSet;

use crate::error::UserError;
use crate::model::graph::Topology;
use crate::model::Model;
use crate::pair::Pairing;

/// The start of the `not_audited` reason of a layer that does not reach the scored output.
pub const REASON: &str = "does not reach the scored output";

/// The scored output's name (the graph's first output).
pub fn scored_output(model: &Model) -> Option<&str> {
    model.proto.graph.output.first().map(|o| o.name.as_str())
}

/// Make the output `name` the graph's first (`--output`), the one every step scores; exit 2
/// naming the outputs when there is none of that name.
pub fn choose(model: &mut Model, name: &str) -> Result<(), UserError> {
    let outputs = &mut model.proto.graph.mut_or_insert_default().output;
    let Some(i) = outputs.iter().position(|o| o.name == name) else {
        let names: Vec<String> = outputs.iter().map(|o| format!("'{}'", o.name)).collect();
        return Err(UserError::BadFlag {
            flag: "--output",
            reason: format!("{} has no output '{name}' (its outputs: {})", model.path.display(), names.join(", ")),
        });
    };
    let chosen = outputs.remove(i);
    outputs.insert(0, chosen);
    Ok(())
}

/// For a model with several outputs, which one is scored and how to pick another (for
/// messages); empty for one output.
pub fn which_output(model: &Model) -> String {
    let outputs = &model.proto.graph.output;
    if outputs.len() < 2 {
        return String::new();
    }
    let names: Vec<String> = outputs.iter().map(|o| format!("'{}'", o.name)).collect();
    format!(
        "output {} of the model's {} ({}) was scored; --output NAME scores another",
        names[0],
        outputs.len(),
        names.join(", ")
    )
}

/// Node indices of the target's graph that the scored output does not depend on.
pub fn unscored_nodes(model: &Model) -> HashSet<usize> {
    let Some(out) = scored_output(model) else {
        return HashSet::new();
    };
    let up = Topology::of(model).upstream(model, out);
    (0..up.len()).filter(|&i| !up[i]).collect()
}

/// The `not_audited` reason of a layer at a node in [`unscored_nodes`].
pub fn reason(model: &Model) -> String {
    let out = scored_output(model).unwrap_or_default();
    let others: Vec<String> = model.proto.graph.output.iter().skip(1).map(|o| format!("'{}'", o.name)).collect();
    let feeds = match others.is_empty() {
        true => String::new(),
        false => format!(", it feeds only {}", others.join(", ")),
    };
    format!("{REASON} '{out}'{feeds}: its swap cannot change what is scored")
}

/// Drop the pairs of layers that do not reach the scored output; a warning naming them
/// (`None` when every paired layer reaches it).
pub fn leave_out(model: &Model, pairing: &mut Pairing) -> Option<String> {
    let off = unscored_nodes(model);
    let mut layers: Vec<String> = Vec::new();
    let mut kept: HashSet<String> = HashSet::new();
    pairing.pairs.retain(|p| {
        let keep = !off.contains(&p.layer.node_index);
        let label = p.layer.label();
        if !keep && !layers.contains(&label) {
            layers.push(label);
        } else if keep {
            kept.insert(label);
        }
        keep
    });
    if layers.is_empty() {
        return None;
    }
    let shown: Vec<&str> = layers.iter().take(4).map(String::as_str).collect();
    let more = if layers.len() > 4 { format!(" and {} more", layers.len() - 4) } else { String::new() };
    // The first output reached by fewer layers than are left out is likely an auxiliary head
    // exported first (`forward` returning `(aux, out)`): the verdicts would speak for a
    // corner of the network.
    let hint = if layers.len() > kept.len() {
        let names: Vec<String> = model.proto.graph.output.iter().skip(1).map(|o| format!("'{}'", o.name)).collect();
        format!(
            "; they are most of the paired layers ({} of {}): if '{}' is an auxiliary output, score the main one with --output (the others: {})",
            layers.len(),
            layers.len() + kept.len(),
            scored_output(model).unwrap_or_default(),
            names.join(", ")
        )
    } else {
        String::new()
    };
    Some(format!(
        "{} layer(s) do not reach the scored output '{}' ({}{more}): not swapped, listed as not audited, and left out of the verdicts, which speak for the layers that produce the scored output{hint}",
        layers.len(),
        scored_output(model).unwrap_or_default(),
        shown.join(", "),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use onnx_protobuf::{GraphProto, ModelProto, NodeProto, ValueInfoProto};

    fn node(op: &str, name: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
        let mut n = NodeProto::new();
        n.op_type = op.into();
        n.name = name.into();
        n.input = inputs.iter().map(|s| s.to_string()).collect();
        n.output = outputs.iter().map(|s| s.to_string()).collect();
        n
    }

    fn output(name: &str) -> ValueInfoProto {
        let mut v = ValueInfoProto::new();
        v.name = name.into();
        v
    }

    /// x -> stem -> f; f -> main -> out0; f -> aux -> out1: the aux conv feeds only out1.
    fn aux_head_model(outputs: &[&str]) -> Model {
        let mut g = GraphProto::new();
        g.node.push(node("Conv", "stem", &["x", "w0"], &["f"]));
        g.node.push(node("Conv", "main", &["f", "w1"], &["out0"]));
        g.node.push(node("Conv", "aux", &["f", "w2"], &["out1"]));
        g.output = outputs.iter().map(|o| output(o)).collect();
        let mut m = ModelProto::new();
        m.graph = Some(g).into();
        Model::index("m.onnx".into(), String::new(), m)
    }

    #[test]
    fn aux_head_does_not_reach_the_first_output() {
        let m = aux_head_model(&["out0", "out1"]);
        assert_eq!(unscored_nodes(&m), HashSet::from([2]));
        assert_eq!(
            reason(&m),
            "does not reach the scored output 'out0', it feeds only 'out1': its swap cannot change what is scored"
        );
        // Outputs the other way round: the main head is the one left out.
        let m = aux_head_model(&["out1", "out0"]);
        assert_eq!(unscored_nodes(&m), HashSet::from([1]));
    }

    #[test]
    fn every_node_reaches_a_single_output_chain() {
        let mut g = GraphProto::new();
        g.node.push(node("Conv", "a", &["x", "w0"], &["y"]));
        g.node.push(node("Relu", "b", &["y"], &["out"]));
        g.output.push(output("out"));
        let mut m = ModelProto::new();
        m.graph = Some(g).into();
        assert!(unscored_nodes(&Model::index("m.onnx".into(), String::new(), m)).is_empty());
    }
}
