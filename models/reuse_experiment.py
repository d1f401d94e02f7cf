"""The paper's parameter reuse experiment, rerun on the bundled stand-ins (issue #13).

    cargo build --release
    nice -n 15 .venv/bin/python models/reuse_experiment.py     # everything (~45 min, 1 thread)
    .venv/bin/python models/reuse_experiment.py --dry-run      # what it would run, nothing trained

Target: ACDC-stand-in segmentation, trained from 10 or 50 slices (models/data/acdc-fewshot-*).
Sources: the bundled T1 auto-encoder, T1 segmentation and RVSC segmentation models. For each
net (UNet, PSPNet), the Rust tool audits every source against the bundled ACDC target
(`reuse-audit audit ... --plan`) and writes a plan; each run then starts from a random
initialisation (seeded), loads the plan's `reused.safetensors`, and either freezes the reused
tensors or fine-tunes them (the paper's 7 settings), and is scored on models/data/acdc-val.npz.

The practical variant (paper's conclusion, point 3): the random-init model of seed 0 (trained on
the few slices only) is exported to ONNX and becomes the audit target; the audit and the joint
check use those few training slices as data (nothing of the validation set). Its plans drive 6
more runs per net and size (results-practical.csv).

Writes reports/reuse-experiment/: results.csv, results-practical.csv, summary.md, figure.svg,
plans/*/plan.json (what each run loaded and froze), meta.json (settings, versions, wall time).
Work files (reports, safetensors, grafted models, finished runs) go to target/reuse-experiment/;
finished runs there are kept and reused when the settings match, so an interrupted run resumes.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_models import dice_per_class, export, seed_of  # noqa: E402
from nets import ARCHS  # noqa: E402
from phantoms import zscore  # noqa: E402
import reuse_report  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = os.path.join(HERE, "data")
SOURCES = ("t1-seg", "t1-ae", "rvsc-seg")  # the paper's table order: T1 seg, T1 auto, RVSC seg
SETTINGS = ("random",) + tuple(f"{s}-{m}" for s in SOURCES for m in ("freeze", "finetune"))
BATCH = 8
LR = 3e-3
RUN_SECONDS = {}  # key -> seconds its run took (kept in the cache, summed into meta.json)
CACHED = []  # keys of the runs found finished in the work folder


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nets", default="unet,pspnet")
    ap.add_argument("--samples", default="10,50", help="few-shot sizes (acdc-fewshot-N.npz)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=150, help=f"optimizer steps per run (batch {BATCH})")
    ap.add_argument("--practical-seeds", type=int, default=1,
                    help="seeds of the practical variant (plans against a few-shot target); 0 skips it")
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "reuse-audit"))
    ap.add_argument("--out", default=os.path.join(ROOT, "reports", "reuse-experiment"))
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "reuse-experiment"))
    ap.add_argument("--dry-run", action="store_true", help="check inputs, list the runs, train nothing")
    a = ap.parse_args()
    a.out, a.work, a.bin = (os.path.abspath(x) for x in (a.out, a.work, a.bin))
    a.nets = a.nets.split(",")
    a.samples = [int(s) for s in a.samples.split(",")]
    bad = [n for n in a.nets if n not in ARCHS]
    if bad or a.seeds < 1 or a.steps < 1 or a.practical_seeds > a.seeds:
        ap.error(f"bad --nets {bad} / --seeds / --steps / --practical-seeds (at most --seeds)")
    return a


def load_npz(path):
    if not os.path.exists(path):
        sys.exit(f"error: {path} is missing (make it with models/make_models.py)")
    d = np.load(path)
    return torch.from_numpy(zscore(d["images"])), torch.from_numpy(d["labels"].astype(np.int64))


def make_plan(args, target, source, data, dest):
    """Audit SOURCE against TARGET on DATA with the Rust tool and write the plan to DEST/plan."""
    plan = os.path.join(dest, "plan", "plan.json")
    if os.path.exists(plan):
        check_plan(os.path.dirname(plan), source)
        return os.path.dirname(plan)
    # Paths relative to the repository root: plan.json records them as given.
    rel = [os.path.relpath(p, ROOT) for p in (target, source, data)]
    cmd = [os.path.abspath(args.bin), "audit", *rel[:2], "--data", rel[2], "--normalize", "zscore",
           "--out", os.path.join(dest, "report"), "--plan", os.path.join(dest, "plan"), "-q"]
    print("$ reuse-audit", " ".join(cmd[1:7]), flush=True)
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    # Exit 1 is a verdict (gates), not a failure; 2 is bad input.
    if r.returncode not in (0, 1) or not os.path.exists(plan):
        sys.exit(f"error: reuse-audit failed ({r.returncode}) for {source}:\n{r.stderr}")
    print("  " + "\n  ".join(line for line in r.stdout.splitlines() if line.startswith(("plan:", "joint"))))
    check_plan(os.path.dirname(plan), source)
    return os.path.dirname(plan)


def check_plan(plan_dir, source):
    """Independent check of the Rust tool's files: reused.safetensors holds exactly the planned
    keys, each equal to the source ONNX file's initializer (read with onnx, not the tool)."""
    import onnx
    from onnx import numpy_helper
    from safetensors.numpy import load_file

    plan = json.load(open(os.path.join(plan_dir, "plan.json")))
    state = load_file(os.path.join(plan_dir, "reused.safetensors"))
    src = {i.name: numpy_helper.to_array(i) for i in onnx.load(source).graph.initializer}
    keys = {r["safetensors_key"] for r in plan["reuse"]}
    assert keys == set(state), f"{plan_dir}: safetensors keys differ from the plan"
    assert set(plan["freeze"]) <= keys, f"{plan_dir}: a frozen name is not reused"
    for r in plan["reuse"]:
        want = src[r["source_initializer"]]
        assert np.array_equal(state[r["safetensors_key"]], want), f"{plan_dir}: {r['safetensors_key']}"


