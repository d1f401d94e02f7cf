//! The data-free part of a report: per-pair RMSE/nRMSE/cosine rows (plus the spectral
//! metrics of conv and linear W) and per-BN-layer MRM/MRV/MRW/MRB, with every parameter
//! checked for NaN/inf first.

use std::collections::HashMap;

use anyhow::Result;
use ndarray::{ArrayD, ArrayView1, ArrayViewD};

use crate::error::UserError;
use crate::metrics::spectral::{compare_filters, FilterComparison};
use crate::metrics::weights::{bn_shift_scale, compare, BnParams};
use crate::model::quantized::qdq::{self, Triple};
use crate::model::{Family, Kind, Model, Param, ParamSource};
use crate::pair::Pairing;
use crate::report::{BnStats, Row};

/// Values of every paired parameter, target and source, checked finite.
pub struct PairValues {
    /// Target values per pair (same order as `Pairing::pairs`), with their ONNX dims.
    pub target: Vec<ArrayD<f64>>,
    /// Source values per pair.
    pub source: Vec<ArrayD<f64>>,
    /// Per pair, for QDQ parameters: the target's and the source's stored (quantized
    /// tensor, scale, zero point) triples. A swap writes the source's triple (`values`
    /// hold the dequantized values, which the weight metrics compare).
    pub triples: Vec<Option<(Triple, Triple)>>,
}

/// A QDQ parameter's stored triple (`None` for float parameters).
fn stored_triple(model: &Model, p: &Param) -> Result<Option<Triple>> {
    let ParamSource::Dequantized(n) = p.source else {
        return Ok(None);
    };
    let d = qdq::at(model, n).map_err(|e| crate::error::bad_file(&model.path, format!("{e:#}")))?;
    Ok(Some(qdq::triple(model, &d)))
}

fn checked(model: &Model, p: &Param, layer: &str) -> Result<ArrayD<f64>> {
    let v = model.values(p)?;
    if v.is_empty() {
        // A layer of no channels (ONNX Runtime refuses it): RMSE and cosine of nothing are no measurement.
        return Err(UserError::BadFile {
            path: model.path.clone(),
            reason: format!(
                "parameter '{}' ({layer} {}) has shape {:?}, no values: a layer without channels cannot be compared",
                p.name, p.kind, p.dims
            ),
        }
        .into());
    }
    let bad = v.iter().filter(|x| !x.is_finite()).count();
    if bad > 0 {
        return Err(UserError::BadFile {
            path: model.path.clone(),
            reason: format!("parameter '{}' ({layer} {}) has {bad} NaN/inf value(s) of {}; a model with non-finite weights cannot be audited", p.name, p.kind, v.len()),
        }
        .into());
    }
    if p.kind == Kind::RV {
        if let Some(x) = v.iter().find(|x| **x < 0.0) {
            return Err(UserError::BadFile {
                path: model.path.clone(),
                reason: format!("running variance '{}' ({layer}) has a negative value {x}", p.name),
            }
            .into());
        }
    }
    Ok(v)
}

/// A BN layer's epsilon (the target's: the one every swap runs with) against the running
/// variances `var` read from `model`: MRM and MRV divide by `sqrt(var + epsilon)`, and so does
/// ONNX Runtime, so a negative or non-finite epsilon, or a zero variance with epsilon 0, gives
/// NaN/inf numbers instead of statistics.
fn check_epsilon(model: &Model, p: &Param, layer: &str, epsilon: f64, var: &ArrayD<f64>) -> Result<()> {
    let bad = |reason: String| Err(UserError::BadFile { path: model.path.clone(), reason }.into());
    if !(epsilon.is_finite() && epsilon >= 0.0) {
        return bad(format!(
            "{layer}: epsilon {epsilon} is not a finite number >= 0; batch normalization divides by \
             sqrt(running_var + epsilon), which would be NaN"
        ));
    }
    // A variance is never negative; a stored one that is (or that epsilon does not lift above
    // 0) makes the division by sqrt(running_var + epsilon) infinite or NaN. The message says
    // which value the file holds.
    match var.iter().position(|v| v + epsilon <= 0.0) {
        Some(c) => {
            let v = var.iter().nth(c).copied().unwrap_or(0.0);
            let (what, result) = match v < 0.0 {
                true => (format!("negative at channel {c} ({v})"), "the square root of a negative number (NaN)"),
                false => (format!("0 at channel {c}"), "0"),
            };
            bad(format!(
                "running variance '{}' ({layer}) is {what} with epsilon {epsilon}; batch normalization \
                 divides by sqrt(running_var + epsilon), {result}",
                p.name
            ))
        }
        None => Ok(()),
    }
}

