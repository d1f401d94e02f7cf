//! `--dynamic-batch`: a fixed batch-1 target made batch-dynamic, kept only when a batch
//! gives the same outputs as one image at a time.

use anyhow::Result;
use ndarray::{s, ArrayView4};

use crate::data::{preprocess::Dataset, InputSpec};
use crate::engine::{Engine, Runner, View};
use crate::error::UserError;
use crate::model::{batch::make_batch_dynamic, Model};

/// The target made batch-dynamic, checked to give the same outputs as the original (one
/// image per run) on the first images of the data, to 1e-4 relative.
pub fn verified(engine: &Engine, target: &Model, input: &InputSpec, data: &Dataset) -> Result<Model> {
    let dynamic = make_batch_dynamic(target)?;
    let k = data.n().min(4);
    let images = data.images.slice(s![..k, .., .., ..]);
    let first_output = |r: &mut Runner, x: ArrayView4<f32>| {
        r.run_views_first(&[(input.name.as_str(), View::F32(x.into_dyn()))], |v| {
            Ok(v.iter().copied().collect::<Vec<f32>>())
        })
    };
    let mut one = engine.session(&target.to_bytes()?)?;
    let mut want = Vec::new();
    for i in 0..k {
        want.extend(first_output(&mut one, images.slice(s![i..i + 1, .., .., ..]))?);
    }
    let got = engine.session(&dynamic.to_bytes()?).and_then(|mut r| first_output(&mut r, images)).map_err(|e| {
        UserError::BadFlag {
            flag: "--dynamic-batch",
            reason: format!("the model does not run with a batch of {k}: {e:#}"),
        }
    })?;
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1.0);
    let diff = want.iter().zip(&got).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    if got.len() != want.len() || diff.is_nan() || diff > 1e-4 * scale {
        return Err(UserError::BadFlag {
            flag: "--dynamic-batch",
            reason: format!("the model is not batch-agnostic: a batch of {k} differs from one image at a time by {diff}; run without --dynamic-batch"),
        }
        .into());
    }
    Ok(dynamic)
}
