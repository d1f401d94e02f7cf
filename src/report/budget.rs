//! The noise budget in reports (`audit --budget`): per row, the largest RMSE of Gaussian
//! noise on the target's tensor that stays within the tolerance and whether the swap's RMSE
//! is within it; per kind, how often that agrees with the measured decision (the paper's
//! condition 2 tested on the data). Absent from every format without `--budget`.

use std::fmt::Write;

use serde::Serialize;

use super::html::Figure;
use super::svg::esc;
use super::{Report, Row};
use crate::verdict::Decision;

/// A row's budget columns (`rmse_budget` .. `budget_note`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RowBudget {
    /// The largest grid RMSE of noise on the target's tensor whose mean loss (over the
    /// draws) is within the tolerance: the layer's budget. Null when even the smallest grid
    /// RMSE costs more, or when no budget was searched (`budget_note` says which).
    pub rmse_budget: Option<f64>,
    /// `rmse <= rmse_budget`. Also true for rmse 0, and false when the budget is below the
    /// grid and rmse is at least the smallest grid RMSE; null when the grid cannot say
    /// (budget above the grid and rmse beyond it, budget below the grid and rmse under it)
    /// and over a running variance's budget whose next step made variances negative.
    pub within_budget: Option<bool>,
    /// The mean loss of noise at `rmse_budget`.
    pub budget_loss: Option<f64>,
    /// The next grid RMSE up, whose mean loss is over the tolerance: the budget lies in
    /// [rmse_budget, rmse_budget_next). Null when even the largest grid RMSE is within it.
    pub rmse_budget_next: Option<f64>,
    /// The mean loss of noise at `rmse_budget_next`.
    pub budget_next_loss: Option<f64>,
    /// Why the budget is a bound or missing (below or above the grid, a quantized, non-float
    /// or all-zero tensor), or that one grid step up the noise made running variances
    /// negative (NaN outputs, not a graded loss); null for an ordinary budget.
    pub budget_note: Option<String>,
}

impl RowBudget {
    /// `rmse / rmse_budget` (null without a positive budget): below 1 within the budget.
    pub fn ratio(&self, rmse: f64) -> Option<f64> {
        self.rmse_budget.filter(|b| *b > 0.0).map(|b| rmse / b)
    }
}

/// `within_budget` of a swap's `rmse` against a budget bracket (see [`RowBudget`]).
pub fn within(rmse: f64, budget: Option<f64>, next: Option<f64>) -> Option<bool> {
    if rmse == 0.0 {
        return Some(true);
    }
    match (budget, next) {
        (Some(b), _) if rmse <= b => Some(true),
        // Beyond the largest grid RMSE, which was still within tolerance: unknown.
        (Some(_), None) => None,
        (Some(_), Some(_)) => Some(false),
        (None, Some(n)) if rmse >= n => Some(false),
        (None, _) => None,
    }
}

/// How the budget was searched, and what it says against the measured decisions.
#[derive(Debug, Clone, Serialize)]
pub struct BudgetInfo {
    /// `gaussian`: zero-mean Gaussian noise of an exact RMSE added to the target's tensor.
    pub noise: String,
    /// Draws averaged per probe (fixed seeds).
    pub draws: usize,
    /// Grid points per tensor (geometric).
    pub grid_points: usize,
    /// The smallest grid RMSE, in units of the target tensor's RMS (sqrt(mean(t^2))).
    pub grid_low: f64,
    /// The largest grid RMSE, in the same units.
    pub grid_high: f64,
    /// Bisection steps (probes) per (layer, kind).
    pub steps: usize,
    /// Probe runs over every image (steps x draws x groups searched).
    pub probe_runs: usize,
    /// Unswapped runs over every image (one per step).
    pub baseline_runs: usize,
    /// The strategy the probes ran with (`incremental`: each probe only downstream of its
    /// layer).
    pub strategy: String,
    /// Rows with a budget (`rmse_budget` or a bound from the grid).
    pub searched: usize,
    /// Per kind, then `all`: `within_budget` against the measured `decision`.
    pub agreement: Vec<Agreement>,
}

/// A 2 x 3 table: within the budget or not, against the decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Agreement {
    /// Parameter kind, or `all`.
    pub kind: String,
    /// Within the budget and decided reusable.
    pub within_reusable: usize,
    /// Within the budget but decided not reusable.
    pub within_not_reusable: usize,
    /// Within the budget, undecided.
    pub within_undecided: usize,
    /// Over the budget but decided reusable.
    pub over_reusable: usize,
    /// Over the budget and decided not reusable.
    pub over_not_reusable: usize,
    /// Over the budget, undecided.
    pub over_undecided: usize,
    /// Rows with a decision but no `within_budget` (no budget, or the grid cannot say).
    pub unknown: usize,
    /// Share of decided rows with a known `within_budget` where the two agree (within and
    /// reusable, or over and not reusable); null when there is none.
    pub agreement: Option<f64>,
}

