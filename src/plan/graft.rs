//! Grafting the source's reused tensors into the target file.
//!
//! A reused float parameter is written into the tensor the target file stores for it, as
//! the audit swapped it: the source's values in the target tensor's element type and shape
//! (through a Cast or Transpose chain, the source's stored tensor into the target's, when
//! both files have the same chain). A reused QDQ parameter writes its whole (quantized
//! tensor, scale, zero point) triple, the target's names kept. Nothing else changes.
//!
//! The result is checked against the audit: the grafted file, lifted as the audit lifts a
//! model, must equal the lifted target with the audit's own swaps applied, tensor for tensor.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use ndarray::ArrayD;
use onnx_protobuf::{Message, ModelProto, TensorProto};

use super::stored::{stored, tensor_at, tensor_at_mut, RawModel, Slot};
use crate::audit::compare::PairValues;
use crate::model::quantized::qdq;
use crate::model::{tensor, DType, Model, ParamSource};
use crate::pipeline::PairContext;

/// What is written into one stored tensor of the target.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// New values, in the stored tensor's own element type and shape.
    Values(ArrayD<f64>),
    /// The whole tensor (a member of a QDQ triple), its name kept.
    Tensor(Box<TensorProto>),
}

/// The names of a reused QDQ parameter's triple in the target.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TripleNames {
    /// Quantized tensor.
    pub q: String,
    /// Scale.
    pub scale: String,
    /// Zero point (absent: 0).
    pub zero_point: Option<String>,
}

/// How one reused pair is grafted.
#[derive(Debug, Clone)]
pub struct Graft {
    /// Index into the pairing.
    pub pair: usize,
    /// Stored tensors of the target written, with what.
    pub writes: Vec<(Slot, String, Write)>,
    /// The nodes between the stored tensor and the layer (Identity, Cast, Transpose).
    pub chain: Vec<String>,
    /// A QDQ parameter's triple.
    pub triple: Option<TripleNames>,
    /// The name of the float tensor in `reused.safetensors`: the stored tensor's, or for a
    /// QDQ parameter the DequantizeLinear output the layer reads.
    pub key: String,
}

impl Graft {
    /// Stored target tensors this graft writes.
    pub fn slots(&self) -> impl Iterator<Item = Slot> + '_ {
        self.writes.iter().map(|w| w.0)
    }
}

/// How pair `i` would be grafted into `target`, or why it cannot be.
pub fn plan_graft(
    target: &RawModel,
    source: &RawModel,
    ctx: &PairContext,
    values: &PairValues,
    i: usize,
) -> Result<Graft, String> {
    let p = &ctx.pairing.pairs[i];
    if let ParamSource::Dequantized(n) = p.target.source {
        let d = qdq::at(&ctx.target, n).map_err(|e| format!("{e:#}"))?;
        let Some((_, src)) = &values.triples[i] else { return Err("the source's tensor is not a QDQ triple".into()) };
        let names = TripleNames {
            q: d.q.0.clone(),
            scale: d.scale.0.clone(),
            zero_point: d.zero_point.as_ref().map(|z| z.0.clone()),
        };
        let members = [(Some(&names.q), Some(&src.q)), (Some(&names.scale), Some(&src.scale))]
            .into_iter()
            .chain([(names.zero_point.as_ref(), src.zero_point.as_ref())]);
        let mut writes = Vec::new();
        for (name, with) in members {
            let (Some(name), Some(with)) = (name, with) else { continue };
            let s = stored(target.graph(), name).ok_or_else(|| format!("'{name}' is not stored in the target file"))?;
            if !s.chain.is_empty() {
                return Err(format!("'{name}' reaches its DequantizeLinear through {}", s.chain.join(" -> ")));
            }
            writes.push((s.slot, s.name, Write::Tensor(Box::new(with.clone()))));
        }
        let key = ctx.target.proto.graph.node[n].output.first().cloned().unwrap_or_default();
        return Ok(Graft { pair: i, writes, chain: vec![], triple: Some(names), key });
    }
    let t = stored(target.graph(), &p.target.name)
        .ok_or_else(|| format!("'{}' is not a tensor stored in the target file", p.target.name))?;
    if t.chain.is_empty() {
        let writes = vec![(t.slot, t.name.clone(), Write::Values(values.source[i].clone()))];
        return Ok(Graft { pair: i, writes, chain: vec![], triple: None, key: t.name });
    }
    // Lifted on load (a Cast or Transpose precomputed): graft the stored tensor beneath.
    let s = stored(source.graph(), &p.source.name)
        .ok_or_else(|| format!("'{}' is not a tensor stored in the source file", p.source.name))?;
    if s.chain != t.chain {
        return Err(format!(
            "the target stores it as '{}' through {}, the source as '{}' through {}: the stored tensors do not correspond",
            t.name,
            t.chain.join(" -> "),
            s.name,
            if s.chain.is_empty() { "nothing".to_string() } else { s.chain.join(" -> ") }
        ));
    }
    let (tt, st) = (tensor_at(target.graph(), t.slot), tensor_at(source.graph(), s.slot));
    if tt.dims != st.dims {
        return Err(format!("stored '{}' {:?} vs source '{}' {:?}", t.name, tt.dims, s.name, st.dims));
    }
    let v = tensor::decode(st).map_err(|e| format!("{e:#}"))?;
    Ok(Graft {
        pair: i,
        writes: vec![(t.slot, t.name.clone(), Write::Values(v))],
        chain: t.chain,
        triple: None,
        key: t.name,
    })
}

