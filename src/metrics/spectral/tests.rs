//! Hand-worked spectral metrics and properties (identity, permutation, scale).

use ndarray::{array, Array2, ArrayD, Axis};
use proptest::prelude::*;

use super::*;

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-12, "{a} != {b}");
}

/// A 2-D matrix as a Conv weight of shape out × in × 1 × 1.
fn conv(m: Array2<f64>) -> ArrayD<f64> {
    let (o, i) = m.dim();
    m.into_shape_with_order((o, i, 1, 1)).unwrap().into_dyn()
}

fn both(t: &ArrayD<f64>, s: &ArrayD<f64>) -> FilterComparison {
    let c = compare_filters(t.view(), s.view());
    // The one-metric functions agree with the combined one.
    assert_eq!(c.spectral_rel, spectral_rel(t.view(), s.view()));
    assert_eq!(c.subspace_overlap, subspace_overlap(t.view(), s.view()));
    c
}

#[test]
fn filter_matrix_rows_are_axis_0_slices() {
    // 2 x 3 x 2 x 1: element [o, i, k, 0] = 100 o + 10 i + k lands at row o, column 2 i + k.
    let w = ArrayD::from_shape_fn(vec![2, 3, 2, 1], |d| (100 * d[0] + 10 * d[1] + d[2]) as f64);
    let m = filter_matrix(w.view());
    assert_eq!((m.nrows(), m.ncols()), (2, 6));
    assert_eq!(m[(1, 5)], 121.0);
    assert_eq!(m[(0, 2)], 10.0);
}

#[test]
fn energy_rank_by_hand() {
    // squares 16, 1: 16/17 >= 0.9 -> 1.  squares 4, 4, 1: 8/9 < 0.9 -> 3.
    assert_eq!(energy_rank(&[4.0, 1.0], 0.9), 1);
    assert_eq!(energy_rank(&[2.0, 2.0, 1.0], 0.9), 3);
    // squares 9, 9, 1: 18/19 >= 0.9 -> 2.
    assert_eq!(energy_rank(&[3.0, 3.0, 1.0], 0.9), 2);
    assert_eq!(energy_rank(&[0.0, 0.0], 0.9), 0);
    assert_eq!(energy_rank(&[], 0.9), 0);
}

