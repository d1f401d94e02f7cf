//! Ranks and Spearman's rho by hand; the predictor table's nulls and intervals.

use super::*;

#[test]
fn ties_share_their_average_rank() {
    assert_eq!(ranks(&[10.0, 20.0, 20.0, 5.0]), vec![2.0, 3.5, 3.5, 1.0]);
    assert_eq!(ranks(&[1.0, 1.0, 1.0]), vec![2.0, 2.0, 2.0]);
    assert!(ranks(&[]).is_empty());
}

#[test]
fn spearman_by_hand() {
    // No ties: rho = 1 - 6 Σd² / (n (n² - 1)) = 1 - 6·4 / 120 = 0.8.
    assert!((spearman(&[1.0, 2.0, 3.0, 4.0, 5.0], &[2.0, 1.0, 4.0, 3.0, 5.0]) - 0.8).abs() < 1e-12);
    // Ties: ranks x = [1, 2.5, 2.5, 4], y = [1, 3, 2, 4]; Pearson on them = 4.5 / sqrt(4.5·5).
    let want = 4.5 / (4.5f64 * 5.0).sqrt();
    assert!((spearman(&[1.0, 2.0, 2.0, 3.0], &[1.0, 3.0, 2.0, 4.0]) - want).abs() < 1e-12);
    // Monotone transforms do not matter; reversal flips the sign.
    let x = [0.1, 0.5, 0.2, 0.9];
    let y: Vec<f64> = x.iter().map(|v: &f64| v.exp() * 3.0).collect();
    assert!((spearman(&x, &y) - 1.0).abs() < 1e-12);
    let rev: Vec<f64> = x.iter().map(|v| -v).collect();
    assert!((spearman(&x, &rev) + 1.0).abs() < 1e-12);
    assert!(spearman(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]).is_nan(), "a constant side has no rho");
}

fn row(kind: &str, layer: usize, rmse: f64, cosine: f64, delta: Option<f64>) -> Row {
    let mut r = crate::report::tests::fixed_report().rows[0].clone();
    (r.kind, r.layer, r.rmse, r.cosine, r.delta_dice) = (kind.into(), layer, rmse, cosine, delta);
    r.nrmse = None;
    r.spectral_rel = (kind == "W").then_some(rmse * 2.0);
    r.subspace_overlap = None;
    r
}

#[test]
fn the_table_per_kind_with_nulls_and_reasons() {
    let mut rows = Vec::new();
    // W: loss grows with rmse (rho +1), cosine falls with it (rho -1).
    for (l, d) in [(1, 0.01), (2, 0.3), (3, 0.05), (4, 0.2), (5, 0.1)] {
        rows.push(row("W", l, d * 10.0, 1.0 - d, Some(d)));
    }
    // B: two layers only; RM: four layers of the same loss; RV: not audited.
    rows.push(row("B", 1, 0.1, 0.9, Some(0.0)));
    rows.push(row("B", 2, 0.2, 0.8, Some(0.1)));
    for l in 1..=4 {
        rows.push(row("RM", l, l as f64, 0.5, Some(0.02)));
    }
    rows.push(row("RV", 1, 1.0, 1.0, None));
    let p = predictors(&rows, 0.95, 500);
    let get = |k: &str, m: &str| p.iter().find(|x| x.kind == k && x.metric == m).cloned();
    let w = get("W", "rmse").unwrap();
    assert_eq!((w.layers, w.rho, w.note.clone()), (5, Some(1.0), None));
    // Every resample of a perfect ranking is perfect (or has a constant side, left out).
    assert_eq!((w.rho_lo, w.rho_hi), (Some(1.0), Some(1.0)));
    assert_eq!(get("W", "cosine").unwrap().rho, Some(-1.0));
    assert_eq!(get("W", "spectral_rel").unwrap().rho, Some(1.0));
    assert!(get("W", "nrmse").is_none() && get("W", "subspace_overlap").is_none(), "absent metrics are not listed");
    let b = get("B", "rmse").unwrap();
    assert_eq!((b.rho, b.note.as_deref()), (None, Some("2 layer(s): at least 3 are needed")));
    assert!(get("B", "spectral_rel").is_none());
    let rm = get("RM", "rmse").unwrap();
    assert_eq!((rm.rho, rm.note.as_deref()), (None, Some("the measured loss is the same for every layer")));
    let rm = get("RM", "cosine").unwrap();
    assert_eq!((rm.rho, rm.note.as_deref()), (None, Some("cosine is the same for every layer")));
    assert!(p.iter().all(|x| x.kind != "RV"), "kinds without a measured loss are left out");
    // Kinds in order of first appearance, metrics in METRICS order.
    let order: Vec<(&str, &str)> = p.iter().map(|x| (x.kind.as_str(), x.metric.as_str())).collect();
    assert_eq!(order[..3], [("W", "rmse"), ("W", "cosine"), ("W", "spectral_rel")]);
}

#[test]
fn a_noisy_ranking_has_an_interval_around_its_rho() {
    let mut rng = SplitMix64::new(3);
    let rows: Vec<Row> = (1..=20)
        .map(|l| {
            let d = l as f64 / 20.0;
            row("W", l, d + 0.6 * rng.unit(), 0.5, Some(d))
        })
        .collect();
    let p = predictors(&rows, 0.9, 1000);
    let w = &p[0];
    let (rho, lo, hi) = (w.rho.unwrap(), w.rho_lo.unwrap(), w.rho_hi.unwrap());
    assert!(lo < rho && rho < hi && hi <= 1.0 && lo >= -1.0, "{lo} {rho} {hi}");
    assert!(rho > 0.3, "{rho}");
    assert_eq!(predictors(&rows, 0.9, 1000), p, "deterministic");
}