/// A BN layer holds one mean, variance, scale and shift per channel: vectors of different
/// lengths (ONNX Runtime refuses the model) have no per-channel statistics.
fn check_channels(model: &Model, layer: &crate::model::Layer) -> Result<()> {
    let lengths: Vec<i64> = layer.params.iter().map(|q| q.dims.iter().product()).collect();
    if lengths.windows(2).all(|w| w[0] == w[1]) {
        return Ok(());
    }
    let list = |f: &dyn Fn(&Param) -> String| layer.params.iter().map(f).collect::<Vec<_>>().join(", ");
    Err(UserError::BadFile {
        path: model.path.clone(),
        reason: format!(
            "{}: its {} hold {} values; batch normalization needs one of each per channel",
            layer.label(),
            list(&|q| q.kind.to_string()),
            list(&|q| q.dims.iter().product::<i64>().to_string())
        ),
    }
    .into())
}

/// Read and check every paired parameter of both models.
pub fn pair_values(target: &Model, source: &Model, pairing: &Pairing) -> Result<PairValues> {
    let mut out = PairValues { target: vec![], source: vec![], triples: vec![] };
    for p in &pairing.pairs {
        out.target.push(checked(target, &p.target, &p.layer.label())?);
        out.source.push(checked(source, &p.source, &p.source_layer.label())?);
        if p.layer.family == Family::Bn {
            check_channels(target, &p.layer)?;
            check_channels(source, &p.source_layer)?;
        }
        if p.layer.family == Family::Bn && p.kind() == Kind::RV {
            let (t, s) = (&out.target[out.target.len() - 1], &out.source[out.source.len() - 1]);
            check_epsilon(target, &p.target, &p.layer.label(), p.layer.epsilon, t)?;
            check_epsilon(source, &p.source, &p.source_layer.label(), p.layer.epsilon, s)?;
        }
        let triples = match (stored_triple(target, &p.target)?, stored_triple(source, &p.source)?) {
            (Some(t), Some(s)) => Some((t, s)),
            _ => None,
        };
        out.triples.push(triples);
    }
    Ok(out)
}

/// The spectral metrics of a W pair: a conv filter bank as it is (one filter per row), a
/// linear weight as an outputs x inputs matrix (a MatMul's or `transB = 0` Gemm's weight is
/// stored inputs x outputs: read transposed). Other kinds and non-matrix linear weights: none.
fn spectral_of(p: &crate::pair::ParamPair, t: ArrayViewD<f64>, s: ArrayViewD<f64>) -> FilterComparison {
    match (p.layer.family, p.kind()) {
        (Family::Conv, Kind::W) => compare_filters(t, s),
        (Family::Linear, Kind::W) if t.ndim() == 2 && p.layer.w_in_out => {
            compare_filters(t.reversed_axes(), s.reversed_axes())
        }
        (Family::Linear, Kind::W) if t.ndim() == 2 => compare_filters(t, s),
        _ => FilterComparison { spectral_rel: None, subspace_overlap: None },
    }
}

/// The spectral metrics of the pairs at `chosen`, in that order, computed side by side on
/// every core (each pair's SVDs are independent, so the numbers are those of one thread);
/// the largest banks are taken first.
fn spectral_all(pairing: &Pairing, values: &PairValues, chosen: &[usize]) -> Vec<FilterComparison> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let mut order: Vec<usize> = (0..chosen.len()).collect();
    order.sort_by_key(|&k| (std::cmp::Reverse(values.target[chosen[k]].len()), k));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(order.len()).max(1);
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let at = next.fetch_add(1, Ordering::Relaxed);
            let Some(&k) = order.get(at) else { break done };
            let i = chosen[k];
            done.push((k, spectral_of(&pairing.pairs[i], values.target[i].view(), values.source[i].view())));
        }
    };
    let mut out = vec![FilterComparison { spectral_rel: None, subspace_overlap: None }; chosen.len()];
    std::thread::scope(|s| {
        let helpers: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
        let mut all = work();
        for h in helpers {
            // A panic in an SVD is a bug: let it surface as one.
            all.extend(h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
        }
        for (k, f) in all {
            out[k] = f;
        }
    });
    out
}

