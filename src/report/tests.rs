//! Snapshot tests of every writer on one fixed, hand-made report.

use std::collections::BTreeMap;

use super::*;
use crate::metrics::dice::Dice;

fn row(family: &str, layer: usize, kind: &str, rmse: f64, swapped: f64) -> Row {
    Row {
        family: family.into(),
        layer,
        node: format!("{family}{layer}"),
        op: if family == "conv" { "Conv" } else { "BatchNormalization" }.into(),
        kind: kind.into(),
        target_initializer: format!("t.{family}{layer}.{kind}"),
        source_initializer: format!("s.{family}{layer}.{kind}"),
        shape: if kind == "W" { "4x1x3x3".into() } else { "4".into() },
        numel: if kind == "W" { 36 } else { 4 },
        rmse,
        nrmse: Some(rmse * 2.0),
        cosine: 0.5,
        baseline_dice: Some(0.9),
        swapped_dice: Some(swapped),
        delta_dice: Some(0.9 - swapped),
        dice_fg: Some(swapped - 0.05),
        reusable: None,
        spectral_rel: (kind == "W").then_some(rmse * 4.0),
        subspace_overlap: (kind == "W").then_some(0.75),
        dice_class: vec![swapped + 0.05, swapped - 0.05],
        // Set per row in `fixed_report`.
        delta_dice_lo: None,
        delta_dice_hi: None,
        decision: None,
        images_used: Some(2),
        budget: None,
        non_finite_images: Some(0),
    }
}

/// A conv row of `kind` with no decision.
pub fn plain_row(kind: &str) -> Row {
    row("conv", 1, kind, 0.1, 0.9)
}

/// A fixed report: two conv layers (W, B) and one BN layer (RM); conv 1 W and bn 1 RM are not reusable.
pub fn fixed_report() -> Report {
    let mut rows = vec![
        row("conv", 1, "W", 0.25, 0.5),
        row("conv", 1, "B", 0.125, 0.9),
        row("conv", 2, "W", 0.5, 0.89),
        row("bn", 1, "RM", 1.5, 0.875),
    ];
    // Intervals: conv 1 W not reusable, conv 1 B and conv 2 W reusable, bn 1 RM (loss
    // 0.025, interval 0.0125-0.0375) undecided.
    for (r, (lo, hi)) in rows.iter_mut().zip([(0.375, 0.4375), (-0.0039, 0.0061), (0.0039, 0.0156), (0.0125, 0.0375)]) {
        (r.delta_dice_lo, r.delta_dice_hi) = (Some(lo), Some(hi));
    }
    let mut summary = crate::verdict::decide(&mut rows, 0.02, 0.5);
    let rows_for_predictors = rows.clone();
    summary.bn = vec![BnStats { layer: 1, node: "bn1".into(), mrm: 0.25, mrv: 1.5, mrw: Some(0.75), mrb: -0.125 }];
    Report {
        schema_version: SCHEMA_VERSION,
        tool: ToolInfo { name: "reuse-audit".into(), version: "0.0.0-test".into() },
        command: "audit".into(),
        target: ModelInfo {
            path: "t.onnx".into(),
            sha256: "0".repeat(64),
            conv_layers: 2,
            bn_layers: 1,
            linear_layers: 0,
            norm_layers: 0,
            bn_probably_folded: false,
            quantized: vec![],
            computes_in: None,
        },
        source: ModelInfo {
            path: "s.onnx".into(),
            sha256: "1".repeat(64),
            conv_layers: 2,
            bn_layers: 1,
            linear_layers: 0,
            norm_layers: 0,
            bn_probably_folded: false,
            quantized: vec![],
            computes_in: None,
        },
        engine: Some(EngineInfo {
            runtime: "onnxruntime".into(),
            version: "1.31.1".into(),
            provider: "CPUExecutionProvider".into(),
            strategy: "naive".into(),
            device: None,
            cuda_version: None,
            cudnn_version: None,
            cuda_libraries: vec![],
            cudnn_conv_search: None,
        }),
        dataset: Some(DatasetInfo {
            path: "val.npz".into(),
            format: "npz".into(),
            images: 2,
            channels: 1,
            height: 4,
            width: 4,
            classes: 2,
            labels: "file".into(),
            ignore_label: None,
            normalize: "zscore".into(),
            normalize_scores: vec![],
            fit: "none".into(),
            prediction: "argmax over 2 channels (ends with Conv)".into(),
            layout: "nchw".into(),
            mean_std: None,
        }),
        settings: Settings {
            kinds: vec!["W".into(), "B".into(), "RM".into()],
            families: None,
            tolerance: 0.02,
            rn_threshold: 0.5,
            match_method: "name".into(),
            confidence: 0.95,
            bootstrap: 2000,
            adaptive: false,
            metric: Some(crate::metrics::score::Metric::Dice),
            tf32: false,
        },
        baseline: Some(Dice { per_class: vec![0.95, 0.85], mean: 0.9, mean_fg: 0.85 }),
        rows,
        unmatched: vec![],
        not_audited: vec![],
        warnings: vec!["a warning".into()],
        predictors: crate::predictors::predictors(&rows_for_predictors, 0.95, 200),
        adaptive: None,
        budget: None,
        timing: None,
        summary,
    }
}

