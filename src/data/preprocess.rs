//! Turning loaded samples into the model's input: per-image normalization, fitting to the
//! model's height/width, channel replication; label checks against the class count.

use anyhow::Result;

use super::Sample;
use crate::error::UserError;

/// `--normalize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Normalize {
    /// Per image: (x - mean) / std (std 0 -> x - mean).
    Zscore,
    /// Per image: (x - min) / (max - min) (constant image -> 0).
    Minmax,
    /// Values as stored.
    None,
}

/// `--fit`: what to do when the data's height/width differ from the model's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    /// Refuse a size mismatch.
    None,
    /// Bilinear resize (labels: nearest).
    Resize,
    /// Center crop (data larger than the model's input).
    Crop,
    /// Center zero-pad (data smaller than the model's input).
    Pad,
}

/// What the model takes: from the graph's first non-initializer input.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct InputSpec {
    /// Input name.
    pub name: String,
    /// Batch size when fixed (`None` = dynamic).
    pub batch: Option<usize>,
    /// Channels when fixed.
    pub channels: Option<usize>,
    /// Height when fixed.
    pub height: Option<usize>,
    /// Width when fixed.
    pub width: Option<usize>,
}

/// Preprocessed images ready to feed, plus their labels.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Images.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
    /// `[n][c][h][w]` float32.
    pub images: Vec<f32>,
    /// `[n][h][w]` labels as stored (checked by [`Dataset::checked_labels`]).
    pub labels: Option<Vec<f64>>,
    /// Origin of each image, for messages.
    pub origins: Vec<String>,
}

impl Dataset {
    /// The labels as class indices, each checked to be an integer in `0..classes`.
    pub fn checked_labels(&self, classes: usize) -> Result<Option<Vec<u8>>> {
        let Some(labels) = &self.labels else {
            return Ok(None);
        };
        let hw = self.h * self.w;
        let mut out = Vec::with_capacity(labels.len());
        for (i, &v) in labels.iter().enumerate() {
            if !(v >= 0.0 && v.fract() == 0.0 && (v as usize) < classes && v < 256.0) {
                return Err(UserError::BadData(format!(
                    "labels out of range: {} has label {v} at pixel {} but the model has {classes} classes (0..{})",
                    self.origins[i / hw],
                    i % hw,
                    classes - 1
                ))
                .into());
            }
            out.push(v as u8);
        }
        Ok(Some(out))
    }
}

/// Preprocess samples for a model input.
pub fn prepare(samples: &[Sample], spec: &InputSpec, normalize: Normalize, fit: Fit) -> Result<Dataset> {
    let first = &samples[0];
    let h = spec.height.unwrap_or(first.height);
    let w = spec.width.unwrap_or(first.width);
    let c = spec.channels.unwrap_or(first.channels);
    let with_labels = first.label.is_some();
    let mut images = Vec::with_capacity(samples.len() * c * h * w);
    let mut labels = with_labels.then(|| Vec::with_capacity(samples.len() * h * w));
    for s in samples {
        if s.label.is_some() != with_labels {
            return Err(UserError::BadData(format!(
                "{} has {} label map while {} has {}",
                s.origin,
                if with_labels { "no" } else { "a" },
                first.origin,
                if with_labels { "one" } else { "none" }
            ))
            .into());
        }
        if s.channels != c && !(s.channels == 1 && c > 1) {
            return Err(UserError::BadData(format!(
                "{} has {} channels, the model's input '{}' takes {c}",
                s.origin, s.channels, spec.name
            ))
            .into());
        }
        let mut img = s.image.clone();
        normalize_image(&mut img, normalize);
        let plane = s.height * s.width;
        for ch in 0..c {
            let src = &img[(ch % s.channels) * plane..(ch % s.channels + 1) * plane];
            let fitted = fit_plane(src, (s.height, s.width), (h, w), fit, false, &s.origin)?;
            images.extend(fitted.iter().map(|&v| v as f32));
        }
        if let (Some(out), Some(l)) = (labels.as_mut(), &s.label) {
            out.extend(fit_plane(l, (s.height, s.width), (h, w), fit, true, &s.origin)?);
        }
    }
    Ok(Dataset {
        n: samples.len(),
        c,
        h,
        w,
        images,
        labels,
        origins: samples.iter().map(|s| s.origin.clone()).collect(),
    })
}

