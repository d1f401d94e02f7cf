//! `--mean`/`--std`: per-channel standardization after the per-image scaling, as
//! torchvision's `Normalize` (and rapidocr, ImageNet-style pipelines) apply it: in float32,
//! `(x - mean[c]) / std[c]`, on the values the model is fed.

use anyhow::Result;
use ndarray::Axis;

use super::preprocess::Dataset;
use crate::error::UserError;
use crate::model::layout::Layout;

/// Per-channel mean and standard deviation to standardize with after the per-image scaling
/// (`--mean`, `--std`; e.g. ImageNet's on `div255` data). One value applies to every channel.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MeanStd {
    /// Subtracted, per channel (or one for all).
    pub mean: Vec<f32>,
    /// Divided by, per channel (or one for all); finite and non-zero.
    pub std: Vec<f32>,
}

impl Dataset {
    /// Subtract `mean` and divide by `std` per channel (`--mean`, `--std`), in float32 as
    /// torchvision's `Normalize` and numpy float32 code do, after the per-image scaling.
    pub fn standardize(&mut self, ms: &MeanStd) -> Result<()> {
        let c = self.c();
        let per_channel = |v: &[f32], flag: &'static str| -> Result<Vec<f32>> {
            match v.len() {
                1 => Ok(vec![v[0]; c]),
                n if n == c => Ok(v.to_vec()),
                n => Err(UserError::BadFlag {
                    flag,
                    reason: format!("{n} values for {c} input channel(s): give one value, or one per channel"),
                }
                .into()),
            }
        };
        let (mean, std) = (per_channel(&ms.mean, "--mean")?, per_channel(&ms.std, "--std")?);
        let axis = match self.layout {
            Layout::Nchw => 1,
            Layout::Nhwc => 3,
        };
        for (ch, mut plane) in self.images.axis_iter_mut(Axis(axis)).enumerate() {
            let (m, d) = (mean[ch], std[ch]);
            plane.mapv_inplace(|v| (v - m) / d);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use ndarray::Array;

    use super::*;
    use crate::data::preprocess::{prepare, InputSpec};
    use crate::data::{Fit, Normalize, Sample};

    fn spec(c: usize, h: usize, w: usize, layout: Layout) -> InputSpec {
        InputSpec { name: "x".into(), batch: None, channels: Some(c), height: Some(h), width: Some(w), layout }
    }

    #[test]
    fn standardize_per_channel_in_float32_either_layout() {
        // rapidocr's x / 255, (x - 0.5) / 0.5 on 8-bit values, in float32 as numpy does it.
        let s = Sample {
            image: Array::from_shape_vec((3, 1, 2), vec![0.0, 1.0, 17.0, 128.0, 254.0, 255.0]).unwrap().into(),
            label: None,
            origin: "t#0".into(),
        };
        let ms = MeanStd { mean: vec![0.5], std: vec![0.5] };
        let want: Vec<f32> = [0.0f32, 1.0, 17.0, 128.0, 254.0, 255.0].iter().map(|x| (x / 255.0 - 0.5) / 0.5).collect();
        let mut d =
            prepare(std::slice::from_ref(&s), &spec(3, 1, 2, Layout::Nchw), Normalize::Div255, Fit::None).unwrap();
        d.standardize(&ms).unwrap();
        assert_eq!(d.images.as_slice().unwrap(), want.as_slice());
        // Per channel, channels-last storage: channel k gets mean[k], std[k].
        let nhwc = spec(3, 1, 2, Layout::Nhwc);
        let mut d = prepare(std::slice::from_ref(&s), &nhwc, Normalize::None, Fit::None).unwrap();
        d.standardize(&MeanStd { mean: vec![0.0, 1.0, 2.0], std: vec![1.0, 2.0, 4.0] }).unwrap();
        // Pixel 0 holds (0, 17, 254), pixel 1 (1, 128, 255).
        assert_eq!(d.images.as_slice().unwrap(), &[0.0, 8.0, 63.0, 1.0, 63.5, 63.25]);
        let e = d.standardize(&MeanStd { mean: vec![0.0, 1.0], std: vec![1.0] }).unwrap_err().to_string();
        assert!(e.contains("--mean") && e.contains("2 values for 3 input channel(s)"), "{e}");
    }
}
