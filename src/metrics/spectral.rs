//! Spectral comparisons of conv filter banks (conv `W` only), with nalgebra (singular
//! values through the symmetric eigendecomposition of the Gram matrix):
//! `spectral_rel` = ‖W_t − W_s‖₂ / ‖W_t‖₂ and `subspace_overlap`, the mean squared cosine
//! of the principal angles between the two banks' top singular subspaces.
//!
//! **The filter bank.** A weight tensor is read as a matrix with one row per slice along
//! its first ONNX axis and the remaining axes flattened row-major: a Conv's
//! `out × in/group × kh × kw` becomes `out × (in/group·kh·kw)`, one filter per row. For a
//! ConvTranspose, ONNX stores `in × out/group × kh × kw`; the filter axis is again axis 0
//! (its *input* channels): a ConvTranspose is the adjoint of the Conv that holds the same
//! tensor, and `W[c]` is the kernel input channel `c` spreads over the outputs. This keeps
//! every channel in one matrix whatever the `group` attribute, and makes the overlap blind
//! to a reordering of the channels along axis 0 (the previous layer's outputs for a
//! ConvTranspose).
//!
//! **Edge cases.** ‖W_t‖₂ = 0: `spectral_rel` is 0 when W_s is zero too, else `None`
//! (undefined, like nRMSE with std(t) = 0). The overlap uses r = the smallest rank whose
//! top-r squared singular values of W_t cover ≥ 90% of ‖W_t‖_F²; W_t zero gives r = 0, and
//! then the overlap is 1 when W_s is zero too and 0 otherwise (like cosine). The source
//! contributes its top min(r, rank W_s) singular vectors (numerical rank: σ above
//! σ_max·√(max(m, n)·ε), the precision of the Gram matrix the eigenproblem is solved for): directions
//! it lacks count as cosine 0, so a zero source scores 0. Shapes that differ, empty tensors or an SVD that does not converge give
//! `None` for both.

use nalgebra::{DMatrix, SymmetricEigen};
use ndarray::ArrayViewD;

/// Share of ‖W_t‖_F² the principal subspace must cover.
pub const ENERGY_SHARE: f64 = 0.9;

/// Both spectral metrics of one (target, source) weight pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FilterComparison {
    /// ‖W_t − W_s‖₂ / ‖W_t‖₂.
    pub spectral_rel: Option<f64>,
    /// Mean squared cosine of the principal angles between the top-r right singular subspaces.
    pub subspace_overlap: Option<f64>,
}

/// The filter bank of a weight tensor: one row per slice along axis 0, the other axes
/// flattened row-major (a scalar is a 1×1 matrix).
pub fn filter_matrix(w: ArrayViewD<f64>) -> DMatrix<f64> {
    let rows = w.shape().first().copied().unwrap_or(1);
    let cols = w.len().checked_div(rows).unwrap_or(0);
    DMatrix::from_row_iterator(rows, cols, w.iter().copied())
}

/// Singular values (descending) and, when asked for, the eigenvectors of the Gram matrix
/// in the same order: left singular vectors of a wide matrix (`m mᵀ`), right ones of a tall
/// matrix (`mᵀ m`).
struct Svd {
    values: Vec<f64>,
    u: Option<DMatrix<f64>>,
    wide: bool,
}

/// The SVD of `m` from nalgebra's symmetric eigendecomposition of its smaller Gram matrix
/// (`m mᵀ` when wide, `mᵀ m` when tall): a 512 × 4608 bank needs a 512 × 512
/// eigenproblem, not a 512 × 4608 SVD. The Gram squares the singular values, so those below
/// σ_max·√(max(m, n)·ε) are noise ([`noise_floor`]); the large ones, which both metrics use,
/// keep full relative precision.
fn svd(m: &DMatrix<f64>, vectors: bool) -> Option<Svd> {
    if m.is_empty() {
        return None;
    }
    let wide = m.nrows() < m.ncols();
    let gram = if wide { m * m.transpose() } else { m.transpose() * m };
    let max_iterations = 1000 + 100 * gram.nrows();
    let e = SymmetricEigen::try_new(gram, f64::EPSILON * 5.0, max_iterations)?;
    // Descending, ties by index (deterministic).
    let mut order: Vec<usize> = (0..e.eigenvalues.len()).collect();
    order.sort_by(|&a, &b| e.eigenvalues[b].total_cmp(&e.eigenvalues[a]).then(a.cmp(&b)));
    let values: Vec<f64> = order.iter().map(|&i| e.eigenvalues[i].max(0.0).sqrt()).collect();
    let u = vectors.then(|| e.eigenvectors.select_columns(order.iter()));
    Some(Svd { values, u, wide })
}