impl Agreement {
    fn new(kind: &str) -> Agreement {
        Agreement {
            kind: kind.into(),
            within_reusable: 0,
            within_not_reusable: 0,
            within_undecided: 0,
            over_reusable: 0,
            over_not_reusable: 0,
            over_undecided: 0,
            unknown: 0,
            agreement: None,
        }
    }

    fn add(&mut self, within: Option<bool>, decision: Decision) {
        let cell = match (within, decision) {
            (None, _) => &mut self.unknown,
            (Some(true), Decision::Reusable) => &mut self.within_reusable,
            (Some(true), Decision::NotReusable) => &mut self.within_not_reusable,
            (Some(true), Decision::Undecided) => &mut self.within_undecided,
            (Some(false), Decision::Reusable) => &mut self.over_reusable,
            (Some(false), Decision::NotReusable) => &mut self.over_not_reusable,
            (Some(false), Decision::Undecided) => &mut self.over_undecided,
        };
        *cell += 1;
        let agree = self.within_reusable + self.over_not_reusable;
        let decided = agree + self.within_not_reusable + self.over_reusable;
        self.agreement = (decided > 0).then(|| agree as f64 / decided as f64);
    }
}

/// Per kind (in order of first appearance) and over all rows: rows with a decision, by
/// `within_budget` and decision.
pub fn agreement(rows: &[Row]) -> Vec<Agreement> {
    let mut out: Vec<Agreement> = Vec::new();
    let mut all = Agreement::new("all");
    for row in rows {
        let (Some(b), Some(d)) = (&row.budget, row.decision) else {
            continue;
        };
        let at = match out.iter().position(|a| a.kind == row.kind) {
            Some(at) => at,
            None => {
                out.push(Agreement::new(&row.kind));
                out.len() - 1
            }
        };
        out[at].add(b.within_budget, d);
        all.add(b.within_budget, d);
    }
    out.push(all);
    out
}

fn share(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |a| format!("{:.0}%", 100.0 * a))
}

/// The sentence that opens the budget section.
fn intro(r: &Report, b: &BudgetInfo) -> String {
    format!(
        "Noise budget: per (layer, kind), the largest RMSE of zero-mean Gaussian noise on the target's own tensor whose {} loss, averaged over {} seeded draws, stays within the tolerance {} (bisection in {} steps on a geometric grid of {} RMSEs from {:e} to {} times the tensor's RMS; {} probe runs, {} strategy). A swap is within budget when its rmse is at most the budget; the table compares that with the measured decision.",
        r.metric().score_name(),
        b.draws,
        r.settings.tolerance,
        b.steps,
        b.grid_points,
        b.grid_low,
        b.grid_high,
        b.probe_runs,
        b.strategy
    )
}

const HEADER: [&str; 9] = [
    "kind",
    "within & reusable",
    "within & not reusable",
    "within & undecided",
    "over & reusable",
    "over & not reusable",
    "over & undecided",
    "unknown",
    "agreement",
];

fn cells(a: &Agreement) -> [String; 9] {
    [
        a.kind.clone(),
        a.within_reusable.to_string(),
        a.within_not_reusable.to_string(),
        a.within_undecided.to_string(),
        a.over_reusable.to_string(),
        a.over_not_reusable.to_string(),
        a.over_undecided.to_string(),
        a.unknown.to_string(),
        share(a.agreement),
    ]
}

/// The Markdown section (empty without a budget).
pub fn markdown(r: &Report) -> String {
    let mut s = String::new();
    let Some(b) = &r.budget else { return s };
    let _ = writeln!(s, "### Noise budget\n\n{}\n", intro(r, b));
    let _ = writeln!(s, "| {} |\n|{}", HEADER.join(" | "), "---|".repeat(HEADER.len()));
    for a in &b.agreement {
        let _ = writeln!(s, "| {} |", cells(a).join(" | "));
    }
    s.push('\n');
    s
}

