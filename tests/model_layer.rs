//! `inspect`, `match`, `rmse` through the real binary on Rust-built fixtures and the bundled exports.

mod common;

use common::*;
use predicates::prelude::*;
use serde_json::Value;

fn json_of(cmd: &mut assert_cmd::Command) -> Value {
    let out = cmd.assert().success().get_output().stdout.clone();
    serde_json::from_slice(&out).expect("valid JSON on stdout")
}

pub fn validate(schema_file: &str, v: &Value) {
    let schema: Value =
        serde_json::from_slice(&std::fs::read(root().join("schemas").join(schema_file)).expect("schema"))
            .expect("schema JSON");
    let validator = jsonschema::validator_for(&schema).expect("valid schema");
    let errors: Vec<String> = validator.iter_errors(v).map(|e| format!("{} at {}", e, e.instance_path)).collect();
    assert!(errors.is_empty(), "{schema_file}: {errors:#?}");
}

#[test]
fn inspect_finds_conv_bn_identity_and_constant_params() {
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec { identity_weight: true, constant_bias: true, transpose_last: true, ..Spec::default() };
    let m = save(&tiny_cnn(&spec), dir.path(), "m.onnx");
    let v = json_of(bin().args(["inspect", "--json"]).arg(&m));
    assert_eq!(v["conv_layers"], 3);
    assert_eq!(v["bn_layers"], 2);
    let layers = v["layers"].as_array().unwrap();
    // conv 2's weight is reached through an Identity node: the initializer name is reported.
    let conv2 = layers.iter().find(|l| l["family"] == "conv" && l["index"] == 2).unwrap();
    assert_eq!(conv2["params"][0][1], "net.conv2.weight");
    // conv 3 is a ConvTranspose whose bias comes from a Constant node.
    let conv3 = layers.iter().find(|l| l["family"] == "conv" && l["index"] == 3).unwrap();
    assert_eq!(conv3["op"], "ConvTranspose");
    assert_eq!(conv3["params"][1][0], "B");
    assert_eq!(conv3["params"][1][1], "net.head.bias");
    let bn1 = layers.iter().find(|l| l["family"] == "bn" && l["index"] == 1).unwrap();
    let kinds: Vec<&str> = bn1["params"].as_array().unwrap().iter().map(|p| p[0].as_str().unwrap()).collect();
    assert_eq!(kinds, ["RM", "RV", "RW", "RB"]);
    assert_eq!(v["bn_probably_folded"], false);
}

#[test]
fn folded_bn_is_reported_by_inspect_and_rmse() {
    let dir = tempfile::tempdir().unwrap();
    let m = save(&tiny_cnn(&Spec { folded: true, ..Spec::default() }), dir.path(), "folded.onnx");
    bin()
        .arg("inspect")
        .arg(&m)
        .assert()
        .success()
        .stdout(predicate::str::contains("BN was probably folded").and(predicate::str::contains("optimize=False")));
    bin().arg("rmse").arg(&m).arg(&m).assert().success().stderr(predicate::str::contains("BN was probably folded"));
}

#[test]
fn match_by_name_and_by_position() {
    let dir = tempfile::tempdir().unwrap();
    let a = save(&tiny_cnn(&Spec::default()), dir.path(), "a.onnx");
    let b = save(&tiny_cnn(&Spec { seed: 2, ..Spec::default() }), dir.path(), "b.onnx");
    let c = save(&tiny_cnn(&Spec { seed: 3, prefix: "other".into(), ..Spec::default() }), dir.path(), "c.onnx");
    let v = json_of(bin().args(["match", "--json"]).arg(&a).arg(&b));
    assert_eq!(v["method"], "name");
    assert_eq!(v["pairs"].as_array().unwrap().len(), 3 * 2 + 2 * 4);
    assert!(v["unmatched"].as_array().unwrap().is_empty());
    let v = json_of(bin().args(["match", "--json"]).arg(&a).arg(&c));
    assert_eq!(v["method"], "position");
    let p = &v["pairs"][0];
    assert_eq!(
        (p["target_initializer"].as_str(), p["source_initializer"].as_str()),
        (Some("net.conv1.weight"), Some("other.conv1.weight"))
    );
    assert!(v["warnings"][0].as_str().unwrap().contains("position"));
    // Name matching forced on different names: nothing pairs -> error, exit 2.
    bin()
        .args(["match", "--match", "name"])
        .arg(&a)
        .arg(&c)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a single parameter"));
}

