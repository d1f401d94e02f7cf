//! report.html: one self-contained page (inline SVG, inline CSS/JS, no external assets) with
//! the verdict, the baseline, the paper's per-layer figures and a sortable table; the same
//! figures as standalone SVG files for `figures/`.

use std::fmt::Write;

use super::confidence;
use super::dual_axis::{DualAxisChart, Series};
use super::interval_chart;
use super::svg::{esc, BarChart};
use super::Report;
use crate::metrics::score::Metric;

/// A named figure (file stem, section, SVG).
pub struct Figure {
    /// File name under `figures/`, e.g. `dice-W.svg`.
    pub file: String,
    /// Section it belongs to in the page.
    pub section: &'static str,
    /// The SVG.
    pub svg: String,
}

/// The (family, kind) groups with per-layer figures, in page order, and the family's name in
/// titles.
const GROUPS: [(&str, &str, &str); 10] = [
    ("conv", "W", "conv"),
    ("conv", "B", "conv"),
    ("bn", "RM", "BN"),
    ("bn", "RV", "BN"),
    ("bn", "RW", "BN"),
    ("bn", "RB", "BN"),
    ("linear", "W", "linear"),
    ("linear", "B", "linear"),
    ("norm", "RW", "norm"),
    ("norm", "RB", "norm"),
];

fn rows_of<'a>(r: &'a Report, family: &str, kind: &str) -> Vec<&'a super::Row> {
    r.rows.iter().filter(|row| row.family == family && row.kind == kind).collect()
}

/// A group's part of figure file names: the kind for conv and BN (`dice-W.svg`), with the
/// family for the others (`dice-linear-W.svg`).
fn stem(family: &str, kind: &str) -> String {
    if matches!(family, "conv" | "bn") {
        kind.to_string()
    } else {
        format!("{family}-{kind}")
    }
}

/// Whether a report has rows of linear layers (their figures join the conv ones).
fn has_linear(r: &Report) -> bool {
    r.rows.iter().any(|x| x.family == "linear")
}

/// Every figure of a report, in page order.
pub fn figures(r: &Report) -> Vec<Figure> {
    let mut out = Vec::new();
    let metric = r.metric();
    if let Some(b) = &r.baseline {
        for (fam, k, family) in GROUPS {
            let rows = rows_of(r, fam, k);
            if rows.is_empty() || rows.iter().all(|x| x.swapped_dice.is_none()) {
                continue;
            }
            let title = match metric {
                Metric::Dice => format!("Mean Dice after swapping {k} of each {family} layer"),
                Metric::Accuracy => format!("Accuracy after swapping {k} of each {family} layer"),
                Metric::Agreement => format!("Agreement with the target after swapping {k} of each {family} layer"),
            };
            let chart = BarChart {
                title: &title,
                y_label: metric.score_name(),
                labels: rows.iter().map(|x| x.layer.to_string()).collect(),
                values: rows.iter().map(|x| x.swapped_dice).collect(),
                marked: rows.iter().map(|x| x.reusable == Some(false)).collect(),
                reference: Some((b.mean, "baseline")),
                include: vec![0.0, 1.0],
            };
            out.push(Figure { file: format!("dice-{}.svg", stem(fam, k)), section: "swap", svg: chart.render() });
        }
    }
    let bn = &r.summary.bn;
    if !bn.is_empty() {
        type Stat = fn(&super::BnStats) -> Option<f64>;
        let stats: [(&str, f64, Stat); 4] = [
            ("MRM", 0.0, |b| Some(b.mrm)),
            ("MRV", 1.0, |b| Some(b.mrv)),
            ("MRW", 1.0, |b| b.mrw),
            ("MRB", 0.0, |b| Some(b.mrb)),
        ];
        for (name, neutral, get) in stats {
            let title = format!("{name} per BN layer");
            let chart = BarChart {
                title: &title,
                y_label: name,
                labels: bn.iter().map(|b| b.layer.to_string()).collect(),
                values: bn.iter().map(get).collect(),
                marked: vec![],
                reference: Some((neutral, "no change")),
                include: vec![neutral],
            };
            out.push(Figure { file: format!("bn-{}.svg", name.to_lowercase()), section: "bn", svg: chart.render() });
        }
    }
    for (fam, k) in [("conv", "W"), ("conv", "B"), ("linear", "W"), ("linear", "B")] {
        let rows = rows_of(r, fam, k);
        if rows.is_empty() {
            continue;
        }
        for (metric, get) in [
            ("RMSE", (|x: &super::Row| Some(x.rmse)) as fn(&super::Row) -> Option<f64>),
            ("nRMSE", |x: &super::Row| x.nrmse),
        ] {
            let title = format!("{metric} of {fam} {k} per layer");
            let chart = BarChart {
                title: &title,
                y_label: metric,
                labels: rows.iter().map(|x| x.layer.to_string()).collect(),
                values: rows.iter().map(|x| get(x)).collect(),
                marked: rows.iter().map(|x| x.reusable == Some(false)).collect(),
                reference: None,
                include: vec![0.0],
            };
            out.push(Figure {
                file: format!("{}-{}.svg", metric.to_lowercase(), stem(fam, k).to_lowercase()),
                section: "rmse",
                svg: chart.render(),
            });
        }
    }
    out.extend(subspace_figure(r, "conv"));
    out.extend(subspace_figure(r, "linear"));
    out.extend(interval_chart::figures(r));
    out.extend(super::budget_chart::figures(r));
    out
}

