//! `inspect MODEL`: layers, parameters, shapes, opset, BN-folding check.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use reuse_audit::model::layers::scan;
use reuse_audit::model::layout::Layout;
use reuse_audit::model::{control_flow, folding};
use reuse_audit::model::{Family, Model};
use reuse_audit::report::table::{printable, terminal_safe};

/// One layer in `inspect --json`.
#[derive(Debug, Serialize)]
struct LayerOut {
    /// conv, bn, linear or norm.
    family: String,
    /// 1-based index in the family.
    index: usize,
    /// Share of the forward FLOPs downstream of this layer (with --flops).
    downstream_share: Option<f64>,
    /// Node name.
    node: String,
    /// Op type.
    op: String,
    /// BN/norm epsilon (bn and norm only).
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
    input: Option<reuse_audit::data::InputSpec>,
    conv_layers: usize,
    bn_layers: usize,
    linear_layers: usize,
    norm_layers: usize,
    parameters: usize,
    bn_probably_folded: bool,
    /// The half-precision type the file computes in (audited in float32), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    computes_in: Option<String>,
    warnings: Vec<String>,
    /// Quantized conv layers, audited or not, with the reason.
    quantized: Vec<reuse_audit::model::quantized::QuantizedLayer>,
    layers: Vec<LayerOut>,
    flops: Option<FlopsOut>,
}

/// `inspect --flops` output.
#[derive(Debug, Serialize)]
struct FlopsOut {
    /// Input image size used (channels, height, width).
    input_chw: [usize; 3],
    /// FLOPs of one forward pass of one image.
    total: f64,
    /// (swaps + 1) / (1 + Σ downstream/total) for an audit of every parameter.
    ideal_speedup: f64,
    /// Swaps of an audit of every parameter (all kinds, all families).
    swaps: usize,
}

/// How a computed (not stored) parameter input's warning starts.
const SKIPPED: &str = "skipped ";

