//! Regression: names from user files (node names, paths) reached the terminal raw, so an
//! escape sequence in one could clear or recolour it, and a newline split a table row.
//! Messages on stderr keep their own line breaks; other control characters are escaped.

mod common;

use common::*;

#[test]
fn an_escape_sequence_in_a_path_is_not_sent_to_the_terminal() {
    let f = tiny_pair(2);
    let data = f.dir.path().join("val\u{1b}[2J\r.npz");
    let out = audit_cmd(&f.t, &f.s, &data).assert().code(2).get_output().clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!err.contains('\u{1b}') && !err.contains('\r'), "{err:?}");
    assert!(err.contains("val\\u{1b}[2J\\r.npz"), "{err}");
}

/// The same for node and initializer names in `inspect` and `match` listings (a name with
/// a newline split a row).
#[test]
fn an_escape_sequence_in_a_node_name_is_not_sent_to_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = tiny_cnn(&Spec::default());
    let g = m.graph.as_mut().unwrap();
    let conv = g.node.iter_mut().find(|n| n.op_type == "Conv").unwrap();
    conv.name = "conv\n\u{1b}[2J".into();
    let weight = conv.input[1].clone();
    conv.input[1] = "w\n\u{1b}[2J".into();
    g.initializer.iter_mut().find(|t| t.name == weight).unwrap().name = "w\n\u{1b}[2J".into();
    let a = save(&m, dir.path(), "a.onnx");
    for cmd in [bin().arg("inspect").arg(&a).assert(), bin().arg("match").arg(&a).arg(&a).assert()] {
        let out = cmd.success().get_output().clone();
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(!text.contains('\u{1b}'), "{text:?}");
        assert!(!text.contains("conv\n") && !text.contains("w\n"), "{text:?}");
        assert!(text.contains("w\\n\\u{1b}[2J"), "{text:?}");
    }
}

/// The header lines of `inspect` and `match` too: the file's path, the producer and the
/// input name (all from the user's files) were written raw after the listings were escaped.
#[test]
fn an_escape_sequence_in_the_producer_input_name_or_path_is_not_sent_to_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = tiny_cnn(&Spec::default());
    m.producer_name = "exporter\n\u{1b}[2J".into();
    let g = m.graph.as_mut().unwrap();
    g.input[0].name = "x\r\u{1b}[31m".into();
    g.node.iter_mut().find(|n| n.name == "conv1").unwrap().input[0] = "x\r\u{1b}[31m".into();
    let a = save(&m, dir.path(), "a\u{1b}[2J.onnx");
    for cmd in [bin().arg("inspect").arg(&a).assert(), bin().arg("match").arg(&a).arg(&a).assert()] {
        let out = cmd.success().get_output().clone();
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(!text.contains('\u{1b}') && !text.contains('\r'), "{text:?}");
        assert!(text.contains("a\\u{1b}[2J.onnx"), "{text:?}");
    }
    let text = String::from_utf8(bin().arg("inspect").arg(&a).assert().success().get_output().stdout.clone()).unwrap();
    assert!(text.contains("producer 'exporter\\n\\u{1b}[2J'"), "{text:?}");
    assert!(text.contains("input 'x\\r\\u{1b}[31m'"), "{text:?}");
}
