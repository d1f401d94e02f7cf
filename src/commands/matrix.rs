//! `matrix MODEL MODEL [MODEL...]`: pairwise per-layer RMSE of every ordered pair (paper
//! Figs. 11-12): a long CSV, a summary matrix (mean nRMSE of conv W) and an SVG/HTML heatmap.

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;

use reuse_audit::audit::compare;
use reuse_audit::error::UserError;
use reuse_audit::model::{Kind, Model};
use reuse_audit::pair::MatchMode;
use reuse_audit::pipeline::{pair_models, push_once, warn};
use reuse_audit::report::csv::{self, num};
use reuse_audit::report::svg::{esc, heatmap};

/// One row of matrix.csv: model_a, model_b (indices into `names`), family, layer, kind, rmse, nrmse.
pub type LongRow = (usize, usize, String, usize, String, f64, Option<f64>);

/// The result of `matrix`.
pub struct Matrix {
    /// Model names (file stems).
    pub names: Vec<String>,
    /// Long CSV rows.
    pub long: Vec<LongRow>,
    /// summary[a][b] = mean nRMSE of conv W of b against a (a = target); None on the diagonal.
    pub summary: Vec<Vec<Option<f64>>>,
    /// Warnings about the models and pairs, each once (also printed on stderr unless quiet).
    pub warnings: Vec<String>,
}

fn stem(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().trim_end_matches(".onnx").to_string())
        .unwrap_or_else(|| p.display().to_string())
}

/// Compute the matrix. Each model is read once; a pair that cannot be paired is an error
/// naming both files; the warnings of every pair are printed once each, at the end.
pub fn compute(models: &[PathBuf], mode: &MatchMode, quiet: bool) -> Result<Matrix> {
    if models.len() < 2 {
        return Err(UserError::BadFlag { flag: "MODEL", reason: "matrix needs at least two models".into() }.into());
    }
    let names: Vec<String> = models.iter().map(|p| stem(p)).collect();
    let loaded = models.iter().map(|p| Model::load(p)).collect::<Result<Vec<_>>>()?;
    let n = models.len();
    let mut long = Vec::new();
    let mut summary = vec![vec![None; n]; n];
    let mut warnings = Vec::new();
    for a in 0..n {
        for b in 0..n {
            if a == b {
                summary[a][b] = Some(0.0);
                continue;
            }
            let ctx = pair_models(loaded[a].clone(), loaded[b].clone(), mode)?;
            for w in ctx.warnings.iter() {
                push_once(&mut warnings, w.clone());
            }
            let values = compare::pair_values(&ctx.target, &ctx.source, &ctx.pairing)?;
            let rows = compare::rows(&ctx.pairing, &values, &Kind::ALL, false);
            let w: Vec<f64> =
                rows.iter().filter(|r| reuse_audit::verdict::is_conv_w(r)).filter_map(|r| r.nrmse).collect();
            summary[a][b] = (!w.is_empty()).then(|| w.iter().sum::<f64>() / w.len() as f64);
            long.extend(rows.into_iter().map(|r| (a, b, r.family, r.layer, r.kind, r.rmse, r.nrmse)));
        }
    }
    warn(&warnings, quiet);
    Ok(Matrix { names, long, summary, warnings })
}

impl Matrix {
    /// `matrix.csv`, long form.
    pub fn long_csv(&self) -> Result<Vec<u8>> {
        let header = ["model_a", "model_b", "family", "layer", "kind", "rmse", "nrmse"].map(String::from).to_vec();
        let rows = self.long.iter().map(|(a, b, fam, layer, kind, rmse, nrmse)| {
            vec![
                self.names[*a].clone(),
                self.names[*b].clone(),
                fam.clone(),
                layer.to_string(),
                kind.clone(),
                rmse.to_string(),
                num(*nrmse),
            ]
        });
        csv::to_bytes(std::iter::once(header).chain(rows))
    }

