"""The real-size benchmark pair of issue 15, seeded. Not committed (two ~98 MB models and a
~165 MB validation set): `cargo bench` reads them when REUSE_AUDIT_BENCH_PAIRS names
`realsize`.

    nice -n 15 /work/corpus-venv/bin/python models/make_realsize.py [OUT_DIR] [--steps N]

(any Python with torch, segmentation_models_pytorch, onnx and onnxruntime). Writes into
OUT_DIR (default target/realsize/):

- unet34-target.onnx: segmentation_models_pytorch Unet(encoder_name="resnet34",
  encoder_weights=None, in_channels=1, classes=4), trained briefly (--steps, default 120,
  Adam 1e-3, cross-entropy, batch 4) on random 128x128 crops of 256x256 acdc phantoms
  (models/phantoms.py at size 256: the same anatomy as the bundled 64x64 set at 4x the
  resolution). Crops keep the pixel scale of the 256x256 slices at a quarter of the FLOPs
  per step; the network is fully convolutional, so it is exported for 256x256.
- unet34-source.onnx: a perturbed copy of the target (not a trained counterpart: training a
  second network is CPU time this script does not spend). Every tensor of every conv and
  BN layer gets seeded noise of a size drawn per layer from {1%, 5%, 20%, 100%} of the
  tensor's own spread (running variances are multiplied by exp(noise) to stay positive),
  so some swaps cost nothing and some a lot, as between two trained networks.
- val-500.npz: 500 acdc phantoms of 256x256 (images N x 1 x 256 x 256 float32, labels
  N x 256 x 256 uint8), a seed of their own; uncompressed (the noise does not compress).
- val-16.npz, val-50.npz: the first 16 and 50 of them (the CPU benchmark's subsets).
- MANIFEST.json: what was made, sizes, sha256, the target's Dice on the validation set,
  the swap count, the training time.

Both models are exported with torch.onnx.export(dynamo=True, optimize=False) (where that
exporter fails, the TorchScript one at opset 17 with training=PRESERVE; MANIFEST.json says
which ran): every BN kept, dynamic batch, input `image`, output `logits`; onnxruntime is
checked against PyTorch before writing. --train-device cuda trains on a GPU (the run in
reports/gpu/ did).
"""

import argparse
import hashlib
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from phantoms import dataset, zscore  # noqa: E402

SEED = 20261124  # models/make_models.py
SIZE = 256
CROP = 128
N_TRAIN = 64
N_VAL = 500
LEVELS = (0.01, 0.05, 0.2, 1.0)


def seed_of(*parts):
    """The seed scheme of models/make_models.py (stable, not Python's hash)."""
    h = hashlib.sha256(("/".join(map(str, parts)) + f"/{SEED}").encode()).digest()
    return int.from_bytes(h[:4], "little")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def train(net, images, labels, steps, seed, device="cpu"):
    import torch
    import torch.nn.functional as F
    rng = np.random.default_rng(seed)
    net = net.to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()
    for step in range(steps):
        idx = rng.integers(0, len(images), size=4)
        ys, xs = rng.integers(0, SIZE - CROP + 1, size=(2, 4))
        x = np.stack([images[i, :, y:y + CROP, c:c + CROP] for i, y, c in zip(idx, ys, xs)])
        t = np.stack([labels[i, y:y + CROP, c:c + CROP] for i, y, c in zip(idx, ys, xs)])
        loss = F.cross_entropy(net(torch.from_numpy(x).to(device)), torch.from_numpy(t.astype(np.int64)).to(device))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 20 == 0 or step + 1 == steps:
            print(f"  step {step + 1}/{steps}: loss {loss.item():.3f}", flush=True)
    return net.cpu().eval()


def perturbed(net, seed):
    """A copy with per-layer seeded noise on every conv and BN tensor."""
    import copy
    import torch
    src = copy.deepcopy(net)
    rng = np.random.default_rng(seed)
    levels = {}
    with torch.no_grad():
        for name, module in src.named_modules():
            if not isinstance(module, (torch.nn.Conv2d, torch.nn.BatchNorm2d)):
                continue
            level = float(rng.choice(LEVELS))
            levels[name] = level
            for key, t in list(module.named_parameters(recurse=False)) + list(module.named_buffers(recurse=False)):
                if not t.dtype.is_floating_point:
                    continue
                noise = torch.from_numpy(rng.standard_normal(t.shape).astype(np.float32))
                if key == "running_var":
                    t.mul_(torch.exp(level * noise))
                else:
                    spread = float(t.std()) if t.numel() > 1 else abs(float(t)) or 1.0
                    t.add_(level * max(spread, 1e-3) * noise)
    return src, levels