/// Per conv (linear) layer, `spectral_rel` and `subspace_overlap` of W; None when no W row
/// of the family has either.
fn subspace_figure(r: &Report, family: &str) -> Option<Figure> {
    let rows: Vec<&super::Row> = rows_of(r, family, "W")
        .into_iter()
        .filter(|x| x.spectral_rel.is_some() || x.subspace_overlap.is_some())
        .collect();
    if rows.is_empty() {
        return None;
    }
    let title = format!("Spectral distance and subspace overlap of {family} W per layer");
    let chart = DualAxisChart {
        title: &title,
        labels: rows.iter().map(|x| x.layer.to_string()).collect(),
        left: Series { name: "spectral_rel", values: rows.iter().map(|x| x.spectral_rel).collect() },
        right: Series { name: "subspace_overlap", values: rows.iter().map(|x| x.subspace_overlap).collect() },
    };
    Some(Figure { file: format!("subspace-{}.svg", stem(family, "w")), section: "subspace", svg: chart.render() })
}

const STYLE: &str = "body{font-family:sans-serif;margin:24px;color:#222;max-width:1400px}h1{font-size:22px}\
.verdict{padding:12px 16px;border-radius:6px;font-size:18px;margin:12px 0}.rn{background:#e6f4ea;border:1px solid #2ca02c}\
.notrn{background:#fdecea;border:1px solid #d62728}.figs{display:flex;flex-wrap:wrap;gap:12px}.figs svg{border:1px solid #eee;width:calc(50% - 8px);min-width:480px;height:auto}\
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ddd;padding:3px 6px;text-align:right}th{background:#f4f4f4;cursor:pointer;position:sticky;top:0}\
td.l,th.l{text-align:left}tr.bad td{background:#fdecea}code{font-size:12px}";

const SORT_JS: &str = "document.querySelectorAll('table.sortable th').forEach(function(th,i){th.addEventListener('click',function(){\
var t=th.closest('table'),b=t.tBodies[0],rs=Array.from(b.rows),asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';\
rs.sort(function(x,y){var a=x.cells[i].dataset.v||x.cells[i].textContent,c=y.cells[i].dataset.v||y.cells[i].textContent;\
var na=parseFloat(a),nc=parseFloat(c);var r=(!isNaN(na)&&!isNaN(nc))?na-nc:a.localeCompare(c);return asc?r:-r;});\
rs.forEach(function(r){b.appendChild(r);});});});";

fn num(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.4}")).unwrap_or_default()
}

