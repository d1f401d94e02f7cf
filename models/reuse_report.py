"""Outputs of models/reuse_experiment.py: results CSVs, the summary beside the paper, the figure.

Everything but meta.json (which holds the wall time) is a function of the results alone, so a
rerun with the same results writes the same bytes.
"""

import json
import os
import platform

import numpy as np

# The paper's "Parameter reuse experiment" table (section 3.1, "Result of PSPNet"), as printed:
# class-0..3 and mean Dice. It gives no such table for the UNet. Row "6. RVSC_seg freeze" at 50
# samples is printed "0. 86" (read 0.86) with mean 0.72, although its four classes average 0.81.
PAPER_PSPNET = {
    10: {
        "random": (0.99, 0.62, 0.60, 0.70, 0.73),
        "t1-seg-freeze": (0.99, 0.47, 0.56, 0.67, 0.67),
        "t1-seg-finetune": (1.00, 0.48, 0.55, 0.71, 0.69),
        "t1-ae-freeze": (0.99, 0.70, 0.70, 0.84, 0.81),
        "t1-ae-finetune": (1.00, 0.75, 0.75, 0.88, 0.85),
        "rvsc-seg-freeze": (0.99, 0.57, 0.53, 0.72, 0.70),
        "rvsc-seg-finetune": (0.99, 0.54, 0.55, 0.74, 0.70),
    },
    50: {
        "random": (1.00, 0.81, 0.82, 0.90, 0.88),
        "t1-seg-freeze": (0.99, 0.69, 0.75, 0.84, 0.82),
        "t1-seg-finetune": (0.99, 0.67, 0.75, 0.84, 0.81),
        "t1-ae-freeze": (1.00, 0.84, 0.83, 0.90, 0.89),
        "t1-ae-finetune": (1.00, 0.86, 0.86, 0.93, 0.91),
        "rvsc-seg-freeze": (0.99, 0.70, 0.70, 0.86, 0.72),
        "rvsc-seg-finetune": (0.99, 0.67, 0.74, 0.82, 0.81),
    },
}
FAILED = 0.5  # a class below this Dice in a run counts as not learnt
NET_TITLE = {"unet": "UNet", "pspnet": "PSPNet"}
HEADER = "net,samples,setting,seed,dice_class_0,dice_class_1,dice_class_2,dice_class_3,dice_mean"


def write_csv(path, rows):
    lines = [HEADER]
    for net, n, setting, seed, dice in rows:
        vals = ",".join(f"{v:.6f}" for v in (*dice, float(np.mean(dice))))
        lines.append(f"{net},{n},{setting},{seed},{vals}")
    write(path, "\n".join(lines) + "\n")


def write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def stats(rows, net, n, setting):
    """(per-class means, mean-Dice mean, mean-Dice sd (ddof 1), count) over seeds."""
    d = np.array([r[4] for r in rows if r[:3] == (net, n, setting)], dtype=np.float64)
    if len(d) == 0:
        return None
    means = d.mean(1)
    sd = float(means.std(ddof=1)) if len(d) > 1 else float("nan")
    return d.mean(0), float(means.mean()), sd, len(d)


def plan_files(args, sources):
    """(variant, net, samples, seed, source, plan.json path) of every plan the runs used."""
    out = []
    for net in args.nets:
        for src in sources:
            out.append(("acdc-480", net, "", "", src,
                        os.path.join(args.work, "plans", f"{net}-{src}", "plan", "plan.json")))
        for n in args.samples:
            for seed in range(args.practical_seeds):
                for src in sources:
                    out.append((f"fewshot-{n}", net, n, seed, src,
                                os.path.join(args.work, "practical", f"{net}-{n}-s{seed}-{args.steps}",
                                             src, "plan", "plan.json")))
    return [o for o in out if os.path.exists(o[5])]


