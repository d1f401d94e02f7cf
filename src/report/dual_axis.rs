//! A per-layer line chart with two series on two y axes (left: an unbounded ratio, right: a
//! share on [0, 1]), drawn with plotters' SVG backend. Missing values are skipped: the line
//! joins the layers that have one.

use plotters::prelude::*;

use super::svg::{fmt_tick, label_at, render_svg, text, y_range, DrawResult, BLUE, TEXT, TITLE};

/// Colour of the right-axis series.
pub const ORANGE: RGBColor = RGBColor(0xff, 0x7f, 0x0e);

/// One named series of per-layer values (None = not plotted).
pub struct Series<'a> {
    /// Legend and axis label.
    pub name: &'a str,
    /// One value per layer label.
    pub values: Vec<Option<f64>>,
}

/// A two-series, two-axis per-layer chart.
pub struct DualAxisChart<'a> {
    /// Title above the plot.
    pub title: &'a str,
    /// X labels (layer numbers), one per value.
    pub labels: Vec<String>,
    /// Drawn blue, on the left axis (from 0 to its largest value).
    pub left: Series<'a>,
    /// Drawn orange, on the right axis (fixed to [0, 1], with the left axis' headroom).
    pub right: Series<'a>,
}

fn points(s: &Series) -> Vec<(f64, f64)> {
    s.values.iter().enumerate().filter_map(|(i, v)| v.filter(|v| v.is_finite()).map(|v| (i as f64, v))).collect()
}

impl DualAxisChart<'_> {
    /// Render as a standalone `<svg>` element.
    pub fn render(&self) -> String {
        render_svg((640, 300), self.title, |buf| self.draw(buf))
    }

    fn draw(&self, buf: &mut String) -> DrawResult {
        let root = SVGBackend::with_string(buf, (640, 300)).into_drawing_area();
        root.fill(&WHITE)?;
        // The legend sits in a strip under the plot, so it never hides a point.
        let (plot, strip) = root.split_vertically(276);
        for (i, (name, colour)) in [(self.left.name, BLUE), (self.right.name, ORANGE)].into_iter().enumerate() {
            let x0 = 200 + 160 * i as i32;
            strip.draw(&PathElement::new([(x0, 10), (x0 + 18, 10)], colour.stroke_width(2)))?;
            strip.draw(&Text::new(name.to_string(), (x0 + 24, 4), text(TEXT, BLACK)))?;
        }
        let n = self.labels.len().max(1);
        let (left, right) = (points(&self.left), points(&self.right));
        let x = -0.5..n as f64 - 0.5;
        let mut chart = ChartBuilder::on(&plot)
            .caption(self.title, ("sans-serif", TITLE).into_font().style(FontStyle::Bold))
            .margin(6)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .right_y_label_area_size(56)
            .build_cartesian_2d(x.clone(), y_range(left.iter().map(|p| p.1).chain([1.0])))?
            .set_secondary_coord(x, y_range([0.0, 1.0]));
        let label_of = |x: &f64| label_at(&self.labels, *x);
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
            .x_desc("conv layer")
            .y_desc(self.left.name)
            .axis_desc_style(text(TEXT, BLACK))
            .draw()?;
        chart
            .configure_secondary_axes()
            .y_labels(8)
            .y_label_formatter(&fmt_tick)
            .label_style(text(TEXT, BLACK))
            .y_desc(self.right.name)
            .axis_desc_style(text(TEXT, BLACK))
            .draw()?;
        chart.draw_series(LineSeries::new(left.clone(), BLUE.stroke_width(2)))?;
        chart.draw_series(left.iter().map(|p| Circle::new(*p, 3, BLUE.filled())))?;
        chart.draw_secondary_series(LineSeries::new(right.clone(), ORANGE.stroke_width(2)))?;
        chart.draw_secondary_series(right.iter().map(|p| Circle::new(*p, 3, ORANGE.filled())))?;
        root.present()?;
        Ok(())
    }
}
