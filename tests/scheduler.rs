//! `--shard auto/N` (issue 14): K from the scheduler's variable (`SLURM_ARRAY_TASK_ID` offset
//! by the array's first index, `JOB_COMPLETION_INDEX` 0-based). Shards chosen so are the
//! shards `K/N` names (same journal lines) and merge into one run byte for byte; a missing,
//! ambiguous or out-of-range variable is exit 2 naming it, with nothing written. And the
//! recipes of docs/sharding.md, taken from the page as written, run with the variables each
//! engine sets: every merge equals one unsharded run, exit code included.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command as Process;

use common::*;
use predicates::prelude::*;

/// Environment variables set for a run.
type Vars<'a> = &'a [(&'a str, &'a str)];

/// Every variable `--shard auto/N` reads.
const SCHEDULER_VARS: [&str; 6] = [
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_MAX",
    "SLURM_ARRAY_TASK_STEP",
    "SLURM_ARRAY_TASK_COUNT",
    "JOB_COMPLETION_INDEX",
];

/// A command with none of the scheduler variables of the machine running the tests.
fn clear_scheduler(c: &mut assert_cmd::Command) -> &mut assert_cmd::Command {
    for v in SCHEDULER_VARS {
        c.env_remove(v);
    }
    c
}

/// The journal's lines: the header, then the records as a set (a shard's workers finish
/// its swaps in any order; each line is a whole checksummed result).
fn journal_lines(dir: &Path) -> (String, BTreeSet<String>) {
    let text = std::fs::read_to_string(dir.join("shard.journal")).unwrap();
    let mut lines = text.lines().map(str::to_string);
    let header = lines.next().unwrap();
    // A finished shard's last line is its run's timing, the one part that differs per run.
    (header, lines.filter(|l| !l.split_once(' ').is_some_and(|(_, j)| j.starts_with("{\"timing\""))).collect())
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                // report.json's timing differs between runs: the rest must not.
                let bytes = if p.ends_with("report.json") { without_timing(&bytes) } else { bytes };
                out.push((p.strip_prefix(dir).unwrap().display().to_string(), bytes));
            }
        }
    }
    out.sort();
    out
}

fn assert_same_report(want: &Path, got: &Path) {
    let (w, g) = (files(want), files(got));
    assert_eq!(w.iter().map(|f| &f.0).collect::<Vec<_>>(), g.iter().map(|f| &f.0).collect::<Vec<_>>());
    for ((name, a), (_, b)) in w.iter().zip(&g) {
        assert!(a == b, "{name} differs between {} and {}", want.display(), got.display());
    }
    assert!(w.len() >= 3, "too few files: {:?}", w.iter().map(|f| &f.0).collect::<Vec<_>>());
}

