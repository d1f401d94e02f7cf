//! `audit --budget` into the report: each row's budget columns, the agreement of
//! `within_budget` with the measured decisions, and the predictor table again (it gains
//! `rmse/rmse_budget`).

use crate::audit::budget::{BudgetOutcome, Found, HIGH, LOW, POINTS, STEPS};
use crate::pair::Pairing;
use crate::pipeline::Options;
use crate::report::budget::{agreement, within, BudgetInfo, RowBudget};
use crate::report::Report;

/// A row's budget columns from what the search found for its pair.
fn row_budget(rmse: f64, found: &Found) -> RowBudget {
    let note = match (found.within, found.next) {
        (None, Some((r, loss))) => Some(format!(
            "below the grid: noise of RMSE {r:.3e} (the smallest tried, {LOW:e} x the tensor's RMS) already loses {loss:.4}, over the tolerance"
        )),
        (Some((r, loss)), None) => Some(format!(
            "above the grid: noise of RMSE {r:.3e} (the largest tried, {HIGH} x the tensor's RMS) loses only {loss:.4}; the budget is at least that"
        )),
        _ => None,
    };
    RowBudget {
        rmse_budget: found.within.map(|w| w.0),
        within_budget: within(rmse, found.within.map(|w| w.0), found.next.map(|n| n.0)),
        budget_loss: found.within.map(|w| w.1),
        rmse_budget_next: found.next.map(|n| n.0),
        budget_next_loss: found.next.map(|n| n.1),
        budget_note: note,
    }
}

/// Fill the rows (pairing order, kinds asked for, as `results::fill`), the report's budget
/// section and the predictor table.
pub fn apply(report: &mut Report, pairing: &Pairing, o: &Options, outcome: &BudgetOutcome) {
    let rows_by_pair: Vec<usize> =
        (0..pairing.pairs.len()).filter(|&i| o.kinds.contains(&pairing.pairs[i].kind())).collect();
    let mut searched = 0;
    for (row, &i) in report.rows.iter_mut().zip(&rows_by_pair) {
        row.budget = match &outcome.pairs[i] {
            None => None,
            Some(Err(why)) => Some(RowBudget { budget_note: Some(why.clone()), ..RowBudget::default() }),
            Some(Ok(found)) => {
                searched += 1;
                Some(row_budget(row.rmse, found))
            }
        };
    }
    report.budget = Some(BudgetInfo {
        noise: "gaussian".into(),
        draws: outcome.draws,
        grid_points: POINTS,
        grid_low: LOW,
        grid_high: HIGH,
        steps: STEPS as usize,
        probe_runs: outcome.probe_runs,
        baseline_runs: outcome.baseline_runs,
        strategy: outcome.strategy.name().into(),
        searched,
        agreement: agreement(&report.rows),
    });
    report.predictors = crate::predictors::predictors(&report.rows, o.confidence, o.bootstrap);
}
