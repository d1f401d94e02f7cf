//! Swap evaluation strategies, behind one `Evaluator` so faster ones can replace the simple one.

use anyhow::Result;
use ndarray::{Array3, ArrayD};

use std::ops::Range;

use super::forward::{baseline_predictions_in, predictions_in, Feed};
use super::AuditJob;
use crate::engine::{Engine, Runner};
use crate::model::{DType, Model, ParamSource};

/// `--strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// New model bytes and a new session per swap, full forward pass: the reference.
    Naive,
    /// One session for all swaps: swappable initializers become graph inputs and the
    /// source tensor is fed at run time.
    Shared,
    /// Baseline once with the tensors entering each swapped layer's downstream region
    /// cached; each swap runs only that region (falls back to `shared` where it cannot).
    Incremental,
}

impl Strategy {
    /// Name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Naive => "naive",
            Strategy::Shared => "shared",
            Strategy::Incremental => "incremental",
        }
    }
}

/// Evaluates the baseline and swaps of one job.
pub struct Evaluator<'a> {
    engine: &'a Engine,
    job: &'a AuditJob<'a>,
    feed: &'a Feed<'a>,
    /// The session with overridable parameters (shared strategy).
    shared: Option<Runner>,
}

impl<'a> Evaluator<'a> {
    /// Prepare sessions for a strategy.
    pub fn new(engine: &'a Engine, job: &'a AuditJob<'a>, feed: &'a Feed<'a>) -> Result<Self> {
        let shared = match job.strategy {
            Strategy::Naive => None,
            Strategy::Shared | Strategy::Incremental => Some(engine.session(&overridable(job)?.to_bytes()?)?),
        };
        Ok(Evaluator { engine, job, feed, shared })
    }

    /// Class maps of the unswapped target on the images `range`, and the class count.
    pub fn baseline(&mut self, range: Range<usize>) -> Result<(Array3<u8>, usize)> {
        match self.shared.as_mut() {
            Some(r) => baseline_predictions_in(r, self.feed, range),
            None => baseline_predictions_in(&mut self.engine.session(&self.job.target.to_bytes()?)?, self.feed, range),
        }
    }

    /// Class maps of the images `range` with pair `i`'s target parameter replaced by the
    /// source's. A QDQ
    /// parameter (its whole triple) is written into a new model: fed at run time, the
    /// triple would stop ONNX Runtime's fusion into integer kernels and change the numbers.
    pub fn swap(&mut self, i: usize, range: Range<usize>) -> Result<Array3<u8>> {
        let pair = &self.job.pairing.pairs[i];
        let values = &self.job.values.source[i];
        if let (Some(r), true) = (self.shared.as_mut(), feedable(&pair.target)) {
            let v = param_f32(values);
            return Ok(predictions_in(r, self.feed, range, &[(pair.target.name.clone(), v)])?.0);
        }
        let mut m = self.job.target.clone();
        match &self.job.values.triples[i] {
            Some((_, source)) => m.set_triple(&pair.target, source)?,
            None => m.set_values(&pair.target, values)?,
        }
        Ok(predictions_in(&mut self.engine.session(&m.to_bytes()?)?, self.feed, range, &[])?.0)
    }
}

/// Parameter values as the float32 array a session takes (standard layout, the
/// parameter's ONNX shape).
pub fn param_f32(values: &ArrayD<f64>) -> ArrayD<f32> {
    let v = values.mapv(|x| x as f32);
    if v.is_standard_layout() {
        v
    } else {
        v.as_standard_layout().into_owned()
    }
}

/// A parameter the shared session can take at run time: a float32 initializer.
fn feedable(p: &crate::model::Param) -> bool {
    matches!(p.source, ParamSource::Initializer(_)) && p.dtype == DType::Float32
}

/// The target with every swappable initializer also listed as a graph input.
fn overridable(job: &AuditJob) -> Result<Model> {
    let params: Vec<&crate::model::Param> = (0..job.pairing.pairs.len())
        .filter(|&i| job.runs(i) && feedable(&job.pairing.pairs[i].target))
        .map(|i| &job.pairing.pairs[i].target)
        .collect();
    Ok(overridable_model(job.target, &params))
}

/// A model with these float32 initializers also listed as graph inputs (IR >= 4 makes them
/// overridable defaults). Only what is swapped is exposed, so ONNX Runtime still fuses the rest.
pub fn overridable_model(target: &Model, params: &[&crate::model::Param]) -> Model {
    let mut m = target.clone();
    let g = m.proto.graph.mut_or_insert_default();
    for p in params {
        if g.input.iter().any(|i| i.name == p.name) {
            continue;
        }
        let dims: Vec<Option<usize>> = p.dims.iter().map(|&d| Some(d.max(0) as usize)).collect();
        let vi = super::cost::shaped_value(&p.name, 1, Some(&dims));
        g.input.push(vi);
    }
    if m.proto.ir_version < 4 {
        m.proto.ir_version = 4;
    }
    m
}
