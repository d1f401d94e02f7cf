#![allow(dead_code)]

//! What the data targets do with loaded samples: what an audit does next (preprocessing to
//! a model's input, labels checked against its classes), with the settings one input byte
//! picks.

use std::path::{Path, PathBuf};

use reuse_audit::data::preprocess::{prepare, Fit, InputSpec, Normalize};
use reuse_audit::data::{LayoutHint, Sample};
use reuse_audit::model::layout::Layout;

/// A name for messages; nothing is read from or written to it.
pub fn path(name: &str) -> PathBuf {
    Path::new("fuzz").join(name)
}

/// The model a data set is read for: channels first or last, with 1 or 3 channels.
pub fn hint(byte: u8) -> LayoutHint {
    LayoutHint {
        channels: [None, Some(1), Some(3)][usize::from(byte % 3)],
        layout: if byte & 4 == 0 { Layout::Nchw } else { Layout::Nhwc },
    }
}

/// Preprocess the samples for a small input (fixed or free size) and check the labels.
pub fn preprocess(samples: &[Sample], byte: u8) {
    let sized = byte & 8 != 0;
    let spec = InputSpec {
        name: "x".into(),
        batch: None,
        channels: Some(if byte & 16 == 0 { 1 } else { 3 }),
        height: sized.then_some(12),
        width: sized.then_some(9),
        layout: if byte & 32 == 0 { Layout::Nchw } else { Layout::Nhwc },
    };
    let normalize = [Normalize::Zscore, Normalize::Minmax, Normalize::None, Normalize::Div255][usize::from(byte >> 6)];
    let fit = [Fit::Resize, Fit::Crop, Fit::Pad, Fit::None][usize::from((byte >> 1) & 3)];
    if let Ok(d) = prepare(samples, &spec, normalize, fit) {
        let _ = d.checked_labels(4);
        let _ = d.checked_labels(255);
    }
}