    /// `summary.csv`: mean nRMSE of conv W, rows = target (a), columns = source (b).
    pub fn summary_csv(&self) -> Result<Vec<u8>> {
        let header = std::iter::once("model".to_string()).chain(self.names.iter().cloned()).collect::<Vec<_>>();
        let rows = self.summary.iter().enumerate().map(|(i, row)| {
            std::iter::once(self.names[i].clone()).chain(row.iter().map(|v| num(*v))).collect::<Vec<_>>()
        });
        csv::to_bytes(std::iter::once(header).chain(rows))
    }

    /// The heatmap SVG.
    pub fn svg(&self) -> String {
        heatmap("Mean nRMSE of conv W (row: reference, column: candidate)", &self.names, &self.summary)
    }

    /// A page with the heatmap and, per row, the candidates ranked closest first.
    pub fn html(&self) -> String {
        let mut s = String::from("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>reuse-audit RMSE matrix</title><style>body{font-family:sans-serif;margin:24px}td,th{border:1px solid #ddd;padding:3px 6px}table{border-collapse:collapse;font-size:12px}</style></head><body><h1>Pairwise RMSE matrix</h1>");
        s.push_str(&self.svg());
        s.push_str("<h2>Closest candidates per reference</h2><table><tr><th>reference</th><th>candidates, closest first (mean nRMSE of conv W)</th></tr>");
        for i in 0..self.names.len() {
            let list: Vec<String> =
                self.closest(i).iter().map(|(j, v)| format!("{} ({v:.3})", esc(&self.names[*j]))).collect();
            let _ = write!(s, "<tr><td>{}</td><td>{}</td></tr>", esc(&self.names[i]), list.join(", "));
        }
        s.push_str("</table>");
        for w in &self.warnings {
            let _ = write!(s, "<p class=\"warning\">warning: {}</p>", esc(w));
        }
        s.push_str("</body></html>\n");
        s
    }

    /// The other models ranked closest first to reference `i`: (index, mean nRMSE of conv W).
    pub fn closest(&self, i: usize) -> Vec<(usize, f64)> {
        let mut c: Vec<(usize, f64)> = self.summary[i]
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .filter_map(|(j, v)| v.map(|v| (j, v)))
            .collect();
        c.sort_by(|x, y| x.1.total_cmp(&y.1));
        c
    }

    /// The files `matrix` writes: matrix.csv, summary.csv, matrix.svg, matrix.html.
    pub fn files(&self) -> Result<Vec<(String, Vec<u8>)>> {
        Ok(vec![
            ("matrix.csv".to_string(), self.long_csv()?),
            ("summary.csv".to_string(), self.summary_csv()?),
            ("matrix.svg".to_string(), self.svg().into_bytes()),
            ("matrix.html".to_string(), self.html().into_bytes()),
        ])
    }

    /// Text table for stdout.
    pub fn table(&self) -> String {
        let w = self.names.iter().map(|n| n.len()).max().unwrap_or(5).max(8);
        let mut s = format!("mean nRMSE of conv W (row: reference/target, column: candidate/source)\n{:w$}", "");
        for n in &self.names {
            let _ = write!(s, " {n:>w$}");
        }
        s.push('\n');
        for (i, row) in self.summary.iter().enumerate() {
            let _ = write!(s, "{:w$}", self.names[i]);
            for v in row {
                let _ = write!(s, " {:>w$}", v.map(|x| format!("{x:.3}")).unwrap_or_else(|| "-".into()));
            }
            s.push('\n');
        }
        s
    }
}

/// Run `matrix`.
pub fn run(models: &[PathBuf], mode: &MatchMode, out: Option<&Path>, quiet: bool) -> Result<()> {
    if let Some(dir) = out {
        reuse_audit::report::write::check_out(dir)?;
    }
    let mut inputs: Vec<(&Path, &str)> = models.iter().map(|m| (m.as_path(), "a model")).collect();
    inputs.extend(super::mapping_file(mode).map(|m| (m, "the --match file")));
    super::spare_inputs(out, "--out", &inputs)?;
    let m = compute(models, mode, quiet)?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(m.table().as_bytes())?;
    if let Some(dir) = out {
        for p in reuse_audit::report::write::write_all(dir, &m.files()?)? {
            writeln!(stdout, "wrote {}", p.display())?;
        }
    }
    Ok(())
}
