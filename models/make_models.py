"""Make every bundled model and data file of reuse-audit, seeded, on CPU.

    python3 -m venv .venv && .venv/bin/pip install -r models/requirements.txt
    .venv/bin/python models/make_models.py            # everything (data, 12+2 models, manifest)

Writes models/data/*, models/*.onnx, models/external/*, models/MANIFEST.json.
Each export is checked against the PyTorch output with onnxruntime before it is written.
"""

import argparse
import hashlib
import json
import os
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nets import ARCHS  # noqa: E402
from phantoms import DOMAINS, dataset, zscore  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
SEED = 20261124
N_TRAIN, N_VAL = 480, 48
NIFTI_SLICES = 8  # validation slices per NIfTI "patient" volume
EPOCHS = {"unet": 14, "pspnet": 18}
CLASSES = 4


def seed_of(*parts):
    """A stable per-purpose seed (independent of Python's hash randomisation)."""
    h = hashlib.sha256(("/".join(map(str, parts)) + f"/{SEED}").encode()).digest()
    return int.from_bytes(h[:4], "little")


def make_data():
    os.makedirs(DATA, exist_ok=True)
    sets = {}
    for d in DOMAINS:
        tr = dataset(d, N_TRAIN, seed_of("train", d))
        va = dataset(d, N_VAL, seed_of("val", d))
        np.savez_compressed(os.path.join(DATA, f"{d}-val.npz"), images=va[0], labels=va[1])
        sets[d] = (tr, va)
    for n in (10, 50):
        im, lb = dataset("acdc", n, seed_of("fewshot", n))
        np.savez_compressed(os.path.join(DATA, f"acdc-fewshot-{n}.npz"), images=im, labels=lb)
    write_nifti(*sets["acdc"][1])
    return sets


def write_nifti(images, labels):
    """The acdc validation split as ACDC-named volumes; slice k of a volume is [:, :, k]."""
    import gzip

    import nibabel as nib

    out = os.path.join(DATA, "acdc-nifti")
    os.makedirs(out, exist_ok=True)
    for p in range(len(images) // NIFTI_SLICES):
        sl = slice(p * NIFTI_SLICES, (p + 1) * NIFTI_SLICES)
        img = np.ascontiguousarray(np.moveaxis(images[sl, 0], 0, -1))
        gt = np.ascontiguousarray(np.moveaxis(labels[sl], 0, -1))
        name = f"patient{p + 1:03d}_frame01"
        for arr, suffix in ((img, ""), (gt, "_gt")):
            nii = nib.Nifti1Image(arr, np.diag([1.5, 1.5, 8.0, 1.0]))
            nii.header["descrip"] = b"reuse-audit synthetic phantom"
            raw = nii.to_bytes()
            # mtime=0 keeps the gzip bytes reproducible.
            with open(os.path.join(out, f"{name}{suffix}.nii.gz"), "wb") as f:
                with gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as gz:
                    gz.write(raw)


def dice_per_class(pred, gt):
    out = []
    for k in range(CLASSES):
        p, g = pred == k, gt == k
        den = p.sum() + g.sum()
        out.append(1.0 if den == 0 else float(2 * (p & g).sum() / den))
    return out


def pretrain_backbone(sets):
    """A stand-in for the paper's ImageNet-pretrained ResNet-18: the PSPNet backbone trained
    once as a denoising auto-encoder on a mix of all three domains. Every PSPNet model starts
    from it, as the paper's PSPNets start from the same pretrained backbone; UNets start from
    their own random initialisation."""
    torch.manual_seed(seed_of("pretrain"))
    net = ARCHS["pspnet"]()
    x_all = torch.from_numpy(zscore(np.concatenate([sets[d][0][0][:160] for d in DOMAINS])))
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(seed_of("pretrain-order"))
    net.train()
    for _ in range(6):
        perm = torch.randperm(len(x_all), generator=g)
        for i in range(0, len(perm) - 15, 16):
            x = x_all[perm[i : i + 16]]
            noisy = x + 0.3 * torch.randn(x.shape, generator=g)
            loss = F.mse_loss(net(noisy), x.expand(-1, 4, -1, -1))
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.backbone_state()


def train(arch, domain, task, train_set, backbone=None):
    torch.manual_seed(seed_of("init", arch, domain, task))
    net = ARCHS[arch]()
    if backbone is not None:
        net.load_state_dict(backbone, strict=False)
    x_all = torch.from_numpy(zscore(train_set[0]))
    y_all = torch.from_numpy(train_set[1].astype(np.int64))
    epochs = EPOCHS[arch]
    if backbone is not None:
        # Fine-tuning recipe for a pretrained backbone: it learns at a tenth of the rate.
        bb = [p for n, p in net.named_parameters() if n.split(".")[0] in net.BACKBONE]
        rest = [p for n, p in net.named_parameters() if n.split(".")[0] not in net.BACKBONE]
        groups = [{"params": bb, "lr": 3e-4}, {"params": rest, "lr": 3e-3}]
        max_lr = [3e-4, 3e-3]
    else:
        groups, max_lr = net.parameters(), 3e-3
    opt = torch.optim.Adam(groups, lr=3e-3)
    steps = epochs * (len(x_all) // 16)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=max_lr, total_steps=steps)
    g = torch.Generator().manual_seed(seed_of("order", arch, domain, task))
    net.train()
    for _ in range(epochs):
        perm = torch.randperm(len(x_all), generator=g)
        for i in range(0, len(perm) - 15, 16):
            idx = perm[i : i + 16]
            x, y = x_all[idx], y_all[idx]
            out = net(x)
            if task == "seg":
                loss = F.cross_entropy(out, y)
            else:  # auto-encoder: every output channel reconstructs the input
                loss = F.mse_loss(out, x.expand_as(out))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return net.eval()


def export(net, path, fold_bn=False, external=False):
    """Export with BatchNormalization kept (dynamo, optimize=False), dynamic batch."""
    x = torch.from_numpy(zscore(dataset("acdc", 4, seed_of("export"))[0]))
    batch = torch.export.Dim("batch", min=1, max=1024)
    prog = torch.onnx.export(
        net, (x,), input_names=["image"], output_names=["logits"],
        dynamo=True, optimize=fold_bn, external_data=False,
        dynamic_shapes={"x": {0: batch}},
    )
    model = prog.model_proto
    model.producer_name = "reuse-audit/models/make_models.py"
    if not fold_bn:
        assert any(n.op_type == "BatchNormalization" for n in model.graph.node), path
    else:
        assert not any(n.op_type == "BatchNormalization" for n in model.graph.node), path
    # Verify against PyTorch before writing.
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"image": x.numpy()})[0]
    with torch.no_grad():
        want = net(x).numpy()
    err = float(np.abs(got - want).max())
    assert err < 1e-3, f"{path}: onnxruntime differs from PyTorch by {err}"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if external:
        data_name = os.path.basename(path) + ".data"
        onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                        location=data_name, size_threshold=0)
    else:
        onnx.save_model(model, path)
    return err


