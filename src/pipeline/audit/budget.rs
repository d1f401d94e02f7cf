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
    let within_budget = within(rmse, found.within.map(|w| w.0), found.next.map(|n| n.0));
    if let (true, Some((r, _))) = (found.next_negative_variance, found.next) {
        // Over the bracket the loss is NaN outputs, not a graded loss: "over" says nothing.
        return RowBudget {
            within_budget: within_budget.filter(|w| *w),
            budget_note: Some(format!(
                "noise of RMSE {r:.3e} (one grid step up) makes running variances negative (BN's sqrt(var + eps) is NaN there): the budget marks where variances turn negative, not a graded loss, and a larger rmse is not known to be over it"
            )),
            ..row_budget(rmse, &Found { next_negative_variance: false, ..*found })
        };
    }
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
        within_budget,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::budget::Grid;

    fn found(within: Option<(f64, f64)>, next: Option<(f64, f64)>, negative: bool) -> Found {
        let grid = Grid { r_min: 1e-4, r_max: 10.0, points: 127 };
        Found { grid, within, next, next_negative_variance: negative }
    }

    #[test]
    fn rows_by_hand() {
        let ordinary = row_budget(0.05, &found(Some((0.1, 0.015)), Some((0.11, 0.03)), false));
        assert_eq!(
            ordinary,
            RowBudget {
                rmse_budget: Some(0.1),
                within_budget: Some(true),
                budget_loss: Some(0.015),
                rmse_budget_next: Some(0.11),
                budget_next_loss: Some(0.03),
                budget_note: None,
            }
        );
        assert_eq!(row_budget(0.2, &found(Some((0.1, 0.015)), Some((0.11, 0.03)), false)).within_budget, Some(false));
        let below = row_budget(0.2, &found(None, Some((0.001, 0.5)), false));
        assert_eq!(below.within_budget, Some(false));
        assert!(below.budget_note.unwrap().starts_with("below the grid: noise of RMSE 1.000e-3"));
        let above = row_budget(0.2, &found(Some((10.0, 0.001)), None, false));
        assert_eq!(above.within_budget, Some(true));
        assert!(above.budget_note.unwrap().starts_with("above the grid"));
    }

    #[test]
    fn a_negative_variance_over_the_budget_leaves_over_unknown() {
        // RV: within the budget stays within; over it is not known (NaN outputs, not a loss).
        let f = found(Some((0.1, 0.0)), Some((0.11, 0.25)), true);
        let inside = row_budget(0.05, &f);
        assert_eq!(
            (inside.within_budget, inside.rmse_budget, inside.budget_next_loss),
            (Some(true), Some(0.1), Some(0.25))
        );
        let over = row_budget(0.5, &f);
        assert_eq!(over.within_budget, None);
        assert!(over.budget_note.unwrap().contains("makes running variances negative"));
    }
}
