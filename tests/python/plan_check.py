"""Independent check of a reuse plan's files: onnx + onnxruntime + numpy only.

    python plan_check.py TARGET SOURCE PLAN_DIR [--data DATA.npz]

- reused.safetensors is parsed by hand (8-byte little-endian header length, JSON header,
  raw little-endian data); its keys must be the plan's `freeze` names, and each tensor must
  equal what the source stores for that parameter: the source initializer (or Constant) in
  the target tensor's element type; through a Transpose/Cast chain, the source's stored
  tensor beneath it; for a QDQ parameter, the source triple dequantized in float32
  ((q - zero_point) as float32 * scale, per channel along the DequantizeLinear's axis).
- grafted.onnx (external data read by onnx.load) must hold, for every reused tensor, the
  source's stored tensor(s) (a QDQ triple: all three), and the target's tensor everywhere
  else, with the target's nodes.
- With --data: grafted.onnx run by onnxruntime (z-score per image, argmax, Dice per class
  over the whole set, empty-empty = 1) must give the plan's final score to 1e-6, the
  target the plan's baseline, and the loss must be within the tolerance.
- With --steps too: every step of the joint check rebuilt here (the final reuse plus the
  tensors dropped at that step or later, each source tensor written where the target
  stores it: through Identity/Cast/Transpose, the stored tensor beneath) and scored: each
  step's score to 1e-6, each drop the largest individual loss left, and every step but the
  last over the tolerance.
Prints "N tensors checked, M mismatches"; exit code 1 on any mismatch.
"""

import argparse
import json
import os
import struct
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64}


