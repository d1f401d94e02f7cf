//! Node names and file paths are the model author's text: any character may be in them.
//! report.md must show them as typed, whatever they hold (read back with a CommonMark/GFM
//! parser, `pulldown-cmark`, not with our writer's own rules); report.csv must read back
//! with a CSV reader and report.html must not carry them as markup.

mod common;

use std::collections::BTreeSet;

use common::*;
use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

/// Conv node names that broke report.md: a `|` split the table cell, a newline ended the
/// row, a backtick closed the code span early, `<script>` and `&amp;` outside a code span
/// were markup; leading and trailing spaces are stripped by CommonMark unless padded.
const NAMES: [&str; 3] = ["conv|one\nline", "``tick`` *star* <script>x</script>", " padded &amp; spaced "];

/// How report.md must show each name: as typed, a control character as its escape.
const SHOWN: [&str; 3] = ["conv|one\\nline", "``tick`` *star* <script>x</script>", " padded &amp; spaced "];

/// A file name with a newline, markup, a pipe and a backtick.
const FILE: &str = "t\n<b>|`q`.onnx";

fn renamed(seed: u64) -> onnx_protobuf::ModelProto {
    // Folded: the BN-folding warning names the file, so the file name reaches the warnings.
    let mut m = tiny_cnn(&Spec { seed, folded: true, ..Spec::default() });
    let convs = m.graph.as_mut().expect("graph").node.iter_mut().filter(|n| n.op_type == "Conv");
    for (n, name) in convs.zip(NAMES) {
        n.name = name.into();
    }
    m
}

/// What a Markdown page shows, as a CommonMark/GFM reader sees it.
struct Shown {
    /// The text of every table cell, row by row.
    rows: Vec<Vec<String>>,
    /// Every raw HTML block or inline tag.
    html: Vec<String>,
    /// The first heading's text.
    heading: String,
    /// The text of the block quotes (line breaks as `\n`).
    quotes: String,
}

fn shown(md: &str) -> Shown {
    let (mut rows, mut html, mut heading, mut quotes) = (Vec::new(), Vec::new(), String::new(), String::new());
    let (mut row, mut cell, mut in_cell, mut in_heading, mut in_quote) =
        (Vec::new(), String::new(), false, false, false);
    for ev in Parser::new_ext(md, Options::ENABLE_TABLES) {
        match ev {
            Event::Start(Tag::TableCell) => (in_cell, cell) = (true, String::new()),
            Event::End(TagEnd::TableCell) => {
                in_cell = false;
                row.push(std::mem::take(&mut cell));
            }
            Event::End(TagEnd::TableRow | TagEnd::TableHead) => rows.push(std::mem::take(&mut row)),
            Event::Start(Tag::Heading { .. }) => in_heading = heading.is_empty(),
            Event::End(TagEnd::Heading(_)) => in_heading = false,
            Event::Text(t) | Event::Code(t) if in_cell => cell.push_str(&t),
            Event::Text(t) | Event::Code(t) if in_heading => heading.push_str(&t),
            Event::Start(Tag::BlockQuote(_)) => in_quote = true,
            Event::End(TagEnd::BlockQuote(_)) => in_quote = false,
            Event::Text(t) | Event::Code(t) if in_quote => quotes.push_str(&t),
            Event::SoftBreak | Event::HardBreak if in_quote => quotes.push('\n'),
            Event::Html(t) | Event::InlineHtml(t) => html.push(t.trim().to_string()),
            _ => {}
        }
    }
    Shown { rows, html, heading, quotes }
}

#[test]
fn markdown_escapes_odd_node_names_and_paths() {
    let dir = tempfile::tempdir().unwrap();
    let t = save(&renamed(1), dir.path(), FILE);
    let s = save(&renamed(2), dir.path(), "s.onnx");
    let data = dir.path().join("val.npz");
    npz(&data, 4, 8, Some(&[0u8; 4 * 64]), 3);
    let out = dir.path().join("out");
    let run = audit_cmd(&t, &s, &data).args(["--format", "md,csv,html", "--out"]).arg(&out).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));

    // CSV: the reader gives back every name exactly; every conv node appears.
    let mut rd = csv::Reader::from_path(out.join("report.csv")).unwrap();
    let node_col = rd.headers().unwrap().iter().position(|h| h == "node").unwrap();
    let mut not_reusable = BTreeSet::new();
    let mut nodes = BTreeSet::new();
    for rec in rd.records() {
        let rec = rec.unwrap();
        nodes.insert(rec[node_col].to_string());
        if &rec[16] == "false" {
            not_reusable.insert(rec[node_col].to_string());
        }
    }
    assert_eq!(nodes, NAMES.iter().map(|n| n.to_string()).collect(), "CSV node column");
    assert!(!not_reusable.is_empty(), "the fixture must list non-reusable swaps in report.md");

    // Markdown: every row of the swap table has its 6 cells, the node cell shows the name.
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    let Shown { rows, html, heading, quotes } = shown(&md);
    let swaps: Vec<_> = rows.iter().skip_while(|r| !r.iter().any(|c| c == "node")).skip(1).collect();
    let shown: BTreeSet<_> = swaps
        .iter()
        .take_while(|r| r.len() == 6 || r.len() != 5)
        .map(|r| {
            assert_eq!(r.len(), 6, "a swap row of report.md lost or gained cells: {r:?}\n{md}");
            r[3].clone()
        })
        .collect();
    let expected: BTreeSet<_> =
        not_reusable.iter().map(|n| SHOWN[NAMES.iter().position(|m| m == n).unwrap()].to_string()).collect();
    assert_eq!(shown, expected, "node names as report.md shows them:\n{md}");
    let path = t.display().to_string().replace('\n', "\\n");
    assert_eq!(heading, format!("reuse-audit: {path} ← {}", s.display()), "{md}");
    // The only markup is the tool's own folding of the swap lists: no name became a tag.
    let own = ["<details><summary>", "</summary>", "</details>"];
    assert!(html.iter().all(|h| own.iter().any(|o| h.starts_with(o))), "markup from names: {html:?}\n{md}");
    let warned = format!("warning: {}: this model has Conv layers", t.display());
    assert!(quotes.contains(&warned), "the folding warning names the file as typed: {quotes}\n{md}");

    // HTML: the names are text, not tags.
    let page = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(!page.contains("<script>x") && !page.contains("<b>|"), "a name became markup in report.html");
}