fn normalize_image(x: &mut [f64], how: Normalize) {
    let n = x.len().max(1) as f64;
    match how {
        Normalize::None => {}
        Normalize::Zscore => {
            let mean = x.iter().sum::<f64>() / n;
            let std = (x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt();
            let d = if std > 0.0 { std } else { 1.0 };
            x.iter_mut().for_each(|v| *v = (*v - mean) / d);
        }
        Normalize::Minmax => {
            let lo = x.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let d = if hi > lo { hi - lo } else { 1.0 };
            x.iter_mut().for_each(|v| *v = (*v - lo) / d);
        }
    }
}

/// Fit one `src` plane of size `from` to `to`.
fn fit_plane(
    src: &[f64],
    from: (usize, usize),
    to: (usize, usize),
    fit: Fit,
    nearest: bool,
    origin: &str,
) -> Result<Vec<f64>> {
    if from == to {
        return Ok(src.to_vec());
    }
    let (fh, fw) = from;
    let (th, tw) = to;
    let mismatch = |why: &str| -> anyhow::Error {
        UserError::BadData(format!("{origin} is {fh}x{fw}, the model takes {th}x{tw}: {why}")).into()
    };
    match fit {
        Fit::None => Err(mismatch("pass --fit resize, crop or pad")),
        Fit::Crop if fh < th || fw < tw => {
            Err(mismatch("--fit crop needs data at least as large as the model's input"))
        }
        Fit::Pad if fh > th || fw > tw => Err(mismatch("--fit pad needs data no larger than the model's input")),
        Fit::Crop | Fit::Pad => {
            // Crop and pad are the same centered copy with a signed offset.
            let (oy, ox) = ((fh as isize - th as isize) / 2, (fw as isize - tw as isize) / 2);
            let mut out = vec![0.0; th * tw];
            for y in 0..th {
                for x in 0..tw {
                    let (sy, sx) = (y as isize + oy, x as isize + ox);
                    if sy >= 0 && sx >= 0 && (sy as usize) < fh && (sx as usize) < fw {
                        out[y * tw + x] = src[sy as usize * fw + sx as usize];
                    }
                }
            }
            Ok(out)
        }
        Fit::Resize => Ok(resize(src, from, to, nearest)),
    }
}

/// Resize with half-pixel centers (as `align_corners=False`): bilinear or nearest.
fn resize(src: &[f64], (fh, fw): (usize, usize), (th, tw): (usize, usize), nearest: bool) -> Vec<f64> {
    let (sy, sx) = (fh as f64 / th as f64, fw as f64 / tw as f64);
    let mut out = vec![0.0; th * tw];
    for y in 0..th {
        let fy = ((y as f64 + 0.5) * sy - 0.5).clamp(0.0, (fh - 1) as f64);
        for x in 0..tw {
            let fx = ((x as f64 + 0.5) * sx - 0.5).clamp(0.0, (fw - 1) as f64);
            out[y * tw + x] = if nearest {
                src[(((y as f64 + 0.5) * sy) as usize).min(fh - 1) * fw
                    + (((x as f64 + 0.5) * sx) as usize).min(fw - 1)]
            } else {
                let (y0, x0) = (fy.floor() as usize, fx.floor() as usize);
                let (y1, x1) = ((y0 + 1).min(fh - 1), (x0 + 1).min(fw - 1));
                let (dy, dx) = (fy - y0 as f64, fx - x0 as f64);
                let top = src[y0 * fw + x0] * (1.0 - dx) + src[y0 * fw + x1] * dx;
                let bot = src[y1 * fw + x0] * (1.0 - dx) + src[y1 * fw + x1] * dx;
                top * (1.0 - dy) + bot * dy
            };
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(h: usize, w: usize, image: Vec<f64>, label: Vec<f64>) -> Sample {
        Sample { channels: 1, height: h, width: w, image, label: Some(label), origin: "t#0".into() }
    }

    fn spec(c: usize, h: usize, w: usize) -> InputSpec {
        InputSpec { name: "x".into(), batch: None, channels: Some(c), height: Some(h), width: Some(w) }
    }

    #[test]
    fn zscore_and_channel_replication() {
        let s = sample(1, 2, vec![1.0, 3.0], vec![0.0, 1.0]);
        let d = prepare(&[s], &spec(3, 1, 2), Normalize::Zscore, Fit::None).unwrap();
        assert_eq!(d.images, vec![-1.0, 1.0, -1.0, 1.0, -1.0, 1.0]);
    }

    #[test]
    fn pad_crop_and_resize() {
        let s = sample(2, 2, vec![1.0, 2.0, 3.0, 4.0], vec![0.0, 1.0, 2.0, 3.0]);
        let d = prepare(std::slice::from_ref(&s), &spec(1, 4, 4), Normalize::None, Fit::Pad).unwrap();
        assert_eq!(&d.images[4..8], &[0.0, 1.0, 2.0, 0.0]);
        let d = prepare(std::slice::from_ref(&s), &spec(1, 1, 1), Normalize::None, Fit::Crop).unwrap();
        assert_eq!(d.images, vec![1.0]);
        let d = prepare(std::slice::from_ref(&s), &spec(1, 4, 4), Normalize::None, Fit::Resize).unwrap();
        assert_eq!(d.images[0], 1.0);
        assert_eq!(d.images[15], 4.0);
        assert_eq!(d.labels.unwrap()[15], 3.0);
        let e = prepare(&[s], &spec(1, 4, 4), Normalize::None, Fit::None).unwrap_err();
        assert!(e.to_string().contains("2x2, the model takes 4x4"));
    }

    #[test]
    fn labels_out_of_range_are_named() {
        let s = sample(1, 2, vec![0.0, 0.0], vec![0.0, 4.0]);
        let d = prepare(&[s], &spec(1, 1, 2), Normalize::None, Fit::None).unwrap();
        let e = d.checked_labels(4).unwrap_err().to_string();
        assert!(e.contains("label 4") && e.contains("t#0"), "{e}");
        assert!(d.checked_labels(5).unwrap().is_some());
    }
}
