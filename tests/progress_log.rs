//! Progress off a terminal: a long audit whose stderr goes to a log (CI) printed one plan line
//! and then nothing for minutes, as if stuck. A plain `progress:` line now comes every 30 s
//! (`REUSE_AUDIT_PROGRESS_SECS`; 0 here: at every step), never with `-q`.

mod common;

use common::*;

fn audit(f: &Tiny, strategy: &str) -> assert_cmd::Command {
    let mut c = audit_cmd(&f.t, &f.s, &f.data);
    c.args(["--labels", "baseline", "--strategy", strategy]);
    c
}

fn progress_lines(stderr: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stderr).lines().filter(|l| l.starts_with("progress: ")).map(String::from).collect()
}

#[test]
fn a_long_audit_in_a_log_printed_nothing_between_its_plan_line_and_the_verdict() {
    // 6 images, 14 swaps: 90 image forwards in all, whichever strategy runs them.
    let f = tiny_pair(6);
    for strategy in ["incremental", "naive"] {
        let o = audit(&f, strategy).env("REUSE_AUDIT_PROGRESS_SECS", "0").output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let lines = progress_lines(&o.stderr);
        assert!(lines.len() > 1, "{strategy}: {lines:?}");
        let last = lines.last().unwrap();
        assert!(last.starts_with("progress: 90/90 image forwards (100%), 0m"), "{strategy}: {last}");
    }
    // Quiet: none; the default interval (30 s): none in a run this short.
    let o = audit(&f, "incremental").env("REUSE_AUDIT_PROGRESS_SECS", "0").arg("-q").output().unwrap();
    assert!(o.status.success());
    assert!(progress_lines(&o.stderr).is_empty());
    let o = audit(&f, "incremental").output().unwrap();
    assert!(o.status.success());
    assert!(progress_lines(&o.stderr).is_empty());
}

#[test]
fn a_progress_interval_that_is_not_a_number_is_refused() {
    let f = tiny_pair(6);
    let o = audit(&f, "incremental").env("REUSE_AUDIT_PROGRESS_SECS", "often").output().unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("REUSE_AUDIT_PROGRESS_SECS=often: expected a whole number from 0 to 86400"), "{e}");
}
