//! What the target's first output holds, read from its shape on one image: a segmentation
//! map at the input's resolution (`N x classes x H x W`, either layout), a classifier's
//! scores (`N x classes`, or `N x classes x 1 x 1`), or neither, a refusal naming the output
//! and its shape. Models with an output of boxes (detectors) are refused whatever their
//! first output looks like.

use anyhow::Result;

use crate::audit::forward::Feed;
use crate::data::preprocess::{Dataset, InputSpec};
use crate::engine::{Engine, Runner, View};
use crate::error::UserError;
use crate::model::layout::Layout;
use crate::model::{value_dims, Model};

/// What the model's first output holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputKind {
    /// The output's name.
    pub name: String,
    /// Its shape on one image (run, or declared where every dim is fixed).
    pub shape: Vec<usize>,
    /// Class channels.
    pub channels: usize,
    /// A classifier's one prediction per image (`N x classes`, or `N x classes x 1 x 1`),
    /// rather than a segmentation map at the input's resolution.
    pub per_image: bool,
}

impl OutputKind {
    /// `'name' [1, 10]`, for messages.
    pub fn describe(&self) -> String {
        format!("'{}' {:?}", self.name, self.shape)
    }
}

/// Read an output shape (in `layout`) against the input's `h x w`: `N x C` or `N x C x 1 x 1`
/// is a classifier's, `N x C x H x W` with `H * W = h * w` a segmentation map's; anything
/// else is no pixel or class output (an error saying so).
pub fn read_output(name: &str, shape: &[usize], layout: Layout, (h, w): (usize, usize)) -> Result<OutputKind, String> {
    let kind = |channels, per_image| OutputKind { name: name.into(), shape: shape.to_vec(), channels, per_image };
    let mut smaller = String::new();
    match *shape {
        [_, c] => return Ok(kind(c, true)),
        [a, b, c, d] => {
            let [_, ch, oh, ow] = layout.to_nchw([a, b, c, d]);
            if oh * ow == h * w {
                return Ok(kind(ch, false));
            }
            if (oh, ow) == (1, 1) {
                return Ok(kind(ch, true));
            }
            if oh < h && ow < w {
                smaller = format!(
                    " It reads as a {ch}-channel map at {oh}x{ow}, below the input's {h}x{w}: Dice is scored at \
                     the input's resolution, so end the model with an upsampling (e.g. a Resize to {h}x{w}) \
                     before exporting."
                );
            }
        }
        _ => {}
    }
    Err(format!(
        "the model's output '{name}' has shape {shape:?}: neither N x classes (a classifier, --metric accuracy) nor {} \
         at the input's {h}x{w} (a segmentation map, read as {}; see --layout). reuse-audit scores a pixel or class \
         output; detectors (boxes and scores) and other heads are not supported.{smaller}",
        layout.pattern().replace(" C", " classes").replace(" H x W", &format!(" {h} x {w}")),
        layout.name()
    ))
}

/// An output that holds boxes: `N x K x 4`, or besides the first output, one named like
/// boxes. The model is then a detector, whatever its first output looks like.
pub fn detector_output(outputs: &[(String, Vec<usize>)]) -> Option<&(String, Vec<usize>)> {
    outputs.iter().enumerate().find_map(|(i, out)| {
        let boxes = out.1.len() == 3 && out.1.last() == Some(&4);
        (boxes || (i > 0 && out.0.to_lowercase().contains("box"))).then_some(out)
    })
}

