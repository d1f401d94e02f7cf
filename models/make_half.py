"""Make the `half` fixtures of reuse-audit: half-precision exports of a tiny UNet pair, seeded,
on CPU.

    /work/corpus-venv/bin/pip install onnxconverter-common==1.16.0
    /work/corpus-venv/bin/python models/make_half.py

Writes tests/corpus/half*-{target,source}.onnx, bf16-{target,source}.onnx and
tests/corpus/half.expected.json; the validation data is tests/corpus/tiny-unet-acdc.npz (16
acdc phantoms, 64x64, made by models/make_corpus.py).

The pair: make_corpus.py's TinyUNet with 4 base channels (13 conv layers, 10 BN layers, 4
classes, logits), target trained 300 steps on acdc phantoms, source on t1 phantoms, each
exported with torch.onnx.export(dynamo=True, optimize=False) (BN kept) four ways:
  half-*.onnx          model.half(): float16 input, weights, activations and output
  half-mixed-*.onnx    the float32 export through onnxconverter_common's
                       convert_float_to_float16(keep_io_types=True): float32 input and
                       output, a Cast to float16 after the input and back before the output
  half-rounded-*.onnx  model.half().float(): float32 throughout, with the float16 weights
  bf16-*.onnx          model.bfloat16(): bfloat16 throughout (ONNX Runtime's CPU provider
                       refuses its Conv)
Node metadata (the exporter's stack traces) is dropped to keep the files small.

Expected numbers (onnxruntime CPU + numpy only, never reuse-audit code), in
half.expected.json:
  - `baseline`, `swaps`: Dice of the half-rounded pair (float32, the float16 weights) with the
    tool's default preprocessing for this model (per-image z-score) and argmax over classes;
    every conv/BN parameter swapped at the same (family, layer, kind) by position, as in
    tests/corpus/README.md. An exact float32 audit of the float16 pair must give these.
  - `bfloat16`: the same for model.bfloat16().float() exports (made here, not committed).
  - `float16_run_as_is`: ONNX Runtime running half-target.onnx as it is (float16 input; ORT
    inserts Casts around the ops it has no float16 kernel for, so activations are rounded to
    float16 between ops): how far a real float16 run is from the float32 audit.
  - `checks`: the stored weights of the four exports compared value for value.
"""

import copy
import json
import os
import sys
import tempfile
import time

import numpy as np
import onnx
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_corpus import (OUT, N_TRAIN, rel, seed_of, dice, summary, run, zscore_any,  # noqa: E402
                         phantom_split, train_torch, torch_mods, torch_seed, param_slots, swap, describe_io)
from phantoms import zscore  # noqa: E402

DATA = os.path.join(OUT, "tiny-unet-acdc.npz")
BASE = 4


def strip(model):
    """Drop node metadata and doc strings (the exporter's stack traces): same graph, smaller file."""
    for n in model.graph.node:
        del n.metadata_props[:]
        n.doc_string = ""
    return model


def export(net, x, dtype):
    """dynamo export (BN kept) of `net` taking `x` converted to `dtype` (a torch dtype)."""
    import torch
    batch = torch.export.Dim("batch", min=1, max=1024)
    prog = torch.onnx.export(net, (torch.from_numpy(x).to(dtype),), input_names=["image"], output_names=["output"],
                             dynamo=True, optimize=False, external_data=False, dynamic_shapes={"x": {0: batch}})
    model = strip(prog.model_proto)
    model.producer_name = "reuse-audit/models/make_half.py (torch dynamo export)"
    return model


def weights(model):
    return {t.name: numpy_helper.to_array(t).astype(np.float32) for t in model.graph.initializer}


def same_weights(a, b):
    """Whether every initializer of `a` has the same name and float32 values (bit for bit) in `b`."""
    wa, wb = weights(a), weights(b)
    if set(wa) != set(wb):
        return {"equal": False, "why": f"names differ: {sorted(set(wa) ^ set(wb))[:4]}"}
    diff = [k for k in wa if wa[k].shape != wb[k].shape or not np.array_equal(wa[k].view(np.uint32), wb[k].view(np.uint32))]
    return {"equal": not diff, "tensors": len(wa), "differing": diff}


def scores(target, source, x, labels):
    """Baseline and every conv/BN swap (by position) of a float32 pair: Dice, argmax."""
    base = summary(dice(run(target, x).argmax(1), labels, 4))
    rows = []
    for fam, layer, kind, _ in param_slots(target):
        m, info = swap(target, source, fam, layer, kind)
        got = summary(dice(run(m, x).argmax(1), labels, 4))
        rows.append({"family": fam, "layer": layer, "kind": kind, **info, "swapped": got,
                     "delta": base["mean"] - got["mean"]})
    return base, rows