def load_plan(net, plan_dir):
    """Load the plan's tensors into NET; return the set of names to freeze."""
    from safetensors.torch import load_file

    state = load_file(os.path.join(plan_dir, "reused.safetensors"))
    missing, unexpected = net.load_state_dict(state, strict=False)
    if unexpected:
        sys.exit(f"error: {plan_dir}: keys not in the model: {unexpected[:5]}")
    plan = json.load(open(os.path.join(plan_dir, "plan.json")))
    return set(plan["freeze"])


def frozen_bn(net, frozen):
    """BN modules with a frozen running statistic: kept in eval mode while training, so that
    they normalise by the reused statistics in training as in evaluation."""
    return [m for n, m in net.named_modules() if isinstance(m, torch.nn.BatchNorm2d)
            and {f"{n}.running_mean", f"{n}.running_var"} & frozen]


def train_run(net_name, n, seed, setting, plan_dir, steps, train_set, val_set):
    """One run: seeded init (the same for every setting of a seed), plan loaded, trained, scored."""
    torch.manual_seed(seed_of("reuse-init", net_name, n, seed))
    net = ARCHS[net_name]()
    frozen, bn_eval = set(), []
    if setting != "random":
        frozen = load_plan(net, plan_dir)
        if setting.endswith("-freeze"):
            for name, p in net.named_parameters():
                if name in frozen:
                    p.requires_grad_(False)
            bn_eval = frozen_bn(net, frozen)
    before = {k: v.clone() for k, v in net.state_dict().items() if k in frozen}
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=LR)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=steps)
    g = torch.Generator().manual_seed(seed_of("reuse-order", net_name, n, seed))
    x_all, y_all = train_set
    stream = torch.cat([torch.randperm(n, generator=g) for _ in range(steps * BATCH // n + 1)])
    net.train()
    for m in bn_eval:
        m.eval()
    for i in range(steps):
        idx = stream[i * BATCH:(i + 1) * BATCH]
        loss = F.cross_entropy(net(x_all[idx]), y_all[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    net.eval()
    if setting.endswith("-freeze"):
        after = net.state_dict()
        moved = [k for k in before if not torch.equal(before[k], after[k])]
        assert not moved, f"frozen tensors moved: {moved[:5]}"
    with torch.no_grad():
        pred = torch.cat([net(x).argmax(1) for x in val_set[0].split(16)])
    return net, dice_per_class(pred.numpy(), val_set[1].numpy())


def run_cached(args, key, fn):
    """(model, Dice) of FN(), unless WORK/runs/KEY.json holds its Dice under the same step
    count: then (None, Dice)."""
    path = os.path.join(args.work, "runs", key + ".json")
    if os.path.exists(path):
        rec = json.load(open(path))
        if rec["steps"] == args.steps:
            RUN_SECONDS[key] = rec["seconds"]
            CACHED.append(key)
            return None, rec["dice"]
    t0 = time.time()
    model, dice = fn()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    RUN_SECONDS[key] = round(time.time() - t0, 1)
    json.dump({"steps": args.steps, "dice": dice, "seconds": RUN_SECONDS[key]}, open(path, "w"))
    print(f"  {key}: mean {np.mean(dice):.4f} {[round(d, 4) for d in dice]} ({RUN_SECONDS[key]}s)",
          flush=True)
    return model, dice


def main():
    args = parse_args()
    torch.set_num_threads(1)
    t_start = time.time()
    if not os.path.exists(args.bin):
        sys.exit(f"error: {args.bin} is missing: run `cargo build --release` first")
    val_path = os.path.join(DATA, "acdc-val.npz")
    val_set = load_npz(val_path)
    runs = [(net, n, seed, s) for net in args.nets for n in args.samples
            for seed in range(args.seeds) for s in SETTINGS]
    practical = [(net, n, seed, s) for net in args.nets for n in args.samples
                 for seed in range(args.practical_seeds) for s in SETTINGS[1:]]
    if args.dry_run:
        for net in args.nets:
            for src in SOURCES:
                for f in (f"{net}-acdc-seg.onnx", f"{net}-{src}.onnx"):
                    if not os.path.exists(os.path.join(HERE, f)):
                        sys.exit(f"error: models/{f} is missing")
        for n in args.samples:
            load_npz(os.path.join(DATA, f"acdc-fewshot-{n}.npz"))
        print(f"{len(runs)} runs + {len(practical)} practical runs of {args.steps} steps "
              f"(batch {BATCH}); settings: {', '.join(SETTINGS)}; nothing trained (--dry-run)")
        return
    rows, prows = [], []
    for net in args.nets:
        plans = {}
        for src in SOURCES:
            plans[src] = make_plan(args, os.path.join(HERE, f"{net}-acdc-seg.onnx"),
                                   os.path.join(HERE, f"{net}-{src}.onnx"), val_path,
                                   os.path.join(args.work, "plans", f"{net}-{src}"))
        for n in args.samples:
            few = os.path.join(DATA, f"acdc-fewshot-{n}.npz")
            train_set = load_npz(few)
            for seed in range(args.seeds):
                for setting in SETTINGS:
                    plan = plans.get(setting.rsplit("-", 1)[0])
                    job = partial(train_run, net, n, seed, setting, plan, args.steps, train_set, val_set)
                    model, dice = run_cached(args, f"{net}-{n}-{setting}-{seed}", job)
                    rows.append((net, n, setting, seed, dice))
                    if setting == "random" and seed < args.practical_seeds:
                        prows += practical_runs(args, net, n, seed, model, few, train_set, val_set)
    reuse_report.write_all(args, rows, prows, SETTINGS, time.time() - t_start, sum(RUN_SECONDS.values()),
                           len(CACHED))


def practical_runs(args, net, n, seed, model, few, train_set, val_set):
    """Plans against the seed's own random-init model (trained on the N slices), audited on them."""
    work = os.path.join(args.work, "practical", f"{net}-{n}-s{seed}-{args.steps}")
    target = os.path.join(work, "target.onnx")
    if not os.path.exists(target):
        if model is None:  # its run was cached: train it again (same seed, same model)
            model, _ = train_run(net, n, seed, "random", None, args.steps, train_set, val_set)
        export(model, target)
    out = []
    for src in SOURCES:
        plan = make_plan(args, target, os.path.join(HERE, f"{net}-{src}.onnx"), few,
                         os.path.join(work, src))
        for mode in ("freeze", "finetune"):
            setting = f"{src}-{mode}"
            job = partial(train_run, net, n, seed, setting, plan, args.steps, train_set, val_set)
            _, dice = run_cached(args, f"practical-{net}-{n}-{setting}-{seed}", job)
            out.append((net, n, setting, seed, dice))
    return out


if __name__ == "__main__":
    main()