#[test]
fn match_from_a_mapping_file() {
    let dir = tempfile::tempdir().unwrap();
    let a = save(&tiny_cnn(&Spec::default()), dir.path(), "a.onnx");
    let c = save(&tiny_cnn(&Spec { prefix: "other".into(), ..Spec::default() }), dir.path(), "c.onnx");
    let map = dir.path().join("map.csv");
    std::fs::write(&map, "target_initializer,source_initializer\nnet.conv1.weight,other.conv1.weight\nnet.bn1.running_mean,other.bn1.running_mean\n").unwrap();
    let v = json_of(bin().args(["match", "--json", "--match"]).arg(&map).arg(&a).arg(&c));
    assert_eq!(v["method"], "file");
    assert_eq!(v["pairs"].as_array().unwrap().len(), 2);
    assert_eq!(v["unmatched"].as_array().unwrap().len(), 12);
    std::fs::write(&map, "net.conv1.weight,other.conv2.weight\n").unwrap();
    bin()
        .args(["match", "--match"])
        .arg(&map)
        .arg(&a)
        .arg(&c)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("line 1"));
}

/// Regression (issue 10): the mapping file is read as CSV: quoted names may hold commas,
/// the header is optional, and a malformed row or unknown name is an error naming its line.
#[test]
fn mapping_file_with_quoted_names_and_malformed_rows() {
    let dir = tempfile::tempdir().unwrap();
    let a = save(&tiny_cnn(&Spec::default()), dir.path(), "a.onnx");
    let c = save(&tiny_cnn(&Spec { prefix: "x,y".into(), ..Spec::default() }), dir.path(), "c.onnx");
    let map = dir.path().join("map.csv");
    std::fs::write(&map, "net.conv1.weight,\"x,y.conv1.weight\"\n\"net.conv1.bias\",\"x,y.conv1.bias\"\n").unwrap();
    let v = json_of(bin().args(["match", "--json", "--match"]).arg(&map).arg(&a).arg(&c));
    assert_eq!(v["method"], "file");
    let pairs: Vec<(&str, &str)> = v["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["target_initializer"].as_str().unwrap(), p["source_initializer"].as_str().unwrap()))
        .collect();
    assert_eq!(pairs, [("net.conv1.weight", "x,y.conv1.weight"), ("net.conv1.bias", "x,y.conv1.bias")]);
    let fails = |text: &str, needle: &str| {
        std::fs::write(&map, text).unwrap();
        bin()
            .args(["match", "--match"])
            .arg(&map)
            .arg(&a)
            .arg(&c)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(needle))
            .stderr(predicate::str::contains("map.csv"));
    };
    // Unquoted, the comma splits the name: three fields on line 3.
    fails("target_initializer,source_initializer\n\nnet.conv1.weight,x,y.conv1.weight\n", "line 3: 3 fields");
    fails("net.conv1.weight,\n", "line 1: the source name is empty");
    fails("# map\nnet.conv1.weight,\"x,y.conv9.weight\"\n", "line 2: source has no layer parameter 'x,y.conv9.weight'");
}

#[test]
fn rmse_identity_gives_zero_one() {
    let dir = tempfile::tempdir().unwrap();
    let m = save(&tiny_cnn(&Spec::default()), dir.path(), "m.onnx");
    let v = json_of(bin().args(["rmse", "--json"]).arg(&m).arg(&m));
    for row in v["rows"].as_array().unwrap() {
        assert_eq!(row["rmse"], 0.0, "{row}");
        // dot / (|t| |s|) of a tensor with itself is 1 to the last bit or one below it
        // (0.9999999999999999 here); serde_json's exact float parsing reads it as written.
        assert!((row["cosine"].as_f64().unwrap() - 1.0).abs() <= f64::EPSILON, "{row}");
    }
    for bn in v["summary"]["bn"].as_array().unwrap() {
        assert_eq!((bn["mrm"].as_f64(), bn["mrb"].as_f64()), (Some(0.0), Some(0.0)));
        assert!((bn["mrv"].as_f64().unwrap() - 1.0).abs() < 1e-15);
        assert!((bn["mrw"].as_f64().unwrap() - 1.0).abs() < 1e-15);
    }
    validate("report.schema.json", &v);
}