/// One row per pair of the given kinds with the weight metrics (Dice columns empty). With
/// `spectral`, conv and linear W rows also get `spectral_rel` and `subspace_overlap` (SVDs:
/// the costly part, so callers that do not report them leave it off).
pub fn rows(pairing: &Pairing, values: &PairValues, kinds: &[Kind], spectral: bool) -> Vec<Row> {
    let chosen: Vec<usize> = (0..pairing.pairs.len()).filter(|&i| kinds.contains(&pairing.pairs[i].kind())).collect();
    let mut filters = match spectral {
        true => spectral_all(pairing, values, &chosen),
        false => vec![],
    }
    .into_iter();
    chosen
        .iter()
        .map(|&i| {
            let p = &pairing.pairs[i];
            let (t, s) = (values.target[i].view(), values.source[i].view());
            let c = compare(t.view(), s.view());
            let f = filters.next();
            let FilterComparison { spectral_rel, subspace_overlap } =
                f.unwrap_or(FilterComparison { spectral_rel: None, subspace_overlap: None });
            Row {
                family: p.layer.family.to_string(),
                layer: p.layer.index,
                node: p.layer.node.clone(),
                op: p.layer.op.clone(),
                kind: p.kind().to_string(),
                target_initializer: p.target.name.clone(),
                source_initializer: p.source.name.clone(),
                shape: p.target.dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x"),
                numel: c.numel,
                rmse: c.rmse,
                nrmse: c.nrmse,
                cosine: c.cosine,
                baseline_dice: None,
                swapped_dice: None,
                delta_dice: None,
                dice_fg: None,
                reusable: None,
                spectral_rel,
                subspace_overlap,
                dice_class: vec![],
                delta_dice_lo: None,
                delta_dice_hi: None,
                decision: None,
                images_used: None,
                budget: None,
                non_finite_images: None,
            }
        })
        .collect()
}

/// MRM/MRV/MRW/MRB for every target BN layer whose four parameters are all paired.
pub fn bn_stats(pairing: &Pairing, values: &PairValues) -> Vec<BnStats> {
    let mut by_layer: HashMap<usize, HashMap<Kind, usize>> = HashMap::new();
    for (i, p) in pairing.pairs.iter().enumerate() {
        if p.layer.family == Family::Bn {
            by_layer.entry(p.layer.index).or_default().insert(p.kind(), i);
        }
    }
    let mut out = Vec::new();
    let mut layers: Vec<_> = by_layer.into_iter().collect();
    layers.sort_by_key(|(l, _)| *l);
    for (layer, kinds) in layers {
        let (Some(&m), Some(&v), Some(&w), Some(&b)) =
            (kinds.get(&Kind::RM), kinds.get(&Kind::RV), kinds.get(&Kind::RW), kinds.get(&Kind::RB))
        else {
            continue;
        };
        // A malformed layer whose four vectors differ in length has no per-channel statistics.
        let n = values.target[m].len();
        if [m, v, w, b].iter().any(|&i| values.target[i].len() != n || values.source[i].len() != n) {
            continue;
        }
        let (Some(ts), Some(ss)) = (bn_side(&values.target, [m, v, w, b]), bn_side(&values.source, [m, v, w, b]))
        else {
            continue;
        };
        let pair = &pairing.pairs[m];
        let s = bn_shift_scale(&ts, &ss, pair.layer.epsilon);
        out.push(BnStats { layer, node: pair.layer.node.clone(), mrm: s.mrm, mrv: s.mrv, mrw: s.mrw, mrb: s.mrb });
    }
    out
}

/// The BN parameters of one side from the pair indices of RM, RV, RW and RB.
fn bn_side(vals: &[ArrayD<f64>], [m, v, w, b]: [usize; 4]) -> Option<BnParams<'_>> {
    Some(BnParams { gamma: flat(&vals[w])?, beta: flat(&vals[b])?, mean: flat(&vals[m])?, var: flat(&vals[v])? })
}

/// A per-channel vector of any shape (ONNX BN parameters are 1-D; others are read
/// row-major), `None` only for a non-contiguous array (decoded ones never are).
fn flat(a: &ArrayD<f64>) -> Option<ArrayView1<'_, f64>> {
    a.as_slice().map(ArrayView1::from)
}
