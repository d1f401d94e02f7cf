//! Layers inside control flow (issue 14): a Conv inside an `If` or `Loop` subgraph was
//! silently left out (and incremental evaluation said a layer "does not reach the output").
//! Now it is listed as not audited, with the reason, and there is no RN verdict.

mod common;

use common::*;
use onnx_protobuf::{attribute_proto::AttributeType, AttributeProto, GraphProto, ModelProto, TensorProto};
use serde_json::Value;

fn graph_attr(name: &str, g: GraphProto) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::GRAPH.into();
    a.g = Some(g).into();
    a
}

fn scalar(name: &str, data_type: i32, v: i64) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.into();
    t.data_type = data_type;
    match data_type {
        7 => t.int64_data = vec![v],
        _ => t.int32_data = vec![v as i32],
    }
    t
}

fn typed(name: &str, elem: i32, dims: &[Option<i64>]) -> onnx_protobuf::ValueInfoProto {
    let mut v = value_info(name, dims);
    v.type_.as_mut().unwrap().mut_tensor_type().elem_type = elem;
    v
}

/// The tiny CNN with conv2 moved into a subgraph: `If(true)` (then: conv2, else: Identity),
/// or a `Loop` run once whose body is conv2. The subgraph reads conv2's weights and the
/// activation from the main graph.
fn conv2_in(op: &str, seed: u64) -> ModelProto {
    let mut m = tiny_cnn(&Spec { seed, ..Spec::default() });
    let g = m.graph.as_mut().unwrap();
    let at = g.node.iter().position(|n| n.name == "conv2").unwrap();
    let mut conv = g.node.remove(at);
    let node = match op {
        "If" => {
            conv.output[0] = "t_out".into();
            let then_g = GraphProto { name: "then".into(), node: vec![conv], ..Default::default() };
            let mut then_g = then_g;
            then_g.output.push(value_info("t_out", &[None, Some(4), Some(8), Some(8)]));
            let mut else_g = GraphProto { name: "else".into(), ..Default::default() };
            else_g.node.push(node("Identity", "id_else", &["relu1_out"], &["e_out"], vec![]));
            else_g.output.push(value_info("e_out", &[None, Some(4), Some(8), Some(8)]));
            g.initializer.push(scalar("cond", 9, 1));
            let attrs = vec![graph_attr("then_branch", then_g), graph_attr("else_branch", else_g)];
            node("If", "branch", &["cond"], &["conv2_out"], attrs)
        }
        _ => {
            conv.input[0] = "v".into();
            conv.output[0] = "v_out".into();
            let mut body = GraphProto { name: "body".into(), node: vec![conv], ..Default::default() };
            body.node.push(node("Identity", "keep_going", &["c"], &["c_out"], vec![]));
            body.input.push(typed("i", 7, &[]));
            body.input.push(typed("c", 9, &[]));
            body.input.push(value_info("v", &[None, Some(4), Some(8), Some(8)]));
            body.output.push(typed("c_out", 9, &[]));
            body.output.push(value_info("v_out", &[None, Some(4), Some(8), Some(8)]));
            g.initializer.push(scalar("trips", 7, 1));
            g.initializer.push(scalar("cond", 9, 1));
            node("Loop", "once", &["trips", "cond", "relu1_out"], &["conv2_out"], vec![graph_attr("body", body)])
        }
    };
    g.node.insert(at, node);
    m
}