#[test]
fn diagonal_matrices_by_hand() {
    // W_t = diag(3, 1), W_s = diag(1, 1): W_t - W_s = diag(2, 0), so 2 / 3.
    let t = conv(array![[3.0, 0.0], [0.0, 1.0]]);
    let s = conv(array![[1.0, 0.0], [0.0, 1.0]]);
    close(both(&t, &s).spectral_rel.unwrap(), 2.0 / 3.0);
    // W_t = diag(4, 1, 0): squares 16, 1 -> r = 1, top direction e1.
    let t = conv(array![[4.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]);
    // Source top direction (e1 + e2)/sqrt 2, rank 1: cos^2 45° = 1/2.
    let s = conv(array![[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]);
    close(both(&t, &s).subspace_overlap.unwrap(), 0.5);
    // Source along e3: orthogonal subspaces.
    let s = conv(array![[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 5.0]]);
    close(both(&t, &s).subspace_overlap.unwrap(), 0.0);
}

#[test]
fn two_dimensional_subspaces_by_hand() {
    // W_t = diag(3, 3, 1): r = 2, span{e1, e2}.
    let t = conv(array![[3.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 1.0]]);
    // Source spans {e1, e3}: principal cosines 1 and 0 -> (1 + 0) / 2.
    let s = conv(array![[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]);
    close(both(&t, &s).subspace_overlap.unwrap(), 0.5);
    // Rank-1 source along e1: one direction found, the other missing -> 1 / 2.
    let s = conv(array![[7.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]);
    close(both(&t, &s).subspace_overlap.unwrap(), 0.5);
    // Source spans {e1 + e2, e1 - e2} = {e1, e2}: 1.
    let s = conv(array![[1.0, 1.0, 0.0], [1.0, -1.0, 0.0], [0.0, 0.0, 0.0]]);
    close(both(&t, &s).subspace_overlap.unwrap(), 1.0);
}

#[test]
fn permuted_output_channels_by_hand() {
    // W_t = [[4,0,0],[0,1,0]] (r = 1, direction e1); W_s swaps the two filters.
    let t = conv(array![[4.0, 0.0, 0.0], [0.0, 1.0, 0.0]]);
    let s = conv(array![[0.0, 1.0, 0.0], [4.0, 0.0, 0.0]]);
    // W_t - W_s = [[4,-1,0],[-4,1,0]] = (1,-1)ᵀ(4,-1,0): σ = sqrt 2 · sqrt 17; ‖W_t‖₂ = 4.
    let c = both(&t, &s);
    close(c.spectral_rel.unwrap(), 34f64.sqrt() / 4.0);
    close(c.subspace_overlap.unwrap(), 1.0);
}

#[test]
fn identical_tensors() {
    let t = ArrayD::from_shape_fn(vec![4, 2, 3, 3], |d| ((d[0] * 7 + d[1] * 5 + d[2] * 3 + d[3]) % 11) as f64 - 5.0);
    let c = both(&t, &t);
    assert_eq!(c.spectral_rel, Some(0.0));
    close(c.subspace_overlap.unwrap(), 1.0);
}

#[test]
fn zero_tensors_and_bad_shapes() {
    let z = conv(Array2::zeros((2, 3)));
    let w = conv(array![[1.0, 2.0, 0.0], [0.0, 1.0, 1.0]]);
    let c = both(&z, &z);
    assert_eq!((c.spectral_rel, c.subspace_overlap), (Some(0.0), Some(1.0)));
    let c = both(&z, &w);
    assert_eq!((c.spectral_rel, c.subspace_overlap), (None, Some(0.0)));
    // A zero source: the difference is W_t itself, and it spans nothing.
    let c = both(&w, &z);
    assert_eq!(c.subspace_overlap, Some(0.0));
    close(c.spectral_rel.unwrap(), 1.0);
    let other = conv(Array2::ones((3, 2)));
    let none = FilterComparison { spectral_rel: None, subspace_overlap: None };
    assert_eq!(both(&w, &other), none);
    let empty = ArrayD::<f64>::zeros(vec![0, 3, 1, 1]);
    assert_eq!(both(&empty, &empty), none);
}

#[test]
fn gram_route_agrees_with_a_direct_svd() {
    // Wide (5 x 12) and tall (12 x 5) matrices of fixed pseudo-random entries.
    for (rows, cols) in [(5, 12), (12, 5)] {
        let m = DMatrix::from_fn(rows, cols, |i, j| ((i * 31 + j * 17) % 13) as f64 / 6.0 - 1.0);
        let direct = m.clone().svd(false, true);
        let ours = svd(&m, true).unwrap();
        for (a, b) in ours.values.iter().zip(direct.singular_values.iter()) {
            assert!((a - b).abs() < 1e-7 * direct.singular_values[0], "{a} vs {b}");
        }
        close(ours.values[0], direct.singular_values[0]);
        // The top-3 right singular subspaces coincide: ‖V_aᵀ V_b‖_F² = 3, with ours from
        // the Gram eigenvectors (v = mᵀu/σ when wide) and the direct SVD's v.
        let vb = direct.v_t.unwrap();
        let u = ours.u.as_ref().unwrap();
        let va = if ours.wide {
            let mut v = m.transpose() * u.columns(0, 3);
            for (i, mut col) in v.column_iter_mut().enumerate() {
                col /= ours.values[i];
            }
            v.transpose()
        } else {
            u.columns(0, 3).transpose()
        };
        let cross = va.rows(0, 3) * vb.rows(0, 3).transpose();
        assert!((cross.norm_squared() - 3.0).abs() < 1e-9, "{}", cross.norm_squared());
        // And the cross products the overlap uses agree with the explicit vectors'.
        let direct_s = svd(&m, true).unwrap();
        let c = right_cross(&ours, &direct_s, &m, &m, 3, 3).unwrap();
        assert!((c.norm_squared() - 3.0).abs() < 1e-9, "{}", c.norm_squared());
    }
}

/// A conv weight o × i × k × k with entries in [-1, 1].
fn weights() -> impl Strategy<Value = ArrayD<f64>> {
    (1usize..6, 1usize..4, prop_oneof![Just(1usize), Just(3)]).prop_flat_map(|(o, i, k)| {
        proptest::collection::vec(-1.0f64..1.0, o * i * k * k)
            .prop_map(move |v| ArrayD::from_shape_vec(vec![o, i, k, k], v).unwrap())
    })
}

/// A weight pair of one shape and a permutation of its output channels.
fn pair_and_permutation() -> impl Strategy<Value = (ArrayD<f64>, ArrayD<f64>, Vec<usize>)> {
    weights().prop_flat_map(|t| {
        let o = t.shape()[0];
        let shape = t.shape().to_vec();
        let n = t.len();
        (
            Just(t),
            proptest::collection::vec(-1.0f64..1.0, n)
                .prop_map(move |v| ArrayD::from_shape_vec(shape.clone(), v).unwrap()),
            Just((0..o).collect::<Vec<_>>()).prop_shuffle(),
        )
    })
}

proptest! {
    #[test]
    fn identical_permuted_and_scaled(
        (t, s, perm) in pair_and_permutation(),
        c in prop_oneof![Just(0.5f64), Just(-2.0), Just(3.0), Just(1e-3)],
    ) {
        let tol = 1e-7;
        let same = compare_filters(t.view(), t.view());
        prop_assert_eq!(same.spectral_rel, Some(0.0));
        prop_assert!((same.subspace_overlap.unwrap() - 1.0).abs() < tol);
        // The same filters in another order span the same subspace.
        let tp = t.select(Axis(0), &perm);
        let p = compare_filters(t.view(), tp.view());
        prop_assert!((p.subspace_overlap.unwrap() - 1.0).abs() < tol, "{:?}", p);
        // Permuting both sides alike changes neither metric.
        let base = compare_filters(t.view(), s.view());
        let sp = s.select(Axis(0), &perm);
        let both_p = compare_filters(tp.view(), sp.view());
        prop_assert!((both_p.spectral_rel.unwrap() - base.spectral_rel.unwrap()).abs() < tol);
        prop_assert!((both_p.subspace_overlap.unwrap() - base.subspace_overlap.unwrap()).abs() < tol);
        // Scaling both by c leaves spectral_rel; scaling either leaves the overlap.
        let scaled = compare_filters((&t * c).view(), (&s * c).view());
        prop_assert!((scaled.spectral_rel.unwrap() - base.spectral_rel.unwrap()).abs() < tol * base.spectral_rel.unwrap().max(1.0));
        let one_scaled = compare_filters(t.view(), (&s * c).view());
        prop_assert!((one_scaled.subspace_overlap.unwrap() - base.subspace_overlap.unwrap()).abs() < tol);
        let o = base.subspace_overlap.unwrap();
        prop_assert!((0.0..=1.0).contains(&o));
    }
}

/// Timing of a real-size filter bank (512 × 512 × 3 × 3): `cargo test --release -- --ignored`.
#[test]
#[ignore]
fn timing_of_a_large_bank() {
    let mut x = 1u64;
    let mut next = move || {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (x >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    let t = ArrayD::from_shape_simple_fn(vec![512, 512, 3, 3], &mut next);
    let s = ArrayD::from_shape_simple_fn(vec![512, 512, 3, 3], &mut next);
    let start = std::time::Instant::now();
    let c = compare_filters(t.view(), s.view());
    eprintln!("512x4608: {:?} in {:?}", c, start.elapsed());
}
