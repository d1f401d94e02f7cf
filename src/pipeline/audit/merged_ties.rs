//! Target tensors read by several layers whose source counterparts differ. A swap replaces
//! a tensor, so it changes every layer that reads it: for a real tie (a module applied
//! twice) the source ties the same layers and the rows are one and the same swap. The
//! TorchScript exporter also merges initializers that merely hold equal values (BN scales
//! still at their initial 1, zero biases) into one tensor; paired by position with a source
//! that keeps them apart, each of those layers' rows would put a different source tensor
//! into all of them at once, a swap of no single layer (measured on a torchvision LR-ASPP
//! export: delta -0.0071 where the one-layer swap loses -0.0021). Those pairs are left out
//! of the scan, listed as unmatched and not audited with the reason; verdicts they would
//! speak for are withheld as for any unmatched parameter.

use std::collections::BTreeMap;

use crate::model::Model;
use crate::pair::{Pairing, Unmatched};

/// Move the pairs of target tensors read by several layers and paired with source tensors
/// of different values into `pairing.unmatched`; a warning naming the first (`None` when
/// there are none).
pub fn leave_out(source: &Model, pairing: &mut Pairing) -> Option<String> {
    let mut by_target: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, p) in pairing.pairs.iter().enumerate() {
        by_target.entry(p.target.name.as_str()).or_default().push(i);
    }
    let mut off: BTreeMap<usize, String> = BTreeMap::new();
    for (name, ix) in &by_target {
        let mut distinct: Vec<&str> = ix.iter().map(|&i| pairing.pairs[i].source.name.as_str()).collect();
        distinct.sort_unstable();
        distinct.dedup();
        if ix.len() < 2 || distinct.len() < 2 || same_values(source, pairing, ix) {
            continue;
        }
        let layers: Vec<String> = ix
            .iter()
            .map(|&i| {
                let p = &pairing.pairs[i];
                format!("{} {} {}", p.layer.family, p.layer.index, p.kind())
            })
            .collect();
        let reason = format!(
            "the target's '{name}' is read by {} but paired with {} different source tensors ({}): the exporter \
             merged equal tensors into one (the TorchScript exporter deduplicates initializers of equal values), so a \
             swap would change all of those layers at once, not this one; re-export the target so that each layer \
             keeps its own tensor (torch.onnx.export(..., dynamo=True, optimize=False)) or pass a --match file",
            layers.join(", "),
            distinct.len(),
            distinct.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", ")
        );
        off.extend(ix.iter().map(|&i| (i, reason.clone())));
    }
    let first = off.values().next()?.clone();
    let pairs = std::mem::take(&mut pairing.pairs);
    for (i, p) in pairs.into_iter().enumerate() {
        match off.get(&i) {
            Some(reason) => pairing.unmatched.push(Unmatched {
                side: "target",
                layer: p.layer.label(),
                kind: p.kind().to_string(),
                initializer: p.target.name.clone(),
                reason: reason.clone(),
            }),
            None => pairing.pairs.push(p),
        }
    }
    Some(format!("{} parameter pair(s) not swapped (listed as unmatched): {first}", off.len()))
}

/// Whether the source tensors paired with these pairs all hold the same values (then the
/// swap is the same whichever layer's row it is: a tie the source shares in value).
fn same_values(source: &Model, pairing: &Pairing, ix: &[usize]) -> bool {
    let values: Vec<_> = ix.iter().map(|&i| source.values(&pairing.pairs[i].source).ok()).collect();
    match values.first() {
        Some(Some(a)) => values.iter().all(|v| v.as_ref().is_some_and(|v| v.shape() == a.shape() && v == a)),
        _ => false,
    }
}