#[test]
fn rmse_of_a_planted_shift_is_the_shift() {
    let dir = tempfile::tempdir().unwrap();
    let t = tiny_cnn(&Spec::default());
    let mut s = t.clone();
    // Every value of conv1.W shifted by 0.5 -> RMSE 0.5; bn2 running mean shifted by 0.25 for all channels.
    set_init(&mut s, "net.conv1.weight", |_, v| v + 0.5);
    set_init(&mut s, "net.bn2.bias", |_, v| v + 0.25);
    let (a, b) = (save(&t, dir.path(), "t.onnx"), save(&s, dir.path(), "s.onnx"));
    let v = json_of(bin().args(["rmse", "--json"]).arg(&a).arg(&b));
    let rows = v["rows"].as_array().unwrap();
    let find = |fam: &str, layer: u64, kind: &str| {
        rows.iter().find(|r| r["family"] == fam && r["layer"] == layer && r["kind"] == kind).unwrap().clone()
    };
    assert!((find("conv", 1, "W")["rmse"].as_f64().unwrap() - 0.5).abs() < 1e-6);
    assert_eq!(find("conv", 1, "B")["rmse"], 0.0);
    assert!((find("bn", 2, "RB")["rmse"].as_f64().unwrap() - 0.25).abs() < 1e-6);
    // MRB of bn 2 = mean(beta' - beta) = 0.25
    let bn2 = v["summary"]["bn"].as_array().unwrap().iter().find(|b| b["layer"] == 2).unwrap().clone();
    assert!((bn2["mrb"].as_f64().unwrap() - 0.25).abs() < 1e-6);
}

#[test]
fn external_data_and_fp16_and_typed_fields_load() {
    let dir = tempfile::tempdir().unwrap();
    let inline = save(&tiny_cnn(&Spec::default()), dir.path(), "inline.onnx");
    let mut ext = tiny_cnn(&Spec::default());
    externalize(&mut ext, dir.path(), "ext.onnx.data", "ext.onnx.data");
    let ext = save(&ext, dir.path(), "ext.onnx");
    let typed = save(&tiny_cnn(&Spec { storage: Storage::Typed, ..Spec::default() }), dir.path(), "typed.onnx");
    let fp16 = save(&tiny_cnn(&Spec { storage: Storage::Fp16, ..Spec::default() }), dir.path(), "fp16.onnx");
    for other in [&ext, &typed] {
        let v = json_of(bin().args(["rmse", "--json"]).arg(&inline).arg(other));
        assert!(v["rows"].as_array().unwrap().iter().all(|r| r["rmse"] == 0.0), "{}", other.display());
    }
    // fp16 storage rounds values: RMSE is tiny but not zero, cosine ~1.
    let v = json_of(bin().args(["rmse", "--json"]).arg(&inline).arg(&fp16));
    for r in v["rows"].as_array().unwrap() {
        assert!(r["rmse"].as_f64().unwrap() < 1e-3 && r["cosine"].as_f64().unwrap() > 0.99999, "{r}");
    }
    assert!(v["rows"].as_array().unwrap().iter().any(|r| r["rmse"].as_f64().unwrap() > 0.0));
}

