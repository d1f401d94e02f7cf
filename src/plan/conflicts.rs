//! Stored tensors shared between parameters. A file may store one tensor for several
//! parameters (tied weights, a zero point shared by QDQ triples). Grafting such a tensor for
//! one reused parameter would also change the others: that is refused unless every
//! parameter reading it is reused from the same source tensor.

use std::collections::{BTreeMap, HashMap};

use super::graft::Graft;
use super::stored::{stored, RawModel, Slot};
use crate::model::quantized::qdq;
use crate::model::{Param, ParamSource};
use crate::pipeline::PairContext;

/// The stored tensors of a target parameter.
fn slots_of(target: &RawModel, ctx: &PairContext, p: &Param) -> Vec<(Slot, String)> {
    let names: Vec<String> = match p.source {
        ParamSource::Dequantized(n) => match qdq::at(&ctx.target, n) {
            Ok(d) => [Some(d.q.0), Some(d.scale.0), d.zero_point.map(|z| z.0)].into_iter().flatten().collect(),
            Err(_) => vec![],
        },
        _ => vec![p.name.clone()],
    };
    names.iter().filter_map(|n| stored(target.graph(), n)).map(|s| (s.slot, s.name)).collect()
}

/// Reused grafts that cannot be written: pair index -> why. A graft conflicts when a stored
/// tensor it writes is also read by a parameter that is not reused, or is written by an
/// earlier reused graft with other contents.
pub fn conflicts(target: &RawModel, ctx: &PairContext, grafts: &[&Graft]) -> BTreeMap<usize, String> {
    let reused: Vec<(String, usize, String)> = grafts
        .iter()
        .map(|g| {
            let p = &ctx.pairing.pairs[g.pair];
            (p.layer.family.to_string(), p.layer.index, p.kind().to_string())
        })
        .collect();
    let mut readers: HashMap<Slot, Vec<String>> = HashMap::new();
    for l in &ctx.target_layers.layers {
        for p in &l.params {
            let key = (l.family.to_string(), l.index, p.kind.to_string());
            if reused.contains(&key) {
                continue;
            }
            for (slot, _) in slots_of(target, ctx, p) {
                readers.entry(slot).or_default().push(format!("{} {} {} ({})", l.family, l.index, p.kind, l.node));
            }
        }
    }
    let mut out = BTreeMap::new();
    let mut written: HashMap<Slot, (usize, &super::graft::Write)> = HashMap::new();
    for g in grafts {
        for (slot, name, w) in &g.writes {
            if let Some(others) = readers.get(slot) {
                out.entry(g.pair).or_insert_with(|| {
                    format!("its stored tensor '{name}' is also read as {}, which is not reused", others.join(", "))
                });
            }
            match written.get(slot) {
                Some((first, earlier)) if *earlier != w => {
                    let p = &ctx.pairing.pairs[*first];
                    out.entry(g.pair).or_insert_with(|| {
                        format!(
                            "its stored tensor '{name}' is also {} {} {}'s, reused with other values",
                            p.layer.family,
                            p.layer.index,
                            p.kind()
                        )
                    });
                }
                Some(_) => {}
                None => {
                    written.insert(*slot, (g.pair, w));
                }
            }
        }
    }
    out
}
