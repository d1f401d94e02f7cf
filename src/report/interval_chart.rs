//! A per-layer chart of each swap's Dice loss with its confidence interval as an error bar,
//! the tolerance as a dashed line, and the bar coloured by the decision the interval makes
//! (blue reusable, red not reusable, amber undecided), drawn with plotters' SVG backend.
//! The axis stops at 5 x the tolerance: taller bars are cut and carry their value.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::html::Figure;
use super::svg::{fmt_tick, label_at, render_svg, text, y_range, DrawResult, BLUE, GREEN, RED, TEXT, TITLE};
use super::Report;
use crate::verdict::Decision;

/// Bars of undecided swaps.
pub const AMBER: RGBColor = RGBColor(0xff, 0xa5, 0x00);
/// Error bars.
const INK: RGBColor = RGBColor(0x33, 0x33, 0x33);
/// The y axis stops at this many tolerances.
pub const CUT: f64 = 5.0;

/// One bar: its label, loss, interval and decision.
pub struct IntervalBar {
    /// X label (the layer number).
    pub label: String,
    /// The loss (point estimate); None = no bar.
    pub value: Option<f64>,
    /// The interval's ends.
    pub interval: Option<(f64, f64)>,
    /// Decides the colour (None: blue).
    pub decision: Option<Decision>,
}

/// The chart.
pub struct IntervalChart<'a> {
    /// Title above the plot.
    pub title: &'a str,
    /// Y axis label.
    pub y_label: &'a str,
    /// One bar per layer.
    pub bars: Vec<IntervalBar>,
    /// The tolerance line.
    pub tolerance: f64,
}

/// The colour of a decision.
pub fn color(d: Option<Decision>) -> RGBColor {
    match d {
        Some(Decision::NotReusable) => RED,
        Some(Decision::Undecided) => AMBER,
        _ => BLUE,
    }
}

impl IntervalChart<'_> {
    /// Render as a standalone `<svg>` element.
    pub fn render(&self) -> String {
        render_svg((640, 266), self.title, |buf| self.draw(buf))
    }

    fn draw(&self, buf: &mut String) -> DrawResult {
        let root = SVGBackend::with_string(buf, (640, 266)).into_drawing_area();
        root.fill(&WHITE)?;
        let n = self.bars.len().max(1);
        let ends = self.bars.iter().flat_map(|b| b.interval.map(|(lo, hi)| [lo, hi]).into_iter().flatten());
        let values = self.bars.iter().filter_map(|b| b.value);
        // Losses far above the tolerance would flatten the bars that matter, those near it:
        // the axis stops at CUT x tolerance and taller bars are cut, their value written.
        let top = (self.tolerance > 0.0).then_some(CUT * self.tolerance);
        let clip = |v: f64| top.map_or(v, |t| v.min(t));
        let ys = y_range(values.chain(ends).chain([self.tolerance]).filter(|v| v.is_finite()).map(clip));
        let mut chart = ChartBuilder::on(&root)
            .caption(self.title, ("sans-serif", TITLE).into_font().style(FontStyle::Bold))
            .margin(6)
            .margin_right(72)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(-0.5..n as f64 - 0.5, ys.clone())?;
        let labels: Vec<String> = self.bars.iter().map(|b| b.label.clone()).collect();
        let label_of = |x: &f64| label_at(&labels, *x);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(RGBColor(0xdd, 0xdd, 0xdd))
            .y_labels(8)
            .x_labels(n.min(24))
            .x_label_formatter(&label_of)
            .y_label_formatter(&fmt_tick)
            .label_style(text(TEXT, BLACK))
            .x_desc("layer")
            .y_desc(self.y_label)
            .axis_desc_style(text(TEXT, BLACK))
            .draw()?;
        let zero = 0.0f64.clamp(ys.start, ys.end);
        chart.draw_series(self.bars.iter().enumerate().filter_map(|(i, b)| {
            let v = b.value.filter(|v| v.is_finite())?;
            let x = i as f64;
            Some(Rectangle::new([(x - 0.35, zero), (x + 0.35, clip(v))], color(b.decision).mix(0.75).filled()))
        }))?;
        for (i, b) in self.bars.iter().enumerate() {
            let Some(v) = b.value.filter(|v| top.is_some_and(|t| *v > t)) else {
                continue;
            };
            let (px, py) = chart.backend_coord(&(i as f64, clip(v)));
            let style = text(TEXT * 0.8, BLACK).pos(Pos::new(HPos::Center, VPos::Bottom));
            root.draw(&Text::new(format!("{v:.2}"), (px, py - 2), style))?;
        }
        // Error bars: a vertical line from lo to hi with short caps.
        for (i, b) in self.bars.iter().enumerate() {
            let Some((lo, hi)) = b.interval.filter(|(lo, hi)| lo.is_finite() && hi.is_finite()) else {
                continue;
            };
            let (lo, hi) = (clip(lo), clip(hi));
            if top.is_some_and(|t| lo >= t) {
                continue;
            }
            let x = i as f64;
            let style = INK.stroke_width(1);
            chart.draw_series([
                PathElement::new([(x, lo), (x, hi)], style),
                PathElement::new([(x - 0.15, lo), (x + 0.15, lo)], style),
                PathElement::new([(x - 0.15, hi), (x + 0.15, hi)], style),
            ])?;
        }
        let line = [(-0.5, self.tolerance), (n as f64 - 0.5, self.tolerance)];
        chart.draw_series(DashedLineSeries::new(line, 5, 3, GREEN.stroke_width(2)))?;
        let (px, py) = chart.backend_coord(&line[1]);
        let style = text(TEXT, GREEN).pos(Pos::new(HPos::Left, VPos::Center));
        root.draw(&Text::new("tolerance".to_string(), (px + 4, py), style))?;
        root.present()?;
        Ok(())
    }
}

