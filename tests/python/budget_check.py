"""Independent check of reuse-audit's noise budget: onnx + onnxruntime + numpy only.

    python budget_check.py TARGET DATA.npz REPORT.json [--rows N] [--draws D]

For N rows of REPORT.json (an `audit --budget` report) whose budget lies inside the grid
(`rmse_budget` and `rmse_budget_next` both set), spread over the layers, the target's
initializer gets zero-mean Gaussian noise scaled to an exact RMSE; the whole model runs on
the validation set in a fresh onnxruntime session (z-score per image, as the report's
`dataset.normalize` says), the argmax is scored by mean Dice over the set (empty-empty = 1)
as METHOD.md defines it, and the loss is the baseline's mean Dice minus the noisy one.

1. Replay: the tool's own draws, rebuilt here from the README's definition (SplitMix64
   seeded by the initializer's name and the draw, Box-Muller, unit RMS), at rmse_budget and
   rmse_budget_next: their mean losses must equal the report's budget_loss and
   budget_next_loss (to 1e-4), the first within the tolerance and the second over it.
2. Fresh draws: D draws of numpy's own generator. Noise of RMSE rmse_budget should cost
   about the tolerance: printed, the mean loss at rmse_budget against the tolerance plus a
   slack for the draw-to-draw spread, and one grid step up against the tolerance minus it
   (3 standard errors of the difference between the tool's mean over its draws and this one
   over D, the spread measured here, plus 0.002). The losses are heavy-tailed (a rare
   direction costs ten times the typical one), so a few draws can put the crossing a few
   steps off. Required: where the fresh mean crosses the tolerance (walking from the tool's
   bracket by factors of 1.25, same draws) lies within a factor of 2 of rmse_budget.
Exit code 1 on a replay mismatch or a crossing farther than a factor of 2.
"""

import argparse
import json
import math
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


def mean_dice(pred, gt, classes):
    out = []
    for k in range(classes):
        p, g = pred == k, gt == k
        den = int(p.sum()) + int(g.sum())
        out.append(1.0 if den == 0 else 2.0 * int((p & g).sum()) / den)
    return float(np.mean(out))


def run(model, images):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: images[i : i + 16]})[0] for i in range(0, len(images), 16)])


MASK = (1 << 64) - 1
SEED = 0x7265_7573_655F_6175  # the bootstrap's seed
BUDGET_SALT = 0x6275_6467_6574  # "budget"
GOLDEN = 0x9E37_79B9_7F4A_7C15


def fnv1a(name):
    h = 0xCBF2_9CE4_8422_2325
    for b in name.encode():
        h = ((h ^ b) * 0x0100_0000_01B3) & MASK
    return h