#[test]
fn verdict_of_the_fixed_report() {
    let r = fixed_report();
    // conv W: layer 1 loses 0.4 (not reusable), layer 2 loses 0.01 (reusable) -> share 0.5 -> RN.
    assert_eq!(r.summary.rn, Some(true));
    let mut want = BTreeMap::new();
    want.insert("W".to_string(), vec![1]);
    want.insert("B".to_string(), vec![]);
    want.insert("RM".to_string(), vec![1]); // loses 0.025 > 0.02
    assert_eq!(r.summary.not_reusable, want);
}

#[test]
fn csv_snapshot() {
    insta::assert_snapshot!("csv", String::from_utf8(csv::render(&fixed_report()).unwrap()).unwrap());
}

#[test]
fn json_snapshot() {
    insta::assert_snapshot!("json", String::from_utf8(json(&fixed_report()).unwrap()).unwrap());
}

#[test]
fn markdown_snapshot() {
    insta::assert_snapshot!("markdown", markdown::render(&fixed_report()));
}

#[test]
fn table_snapshot() {
    insta::assert_snapshot!("table", table::render(&fixed_report()));
}

/// The HTML's structure: element ids, figure files and counts (the SVG coordinates are
/// covered by the svg module's own tests and the browser check).
#[test]
fn html_structure_snapshot() {
    let r = fixed_report();
    let figs = html::figures(&r);
    let page = html::render(&r, &figs);
    let mut outline: Vec<String> = figs
        .iter()
        .map(|f| {
            let bars = svg::tests::rects(&f.svg, "#1F77B4") + svg::tests::rects(&f.svg, "#D62728");
            format!("figure {} ({}) bars={bars}", f.file, f.section)
        })
        .collect();
    for id in ["verdict", "baseline", "figs-swap", "figs-bn", "figs-rmse", "rows"] {
        outline.push(format!("id {id}: {}", page.contains(&format!("id=\"{id}\""))));
    }
    outline.push(format!("svg elements: {}", page.matches("<svg ").count()));
    outline.push(format!("highlighted rows: {}", page.matches("<tr class=\"bad\">").count()));
    outline.push(format!(
        "external references: {}",
        page.matches("src=\"http").count() + page.matches("href=\"http").count()
    ));
    insta::assert_snapshot!("html_structure", outline.join("\n"));
}

/// The `y` of the tick label `label` drawn with `anchor` (`end`: left axis, `start`: right axis).
fn tick_y(svg: &str, anchor: &str, label: &str) -> Option<String> {
    let tick = svg
        .split("<text ")
        .find(|t| t.contains(&format!("text-anchor=\"{anchor}\"")) && t.contains(&format!(">\n{label}\n</text>")))?;
    Some(tick.split(" y=\"").nth(1)?.split('"').next()?.to_string())
}