def plan_summary(args, sources):
    """plans.csv (one row per reused tensor) and a dict (variant, net, seed, source) -> line."""
    lines = ["plan_target,net,samples,seed,source,target_initializer,family,layer,kind,loss,frozen"]
    short = {}
    for variant, net, n, seed, src, path in plan_files(args, sources):
        plan = json.load(open(path))
        frozen = set(plan["freeze"])
        kinds = {}
        for r in plan["reuse"]:
            kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
            lines.append(f"{variant},{net},{n},{seed},{src},{r['target_initializer']},{r['family']},"
                         f"{r['layer']},{r['kind']},{r['loss']:.6f},{int(r['target_initializer'] in frozen)}")
        steps = (plan.get("verification") or {}).get("steps") or [{}]
        last = steps[-1]
        text = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])))
        report_path = os.path.join(os.path.dirname(os.path.dirname(path)), "report", "report.json")
        report = json.load(open(report_path))
        w = [r for r in report["rows"] if r["family"] == "conv" and r["kind"] == "W"]
        audit = (f"{'yes' if report['summary']['rn'] else 'no'} "
                 f"({report['summary']['conv_w_reusable_share']:.0%}) | "
                 f"{np.mean([r['rmse'] for r in w]):.4f} / {np.mean([r['nrmse'] for r in w]):.3f}")
        short[(variant, net, n, seed, src)] = (
            f"{audit} | {len(plan['reuse'])} ({text}); joint loss {last.get('loss', float('nan')):.4f} "
            f"after {len(steps) - 1} drop(s)")
    write(os.path.join(args.out, "plans.csv"), "\n".join(lines) + "\n")
    return short


def fmt(v):
    return "n/a" if np.isnan(v) else f"{v:.3f}"


def summary(args, rows, prows, settings, plans):
    out = ["# Parameter reuse experiment: results", "",
           f"Generated by `models/reuse_experiment.py` ({args.steps} steps of batch 8 per run, "
           f"{args.seeds} seed(s); Dice per class pooled over the 48 slices of "
           "`models/data/acdc-val.npz`; mean = mean of the 4 classes, background included, as "
           "in the paper). ± is the standard deviation of the mean Dice over seeds. "
           "Δ = setting − random init. failed = runs (seeds) in which some class scored Dice "
           f"< {FAILED} (a class never learnt). The paper's numbers are its PSPNet table (it gives none "
           "for the UNet).", ""]
    for net in args.nets:
        for n in args.samples:
            out += [f"## {NET_TITLE[net]}, {n} training slices", ""]
            paper = PAPER_PSPNET[n] if net == "pspnet" and n in PAPER_PSPNET else None
            head = "| # | setting | class-0 | class-1 | class-2 | class-3 | mean ± sd | Δ | failed |"
            if paper:
                head += " paper class-0..3 | paper mean | paper Δ |"
            out += [head, "|" + "---|" * (head.count("|") - 1)]
            base = stats(rows, net, n, "random")
            for i, s in enumerate(settings):
                st = stats(rows, net, n, s)
                if st is None:
                    continue
                cls, m, sd, count = st
                failed = sum(min(r[4]) < FAILED for r in rows if r[:3] == (net, n, s))
                line = (f"| {i + 1} | {s} | " + " | ".join(fmt(c) for c in cls)
                        + f" | {fmt(m)} ± {fmt(sd)} | {m - base[1]:+.3f} | {failed}/{count} |")
                if paper:
                    p = paper[s]
                    line += (" " + " / ".join(f"{c:.2f}" for c in p[:4]) + f" | {p[4]:.2f} | "
                             f"{p[4] - paper['random'][4]:+.2f} |")
                out.append(line)
            out.append("")
    if prows:
        out += ["## Practical variant: plans against a target trained on the few slices", "",
                "The audit target is the seed's own random-init model (the few slices only), "
                "audited on those slices; the same seed's runs with the plans made against the "
                "bundled ACDC model (trained on 480 slices) beside it.", "",
                "| net | slices | seed | setting | mean Dice, plan vs 480-slice target | "
                "mean Dice, plan vs few-shot target | difference |", "|---|---|---|---|---|---|---|"]
        for net, n, s, seed, dice in prows:
            ref = [r for r in rows if r[:4] == (net, n, s, seed)]
            a, b = float(np.mean(ref[0][4])), float(np.mean(dice))
            out.append(f"| {NET_TITLE[net]} | {n} | {seed} | {s} | {fmt(a)} | {fmt(b)} | {b - a:+.3f} |")
        out.append("")
    out += ["## Plans (tensors reused; joint check on the audit's data)", "",
            "RN: the audit's verdict (share of conv layers whose W is reusable). RMSE / nRMSE: "
            "conv W, mean over layers (the paper's predictor: smaller should transfer better).", "",
            "| plan made against | net | source | RN | conv W RMSE / nRMSE | tensors reused (by kind) |",
            "|---|---|---|---|---|---|"]
    for (variant, net, n, seed, src), text in plans.items():
        tgt = "bundled ACDC model (480 slices), on acdc-val" if variant == "acdc-480" else \
            f"seed {seed}'s random-init model, on its {n} training slices"
        out.append(f"| {tgt} | {NET_TITLE[net]} | {src} | {text} |")
    return "\n".join(out) + "\n"


