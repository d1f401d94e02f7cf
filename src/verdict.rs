//! Verdicts from swap results: reusable parameters (point estimate and three-way decision
//! from the interval), the RN verdict and its range, reuse shares.
//!
//! The RN verdict is a share of conv layers (METHOD.md): linear W rows never count in it.
//! Reuse shares count every audited (layer, kind) of every family. The per-kind lists of
//! the summary are keyed by group name ([`group`]): `W`..`RB` for conv and BN as always,
//! `linear.W`, `norm.RW`, ... for the other families.

use std::collections::BTreeMap;

use crate::model::layers::group_name;
use crate::model::{Family, Kind};
use crate::report::{Row, Summary};

/// A decision at the stated confidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The whole interval is at or below the tolerance (or, for the RN, the share of
    /// decided-reusable layers reaches the threshold).
    Reusable,
    /// The whole interval is above the tolerance (or even counting undecided layers as
    /// reusable the share stays below the threshold).
    NotReusable,
    /// The interval contains the tolerance (or the threshold lies inside the share's range).
    Undecided,
}

impl Decision {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Decision::Reusable => "reusable",
            Decision::NotReusable => "not_reusable",
            Decision::Undecided => "undecided",
        }
    }

    /// The decision of an interval `[lo, hi]` of a swap's loss against the tolerance (NaN
    /// ends decide nothing).
    pub fn of_interval(lo: f64, hi: f64, tolerance: f64) -> Decision {
        if hi <= tolerance {
            Decision::Reusable
        } else if lo > tolerance {
            Decision::NotReusable
        } else {
            Decision::Undecided
        }
    }
}

/// The group a row belongs to in the summary's lists and `--require-reusable`: its kind
/// for conv and BN rows, `family.kind` for the other families.
pub fn group(row: &Row) -> String {
    match (Family::parse(&row.family), Kind::parse(&row.kind)) {
        (Some(f), Some(k)) => group_name(f, k),
        _ => format!("{}.{}", row.family, row.kind),
    }
}

/// Whether a row is a conv W swap, the only rows the RN verdict counts.
pub fn is_conv_w(row: &Row) -> bool {
    row.family == "conv" && row.kind == "W"
}

/// Fill reusable flags (`delta <= tolerance`) and decisions (from the interval, where the
/// row has one) on rows and compute the summary. Rows without a delta (data-free reports)
/// get no verdict.
pub fn decide(rows: &mut [Row], tolerance: f64, rn_threshold: f64) -> Summary {
    let mut s = Summary::default();
    let (mut groups, mut ok_groups, mut scalars, mut ok_scalars) = (0usize, 0usize, 0usize, 0usize);
    for row in rows.iter_mut() {
        let Some(delta) = row.delta_dice else {
            continue;
        };
        // A swap whose output is not finite on some image predicts nothing there: reusing
        // the parameter breaks the network on that input, whatever the delta elsewhere. (A
        // NaN delta is never reusable either.)
        let broken = row.non_finite_images.is_some_and(|n| n > 0);
        let ok = delta <= tolerance && !broken;
        row.reusable = Some(ok);
        if let (Some(lo), Some(hi)) = (row.delta_dice_lo, row.delta_dice_hi) {
            let d = if broken { Decision::NotReusable } else { Decision::of_interval(lo, hi, tolerance) };
            row.decision = Some(d);
            if d == Decision::Undecided {
                s.undecided.entry(group(row)).or_default().push(row.layer);
            }
        }
        groups += 1;
        scalars += row.numel;
        if ok {
            ok_groups += 1;
            ok_scalars += row.numel;
        }
        let list = if ok { &mut s.reusable } else { &mut s.not_reusable };
        list.entry(group(row)).or_insert_with(Vec::new).push(row.layer);
        s.max_delta = Some(s.max_delta.map_or(delta, |m: f64| m.max(delta)));
    }
    if groups == 0 {
        return s;
    }
    // Every audited kind appears in both maps, so "nothing reusable" is explicit.
    let kinds: Vec<String> = s.reusable.keys().chain(s.not_reusable.keys()).cloned().collect();
    let with_intervals = rows.iter().any(|r| r.decision.is_some());
    for k in kinds {
        s.reusable.entry(k.clone()).or_default();
        if with_intervals {
            s.undecided.entry(k.clone()).or_default();
        }
        s.not_reusable.entry(k).or_default();
    }
    s.reuse_share_groups = Some(ok_groups as f64 / groups as f64);
    s.reuse_share_scalars = Some(if scalars == 0 { 0.0 } else { ok_scalars as f64 / scalars as f64 });
    let w: Vec<bool> = rows.iter().filter(|r| is_conv_w(r)).filter_map(|r| r.reusable).collect();
    if !w.is_empty() {
        let share = w.iter().filter(|&&b| b).count() as f64 / w.len() as f64;
        s.conv_w_reusable_share = Some(share);
        s.rn = Some(share >= rn_threshold);
        let decisions: Vec<Decision> = rows.iter().filter(|r| is_conv_w(r)).filter_map(|r| r.decision).collect();
        if decisions.len() == w.len() {
            let count = |keep: fn(Decision) -> bool| decisions.iter().filter(|&&d| keep(d)).count() as f64;
            let lo = count(|d| d == Decision::Reusable) / w.len() as f64;
            let hi = count(|d| d != Decision::NotReusable) / w.len() as f64;
            s.conv_w_reusable_share_lo = Some(lo);
            s.conv_w_reusable_share_hi = Some(hi);
            s.rn_decision = Some(rn_decision(lo, hi, rn_threshold));
        }
    }
    s
}

