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
    let evidence = format!(
        "input read as {} ({}), output as {} ({})",
        in_layout.pattern(),
        if forced.is_some() { "--layout" } else { &found.input.why },
        output.pattern().replace(" C", " classes"),
        if forced.is_some() { "--layout" } else { &found.output.why }
    );
    Ok(Io { input, output, free_size, conflicts, evidence })
}

/// Parse `HxW` (e.g. `256x256`) for `flag`.
pub fn parse_size(s: &str, flag: &'static str) -> Result<(usize, usize), UserError> {
    let parsed = s
        .split_once(['x', 'X'])
        .and_then(|(a, b)| Some((a.trim().parse::<usize>().ok()?, b.trim().parse::<usize>().ok()?)));
    parsed
        .filter(|(a, b)| *a > 0 && *b > 0)
        .ok_or_else(|| UserError::BadFlag { flag, reason: format!("'{s}' is not HxW, e.g. 256x256") })
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
    }
}
