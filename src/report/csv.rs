//! report.csv: one row per (layer, kind), fixed columns, then `dice_class_K` columns, then
//! the columns added later (appended, so every earlier column keeps its position; the noise
//! budget's only with `--budget`). Every CSV the tool writes goes through [`to_bytes`] (the
//! `csv` crate).

use anyhow::{Context, Result};

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

/// Columns appended after the `dice_class_K` columns, in order.
pub const APPENDED: [&str; 7] = [
    "spectral_rel",
    "subspace_overlap",
    "delta_dice_lo",
    "delta_dice_hi",
    "decision",
    "images_used",
    "non_finite_images",
];

/// Columns appended after those when the report has a noise budget (`--budget`), in order.
pub const BUDGET: [&str; 6] =
    ["rmse_budget", "within_budget", "budget_loss", "rmse_budget_next", "budget_next_loss", "budget_note"];

/// A number as written in every CSV: Rust's shortest round-trip form; empty for `None`.
pub fn num(v: Option<f64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

/// CSV bytes of records (the header is the first): `\n` line ends, a field quoted only
/// when it holds a comma, quote or line break (quotes doubled), every record as long as
/// the first.
pub fn to_bytes<R, F>(records: impl IntoIterator<Item = R>) -> Result<Vec<u8>>
where
    R: IntoIterator<Item = F>,
    F: AsRef<[u8]>,
{
    let mut w = ::csv::WriterBuilder::new().from_writer(Vec::new());
    for record in records {
        w.write_record(record).context("writing a CSV record")?;
    }
    w.into_inner().map_err(|e| anyhow::anyhow!("finishing a CSV: {}", e.error()))
}

/// Render the CSV (deterministic: shortest round-trip number formatting).
pub fn render(r: &Report) -> Result<Vec<u8>> {
    let classes = r.baseline.as_ref().map(|b| b.per_class.len()).unwrap_or(0);
    let mut header: Vec<String> = COLUMNS.iter().map(|s| s.to_string()).collect();
    header.extend((0..classes).map(|k| format!("dice_class_{k}")));
    header.extend(APPENDED.iter().map(|s| s.to_string()));
    let budget = r.budget.is_some();
    if budget {
        header.extend(BUDGET.iter().map(|s| s.to_string()));
    }
    let rows = r.rows.iter().map(|row| {
        let mut cols = vec![
            row.family.clone(),
            row.layer.to_string(),
            row.node.clone(),
            row.op.clone(),
            row.kind.clone(),
            row.target_initializer.clone(),
            row.source_initializer.clone(),
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
        cols.extend([
            num(row.spectral_rel),
            num(row.subspace_overlap),
            num(row.delta_dice_lo),
            num(row.delta_dice_hi),
            row.decision.map(|d| d.name().to_string()).unwrap_or_default(),
            row.images_used.map(|n| n.to_string()).unwrap_or_default(),
            row.non_finite_images.map(|n| n.to_string()).unwrap_or_default(),
        ]);
        if budget {
            let b = row.budget.clone().unwrap_or_default();
            cols.extend([
                num(b.rmse_budget),
                b.within_budget.map(|w| w.to_string()).unwrap_or_default(),
                num(b.budget_loss),
                num(b.rmse_budget_next),
                num(b.budget_next_loss),
                b.budget_note.unwrap_or_default(),
            ]);
        }
        cols
    });
    to_bytes(std::iter::once(header).chain(rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_fields_that_need_it() {
        let bytes = to_bytes([vec!["a", "b,c", "say \"hi\""], vec!["line\nbreak", "", "0.1"]]).unwrap();
        assert_eq!(String::from_utf8(bytes).unwrap(), "a,\"b,c\",\"say \"\"hi\"\"\"\n\"line\nbreak\",,0.1\n");
    }

    #[test]
    fn numbers_use_the_shortest_round_trip_form() {
        assert_eq!(num(Some(0.1 + 0.2)), "0.30000000000000004");
        assert_eq!((num(Some(1.0)), num(Some(1e-7)), num(None)), ("1".into(), "0.0000001".into(), String::new()));
    }
}
