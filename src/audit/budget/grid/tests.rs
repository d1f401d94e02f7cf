//! The grid and the bisection on synthetic losses with a known answer.

use super::*;

/// Run a bisection to the end on `loss(j)`, counting the probes.
fn bisect(points: usize, tolerance: f64, loss: impl Fn(usize) -> f64) -> (Bracket, usize) {
    let mut b = Bisection::new(points, tolerance);
    let mut probes = 0;
    while let Some(j) = b.next() {
        assert!(j < points, "probe {j} outside the grid");
        b.record(j, loss(j));
        probes += 1;
    }
    (b.bracket(), probes)
}

#[test]
fn a_step_loss_is_found_at_every_threshold_in_exactly_steps_probes() {
    // loss 0 up to index t, 1 above: every answer from "below the grid" to "above it".
    for t in -1..POINTS as isize {
        let (bracket, probes) = bisect(POINTS, 0.5, |j| if j as isize <= t { 0.0 } else { 1.0 });
        assert_eq!(probes, STEPS as usize, "threshold {t}");
        let want_within = (t >= 0).then_some((t as usize, 0.0));
        let want_over = (t + 1 < POINTS as isize).then_some(((t + 1) as usize, 1.0));
        assert_eq!(bracket, Bracket { within: want_within, over: want_over }, "threshold {t}");
    }
}

#[test]
fn a_smooth_monotone_loss_gives_the_largest_grid_rmse_under_the_crossing() {
    // loss(r) = tol * (r / r0)^2 crosses the tolerance at r0 exactly.
    let grid = Grid { r_min: 1e-4, r_max: 10.0, points: POINTS };
    let tol = 0.02;
    for r0 in [3.3e-4, 0.0123, 0.5, 7.77] {
        let (bracket, _) = bisect(POINTS, tol, |j| tol * (grid.r(j) / r0).powi(2));
        let (j, loss) = bracket.within.expect("r0 is inside the grid");
        // Independently: the grid index of r0 is floor(log(r0 / r_min) / log(step)).
        let step = (grid.r_max / grid.r_min).ln() / (POINTS - 1) as f64;
        let want = ((r0 / grid.r_min).ln() / step).floor() as usize;
        assert_eq!(j, want, "r0 {r0}");
        assert!(grid.r(j) <= r0 && r0 < grid.r(j + 1), "r0 {r0}: {} .. {}", grid.r(j), grid.r(j + 1));
        assert!(loss <= tol);
        let (k, over) = bracket.over.expect("an index above r0 was probed");
        assert_eq!(k, j + 1);
        assert!(over > tol);
    }
}

#[test]
fn out_of_grid_answers_are_bounds_not_numbers() {
    // Every noise costs too much: nothing within, index 0 is the one over.
    let (b, _) = bisect(POINTS, 0.02, |_| 0.5);
    assert_eq!(b, Bracket { within: None, over: Some((0, 0.5)) });
    // No noise costs anything: the last index is within, nothing over.
    let (b, _) = bisect(POINTS, 0.02, |_| 0.0);
    assert_eq!(b, Bracket { within: Some((POINTS - 1, 0.0)), over: None });
    // A loss that is not a number counts as over the tolerance.
    let (b, _) = bisect(POINTS, 0.02, |j| if j < 10 { 0.0 } else { f64::NAN });
    assert_eq!(b.within, Some((9, 0.0)));
    assert!(b.over.is_some_and(|(k, l)| k == 10 && l.is_nan()));
}

#[test]
fn grid_spans_the_tensor_scale_geometrically() {
    // rms of [3, -4] is sqrt(12.5).
    let g = Grid::of([3.0, -4.0]).unwrap();
    let rms = 12.5f64.sqrt();
    assert!((g.r_min - LOW * rms).abs() < 1e-15 && (g.r_max - HIGH * rms).abs() < 1e-12);
    assert_eq!((g.r(0), g.r(POINTS - 1)), (g.r_min, g.r_max));
    let ratio = g.r(1) / g.r(0);
    assert!((ratio - (HIGH / LOW).powf(1.0 / (POINTS - 1) as f64)).abs() < 1e-12);
    for j in 1..POINTS - 1 {
        assert!((g.r(j + 1) / g.r(j) - ratio).abs() < 1e-9, "step {j}");
    }
    assert_eq!(Grid::of([0.0, 0.0]), None, "no scale in a zero tensor");
    assert_eq!(Grid::of(std::iter::empty()), None);
    assert_eq!(Grid::of([f64::NAN]), None);
}

#[test]
fn the_budget_grows_with_the_tolerance_and_shrinks_with_a_steeper_loss() {
    let grid = Grid { r_min: 1e-3, r_max: 10.0, points: POINTS };
    let budget = |tol: f64, loss: &dyn Fn(f64) -> f64| bisect(POINTS, tol, |j| loss(grid.r(j))).0.within.map(|w| w.0);
    let gentle = |r: f64| r * r;
    let steep = |r: f64| 4.0 * r * r;
    let mut last = None;
    for tol in [1e-6, 1e-4, 0.01, 0.02, 0.05, 0.5, 5.0, 500.0] {
        let b = budget(tol, &gentle);
        assert!(b >= last, "tolerance {tol}: {b:?} after {last:?}");
        assert!(budget(tol, &steep) <= b, "tolerance {tol}");
        last = b;
    }
    // The ends: below the grid for the tiniest tolerance, above it for the largest.
    assert_eq!(budget(1e-7, &gentle), None);
    assert_eq!(budget(500.0, &gentle), Some(POINTS - 1));
}
