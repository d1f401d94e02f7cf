"""Independent check of reuse-audit's Dice numbers: onnx + onnxruntime + numpy only.

    python independent_check.py TARGET SOURCE DATA.npz REPORT.json [--every N] [--ignore L]

Rewrites the target's initializer with the source's (onnx.numpy_helper), builds a fresh
onnxruntime session, runs the whole validation set, takes the argmax and scores Dice per
class over the whole set (empty-empty = 1), exactly as METHOD.md defines it. Compares the
baseline and every N-th swap with the report to 1e-5. Exit code 1 on any mismatch.
With --ignore L, pixels labelled L are left out of every class's counts.
"""

import argparse
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper


def zscore(x):
    m = x.mean(axis=(1, 2, 3), keepdims=True, dtype=np.float64)
    s = x.std(axis=(1, 2, 3), keepdims=True, dtype=np.float64)
    s[s == 0] = 1.0
    return ((x - m) / s).astype(np.float32)


def dice(pred, gt, classes, ignore=None):
    keep = np.ones_like(gt, dtype=bool) if ignore is None else gt != ignore
    out = []
    for k in range(classes):
        p, g = (pred == k) & keep, (gt == k) & keep
        den = int(p.sum()) + int(g.sum())
        out.append(1.0 if den == 0 else 2.0 * int((p & g).sum()) / den)
    return out


def run(model, images):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: images[i : i + 16]})[0] for i in range(0, len(images), 16)])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("target")
    ap.add_argument("source")
    ap.add_argument("data")
    ap.add_argument("report")
    ap.add_argument("--every", type=int, default=7)
    ap.add_argument("--ignore", type=int, default=None)
    a = ap.parse_args()
    report = json.load(open(a.report))
    d = np.load(a.data)
    images = d["images"].astype(np.float64)
    if images.ndim == 3:
        images = images[:, None]
    images, labels = zscore(images), d["labels"].astype(np.int64)
    target, source = onnx.load(a.target), onnx.load(a.source)
    src = {t.name: numpy_helper.to_array(t) for t in source.graph.initializer}

    out = run(target, images)
    classes = out.shape[1]
    base = dice(out.argmax(1), labels, classes, a.ignore)
    failures = 0
    want = report["baseline"]["per_class"]
    err = max(abs(x - y) for x, y in zip(base, want))
    print(f"baseline: python {np.mean(base):.6f} report {report['baseline']['mean']:.6f} max|diff| per class {err:.2e}")
    failures += err > 1e-5
    rows = report["rows"]
    checked = 0
    for i, row in enumerate(rows):
        if i % a.every != 0 and i != len(rows) - 1:
            continue
        m = onnx.ModelProto()
        m.CopyFrom(target)
        init = next(t for t in m.graph.initializer if t.name == row["target_initializer"])
        new = numpy_helper.from_array(src[row["source_initializer"]].astype(numpy_helper.to_array(init).dtype), init.name)
        init.CopyFrom(new)
        got = float(np.mean(dice(run(m, images).argmax(1), labels, classes, a.ignore)))
        diff = abs(got - row["swapped_dice"])
        print(f"{row['family']} {row['layer']:>3} {row['kind']:<2}: python {got:.6f} report {row['swapped_dice']:.6f} diff {diff:.1e}")
        failures += diff > 1e-5
        checked += 1
    print(f"{checked} swaps checked, {failures} mismatches")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