#[test]
fn conv_inside_if_or_loop_was_silently_not_audited() {
    for op in ["If", "Loop"] {
        let dir = tempfile::tempdir().unwrap();
        let t = save(&conv2_in(op, 1), dir.path(), "t.onnx");
        let s = save(&conv2_in(op, 2), dir.path(), "s.onnx");
        let data = dir.path().join("val.npz");
        npz(&data, 4, 8, Some(&(0..256).map(|i| (i % 3) as u8).collect::<Vec<_>>()), 3);

        let out = bin().arg("inspect").arg(&t).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}");
        let place = if op == "If" { "then_branch of If 'branch'" } else { "body of Loop 'once'" };
        assert!(text.contains(&format!("not audited: conv2 (Conv, in the {place})")), "{op}: {text}");

        for strategy in ["naive", "incremental"] {
            let res = audit_cmd(&t, &s, &data).args(["--json", "--strategy", strategy]).output().unwrap();
            let stderr = String::from_utf8_lossy(&res.stderr);
            assert!(res.status.success(), "{op} {strategy}: {stderr}");
            assert!(!stderr.contains("does not reach"), "no false note: {stderr}");
            let r: Value = serde_json::from_slice(&res.stdout).unwrap();
            let warnings: Vec<&str> = r["warnings"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
            assert!(
                warnings
                    .iter()
                    .any(|w| w.contains("t.onnx: 1 Conv/BN layer(s) inside control flow not audited: 'conv2'")),
                "{warnings:?}"
            );
            let rn = format!("no RN verdict: conv W was swapped in 2 of the target's 3 conv layers (1 not audited: conv W (conv2): inside the {place}");
            assert!(warnings.iter().any(|w| w.starts_with(&rn)), "{warnings:?}");
            assert_eq!(r["summary"]["rn"], Value::Null, "{op} {strategy}: no RN verdict");
            let missing = &r["not_audited"];
            assert_eq!(missing.as_array().unwrap().len(), 2, "conv2's W and B: {missing}");
            assert_eq!((missing[0]["layer"].clone(), missing[0]["node"].as_str()), (Value::Null, Some("conv2")));
            assert!(r["summary"]["reuse_share_groups"].is_null());
            // The main graph's layers (conv1, the head, both BNs) are audited, numbered as before.
            let layers: Vec<(String, u64)> = r["rows"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|row| row["kind"] == "W")
                .map(|row| (row["node"].as_str().unwrap().to_string(), row["layer"].as_u64().unwrap()))
                .collect();
            assert_eq!(layers, [("conv1".to_string(), 1), ("conv3".to_string(), 2)]);
            assert!(r["rows"].as_array().unwrap().iter().all(|row| row["delta_dice"].is_number()));
        }
    }
}

#[test]
fn flops_downstream_of_a_layer_feeding_a_subgraph_counts_the_subgraph_node() {
    // conv1 feeds the If only through the subgraph's capture of relu1_out: everything in
    // the graph is downstream of it (it used to stop at relu1).
    let dir = tempfile::tempdir().unwrap();
    let t = save(&conv2_in("If", 1), dir.path(), "t.onnx");
    let out = bin().args(["inspect", "--flops", "--json"]).arg(&t).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let share = |node: &str| {
        r["layers"].as_array().unwrap().iter().find(|l| l["node"] == node).unwrap()["downstream_share"]
            .as_f64()
            .unwrap()
    };
    assert!((share("conv1") - 1.0).abs() < 1e-9, "conv1 {}", share("conv1"));
    assert!(share("conv3") < 0.5, "the head {}", share("conv3"));
}

/// The tiny CNN with conv2, bn2 and relu2 moved into a model-local function `local.Block`
/// (as `torch.onnx.export(..., export_modules_as_functions=...)` writes), called by node
/// `block2` with the weights as arguments. With `recursive`, the function also calls itself.
fn block2_as_function(seed: u64, recursive: bool) -> ModelProto {
    let mut m = tiny_cnn(&Spec { seed, ..Spec::default() });
    let g = m.graph.as_mut().unwrap();
    let at = g.node.iter().position(|n| n.name == "conv2").unwrap();
    let body: Vec<_> = g.node.drain(at..at + 3).collect();
    let args: Vec<String> =
        body.iter().take(2).flat_map(|n| n.input.iter().cloned()).filter(|x| x != "conv2_out").collect();
    let mut f = onnx_protobuf::FunctionProto {
        name: "Block".into(),
        domain: "local".into(),
        input: args.clone(),
        output: vec!["relu2_out".into()],
        node: body,
        ..Default::default()
    };
    let mut call =
        node("Block", "block2", &args.iter().map(String::as_str).collect::<Vec<_>>(), &["relu2_out"], vec![]);
    call.domain = "local".into();
    if recursive {
        f.node.push(call.clone());
    }
    g.node.insert(at, call);
    for (domain, version) in [("", 17), ("local", 1)] {
        f.opset_import.push(onnx_protobuf::OperatorSetIdProto { domain: domain.into(), version, ..Default::default() });
    }
    m.opset_import.push(onnx_protobuf::OperatorSetIdProto { domain: "local".into(), version: 1, ..Default::default() });
    m.functions.push(f);
    m
}

