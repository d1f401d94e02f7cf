"""Make the `families` fixture of reuse-audit: a tiny segmentation net with a layer of every
family beyond conv and BN, seeded, on CPU.

    /work/corpus-venv/bin/python models/make_families.py

Writes tests/corpus/families-{target,source}.onnx and tests/corpus/families.expected.json;
the validation data is tests/corpus/tiny-unet-acdc.npz (16 acdc phantoms, 64x64, made by
models/make_corpus.py).

The net (FamNet, 4 classes, logits), exported by torch.onnx.export(dynamo=True,
optimize=False, opset 21) as the README advises for keeping BatchNorm:
  conv 1 + BatchNorm + ReLU                               conv 1, bn 1
  conv 2 (stride 2) + InstanceNorm(affine) + ReLU         conv 2, norm 1 (InstanceNormalization)
  conv 3 + GroupNorm(4 groups) + ReLU                     conv 3, norm 2 (GroupNormalization)
  squeeze-excite: mean -> Linear -> Tanh -> Linear -> Sigmoid -> Mul
                                                          linear 1, linear 2 (Gemm, transB=1)
  channel attention: softmax(z z^T / HW) z, added back    two MatMuls of activations: no layer
  LayerNorm over channels, then a pointwise Linear        norm 3 (LayerNormalization),
    (channels last, the exporter's Transpose(weight)      linear 3 (MatMul + Add)
    -> MatMul -> Add)
  ConvTranspose x2, concat with conv 1's features, 1x1 head   conv 4, conv 5

Target: trained 300 steps on acdc phantoms. Source: the target fine-tuned 300 steps on t1
phantoms (inverted contrast), so some parameters move little and some a lot.

Expected numbers are computed with onnxruntime + numpy only (function `expected_families`),
never with reuse-audit code: the parameter slots are found by this script's own reading of
the graph (rules in tests/corpus/README.md), every parameter is swapped where it is stored
(a MatMul weight behind the exporter's Transpose: the initializer it transposes), and the
weight metrics are computed in float64 numpy.
"""

import json
import os
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_corpus import (OUT, N_TRAIN, rel, seed_of, dice, summary, run, zscore_any,  # noqa: E402
                         phantom_split, train_torch, torch_seed)
from phantoms import zscore  # noqa: E402

DATA = os.path.join(OUT, "tiny-unet-acdc.npz")
OPSET = 21


def famnet():
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class FamNet(nn.Module):
        def __init__(self, classes=4):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8)
            self.conv2, self.inorm = nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.InstanceNorm2d(16, affine=True)
            self.conv3, self.gnorm = nn.Conv2d(16, 16, 3, padding=1), nn.GroupNorm(4, 16)
            self.se1, self.se2 = nn.Linear(16, 4), nn.Linear(4, 16)
            self.lnorm, self.pw = nn.LayerNorm(16), nn.Linear(16, 16)
            self.up = nn.ConvTranspose2d(16, 8, 2, stride=2)
            self.head = nn.Conv2d(16, classes, 1)

        def forward(self, x):
            e = F.relu(self.bn1(self.conv1(x)))
            y = F.relu(self.inorm(self.conv2(e)))
            y = F.relu(self.gnorm(self.conv3(y)))
            s = torch.sigmoid(self.se2(torch.tanh(self.se1(y.mean((2, 3))))))
            y = y * s[:, :, None, None]
            z = y.flatten(2)
            a = torch.softmax(z @ z.transpose(1, 2) / z.shape[-1], -1)
            y = y + (a @ z).reshape(y.shape)
            y = y + self.pw(self.lnorm(y.permute(0, 2, 3, 1))).permute(0, 3, 1, 2)
            return self.head(torch.cat([self.up(y), e], 1))

    return FamNet


def export(net, x, path):
    import torch
    batch = torch.export.Dim("batch", min=1, max=1024)
    prog = torch.onnx.export(net, (torch.from_numpy(x),), input_names=["image"], output_names=["output"],
                             dynamo=True, optimize=False, external_data=False, opset_version=OPSET,
                             dynamic_shapes={"x": {0: batch}})
    model = prog.model_proto
    model.producer_name = "reuse-audit/models/make_families.py (torch dynamo export)"
    got = run(model, x)
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    err = float(np.abs(got - want).max())
    assert err < 1e-3, (path, err)
    onnx.save_model(model, path)
    return model


# ----------------------------------------------------------------------------------------
# Reading the graph (this script's own rules, see tests/corpus/README.md)
# ----------------------------------------------------------------------------------------