/// Per kind with intervals: the loss of each layer's swap with its interval, the tolerance
/// line, bars coloured by decision.
pub fn figures(r: &Report) -> Vec<Figure> {
    let mut out = Vec::new();
    let mut kinds: Vec<&str> = Vec::new();
    for row in r.rows.iter().filter(|x| x.delta_dice_lo.is_some()) {
        if !kinds.contains(&row.kind.as_str()) {
            kinds.push(&row.kind);
        }
    }
    let conf = 100.0 * r.settings.confidence;
    for k in kinds {
        let rows: Vec<&crate::report::Row> = r.rows.iter().filter(|x| x.kind == k).collect();
        let title = format!("{} loss after swapping {k}, with {conf:.0}% intervals", r.metric().title());
        let y_label = format!("{} loss", r.metric().score_name());
        let chart = IntervalChart {
            title: &title,
            y_label: &y_label,
            bars: rows
                .iter()
                .map(|x| IntervalBar {
                    label: x.layer.to_string(),
                    value: x.delta_dice,
                    interval: x.delta_dice_lo.zip(x.delta_dice_hi),
                    decision: x.decision,
                })
                .collect(),
            tolerance: r.settings.tolerance,
        };
        out.push(Figure { file: format!("delta-{k}.svg"), section: "confidence", svg: chart.render() });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::svg::tests::rects;

    #[test]
    fn bars_coloured_by_decision_with_error_bars() {
        let bar = |v: f64, lo: f64, hi: f64, d| IntervalBar {
            label: format!("{v}"),
            value: Some(v),
            interval: Some((lo, hi)),
            decision: Some(d),
        };
        let chart = IntervalChart {
            title: "loss",
            y_label: "delta",
            bars: vec![
                bar(0.01, 0.0, 0.015, Decision::Reusable),
                bar(0.3, 0.25, 0.35, Decision::NotReusable),
                bar(0.018, 0.01, 0.03, Decision::Undecided),
                IntervalBar { label: "4".into(), value: None, interval: None, decision: None },
            ],
            tolerance: 0.02,
        };
        let svg = chart.render();
        // plotters writes a mixed colour as the colour with an opacity.
        assert_eq!(rects(&svg, "#1F77B4"), 1);
        assert_eq!(rects(&svg, "#D62728"), 1);
        assert_eq!(rects(&svg, "#FFA500"), 1);
        // Two error bars of three strokes each (the cut bar's lies above the axis).
        assert_eq!(svg.matches(r##"<polyline fill="none" opacity="1" stroke="#333333""##).count(), 6, "{svg}");
        assert!(svg.contains(">\ntolerance\n</text>"));
        // The 0.3 bar is cut at 5 x tolerance, its value written above it.
        assert!(svg.contains(">\n0.30\n</text>"), "{svg}");
        assert_eq!(svg, chart.render(), "deterministic");
    }
}
