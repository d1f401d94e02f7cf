//! The plotters-drawn figures: counts of drawn shapes, colours, labels and determinism.

use super::*;

/// How many `<rect>`s are filled with `color` (plotters writes upper-case hex).
pub fn rects(svg: &str, color: &str) -> usize {
    svg.split("<rect ")
        .skip(1)
        .filter(|r| r.split("/>").next().unwrap_or("").contains(&format!("fill=\"{color}\"")))
        .count()
}

fn chart() -> BarChart<'static> {
    BarChart {
        title: "W <swap>",
        y_label: "Dice",
        labels: vec!["1".into(), "2".into(), "3".into()],
        values: vec![Some(0.9), None, Some(0.2)],
        marked: vec![false, false, true],
        reference: Some((0.95, "baseline")),
        include: vec![0.0, 1.0],
    }
}

#[test]
fn bar_chart_has_one_rect_per_value_and_marks() {
    let svg = chart().render();
    assert_eq!(rects(&svg, "#1F77B4"), 1);
    assert_eq!(rects(&svg, "#D62728"), 1);
    assert!(svg.contains("<title>W &lt;swap&gt;</title>"));
    assert!(svg.starts_with(r#"<svg role="img" "#));
    assert!(svg.contains(">\nbaseline\n</text>"));
    assert!(svg.contains(r##"stroke="#2CA02C""##), "reference line");
    for label in ["1", "3", "layer", "Dice"] {
        assert!(svg.contains(&format!(">\n{label}\n</text>")), "{label}");
    }
    assert_eq!(svg, chart().render(), "deterministic");
}

#[test]
fn y_ranges_include_zero_and_headroom() {
    assert_eq!(y_range([0.5, 1.0]), 0.0..1.05);
    assert_eq!(y_range([-1.0, 1.0]), -1.1..1.1);
    assert_eq!(y_range([f64::NAN]), 0.0..1.05);
}

#[test]
fn heatmap_cells() {
    let svg = heatmap("m", &["a".into(), "b".into()], &[vec![Some(0.0), Some(1.0)], vec![Some(0.5), None]]);
    // 0 -> white, 1 (the largest) -> pure red, 0.5 -> half way, None -> grey; plus the
    // white background.
    for (fill, count) in [("#FFFFFF", 2), ("#FF0000", 1), ("#FF7F7F", 1), ("#EEEEEE", 1)] {
        assert_eq!(rects(&svg, fill), count, "{fill}");
    }
    assert!(svg.contains(">\n0.500\n</text>"));
    assert!(svg.contains(">\nb\n</text>"), "names");
}
