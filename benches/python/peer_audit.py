"""The reference peer: the swap audit as a user writes it by hand with onnxruntime + numpy.

    python peer_audit.py TARGET SOURCE DATA.npz OUT.json [--batch 16] [--threads 0]

For every Conv/BatchNormalization parameter (paired by initializer name), rewrite the
initializer in the target, build a new session and run the full forward pass over the
validation set in batches; Dice per class (argmax, empty-empty = 1), mean over classes.
Writes {"seconds": ..., "baseline": mean, "swaps": {target_initializer: mean}}.
"""

import argparse
import json
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper


def zscore(x):
    m = x.mean(axis=(1, 2, 3), keepdims=True, dtype=np.float64)
    s = x.std(axis=(1, 2, 3), keepdims=True, dtype=np.float64)
    s[s == 0] = 1.0
    return ((x - m) / s).astype(np.float32)


def mean_dice(pred, gt, classes):
    out = []
    for k in range(classes):
        p, g = pred == k, gt == k
        den = int(p.sum()) + int(g.sum())
        out.append(1.0 if den == 0 else 2.0 * int((p & g).sum()) / den)
    return float(np.mean(out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("target")
    ap.add_argument("source")
    ap.add_argument("data")
    ap.add_argument("out")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    d = np.load(a.data)
    images = d["images"].astype(np.float64)
    images = zscore(images if images.ndim == 4 else images[:, None])
    labels = d["labels"].astype(np.int64)
    target, source = onnx.load(a.target), onnx.load(a.source)
    src = {t.name: numpy_helper.to_array(t) for t in source.graph.initializer}
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = a.threads

    def run(model):
        sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        return np.concatenate([sess.run(None, {name: images[i : i + a.batch]})[0] for i in range(0, len(images), a.batch)])

    # The parameters a user would swap: inputs 1.. of Conv/ConvTranspose/BatchNormalization.
    params = []
    inits = {t.name for t in target.graph.initializer}
    for n in target.graph.node:
        if n.op_type in ("Conv", "ConvTranspose", "BatchNormalization"):
            params += [x for x in n.input[1:] if x in inits and x in src]
    t0 = time.perf_counter()
    out = run(target)
    classes = out.shape[1]
    baseline = mean_dice(out.argmax(1), labels, classes)
    swaps = {}
    for name in params:
        m = onnx.ModelProto()
        m.CopyFrom(target)
        init = next(t for t in m.graph.initializer if t.name == name)
        init.CopyFrom(numpy_helper.from_array(src[name].astype(numpy_helper.to_array(init).dtype), name))
        swaps[name] = mean_dice(run(m).argmax(1), labels, classes)
    seconds = time.perf_counter() - t0
    json.dump({"seconds": seconds, "baseline": baseline, "swaps": swaps}, open(a.out, "w"))


if __name__ == "__main__":
    main()
