//! Deterministic SVG figures drawn with plotters' SVG backend: per-layer bar charts with a
//! reference line and marked bars, and heatmaps. Text is laid out by plotters' built-in
//! size estimate (no `ttf` feature: no system fonts), so the same inputs give the same bytes.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Bars and points of an ordinary (not marked) value.
pub const BLUE: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
/// Marked bars (e.g. non-reusable swaps).
pub const RED: RGBColor = RGBColor(0xd6, 0x27, 0x28);
/// Reference lines.
pub const GREEN: RGBColor = RGBColor(0x2c, 0xa0, 0x2c);
/// Grid lines.
const GRID: RGBColor = RGBColor(0xdd, 0xdd, 0xdd);

/// Font sizes in plotters' units (it writes `size / 1.24` px into the SVG).
pub const TEXT: f64 = 13.64;
/// Title font size (14 px; sizes are multiples of 1.24 so the px are whole numbers).
pub const TITLE: f64 = 17.36;
/// Heatmap cell values (9 px).
const CELL_TEXT: f64 = 11.16;

/// What a drawing into a `String` can fail with (only plotters' own layout checks).
pub type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// One per-layer bar chart.
pub struct BarChart<'a> {
    /// Title above the plot.
    pub title: &'a str,
    /// Y axis label.
    pub y_label: &'a str,
    /// Bar labels (layer numbers).
    pub labels: Vec<String>,
    /// Bar heights (None = no bar).
    pub values: Vec<Option<f64>>,
    /// Bars to mark (drawn red): e.g. non-reusable swaps.
    pub marked: Vec<bool>,
    /// A horizontal reference line (e.g. the baseline Dice).
    pub reference: Option<(f64, &'a str)>,
    /// Force the y range to include these values.
    pub include: Vec<f64>,
}