def read_safetensors(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    data = raw[8 + n :]
    out = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        a, b = info["data_offsets"]
        out[key] = np.frombuffer(data[a:b], dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
    return header.get("__metadata__", {}), out


def stored(model):
    """Every stored tensor: initializers and Constant values, by name."""
    out = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    out[n.output[0]] = numpy_helper.to_array(a.t)
    return out


def root(model, name):
    """Follow Identity/Cast/Transpose back to the stored tensor's name."""
    names = stored(model)
    while name not in names:
        node = next(n for n in model.graph.node if name in n.output)
        assert node.op_type in ("Identity", "Cast", "Transpose"), node.op_type
        name = node.input[0]
    return name


def set_stored(model, name, array):
    """Replace the stored tensor `name` (an initializer or a Constant's value)."""
    for init in model.graph.initializer:
        if init.name == name:
            init.CopyFrom(numpy_helper.from_array(array, name))
            return
    for n in model.graph.node:
        if n.op_type == "Constant" and n.output[0] == name:
            for a in n.attribute:
                if a.name == "value":
                    a.t.CopyFrom(numpy_helper.from_array(array, name))
                    return
    raise KeyError(name)


def dequantized(model, q_name):
    node = next(n for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0] == q_name)
    s = stored(model)
    q = s[node.input[0]].astype(np.int64)
    scale = s[node.input[1]]
    zp = s[node.input[2]].astype(np.int64) if len(node.input) > 2 and node.input[2] else np.zeros_like(scale, dtype=np.int64)
    axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
    if scale.size > 1:
        shape = [1] * q.ndim
        shape[axis] = -1
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    triple = [node.input[0], node.input[1]] + ([node.input[2]] if len(node.input) > 2 and node.input[2] else [])
    return (q - zp).astype(scale.dtype) * scale, triple


def zscore(x):
    m = x.mean(axis=(1, 2, 3), keepdims=True, dtype=np.float64)
    s = x.std(axis=(1, 2, 3), keepdims=True, dtype=np.float64)
    s[s == 0] = 1.0
    return ((x - m) / s).astype(np.float32)


def mean_dice(model, images, labels):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    out = np.concatenate([sess.run(None, {name: images[i : i + 16]})[0] for i in range(0, len(images), 16)])
    pred = out.argmax(1)
    dice = []
    for k in range(out.shape[1]):
        p, g = pred == k, labels == k
        den = int(p.sum()) + int(g.sum())
        dice.append(1.0 if den == 0 else 2.0 * int((p & g).sum()) / den)
    return float(np.mean(dice))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("target")
    ap.add_argument("source")
    ap.add_argument("plan_dir")
    ap.add_argument("--data")
    ap.add_argument("--steps", action="store_true")
    a = ap.parse_args()
    plan = json.load(open(os.path.join(a.plan_dir, "plan.json")))
    target, source = onnx.load(a.target), onnx.load(a.source)
    grafted = onnx.load(os.path.join(a.plan_dir, "grafted.onnx"))
    t_stored, s_stored, g_stored = stored(target), stored(source), stored(grafted)
    meta, tensors = read_safetensors(os.path.join(a.plan_dir, "reused.safetensors"))
    bad = 0
    checked = 0

    def expect(cond, what):
        nonlocal bad
        if not cond:
            bad += 1
            print("MISMATCH:", what)

    expect(meta.get("format") == "pt", f"metadata {meta}")
    expect(sorted(tensors) == sorted(plan["freeze"]), f"safetensors keys {sorted(tensors)} vs freeze {sorted(plan['freeze'])}")
    written = set()
    for r in plan["reuse"]:
        label = f"{r['family']} {r['layer']} {r['kind']}"
        if r["quantized"]:
            want, triple = dequantized(source, r["source_initializer"])
            got = tensors[r["safetensors_key"]]
            expect(got.dtype == want.dtype and np.array_equal(got, want), f"{label}: safetensors vs dequantized source triple")
            expect(len(triple) == len(r["stored_as"]), f"{label}: triple {triple} vs {r['stored_as']}")
            for t_name, s_name in zip(r["stored_as"], triple):
                g, s = g_stored[t_name], s_stored[s_name]
                expect(g.dtype == s.dtype and np.array_equal(g, s), f"{label}: grafted {t_name} vs source {s_name}")
        else:
            if r["chain"]:
                s = s_stored[root(source, r["source_initializer"])]
            else:
                s = s_stored[r["source_initializer"]]
            name = r["stored_as"][0]
            want = s.astype(t_stored[name].dtype)
            got = tensors[r["safetensors_key"]]
            expect(got.dtype == want.dtype and np.array_equal(got, want), f"{label}: safetensors {r['safetensors_key']} vs source")
            expect(np.array_equal(g_stored[name], want) and g_stored[name].dtype == want.dtype, f"{label}: grafted {name} vs source")
        written.update(r["stored_as"])
        checked += 1
    expect(sorted(g_stored) == sorted(t_stored), "grafted and target store different tensor names")
    for name, t in t_stored.items():
        if name in written:
            continue
        g = g_stored.get(name)
        expect(g is not None and g.dtype == t.dtype and np.array_equal(g, t), f"{name}: grafted differs from the target")
        checked += 1
    strip = lambda m: [(n.op_type, list(n.input), list(n.output)) for n in m.graph.node]
    expect(strip(grafted) == strip(target), "grafted nodes differ from the target's")
    if a.data:
        v = plan["verification"]
        expect(v is not None and v["normalize"] == "zscore" and v["metric"] == "dice", "verification settings")
        d = np.load(a.data)
        images = d["images"].astype(np.float64)
        if images.ndim == 3:
            images = images[:, None]
        images, labels = zscore(images), d["labels"].astype(np.int64)
        base, score = mean_dice(target, images, labels), mean_dice(grafted, images, labels)
        print(f"baseline: python {base:.6f} plan {v['baseline']:.6f}; grafted: python {score:.6f} plan {v['score']:.6f}")
        expect(abs(base - v["baseline"]) < 1e-6, "baseline")
        expect(abs(score - v["score"]) < 1e-6, "grafted score")
        expect(base - score <= v["tolerance"], f"loss {base - score} > tolerance {v['tolerance']}")
        if a.steps:
            for st in v["steps"]:
                k = st["step"]
                later = [d for d in plan["dropped"] if d["step"] is not None and d["step"] >= k]
                rows = [(r["target_initializer"], r["source_initializer"]) for r in plan["reuse"]]
                rows += [(d["target_initializer"], d["source_initializer"]) for d in later]
                expect(len(rows) == st["reused"], f"step {k}: {len(rows)} tensors vs {st['reused']}")
                expect(all(r["quantized"] is None for r in plan["reuse"]), "--steps rebuilds float parameters only")
                m = onnx.ModelProto()
                m.CopyFrom(target)
                for t_name, s_name in rows:
                    t_root, s_root = root(target, t_name), root(source, s_name)
                    set_stored(m, t_root, s_stored[s_root].astype(t_stored[t_root].dtype))
                got = mean_dice(m, images, labels)
                print(f"step {k}: {st['reused']} tensors, python {got:.6f} plan {st['score']:.6f}")
                expect(abs(got - st["score"]) < 1e-6, f"step {k} score")
                expect((base - got > v["tolerance"]) == (st["dropped"] is not None), f"step {k}: over the tolerance iff it dropped one")
                if st["dropped"] is not None:
                    losses = [d["loss"] for d in later]
                    expect(st["dropped_loss"] == max(losses), f"step {k}: dropped {st['dropped_loss']}, largest left {max(losses)}")
    print(f"{checked} tensors checked, {bad} mismatches")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