def main():
    import torch
    torch.set_num_threads(2)
    t0 = time.time()
    _, TinyUNet = torch_mods()
    d = np.load(DATA)
    images, labels = d["images"], d["labels"].astype(np.int64)
    x = zscore_any(images)
    nets = {}
    for role, domain in (("target", "acdc"), ("source", "t1")):
        tr_im, tr_lb = phantom_split(domain, N_TRAIN, "train")
        torch_seed("half-init", role)
        nets[role] = train_torch(TinyUNet(out_ch=4, base=BASE), zscore(tr_im), tr_lb.astype(np.int64), "ce",
                                 seed_of("half-train", role))
    from onnxconverter_common import float16
    models, paths = {}, {}
    tmp = tempfile.mkdtemp()
    for role, net in nets.items():
        with torch.no_grad():
            rounded = copy.deepcopy(net).half().float().eval()
            brounded = copy.deepcopy(net).bfloat16().float().eval()
            want = rounded(torch.from_numpy(x[:4])).numpy()
        m = {
            "half": export(copy.deepcopy(net).half().eval(), x[:4], torch.float16),
            "half-rounded": export(rounded, x[:4], torch.float32),
            "bf16": export(copy.deepcopy(net).bfloat16().eval(), x[:4], torch.bfloat16),
            "bf16-rounded": export(brounded, x[:4], torch.float32),
        }
        m["half-mixed"] = float16.convert_float_to_float16(export(net, x[:4], torch.float32), keep_io_types=True)
        m["half-mixed"].producer_name = "reuse-audit/models/make_half.py (torch dynamo export, onnxconverter_common keep_io_types)"
        err = float(np.abs(run(m["half-rounded"], x[:4]) - want).max())
        assert err < 1e-3, (role, err)
        for k, model in m.items():
            where = tmp if k == "bf16-rounded" else OUT
            paths[(k, role)] = os.path.join(where, f"{k}-{role}.onnx")
            onnx.save_model(model, paths[(k, role)])
        models[role] = m
    checks = {
        f"{a} vs {b} ({role})": same_weights(models[role][a], models[role][b])
        for role in ("target", "source")
        for a, b in (("half", "half-rounded"), ("half-mixed", "half"), ("bf16", "bf16-rounded"))
    }
    base, rows = scores(models["target"]["half-rounded"], models["source"]["half-rounded"], x, labels)
    bbase, brows = scores(models["target"]["bf16-rounded"], models["source"]["bf16-rounded"], x, labels)
    as_is = run(models["target"]["half"], x.astype(np.float16)).astype(np.float32)
    as_is_base = summary(dice(as_is.argmax(1), labels, 4))
    up = run(models["target"]["half-rounded"], x)
    res = {
        "case": "half",
        "data": rel(DATA),
        "files": {k: {r: rel(paths[(k, r)]) for r in ("target", "source")}
                  for k in ("half", "half-mixed", "half-rounded", "bf16")},
        "target": rel(paths[("half", "target")]),
        "source": rel(paths[("half", "source")]),
        "reference": "half-rounded pair: float32 exports of model.half().float() (the float16 weights in float32)",
        "target_is": f"TinyUNet(base={BASE}, 4 classes, logits) trained 300 steps (cross-entropy) on acdc phantoms, z-scored input",
        "source_is": "same architecture, different seed, trained on t1 phantoms (inverted contrast)",
        "model": describe_io(models["target"]["half"]),
        "preprocessing": {"rule": "zscore_nchw", "description": "per-image z-score over C,H,W (float64 stats, population std), float32"},
        "head": {"rule": "argmax_c1", "description": "argmax over axis 1 (N x C x H x W output)"},
        "classes": 4,
        "baseline": base,
        "swaps": rows,
        "bfloat16": {
            "reference": "float32 exports of model.bfloat16().float() (made by the script, not committed)",
            "baseline": bbase,
            "swaps": brows,
        },
        "float16_run_as_is": {
            "baseline": as_is_base,
            "max_abs_logit_difference_to_float32": float(np.abs(as_is - up).max()),
            "argmax_agreement_with_float32": float((as_is.argmax(1) == up.argmax(1)).mean()),
            "note": "ONNX Runtime CPU running half-target.onnx as stored, float16 input (z-scored, then cast)",
        },
        "checks": checks,
        "seconds": round(time.time() - t0, 1),
    }
    with open(os.path.join(OUT, "half.expected.json"), "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")
    for k in ("half", "half-mixed", "half-rounded", "bf16"):
        for r in ("target", "source"):
            print(rel(paths[(k, r)]), os.path.getsize(paths[(k, r)]))
    print("baseline", base["mean"], "float16 as is", as_is_base["mean"], "bf16", bbase["mean"])
    print(json.dumps(checks, indent=1))


if __name__ == "__main__":
    main()
