//! Per kind, each layer's swap RMSE against its noise budget on a log axis: a grey bar over
//! the grid step that holds the budget (from `rmse_budget` to `rmse_budget_next`; open to
//! the axis end when the budget is outside the grid) and a dot at the swap's `rmse`
//! coloured by its decision (blue reusable, red not reusable, amber undecided). A dot under
//! its bar is within budget. Drawn with plotters' SVG backend on log10 values.

use plotters::prelude::*;

use super::html::Figure;
use super::interval_chart::color;
use super::svg::{label_at, render_svg, text, DrawResult, TEXT, TITLE};
use super::{Report, Row};

/// The budget bars.
const GREY: RGBColor = RGBColor(0xbb, 0xbb, 0xbb);

/// A decade tick: `1e-3`, `1`, `10`; nothing between decades.
fn decade(v: &f64) -> String {
    if (v - v.round()).abs() > 1e-9 {
        return String::new();
    }
    match v.round() as i32 {
        0 => "1".into(),
        1 => "10".into(),
        k => format!("1e{k}"),
    }
}

/// One kind's chart.
pub struct BudgetChart<'a> {
    /// Title above the plot.
    pub title: &'a str,
    /// The rows of one kind, in layer order.
    pub rows: Vec<&'a Row>,
}

impl BudgetChart<'_> {
    /// Render as a standalone `<svg>` element.
    pub fn render(&self) -> String {
        render_svg((640, 266), self.title, |buf| self.draw(buf))
    }

    fn draw(&self, buf: &mut String) -> DrawResult {
        let root = SVGBackend::with_string(buf, (640, 266)).into_drawing_area();
        root.fill(&WHITE)?;
        let n = self.rows.len().max(1);
        let positive = |v: Option<f64>| v.filter(|v| v.is_finite() && *v > 0.0).map(f64::log10);
        let values = self.rows.iter().flat_map(|r| {
            let b = r.budget.clone().unwrap_or_default();
            [positive(Some(r.rmse)), positive(b.rmse_budget), positive(b.rmse_budget_next)]
        });
        let (lo, hi) = values.flatten().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
        let (lo, hi) = if lo.is_finite() { (lo.floor() - 0.5, hi.ceil() + 0.5) } else { (-1.0, 1.0) };
        let mut chart = ChartBuilder::on(&root)
            .caption(self.title, ("sans-serif", TITLE).into_font().style(FontStyle::Bold))
            .margin(6)
            .margin_right(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(-0.5..n as f64 - 0.5, lo..hi)?;
        let labels: Vec<String> = self.rows.iter().map(|r| r.layer.to_string()).collect();
        let label_of = |x: &f64| label_at(&labels, *x);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(RGBColor(0xdd, 0xdd, 0xdd))
            .y_labels(((hi - lo).ceil() as usize + 1).max(2))
            .x_labels(n.min(24))
            .x_label_formatter(&label_of)
            .y_label_formatter(&decade)
            .label_style(text(TEXT, BLACK))
            .x_desc("layer")
            .y_desc("RMSE (log scale)")
            .axis_desc_style(text(TEXT, BLACK))
            .draw()?;
        chart.draw_series(self.rows.iter().enumerate().filter_map(|(i, r)| {
            let b = r.budget.as_ref()?;
            if b.rmse_budget.is_none() && b.rmse_budget_next.is_none() {
                return None;
            }
            let bottom = positive(b.rmse_budget).unwrap_or(lo);
            let top = positive(b.rmse_budget_next).unwrap_or(hi);
            let x = i as f64;
            Some(Rectangle::new([(x - 0.3, bottom), (x + 0.3, top)], GREY.filled()))
        }))?;
        chart.draw_series(self.rows.iter().enumerate().filter_map(|(i, r)| {
            let y = positive(Some(r.rmse))?;
            Some(Circle::new((i as f64, y), 4, color(r.decision).filled()))
        }))?;
        root.present()?;
        Ok(())
    }
}

/// One figure per kind with a budget or a bound (`budget-W.svg`, ...), in order of first
/// appearance.
pub fn figures(r: &Report) -> Vec<Figure> {
    if r.budget.is_none() {
        return Vec::new();
    }
    let mut kinds: Vec<&str> = Vec::new();
    let bracketed =
        |x: &&Row| x.budget.as_ref().is_some_and(|b| b.rmse_budget.is_some() || b.rmse_budget_next.is_some());
    for row in r.rows.iter().filter(bracketed) {
        if !kinds.contains(&row.kind.as_str()) {
            kinds.push(&row.kind);
        }
    }
    kinds
        .into_iter()
        .map(|k| {
            let title = format!("RMSE of each {k} swap against its noise budget");
            let rows: Vec<&Row> = r.rows.iter().filter(|x| x.kind == k).collect();
            Figure {
                file: format!("budget-{k}.svg"),
                section: "budget",
                svg: BudgetChart { title: &title, rows }.render(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::budget::RowBudget;
    use crate::report::svg::tests::rects;
    use crate::verdict::Decision;

    #[test]
    fn bars_span_the_budget_step_and_dots_take_the_decision_colour() {
        let row = |layer: usize, rmse: f64, b: Option<f64>, next: Option<f64>, d: Decision| {
            let mut r = crate::report::tests::plain_row("W");
            (r.layer, r.rmse, r.decision) = (layer, rmse, Some(d));
            r.budget = Some(RowBudget { rmse_budget: b, rmse_budget_next: next, ..Default::default() });
            r
        };
        let rows = [
            row(1, 0.01, Some(0.1), Some(0.11), Decision::Reusable),
            row(2, 1.0, Some(0.1), Some(0.11), Decision::NotReusable),
            row(3, 0.05, None, Some(0.001), Decision::Undecided),
            row(4, 0.0, Some(5.0), None, Decision::Reusable),
        ];
        let chart = BudgetChart { title: "budget", rows: rows.iter().collect() };
        let svg = chart.render();
        assert_eq!(rects(&svg, "#BBBBBB"), 4, "one grey bar per layer with a budget");
        let dots = |c: &str| svg.split("<circle ").skip(1).filter(|x| x.contains(&format!("fill=\"{c}\""))).count();
        assert_eq!((dots("#1F77B4"), dots("#D62728"), dots("#FFA500")), (1, 1, 1), "rmse 0 has no dot on a log axis");
        // The axis runs from half a decade under 1e-3 to half a decade over 10: every decade
        // between is labelled.
        for label in ["1e-3", "1e-2", "1e-1", "1", "10"] {
            assert!(svg.contains(&format!(">\n{label}\n</text>")), "{label}: {svg}");
        }
        assert_eq!(svg, chart.render(), "deterministic");
    }
}