#[test]
fn shards_chosen_by_the_scheduler_variable_are_the_k_of_n_shards() {
    let dir = tempfile::tempdir().unwrap();
    let t = save(&tiny_cnn(&Spec::default()), dir.path(), "t.onnx");
    let s = save(&tiny_cnn(&Spec { seed: 2, ..Spec::default() }), dir.path(), "s.onnx");
    let data = dir.path().join("val.npz");
    npz(&data, 6, 8, None, 3);
    let run = |out: &Path, shard: &str, vars: &[(&str, &str)]| {
        let mut c = audit_cmd(&t, &s, &data);
        clear_scheduler(&mut c).args(["--labels", "baseline", "--format", "csv,json,md"]).arg("--out").arg(out);
        c.args(["--shard", shard]).envs(vars.iter().copied());
        c.assert()
    };
    let clean = dir.path().join("clean");
    let mut c = audit_cmd(&t, &s, &data);
    clear_scheduler(&mut c).args(["--labels", "baseline", "--format", "csv,json,md"]).arg("--out").arg(&clean);
    c.assert().success();
    let given: Vec<PathBuf> = (1..=3)
        .map(|k| {
            let out = dir.path().join(format!("given-{k}"));
            run(&out, &format!("{k}/3"), &[]).success();
            out
        })
        .collect();
    // sbatch --array=0-2: task id 0 is shard 1; an Indexed Job's pod 1 is shard 2; --array=10-30:10,
    // task 30 is shard 3.
    let slurm0 = [("SLURM_ARRAY_TASK_ID", "0"), ("SLURM_ARRAY_TASK_MIN", "0"), ("SLURM_ARRAY_TASK_MAX", "2")];
    let stepped = [
        ("SLURM_ARRAY_TASK_ID", "30"),
        ("SLURM_ARRAY_TASK_MIN", "10"),
        ("SLURM_ARRAY_TASK_MAX", "30"),
        ("SLURM_ARRAY_TASK_STEP", "10"),
        ("SLURM_ARRAY_TASK_COUNT", "3"),
    ];
    let chosen = [
        (dir.path().join("slurm-0"), &slurm0[..], "shard 1/3 (SLURM_ARRAY_TASK_ID=0 in array 0-2)"),
        (dir.path().join("k8s-1"), &[("JOB_COMPLETION_INDEX", "1")][..], "shard 2/3 (JOB_COMPLETION_INDEX=1)"),
        (dir.path().join("slurm-30"), &stepped[..], "shard 3/3 (SLURM_ARRAY_TASK_ID=30 in array 10-30:10)"),
    ];
    for (k, (out, vars, says)) in chosen.iter().enumerate() {
        run(out, "auto/3", vars).success().stderr(predicate::str::contains(*says));
        assert_eq!(journal_lines(out), journal_lines(&given[k]), "shard {} by variable vs by K/N", k + 1);
    }
    let by_variable: Vec<PathBuf> = chosen.iter().map(|c| c.0.clone()).collect();
    let merged = dir.path().join("merged");
    bin().arg("merge").args(&by_variable).arg("--out").arg(&merged).assert().success();
    assert_same_report(&clean, &merged);
    // Chosen either way, they are one set: mixed in one merge.
    let mixed = [by_variable[0].clone(), given[1].clone(), by_variable[2].clone()];
    let merged_mixed = dir.path().join("merged-mixed");
    bin().arg("merge").args(&mixed).arg("--out").arg(&merged_mixed).assert().success();
    assert_same_report(&clean, &merged_mixed);
}

#[test]
fn shard_auto_without_a_usable_variable_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let t = save(&tiny_cnn(&Spec::default()), dir.path(), "t.onnx");
    let s = save(&tiny_cnn(&Spec { seed: 2, ..Spec::default() }), dir.path(), "s.onnx");
    let data = dir.path().join("val.npz");
    npz(&data, 4, 8, None, 3);
    let out = dir.path().join("o");
    let cases: [(&str, Vars, &str); 7] = [
        ("auto/3", &[], "neither SLURM_ARRAY_TASK_ID (Slurm job array) nor JOB_COMPLETION_INDEX"),
        ("auto/3", &[("SLURM_ARRAY_TASK_ID", "1"), ("JOB_COMPLETION_INDEX", "0")], "ambiguous"),
        ("auto/3", &[("JOB_COMPLETION_INDEX", "3")], "JOB_COMPLETION_INDEX=3 is not below 3"),
        ("auto/3", &[("JOB_COMPLETION_INDEX", "x")], "JOB_COMPLETION_INDEX='x' is not a non-negative integer"),
        // sbatch --array=1-4 with --shard auto/3: one task would compute nothing right.
        ("auto/3", &[("SLURM_ARRAY_TASK_ID", "2"), ("SLURM_ARRAY_TASK_COUNT", "4")], "SLURM_ARRAY_TASK_COUNT=4"),
        ("auto/3", &[("SLURM_ARRAY_TASK_ID", "0"), ("SLURM_ARRAY_TASK_MIN", "1")], "SLURM_ARRAY_TASK_ID=0 is not one"),
        ("auto/0", &[("JOB_COMPLETION_INDEX", "0")], "auto/N needs N >= 1"),
    ];
    for (shard, vars, says) in cases {
        let mut c = audit_cmd(&t, &s, &data);
        clear_scheduler(&mut c).args(["--labels", "baseline", "--shard", shard]).arg("--out").arg(&out);
        c.envs(vars.iter().copied()).assert().code(2).stderr(predicate::str::contains(says));
        assert!(!out.exists() && !dir.path().join("o.journal").exists(), "{shard} {vars:?}: something written");
    }
    // The flag is named, and --shard K/N ignores the variables.
    let mut c = audit_cmd(&t, &s, &data);
    clear_scheduler(&mut c).args(["--labels", "baseline", "--shard", "auto/2"]).arg("--out").arg(&out);
    c.assert().code(2).stderr(predicate::str::contains("invalid value for --shard: auto/2: neither"));
    let mut c = audit_cmd(&t, &s, &data);
    clear_scheduler(&mut c).args(["--labels", "baseline", "--shard", "2/2"]).arg("--out").arg(&out);
    c.env("JOB_COMPLETION_INDEX", "7").assert().success().stdout(predicate::str::contains("shard 2/2: "));
}