/// What the model's first output holds (read in `output` layout), from one run on the
/// first image of `data` (every output's real shape). A model with an output of boxes, or
/// whose first output is neither a class map nor a classifier's scores, is refused (exit 2)
/// naming the output and its shape. The session the run used comes back with it (a
/// single-threaded worker session of `target`, for the probe to reuse); none when the
/// declared shape said it all.
pub fn output_kind(
    engine: &Engine,
    target: &Model,
    data: &Dataset,
    input: &InputSpec,
    output: Layout,
) -> Result<(OutputKind, Option<Runner>)> {
    let declared: Vec<Vec<Option<usize>>> = target.proto.graph.output.iter().map(value_dims).collect();
    let refuse = |reason: String| -> anyhow::Error { UserError::BadFile { path: target.path.clone(), reason }.into() };
    // One output whose dims are all declared (a fixed batch of 1 included): no run needed.
    let fixed: Option<Vec<usize>> = match declared.as_slice() {
        [one] if one.len() == 4 && one[1..].iter().all(Option::is_some) => {
            Some(one.iter().map(|d| d.unwrap_or(1)).collect())
        }
        _ => None,
    };
    let mut session = None;
    let outputs: Vec<(String, Vec<usize>)> = match fixed {
        Some(shape) => vec![(target.proto.graph.output[0].name.clone(), shape)],
        None => {
            let feed = Feed { data, input, batch: 1, threshold: 0.0, output, per_image: false };
            let x = feed.tensor(0, 1);
            let mut runner = engine.worker_session(&target.to_bytes()?)?;
            let shapes = runner.run_shapes(&[(input.name.as_str(), View::F32(x.view().into_dyn()))])?;
            session = Some(runner);
            shapes.into_iter().map(|(name, shape, _)| (name, shape)).collect()
        }
    };
    let Some((name, shape)) = outputs.first() else {
        return Err(refuse("the model has no tensor output".into()));
    };
    if let Some((boxes, bshape)) = detector_output(&outputs) {
        return Err(refuse(format!(
            "the model looks like a detector: its output '{boxes}' has shape {bshape:?} (boxes); reuse-audit scores a pixel or class output (a segmentation map, or a classifier's N x classes scores), so detectors cannot be audited (outputs: {})",
            outputs.iter().map(|(n, s)| format!("'{n}' {s:?}")).collect::<Vec<_>>().join(", ")
        )));
    }
    Ok((read_output(name, shape, output, (data.h(), data.w())).map_err(refuse)?, session))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_shapes_read_as_maps_classifiers_or_neither() {
        let read = |shape: &[usize], layout| read_output("out", shape, layout, (8, 8));
        let kind = |shape: &[usize], layout| read(shape, layout).map(|k| (k.channels, k.per_image));
        assert_eq!(kind(&[1, 10], Layout::Nchw), Ok((10, true)));
        assert_eq!(kind(&[1, 10, 1, 1], Layout::Nchw), Ok((10, true)));
        assert_eq!(kind(&[1, 3, 8, 8], Layout::Nchw), Ok((3, false)));
        assert_eq!(kind(&[1, 8, 8, 3], Layout::Nhwc), Ok((3, false)));
        assert_eq!(kind(&[1, 1, 1, 10], Layout::Nhwc), Ok((10, true)));
        for bad in [&[1, 3, 4, 4][..], &[1, 100, 4], &[1], &[1, 3, 8, 8, 2]] {
            let e = read(bad, Layout::Nchw).unwrap_err();
            assert!(e.contains(&format!("'out' has shape {bad:?}")) && e.contains("neither N x classes"), "{e}");
            // Regression: the message carried runs of spaces from a broken line continuation.
            assert!(!e.contains("  "), "{e}");
        }
        // A map at a lower resolution (logits at stride 2, no final upsample) says so.
        let e = read(&[1, 3, 4, 4], Layout::Nchw).unwrap_err();
        assert!(e.contains("a 3-channel map at 4x4, below the input's 8x8") && e.contains("Resize to 8x8"), "{e}");
        let e = read(&[1, 4, 4, 3], Layout::Nhwc).unwrap_err();
        assert!(e.contains("a 3-channel map at 4x4"), "{e}");
        let outs = |v: &[(&str, &[usize])]| -> Vec<(String, Vec<usize>)> {
            v.iter().map(|(n, s)| (n.to_string(), s.to_vec())).collect()
        };
        let det = outs(&[("scores", &[1, 3]), ("boxes", &[1, 48, 4])]);
        assert_eq!(detector_output(&det).map(|d| d.0.as_str()), Some("boxes"));
        let named = outs(&[("logits", &[1, 3, 8, 8]), ("pred_bbox", &[1, 12])]);
        assert_eq!(detector_output(&named).map(|d| d.0.as_str()), Some("pred_bbox"));
        // A first output named like boxes is still read by its shape: a map here.
        assert_eq!(detector_output(&outs(&[("textbox_prob", &[1, 1, 8, 8])])), None);
    }
}
