//! Structural checks of an ONNX file on load, before anything is allocated from what it
//! declares: tensor dims that are negative or overflow, data that does not hold what the
//! dims say, names defined twice (ONNX Runtime would run one copy while the tool reads
//! another), and cycles. Each failure is a corrupt-file error naming the tensor or node.
//! Nodes listed out of topological order (ONNX requires the order, ONNX Runtime sorts them
//! itself) are put in order, so that layer numbers and pairing follow the data flow.

use std::collections::HashMap;

use onnx_protobuf::{GraphProto, TensorProto};

/// The most elements one tensor may declare (2^40): far beyond any real model, small
/// enough that sizes in bytes cannot overflow.
pub const MAX_ELEMENTS: u64 = 1 << 40;

/// The number of elements `dims` declare, or why they cannot be real.
pub fn checked_numel(name: &str, dims: &[i64]) -> Result<u64, String> {
    let mut n: u64 = 1;
    for &d in dims {
        if d < 0 {
            return Err(format!("tensor '{name}' declares a negative dimension in its shape {dims:?}"));
        }
        n = n.checked_mul(d as u64).filter(|&n| n <= MAX_ELEMENTS).ok_or_else(|| {
            format!("tensor '{name}' declares shape {dims:?}, more than {MAX_ELEMENTS} elements (2^40)")
        })?;
    }
    Ok(n)
}

/// Check a tensor's dims alone (before external data is read by them).
pub fn dims(t: &TensorProto) -> Result<(), String> {
    checked_numel(&t.name, &t.dims).map(|_| ())
}

/// Check that a tensor's data (inline; external data already read in) holds exactly what
/// its dims and element type declare. Types whose storage is not fixed are not checked.
pub fn data(t: &TensorProto) -> Result<(), String> {
    let n = checked_numel(&t.name, &t.dims)?;
    let what = |have: String, need: String| {
        Err(format!(
            "tensor '{}' declares shape {:?} of {} ({need}) but holds {have}",
            t.name,
            t.dims,
            super::tensor::onnx_type_name(t.data_type)
        ))
    };
    if !t.raw_data.is_empty() {
        let Some(size) = byte_size(t.data_type) else { return Ok(()) };
        let need = n * size;
        if t.raw_data.len() as u64 != need {
            return what(format!("{} bytes", t.raw_data.len()), format!("{need} bytes"));
        }
        return Ok(());
    }
    let (have, per) = match t.data_type {
        1 => (t.float_data.len(), 1),
        14 => (t.float_data.len(), 2),
        11 => (t.double_data.len(), 1),
        15 => (t.double_data.len(), 2),
        2..=6 | 9 | 10 | 16..=20 => (t.int32_data.len(), 1),
        7 => (t.int64_data.len(), 1),
        12 | 13 => (t.uint64_data.len(), 1),
        8 => (t.string_data.len(), 1),
        _ => return Ok(()),
    };
    if have as u64 != n * per {
        return what(format!("{have} values"), format!("{} values", n * per));
    }
    Ok(())
}

/// Bytes per element of a fixed-size ONNX element type in `raw_data`.
fn byte_size(code: i32) -> Option<u64> {
    match code {
        2 | 3 | 9 | 17..=20 => Some(1),
        4 | 5 | 10 | 16 => Some(2),
        1 | 6 | 12 => Some(4),
        7 | 11 | 13 | 14 => Some(8),
        15 => Some(16),
        _ => None,
    }
}

/// Every tensor name is defined once: by one initializer (dense or sparse) or one node output.
pub fn unique_names(g: &GraphProto) -> Result<(), String> {
    let mut seen: HashMap<&str, String> = HashMap::new();
    let inits = g.initializer.iter().enumerate().map(|(i, t)| (t.name.as_str(), format!("initializer #{}", i + 1)));
    // A sparse initializer is named by its values tensor; ONNX Runtime densifies it into the
    // same table as the dense ones.
    let sparse =
        g.sparse_initializer.iter().enumerate().filter_map(|(i, t)| {
            t.values.as_ref().map(|v| (v.name.as_str(), format!("sparse initializer #{}", i + 1)))
        });
    let outputs = g.node.iter().flat_map(|n| {
        n.output.iter().filter(|o| !o.is_empty()).map(move |o| (o.as_str(), format!("the output of node '{}'", n.name)))
    });
    for (name, what) in inits.chain(sparse).chain(outputs) {
        if let Some(first) = seen.get(name) {
            return Err(format!(
                "tensor '{name}' is defined twice ({first} and {what}); ONNX Runtime would use one copy and the \
                 audit could read the other: remove the duplicate"
            ));
        }
        seen.insert(name, what);
    }
    Ok(())
}