/// The RN decision from the range of the W-reusable share: reusable when even the
/// decided-only share reaches the threshold, not reusable when even counting undecided
/// layers as reusable it stays below, else undecided.
pub fn rn_decision(lo: f64, hi: f64, rn_threshold: f64) -> Decision {
    if lo >= rn_threshold {
        Decision::Reusable
    } else if hi < rn_threshold {
        Decision::NotReusable
    } else {
        Decision::Undecided
    }
}

/// Layers per group ([`group`]), e.g. for `--require-reusable` checks.
pub fn layers_by_kind(rows: &[Row], reusable: bool) -> BTreeMap<String, Vec<usize>> {
    let mut m: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.reusable == Some(reusable)) {
        m.entry(group(r)).or_default().push(r.layer);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: &str, layer: usize, delta: f64, numel: usize) -> Row {
        family_row(if kind == "W" || kind == "B" { "conv" } else { "bn" }, kind, layer, delta, numel)
    }

    fn family_row(family: &str, kind: &str, layer: usize, delta: f64, numel: usize) -> Row {
        Row {
            family: family.into(),
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
            delta_dice_lo: None,
            delta_dice_hi: None,
            decision: None,
            images_used: None,
            budget: None,
            non_finite_images: None,
        }
    }

    #[test]
    fn a_swap_with_non_finite_outputs_is_not_reusable_whatever_its_delta() {
        // W 1: delta 0.001 and a reusable interval, but NaN outputs on 1 image; W 2: the same
        // numbers, all finite; W 3: 0 non-finite images counts as finite.
        let mut rows: Vec<Row> = (1..=3).map(|l| with_interval(row("W", l, 0.001, 10), 0.0, 0.002)).collect();
        rows[0].non_finite_images = Some(1);
        rows[2].non_finite_images = Some(0);
        let s = decide(&mut rows, 0.02, 0.5);
        let got: Vec<(Option<bool>, Option<Decision>)> = rows.iter().map(|r| (r.reusable, r.decision)).collect();
        assert_eq!(
            got,
            vec![
                (Some(false), Some(Decision::NotReusable)),
                (Some(true), Some(Decision::Reusable)),
                (Some(true), Some(Decision::Reusable))
            ]
        );
        assert_eq!((s.reusable["W"].clone(), s.not_reusable["W"].clone()), (vec![2, 3], vec![1]));
        assert_eq!(s.conv_w_reusable_share_lo, Some(2.0 / 3.0));
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
        // No intervals: no decisions, no range.
        assert!(rows.iter().all(|r| r.decision.is_none()));
        assert_eq!((s.conv_w_reusable_share_lo, s.rn_decision), (None, None));
        assert!(s.undecided.is_empty());
    }

    fn with_interval(mut r: Row, lo: f64, hi: f64) -> Row {
        (r.delta_dice_lo, r.delta_dice_hi) = (Some(lo), Some(hi));
        r
    }

    #[test]
    fn three_way_decisions_and_the_rn_range_by_hand() {
        // W 1: clearly bad; W 2: clearly fine; W 3: point 0.018 (reusable) but its interval
        // [0.012, 0.025] holds the tolerance; W 4: point 0.022 (not reusable), interval
        // [0.019, 0.03] holds it too; B 1: interval at the tolerance exactly -> reusable.
        let mut rows = vec![
            with_interval(row("W", 1, 0.3, 10), 0.25, 0.35),
            with_interval(row("W", 2, 0.001, 10), 0.0, 0.004),
            with_interval(row("W", 3, 0.018, 10), 0.012, 0.025),
            with_interval(row("W", 4, 0.022, 10), 0.019, 0.03),
            with_interval(row("B", 1, 0.01, 10), 0.0, 0.02),
        ];
        let s = decide(&mut rows, 0.02, 0.5);
        let got: Vec<Decision> = rows.iter().map(|r| r.decision.unwrap()).collect();
        use Decision::*;
        assert_eq!(got, [NotReusable, Reusable, Undecided, Undecided, Reusable]);
        // The point meaning of `reusable` is kept.
        let points: Vec<bool> = rows.iter().map(|r| r.reusable.unwrap()).collect();
        assert_eq!(points, [false, true, true, false, true]);
        assert_eq!(s.undecided["W"], vec![3, 4]);
        assert_eq!(s.undecided["B"], Vec::<usize>::new());
        // Point share 2/4 = 0.5 -> RN by point; range [1/4, 3/4] holds 0.5 -> undecided.
        assert_eq!(s.rn, Some(true));
        assert_eq!((s.conv_w_reusable_share_lo, s.conv_w_reusable_share_hi), (Some(0.25), Some(0.75)));
        assert_eq!(s.rn_decision, Some(Undecided));
        // Threshold 0.25: even decided-only reaches it; 0.8: even counting undecided misses.
        assert_eq!(decide(&mut rows, 0.02, 0.25).rn_decision, Some(Reusable));
        assert_eq!(decide(&mut rows, 0.02, 0.8).rn_decision, Some(NotReusable));
        assert_eq!(rn_decision(0.5, 0.5, 0.5), Reusable);
    }

    #[test]
    fn linear_and_norm_rows_count_in_shares_not_in_the_rn_verdict() {
        // conv W: 1 of 4 reusable (25%); linear W: 3 of 3. Counting linear W in the RN share
        // would give 4/7 = 57% and a wrong RN at 0.5.
        let mut rows = vec![
            row("W", 1, 0.5, 10),
            row("W", 2, 0.5, 10),
            row("W", 3, 0.5, 10),
            row("W", 4, 0.0, 10),
            family_row("linear", "W", 1, 0.0, 20),
            family_row("linear", "W", 2, 0.0, 20),
            family_row("linear", "W", 3, 0.01, 20),
            family_row("linear", "B", 1, 0.3, 5),
            family_row("norm", "RW", 1, 0.0, 5),
            row("RW", 1, 0.1, 5),
        ];
        let s = decide(&mut rows, 0.02, 0.5);
        assert_eq!(s.conv_w_reusable_share, Some(0.25));
        assert_eq!(s.rn, Some(false));
        // Lists: conv and BN under their bare kinds, the others prefixed.
        assert_eq!(s.reusable["W"], vec![4]);
        assert_eq!(s.reusable["linear.W"], vec![1, 2, 3]);
        assert_eq!(s.not_reusable["linear.B"], vec![1]);
        assert_eq!(s.reusable["norm.RW"], vec![1]);
        assert_eq!(s.not_reusable["RW"], vec![1]);
        let keys: Vec<&str> = s.reusable.keys().map(String::as_str).collect();
        assert_eq!(keys, ["RW", "W", "linear.B", "linear.W", "norm.RW"]);
        // Shares: every family counts. Groups 5 of 10 reusable; scalars 10+60+5 of 115.
        assert_eq!(s.reuse_share_groups, Some(0.5));
        assert_eq!(s.reuse_share_scalars, Some(75.0 / 115.0));
    }

    #[test]
    fn rn_decision_not_withheld_when_linear_w_rows_are_audited() {
        // Bug: the RN range counted the decisions of every W row (linear too) against the
        // conv W rows, so with a linear layer the counts never matched and the RN decision
        // at the stated confidence was silently withheld (None). conv W: 1 decided
        // reusable, 1 undecided, 2 not reusable; linear W: 2 reusable, 1 undecided.
        let mut rows = vec![
            with_interval(row("W", 1, 0.001, 10), 0.0, 0.004),
            with_interval(row("W", 2, 0.018, 10), 0.012, 0.025),
            with_interval(row("W", 3, 0.3, 10), 0.25, 0.35),
            with_interval(row("W", 4, 0.3, 10), 0.25, 0.35),
            with_interval(family_row("linear", "W", 1, 0.0, 20), 0.0, 0.001),
            with_interval(family_row("linear", "W", 2, 0.0, 20), 0.0, 0.001),
            with_interval(family_row("linear", "W", 3, 0.019, 20), 0.01, 0.03),
        ];
        let s = decide(&mut rows, 0.02, 0.5);
        // Range over conv W only: decided-only 1/4, counting undecided 2/4.
        assert_eq!((s.conv_w_reusable_share_lo, s.conv_w_reusable_share_hi), (Some(0.25), Some(0.5)));
        assert_eq!(s.rn_decision, Some(Decision::Undecided));
        assert_eq!(decide(&mut rows, 0.02, 0.6).rn_decision, Some(Decision::NotReusable));
        assert_eq!(decide(&mut rows, 0.02, 0.25).rn_decision, Some(Decision::Reusable));
    }

    #[test]
    fn undecided_linear_rows_listed_under_their_group_not_the_conv_kind() {
        // Bug: undecided rows were keyed by bare kind, so an undecided linear W showed up
        // in the summary (and the printed table) as an undecided conv W layer.
        let mut rows = vec![
            with_interval(row("W", 1, 0.001, 10), 0.0, 0.004),
            with_interval(family_row("linear", "W", 2, 0.019, 20), 0.01, 0.03),
            with_interval(family_row("norm", "RW", 1, 0.019, 20), 0.01, 0.03),
        ];
        let s = decide(&mut rows, 0.02, 0.5);
        assert_eq!(s.undecided["W"], Vec::<usize>::new());
        assert_eq!(s.undecided["linear.W"], vec![2]);
        assert_eq!(s.undecided["norm.RW"], vec![1]);
        assert!(!s.undecided.contains_key("RW"));
    }
}
