"""Make the "exports from the wild" corpus of reuse-audit (issue 11), seeded, on CPU.

    python3 -m venv /work/corpus-venv
    /work/corpus-venv/bin/pip install -r models/corpus-requirements.txt
    TF_USE_LEGACY_KERAS=1 /work/corpus-venv/bin/python models/make_corpus.py          # every case
    TF_USE_LEGACY_KERAS=1 /work/corpus-venv/bin/python models/make_corpus.py --only sigmoid quant
    bash models/fetch_third_party.sh   # case 8's model (not committed), then --only ocr

Writes tests/corpus/* (small models, validation data, <case>.expected.json) and, for case 8,
reads target/third-party/ch_PP-OCRv4_det_infer.onnx (fetched by models/fetch_third_party.sh)
and writes its planted-perturbation source model there too (neither is committed).

Cases (each a target/source pair of one architecture; see tests/corpus/README.md):
  keras    Keras (tf_keras) UNet with BatchNorm, 4-class softmax, exported by tf2onnx three
           ways: NHWC (default layout, BN kept), NCHW (inputs/outputs_as_nchw, BN kept) and
           BN-folded (tf2onnx's default optimizers).
  sigmoid  PyTorch binary UNet whose last node is Sigmoid (1 channel of probabilities).
  raw      PyTorch 4-class UNet trained on raw uint8 intensities 0..255 (no normalization).
  quant    QDQ (quantize_static; per-tensor and per-channel), QOperator (QLinearConv) and
           dynamic (ConvInteger) copies of the bundled models/unet-acdc-seg.onnx (target) and
           -ae.onnx (source).
  const    A tiny PyTorch 4-class UNet pair rewritten so that every Conv/BN parameter is the
           output of a Constant node (some behind Identity or Cast), as Paddle exports.
  cos      The same tiny pair with an int64 ConstantOfShape -> Expand in the graph.
  pspnet   segmentation_models_pytorch PSPNet (resnet18 encoder, no pretrained weights),
           exported with the dynamo exporter, optimize=False (BN kept), dynamic batch.
  ocr      The PaddleOCR DB text detector from the rapidocr-onnxruntime wheel (third party),
           with synthetic text images (committed) and a planted-perturbation source.
  classifier  A tiny PyTorch image classifier pair (10 classes, N x 10 logits) on gratings, with
           one class id per image: expected accuracy and label-free agreement (--metric).

Expected numbers are computed with onnxruntime + numpy only (function `expected`), never with
reuse-audit code. Training is seeded (torch.manual_seed, tf_keras set_random_seed + op
determinism) and single-process; as with models/make_models.py, CPU training is not promised
bit-identical across machines, so the committed files are the reference and the expected
files always describe the committed models.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
from onnx import helper, numpy_helper, TensorProto  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from phantoms import dataset, zscore  # noqa: E402

OUT = os.path.join(ROOT, "tests", "corpus")
THIRD = os.path.join(ROOT, "target", "third-party")
SEED = 20261211
N_TRAIN, N_VAL = 256, 16
STEPS = 300
BATCH = 16


def seed_of(*parts):
    h = hashlib.sha256(("/".join(map(str, parts)) + f"/{SEED}").encode()).digest()
    return int.from_bytes(h[:4], "little")


def rel(p):
    return os.path.relpath(p, ROOT)


# ----------------------------------------------------------------------------------------
# Independent evaluation: onnxruntime + numpy only.
# ----------------------------------------------------------------------------------------

def dice(pred, gt, classes):
    """Dice per class over the whole set; 1.0 when prediction and truth are both empty."""
    out = []
    for k in range(classes):
        p, g = pred == k, gt == k
        den = int(p.sum()) + int(g.sum())
        out.append(1.0 if den == 0 else 2.0 * int((p & g).sum()) / den)
    return out


def summary(per_class):
    return {
        "per_class": per_class,
        "mean": float(np.mean(per_class)),
        "mean_fg": float(np.mean(per_class[1:])),
    }


def run(model, feed, batch=8):
    data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: feed[i:i + batch]})[0] for i in range(0, len(feed), batch)])


def zscore_any(x):
    """Per-image z-score over every non-batch axis (float64 statistics), as the tool does."""
    x = x.astype(np.float64)
    ax = tuple(range(1, x.ndim))
    m = x.mean(axis=ax, keepdims=True)
    s = x.std(axis=ax, keepdims=True)
    s[s == 0] = 1.0
    return ((x - m) / s).astype(np.float32)


PREPROCESS = {
    # name: (function images -> model input, description)
    "zscore_nchw": (lambda im: zscore_any(im if im.ndim == 4 else im[:, None]),
                    "per-image z-score over C,H,W (float64 stats, population std); images N x 1 x H x W fed as stored"),
    "zscore_nhwc": (lambda im: zscore_any(im),
                    "per-image z-score over H,W,C (float64 stats, population std); images N x H x W x 1 fed as stored (NHWC)"),
    "raw_float": (lambda im: im[:, None].astype(np.float32),
                  "no normalization: uint8 0..255 cast to float32, channel axis added (N x 1 x H x W)"),
    "zscore_nhwc_to_nchw": (lambda im: np.ascontiguousarray(zscore_any(im).transpose(0, 3, 1, 2)),
                           "per-image z-score over H,W,C, then NHWC -> NCHW (the tool's normalization with the layout fixed)"),
    "ocr_db": (lambda im: np.ascontiguousarray(((im.astype(np.float32) / 255.0 - 0.5) / 0.5).transpose(0, 3, 1, 2)),
               "rapidocr/PaddleOCR DB det: x/255, (x-0.5)/0.5 per channel (mean=std=0.5), HWC->CHW, channel order as stored (BGR, as cv2 reads)"),
}

HEADS = {
    "argmax_c1": (lambda o: o.argmax(1), "argmax over axis 1 (N x C x H x W output)"),
    "argmax_last": (lambda o: o.argmax(-1), "argmax over the last axis (N x H x W x C output)"),
    "prob_gt_0.5": (lambda o: (o[:, 0] > 0.5).astype(np.int64), "one channel of probabilities (Sigmoid node): foreground where p > 0.5"),
    "gt_0": (lambda o: (o[:, 0] > 0).astype(np.int64), "one channel: foreground where output > 0 (the logit rule)"),
    "prob_gt_0.3": (lambda o: (o[:, 0] > 0.3).astype(np.int64), "one channel of probabilities: foreground where p > 0.3 (rapidocr's det thresh)"),
}


def tool_default(images, labels, model, classes):
    """What reuse-audit does today (z-score, data fed as stored with a channel axis added to
    N x H x W, argmax over axis 1 for >1 channels, > 0 for one channel). Errors are recorded."""
    rule = ("per-image z-score over all non-batch axes; N x H x W data gets axis 1 added; "
            "argmax over axis 1 when the output has >1 channel on axis 1, else threshold 0 on channel 0")
    try:
        x = zscore_any(images if images.ndim == 4 else images[:, None])
        out = run(model, x)
        if out.shape[1] > 1:
            pred = out.argmax(1)
        else:
            pred = (out[:, 0] > 0).astype(np.int64)
        if pred.shape != labels.shape:
            return {"rule": rule, "error": f"prediction shape {list(pred.shape)} != labels shape {list(labels.shape)} "
                                           f"(model output {list(out.shape)})"}
        return {"rule": rule, **summary(dice(pred, labels, classes))}
    except Exception as e:  # noqa: BLE001 - record the failure, it is the point
        return {"rule": rule, "error": str(e).splitlines()[0][:300]}


# --- locating a parameter behind Constant / Identity / Cast / DequantizeLinear -------------

CONV_OPS = ("Conv", "ConvTranspose", "QLinearConv", "ConvInteger")


def producers(model):
    return {o: n for n in model.graph.node for o in n.output}


def resolve(model, name):
    """Follow Identity/Cast back to an initializer or a Constant node.
    Returns (kind, handle, chain) with kind 'initializer' or 'constant'."""
    inits = {t.name: t for t in model.graph.initializer}
    prod = producers(model)
    chain = []
    while True:
        if name in inits:
            return "initializer", inits[name], chain
        n = prod.get(name)
        if n is None:
            raise KeyError(name)
        if n.op_type == "Constant":
            return "constant", n, chain
        if n.op_type in ("Identity", "Cast"):
            chain.append(n.op_type)
            name = n.input[0]
            continue
        return "node", n, chain


def get_array(kind, h):
    if kind == "initializer":
        return numpy_helper.to_array(h)
    return numpy_helper.to_array(next(a for a in h.attribute if a.name == "value").t)


def set_array(kind, h, arr):
    old = get_array(kind, h)
    new = numpy_helper.from_array(np.asarray(arr).astype(old.dtype).reshape(old.shape),
                                  h.name if kind == "initializer" else "")
    if kind == "initializer":
        h.CopyFrom(new)
    else:
        next(a for a in h.attribute if a.name == "value").t.CopyFrom(new)


def param_slots(model):
    """[(family, layer, kind, tensor name)] for conv W/B and BN RW/RB/RM/RV, topological order."""
    out, ci, bi = [], 0, 0
    for n in model.graph.node:
        if n.op_type in ("Conv", "ConvTranspose"):
            ci += 1
            out.append(("conv", ci, "W", n.input[1]))
            if len(n.input) > 2 and n.input[2]:
                out.append(("conv", ci, "B", n.input[2]))
        elif n.op_type == "BatchNormalization":
            bi += 1
            for kind, i in (("RW", 1), ("RB", 2), ("RM", 3), ("RV", 4)):
                out.append(("bn", bi, kind, n.input[i]))
    return out


def swap(target, source, family, layer, kind):
    """Target with one parameter replaced by the source's at the same (family, layer, kind).
    Conv/BN parameters found by position; the value is replaced where it is stored
    (initializer, or a Constant node's value, also through Identity/Cast)."""
    t_slot = next(s for s in param_slots(target) if s[:3] == (family, layer, kind))
    s_slot = next(s for s in param_slots(source) if s[:3] == (family, layer, kind))
    m = onnx.ModelProto()
    m.CopyFrom(target)
    tk, th, chain = resolve(m, t_slot[3])
    sk, sh, _ = resolve(source, s_slot[3])
    if tk == "node" and th.op_type == "DequantizeLinear":
        # QDQ: replace the quantized tensor, its scale and zero point (all initializers).
        names = []
        for i, (tn, sn) in enumerate(zip(th.input, sh.input)):
            k1, h1, _ = resolve(m, tn)
            k2, h2, _ = resolve(source, sn)
            set_array(k1, h1, get_array(k2, h2))
            names.append(tn)
        return m, {"target_tensor": t_slot[3], "stored_as": "DequantizeLinear(" + ", ".join(names) + ")"}
    set_array(tk, th, get_array(sk, sh))
    where = th.name if tk == "initializer" else f"Constant node -> {th.output[0]!r}"
    return m, {"target_tensor": t_slot[3], "stored_as": f"{tk} {where}" + (f" via {'/'.join(chain)}" if chain else "")}


def quant_conv1_swap(target, source):
    """QOperator/dynamic quantized models: the first QLinearConv/ConvInteger's weight,
    replaced with its scale and zero point (initializers named <W>_quantized/_scale/_zero_point)."""
    conv = next(n for n in target.graph.node if n.op_type in CONV_OPS)
    w = conv.input[3] if conv.op_type == "QLinearConv" else conv.input[1]
    base = w[: -len("_quantized")] if w.endswith("_quantized") else w
    names = [base + "_quantized", base + "_scale", base + "_zero_point"]
    m = onnx.ModelProto()
    m.CopyFrom(target)
    ti = {t.name: t for t in m.graph.initializer}
    si = {t.name: t for t in source.graph.initializer}
    done = []
    for n in names:
        if n in ti and n in si:
            ti[n].CopyFrom(si[n])
            done.append(n)
    return m, {"conv_op": conv.op_type, "replaced_initializers": done}


def dequantized(model, name):
    """numpy's dequantized values of a DequantizeLinear output of stored tensors:
    (q - zero_point) in int32, as float32, times the float32 scale (one, or one per channel
    along the node's axis, default 1), as ONNX Runtime's kernel computes them."""
    n = producers(model)[name]
    assert n.op_type == "DequantizeLinear", n.op_type
    q = get_array(*resolve(model, n.input[0])[:2]).astype(np.int32)
    scale = get_array(*resolve(model, n.input[1])[:2]).astype(np.float32)
    zp = (get_array(*resolve(model, n.input[2])[:2]).astype(np.int32) if len(n.input) > 2 and n.input[2]
          else np.zeros_like(scale, dtype=np.int32))
    if scale.size > 1:
        axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
        shape = [1] * q.ndim
        shape[axis] = -1
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    else:
        scale, zp = scale.reshape(()), zp.reshape(())
    return (q - zp).astype(np.float32) * scale


def qdq_weight_metrics(target, source):
    """RMSE, nRMSE (rmse / population std of the target) and cosine, in float64, of every
    conv W and B stored behind DequantizeLinear in both models, on the dequantized values."""
    t_prod, s_prod = producers(target), producers(source)
    t_slots = [x for x in param_slots(target) if x[0] == "conv"]
    s_slots = {x[:3]: x[3] for x in param_slots(source) if x[0] == "conv"}
    out = []
    for fam, layer, kind, tname in t_slots:
        sname = s_slots.get((fam, layer, kind))
        if sname is None or getattr(t_prod.get(tname), "op_type", "") != "DequantizeLinear" \
                or getattr(s_prod.get(sname), "op_type", "") != "DequantizeLinear":
            continue
        t = dequantized(target, tname).astype(np.float64).ravel()
        s = dequantized(source, sname).astype(np.float64).ravel()
        rmse = float(np.sqrt(np.mean((t - s) ** 2)))
        std = float(np.std(t))
        cos = float(t @ s / (np.linalg.norm(t) * np.linalg.norm(s)))
        out.append({"family": fam, "layer": layer, "kind": kind, "numel": int(t.size), "rmse": rmse,
                    "nrmse": rmse / std if std > 0 else None, "cosine": cos})
    return out


def describe_io(model):
    def shape(vi):
        return [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]
    inits = {t.name for t in model.graph.initializer}
    inp = [i for i in model.graph.input if i.name not in inits][0]
    out = model.graph.output[0]
    ops = {}
    for n in model.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    return {
        "input": {"name": inp.name, "shape": shape(inp),
                  "dtype": TensorProto.DataType.Name(inp.type.tensor_type.elem_type)},
        "output": {"name": out.name, "shape": shape(out)},
        "opset": max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
        "op_counts": dict(sorted(ops.items())),
        "batchnorm_nodes": ops.get("BatchNormalization", 0),
        "conv_nodes": sum(ops.get(k, 0) for k in CONV_OPS),
    }


def expected(case, target_path, source_path, data_path, pre, head, classes, layout, notes,
             swaps=(("conv", 1, "W"),), extra=None, source_desc="", target_desc="", wrong_rules=None):
    """Write tests/corpus/<case>.expected.json; return it."""
    t0 = time.time()
    target, source = onnx.load(target_path), onnx.load(source_path)
    d = np.load(data_path)
    images, labels = d["images"], d["labels"].astype(np.int64)
    x = PREPROCESS[pre][0](images)
    hf = HEADS[head][0]
    base = summary(dice(hf(run(target, x)), labels, classes))
    has_bn = any(n.op_type == "BatchNormalization" for n in target.graph.node)
    rows = []
    wanted = list(swaps)
    if has_bn and not any(s[0] == "bn" for s in wanted):
        wanted += [("bn", 1, k) for k in ("RM", "RV", "RW", "RB")]
    for fam, layer, kind in wanted:
        if fam == "qconv":
            m, info = quant_conv1_swap(target, source)
        else:
            m, info = swap(target, source, fam, layer, kind)
        got = summary(dice(hf(run(m, x)), labels, classes))
        rows.append({"family": "conv" if fam == "qconv" else fam, "layer": layer, "kind": kind, **info,
                     "swapped": got, "delta": base["mean"] - got["mean"]})
    res = {
        "case": case,
        "target": rel(target_path),
        "source": rel(source_path),
        "target_is": target_desc,
        "source_is": source_desc,
        "data": rel(data_path),
        "data_images": {"shape": list(images.shape), "dtype": str(images.dtype)},
        "data_labels": {"shape": list(labels.shape), "dtype": str(d["labels"].dtype)},
        "model": describe_io(target),
        "layout": layout,
        "preprocessing": {"rule": pre, "description": PREPROCESS[pre][1]},
        "head": {"rule": head, "description": HEADS[head][1]},
        "classes": classes,
        "baseline": base,
        "baseline_tool_default_rule": tool_default(images, labels, target, classes),
        "swaps": rows,
        "notes": notes,
        "computed_with": {"onnxruntime": ort.__version__, "onnx": onnx.__version__, "numpy": np.__version__,
                          "by": "models/make_corpus.py:expected (onnxruntime + numpy only)"},
    }
    for label, (pre2, head2, desc) in (wrong_rules or {}).items():
        res[label] = {"rule": desc, **summary(dice(HEADS[head2][0](run(target, PREPROCESS[pre2][0](images))), labels, classes))}
    if extra:
        res.update(extra)
    path = os.path.join(OUT, f"{case}.expected.json")
    with open(path, "w") as f:
        json.dump(res, f, indent=2)
        f.write("\n")
    tdr = res["baseline_tool_default_rule"]
    print(f"  {case}: baseline mean {base['mean']:.4f} | tool default "
          f"{tdr.get('mean', tdr.get('error'))} | conv1 W swapped {rows[0]['swapped']['mean']:.4f} "
          f"({time.time() - t0:.0f}s)", flush=True)
    return res


# ----------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------

def phantom_split(domain, n, purpose):
    im, lb = dataset(domain, n, seed_of(purpose, domain, n))
    return im, lb  # N x 1 x 64 x 64 float32, N x 64 x 64 uint8


def to_uint8(im):
    return np.clip(np.rint(im[:, 0] * 255.0), 0, 255).astype(np.uint8)


def save_npz(name, images, labels):
    p = os.path.join(OUT, name)
    np.savez_compressed(p, images=images, labels=labels)
    return p


# ----------------------------------------------------------------------------------------
# PyTorch models
# ----------------------------------------------------------------------------------------

def torch_mods():
    import torch
    import torch.nn as nn

    class Block(nn.Sequential):
        def __init__(self, cin, cout):
            super().__init__(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                             nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    class TinyUNet(nn.Module):
        """3 levels (8-16-32 channels), ConvTranspose up-sampling, long skips:
        13 conv layers (11 Conv + 2 ConvTranspose), 10 BN layers."""

        def __init__(self, out_ch=4, sigmoid=False, base=8):
            super().__init__()
            b = base
            self.enc1, self.enc2, self.mid = Block(1, b), Block(b, 2 * b), Block(2 * b, 4 * b)
            self.up2 = nn.ConvTranspose2d(4 * b, 2 * b, 2, stride=2)
            self.dec2 = Block(4 * b, 2 * b)
            self.up1 = nn.ConvTranspose2d(2 * b, b, 2, stride=2)
            self.dec1 = Block(2 * b, b)
            self.head = nn.Conv2d(b, out_ch, 1)
            self.sigmoid = sigmoid

        def forward(self, x):
            e1 = self.enc1(x)
            e2 = self.enc2(nn.functional.max_pool2d(e1, 2))
            m = self.mid(nn.functional.max_pool2d(e2, 2))
            d2 = self.dec2(torch.cat([self.up2(m), e2], 1))
            d1 = self.dec1(torch.cat([self.up1(d2), e1], 1))
            y = self.head(d1)
            return torch.sigmoid(y) if self.sigmoid else y

    return torch, TinyUNet


def train_torch(net, x_all, y_all, loss_kind, seed, steps=STEPS, lr=3e-3):
    import torch
    import torch.nn.functional as F
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed + 1)
    x_all, y_all = torch.from_numpy(x_all), torch.from_numpy(y_all)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    net.train()
    for _ in range(steps):
        idx = torch.randint(0, len(x_all), (BATCH,), generator=g)
        out = net(x_all[idx])
        y = y_all[idx]
        if loss_kind == "ce":
            loss = F.cross_entropy(out, y.long())
        elif loss_kind == "bce_prob":
            loss = F.binary_cross_entropy(out[:, 0].clamp(1e-6, 1 - 1e-6), y.float())
        else:
            raise ValueError(loss_kind)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return net.eval()


def export_torch(net, x, path=None, check=True):
    import torch
    batch = torch.export.Dim("batch", min=1, max=1024)
    prog = torch.onnx.export(net, (torch.from_numpy(x),), input_names=["image"], output_names=["output"],
                             dynamo=True, optimize=False, external_data=False,
                             dynamic_shapes={"x": {0: batch}})
    model = prog.model_proto
    model.producer_name = "reuse-audit/models/make_corpus.py (torch dynamo export)"
    if check:
        got = run(model, x)
        with torch.no_grad():
            want = net(torch.from_numpy(x)).numpy()
        err = float(np.abs(got - want).max())
        assert err < 1e-3, (path, err)
    if path:
        onnx.save_model(model, path)
    return model


def torch_seed(*parts):
    import torch
    s = seed_of(*parts)
    torch.manual_seed(s)
    return s


# ----------------------------------------------------------------------------------------
# Cases
# ----------------------------------------------------------------------------------------

def case_sigmoid():
    torch, TinyUNet = torch_mods()
    va_im, va_lb = phantom_split("acdc", N_VAL, "val")
    heart = (va_lb > 0).astype(np.uint8)
    data = save_npz("sigmoid-unet.npz", va_im, heart)
    paths = {}
    for role, domain in (("target", "acdc"), ("source", "t1")):
        tr_im, tr_lb = phantom_split(domain, N_TRAIN, "train")
        torch_seed("sigmoid-init", role)
        net = train_torch(TinyUNet(out_ch=1, sigmoid=True), zscore(tr_im), (tr_lb > 0).astype(np.float32),
                          "bce_prob", seed_of("sigmoid-train", role))
        paths[role] = os.path.join(OUT, f"sigmoid-unet-{role}.onnx")
        m = export_torch(net, zscore(va_im[:4]), paths[role])
        assert m.graph.node[-1].op_type == "Sigmoid"
    expected("sigmoid-unet", paths["target"], paths["source"], data, "zscore_nchw", "prob_gt_0.5", 2, "NCHW",
             "Binary heart mask (labels > 0 of the phantoms: RV, myocardium, LV). Last node Sigmoid: the output "
             "is a probability, so threshold 0 (the logit rule) marks every pixel foreground.",
             target_desc="TinyUNet(1 out channel + Sigmoid) trained 300 steps (BCE on probabilities) on acdc phantoms, z-scored input",
             source_desc="same architecture, different seed, trained on t1 phantoms (inverted contrast)")


def case_raw():
    torch, TinyUNet = torch_mods()
    va_im, va_lb = phantom_split("acdc", N_VAL, "val")
    data = save_npz("raw-intensity-unet.npz", to_uint8(va_im), va_lb)
    paths = {}
    for role, domain in (("target", "acdc"), ("source", "rvsc")):
        tr_im, tr_lb = phantom_split(domain, N_TRAIN, "train")
        x = to_uint8(tr_im)[:, None].astype(np.float32)
        torch_seed("raw-init", role)
        net = train_torch(TinyUNet(out_ch=4), x, tr_lb.astype(np.int64), "ce", seed_of("raw-train", role))
        paths[role] = os.path.join(OUT, f"raw-intensity-unet-{role}.onnx")
        export_torch(net, to_uint8(va_im[:4])[:, None].astype(np.float32), paths[role])
    expected("raw-intensity-unet", paths["target"], paths["source"], data, "raw_float", "argmax_c1", 4, "NCHW",
             "Trained on raw intensities: uint8 0..255 cast to float32, no normalization. The images in the npz "
             "are uint8 N x H x W; the model input is float32 N x 1 x H x W. z-scoring them (the tool's default) "
             "is wrong for this model.",
             target_desc="TinyUNet(4 classes, logits) trained 300 steps (cross-entropy) on raw uint8 acdc phantoms",
             source_desc="same architecture, different seed, trained on raw uint8 rvsc phantoms")


def tiny_pair():
    """The plain tiny 4-class pair behind cases const and cos (z-scored input, logits)."""
    torch, TinyUNet = torch_mods()
    va_im, va_lb = phantom_split("acdc", N_VAL, "val")
    models = {}
    for role, domain in (("target", "acdc"), ("source", "t1")):
        tr_im, tr_lb = phantom_split(domain, N_TRAIN, "train")
        torch_seed("tiny-init", role)
        net = train_torch(TinyUNet(out_ch=4), zscore(tr_im), tr_lb.astype(np.int64), "ce", seed_of("tiny-train", role))
        models[role] = export_torch(net, zscore(va_im[:4]))
    return models, va_im, va_lb


def to_constants(model, seed):
    """Every Conv/ConvTranspose/BN parameter initializer becomes a Constant node output:
    conv W of every third conv through Identity, BN running var through Cast (a float64
    Constant cast to float32: the same float32 numbers), the rest direct."""
    rng = np.random.default_rng(seed)  # noqa: F841 - kept for future variation; layout is fixed
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    inits = {t.name: t for t in g.initializer}
    new_nodes, moved = [], set()
    ci = 0
    for n in g.node:
        if n.op_type in ("Conv", "ConvTranspose"):
            ci += 1
        roles = []
        if n.op_type in ("Conv", "ConvTranspose"):
            roles = [(1, "W"), (2, "B")] if len(n.input) > 2 else [(1, "W")]
        elif n.op_type == "BatchNormalization":
            roles = [(1, "RW"), (2, "RB"), (3, "RM"), (4, "RV")]
        for i, kind in roles:
            name = n.input[i]
            if name not in inits or name in moved:
                continue
            arr = numpy_helper.to_array(inits[name])
            moved.add(name)
            if kind == "W" and ci % 3 == 0:
                c = helper.make_node("Constant", [], [name + "__const"], name=name + "__const_node",
                                     value=numpy_helper.from_array(arr, name + "__value"))
                new_nodes += [c, helper.make_node("Identity", [name + "__const"], [name], name=name + "__identity")]
            elif kind == "RV":
                c = helper.make_node("Constant", [], [name + "__f64"], name=name + "__const_node",
                                     value=numpy_helper.from_array(arr.astype(np.float64), name + "__value"))
                new_nodes += [c, helper.make_node("Cast", [name + "__f64"], [name], name=name + "__cast",
                                                  to=TensorProto.FLOAT)]
            else:
                new_nodes.append(helper.make_node("Constant", [], [name], name=name + "__const_node",
                                                  value=numpy_helper.from_array(arr, name + "__value")))
    keep = [t for t in g.initializer if t.name not in moved]
    del g.initializer[:]
    g.initializer.extend(keep)
    nodes = new_nodes + list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    inputs = [i for i in g.input if i.name not in moved]
    del g.input[:]
    g.input.extend(inputs)
    m.producer_name = "reuse-audit/models/make_corpus.py (params as Constant nodes)"
    onnx.checker.check_model(m)
    return m


def with_constant_of_shape(model):
    """Append to the output: r = Shape(Shape(y)) (int64 [1], the rank);
    ones = ConstantOfShape(r, value=int64 1) (int64 [rank] of ones); y' = Expand(y, ones).
    Expand by an all-ones shape is the identity, so the numbers do not change."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    out = g.output[0].name
    pre = out + "__pre_expand"
    for n in g.node:
        for i, o in enumerate(n.output):
            if o == out:
                n.output[i] = pre
    g.node.extend([
        helper.make_node("Shape", [pre], ["cos__shape"], name="cos_shape"),
        helper.make_node("Shape", ["cos__shape"], ["cos__rank"], name="cos_rank"),
        helper.make_node("ConstantOfShape", ["cos__rank"], ["cos__ones"], name="cos_constant_of_shape",
                         value=numpy_helper.from_array(np.array([1], np.int64), "cos__one")),
        helper.make_node("Expand", [pre, "cos__ones"], [out], name="cos_expand"),
    ])
    m.producer_name = "reuse-audit/models/make_corpus.py (int64 ConstantOfShape -> Expand)"
    onnx.checker.check_model(m)
    return m


def case_const_and_cos():
    models, va_im, va_lb = tiny_pair()
    data = save_npz("tiny-unet-acdc.npz", va_im, va_lb)
    x = zscore(va_im)
    for case, fn, desc in (
        ("constant-weights", lambda mm, r: to_constants(mm, seed_of("const", r)),
         "Every Conv/ConvTranspose W and B and every BN scale/B/mean/var is the output of a Constant node "
         "(no initializers for them), as Paddle exports: conv W of conv layers 3, 6, 9 through an Identity node; "
         "BN running var as a float64 Constant followed by Cast(to=float32) (same float32 numbers); the rest "
         "direct. Outputs are identical to the plain export."),
        ("constant-of-shape", lambda mm, r: with_constant_of_shape(mm),
         "A plain tiny UNet export (parameters as initializers) whose output passes through "
         "Shape -> Shape -> ConstantOfShape(value=int64 1) -> Expand (identity broadcast). The int64 "
         "ConstantOfShape tensor attribute is not a parameter."),
    ):
        paths = {}
        for role in ("target", "source"):
            m = fn(models[role], role)
            ref = run(models[role], x)
            got = run(m, x)
            assert np.array_equal(ref, got), case
            paths[role] = os.path.join(OUT, f"{case}-{role}.onnx")
            onnx.save_model(m, paths[role])
        expected(case, paths["target"], paths["source"], data, "zscore_nchw", "argmax_c1", 4, "NCHW", desc,
                 swaps=(("conv", 1, "W"), ("conv", 3, "W"), ("conv", 1, "B")),
                 target_desc="TinyUNet(4 classes, logits) trained 300 steps on z-scored acdc phantoms, then rewritten",
                 source_desc="same architecture, different seed, trained on t1 phantoms, rewritten the same way")


def case_quant():
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic,
                                          quantize_static)
    va = np.load(os.path.join(HERE, "data", "acdc-val.npz"))
    data = save_npz("quant-unet-acdc.npz", va["images"][:N_VAL], va["labels"][:N_VAL])
    calib_im, _ = phantom_split("acdc", 8, "calib")
    calib = zscore(calib_im)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"image": calib[i:i + 1]} for i in range(len(calib))])

        def get_next(self):
            return next(self.it, None)

    src = {"target": os.path.join(HERE, "unet-acdc-seg.onnx"), "source": os.path.join(HERE, "unet-acdc-ae.onnx")}
    out = {}
    for fmt in ("qdq", "qdq-pc", "qoperator", "dynamic"):
        for role, p in src.items():
            dst = os.path.join(OUT, f"quant-{fmt}-unet-{role}.onnx")
            if fmt == "dynamic":
                quantize_dynamic(p, dst, op_types_to_quantize=["Conv"], weight_type=QuantType.QUInt8)
            else:
                quantize_static(p, dst, Reader(), quant_format=QuantFormat.QOperator if fmt == "qoperator" else QuantFormat.QDQ,
                                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=fmt == "qdq-pc",
                                op_types_to_quantize=["Conv", "ConvTranspose"])
            out[(fmt, role)] = dst
    for f in os.listdir(OUT):  # the quantizer leaves augmented-model temp files in some versions
        if f.endswith("-inferred.onnx") or f == "augmented_model.onnx":
            os.remove(os.path.join(OUT, f))
    float_target, float_source = onnx.load(src["target"]), onnx.load(src["source"])
    x = zscore(va["images"][:N_VAL])
    lb = va["labels"][:N_VAL].astype(np.int64)
    fb = summary(dice(run(float_target, x).argmax(1), lb, 4))
    fm, _ = swap(float_target, float_source, "conv", 1, "W")
    fs = summary(dice(run(fm, x).argmax(1), lb, 4))
    ref = {"float_reference": {"target": "models/unet-acdc-seg.onnx", "source": "models/unet-acdc-ae.onnx",
                               "baseline": fb, "conv1_W_swapped": fs}}
    common = ("Quantized with onnxruntime.quantization from the bundled float models (target unet-acdc-seg, source "
              "unet-acdc-ae), calibrated (MinMax) on 8 acdc phantoms (separate seed), per-tensor, activations "
              "uint8, weights int8; only Conv/ConvTranspose quantized; BatchNormalization nodes are left in float. "
              "Input/preprocessing as the bundled models (z-score). ")
    expected("quant-qdq-unet", out[("qdq", "target")], out[("qdq", "source")], data, "zscore_nchw", "argmax_c1", 4,
             "NCHW", common + "QDQ format: conv weights are int8 initializers '<W>_quantized' feeding "
             "DequantizeLinear (with '<W>_scale', '<W>_zero_point'); conv biases int32 behind DequantizeLinear. "
             "Swap = the quantized tensor, scale and zero point of the DequantizeLinear that feeds the conv's W "
             "all replaced by the source's (the dequantized weight becomes the source's). 'qdq_weights': RMSE, "
             "nRMSE and cosine of every QDQ conv W and B on the dequantized values (numpy).",
             extra={**ref, "qdq_weights": qdq_weight_metrics(*(onnx.load(out[("qdq", r)]) for r in ("target", "source")))},
             target_desc="QDQ copy of models/unet-acdc-seg.onnx", source_desc="QDQ copy of models/unet-acdc-ae.onnx")
    pc = [onnx.load(out[("qdq-pc", r)]) for r in ("target", "source")]
    expected("quant-qdq-pc-unet", out[("qdq-pc", "target")], out[("qdq-pc", "source")], data, "zscore_nchw",
             "argmax_c1", 4, "NCHW", common.replace("per-tensor", "per-channel") + "QDQ format, per-channel: conv "
             "weights int8 with one scale and zero point per output channel (axis 0; ConvTranspose axis 1), biases "
             "int32 per channel. Swaps: conv 1 W, conv 1 B, conv 9 (ConvTranspose) W, each the whole (quantized "
             "tensor, scale, zero point) triple of its DequantizeLinear replaced by the source's. 'qdq_weights': "
             "RMSE, nRMSE and cosine of every QDQ conv W and B on the dequantized values (numpy).",
             swaps=(("conv", 1, "W"), ("conv", 1, "B"), ("conv", 9, "W")), extra={"qdq_weights": qdq_weight_metrics(*pc)},
             target_desc="per-channel QDQ copy of models/unet-acdc-seg.onnx",
             source_desc="per-channel QDQ copy of models/unet-acdc-ae.onnx")
    expected("quant-qoperator-unet", out[("qoperator", "target")], out[("qoperator", "source")], data, "zscore_nchw",
             "argmax_c1", 4, "NCHW", common + "QOperator format: every Conv becomes QLinearConv (int8 weight, int32 bias); "
             "ConvTranspose and BatchNormalization stay float, with QuantizeLinear/DequantizeLinear around them. Swap = '<W>_quantized', '<W>_scale', '<W>_zero_point' of the first QLinearConv replaced by the "
             "source's.", swaps=(("qconv", 1, "W"),), extra=ref,
             target_desc="QOperator copy of models/unet-acdc-seg.onnx", source_desc="QOperator copy of models/unet-acdc-ae.onnx")
    expected("quant-dynamic-unet", out[("dynamic", "target")], out[("dynamic", "source")], data, "zscore_nchw",
             "argmax_c1", 4, "NCHW", "quantize_dynamic(op_types_to_quantize=['Conv'], weight uint8) of the bundled "
             "models: Conv becomes DynamicQuantizeLinear -> ConvInteger -> Cast -> Mul(scale) -> Add(bias). "
             "Swap = '<W>_quantized', '<W>_scale', '<W>_zero_point' of the first ConvInteger replaced by the source's.",
             swaps=(("qconv", 1, "W"),), extra=ref,
             target_desc="ConvInteger copy of models/unet-acdc-seg.onnx", source_desc="ConvInteger copy of models/unet-acdc-ae.onnx")


def case_pspnet():
    import segmentation_models_pytorch as smp
    import torch  # noqa: F401
    va_im, va_lb = phantom_split("acdc", N_VAL, "val")
    data = save_npz("smp-pspnet.npz", va_im, va_lb)
    paths = {}
    for role, domain in (("target", "acdc"), ("source", "rvsc")):
        tr_im, tr_lb = phantom_split(domain, N_TRAIN, "train")
        torch_seed("psp-init", role)
        net = smp.PSPNet("resnet18", encoder_weights=None, in_channels=1, classes=4)
        net = train_torch(net, zscore(tr_im), tr_lb.astype(np.int64), "ce", seed_of("psp-train", role), steps=300, lr=2e-3)
        paths[role] = os.path.join(OUT, f"smp-pspnet-{role}.onnx")
        export_torch(net, zscore(va_im[:4]), paths[role])
    expected("smp-pspnet", paths["target"], paths["source"], data, "zscore_nchw", "argmax_c1", 4, "NCHW",
             "segmentation_models_pytorch PSPNet(encoder resnet18, encoder_weights=None, encoder_depth=3 (default), "
             "in_channels=1, classes=4), torch.onnx.export(dynamo=True, optimize=False): BN kept, dynamic batch "
             "'batch', input 'image', output 'output' (logits). Unused encoder layers (layer3/4) are not in the graph.",
             target_desc="trained 300 steps (cross-entropy, Adam 2e-3 one-cycle) on z-scored acdc phantoms",
             source_desc="same architecture, different seed, trained 300 steps on z-scored rvsc phantoms")


def case_keras():
    import tensorflow as tf
    import tf_keras as keras
    import tf2onnx
    L = keras.layers

    def build():
        inp = L.Input((64, 64, 1), name="image")

        def block(x, c, n):
            for i in (1, 2):
                x = L.Conv2D(c, 3, padding="same", name=f"{n}_conv{i}")(x)
                x = L.BatchNormalization(name=f"{n}_bn{i}")(x)
                x = L.ReLU(name=f"{n}_relu{i}")(x)
            return x
        e1 = block(inp, 8, "enc1")
        e2 = block(L.MaxPooling2D(name="pool1")(e1), 16, "enc2")
        m = block(L.MaxPooling2D(name="pool2")(e2), 32, "mid")
        u2 = L.Conv2DTranspose(16, 2, strides=2, name="up2")(m)
        d2 = block(L.Concatenate(name="cat2")([u2, e2]), 16, "dec2")
        u1 = L.Conv2DTranspose(8, 2, strides=2, name="up1")(d2)
        d1 = block(L.Concatenate(name="cat1")([u1, e1]), 8, "dec1")
        out = L.Conv2D(4, 1, activation="softmax", name="probs")(d1)
        return keras.Model(inp, out, name="keras_unet")

    va_im, va_lb = phantom_split("acdc", N_VAL, "val")
    nhwc = np.ascontiguousarray(va_im.transpose(0, 2, 3, 1))
    data_nhwc = save_npz("keras-unet-nhwc.npz", nhwc, va_lb)
    data_nchw = save_npz("keras-unet-nchw.npz", va_im, va_lb)
    from tf2onnx.optimizer import back_to_back_optimizer as b2b
    # tf2onnx 1.17 has no option to keep BatchNormalization: Conv+BN is fused by the
    # 'remove_back_to_back' optimizer's ('Conv', 'BatchNormalization') rule. Dropping the whole
    # optimizer (optimizers=<defaults minus 'remove_back_to_back'>) keeps BN but also leaves
    # every Transpose pair around each op; we drop just that one rule for the BN-keeping exports.
    conv_bn_rule = b2b._func_map[("Conv", "BatchNormalization")]
    spec = (tf.TensorSpec((None, 64, 64, 1), tf.float32, name="image"),)
    paths = {}
    for role, domain in (("target", "acdc"), ("source", "t1")):
        keras.utils.set_random_seed(seed_of("keras", role) % (2 ** 31))
        tf.config.experimental.enable_op_determinism()
        tr_im, tr_lb = phantom_split(domain, N_TRAIN, "train")
        x = zscore(tr_im).transpose(0, 2, 3, 1)
        net = build()
        sched = keras.optimizers.schedules.CosineDecay(3e-3, STEPS)
        net.compile(keras.optimizers.Adam(sched), "sparse_categorical_crossentropy")
        rng = np.random.default_rng(seed_of("keras-order", role))
        idx = rng.integers(0, len(x), STEPS * BATCH)
        net.fit(x[idx], tr_lb[idx].astype(np.int64), batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
        want = net.predict(zscore(va_im).transpose(0, 2, 3, 1), verbose=0)
        for variant, kw in (("nhwc", dict()),
                            ("nchw", dict(inputs_as_nchw=["image"], outputs_as_nchw=["probs"])),
                            ("folded", dict())):
            if variant == "folded":
                b2b._func_map[("Conv", "BatchNormalization")] = conv_bn_rule
            else:
                b2b._func_map.pop(("Conv", "BatchNormalization"), None)
            try:
                mp, _ = tf2onnx.convert.from_keras(net, input_signature=spec, opset=17, **kw)
            finally:
                b2b._func_map[("Conv", "BatchNormalization")] = conv_bn_rule
            mp.producer_name = mp.producer_name + " (via reuse-audit/models/make_corpus.py)"
            bn = sum(n.op_type == "BatchNormalization" for n in mp.graph.node)
            assert (bn == 0) == (variant == "folded"), (variant, bn)
            feed = zscore(va_im) if variant == "nchw" else zscore(va_im).transpose(0, 2, 3, 1)
            got = run(mp, np.ascontiguousarray(feed))
            if variant == "nchw":
                got = got.transpose(0, 2, 3, 1)
            err = float(np.abs(got - want).max())
            assert err < 1e-4, (variant, err)
            p = os.path.join(OUT, f"keras-unet-{variant}-{role}.onnx")
            onnx.save_model(mp, p)
            paths[(variant, role)] = p
    td = "tf_keras UNet (8-16-32 channels, Conv-BN-ReLU x2 blocks, Conv2DTranspose up-sampling, 1x1 softmax head), " \
         "trained 300 steps (sparse CE, Adam cosine 3e-3) on z-scored acdc phantoms (NHWC)"
    sd = "same Keras model code, different seed, trained the same way on z-scored t1 phantoms"
    expected("keras-unet-nhwc", paths[("nhwc", "target")], paths[("nhwc", "source")], data_nhwc, "zscore_nhwc",
             "argmax_last", 4, "NHWC",
             "tf2onnx.convert.from_keras(opset=17) with tf2onnx's default optimizers except the one Conv+BN fusion "
             "rule (the ('Conv', 'BatchNormalization') entry of tf2onnx.optimizer.back_to_back_optimizer._func_map, "
             "removed for the export; tf2onnx has no flag for it): BN nodes survive. The default NHWC layout: input "
             "'image' N x 64 x 64 x 1; since C = 1 the optimizer turned the NHWC->NCHW Transpose after the input "
             "into a Reshape; output 'probs' N x 64 x 64 x 4 (softmax, channels last, Transpose before the Softmax). "
             "Data images are N x H x W x 1.", target_desc=td, source_desc=sd)
    expected("keras-unet-nchw", paths[("nchw", "target")], paths[("nchw", "source")], data_nchw, "zscore_nchw",
             "argmax_c1", 4, "NCHW",
             "The same Keras models as keras-unet-nhwc, exported with inputs_as_nchw=['image'] and "
             "outputs_as_nchw=['probs'] (and the BN-keeping optimizer set): input N x 1 x 64 x 64, output "
             "N x 4 x 64 x 64 softmax probabilities.", target_desc=td, source_desc=sd)
    expected("keras-unet-folded", paths[("folded", "target")], paths[("folded", "source")], data_nhwc, "zscore_nhwc",
             "argmax_last", 4, "NHWC",
             "The same Keras models exported with tf2onnx's defaults (all optimizers): BN folded into the "
             "convolutions (no BatchNormalization node; RM/RV/RW/RB cannot be audited). NHWC like keras-unet-nhwc.",
             target_desc=td, source_desc=sd)


def text_images(n, seed, h=64, w=256):
    """Synthetic text lines: black words (Pillow's bundled font) on a light, slightly noisy
    background; labels = the union of the word boxes shrunk as DB's training targets are
    (offset D = area * (1 - 0.4^2) / perimeter, PaddleOCR's shrink_ratio 0.4) (1 text, 0 background). Images are
    N x H x W x 3 uint8 (BGR order irrelevant: grey)."""
    from PIL import Image, ImageDraw, ImageFont
    rng = np.random.default_rng(seed)
    words = ["reuse", "audit", "ONNX", "tensor", "layer", "conv", "dice", "2026", "model", "swap",
             "PSPNet", "UNet", "batch", "norm", "source", "target", "42", "scan"]
    ims, lbs = [], []
    for _ in range(n):
        bg = int(rng.integers(200, 250))
        img = Image.new("L", (w, h), bg)
        lab = Image.new("L", (w, h), 0)
        d, dl = ImageDraw.Draw(img), ImageDraw.Draw(lab)
        y = int(rng.integers(4, 10))
        while y < h - 18:
            size = int(rng.integers(14, 20))
            font = ImageFont.load_default(size=size)
            x = int(rng.integers(4, 30))
            for _ in range(int(rng.integers(1, 4))):
                t = " ".join(rng.choice(words, size=int(rng.integers(1, 3))))
                box = d.textbbox((x, y), t, font=font)
                if box[2] > w - 4:
                    break
                d.text((x, y), t, fill=int(rng.integers(0, 60)), font=font)
                # DB's ground truth: the box shrunk by D = area * (1 - 0.4^2) / perimeter.
                bw, bh = box[2] - box[0], box[3] - box[1]
                off = bw * bh * (1 - 0.4 ** 2) / (2 * (bw + bh))
                dl.rectangle((round(box[0] + off), round(box[1] + off), round(box[2] - off), round(box[3] - off)), fill=1)
                x = box[2] + int(rng.integers(12, 40))
            y += size + int(rng.integers(6, 14))
        a = np.asarray(img, np.float64) + rng.normal(0, 4, (h, w))
        ims.append(np.repeat(np.clip(a, 0, 255).astype(np.uint8)[..., None], 3, axis=-1))
        lbs.append(np.asarray(lab, np.uint8))
    return np.stack(ims), np.stack(lbs)


def ocr_source(tgt, src):
    """Write case 8's source: the target with seeded Gaussian noise planted into every conv W
    (std 0.5 x the tensor's std) and every BN running mean (std 0.5 x its RMS). numpy + onnx
    only, so tests/third_party.rs can remake it in the tests' own venv (--ocr-source)."""
    m = onnx.load(tgt)
    rng = np.random.default_rng(seed_of("ocr-perturb"))
    slots = param_slots(m)
    for fam, layer, kind, name in slots:
        k, h, _ = resolve(m, name)
        a = get_array(k, h)
        if kind == "W":
            set_array(k, h, a + rng.normal(0, 0.5 * float(a.std()) + 1e-8, a.shape))
        elif kind == "RM":
            set_array(k, h, a + rng.normal(0, 0.5 * float(np.sqrt(np.mean(a ** 2))) + 1e-8, a.shape))
    m.producer_name = (m.producer_name or "") + " (perturbed by reuse-audit/models/make_corpus.py)"
    onnx.save_model(m, src)


def case_ocr():
    tgt = os.path.join(THIRD, "ch_PP-OCRv4_det_infer.onnx")
    if not os.path.exists(tgt):
        subprocess.run(["bash", os.path.join(HERE, "fetch_third_party.sh")], check=True)
    src = os.path.join(THIRD, "ch_PP-OCRv4_det_infer.perturbed.onnx")
    ocr_source(tgt, src)
    ims, lbs = text_images(12, seed_of("ocr-images"))
    data = save_npz("ocr-det-text.npz", ims, lbs)
    expected("ocr-det", tgt, src, data, "ocr_db", "prob_gt_0.5", 2, "NCHW",
             "PaddleOCR PP-OCRv4 DB text detector from the rapidocr-onnxruntime wheel (not committed; "
             "models/fetch_third_party.sh). Input 'x' float32 N x 3 x H x W (H, W multiples of 32), output "
             "N x 1 x H x W sigmoid probability map of shrunk text regions. rapidocr's config: "
             "mean=[0.5,0.5,0.5], std=[0.5,0.5,0.5], scale 1/255, BGR as read by cv2, limit_side_len=736, "
             "thresh=0.3 (binarization), box_thresh=0.5, unclip_ratio=1.6. rapidocr resizes so the short side is "
             ">= 736 (limit_type min); here the 64 x 256 images are fed at their own size (multiples of 32, the model "
             "accepts any). Labels are the word boxes shrunk like DB's training targets. Source = the same model with Gaussian "
             "noise planted into every conv W (std 0.5 x the tensor's std) and every BN running mean "
             "(std 0.5 x its RMS), seeded, written next to it.",
             wrong_rules={
                 "baseline_threshold_0.3": ("ocr_db", "prob_gt_0.3", "right preprocessing, rapidocr's thresh 0.3"),
                 "baseline_zscore_threshold_0_layout_fixed": ("zscore_nhwc_to_nchw", "gt_0",
                                                              "the tool's z-score and threshold 0, layout fixed (NHWC data transposed)"),
                 "baseline_zscore_threshold_0.5_layout_fixed": ("zscore_nhwc_to_nchw", "prob_gt_0.5",
                                                                "z-score instead of /255,-0.5,/0.5, right head, layout fixed"),
             },
             target_desc="target/third-party/ch_PP-OCRv4_det_infer.onnx (rapidocr-onnxruntime 1.4.4)",
             source_desc="the target with planted Gaussian noise in every conv W and BN running mean")


def gratings(n, seed):
    """Classification data: 16 x 16 sinusoidal gratings with noise. Class k (0..9) = orientation
    (k % 5) x 36 degrees at 2 (k < 5) or 4 (k >= 5) cycles per image; random phase, contrast
    0.5..1 and offset, orientation jitter 0.15 rad, Gaussian noise 0.9. Returns float32 N x 1 x 16 x 16 and int64 labels N."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:16, 0:16] / 16.0
    labels = rng.integers(0, 10, n)
    ims = []
    for k in labels:
        theta = np.pi * (k % 5) / 5 + rng.normal(0, 0.15)
        cycles = 2.0 if k < 5 else 4.0
        u = xx * np.cos(theta) + yy * np.sin(theta)
        g = rng.uniform(0.5, 1.0) * np.sin(2 * np.pi * cycles * u + rng.uniform(0, 2 * np.pi))
        ims.append(g + rng.uniform(-0.5, 0.5) + rng.normal(0, 0.9, g.shape))
    return np.stack(ims)[:, None].astype(np.float32), labels.astype(np.int64)


def case_classifier():
    """A tiny image classifier pair (10 classes) for --metric accuracy / agreement."""
    import torch
    import torch.nn as nn

    class TinyClassifier(nn.Module):
        """conv(1->8) BN ReLU, conv(8->16, stride 2) BN ReLU, global average pool, Linear(16->10)."""

        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                          nn.Conv2d(8, 16, 3, padding=1, stride=2), nn.BatchNorm2d(16), nn.ReLU())
            self.fc = nn.Linear(16, 10)

        def forward(self, x):
            return self.fc(self.features(x).mean(dim=(2, 3)))

    tr_im, tr_lb = gratings(2048, seed_of("classifier", "train"))
    va_im, va_lb = gratings(32, seed_of("classifier", "val"))
    x_tr, x_va = zscore_any(tr_im), zscore_any(va_im)
    paths = {}
    for role in ("target", "source"):
        torch.manual_seed(seed_of("classifier", role))
        net = train_torch(TinyClassifier(), x_tr, tr_lb, "ce", seed_of("classifier", role, "train"), steps=300)
        paths[role] = os.path.join(OUT, f"classifier-{role}.onnx")
        export_torch(net, x_va, paths[role])
    data = save_npz("classifier.npz", va_im, va_lb)
    target, source = onnx.load(paths["target"]), onnx.load(paths["source"])

    def classes_of(model):
        return run(model, x_va).argmax(1)

    def scored(pred, truth):
        per_class = dice(pred, truth, 10)
        return {"accuracy": float(np.mean(pred == truth)), "dice_per_class": per_class,
                "mean_fg_dice": float(np.mean(per_class[1:]))}

    base = classes_of(target)
    swaps = []
    for fam, layer, kind in (("conv", 1, "W"), ("conv", 2, "W"), ("bn", 1, "RM"), ("bn", 2, "RV")):
        m, info = swap(target, source, fam, layer, kind)
        pred = classes_of(m)
        acc = scored(pred, va_lb)
        agree = scored(pred, base)
        swaps.append({"family": fam, "layer": layer, "kind": kind, **info, "labels": acc,
                      "delta_accuracy": float(np.mean(base == va_lb)) - acc["accuracy"],
                      "agreement": agree["accuracy"], "agreement_dice_per_class": agree["dice_per_class"],
                      "delta_agreement": 1.0 - agree["accuracy"]})
    res = {
        "case": "classifier",
        "target": rel(paths["target"]),
        "source": rel(paths["source"]),
        "target_is": "TinyClassifier (conv-BN-ReLU x2, global average pool, Linear) trained 300 steps on z-scored gratings",
        "source_is": "same architecture and data, another seed",
        "data": rel(data),
        "data_images": {"shape": list(va_im.shape), "dtype": str(va_im.dtype)},
        "data_labels": {"shape": list(va_lb.shape), "dtype": str(va_lb.dtype)},
        "model": describe_io(target),
        "preprocessing": {"rule": "zscore_nchw", "description": PREPROCESS["zscore_nchw"][1]},
        "head": {"rule": "argmax_1", "description": "top-1: argmax over axis 1 of the N x 10 logits (ties: lower class)"},
        "classes": 10,
        "baseline": scored(base, va_lb),
        "swaps": swaps,
        "notes": "accuracy = mean(argmax == label); agreement = mean(argmax(swapped) == argmax(target)); "
                 "dice_per_class = Dice (F1) of each class over the 32 images, 1.0 when a class is neither "
                 "true nor predicted; agreement_dice_per_class = the same with the target's predictions as truth.",
        "computed_with": {"onnxruntime": ort.__version__, "onnx": onnx.__version__, "numpy": np.__version__,
                          "by": "models/make_corpus.py:case_classifier (onnxruntime + numpy only)"},
    }
    with open(os.path.join(OUT, "classifier.expected.json"), "w") as f:
        json.dump(res, f, indent=2)
        f.write("\n")
    print(f"  classifier: baseline accuracy {res['baseline']['accuracy']:.4f} | conv1 W swapped "
          f"{swaps[0]['labels']['accuracy']:.4f}, agreement {swaps[0]['agreement']:.4f}", flush=True)


CASES = {"keras": case_keras, "sigmoid": case_sigmoid, "raw": case_raw, "quant": case_quant,
         "const": case_const_and_cos, "pspnet": case_pspnet, "ocr": case_ocr, "classifier": case_classifier}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", choices=list(CASES))
    ap.add_argument("--ocr-source", nargs=2, metavar=("TARGET", "SOURCE"),
                    help="only write case 8's planted-perturbation source model (numpy + onnx; no corpus files)")
    a = ap.parse_args()
    if a.ocr_source:
        ocr_source(*a.ocr_source)
        return
    os.makedirs(OUT, exist_ok=True)
    try:
        import torch
        torch.set_num_threads(2)
    except ImportError:
        pass
    for name, fn in CASES.items():
        if a.only and name not in a.only:
            continue
        t0 = time.time()
        print(f"case {name}", flush=True)
        fn()
        print(f"case {name} done ({time.time() - t0:.0f}s)", flush=True)


if __name__ == "__main__":
    main()