#[test]
fn rmse_writes_csv_and_json_files() {
    let dir = tempfile::tempdir().unwrap();
    let a = save(&tiny_cnn(&Spec::default()), dir.path(), "a.onnx");
    let b = save(&tiny_cnn(&Spec { seed: 5, ..Spec::default() }), dir.path(), "b.onnx");
    let out = dir.path().join("out");
    bin().args(["rmse", "-q", "--format", "csv,json", "--out"]).arg(&out).arg(&a).arg(&b).assert().success();
    let csv = std::fs::read_to_string(out.join("report.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    assert!(header.starts_with("family,layer,node,op,kind,target_initializer,source_initializer,shape,numel,rmse,nrmse,cosine,baseline_dice,swapped_dice,delta_dice,dice_fg,reusable"));
    assert!(
        header.ends_with(",reusable,spectral_rel,subspace_overlap,delta_dice_lo,delta_dice_hi,decision,images_used,non_finite_images"),
        "{header}"
    );
    assert_eq!(csv.lines().count(), 1 + 14);
    // Dice and interval columns are empty for the data-free report; the spectral columns
    // (appended after the Dice ones) are filled for conv W only.
    for line in csv.lines().skip(1) {
        let row: Vec<&str> = line.split(',').collect();
        assert_eq!(row.len(), 24);
        assert!(row[12..17].iter().all(|c| c.is_empty()), "{row:?}");
        assert_eq!(row[17..19].iter().all(|c| !c.is_empty()), row[4] == "W", "{row:?}");
        assert!(row[19..].iter().all(|c| c.is_empty()), "{row:?}");
    }
    let v: Value = serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    validate("report.schema.json", &v);
}

#[test]
fn bundled_exports_load_with_every_layer() {
    for (name, convs, bns) in
        [("unet-acdc-seg.onnx", 18, 14), ("pspnet-acdc-seg.onnx", 21, 20), ("external/unet-acdc-seg.onnx", 18, 14)]
    {
        let v = json_of(bin().args(["inspect", "--json"]).arg(root().join("models").join(name)));
        assert_eq!((v["conv_layers"].as_u64(), v["bn_layers"].as_u64()), (Some(convs), Some(bns)), "{name}");
    }
    let v = json_of(bin().args(["inspect", "--json"]).arg(root().join("models/unet-acdc-seg-folded.onnx")));
    assert_eq!(v["bn_probably_folded"], true);
    // The external-data copy holds exactly the same parameters.
    let v = json_of(
        bin()
            .args(["rmse", "--json"])
            .arg(root().join("models/unet-acdc-seg.onnx"))
            .arg(root().join("models/external/unet-acdc-seg.onnx")),
    );
    assert!(v["rows"].as_array().unwrap().iter().all(|r| r["rmse"] == 0.0));
}

#[test]
fn flops_and_ideal_speedup_by_hand() {
    // tiny CNN on 1x1x8x8: conv1 (4x1x3x3 + bias) -> BN -> Relu -> conv2 (4x4x3x3 + bias)
    // -> BN -> Relu -> head (3x4x1x1 + bias). FLOPs (multiply-add = 2, bias = 1):
    // conv1 256*(2*9+1)=4864, bn1 2*256=512, relu1 256, conv2 256*(2*36+1)=18688, bn2 512,
    // relu2 256, head 192*(2*4+1)=1728; total 26816.
    let dir = tempfile::tempdir().unwrap();
    let m = save(&tiny_cnn(&Spec::default()), dir.path(), "m.onnx");
    let v = json_of(bin().args(["inspect", "--json", "--flops"]).arg(&m));
    assert_eq!(v["flops"]["total"], 26816.0);
    assert_eq!(v["flops"]["swaps"], 14);
    // downstream: conv1 26816, bn1 21952, conv2 21184, bn2 2496, head 1728; swaps per layer
    // 2, 4, 2, 4, 2 -> ideal = 15 / (1 + (2*26816 + 4*21952 + 2*21184 + 4*2496 + 2*1728) / 26816)
    let sum = (2.0 * 26816.0 + 4.0 * 21952.0 + 2.0 * 21184.0 + 4.0 * 2496.0 + 2.0 * 1728.0) / 26816.0;
    let ideal = v["flops"]["ideal_speedup"].as_f64().unwrap();
    assert!((ideal - 15.0 / (1.0 + sum)).abs() < 1e-9, "{ideal}");
    let bn2 = v["layers"].as_array().unwrap().iter().find(|l| l["family"] == "bn" && l["index"] == 2).unwrap().clone();
    assert!((bn2["downstream_share"].as_f64().unwrap() - 2496.0 / 26816.0).abs() < 1e-12);
}

#[test]
fn matrix_of_three_models() {
    let dir = tempfile::tempdir().unwrap();
    let a = save(&tiny_cnn(&Spec::default()), dir.path(), "a.onnx");
    let b = save(&tiny_cnn(&Spec::default()), dir.path(), "b.onnx"); // same weights as a
    let c = save(&tiny_cnn(&Spec { seed: 9, ..Spec::default() }), dir.path(), "c.onnx");
    let out = dir.path().join("m");
    bin().arg("matrix").arg(&a).arg(&b).arg(&c).arg("--out").arg(&out).arg("-q").assert().success();
    let long = std::fs::read_to_string(out.join("matrix.csv")).unwrap();
    assert_eq!(long.lines().next().unwrap(), "model_a,model_b,family,layer,kind,rmse,nrmse");
    assert_eq!(long.lines().count(), 1 + 6 * 14, "6 ordered pairs x 14 parameters");
    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let rows: Vec<Vec<&str>> = summary.lines().skip(1).map(|l| l.split(',').collect()).collect();
    assert_eq!(rows[0][1..3], ["0", "0"], "a vs a and a vs b: identical weights");
    assert!(rows[0][3].parse::<f64>().unwrap() > 0.5, "a vs c differ");
    let html = std::fs::read_to_string(out.join("matrix.html")).unwrap();
    // Every heatmap cell is outlined in white once (plotters' SVG: a rect filled "none").
    assert_eq!(html.matches(r##"fill="none" stroke="#FFFFFF""##).count(), 9);
    bin().arg("matrix").arg(&a).assert().code(2);
}

/// A target exported with BN folded (TorchScript's default constant folding) and a source
/// exported with BN kept cannot pair as they are (the BN layer counts differ); with
/// `--families conv` they did, and the audit gave an RN verdict on swaps of raw conv
/// weights into the folded network without a word about it. The pair is now named in a
/// warning (stderr and the report).
#[test]
fn folded_target_and_unfolded_source_paired_by_families_conv_without_a_word() {
    let dir = tempfile::tempdir().unwrap();
    let t = save(&tiny_cnn(&Spec { folded: true, ..Spec::default() }), dir.path(), "folded.onnx");
    let s = save(&tiny_cnn(&Spec { seed: 2, ..Spec::default() }), dir.path(), "kept.onnx");
    let data = dir.path().join("val.npz");
    npz(&data, 4, 8, Some(&[1u8; 4 * 64]), 3);
    let (t_, s_) = (t.display(), s.display());
    let said = format!(
        "{t_} has 0 BatchNormalization layer(s) and {s_} has 2: BN is folded into the convolutions of {t_} and \
         kept in {s_}, so their conv W and B are not like for like"
    );
    let swap = "a swap puts the source's unfolded weights into the target's folded network";
    let out = audit_cmd(&t, &s, &data).args(["--families", "conv", "--json"]).assert().success();
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains(&said) && err.contains(swap), "{err}");
    let r: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert!(r["warnings"].as_array().unwrap().iter().any(|w| w.as_str().unwrap().contains(&said)), "{}", r["warnings"]);
    // The other way round, and from `rmse` and `match` too.
    let back = "a swap puts the source's folded weights into the target's BN-keeping network";
    bin()
        .arg("rmse")
        .arg(&s)
        .arg(&t)
        .args(["--families", "conv"])
        .assert()
        .success()
        .stderr(predicate::str::contains(back));
    bin()
        .arg("match")
        .arg(&s)
        .arg(&t)
        .args(["--families", "conv"])
        .assert()
        .success()
        .stdout(predicate::str::contains(back));
    // Both folded, or both kept: nothing said.
    let t2 = save(&tiny_cnn(&Spec { seed: 3, folded: true, ..Spec::default() }), dir.path(), "folded2.onnx");
    for (a, b) in [(&t, &t2), (&s, &s)] {
        bin().arg("rmse").arg(a).arg(b).assert().success().stderr(predicate::str::contains("not like for like").not());
    }
}

/// `match` took no `--families`: an audit paired with `--families conv` (say, a folded and
/// an unfolded export) told the user to "check `reuse-audit match`", which refused the pair
/// (exit 2, BN layer counts differ) and refused the flag.
#[test]
fn match_refused_the_families_flag_the_audit_pairs_with() {
    let dir = tempfile::tempdir().unwrap();
    let t = save(&tiny_cnn(&Spec { folded: true, ..Spec::default() }), dir.path(), "folded.onnx");
    let s = save(&tiny_cnn(&Spec { seed: 2, prefix: "other".into(), ..Spec::default() }), dir.path(), "kept.onnx");
    bin().arg("match").arg(&t).arg(&s).assert().code(2).stderr(predicate::str::contains("target has 0 bn layers"));
    let v = json_of(bin().args(["match", "--json", "--families", "conv"]).arg(&t).arg(&s));
    let pairs = v["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 3 * 2, "{pairs:?}");
    assert!(pairs.iter().all(|p| p["family"] == "conv"));
    bin()
        .args(["match", "--families", "bn,attention"])
        .arg(&t)
        .arg(&s)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--families").and(predicate::str::contains("'attention'")));
}

/// `inspect` printed a channels-last input (tf2onnx's default Keras export, declared
/// `[?, 32, 32, 3]`) as `? x 3 x 32 x 32`, a shape the model does not declare; its JSON said
/// `nhwc`. The line now follows the declared order and says so.
#[test]
fn inspect_printed_a_channels_last_input_as_channels_first() {
    let dir = tempfile::tempdir().unwrap();
    let m = save(&channels_last(&tiny_cnn(&Spec { channels: 3, ..Spec::default() })), dir.path(), "nhwc.onnx");
    bin()
        .arg("inspect")
        .arg(&m)
        .assert()
        .success()
        .stdout(predicate::str::contains("input 'x_nhwc': ? x 8 x 8 x 3 (N x H x W x C)\n"));
    let v = json_of(bin().arg("inspect").arg("--json").arg(&m));
    assert_eq!(v["input"]["layout"], "nhwc");
    let m = save(&tiny_cnn(&Spec { channels: 3, ..Spec::default() }), dir.path(), "nchw.onnx");
    bin().arg("inspect").arg(&m).assert().success().stdout(predicate::str::contains("input 'x': ? x 3 x 8 x 8\n"));
}