// ---- The recipes of docs/sharding.md, as written. ----

/// The fenced code block of docs/sharding.md that contains `marker`.
fn doc_block(marker: &str) -> String {
    let doc = std::fs::read_to_string(root().join("docs/sharding.md")).unwrap();
    let mut blocks = doc.split("```").skip(1).step_by(2);
    let block = blocks.find(|b| b.contains(marker)).unwrap_or_else(|| panic!("no block with {marker}"));
    block.split_once('\n').unwrap().1.to_string()
}

/// The YAML value on the line containing `marker`: a block scalar (`|` literal, `>-` folded)
/// read from the lines indented below it, or the rest of the line after `key: `.
fn yaml_value(yaml: &str, marker: &str) -> String {
    let lines: Vec<&str> = yaml.lines().collect();
    let at = lines.iter().position(|l| l.contains(marker)).unwrap_or_else(|| panic!("no line with {marker}"));
    let line = lines[at].trim_end();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let body = || lines[at + 1..].iter().take_while(|l| indent(l) > indent(line)).map(|l| l.trim());
    if line.ends_with('|') {
        body().collect::<Vec<_>>().join("\n")
    } else if line.ends_with(">-") {
        body().collect::<Vec<_>>().join(" ")
    } else {
        line.split_once(": ").unwrap().1.trim().to_string()
    }
}

/// A folder laid out as the recipes expect: the bundled UNet as target and source, ten
/// labelled slices as the validation set.
fn workspace(dir: &Path) -> PathBuf {
    let m = root().join("models");
    for (from, to) in [
        ("unet-acdc-seg.onnx", "models/target.onnx"),
        ("unet-acdc-ae.onnx", "models/source.onnx"),
        ("data/acdc-fewshot-10.npz", "data/val.npz"),
    ] {
        std::fs::create_dir_all(dir.join(to).parent().unwrap()).unwrap();
        std::fs::copy(m.join(from), dir.join(to)).unwrap();
    }
    dir.to_path_buf()
}