/// Cosines between the top-`r` right singular vectors of `mt` and the top-`k` of `ms`
/// (`r × k`). Tall banks: the Gram eigenvectors are those vectors. Wide banks: with
/// v_i = mᵀ u_i / σ_i, the products are Σ_t⁻¹ U_tᵀ (M_t M_sᵀ) U_s Σ_s⁻¹ — no 4608-long
/// vectors are formed or re-orthonormalized.
fn right_cross(t: &Svd, s: &Svd, mt: &DMatrix<f64>, ms: &DMatrix<f64>, r: usize, k: usize) -> Option<DMatrix<f64>> {
    let (ut, us) = (t.u.as_ref()?, s.u.as_ref()?);
    if ut.ncols() < r || us.ncols() < k {
        return None;
    }
    let (ut, us) = (ut.columns(0, r), us.columns(0, k));
    if !t.wide {
        return Some(ut.transpose() * us);
    }
    let mut cross = ut.transpose() * (mt * ms.transpose()) * us;
    for (i, mut row) in cross.row_iter_mut().enumerate() {
        row /= t.values[i];
    }
    for (j, mut col) in cross.column_iter_mut().enumerate() {
        col /= s.values[j];
    }
    Some(cross)
}

/// Singular values at or below this are indistinguishable from 0 through the Gram matrix.
fn noise_floor(values: &[f64], m: &DMatrix<f64>) -> f64 {
    values.first().copied().unwrap_or(0.0) * (m.nrows().max(m.ncols()) as f64 * f64::EPSILON).sqrt()
}

fn largest(s: &Svd) -> f64 {
    s.values.first().copied().unwrap_or(0.0)
}

/// The smallest r whose top-r squared singular values cover `share` of the energy (0 for
/// a zero matrix).
pub fn energy_rank(singular_values: &[f64], share: f64) -> usize {
    let total: f64 = singular_values.iter().map(|s| s * s).sum();
    if total <= 0.0 {
        return 0;
    }
    let mut covered = 0.0;
    for (i, s) in singular_values.iter().enumerate() {
        covered += s * s;
        if covered >= share * total {
            return i + 1;
        }
    }
    singular_values.len()
}

/// Numerical rank: singular values above the noise floor σ_max·√(max(m, n)·ε).
fn numerical_rank(s: &Svd, m: &DMatrix<f64>) -> usize {
    let floor = noise_floor(&s.values, m);
    s.values.iter().filter(|&&v| v > floor).count()
}

fn relative(diff: f64, norm_t: f64) -> Option<f64> {
    if norm_t > 0.0 {
        Some(diff / norm_t)
    } else if diff == 0.0 {
        Some(0.0)
    } else {
        None
    }
}

fn overlap(t: &Svd, s: &Svd, s_rank: usize, mt: &DMatrix<f64>, ms: &DMatrix<f64>) -> Option<f64> {
    let r = energy_rank(&t.values, ENERGY_SHARE);
    if r == 0 {
        return Some(if s_rank == 0 { 1.0 } else { 0.0 });
    }
    let k = r.min(s_rank);
    if k == 0 {
        return Some(0.0);
    }
    let cross = right_cross(t, s, mt, ms, r, k)?;
    Some((cross.norm_squared() / r as f64).clamp(0.0, 1.0))
}

/// Both metrics, with one SVD per tensor (and one of the difference, values only).
pub fn compare_filters(t: ArrayViewD<f64>, s: ArrayViewD<f64>) -> FilterComparison {
    let none = FilterComparison { spectral_rel: None, subspace_overlap: None };
    if t.shape() != s.shape() || t.is_empty() {
        return none;
    }
    let (mt, ms) = (filter_matrix(t), filter_matrix(s));
    let (Some(st), Some(sd)) = (svd(&mt, true), svd(&(&mt - &ms), false)) else {
        return none;
    };
    let spectral_rel = relative(largest(&sd), largest(&st));
    let subspace_overlap = svd(&ms, true).and_then(|ss| overlap(&st, &ss, numerical_rank(&ss, &ms), &mt, &ms));
    FilterComparison { spectral_rel, subspace_overlap }
}

/// ‖W_t − W_s‖₂ / ‖W_t‖₂ of two weight tensors of one shape (see the module doc for the
/// edge cases).
pub fn spectral_rel(t: ArrayViewD<f64>, s: ArrayViewD<f64>) -> Option<f64> {
    if t.shape() != s.shape() || t.is_empty() {
        return None;
    }
    let (mt, ms) = (filter_matrix(t), filter_matrix(s));
    let d = svd(&(&mt - &ms), false)?;
    relative(largest(&d), largest(&svd(&mt, false)?))
}

/// Mean squared cosine of the principal angles between the top-r right singular
/// subspaces of two weight tensors of one shape: ‖V_tᵀV_s‖_F² / r (see the module doc).
pub fn subspace_overlap(t: ArrayViewD<f64>, s: ArrayViewD<f64>) -> Option<f64> {
    if t.shape() != s.shape() || t.is_empty() {
        return None;
    }
    let (mt, ms) = (filter_matrix(t), filter_matrix(s));
    let (st, ss) = (svd(&mt, true)?, svd(&ms, true)?);
    overlap(&st, &ss, numerical_rank(&ss, &ms), &mt, &ms)
}

#[cfg(test)]
mod tests;