def evaluate(path, images, labels, task):
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    out = sess.run(None, {"image": zscore(images)})[0]
    if task == "seg":
        return dice_per_class(out.argmax(1), labels)
    x = zscore(images)
    return float(((out - x) ** 2).mean())


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", nargs="*", help="e.g. unet-acdc-seg pspnet-t1-ae")
    args = ap.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    sets = make_data()
    manifest_path = os.path.join(HERE, "MANIFEST.json")
    old = json.load(open(manifest_path)) if os.path.exists(manifest_path) else {}
    scores = old.get("scores", {})
    backbone = None
    if not args.only or any(n.startswith("pspnet") for n in args.only):
        backbone = pretrain_backbone(sets)
    for arch in ARCHS:
        for domain in DOMAINS:
            for task in ("seg", "ae"):
                name = f"{arch}-{domain}-{task}"
                if args.only and name not in args.only:
                    continue
                t0 = time.time()
                net = train(arch, domain, task, sets[domain][0], backbone if arch == "pspnet" else None)
                path = os.path.join(HERE, f"{name}.onnx")
                err = export(net, path)
                if name == "unet-acdc-seg":
                    export(net, os.path.join(HERE, "unet-acdc-seg-folded.onnx"), fold_bn=True)
                    export(net, os.path.join(HERE, "external", f"{name}.onnx"), external=True)
                entry = {"export_max_abs_err": err}
                if task == "seg":
                    entry["val_dice"] = {
                        d: evaluate(path, *sets[d][1], "seg") for d in DOMAINS
                    }
                    own = entry["val_dice"][domain]
                    entry["own_domain_mean_fg_dice"] = float(np.mean(own[1:]))
                else:
                    entry["val_recon_mse"] = evaluate(path, *sets[domain][1], "ae")
                scores[name] = entry
                print(f"{name}: {entry} ({time.time() - t0:.0f}s)", flush=True)
    files = {}
    for root, _, names in os.walk(HERE):
        for n in sorted(names):
            p = os.path.join(root, n)
            rel = os.path.relpath(p, HERE)
            if rel.endswith((".onnx", ".data", ".npz", ".nii.gz")):
                files[rel] = {"sha256": sha256(p), "bytes": os.path.getsize(p)}
    manifest = {
        "made_by": "models/make_models.py",
        "seed": SEED,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": ort.__version__,
        "image_size": 64,
        "classes": ["background", "rv", "myocardium", "lv"],
        "normalization": "per-image z-score (reuse-audit --normalize zscore)",
        "train_slices_per_domain": N_TRAIN,
        "initialisation": "unet: own seeded random init per model; pspnet: backbone (stem, layer1-3) "
        "from one shared pretrained backbone (denoising auto-encoder on all domains), fine-tuned at "
        "lr/10, heads random",
        "val_slices_per_domain": N_VAL,
        "scores": scores,
        "files": dict(sorted(files.items())),
    }
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
