//! The committed HTML reports rendered in a real browser (headless Chromium): every figure
//! is an SVG with a non-empty box and bars or points, and a screenshot is not blank.
//!
//! `.ci/run` installs Debian's `chromium` and sets `REUSE_AUDIT_BROWSER_TEST=1`, which makes
//! a missing browser a failure; elsewhere the test says it was skipped.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::root;

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn headless(chrome: &Path, profile: &Path) -> Command {
    let mut c = Command::new(chrome);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--allow-file-access-from-files",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

/// What counts as a figure's marks: plotters' bars (blue or red rectangles) and points.
const MARKS: &str = r##"'rect[fill="#1F77B4"],rect[fill="#D62728"],circle'"##;

/// A page that loads the report in an iframe and writes what it measured into `#result`.
const PROBE: &str = r#"<!DOCTYPE html><html><body><pre id="result">pending</pre>
<iframe id="f" src="REPORT" style="width:1400px;height:2000px"></iframe><script>
document.getElementById('f').onload = function () {
  var d = this.contentDocument, svgs = Array.from(d.querySelectorAll('svg'));
  var boxes = svgs.map(function (s) { var r = s.getBoundingClientRect(); return [r.width, r.height, s.querySelectorAll(MARKS).length]; });
  var rows = d.querySelectorAll('#rows tbody tr').length;
  d.querySelector('#rows th').click();
  document.getElementById('result').textContent = JSON.stringify({svgs: boxes, rows: rows, verdict: (d.getElementById('verdict') || {}).textContent || ''});
};
</script></body></html>"#;

#[test]
fn committed_reports_render_with_their_figures() {
    let Some(chrome) = chromium() else {
        assert!(
            std::env::var("REUSE_AUDIT_BROWSER_TEST").is_err(),
            "REUSE_AUDIT_BROWSER_TEST is set but no chromium is installed"
        );
        eprintln!("SKIPPED: no chromium (install Debian's chromium, as .ci/run does)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    for name in ["unet-acdc", "pspnet-acdc"] {
        let report = root().join("reports").join(name).join("report.html");
        assert!(report.exists(), "{} is missing: run `cargo run --release -- demo`", report.display());
        let probe = tmp.path().join(format!("{name}-probe.html"));
        let page = PROBE.replace("REPORT", &format!("file://{}", report.display())).replace("MARKS", MARKS);
        std::fs::write(&probe, page).unwrap();
        let out = headless(&chrome, &tmp.path().join("profile"))
            .args(["--virtual-time-budget=10000", "--dump-dom"])
            .arg(&probe)
            .output()
            .expect("run chromium");
        let dom = String::from_utf8_lossy(&out.stdout);
        let json = dom.split("<pre id=\"result\">").nth(1).and_then(|s| s.split("</pre>").next()).unwrap_or("");
        let v: serde_json::Value = serde_json::from_str(&json.replace("&quot;", "\""))
            .unwrap_or_else(|e| panic!("{name}: no probe result ({e}): {dom}"));
        let svgs = v["svgs"].as_array().unwrap();
        assert!(svgs.len() >= 10, "{name}: {} figures", svgs.len());
        for s in svgs {
            assert!(s[0].as_f64().unwrap() > 100.0 && s[1].as_f64().unwrap() > 100.0, "{name}: empty figure box {s}");
            assert!(s[2].as_u64().unwrap() > 0, "{name}: a figure without bars or points {s}");
        }
        assert!(v["rows"].as_u64().unwrap() > 50, "{name}: table rows");
        assert!(v["verdict"].as_str().unwrap().contains("reusable"), "{name}: verdict");

        let shot = tmp.path().join(format!("{name}.png"));
        let st = headless(&chrome, &tmp.path().join("profile"))
            .args(["--window-size=1400,1800"])
            .arg(format!("--screenshot={}", shot.display()))
            .arg(&report)
            .output()
            .expect("screenshot");
        assert!(shot.exists(), "{name}: no screenshot: {}", String::from_utf8_lossy(&st.stderr));
        let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        let px = &buf[..info.buffer_size()];
        let red = px.chunks(info.color_type.samples()).filter(|p| p[0] > 200 && p[1] < 80 && p[2] < 80).count();
        let blue =
            px.chunks(info.color_type.samples()).filter(|p| p[0] < 60 && p[1] > 90 && p[1] < 150 && p[2] > 150).count();
        assert!(blue > 1000, "{name}: the screenshot shows no figure bars (blue px {blue}, red px {red})");
    }
}