#[test]
fn subspace_figure_plots_the_planted_values() {
    let mut r = fixed_report();
    let plant = |r: &mut Report, kind: &str, layer: usize, spectral: Option<f64>, overlap: Option<f64>| {
        let row = r.rows.iter_mut().find(|x| x.kind == kind && x.layer == layer).unwrap();
        row.spectral_rel = spectral;
        row.subspace_overlap = overlap;
    };
    plant(&mut r, "W", 1, Some(1.0), Some(0.6));
    plant(&mut r, "W", 2, Some(0.5), None);
    plant(&mut r, "B", 1, Some(9.0), Some(0.9)); // not a W row: not plotted
    let figs = html::figures(&r);
    let fig = figs.iter().find(|f| f.file == "subspace-w.svg").expect("subspace figure");
    assert_eq!(fig.section, "subspace");
    let svg = &fig.svg;
    let circles = |color: &str| -> Vec<&str> {
        svg.split("<circle ").skip(1).filter(|c| c.contains(&format!("fill=\"{color}\""))).collect()
    };
    assert_eq!(circles("#1F77B4").len(), 2, "spectral_rel of W layers 1 and 2");
    assert_eq!(circles("#FF7F0E").len(), 1, "subspace_overlap of W layer 1 only");
    let cy = |c: &str| c.split("cy=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    // Each point sits at the height of its value's tick on its own axis.
    assert_eq!(Some(cy(circles("#FF7F0E")[0])), tick_y(svg, "start", "0.6"), "overlap 0.6 on the right axis");
    assert_eq!(Some(cy(circles("#1F77B4")[0])), tick_y(svg, "end", "1"), "spectral_rel 1.0 on the left axis");
    for label in ["spectral_rel", "subspace_overlap", "conv layer", "Spectral distance and subspace overlap"] {
        assert!(svg.contains(label), "{label}");
    }
    assert!(!svg.contains(">9<"), "the B row is not plotted");
    assert!(html::render(&r, &figs).contains("id=\"figs-subspace\""));
}

#[test]
fn no_subspace_figure_without_values() {
    let mut r = fixed_report();
    for row in &mut r.rows {
        (row.spectral_rel, row.subspace_overlap) = (None, None);
    }
    let figs = html::figures(&r);
    assert!(figs.iter().all(|f| f.file != "subspace-w.svg"));
    assert!(!html::render(&r, &figs).contains("figs-subspace"));
}

#[test]
fn quantized_target_gets_a_line_in_markdown_and_html() {
    use crate::model::quantized::QuantizedLayer;
    let mut r = fixed_report();
    assert!(!markdown::render(&r).contains("Quantized target"), "a float model has no line");
    let layer = |layer: usize, format: &'static str, audited: bool, reason: &str| QuantizedLayer {
        layer,
        node: format!("c{layer}"),
        op: "Conv".into(),
        format,
        audited,
        reason: reason.into(),
    };
    r.target.quantized = vec![layer(1, "QDQ", true, "W is swapped as its triple"), layer(2, "QDQ", false, "blocked")];
    let md = markdown::render(&r);
    assert!(
        md.contains("Quantized target: 2 quantized conv layer(s) (QDQ): 1 audited, W (and a quantized B) swapped as (quantized tensor, scale, zero point) triples, RMSE on dequantized values; 1 not audited (first: conv 2 `c2`: blocked)"),
        "{md}"
    );
    let page = html::render(&r, &[]);
    assert!(
        page.contains("<p id=\"quantized\">Quantized target: 2 quantized conv layer(s) (QDQ): 1 audited"),
        "{page}"
    );
}

#[test]
fn accuracy_and_agreement_reports_name_their_metric_and_keep_the_csv_header() {
    use crate::metrics::score::Metric;
    let dice = fixed_report();
    let header = |r: &Report| String::from_utf8(csv::render(r).unwrap()).unwrap().lines().next().unwrap().to_string();
    for (metric, baseline_line) in [
        (Metric::Accuracy, "baseline accuracy (top-1): 0.9000"),
        (Metric::Agreement, "metric: agreement with the unswapped target's predictions"),
    ] {
        let mut r = fixed_report();
        r.settings.metric = Some(metric);
        let (table, md, html) = (table::render(&r), markdown::render(&r), html::render(&r, &html::figures(&r)));
        assert!(table.contains(baseline_line), "{table}");
        assert!(!table.contains("baseline Dice") && !md.contains("Baseline Dice"), "{table}\n{md}");
        assert!(table.contains(&format!("tolerance 0.02 {})", metric.label())), "{table}");
        assert!(md.contains(&format!("delta {}", metric.label())), "{md}");
        assert!(html.contains(&format!("swapped {}", metric.label())) && !html.contains("Mean Dice after"), "{html}");
        assert_eq!(header(&r), header(&dice), "CSV columns keep their names");
        assert!(String::from_utf8(json(&r).unwrap()).unwrap().contains(&format!("\"metric\": \"{}\"", metric.name())));
    }
}