def tool_direction(name, draw, n):
    """The tool's unit-RMS Gaussian draw `draw` for initializer `name` (README: --budget)."""
    state = SEED ^ BUDGET_SALT ^ fnv1a(name) ^ (((draw + 1) * GOLDEN) & MASK)

    def unit():
        nonlocal state
        state = (state + GOLDEN) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58_476D_1CE4_E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D0_49BB_1331_11EB) & MASK
        return ((z ^ (z >> 31)) >> 11) / float(1 << 53)

    z = []
    while len(z) < n:
        u1, u2 = 1.0 - unit(), unit()
        radius, angle = math.sqrt(-2.0 * math.log(u1)), math.tau * u2
        z += [radius * math.cos(angle), radius * math.sin(angle)]
    z = np.array(z[:n])
    return z / math.sqrt(float(np.sum(z * z)) / n)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("target")
    ap.add_argument("data")
    ap.add_argument("report")
    ap.add_argument("--rows", type=int, default=3)
    ap.add_argument("--draws", type=int, default=8)
    a = ap.parse_args()
    report = json.load(open(a.report))
    assert report["dataset"]["normalize"] == "zscore" and report["dataset"]["mean_std"] is None, report["dataset"]
    assert report["settings"]["metric"] == "dice", report["settings"]["metric"]
    tol = report["settings"]["tolerance"]
    tool_draws = report["budget"]["draws"]
    d = np.load(a.data)
    images = d["images"].astype(np.float64)
    if images.ndim == 3:
        images = images[:, None]
    images, labels = zscore(images), d["labels"].astype(np.int64)
    target = onnx.load(a.target)
    out = run(target, images)
    classes = out.shape[1]
    base = mean_dice(out.argmax(1), labels, classes)
    print(f"baseline: python {base:.6f} report {report['baseline']['mean']:.6f}")
    failures = 0
    if abs(base - report["baseline"]["mean"]) > 1e-5:
        failures += 1

    inside = [r for r in report["rows"] if r.get("rmse_budget") is not None and r.get("rmse_budget_next") is not None]
    if not inside:
        print("no row with a budget inside the grid")
        sys.exit(1)
    picks = sorted({round(i * (len(inside) - 1) / max(a.rows - 1, 1)) for i in range(a.rows)})
    rng = np.random.default_rng(20260512)
    checked = 0
    for i in picks:
        row = inside[i]
        label = f"{row['family']} {row['layer']:>3} {row['kind']:<2}"
        init = next(t for t in target.graph.initializer if t.name == row["target_initializer"])
        t = numpy_helper.to_array(init).astype(np.float64)

        def loss(r, z):
            m = onnx.ModelProto()
            m.CopyFrom(target)
            mi = next(x for x in m.graph.initializer if x.name == init.name)
            noisy = (t + r * z).astype(np.float32)
            assert abs(np.sqrt(np.mean((noisy.astype(np.float64) - t) ** 2)) - r) <= 1e-3 * r
            mi.CopyFrom(numpy_helper.from_array(noisy, init.name))
            y = run(m, images)
            # A non-finite output predicts nothing: counted as a total loss.
            return base - mean_dice(y.argmax(1), labels, classes) if np.isfinite(y).all() else np.inf

        # 1. Replay of the tool's draws.
        tool = [tool_direction(init.name, d, t.size).reshape(t.shape) for d in range(tool_draws)]
        ok = True
        for key, want_key, within in (("rmse_budget", "budget_loss", True), ("rmse_budget_next", "budget_next_loss", False)):
            got = float(np.mean([loss(row[key], z) for z in tool]))
            same = abs(got - row[want_key]) <= 1e-4 and ((got <= tol) == within)
            ok &= same
            print(f"{label} replay {key} {row[key]:.4e}: python {got:.6f} report {row[want_key]:.6f}: {'ok' if same else 'MISMATCH'}")

        # 2. Fresh draws.
        fresh = [rng.standard_normal(t.shape) for _ in range(a.draws)]
        fresh = [z / np.sqrt(np.mean(z * z)) for z in fresh]
        cache = {}

        def fresh_mean(r):
            if r not in cache:
                ls = np.array([loss(r, z) for z in fresh])
                sd = float(np.std(ls, ddof=1)) if np.isfinite(ls).all() else 0.0
                cache[r] = (float(np.mean(ls)), 3.0 * sd * np.sqrt(1.0 / tool_draws + 1.0 / a.draws) + 0.002)
            return cache[r]

        r0, r1 = row["rmse_budget"], row["rmse_budget_next"]
        (m0, s0), (m1, s1) = fresh_mean(r0), fresh_mean(r1)
        for name, r, m, sl, good in (
            ("at budget", r0, m0, f"<= tolerance {tol} + {s0:.4f}", m0 <= tol + s0),
            ("one step up", r1, m1, f"> tolerance {tol} - {s1:.4f}", m1 > tol - s1),
        ):
            print(f"{label} fresh  {name} {r:.4e}: loss {m:.4f} over {a.draws} draws {sl}: {'yes' if good else 'no'}")
        # Where the fresh mean crosses the tolerance, walking from the tool's bracket by
        # factors of 1.25 on the same draws: within a factor of 2 of rmse_budget.
        factor = 1.0
        if m0 > tol:
            r = r0
            while r > r0 / 2.0 and fresh_mean(r)[0] > tol:
                r /= 1.25
            factor = r0 / r if fresh_mean(r)[0] <= tol else math.inf
        elif m1 <= tol:
            r = r1
            while r < 2.0 * r0 and fresh_mean(r)[0] <= tol:
                r *= 1.25
            factor = r / r0 if fresh_mean(r)[0] > tol else math.inf
        close = factor <= 2.0
        where = "inside the tool's bracket" if factor == 1.0 else f"a factor {factor:.2f} {'below' if m0 > tol else 'above'} rmse_budget"
        print(f"{label} fresh  the mean loss crosses the tolerance {where}: {'ok' if close else 'FAIL'}")
        ok &= close
        failures += not ok
        checked += 1
    print(f"{checked} budgets checked, {failures} failures")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
