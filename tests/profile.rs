//! `REUSE_AUDIT_PROFILE=1`: the opt-in timing table on stderr. Off by default (stderr as
//! before); on, it lists the phases, and its counts follow from the audit itself: one
//! region run per swap and batch.

mod common;

use common::*;

/// The spans and seconds (wall, CPU) of one phase line of the table (`name` as printed,
/// without its indent).
fn phase(stderr: &str, name: &str) -> Option<(usize, f64, f64)> {
    let line = stderr.lines().find(|l| l.trim_start().starts_with(name))?;
    let v: Vec<&str> = line[line.find(name)? + name.len()..].split_whitespace().collect();
    Some((v.first()?.parse().ok()?, v.get(1)?.parse().ok()?, v.get(2)?.parse().ok()?))
}

#[test]
fn profile_table_only_when_asked_and_its_counts_follow_the_audit() {
    let dir = tempfile::tempdir().unwrap();
    let t = save(&tiny_cnn(&Spec::default()), dir.path(), "t.onnx");
    let s = save(&tiny_cnn(&Spec { seed: 8, ..Spec::default() }), dir.path(), "s.onnx");
    let data = dir.path().join("val.npz");
    let mut rng = Rng::new(9);
    let labels: Vec<u8> = (0..6 * 64).map(|_| ((rng.next() + 1.0) * 1.5) as u8 % 3).collect();
    npz(&data, 6, 8, Some(&labels), 3);
    let run = |profile: Option<&str>| {
        let mut c = audit_cmd(&t, &s, &data);
        c.args(["--json", "--batch", "2", "--threads", "2"]).env_remove("REUSE_AUDIT_PROFILE");
        if let Some(v) = profile {
            c.env("REUSE_AUDIT_PROFILE", v);
        }
        let out = c.assert().success().get_output().clone();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (report, String::from_utf8_lossy(&out.stderr).to_string())
    };
    let (plain, quiet_stderr) = run(None);
    let (_, off) = run(Some("0"));
    assert!(!quiet_stderr.contains("profile") && !off.contains("profile"), "{quiet_stderr}\n{off}");
    let (report, stderr) = run(Some("1"));
    assert_eq!(report["rows"], plain["rows"], "profiling changes no number");
    assert!(stderr.contains("profile (REUSE_AUDIT_PROFILE"), "{stderr}");
    for name in
        ["load + pair models", "probe: input scaling", "plan: shape probe (early, thread)", "swaps (wall)", "verdict"]
    {
        let (n, wall, cpu) = phase(&stderr, name).unwrap_or_else(|| panic!("no '{name}' line: {stderr}"));
        assert!(n == 1 && wall >= 0.0 && cpu >= 0.0, "{name}: {n} {wall} {cpu}");
    }
    // One region run per swap and batch: the audit says how many images go in one run.
    let per_run: usize = stderr
        .split(" image(s) per run")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no batch size: {stderr}"));
    // Every row is a swap that ran (the two models differ everywhere: no "not run" note).
    assert!(!stderr.contains("not run"), "{stderr}");
    let swaps = report["rows"].as_array().unwrap().len();
    let (runs, ..) = phase(&stderr, "region run (each, any thread)").unwrap();
    assert!(swaps > 0);
    assert_eq!(runs, swaps * 6usize.div_ceil(per_run), "{stderr}");
    let total = stderr.lines().find(|l| l.contains("total (cpu: whole process)")).unwrap();
    let v: Vec<f64> = total.split(')').nth(1).unwrap().split_whitespace().map(|x| x.parse().unwrap()).collect();
    assert!(v.len() == 2 && v[0] > 0.0 && v[1] > 0.0, "{total}");
}
