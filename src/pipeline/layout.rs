//! What the audit feeds the target and how it reads its output: the input's and output's
//! axis order (detected from the graph, or `--layout`) and the input size (fixed by the
//! model, `--size` for a model with free spatial dims, else the data's own).

use anyhow::Result;

use crate::data::InputSpec;
use crate::error::UserError;
use crate::model::layout::{detect, Basis, Detected, Layout, LayoutChoice};
use crate::model::Model;

/// The target's input and output as the audit uses them.
#[derive(Debug, Clone)]
pub struct Io {
    /// The input, read in the layout used, its height and width set by `--size` if given.
    pub input: InputSpec,
    /// How the first output orders its axes.
    pub output: Layout,
    /// Whether the model leaves the input's height or width free (the size fed must then
    /// be checked against the network's stride).
    pub free_size: bool,
    /// Where a forced `--layout` contradicts what the graph or its declared dims say.
    pub conflicts: Vec<String>,
    /// How the layouts were decided, for a note on stderr.
    pub evidence: String,
}

impl Io {
    /// `nchw` or `nhwc` when input and output agree, else `input/output`.
    pub fn name(&self) -> String {
        if self.input.layout == self.output {
            self.output.name().to_string()
        } else {
            format!("{}/{}", self.input.layout.name(), self.output.name())
        }
    }
}

/// Resolve the layouts (`choice`) and the input size (`size`, `--size`) of `model`.
pub fn resolve(model: &Model, choice: LayoutChoice, size: Option<(usize, usize)>) -> Result<Io> {
    let found = detect(model);
    let forced = match choice {
        LayoutChoice::Auto => None,
        LayoutChoice::Nchw => Some(Layout::Nchw),
        LayoutChoice::Nhwc => Some(Layout::Nhwc),
    };
    let mut conflicts = Vec::new();
    let mut pick = |d: &Detected| match forced {
        Some(f) => {
            if f != d.layout && d.basis != Basis::Fallback {
                let read = if d.why.contains(d.layout.pattern()) {
                    String::new()
                } else {
                    format!(" ({})", d.layout.pattern())
                };
                conflicts.push(format!("--layout {} overrides what the model says: {}{read}", f.name(), d.why));
            }
            f
        }
        None => d.layout,
    };
    let (in_layout, output) = (pick(&found.input), pick(&found.output));
    let mut input = model.input_spec_as(in_layout)?;
    let free_size = input.height.is_none() || input.width.is_none();
    if let Some((h, w)) = size {
        if input.height.is_some_and(|mh| mh != h) || input.width.is_some_and(|mw| mw != w) {
            let show = |d: Option<usize>| d.map_or("?".to_string(), |d| d.to_string());
            return Err(UserError::BadFlag {
                flag: "--size",
                reason: format!(
                    "{h}x{w}, but the model's input '{}' is fixed at {}x{} (read as {}); --size is for models with free spatial dims (use --fit to fit the data)",
                    input.name,
                    show(input.height),
                    show(input.width),
                    in_layout.pattern()
                ),
            }
            .into());
        }
        input.height = Some(h);
        input.width = Some(w);
    }
    if let (Some(h), Some(w)) = (input.height, input.width) {
        check_image_size(input.channels.unwrap_or(1), h, w).map_err(|why| {
            crate::error::bad_file(&model.path, format!("the input '{}' to feed is {why}", input.name))
        })?;
    }
    let evidence = format!(
        "input read as {} ({}), output as {} ({})",
        in_layout.pattern(),
        if forced.is_some() { "--layout" } else { &found.input.why },
        output.pattern().replace(" C", " classes"),
        if forced.is_some() { "--layout" } else { &found.output.why }
    );
    Ok(Io { input, output, free_size, conflicts, evidence })
}

/// The most values one image fed to a model may hold (channels x height x width): 2^26,
/// 256 MiB of float32, e.g. 4 channels of 4096 x 4096. The activations of a CNN are tens of
/// times that, so larger images would exhaust memory rather than be audited.
pub const MAX_IMAGE_VALUES: usize = 1 << 26;

/// Refuse an image size beyond [`MAX_IMAGE_VALUES`] (`channels` 1 when not known yet).
pub fn check_image_size(channels: usize, h: usize, w: usize) -> Result<(), String> {
    let values = channels.checked_mul(h).and_then(|v| v.checked_mul(w));
    if values.is_some_and(|v| v <= MAX_IMAGE_VALUES) {
        return Ok(());
    }
    Err(format!(
        "{channels} x {h} x {w} is more than the {MAX_IMAGE_VALUES} values (2^26, e.g. 4 x 4096 x 4096) one image may hold; \
         a CNN's activations are tens of times that: audit at a smaller size"
    ))
}

/// Parse `HxW` (e.g. `256x256`) for `flag`, within [`MAX_IMAGE_VALUES`] pixels.
pub fn parse_size(s: &str, flag: &'static str) -> Result<(usize, usize), UserError> {
    let parsed = s
        .split_once(['x', 'X'])
        .and_then(|(a, b)| Some((a.trim().parse::<usize>().ok()?, b.trim().parse::<usize>().ok()?)));
    let (h, w) = parsed
        .filter(|(a, b)| *a > 0 && *b > 0)
        .ok_or_else(|| UserError::BadFlag { flag, reason: format!("'{s}' is not HxW, e.g. 256x256") })?;
    check_image_size(1, h, w).map_err(|why| UserError::BadFlag { flag, reason: format!("{s}: {why}") })?;
    Ok((h, w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("256x128", "--size").unwrap(), (256, 128));
        assert_eq!(parse_size(" 16 X 8", "--size").unwrap(), (16, 8));
        for bad in ["256", "0x4", "ax4", "4x-1", ""] {
            let e = parse_size(bad, "--size").unwrap_err().to_string();
            assert!(e.contains("--size") && e.contains("HxW"), "{e}");
        }
        // The limit: 8192 x 8192 is exactly 2^26 pixels; one more row is refused, and sizes
        // whose product overflows are refused, not wrapped.
        assert_eq!(parse_size("8192x8192", "--size").unwrap(), (8192, 8192));
        for big in ["8193x8192", "100000x100000", "18446744073709551615x2"] {
            let e = parse_size(big, "--size").unwrap_err().to_string();
            assert!(e.contains("2^26"), "{e}");
        }
        assert!(check_image_size(4, 4096, 4096).is_ok());
        assert!(check_image_size(5, 4096, 4096).is_err());
    }
}