/// Escape text for XML.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The y range of finite `values`: from min(0, lowest) to the highest, with 5% headroom.
pub fn y_range(values: impl IntoIterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold((0.0f64, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let hi = if hi.is_finite() { hi } else { 1.0 };
    let span = if hi - lo > 1e-12 { hi - lo } else { hi.abs().max(1.0) };
    lo - if lo < 0.0 { 0.05 * span } else { 0.0 }..hi + 0.05 * span
}

/// Draw into a fresh `<svg>` of `size` px; adds `role="img"` and a `<title>` (the hover
/// text of the whole figure). A failed drawing (a layout plotters refuses) is reported in
/// the figure itself rather than aborting the report.
pub fn render_svg(size: (u32, u32), title: &str, draw: impl FnOnce(&mut String) -> DrawResult) -> String {
    let mut buf = String::new();
    if let Err(e) = draw(&mut buf) {
        buf = format!(
            r#"<svg width="{w}" height="{h}" viewBox="0 0 {w} {h}" xmlns="http://www.w3.org/2000/svg"><text x="8" y="20">{} could not be drawn: {}</text></svg>"#,
            esc(title),
            esc(&e.to_string()),
            w = size.0,
            h = size.1
        );
    }
    let open_end = buf.find('>').map_or(0, |i| i + 1);
    buf.insert_str(open_end, &format!("\n<title>{}</title>", esc(title)));
    buf.replacen("<svg ", r#"<svg role="img" "#, 1)
}

/// The label of the bar at `x` when `x` is a bar's index (plotters' key points are round
/// numbers: one per bar up to the label count asked for, else every 2nd, 5th...).
pub fn label_at(labels: &[String], x: f64) -> String {
    if x < 0.0 || (x - x.round()).abs() > 1e-9 {
        return String::new();
    }
    labels.get(x.round() as usize).cloned().unwrap_or_default()
}

/// A tick label: up to three decimals without trailing zeros (never `-0`), scientific
/// notation outside [1e-3, 1e4).
pub fn fmt_tick(v: &f64) -> String {
    let a = v.abs();
    if a < 1e-12 {
        "0".into()
    } else if !(1e-3..1e4).contains(&a) {
        format!("{v:.1e}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// A text style of `size` and `color`.
pub fn text(size: f64, color: RGBColor) -> TextStyle<'static> {
    ("sans-serif", size).into_font().color(&color)
}

impl BarChart<'_> {
    /// Render as a standalone `<svg>` element.
    pub fn render(&self) -> String {
        render_svg((640, 266), self.title, |buf| self.draw(buf))
    }

    fn draw(&self, buf: &mut String) -> DrawResult {
        let root = SVGBackend::with_string(buf, (640, 266)).into_drawing_area();
        root.fill(&WHITE)?;
        let n = self.values.len().max(1);
        let finite = self.values.iter().flatten().copied().filter(|v| v.is_finite());
        let ys = y_range(finite.chain(self.include.iter().copied()).chain(self.reference.map(|r| r.0)));
        let mut chart = ChartBuilder::on(&root)
            .caption(self.title, ("sans-serif", TITLE).into_font().style(FontStyle::Bold))
            .margin(6)
            .margin_right(if self.reference.is_some() { 64 } else { 12 })
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(-0.5..n as f64 - 0.5, ys.clone())?;
        let label_of = |x: &f64| label_at(&self.labels, *x);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(GRID)
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
        chart.draw_series(self.values.iter().enumerate().filter_map(|(i, v)| {
            let v = v.filter(|v| v.is_finite())?;
            let color = if self.marked.get(i).copied().unwrap_or(false) { RED } else { BLUE };
            let x = i as f64;
            Some(Rectangle::new([(x - 0.35, zero), (x + 0.35, v)], color.filled()))
        }))?;
        if let Some((v, label)) = self.reference {
            let ends = [(-0.5, v), (n as f64 - 0.5, v)];
            chart.draw_series(DashedLineSeries::new(ends, 5, 3, GREEN.stroke_width(2)))?;
            // The label sits in the right margin, beside the line's end, clear of the bars.
            let (px, py) = chart.backend_coord(&ends[1]);
            let style = text(TEXT, GREEN).pos(Pos::new(HPos::Left, VPos::Center));
            root.draw(&Text::new(label.to_string(), (px + 4, py), style))?;
        }
        root.present()?;
        Ok(())
    }
}

/// A heatmap of `values[row][col]` with row/column names (None = blank cell): white
/// (zero) to dark red (the largest value), values written in cells of 30 px or more.
pub fn heatmap(title: &str, names: &[String], values: &[Vec<Option<f64>>]) -> String {
    let n = names.len().max(1);
    let cell = (520 / n as u32).clamp(18, 48);
    let name_px = 8 + 7 * names.iter().map(|s| s.chars().count()).max().unwrap_or(4) as u32;
    let size = (name_px + cell * n as u32 + 24, 26 + name_px + cell * n as u32 + 8);
    render_svg(size, title, |buf| {
        let root = SVGBackend::with_string(buf, size).into_drawing_area();
        root.fill(&WHITE)?;
        let all = values.iter().flatten().flatten().copied().filter(|v| v.is_finite());
        let hi = all.fold(0.0f64, f64::max).max(1e-12);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", TITLE).into_font().style(FontStyle::Bold))
            .margin(8)
            .margin_right(16)
            .x_label_area_size(name_px)
            .y_label_area_size(name_px)
            .build_cartesian_2d(-0.5..n as f64 - 0.5, -0.5..n as f64 - 0.5)?;
        // Cell (i, j) is centred on (j, n - 1 - i): row 0 at the top.
        let row_name = |v: &f64| label_at(names, n as f64 - 1.0 - v);
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(n)
            .y_labels(n)
            .x_label_formatter(&|_| String::new())
            .y_label_formatter(&row_name)
            .y_label_style(text(TEXT, BLACK))
            .draw()?;
        // Column names run down from below each column (plotters centres rotated axis
        // labels on the tick, which would put half of each name over the cells).
        for (j, name) in names.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(j as f64, -0.5));
            let style = text(TEXT, BLACK).transform(FontTransform::Rotate90).pos(Pos::new(HPos::Left, VPos::Center));
            root.draw(&Text::new(name.clone(), (px, py + 8), style))?;
        }
        for (i, row) in values.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                let (x, y) = (j as f64, (n - 1 - i) as f64);
                let v = v.filter(|v| v.is_finite());
                let fill = match v {
                    Some(v) => {
                        let g = (255.0 * (1.0 - (v / hi).clamp(0.0, 1.0))) as u8;
                        RGBColor(255, g, g)
                    }
                    None => RGBColor(0xee, 0xee, 0xee),
                };
                let corners = [(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)];
                chart.draw_series([Rectangle::new(corners, fill.filled())])?;
                chart.draw_series([Rectangle::new(corners, WHITE.stroke_width(1))])?;
                if let Some(v) = v.filter(|_| cell >= 30) {
                    let ink = if v > 0.5 * hi { WHITE } else { BLACK };
                    let style = text(CELL_TEXT, ink).pos(Pos::new(HPos::Center, VPos::Center));
                    chart.draw_series([Text::new(format!("{v:.3}"), (x, y), style)])?;
                }
            }
        }
        root.present()?;
        Ok(())
    })
}

#[cfg(test)]
pub(crate) mod tests;