/// Run `inspect`.
pub fn run(path: &Path, json: bool, flops: bool, size: Option<&str>) -> Result<()> {
    let m = Model::load(path)?;
    let sc = scan(&m);
    let cost = if flops { Some(flops_of(&m, &sc, size)?) } else { None };
    let mut warnings: Vec<String> = m.upcast.iter().map(|u| u.warning()).collect();
    warnings.extend(sc.skipped.iter().map(|s| format!("{SKIPPED}{s}")));
    warnings.extend(folding::warning(&m, &sc));
    warnings.extend(reuse_audit::model::quantized::summary(&sc.quantized));
    warnings.extend(reuse_audit::model::tied::summary(&sc));
    warnings.extend(
        sc.quantized
            .iter()
            .filter(|q| !q.audited)
            .map(|q| format!("not audited: {} ({}, {}): {}", q.node, q.op, q.format, q.reason)),
    );
    // An image input shadowed by an initializer leaves nothing to feed: said here, as the
    // audit says it (with no input the line `input '...'` is missing).
    warnings.extend(reuse_audit::model::train_mode::reason(&m));
    if let Err(e) = m.input_spec() {
        if !m.shadowed_inputs().is_empty() {
            warnings.push(format!("{e:#}"));
        }
    }
    let nested = control_flow::nested_layers(&m);
    warnings.extend(control_flow::summary(&nested));
    warnings.extend(nested.iter().map(|n| format!("not audited: {} ({}, in the {})", n.node, n.op, n.inside)));
    let out = InspectOut {
        path: m.display_name(),
        sha256: m.sha256.clone(),
        ir_version: m.proto.ir_version,
        opsets: m
            .proto
            .opset_import
            .iter()
            .map(|o| (if o.domain.is_empty() { "ai.onnx".into() } else { o.domain.clone() }, o.version))
            .collect(),
        producer: format!("{} {}", m.proto.producer_name, m.proto.producer_version).trim().to_string(),
        input: m.declared_input().ok(),
        conv_layers: sc.of(Family::Conv).count(),
        bn_layers: sc.of(Family::Bn).count(),
        linear_layers: sc.of(Family::Linear).count(),
        norm_layers: sc.of(Family::Norm).count(),
        parameters: sc.layers.iter().flat_map(|l| &l.params).map(|p| p.numel()).sum(),
        bn_probably_folded: sc.bn_probably_folded(),
        computes_in: m.upcast.as_ref().map(|u| u.type_name()),
        warnings,
        quantized: sc.quantized.clone(),
        layers: sc
            .layers
            .iter()
            .map(|l| LayerOut {
                family: l.family.to_string(),
                index: l.index,
                downstream_share: cost.as_ref().map(|(_, shares)| shares[l.node_index]),
                node: l.node.clone(),
                op: l.op.clone(),
                epsilon: matches!(l.family, Family::Bn | Family::Norm).then_some(l.epsilon),
                params: l.params.iter().map(|p| (p.kind.to_string(), p.name.clone(), p.dims.clone())).collect(),
            })
            .collect(),
        flops: cost.map(|(f, _)| f),
    };
    let mut stdout = std::io::stdout().lock();
    if json {
        stdout.write_all(&reuse_audit::report::json(&out)?)?;
        return Ok(());
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}\n  sha256 {}\n  IR {}, opsets {:?}, producer '{}'",
        printable(&out.path),
        out.sha256,
        out.ir_version,
        out.opsets,
        printable(&out.producer)
    );
    if let Some(i) = &out.input {
        let d = |v: Option<usize>| v.map(|x| x.to_string()).unwrap_or_else(|| "?".into());
        // In the order the model declares: a channels-last input was printed as if N x C x H x W.
        let dims = match i.layout {
            Layout::Nchw => format!("{} x {} x {} x {}", d(i.batch), d(i.channels), d(i.height), d(i.width)),
            Layout::Nhwc => format!(
                "{} x {} x {} x {} ({})",
                d(i.batch),
                d(i.height),
                d(i.width),
                d(i.channels),
                Layout::Nhwc.pattern()
            ),
        };
        let _ = writeln!(s, "  input '{}': {dims}", printable(&i.name));
    }
    // Linear and norm counts only where the model has such layers: CNN output stays as it was.
    let more: String = [(out.linear_layers, "linear"), (out.norm_layers, "norm")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, f)| format!(", {n} {f} layers"))
        .collect();
    let _ = writeln!(
        s,
        "  {} conv layers, {} BN layers{more}, {} parameters in them\n",
        out.conv_layers, out.bn_layers, out.parameters
    );
    let fam = out.layers.iter().map(|l| l.family.len()).max().unwrap_or(0).max(4);
    for l in &out.layers {
        let params: Vec<String> = l.params.iter().map(|(k, n, d)| format!("{k}={} {d:?}", printable(n))).collect();
        let share = l.downstream_share.map(|d| format!("{:>5.1}% downstream  ", 100.0 * d)).unwrap_or_default();
        let _ = writeln!(
            s,
            "  {:<fam$} {:>3}  {:<14} {:<32} {share}{}",
            l.family,
            l.index,
            printable(&l.op),
            printable(&l.node),
            params.join("  ")
        );
    }
    if let Some(line) = quantized_line(&out.quantized) {
        let _ = writeln!(s, "\n  {line}");
    }
    if let Some(f) = &out.flops {
        let _ = writeln!(
            s,
            "\n  {:.4} GFLOPs per {}x{}x{} image; an audit of every parameter ({} swaps) costs {:.1} forward-pass equivalents: ideal speedup over naive {:.2}x",
            f.total / 1e9,
            f.input_chw[0],
            f.input_chw[1],
            f.input_chw[2],
            f.swaps,
            (f.swaps as f64 + 1.0) / f.ideal_speedup,
            f.ideal_speedup
        );
    }
    // One line for the computed parameters (a dynamo export has one per bias-free conv; the
    // JSON lists each), after one blank line, as the audit says it.
    let each: std::collections::HashSet<String> = sc.skipped.iter().map(|p| format!("{SKIPPED}{p}")).collect();
    let mut lines: Vec<String> = out.warnings.iter().filter(|w| !each.contains(*w)).cloned().collect();
    if let Some(w) = reuse_audit::pipeline::computed_parameters(&sc) {
        lines.push(if sc.skipped.len() > 1 { format!("{w} (each in --json)") } else { w });
    }
    if !lines.is_empty() {
        s.push('\n');
    }
    for w in &lines {
        let _ = writeln!(s, "warning: {}", terminal_safe(w));
    }
    stdout.write_all(s.as_bytes())?;
    Ok(())
}