#[test]
fn conv_and_bn_inside_a_model_local_function_were_silently_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let t = save(&block2_as_function(1, false), dir.path(), "t.onnx");
    let s = save(&block2_as_function(2, false), dir.path(), "s.onnx");
    let data = dir.path().join("val.npz");
    npz(&data, 4, 8, Some(&(0..256).map(|i| (i % 3) as u8).collect::<Vec<_>>()), 3);
    let place = "function 'local.Block' called by node 'block2'";

    let out = bin().arg("inspect").arg(&t).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains(&format!("not audited: conv2 (Conv, in the {place})")), "{text}");
    assert!(text.contains(&format!("not audited: bn2 (BatchNormalization, in the {place})")), "{text}");

    for strategy in ["naive", "incremental"] {
        let res = audit_cmd(&t, &s, &data).args(["--json", "--strategy", strategy]).output().unwrap();
        let stderr = String::from_utf8_lossy(&res.stderr);
        assert!(res.status.success(), "{strategy}: {stderr}");
        let r: Value = serde_json::from_slice(&res.stdout).unwrap();
        let warnings: Vec<&str> = r["warnings"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        assert!(warnings.iter().any(|w| w.contains("t.onnx: 2 Conv/BN layer(s) inside control flow or functions not audited: 'conv2'")), "{warnings:?}");
        let rn = "no RN verdict: conv W was swapped in 2 of the target's 3 conv layers (1 not audited";
        assert!(warnings.iter().any(|w| w.starts_with(rn)), "{warnings:?}");
        assert_eq!(r["summary"]["rn"], Value::Null, "{strategy}: no RN verdict");
        assert!(r["summary"]["reuse_share_groups"].is_null());
        let missing: Vec<(&str, &str)> = r["not_audited"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| (n["node"].as_str().unwrap(), n["kind"].as_str().unwrap()))
            .collect();
        let want = [("conv2", "W"), ("conv2", "B"), ("bn2", "RM"), ("bn2", "RV"), ("bn2", "RW"), ("bn2", "RB")];
        assert_eq!(missing, want);
        assert!(r["not_audited"][0]["reason"].as_str().unwrap().contains("inline_local_functions"));
    }

    // A function calling itself (ONNX forbids it) ends the walk instead of the stack; 40
    // functions each calling the next twice (2^40 calls) are walked once each, in no time.
    let mut doubling = block2_as_function(1, false);
    let block = doubling.functions.pop().unwrap();
    for i in 0..40 {
        let mut f = block.clone();
        f.name = format!("F{i}");
        f.node.truncate(0);
        for (k, out) in ["a", "b"].iter().enumerate() {
            let mut call = node(&format!("F{}", i + 1), &format!("c{k}"), &[], &[out], vec![]);
            (call.input, call.domain) = (block.input.clone(), "local".into());
            f.node.push(call);
        }
        f.node.push(node("Max", "mx", &["a", "b"], &["relu2_out"], vec![]));
        doubling.functions.push(f);
    }
    doubling.functions.push(onnx_protobuf::FunctionProto { name: "F40".into(), ..block });
    doubling.graph.as_mut().unwrap().node.iter_mut().find(|n| n.name == "block2").unwrap().op_type = "F0".into();
    for (m, name) in [(block2_as_function(1, true), "recursive.onnx"), (doubling, "doubling.onnx")] {
        let bad = save(&m, dir.path(), name);
        let out = bin().arg("inspect").arg(&bad).timeout(std::time::Duration::from_secs(60)).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {text}");
        assert!(text.contains("2 Conv/BN layer(s) inside control flow or functions not audited: 'conv2'"), "{text}");
    }
}
