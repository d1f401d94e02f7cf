//! report.csv: one row per (layer, kind), fixed columns, then `dice_class_K` columns.

use super::Report;

/// The fixed columns, in order.
pub const COLUMNS: [&str; 17] = [
    "family",
    "layer",
    "node",
    "op",
    "kind",
    "target_initializer",
    "source_initializer",
    "shape",
    "numel",
    "rmse",
    "nrmse",
    "cosine",
    "baseline_dice",
    "swapped_dice",
    "delta_dice",
    "dice_fg",
    "reusable",
];

/// Quote a field when it holds a comma, quote or newline.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn num(v: Option<f64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

/// Render the CSV (deterministic: shortest round-trip number formatting).
pub fn render(r: &Report) -> Vec<u8> {
    let classes = r.baseline.as_ref().map(|b| b.per_class.len()).unwrap_or(0);
    let mut header: Vec<String> = COLUMNS.iter().map(|s| s.to_string()).collect();
    header.extend((0..classes).map(|k| format!("dice_class_{k}")));
    let mut out = header.join(",");
    out.push('\n');
    for row in &r.rows {
        let mut cols = vec![
            row.family.clone(),
            row.layer.to_string(),
            field(&row.node),
            row.op.clone(),
            row.kind.clone(),
            field(&row.target_initializer),
            field(&row.source_initializer),
            row.shape.clone(),
            row.numel.to_string(),
            row.rmse.to_string(),
            num(row.nrmse),
            row.cosine.to_string(),
            num(row.baseline_dice),
            num(row.swapped_dice),
            num(row.delta_dice),
            num(row.dice_fg),
            row.reusable.map(|b| b.to_string()).unwrap_or_default(),
        ];
        cols.extend((0..classes).map(|k| num(row.dice_class.get(k).copied())));
        out.push_str(&cols.join(","));
        out.push('\n');
    }
    out.into_bytes()
}