/// `shell -c script` in `cwd` with `reuse-audit` on PATH and only the given scheduler variables.
fn sh(shell: &str, script: &str, cwd: &Path, vars: &[(&str, String)]) -> std::process::Output {
    assert!(!script.contains("${{"), "an Actions expression left in: {script}");
    let bin_dir = assert_cmd::cargo::cargo_bin("reuse-audit").parent().unwrap().to_path_buf();
    let path = std::env::join_paths(
        std::iter::once(bin_dir).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .unwrap();
    let mut c = Process::new(shell);
    c.arg("-c").arg(script).current_dir(cwd).env("PATH", path).env_remove("ORT_DYLIB_PATH");
    for v in SCHEDULER_VARS {
        c.env_remove(v);
    }
    c.envs(vars.iter().map(|(k, v)| (k, v)));
    c.output().unwrap()
}

/// `output` exited with `code`, else its output is shown.
fn exited(what: &str, output: &std::process::Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "{what}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn docs_sharding_recipes_run_as_written_and_merge_into_one_run() {
    let dir = tempfile::tempdir().unwrap();
    // One unsharded run of the recipes' command (gates and formats included).
    let clean_ws = workspace(&dir.path().join("clean"));
    let one_run = "reuse-audit audit models/target.onnx models/source.onnx --data data/val.npz \
                   --format csv,json,md,html --fail-if-not-reusable --out report";
    let clean = sh("bash", one_run, &clean_ws, &[]);
    let code = clean.status.code().unwrap();
    assert!(code == 0 || code == 1, "{}", String::from_utf8_lossy(&clean.stderr));
    let want = clean_ws.join("report");
    assert!(want.join("report.md").is_file());

    // Slurm: the two scripts, run from elsewhere (they cd to SLURM_SUBMIT_DIR), tasks 1-4.
    let ws = workspace(&dir.path().join("slurm"));
    let (shard_script, merge_script) = (doc_block("audit-shard.sh"), doc_block("audit-merge.sh"));
    assert!(shard_script.contains("sbatch --array=1-4"));
    let submit = [("SLURM_SUBMIT_DIR", ws.display().to_string()), ("SLURM_CPUS_PER_TASK", "1".into())];
    for id in 1..=4 {
        let mut vars = submit.to_vec();
        let array = [("ID", id), ("MIN", 1), ("MAX", 4), ("STEP", 1), ("COUNT", 4)];
        vars.extend(SCHEDULER_VARS[..5].iter().zip(array).map(|(name, (field, v))| {
            assert!(name.ends_with(field));
            (*name, v.to_string())
        }));
        let out = sh("bash", &shard_script, dir.path(), &vars);
        exited(&format!("slurm task {id}"), &out, 0);
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(log.contains(&format!("shard {id}/4 (SLURM_ARRAY_TASK_ID={id} in array 1-4)")), "{log}");
    }
    exited("slurm merge", &sh("bash", &merge_script, dir.path(), &submit), code);
    assert_same_report(&want, &ws.join("report"));

    // Kubernetes: each pod's `sh -c` with JOB_COMPLETION_INDEX 0-3 in workingDir, the volume at
    // its mountPath; then the merge Job's command.
    let yaml = doc_block("completionMode: Indexed");
    let ws = workspace(&dir.path().join("k8s"));
    assert_eq!(yaml_value(&yaml, "completions:"), "4");
    let mount = "/results";
    assert!(yaml.contains(&format!("mountPath: {mount}")));
    let volume = ws.join("volume");
    std::fs::create_dir(&volume).unwrap();
    let on_volume = |cmd: &str| cmd.replace(mount, &volume.display().to_string());
    let pod = on_volume(&yaml_value(&yaml, "- >-"));
    for index in 0..4 {
        let out = sh("sh", &pod, &ws, &[("JOB_COMPLETION_INDEX", index.to_string())]);
        exited(&format!("pod {index}: {pod}"), &out, 0);
    }
    let merge_line = yaml.lines().find(|l| l.contains("reuse-audit merge")).unwrap();
    let argv: Vec<String> = serde_json::from_str(merge_line.split_once("command: ").unwrap().1).unwrap();
    assert_eq!(argv[..2], ["sh", "-c"]);
    exited("merge job", &sh("sh", &on_volume(&argv[2]), &ws, &[]), code);
    assert_same_report(&want, &volume.join("report"));

    // GitHub Actions: one workspace per matrix job, `shard/` carried to the merge job as the
    // artifact `shard-K`, downloaded to shards/shard-K; steps run with bash -e, as Actions does.
    let workflow = doc_block("name: reuse-audit (sharded)");
    assert!(workflow.contains("matrix: { k: [1, 2, 3, 4] }"));
    let step = yaml_value(&workflow, "run: |");
    let merge_ws = workspace(&dir.path().join("gha-merge"));
    for k in 1..=4 {
        let job = workspace(&dir.path().join(format!("gha-{k}")));
        exited(&format!("matrix job {k}"), &sh("bash", &step.replace("${{ matrix.k }}", &k.to_string()), &job, &[]), 0);
        let artifact = merge_ws.join(format!("shards/shard-{k}"));
        std::fs::create_dir_all(&artifact).unwrap();
        for (name, bytes) in files(&job.join("shard")) {
            std::fs::write(artifact.join(name), bytes).unwrap();
        }
    }
    let merge_step = yaml_value(&workflow, "run: reuse-audit merge");
    exited("merge job", &sh("bash", &format!("set -e\n{merge_step}"), &merge_ws, &[]), code);
    assert_same_report(&want, &merge_ws.join("audit"));
    let summary = merge_ws.join("summary.md");
    let summary_step = yaml_value(&workflow, "GITHUB_STEP_SUMMARY");
    let vars = [("GITHUB_STEP_SUMMARY", summary.display().to_string())];
    exited("job summary", &sh("bash", &summary_step, &merge_ws, &vars), 0);
    assert_eq!(std::fs::read(&summary).unwrap(), std::fs::read(want.join("report.md")).unwrap());
}
