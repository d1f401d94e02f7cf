//! Verdicts from swap results: reusable parameters, the RN verdict, reuse shares.

use std::collections::BTreeMap;

use crate::report::{Row, Summary};

/// Fill reusable flags on rows (`delta <= tolerance`) and compute the summary.
/// Rows without a delta (data-free reports) get no verdict.
pub fn decide(rows: &mut [Row], tolerance: f64, rn_threshold: f64) -> Summary {
    let mut s = Summary::default();
    let (mut groups, mut ok_groups, mut scalars, mut ok_scalars) = (0usize, 0usize, 0usize, 0usize);
    for row in rows.iter_mut() {
        let Some(delta) = row.delta_dice else {
            continue;
        };
        // A NaN delta (a swap that produced NaN outputs) is never reusable.
        let ok = delta <= tolerance;
        row.reusable = Some(ok);
        groups += 1;
        scalars += row.numel;
        if ok {
            ok_groups += 1;
            ok_scalars += row.numel;
        }
        let list = if ok { &mut s.reusable } else { &mut s.not_reusable };
        list.entry(row.kind.clone()).or_insert_with(Vec::new).push(row.layer);
        s.max_delta = Some(s.max_delta.map_or(delta, |m: f64| m.max(delta)));
    }
    if groups == 0 {
        return s;
    }
    // Every audited kind appears in both maps, so "nothing reusable" is explicit.
    let kinds: Vec<String> = s.reusable.keys().chain(s.not_reusable.keys()).cloned().collect();
    for k in kinds {
        s.reusable.entry(k.clone()).or_default();
        s.not_reusable.entry(k).or_default();
    }
    s.reuse_share_groups = Some(ok_groups as f64 / groups as f64);
    s.reuse_share_scalars = Some(if scalars == 0 { 0.0 } else { ok_scalars as f64 / scalars as f64 });
    let w: Vec<bool> = rows.iter().filter(|r| r.kind == "W").filter_map(|r| r.reusable).collect();
    if !w.is_empty() {
        let share = w.iter().filter(|&&b| b).count() as f64 / w.len() as f64;
        s.conv_w_reusable_share = Some(share);
        s.rn = Some(share >= rn_threshold);
    }
    s
}

/// Layers per kind, e.g. for `--require-reusable` checks.
pub fn layers_by_kind(rows: &[Row], reusable: bool) -> BTreeMap<String, Vec<usize>> {
    let mut m: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.reusable == Some(reusable)) {
        m.entry(r.kind.clone()).or_default().push(r.layer);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: &str, layer: usize, delta: f64, numel: usize) -> Row {
        Row {
            family: if kind == "W" || kind == "B" { "conv" } else { "bn" }.into(),
            layer,
            node: format!("n{layer}"),
            op: "Conv".into(),
            kind: kind.into(),
            target_initializer: String::new(),
            source_initializer: String::new(),
            shape: String::new(),
            numel,
            rmse: 0.0,
            nrmse: None,
            cosine: 1.0,
            baseline_dice: Some(0.9),
            swapped_dice: Some(0.9 - delta),
            delta_dice: Some(delta),
            dice_fg: None,
            reusable: None,
            spectral_rel: None,
            subspace_overlap: None,
            dice_class: vec![],
        }
    }

    #[test]
    fn rn_and_shares_by_hand() {
        // W: layers 1 (bad), 2 (ok), 3 (ok at exactly the tolerance) -> 2/3 reusable -> RN at 0.5
        let mut rows =
            vec![row("W", 1, 0.5, 100), row("W", 2, 0.0, 50), row("W", 3, 0.02, 50), row("B", 1, f64::NAN, 10)];
        let s = decide(&mut rows, 0.02, 0.5);
        assert_eq!(s.rn, Some(true));
        assert!((s.conv_w_reusable_share.unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(s.reusable["W"], vec![2, 3]);
        assert_eq!(s.not_reusable["W"], vec![1]);
        assert_eq!(s.not_reusable["B"], vec![1], "NaN delta is not reusable");
        assert_eq!(s.reuse_share_groups, Some(0.5));
        assert_eq!(s.reuse_share_scalars, Some(100.0 / 210.0));
        let s = decide(&mut rows, 0.02, 0.7);
        assert_eq!(s.rn, Some(false));
    }
}