/// The fixed report with a noise budget: one row inside the grid, one above, one below, one
/// without a budget.
fn budget_report() -> Report {
    use super::budget::{agreement, within, BudgetInfo, RowBudget};
    let mut r = fixed_report();
    let cases = [
        (Some((0.5, 0.015)), Some((0.55, 0.03)), None),
        (Some((1.0, 0.001)), None, Some("above the grid: the budget is at least 1")),
        (None, Some((0.001, 0.2)), Some("below the grid: 0.001 already loses 0.2")),
        (None, None, Some("not a float32 initializer")),
    ];
    for (row, (b, n, note)) in r.rows.iter_mut().zip(cases) {
        let known = b.is_some() || n.is_some();
        row.budget = Some(RowBudget {
            rmse_budget: b.map(|x: (f64, f64)| x.0),
            within_budget: if known { within(row.rmse, b.map(|x| x.0), n.map(|x: (f64, f64)| x.0)) } else { None },
            budget_loss: b.map(|x| x.1),
            rmse_budget_next: n.map(|x| x.0),
            budget_next_loss: n.map(|x| x.1),
            budget_note: note.map(String::from),
        });
    }
    r.budget = Some(BudgetInfo {
        noise: "gaussian".into(),
        draws: 3,
        grid_points: 127,
        grid_low: 1e-4,
        grid_high: 10.0,
        steps: 7,
        probe_runs: 63,
        baseline_runs: 7,
        strategy: "incremental".into(),
        searched: 3,
        agreement: agreement(&r.rows),
    });
    r
}

#[test]
fn budget_csv_and_markdown_snapshot() {
    let r = budget_report();
    let csv = String::from_utf8(csv::render(&r).unwrap()).unwrap();
    insta::assert_snapshot!("budget_csv", csv);
    insta::assert_snapshot!("budget_markdown", budget::markdown(&r));
    // conv 1 W (rmse 0.25 <= 0.5) within, conv 1 B (0.125 <= 1, above the grid) within,
    // conv 2 W (0.5 >= 0.001, below the grid) over, bn 1 RM unknown.
    let w: Vec<Option<bool>> = r.rows.iter().map(|x| x.budget.as_ref().unwrap().within_budget).collect();
    assert_eq!(w, [Some(true), Some(true), Some(false), None]);
    let page = html::render(&r, &html::figures(&r));
    assert!(
        page.contains("<td data-v=\"1\" title=\"above the grid: the budget is at least 1\">&gt; 1.000e0</td>"),
        "{page}"
    );
    assert!(page.contains("&lt; 1.000e-3</td><td class=\"l\">no</td>"), "{page}");
    assert_eq!(
        html::figures(&r).iter().filter(|f| f.section == "budget").count(),
        2,
        "W and B (RM has no bracket but a row)"
    );
}

/// Regression: a node name with a newline (legal in ONNX) split its row of the stdout table
/// in two, and an escape sequence in it reached the terminal.
#[test]
fn stdout_table_rows_stay_one_line_whatever_the_node_names() {
    let plain = table::render(&fixed_report());
    let mut r = fixed_report();
    r.rows[0].node = "conv\n\u{1b}[2Jx".into();
    r.summary.bn[0].node = "bn\r1".into();
    let odd = table::render(&r);
    assert_eq!(odd.lines().count(), plain.lines().count(), "{odd}");
    assert!(!odd.contains('\u{1b}') && !odd.contains('\r'), "{odd}");
    assert!(odd.contains("conv\\n\\u{1b}[2Jx") && odd.contains("bn\\r1"), "{odd}");
}