/// The HTML section with its figures (empty without a budget).
pub fn html(r: &Report, figs: &[Figure]) -> String {
    let mut s = String::new();
    let Some(b) = &r.budget else { return s };
    let _ = write!(s, "<h2>Noise budget</h2><p>{}</p><table id=\"budget\"><tr>", esc(&intro(r, b)));
    for (i, h) in HEADER.iter().enumerate() {
        let _ = write!(s, "<th{}>{}</th>", if i == 0 { " class=\"l\"" } else { "" }, esc(h));
    }
    s.push_str("</tr>");
    for a in &b.agreement {
        s.push_str("<tr>");
        for (i, c) in cells(a).iter().enumerate() {
            let _ = write!(s, "<td{}>{}</td>", if i == 0 { " class=\"l\"" } else { "" }, esc(c));
        }
        s.push_str("</tr>");
    }
    s.push_str("</table>");
    let figs: Vec<&Figure> = figs.iter().filter(|f| f.section == "budget").collect();
    if !figs.is_empty() {
        s.push_str("<p>Per layer: the swap's RMSE (dot: blue reusable, red not reusable, amber undecided) against the grid step that holds its budget (grey bar, open to the axis end when the budget is outside the grid); a dot under its bar is within budget.</p><div class=\"figs\" id=\"figs-budget\">");
        for f in figs {
            s.push_str(&f.svg);
        }
        s.push_str("</div>");
    }
    s
}

/// A row's budget cells in the HTML table: the budget (or its bound) and within_budget.
pub fn html_cells(row: &Row) -> String {
    let b = row.budget.clone().unwrap_or_default();
    let budget = match (b.rmse_budget, b.rmse_budget_next) {
        (Some(v), Some(_)) => format!("{v:.3e}"),
        (Some(v), None) => format!("&gt; {v:.3e}"),
        (None, Some(v)) => format!("&lt; {v:.3e}"),
        (None, None) => String::new(),
    };
    let title = b.budget_note.as_deref().map(|n| format!(" title=\"{}\"", esc(n))).unwrap_or_default();
    let within = match b.within_budget {
        Some(true) => "yes",
        Some(false) => "no",
        None => "",
    };
    format!(
        "<td data-v=\"{}\"{title}>{budget}</td><td class=\"l\">{within}</td>",
        b.rmse_budget.or(b.rmse_budget_next).map(|v| v.to_string()).unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_budget_by_hand() {
        // An ordinary bracket [0.1, 0.11).
        assert_eq!(within(0.05, Some(0.1), Some(0.11)), Some(true));
        assert_eq!(within(0.1, Some(0.1), Some(0.11)), Some(true));
        assert_eq!(within(0.105, Some(0.1), Some(0.11)), Some(false));
        assert_eq!(within(3.0, Some(0.1), Some(0.11)), Some(false));
        // Above the grid (0.5 the largest RMSE tried, still within tolerance).
        assert_eq!(within(0.4, Some(0.5), None), Some(true));
        assert_eq!(within(0.6, Some(0.5), None), None);
        // Below the grid (0.001 the smallest tried, already over).
        assert_eq!(within(0.002, None, Some(0.001)), Some(false));
        assert_eq!(within(0.0005, None, Some(0.001)), None);
        // No change at all is within any budget.
        assert_eq!(within(0.0, None, Some(0.001)), Some(true));
    }

    #[test]
    fn agreement_counts_the_table_by_hand() {
        let row = |kind: &str, within: Option<bool>, d: Decision| {
            let mut r = crate::report::tests::plain_row(kind);
            r.decision = Some(d);
            r.budget = Some(RowBudget { within_budget: within, ..Default::default() });
            r
        };
        let rows = vec![
            row("W", Some(true), Decision::Reusable),
            row("W", Some(true), Decision::NotReusable),
            row("W", Some(false), Decision::NotReusable),
            row("W", Some(false), Decision::NotReusable),
            row("B", Some(true), Decision::Undecided),
            row("B", None, Decision::Reusable),
            row("B", Some(false), Decision::Reusable),
        ];
        let a = agreement(&rows);
        assert_eq!(a.iter().map(|x| x.kind.as_str()).collect::<Vec<_>>(), ["W", "B", "all"]);
        // W: 3 of 4 decided rows agree.
        assert_eq!((a[0].within_reusable, a[0].within_not_reusable, a[0].over_not_reusable), (1, 1, 2));
        assert_eq!(a[0].agreement, Some(0.75));
        // B: the undecided and the unknown rows do not count; the one left disagrees.
        assert_eq!((a[1].within_undecided, a[1].unknown, a[1].over_reusable), (1, 1, 1));
        assert_eq!(a[1].agreement, Some(0.0));
        assert_eq!(a[2].agreement, Some(3.0 / 5.0));
        // Rows without a budget or a decision are left out.
        let mut plain = crate::report::tests::plain_row("W");
        plain.decision = Some(Decision::Reusable);
        assert_eq!(agreement(&[plain])[0], Agreement::new("all"));
    }
}
