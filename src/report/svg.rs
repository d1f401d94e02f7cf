//! Small deterministic SVG figures: per-layer bar charts with a baseline line and marked
//! bars, and heatmaps. Hand-written rather than a plotting crate: plotters' SVG backend
//! needs system fonts to lay out text (absent on CI machines), and these two chart types
//! are a few dozen lines with byte-identical output.

use std::fmt::Write;

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

/// An axis range on round numbers and its tick step (1, 2, 2.5 or 5 times a power of ten,
/// about five ticks).
fn nice_range(mut lo: f64, mut hi: f64) -> (f64, f64, f64) {
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0, 0.25);
    }
    if hi - lo < 1e-12 {
        let pad = if hi.abs() > 0.0 { hi.abs() * 0.1 } else { 1.0 };
        lo -= pad;
        hi += pad;
    }
    let raw = (hi - lo) / 4.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw * 0.999).unwrap_or(10.0 * mag);
    ((lo / step).floor() * step, (hi / step - 1e-9).ceil() * step, step)
}

fn fmt_tick(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e4).contains(&a) {
        format!("{v:.1e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

impl BarChart<'_> {
    /// Render as a standalone `<svg>` element.
    pub fn render(&self) -> String {
        let (w, h) = (640.0, 260.0);
        let (left, right, top, bottom) = (62.0, 12.0, 30.0, 44.0);
        let pw = w - left - right;
        let ph = h - top - bottom;
        let vals: Vec<f64> = self
            .values
            .iter()
            .flatten()
            .copied()
            .filter(|v| v.is_finite())
            .chain(self.include.iter().copied())
            .chain(self.reference.map(|r| r.0))
            .collect();
        let lo = vals.iter().copied().fold(f64::INFINITY, f64::min).min(0.0);
        let hi = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (lo, hi, step) = nice_range(lo, hi);
        let y = |v: f64| top + ph * (1.0 - (v - lo) / (hi - lo));
        let mut s = String::new();
        let _ = write!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" font-family="sans-serif" font-size="11" role="img"><title>{}</title>"#,
            esc(self.title)
        );
        let _ = write!(
            s,
            r#"<rect x="0" y="0" width="{w}" height="{h}" fill="white"/><text x="{}" y="18" text-anchor="middle" font-size="13" font-weight="bold">{}</text>"#,
            w / 2.0,
            esc(self.title)
        );
        let ticks = ((hi - lo) / step).round() as usize;
        for i in 0..=ticks {
            let v = lo + step * i as f64;
            let yy = y(v);
            let _ = write!(
                s,
                r##"<line x1="{left}" x2="{}" y1="{yy:.2}" y2="{yy:.2}" stroke="#ddd"/><text x="{}" y="{:.2}" text-anchor="end">{}</text>"##,
                w - right,
                left - 4.0,
                yy + 4.0,
                fmt_tick(v)
            );
        }
        let _ = write!(
            s,
            r#"<text transform="translate(14,{}) rotate(-90)" text-anchor="middle">{}</text>"#,
            top + ph / 2.0,
            esc(self.y_label)
        );
        let n = self.values.len().max(1) as f64;
        let slot = pw / n;
        let zero = y(0.0f64.clamp(lo, hi));
        for (i, v) in self.values.iter().enumerate() {
            let x = left + slot * i as f64;
            if let Some(v) = v.filter(|v| v.is_finite()) {
                let (y0, y1) = if y(v) < zero { (y(v), zero) } else { (zero, y(v)) };
                let color = if self.marked.get(i).copied().unwrap_or(false) { "#d62728" } else { "#1f77b4" };
                let label = self.labels.get(i).map(String::as_str).unwrap_or("");
                let _ = write!(
                    s,
                    r#"<rect class="bar" x="{:.2}" y="{y0:.2}" width="{:.2}" height="{:.2}" fill="{color}"><title>layer {}: {}</title></rect>"#,
                    x + slot * 0.15,
                    slot * 0.7,
                    (y1 - y0).max(0.5),
                    esc(label),
                    fmt_tick(v)
                );
            }
            let step = (n / 24.0).ceil().max(1.0) as usize;
            if i % step == 0 {
                let _ = write!(
                    s,
                    r#"<text x="{:.2}" y="{}" text-anchor="middle">{}</text>"#,
                    x + slot / 2.0,
                    h - bottom + 14.0,
                    esc(self.labels.get(i).map(String::as_str).unwrap_or(""))
                );
            }
        }
        if let Some((v, label)) = self.reference {
            let yy = y(v);
            let _ = write!(
                s,
                r##"<line class="reference" x1="{left}" x2="{}" y1="{yy:.2}" y2="{yy:.2}" stroke="#2ca02c" stroke-width="1.5" stroke-dasharray="5,3"/><text x="{}" y="{:.2}" text-anchor="end" fill="#2ca02c">{}</text>"##,
                w - right,
                w - right,
                yy - 4.0,
                esc(label)
            );
        }
        let _ = write!(s, r#"<text x="{}" y="{}" text-anchor="middle">layer</text></svg>"#, left + pw / 2.0, h - 8.0);
        s
    }
}

/// A heatmap of `values[row][col]` with row/column names (None = blank cell).
pub fn heatmap(title: &str, names: &[String], values: &[Vec<Option<f64>>]) -> String {
    let n = names.len().max(1);
    let cell = (520.0 / n as f64).clamp(18.0, 48.0);
    let left = 8.0 + 7.0 * names.iter().map(|s| s.len()).max().unwrap_or(4) as f64;
    let top = 40.0 + 7.0 * names.iter().map(|s| s.len()).max().unwrap_or(4) as f64 * 0.75;
    let (w, h) = (left + cell * n as f64 + 20.0, top + cell * n as f64 + 20.0);
    let all: Vec<f64> = values.iter().flatten().flatten().copied().filter(|v| v.is_finite()).collect();
    let hi = all.iter().copied().fold(0.0f64, f64::max).max(1e-12);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w:.0} {h:.0}" width="{w:.0}" height="{h:.0}" font-family="sans-serif" font-size="11" role="img"><title>{}</title><rect x="0" y="0" width="{w:.0}" height="{h:.0}" fill="white"/>"#,
        esc(title)
    );
    let _ = write!(s, r#"<text x="8" y="18" font-size="13" font-weight="bold">{}</text>"#, esc(title));
    for (i, name) in names.iter().enumerate() {
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            left - 4.0,
            top + cell * (i as f64 + 0.6),
            esc(name)
        );
        let cx = left + cell * (i as f64 + 0.5);
        let _ = write!(s, r#"<text transform="translate({cx:.1},{:.1}) rotate(-45)">{}</text>"#, top - 4.0, esc(name));
    }
    for (i, row) in values.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            let (x, yy) = (left + cell * j as f64, top + cell * i as f64);
            let (fill, text) = match v.filter(|v| v.is_finite()) {
                Some(v) => {
                    // white (close) -> dark red (far)
                    let t = (v / hi).clamp(0.0, 1.0);
                    let g = (255.0 * (1.0 - t)) as u8;
                    (format!("rgb(255,{g},{g})"), fmt_tick(v))
                }
                None => ("#eee".to_string(), String::new()),
            };
            let _ = write!(
                s,
                r#"<rect class="cell" x="{x:.1}" y="{yy:.1}" width="{cell:.1}" height="{cell:.1}" fill="{fill}" stroke="white"><title>{} vs {}: {text}</title></rect>"#,
                esc(&names[i]),
                esc(&names[j])
            );
            if cell >= 30.0 {
                let _ = write!(
                    s,
                    r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="9">{text}</text>"#,
                    x + cell / 2.0,
                    yy + cell / 2.0 + 3.0
                );
            }
        }
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_chart_has_one_rect_per_value_and_marks() {
        let c = BarChart {
            title: "W <swap>",
            y_label: "Dice",
            labels: vec!["1".into(), "2".into(), "3".into()],
            values: vec![Some(0.9), None, Some(0.2)],
            marked: vec![false, false, true],
            reference: Some((0.95, "baseline")),
            include: vec![0.0, 1.0],
        };
        let svg = c.render();
        assert_eq!(svg.matches(r#"class="bar""#).count(), 2);
        assert_eq!(svg.matches("#d62728").count(), 1);
        assert!(svg.contains("W &lt;swap&gt;"));
        assert!(svg.contains(r#"class="reference""#));
        assert_eq!(svg, c.render(), "deterministic");
    }

    #[test]
    fn round_axis_ranges() {
        assert_eq!(nice_range(0.0, 0.998), (0.0, 1.0, 0.25));
        assert_eq!(nice_range(0.0, 1.0), (0.0, 1.0, 0.25));
        let (lo, hi, step) = nice_range(-0.3, 1.7);
        assert_eq!((lo, hi, step), (-0.5, 2.0, 0.5));
    }

    #[test]
    fn heatmap_cells() {
        let svg = heatmap("m", &["a".into(), "b".into()], &[vec![Some(0.0), Some(1.0)], vec![Some(0.5), None]]);
        assert_eq!(svg.matches(r#"class="cell""#).count(), 4);
    }
}
