//! A region's ONNX model assembled from bytes: every initializer of the target is encoded
//! once, and each region's model is its small graph (nodes, inputs, outputs) followed by the
//! encoded initializers it reads. Protobuf lets a repeated field's entries follow the other
//! fields, so the bytes parse to the very message a region holding copies of its tensors
//! would serialize to, without copying each tensor into every region first.

use anyhow::{anyhow, Result};
use onnx_protobuf::{GraphProto, Message, ModelProto, TensorProto};

/// `GraphProto.initializer` is field 5, `ModelProto.graph` field 7, both length-delimited.
const INITIALIZER_TAG: u8 = (5 << 3) | 2;
const GRAPH_TAG: u8 = (7 << 3) | 2;

/// Each initializer of a graph encoded as a `GraphProto.initializer` field, by index.
pub struct Encoded {
    fields: Vec<Vec<u8>>,
    names: Vec<String>,
}

impl Encoded {
    /// Encode every initializer of `graph` once.
    pub fn of(graph: &GraphProto) -> Result<Encoded> {
        let mut fields = Vec::with_capacity(graph.initializer.len());
        for t in &graph.initializer {
            fields.push(field(t)?);
        }
        Ok(Encoded { fields, names: graph.initializer.iter().map(|t| t.name.clone()).collect() })
    }
}

/// One tensor as a `GraphProto.initializer` field: tag, length, message.
fn field(t: &TensorProto) -> Result<Vec<u8>> {
    let mut out = vec![INITIALIZER_TAG];
    t.write_length_delimited_to_vec(&mut out).map_err(|e| anyhow!("encoding initializer '{}': {e}", t.name))?;
    Ok(out)
}

/// Protobuf's base-128 varint.
fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The bytes of `header` with `graph` as its graph, the graph's initializers being the
/// encoded ones at `initializers` (in that order), each replaced by the tensor of the same
/// name in `overrides` if there is one (a QDQ swap's triple). `graph` must hold no
/// initializers itself. The bytes are written into `out` (cleared first): a worker reuses
/// one buffer for all its regions, so their megabytes land in pages already mapped.
pub fn model_bytes(
    header: &ModelProto,
    graph: &GraphProto,
    initializers: &[usize],
    overrides: &[TensorProto],
    encoded: &Encoded,
    out: &mut Vec<u8>,
) -> Result<()> {
    anyhow::ensure!(graph.initializer.is_empty(), "a region graph to assemble holds initializers of its own");
    let mut fields: Vec<&[u8]> = Vec::with_capacity(initializers.len());
    let mut baked: Vec<Vec<u8>> = Vec::new();
    let mut replaced = vec![false; overrides.len()];
    for &i in initializers {
        let name = encoded.names.get(i).ok_or_else(|| anyhow!("initializer {i} is not in the model"))?;
        if let Some(k) = overrides.iter().position(|t| &t.name == name) {
            baked.push(field(&overrides[k])?);
            replaced[k] = true;
        }
    }
    if let Some(k) = replaced.iter().position(|r| !r) {
        anyhow::bail!("the region does not hold '{}'", overrides[k].name);
    }
    let mut baked = baked.iter();
    for &i in initializers {
        match overrides.iter().any(|t| t.name == encoded.names[i]) {
            true => fields.push(baked.next().ok_or_else(|| anyhow!("a baked initializer went missing"))?),
            false => fields.push(&encoded.fields[i]),
        }
    }
    let small = graph.write_to_bytes().map_err(|e| anyhow!("encoding a region graph: {e}"))?;
    let head = header.write_to_bytes().map_err(|e| anyhow!("encoding a region model: {e}"))?;
    let graph_len = small.len() + fields.iter().map(|f| f.len()).sum::<usize>();
    out.clear();
    out.reserve(head.len() + 11 + graph_len);
    out.extend_from_slice(&head);
    out.push(GRAPH_TAG);
    varint(graph_len as u64, out);
    out.extend_from_slice(&small);
    for f in fields {
        out.extend_from_slice(f);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use onnx_protobuf::{NodeProto, OperatorSetIdProto};

    fn tensor(name: &str, values: &[f32]) -> TensorProto {
        let mut t = TensorProto::new();
        t.name = name.into();
        t.data_type = 1;
        t.dims = vec![values.len() as i64];
        t.raw_data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        t
    }

    #[test]
    fn assembled_bytes_parse_to_the_region_with_copied_tensors() {
        let mut model = GraphProto::new();
        // A tensor over 127 bytes and one of several KiB: multi-byte lengths.
        let big: Vec<f32> = (0..3000).map(|i| i as f32 * 0.5).collect();
        model.initializer = vec![tensor("a", &[1.0, 2.0]), tensor("b", &big), tensor("c", &[3.0; 40])];
        let encoded = Encoded::of(&model).unwrap();
        let mut header = ModelProto::new();
        header.ir_version = 8;
        header.producer_name = "test".into();
        let mut op = OperatorSetIdProto::new();
        op.version = 17;
        header.opset_import = vec![op];
        let mut region = GraphProto::new();
        region.name = "region_3".into();
        let mut node = NodeProto::new();
        node.op_type = "Add".into();
        node.input = vec!["x".into(), "c".into()];
        node.output = vec!["y".into()];
        region.node = vec![node];
        let swapped = tensor("b", &[9.0; 7]);
        for (inits, overrides) in [(vec![2, 0], vec![]), (vec![1, 2], vec![swapped.clone()]), (vec![], vec![])] {
            let mut bytes = vec![1, 2, 3];
            model_bytes(&header, &region, &inits, &overrides, &encoded, &mut bytes).unwrap();
            let mut simple = header.clone();
            let mut g = region.clone();
            for &i in &inits {
                let t = overrides.iter().find(|t| t.name == model.initializer[i].name);
                g.initializer.push(t.unwrap_or(&model.initializer[i]).clone());
            }
            simple.graph = Some(g).into();
            assert_eq!(ModelProto::parse_from_bytes(&bytes).unwrap(), simple);
        }
        let err = model_bytes(&header, &region, &[0], &[swapped], &encoded, &mut Vec::new()).unwrap_err();
        assert_eq!(err.to_string(), "the region does not hold 'b'");
    }

    #[test]
    fn varints_as_protobuf_writes_them() {
        for v in [0u64, 1, 127, 128, 300, 16_383, 16_384, 4_049_499, u32::MAX as u64] {
            let mut ours = Vec::new();
            varint(v, &mut ours);
            let mut theirs = Vec::new();
            let mut os = protobuf::CodedOutputStream::vec(&mut theirs);
            os.write_raw_varint64(v).unwrap();
            os.flush().unwrap();
            drop(os);
            assert_eq!(ours, theirs, "{v}");
        }
    }
}
