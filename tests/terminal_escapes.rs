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