def data_tensors(model):
    """Tensors that depend on the graph's (non-initializer) inputs."""
    inits = {t.name for t in model.graph.initializer}
    data = {i.name for i in model.graph.input if i.name not in inits}
    for n in model.graph.node:
        if any(x in data for x in n.input):
            data.update(o for o in n.output if o)
    return data


def slots(model):
    """[(family, layer, kind, tensor name as read by the node)] in graph order, families
    numbered separately; plus the activation MatMuls that are not layers."""
    data = data_tensors(model)
    consumers = {}
    for n in model.graph.node:
        for x in n.input:
            consumers.setdefault(x, []).append(n)
    count = {"conv": 0, "bn": 0, "linear": 0, "norm": 0}
    out, not_layers = [], []

    def add(fam, pairs):
        count[fam] += 1
        out.extend((fam, count[fam], kind, name) for kind, name in pairs if name)

    for n in model.graph.node:
        op, ins = n.op_type, list(n.input) + [""] * 5
        if op in ("Conv", "ConvTranspose"):
            add("conv", [("W", ins[1]), ("B", ins[2])])
        elif op == "BatchNormalization":
            add("bn", [("RW", ins[1]), ("RB", ins[2]), ("RM", ins[3]), ("RV", ins[4])])
        elif op in ("InstanceNormalization", "GroupNormalization", "LayerNormalization"):
            add("norm", [("RW", ins[1]), ("RB", ins[2])])
        elif op in ("Gemm", "MatMul"):
            if ins[0] not in data or ins[1] in data:
                not_layers.append({"node": n.name, "op": op, "inputs": list(n.input)})
                continue
            bias = ""
            if op == "Gemm":
                bias = ins[2] if ins[2] and ins[2] not in data else ""
            else:
                for c in consumers.get(n.output[0], []):
                    if c.op_type == "Add":
                        other = c.input[1] if c.input[0] == n.output[0] else c.input[0]
                        if other not in data:
                            bias = other
                            break
            add("linear", [("W", ins[1]), ("B", bias)])
    return out, not_layers


def stored(model, name):
    """(initializer, transform) holding a parameter: followed back through Identity and
    Transpose (transform: the permutation applied to the initializer, or None)."""
    inits = {t.name: t for t in model.graph.initializer}
    prod = {o: n for n in model.graph.node for o in n.output}
    perm = None
    while name not in inits:
        n = prod[name]
        if n.op_type == "Identity":
            name = n.input[0]
        elif n.op_type == "Transpose" and perm is None:
            p = [a for a in n.attribute if a.name == "perm"]
            rank = len(inits[n.input[0]].dims) if n.input[0] in inits else 2
            perm = list(p[0].ints) if p else list(range(rank))[::-1]
            name = n.input[0]
        else:
            raise KeyError(f"{name} is computed by {n.op_type}")
    return inits[name], perm


def value(model, name):
    t, perm = stored(model, name)
    a = numpy_helper.to_array(t).astype(np.float64)
    return a if perm is None else np.transpose(a, perm)


def swap_model(target, source, t_name, s_name):
    """The target with the initializer behind t_name replaced by the source's behind s_name."""
    m = onnx.ModelProto()
    m.CopyFrom(target)
    t, _ = stored(m, t_name)
    s, _ = stored(source, s_name)
    old = numpy_helper.to_array(t)
    t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(s).astype(old.dtype).reshape(old.shape), t.name))
    return m


# ----------------------------------------------------------------------------------------
# Weight metrics in float64 numpy (METHOD.md, README's table)
# ----------------------------------------------------------------------------------------

def weight_metrics(t, s):
    d = t - s
    rmse = float(np.sqrt(np.mean(d * d)))
    std = float(t.std())
    nrmse = (rmse / std) if std > 0 else (0.0 if rmse == 0 else None)
    nt, ns = float(np.linalg.norm(t)), float(np.linalg.norm(s))
    if nt == 0 and ns == 0:
        cos = 1.0
    elif nt == 0 or ns == 0:
        cos = 0.0
    else:
        cos = float(np.sum(t * s) / (nt * ns))
    return {"rmse": rmse, "nrmse": nrmse, "cosine": cos}


def spectral(t, s):
    """spectral_rel and subspace_overlap of two out x in matrices (numpy SVD)."""
    st = np.linalg.svd(t, compute_uv=True)
    ss = np.linalg.svd(s, compute_uv=True)
    sd = np.linalg.svd(t - s, compute_uv=False)
    rel_ = float(sd[0] / st[1][0])
    energy = np.cumsum(st[1] ** 2) / np.sum(st[1] ** 2)
    r = int(np.argmax(energy >= 0.9 - 1e-15)) + 1
    floor = ss[1][0] * np.sqrt(max(s.shape) * np.finfo(np.float64).eps)
    rank_s = int(np.sum(ss[1] > floor))
    k = min(r, rank_s)
    vt, vs = st[2][:r].T, ss[2][:k].T  # right singular vectors as columns
    overlap = float(np.sum((vt.T @ vs) ** 2) / r)
    return {"spectral_rel": rel_, "subspace_overlap": overlap, "energy_rank": r}


