//! `inspect MODEL`: layers, parameters, shapes, opset, BN-folding check.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use crate::model::layers::{scan, FOLDED_BN_HINT};
use crate::model::{Family, Model};

/// One layer in `inspect --json`.
#[derive(Debug, Serialize)]
struct LayerOut {
    /// conv or bn.
    family: String,
    /// 1-based index in the family.
    index: usize,
    /// Node name.
    node: String,
    /// Op type.
    op: String,
    /// BN epsilon (bn only).
    epsilon: Option<f64>,
    /// kind -> [initializer, shape].
    params: Vec<(String, String, Vec<i64>)>,
}

/// `inspect --json` output.
#[derive(Debug, Serialize)]
struct InspectOut {
    path: String,
    sha256: String,
    ir_version: i64,
    opsets: Vec<(String, i64)>,
    producer: String,
    input: Option<crate::data::InputSpec>,
    conv_layers: usize,
    bn_layers: usize,
    parameters: usize,
    bn_probably_folded: bool,
    warnings: Vec<String>,
    layers: Vec<LayerOut>,
}

/// Run `inspect`.
pub fn run(path: &Path, json: bool) -> Result<()> {
    let m = Model::load(path)?;
    let sc = scan(&m);
    let mut warnings: Vec<String> = sc.skipped.iter().map(|s| format!("skipped {s}")).collect();
    if sc.bn_probably_folded() {
        warnings.push(FOLDED_BN_HINT.to_string());
    }
    let out = InspectOut {
        path: m.display_name(),
        sha256: m.sha256.clone(),
        ir_version: m.proto.ir_version,
        opsets: m
            .proto
            .opset_import
            .iter()
            .map(|o| {
                (
                    if o.domain.is_empty() {
                        "ai.onnx".into()
                    } else {
                        o.domain.clone()
                    },
                    o.version,
                )
            })
            .collect(),
        producer: format!("{} {}", m.proto.producer_name, m.proto.producer_version)
            .trim()
            .to_string(),
        input: m.input_spec().ok(),
        conv_layers: sc.of(Family::Conv).count(),
        bn_layers: sc.of(Family::Bn).count(),
        parameters: sc
            .layers
            .iter()
            .flat_map(|l| &l.params)
            .map(|p| p.numel())
            .sum(),
        bn_probably_folded: sc.bn_probably_folded(),
        warnings,
        layers: sc
            .layers
            .iter()
            .map(|l| LayerOut {
                family: l.family.to_string(),
                index: l.index,
                node: l.node.clone(),
                op: l.op.clone(),
                epsilon: (l.family == Family::Bn).then_some(l.epsilon),
                params: l
                    .params
                    .iter()
                    .map(|p| (p.kind.to_string(), p.name.clone(), p.dims.clone()))
                    .collect(),
            })
            .collect(),
    };
    let mut stdout = std::io::stdout().lock();
    if json {
        stdout.write_all(&crate::report::json(&out)?)?;
        return Ok(());
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}\n  sha256 {}\n  IR {}, opsets {:?}, producer '{}'",
        out.path, out.sha256, out.ir_version, out.opsets, out.producer
    );
    if let Some(i) = &out.input {
        let d = |v: Option<usize>| v.map(|x| x.to_string()).unwrap_or_else(|| "?".into());
        let _ = writeln!(
            s,
            "  input '{}': {} x {} x {} x {}",
            i.name,
            d(i.batch),
            d(i.channels),
            d(i.height),
            d(i.width)
        );
    }
    let _ = writeln!(
        s,
        "  {} conv layers, {} BN layers, {} parameters in them\n",
        out.conv_layers, out.bn_layers, out.parameters
    );
    for l in &out.layers {
        let params: Vec<String> = l
            .params
            .iter()
            .map(|(k, n, d)| format!("{k}={n} {d:?}"))
            .collect();
        let _ = writeln!(
            s,
            "  {:<4} {:>3}  {:<14} {:<32} {}",
            l.family,
            l.index,
            l.op,
            l.node,
            params.join("  ")
        );
    }
    for w in &out.warnings {
        let _ = writeln!(s, "\nwarning: {w}");
    }
    stdout.write_all(s.as_bytes())?;
    Ok(())
}
