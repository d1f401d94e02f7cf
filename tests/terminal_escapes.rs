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