# ----------------------------------------------------------------------------------------

def expected_families(target_path, source_path):
    target, source = onnx.load(target_path), onnx.load(source_path)
    d = np.load(DATA)
    images, labels = d["images"], d["labels"].astype(np.int64)
    x = zscore_any(images)
    base = summary(dice(run(target, x).argmax(1), labels, 4))
    t_slots, not_layers = slots(target)
    s_slots, _ = slots(source)
    assert [s[:3] for s in t_slots] == [s[:3] for s in s_slots]
    ops = {n.name: n.op_type for n in target.graph.node}
    rows = []
    for (fam, layer, kind, tn), (_, _, _, sn) in zip(t_slots, s_slots):
        tv, sv = value(target, tn), value(source, sn)
        got = summary(dice(run(swap_model(target, source, tn, sn), x).argmax(1), labels, 4))
        row = {"family": fam, "layer": layer, "kind": kind, "target_tensor": tn,
               "stored_as": stored(target, tn)[0].name, "shape": list(tv.shape),
               **weight_metrics(tv, sv), "swapped": got, "delta": base["mean"] - got["mean"]}
        if fam == "linear" and kind == "W":
            # Rows = output units: Gemm with transB=1 stores out x in; MatMul reads in x out.
            node = next(n for n in target.graph.node if len(n.input) > 1 and n.input[1] == tn)
            trans_b = any(a.name == "transB" and a.i == 1 for a in node.attribute)
            out_in = (node.op_type == "Gemm" and trans_b)
            row["op"] = node.op_type
            row.update(spectral(tv if out_in else tv.T, sv if out_in else sv.T))
        if fam == "conv" and kind == "W":
            row.update(spectral(tv.reshape(tv.shape[0], -1), sv.reshape(sv.shape[0], -1)))
        rows.append(row)
    counts = {f: len({s[1] for s in t_slots if s[0] == f}) for f in ("conv", "bn", "linear", "norm")}
    res = {
        "case": "families",
        "target": rel(target_path),
        "source": rel(source_path),
        "data": rel(DATA),
        "target_is": "FamNet (see models/make_families.py) trained 300 steps (cross-entropy, Adam 3e-3 one-cycle) "
                     "on z-scored acdc phantoms",
        "source_is": "the target fine-tuned 300 steps (Adam 3e-3 one-cycle) on z-scored t1 phantoms",
        "opset": OPSET,
        "layers": counts,
        "not_layers": not_layers,
        "preprocessing": "per-image z-score over C,H,W (float64 stats, population std), float32",
        "head": "argmax over axis 1",
        "classes": 4,
        "baseline": base,
        "swaps": rows,
        "computed_with": {"onnxruntime": ort.__version__, "onnx": onnx.__version__, "numpy": np.__version__,
                          "by": "models/make_families.py:expected_families (onnxruntime + numpy only)"},
    }
    path = os.path.join(OUT, "families.expected.json")
    with open(path, "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")
    return res


def main():
    import torch
    torch.set_num_threads(2)
    t0 = time.time()
    FamNet = famnet()
    va = np.load(DATA)
    va_im = va["images"]
    paths = {r: os.path.join(OUT, f"families-{r}.onnx") for r in ("target", "source")}
    tr_im, tr_lb = phantom_split("acdc", N_TRAIN, "train")
    torch_seed("families-init", "target")
    net = train_torch(FamNet(), zscore(tr_im), tr_lb.astype(np.int64), "ce", seed_of("families-train", "target"))
    export(net, zscore_any(va_im[:4]), paths["target"])
    tr_im, tr_lb = phantom_split("t1", N_TRAIN, "train")
    net = train_torch(net, zscore(tr_im), tr_lb.astype(np.int64), "ce", seed_of("families-train", "source"),
                      steps=300, lr=3e-3)
    export(net, zscore_any(va_im[:4]), paths["source"])
    res = expected_families(paths["target"], paths["source"])
    print(f"families: baseline {res['baseline']['mean']:.4f}, layers {res['layers']}, "
          f"{len(res['swaps'])} swaps, not layers {[n['node'] for n in res['not_layers']]} "
          f"({time.time() - t0:.0f}s)")


if __name__ == "__main__":
    main()