/// Render the page.
pub fn render(r: &Report, figs: &[Figure]) -> String {
    let mut s = String::new();
    let _ = write!(s, "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>reuse-audit: {}</title><style>{STYLE}</style></head><body>", esc(&r.target.path));
    let _ = write!(
        s,
        "<h1>reuse-audit report</h1><p>target <code>{}</code> ← source <code>{}</code>, paired by {}</p>",
        esc(&r.target.path),
        esc(&r.source.path),
        r.settings.match_method
    );
    let sm = &r.summary;
    match sm.rn {
        Some(rn) => {
            let _ = write!(
                s,
                "<div class=\"verdict {}\" id=\"verdict\"><b>{}</b>: conv W reusable in {:.0}% of layers (RN threshold {:.0}%); {}; tolerance {} {}.</div>",
                if rn { "rn" } else { "notrn" },
                if rn { "Reusable network (RN)" } else { "Not a reusable network" },
                100.0 * sm.conv_w_reusable_share.unwrap_or(0.0),
                100.0 * r.settings.rn_threshold,
                match (sm.reuse_share_groups, sm.reuse_share_scalars) {
                    (Some(g), Some(sc)) => format!(
                        "reuse share {:.1}% of (layer, kind) groups, {:.1}% of scalars",
                        100.0 * g,
                        100.0 * sc
                    ),
                    _ => format!("no reuse share ({} (layer, kind) groups not audited)", r.not_audited.len()),
                },
                r.settings.tolerance,
                r.metric().score_name()
            );
        }
        None => {
            let _ = write!(s, "<div class=\"verdict\" id=\"verdict\">{}.</div>", super::table::headline(r).1);
        }
    }
    let lines: Vec<String> = [confidence::rn_line(r), confidence::decisions_line(r), confidence::adaptive_line(r)]
        .into_iter()
        .flatten()
        .collect();
    if !lines.is_empty() {
        let _ = write!(s, "<p id=\"confidence\">{}</p>", lines.iter().map(|l| esc(l)).collect::<Vec<_>>().join("<br>"));
    }
    if let Some(b) = &r.baseline {
        let (heading, mean) = match r.metric() {
            Metric::Dice => ("<h2>Baseline Dice</h2>", "mean"),
            Metric::Accuracy => ("<h2>Baseline accuracy</h2><p>Per class and foreground: Dice (F1).</p>", "accuracy"),
            Metric::Agreement => (
                "<h2>Baseline</h2><p>Label-free: each swap is scored by its agreement with the unswapped target's predictions (delta = 1 - agreement); per class and foreground: Dice against those predictions.</p>",
                "agreement",
            ),
        };
        let _ = write!(s, "{heading}<table id=\"baseline\"><tr>");
        for k in 0..b.per_class.len() {
            let _ = write!(s, "<th>class {k}</th>");
        }
        let _ = write!(s, "<th>{mean}</th><th>foreground</th></tr><tr>");
        for d in &b.per_class {
            let _ = write!(s, "<td>{d:.4}</td>");
        }
        let _ = write!(s, "<td>{:.4}</td><td>{:.4}</td></tr></table>", b.mean, b.mean_fg);
    }
    if let Some(q) = r.target.quantized_line() {
        let _ = write!(s, "<p id=\"quantized\">Quantized target: {}</p>", esc(&q));
    }
    if !sm.reusable.is_empty() {
        s.push_str("<h2>Reusable layers</h2><table><tr><th class=\"l\">kind</th><th class=\"l\">reusable</th><th class=\"l\">not reusable</th>");
        if !sm.undecided.is_empty() {
            let _ = write!(s, "<th class=\"l\">undecided at {:.0}%</th>", 100.0 * r.settings.confidence);
        }
        s.push_str("</tr>");
        for (k, yes, no) in super::table::reuse_lists(sm) {
            let _ = write!(s, "<tr><td class=\"l\">{k}</td><td class=\"l\">{yes}</td><td class=\"l\">{no}</td>");
            if let Some(u) = sm.undecided.get(&k) {
                let _ = write!(s, "<td class=\"l\">{}</td>", super::table::compact(u));
            }
            s.push_str("</tr>");
        }
        s.push_str("</table>");
    }
    let (rmse_title, subspace_title) = if has_linear(r) {
        ("RMSE and nRMSE of conv and linear W and B", "Spectral distance and subspace overlap of conv and linear W")
    } else {
        ("RMSE and nRMSE of conv W and B", "Spectral distance and subspace overlap of conv W")
    };
    let swap_title = format!("{} after swapping, per layer (red: not reusable)", r.metric().title());
    for (section, title) in [
        ("swap", swap_title.as_str()),
        ("bn", "BN shift and scale: MRM, MRV, MRW, MRB"),
        ("rmse", rmse_title),
        ("subspace", subspace_title),
        ("confidence", "Loss per layer with its interval (blue reusable, red not reusable, amber undecided)"),
    ] {
        let in_section: Vec<&Figure> = figs.iter().filter(|f| f.section == section).collect();
        if in_section.is_empty() {
            continue;
        }
        let _ = write!(s, "<h2>{title}</h2><div class=\"figs\" id=\"figs-{section}\">");
        for f in in_section {
            s.push_str(&f.svg);
        }
        s.push_str("</div>");
    }
    predictors_table(&mut s, r);
    s.push_str(&super::budget::html(r, figs));
    s.push_str("<h2>All rows</h2><table class=\"sortable\" id=\"rows\"><thead><tr>");
    let swapped = format!("swapped {}", r.metric().label());
    for h in [
        "family",
        "layer",
        "kind",
        "node",
        "shape",
        "rmse",
        "nrmse",
        "cosine",
        swapped.as_str(),
        "delta",
        "reusable",
        "delta lo",
        "delta hi",
        "decision",
        "images",
    ]
    .into_iter()
    .chain(r.budget.as_ref().map(|_| ["rmse budget", "within budget"]).into_iter().flatten())
    {
        let _ = write!(
            s,
            "<th class=\"{}\">{h}</th>",
            if matches!(h, "family" | "kind" | "node" | "shape" | "reusable" | "decision" | "within budget") {
                "l"
            } else {
                ""
            }
        );
    }
    s.push_str("</tr></thead><tbody>");
    for row in &r.rows {
        let _ = write!(
            s,
            "<tr{}><td class=\"l\">{}</td><td>{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td data-v=\"{}\">{:.3e}</td><td>{}</td><td>{:.4}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td><td>{}</td>",
            if row.reusable == Some(false) { " class=\"bad\"" } else { "" },
            row.family,
            row.layer,
            row.kind,
            esc(&row.node),
            row.shape,
            row.rmse,
            row.rmse,
            num(row.nrmse),
            row.cosine,
            num(row.swapped_dice),
            num(row.delta_dice),
            match row.reusable {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "",
            },
            num(row.delta_dice_lo),
            num(row.delta_dice_hi),
            row.decision.map_or("", |d| d.name()),
            row.images_used.map(|n| n.to_string()).unwrap_or_default()
        );
        if r.budget.is_some() {
            s.push_str(&super::budget::html_cells(row));
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
    for w in &r.warnings {
        let _ = write!(s, "<p class=\"warning\">warning: {}</p>", esc(w));
    }
    let _ = writeln!(
        s,
        "<p><small>{} {}; target sha256 {}</small></p><script>{SORT_JS}</script></body></html>",
        r.tool.name, r.tool.version, r.target.sha256
    );
    s
}

/// The predictor table (nothing without predictors).
fn predictors_table(s: &mut String, r: &Report) {
    if r.predictors.is_empty() {
        return;
    }
    let conf = 100.0 * r.settings.confidence;
    let loss = r.metric().label();
    let _ = write!(
        s,
        "<h2>Which data-free metric predicts the loss</h2><p>Spearman's rank correlation over the audited layers of each kind between the metric and the measured {loss} loss, with a {conf:.0}% bootstrap interval (layers resampled). Distances (rmse, nrmse, spectral_rel) should correlate positively, similarities (cosine, subspace_overlap) negatively; an interval across 0 means the metric does not rank these layers.</p><table id=\"predictors\"><tr><th class=\"l\">kind</th><th class=\"l\">metric</th><th>layers</th><th>Spearman rho</th><th class=\"l\">{conf:.0}% interval</th></tr>"
    );
    for [k, m, n, rho, iv] in confidence::predictor_cells(r) {
        let _ = write!(
            s,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{m}</td><td>{n}</td><td>{rho}</td><td class=\"l\">{}</td></tr>",
            esc(&k),
            esc(&iv)
        );
    }
    s.push_str("</table>");
}