def figure(args, rows, prows, settings, path):
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "reuse-experiment"
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(args.nets), figsize=(6 * len(args.nets), 5.2), squeeze=False)
    colors = {10: "tab:orange", 50: "tab:blue"}
    for ax, net in zip(axes[0], args.nets):
        for j, n in enumerate(args.samples):
            off = (j - (len(args.samples) - 1) / 2) * 0.25
            for i, s in enumerate(settings):
                pts = [float(np.mean(r[4])) for r in rows if r[:3] == (net, n, s)]
                ax.scatter([i + off] * len(pts), pts, s=12, color=colors.get(n, "k"), alpha=0.6)
                if pts:
                    ax.hlines(np.mean(pts), i + off - 0.1, i + off + 0.1, color=colors.get(n, "k"), lw=2,
                              label=f"{n} slices (ours)" if i == 0 else None)
                pp = [float(np.mean(r[4])) for r in prows if r[:3] == (net, n, s)]
                ax.scatter([i + off + 0.08] * len(pp), pp, s=22, marker="D", facecolors="none",
                           edgecolors=colors.get(n, "k"),
                           label=f"{n} slices, plan vs few-shot target" if i == 1 and pp else None)
                if net == "pspnet" and n in PAPER_PSPNET:
                    ax.scatter([i + off], [PAPER_PSPNET[n][s][4]], marker="x", color=colors[n],
                               label=f"{n} samples (paper)" if i == 0 else None)
        ax.set_xticks(range(len(settings)), settings, rotation=35, ha="right", fontsize=8)
        ax.set_ylabel("mean Dice (4 classes)")
        ax.set_title(f"{NET_TITLE[net]}: ACDC stand-in from few slices")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=2)
        lo = [min(np.mean(r[4]) for r in rows + prows if r[0] == net)]
        if net == "pspnet":
            lo += [PAPER_PSPNET[n][s][4] for n in args.samples if n in PAPER_PSPNET for s in settings]
        ax.set_ylim(min(lo) - 0.02, 1.0)
    fig.tight_layout()
    fig.savefig(path, metadata={"Date": None, "Creator": None})
    plt.close(fig)


def write_all(args, rows, prows, settings, wall_s, run_s, cached):
    import torch

    os.makedirs(args.out, exist_ok=True)
    write_csv(os.path.join(args.out, "results.csv"), rows)
    if prows:
        write_csv(os.path.join(args.out, "results-practical.csv"), prows)
    sources = list(dict.fromkeys(s.rsplit("-", 1)[0] for s in settings[1:]))
    plans = plan_summary(args, sources)
    write(os.path.join(args.out, "summary.md"), summary(args, rows, prows, settings, plans))
    figure(args, rows, prows, settings, os.path.join(args.out, "figure.svg"))
    meta = {"steps": args.steps, "batch": 8, "seeds": args.seeds, "practical_seeds": args.practical_seeds,
            "nets": args.nets, "samples": args.samples, "torch": torch.__version__,
            "threads": torch.get_num_threads(), "machine": platform.machine(),
            "wall_time_s_this_invocation": round(wall_s, 1), "runs_cached": cached,
            "run_seconds_total": round(run_s, 1), "runs": len(rows) + len(prows)}
    write(os.path.join(args.out, "meta.json"), json.dumps(meta, indent=2, sort_keys=True) + "\n")
    print(f"wrote {args.out}/ (results.csv, summary.md, figure.svg, plans.csv, meta.json) "
          f"in {wall_s:.0f}s", flush=True)