/// `18 quantized conv layer(s) (QDQ), 18 audited: first, conv 1 'n': how` when there are any.
fn quantized_line(q: &[reuse_audit::model::quantized::QuantizedLayer]) -> Option<String> {
    let mut formats: Vec<&str> = q.iter().map(|l| l.format).collect();
    formats.dedup();
    let audited: Vec<_> = q.iter().filter(|l| l.audited).collect();
    let mut line = format!("{} quantized conv layer(s) ({}), {} audited", q.len(), formats.join(", "), audited.len());
    if let Some(first) = audited.first() {
        line.push_str(&format!(": first, conv {} '{}': {}", first.layer, first.node, first.reason));
    }
    (!q.is_empty()).then_some(line)
}

/// FLOPs summary and, per node, the share of FLOPs downstream of it.
fn flops_of(m: &Model, sc: &reuse_audit::model::layers::LayerScan, size: Option<&str>) -> Result<(FlopsOut, Vec<f64>)> {
    use reuse_audit::audit::cost::{probe_shapes, CostModel};
    use reuse_audit::error::UserError;
    let spec = m.input_spec()?;
    let (h, w) = match size {
        Some(s) => {
            let (h, w) = reuse_audit::pipeline::layout::parse_size(s, "--size")?;
            if let (Some(fh), Some(fw)) = (spec.height, spec.width) {
                if (fh, fw) != (h, w) {
                    return Err(UserError::BadFlag {
                        flag: "--size",
                        reason: format!(
                            "{}: the model's input is fixed at {fh}x{fw}; --size is for models with free spatial dims",
                            m.display_name()
                        ),
                    }
                    .into());
                }
            }
            (h, w)
        }
        None => match (spec.height, spec.width) {
            (Some(h), Some(w)) => (h, w),
            _ => {
                return Err(UserError::BadFlag {
                    flag: "--size",
                    reason: "the model's input size is not fixed: pass --size HxW".into(),
                }
                .into())
            }
        },
    };
    let c = spec.channels.unwrap_or(1);
    reuse_audit::pipeline::layout::check_image_size(c, h, w).map_err(|why| {
        reuse_audit::error::bad_file(&m.path, format!("the input '{}' to feed for --flops is {why}", spec.name))
    })?;
    let engine = reuse_audit::engine::Engine::new(reuse_audit::engine::Device::Cpu, 0, true)?;
    let probe = probe_shapes(&engine, m, &spec.name, spec.layout, [c, h, w])
        .map_err(|e| reuse_audit::error::bad_file(&m.path, format!("{e:#}")))?;
    let cost = CostModel::new(m, &probe.shapes);
    let topo = reuse_audit::model::graph::Topology::of(m);
    let shares: Vec<f64> =
        (0..m.proto.graph.node.len()).map(|i| cost.downstream(&topo, m, i) / cost.total.max(1.0)).collect();
    let swap_nodes: Vec<usize> = sc.layers.iter().flat_map(|l| l.params.iter().map(move |_| l.node_index)).collect();
    let ideal = cost.ideal_speedup(&topo, m, &swap_nodes);
    Ok((FlopsOut { input_chw: [c, h, w], total: cost.total, ideal_speedup: ideal, swaps: swap_nodes.len() }, shares))
}