/// The graph has no cycle (a node that feeds itself through other nodes). Names a node on
/// the cycle.
pub fn acyclic(g: &GraphProto) -> Result<(), String> {
    let producer: HashMap<&str, usize> =
        g.node.iter().enumerate().flat_map(|(i, n)| n.output.iter().map(move |o| (o.as_str(), i))).collect();
    // Iterative depth-first search; 1 = on the current path, 2 = done.
    let mut state = vec![0u8; g.node.len()];
    for start in 0..g.node.len() {
        if state[start] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        state[start] = 1;
        while let Some(&mut (i, ref mut next)) = stack.last_mut() {
            let inputs = &g.node[i].input;
            if *next == inputs.len() {
                state[i] = 2;
                stack.pop();
                continue;
            }
            let input = inputs[*next].as_str();
            *next += 1;
            let Some(&p) = producer.get(input) else { continue };
            match state[p] {
                0 => {
                    state[p] = 1;
                    stack.push((p, 0));
                }
                1 => {
                    let name = |k: usize| {
                        let n = &g.node[k];
                        if n.name.is_empty() {
                            format!("{} #{}", n.op_type, k)
                        } else {
                            n.name.clone()
                        }
                    };
                    return Err(format!(
                        "the graph has a cycle: node '{}' ({}) depends on its own output through '{input}'",
                        name(p),
                        g.node[p].op_type
                    ));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// The nodes in topological order, keeping the file's order wherever the data flow allows
/// (a file already in order gives `None`). A node with subgraphs comes after the producers
/// of what they read from outside. A cycle left (through a subgraph) is an error.
pub fn topological_order(g: &GraphProto) -> Result<Option<Vec<usize>>, String> {
    let producer: HashMap<&str, usize> = g
        .node
        .iter()
        .enumerate()
        .flat_map(|(i, n)| n.output.iter().filter(|o| !o.is_empty()).map(move |o| (o.as_str(), i)))
        .collect();
    let mut waiting = vec![0usize; g.node.len()];
    let mut feeds: Vec<Vec<usize>> = vec![Vec::new(); g.node.len()];
    let mut sorted = true;
    for (i, n) in g.node.iter().enumerate() {
        let captured = super::control_flow::captured(n);
        let mut from: Vec<usize> = n
            .input
            .iter()
            .map(String::as_str)
            .chain(captured.iter().map(String::as_str))
            .filter_map(|x| producer.get(x).copied())
            .collect();
        from.sort_unstable();
        from.dedup();
        sorted &= from.iter().all(|&p| p < i);
        waiting[i] = from.len();
        for p in from {
            feeds[p].push(i);
        }
    }
    if sorted {
        return Ok(None);
    }
    // Kahn's algorithm, always taking the ready node that comes first in the file.
    let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<usize>> =
        (0..g.node.len()).filter(|&i| waiting[i] == 0).map(std::cmp::Reverse).collect();
    let mut order = Vec::with_capacity(g.node.len());
    while let Some(std::cmp::Reverse(i)) = ready.pop() {
        order.push(i);
        for &c in &feeds[i] {
            waiting[c] -= 1;
            if waiting[c] == 0 {
                ready.push(std::cmp::Reverse(c));
            }
        }
    }
    if let Some(stuck) = (0..g.node.len()).find(|&i| waiting[i] > 0) {
        let n = &g.node[stuck];
        return Err(format!(
            "the graph has a cycle: node '{}' ({}) depends on its own output (through a subgraph)",
            n.name, n.op_type
        ));
    }
    Ok(Some(order))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(dtype: i32, dims: Vec<i64>) -> TensorProto {
        let mut t = TensorProto::new();
        t.name = "t".into();
        t.data_type = dtype;
        t.dims = dims;
        t
    }

    #[test]
    fn dims_that_cannot_be_real() {
        assert_eq!(checked_numel("t", &[2, 3, 4]), Ok(24));
        assert_eq!(checked_numel("t", &[]), Ok(1));
        assert!(checked_numel("t", &[4, -1]).unwrap_err().contains("negative"));
        assert!(checked_numel("t", &[1 << 40, 2]).unwrap_err().contains("2^40"));
        assert!(checked_numel("t", &[1 << 32, 1 << 32, 1 << 32]).unwrap_err().contains("2^40"));
    }

    #[test]
    fn data_must_hold_the_declared_shape() {
        let mut t = tensor(1, vec![2, 2]);
        t.raw_data = vec![0; 16];
        assert_eq!(data(&t), Ok(()));
        t.raw_data = vec![0; 12];
        assert!(data(&t).unwrap_err().contains("holds 12 bytes"));
        let mut t = tensor(7, vec![3]);
        t.int64_data = vec![1, 2];
        assert!(data(&t).unwrap_err().contains("holds 2 values"));
        let mut t = tensor(1, vec![]);
        t.float_data = vec![1.0];
        assert_eq!(data(&t), Ok(()));
    }

    fn node(name: &str, inputs: &[&str], outputs: &[&str]) -> onnx_protobuf::NodeProto {
        let mut n = onnx_protobuf::NodeProto::new();
        n.name = name.into();
        n.input = inputs.iter().map(|s| s.to_string()).collect();
        n.output = outputs.iter().map(|s| s.to_string()).collect();
        n
    }

    #[test]
    fn nodes_out_of_order_are_sorted_keeping_the_file_order_where_free() {
        let mut g = GraphProto::new();
        // c reads b's output, b reads a's; d is independent and stays where the file has it.
        g.node = vec![node("c", &["y"], &["z"]), node("d", &["x"], &["w"]), node("b", &["a_out"], &["y"])];
        g.node.push(node("a", &["x"], &["a_out"]));
        assert_eq!(topological_order(&g), Ok(Some(vec![1, 3, 2, 0])));
        g.node = vec![node("a", &["x"], &["a_out"]), node("b", &["a_out"], &["y"])];
        assert_eq!(topological_order(&g), Ok(None));
    }
}