def export(net, x, path):
    import onnx
    import onnxruntime as ort
    import torch
    exporter = "dynamo"
    try:
        batch = torch.export.Dim("batch", min=1, max=1024)
        prog = torch.onnx.export(net, (torch.from_numpy(x),), input_names=["image"], output_names=["logits"],
                                 dynamo=True, optimize=False, external_data=False,
                                 dynamic_shapes={"x": {0: batch}})
        model = prog.model_proto
    except Exception as e:  # an onnxscript that does not match this torch: the TorchScript exporter
        import io
        print(f"  dynamo export failed ({type(e).__name__}: {e}); using the TorchScript exporter", flush=True)
        buf = io.BytesIO()
        torch.onnx.export(net, (torch.from_numpy(x),), buf, input_names=["image"], output_names=["logits"],
                          dynamo=False, opset_version=17, training=torch.onnx.TrainingMode.PRESERVE,
                          do_constant_folding=False, dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
        model = onnx.load_from_string(buf.getvalue())
        exporter = "torchscript"
    model.producer_name = "reuse-audit/models/make_realsize.py"
    bns = sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    kept = sum(n.op_type == "BatchNormalization" for n in model.graph.node)
    assert kept == bns, f"{exporter} export kept {kept} of {bns} BatchNormalization layers"
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"image": x})[0]
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    err = float(np.abs(got - want).max())
    assert err < 1e-3, f"{path}: onnxruntime differs from PyTorch by {err}"
    onnx.save_model(model, path)
    return model, err, exporter


def dice(pred, labels, classes=4):
    out = []
    for k in range(classes):
        p, g = pred == k, labels == k
        denom = p.sum() + g.sum()
        out.append(1.0 if denom == 0 else float(2 * (p & g).sum() / denom))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", nargs="?", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "realsize"))
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--train-device", default="cpu",
                    help="where PyTorch trains the target: cpu (default) or cuda (a GPU machine; the "
                         "weights then differ from a CPU-trained target's, the recipe is the same)")
    args = ap.parse_args()
    import onnxruntime as ort
    import segmentation_models_pytorch as smp
    import torch
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)

    t0 = time.time()
    va_im, va_lb = dataset("acdc", N_VAL, seed_of("realsize", "val", N_VAL), size=SIZE)
    val = os.path.join(out, "val-500.npz")
    np.savez(val, images=va_im, labels=va_lb)
    for n in (16, 50):  # the CPU benchmark's subsets: the first n of the 500
        np.savez(os.path.join(out, f"val-{n}.npz"), images=va_im[:n], labels=va_lb[:n])
    print(f"{val}: {N_VAL} slices of {SIZE}x{SIZE} ({time.time() - t0:.0f} s)", flush=True)

    tr_im, tr_lb = dataset("acdc", N_TRAIN, seed_of("realsize", "train", N_TRAIN), size=SIZE)
    torch.manual_seed(seed_of("realsize", "init"))
    net = smp.Unet(encoder_name="resnet34", encoder_weights=None, in_channels=1, classes=4)
    t1 = time.time()
    net = train(net, zscore(tr_im), tr_lb, args.steps, seed_of("realsize", "train-order"), args.train_device)
    train_s = time.time() - t1
    source, levels = perturbed(net, seed_of("realsize", "perturb"))

    x = zscore(va_im[:2])
    paths = {"target": os.path.join(out, "unet34-target.onnx"), "source": os.path.join(out, "unet34-source.onnx")}
    graphs = {}
    for role, m in (("target", net), ("source", source)):
        graphs[role], err, exporter = export(m, x, paths[role])
        print(f"{paths[role]}: onnxruntime vs PyTorch max |diff| {err:.1e}", flush=True)

    # The target's Dice on the whole validation set (onnxruntime, batches of 25).
    sess = ort.InferenceSession(paths["target"], providers=["CPUExecutionProvider"])
    preds = np.concatenate([sess.run(None, {"image": zscore(va_im[i:i + 25])})[0].argmax(1)
                            for i in range(0, N_VAL, 25)])
    per_class = dice(preds, va_lb)
    g = graphs["target"].graph
    convs = sum(n.op_type == "Conv" for n in g.node)
    bns = sum(n.op_type == "BatchNormalization" for n in g.node)
    inits = {t.name for t in g.initializer}
    conv_params = sum(sum(1 for i in n.input[1:] if i in inits) for n in g.node if n.op_type == "Conv")
    manifest = {
        "made_by": "models/make_realsize.py",
        "architecture": "segmentation_models_pytorch Unet(encoder_name='resnet34', encoder_weights=None, in_channels=1, classes=4), 256x256",
        "target": f"trained on {args.train_device} {args.steps} steps (Adam 1e-3, cross-entropy, batch 4 random {CROP}x{CROP} crops of {N_TRAIN} 256x256 acdc phantoms) in {train_s:.0f} s",
        "source": f"perturbed copy of the target: per conv/BN layer, noise of {list(LEVELS)} x the tensor's std (running_var x exp(noise))",
        "perturbation_levels": levels,
        "exporter": exporter,
        "validation": f"{N_VAL} acdc phantoms {SIZE}x{SIZE}, seed_of('realsize', 'val', {N_VAL})",
        "target_dice_per_class": per_class,
        "target_mean_dice": float(np.mean(per_class)),
        "conv_layers": convs,
        "bn_layers": bns,
        "swaps_all_kinds": conv_params + 4 * bns,
        "files": {os.path.basename(p): {"bytes": os.path.getsize(p), "sha256": sha256(p)}
                  for p in [paths["target"], paths["source"], val]},
        "seconds": round(time.time() - t0),
    }
    with open(os.path.join(out, "MANIFEST.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    print(json.dumps({k: manifest[k] for k in ("target_mean_dice", "target_dice_per_class", "conv_layers", "bn_layers", "swaps_all_kinds", "seconds")}))


if __name__ == "__main__":
    main()