/// The target file with these grafts written in.
pub fn apply(target: &RawModel, grafts: &[&Graft]) -> Result<ModelProto> {
    let mut m = target.proto.clone();
    let g = m.graph.mut_or_insert_default();
    for gr in grafts {
        for (slot, name, w) in &gr.writes {
            let Some(t) = tensor_at_mut(g, *slot) else { bail!("stored tensor '{name}' vanished") };
            match w {
                Write::Values(v) => tensor::set_values(t, v)?,
                Write::Tensor(with) => {
                    let keep = std::mem::take(&mut t.name);
                    *t = (**with).clone();
                    t.name = keep;
                }
            }
        }
    }
    Ok(m)
}

/// The audit's own swaps of these pairs, applied together to the (lifted) target.
fn audited(ctx: &PairContext, values: &PairValues, pairs: &[usize]) -> Result<Model> {
    let mut m = ctx.target.clone();
    for &i in pairs {
        let p = &ctx.pairing.pairs[i];
        match &values.triples[i] {
            Some((_, src)) => m.set_triple(&p.target, src)?,
            None => m.set_values(&p.target, &values.source[i])?,
        }
    }
    Ok(m)
}

/// Pairs whose graft does not give the audit's swap: the grafted file, lifted, is compared
/// with the lifted target swapped as the audit swaps, initializer by initializer; each
/// tensor that differs is traced to the grafts that wrote it. Empty when they agree.
pub fn disagreements(
    ctx: &PairContext,
    values: &PairValues,
    grafts: &[&Graft],
    grafted: &ModelProto,
) -> Result<BTreeMap<usize, String>> {
    let pairs: Vec<usize> = grafts.iter().map(|g| g.pair).collect();
    let want = audited(ctx, values, &pairs)?;
    // Read as the audit read the target: made float32 first if it computes in half.
    let mut grafted = grafted.clone();
    crate::model::upcast::upcast(grafted.graph.mut_or_insert_default()).map_err(anyhow::Error::msg)?;
    let got = Model::index(ctx.target.path.clone(), String::new(), grafted);
    let (w, g) = (&want.proto.graph, &got.proto.graph);
    let names = |v: &[TensorProto]| v.iter().map(|t| t.name.clone()).collect::<Vec<_>>();
    if names(&w.initializer) != names(&g.initializer) || w.node.len() != g.node.len() {
        bail!("internal: the grafted model's graph lifts differently from the target's");
    }
    // A Cast/Transpose chain's stored tensor is read by nobody once lifted: its graft is
    // checked through the lifted tensor the layer reads.
    let read: std::collections::HashSet<&str> = g
        .node
        .iter()
        .flat_map(|n| n.input.iter().map(String::as_str))
        .chain(g.output.iter().map(|o| o.name.as_str()))
        .collect();
    let roots: std::collections::HashSet<&str> = grafts
        .iter()
        .filter(|gr| !gr.chain.is_empty())
        .flat_map(|gr| gr.writes.iter().map(|(_, n, _)| n.as_str()))
        .collect();
    let mut out = BTreeMap::new();
    for (a, b) in w.initializer.iter().zip(&g.initializer) {
        if roots.contains(a.name.as_str()) && !read.contains(a.name.as_str()) {
            continue;
        }
        if a.write_to_bytes()? == b.write_to_bytes()? {
            continue;
        }
        let owners: Vec<&&Graft> = grafts
            .iter()
            .filter(|gr| {
                let p = &ctx.pairing.pairs[gr.pair];
                p.target.name == a.name || gr.writes.iter().any(|(_, n, _)| *n == a.name)
            })
            .collect();
        if owners.is_empty() {
            bail!("internal: grafting changed '{}', which no reused tensor owns", a.name);
        }
        // A half file rounds what is written into it; the audit swapped the values unrounded.
        let rounds = match &ctx.target.upcast {
            Some(u) => format!(": the target file stores {}, which rounds the source's values", u.type_name()),
            None => String::new(),
        };
        for gr in owners {
            out.entry(gr.pair).or_insert_with(|| {
                format!(
                    "grafting it into the stored tensor does not give the audited swap ('{}' differs{rounds})",
                    a.name
                )
            });
        }
    }
    Ok(out)
}

/// Float element type of a stored tensor, for `reused.safetensors`.
pub fn dtype_of(t: &TensorProto) -> Option<DType> {
    DType::from_onnx(t.data_type)
}
