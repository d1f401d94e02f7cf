#!/usr/bin/env bash
# On a lent GPU machine, after stage.sh has put every part in /tmp/ortgpu: unpack ONNX Runtime's
# CUDA build, wait for the real-size pair, check CUDA on the bundled UNet, then run the `realsize`
# case of `cargo bench` (its compiled bench binary, carried: BENCH) and copy the reports to $OUT.
# Usage: scripts/gpu/realsize.sh BENCH   (BENCH: target/release/deps/audit-HASH from
# `cargo bench --no-run`, carried with target/release/reuse-audit; both read the repository
# at the path they were built in, /work/main, which is where the lender puts the tree.)
# $OUT gets MANIFEST.json, bench.log and rs-*.json; the session committed them to reports/gpu/
# as MANIFEST.json, bench-*.log, report.json (rs-gpu-500), report-16-cuda.json, report-16-cpu.json.
set -uo pipefail
t0=$(date +%s)
mkdir -p /tmp/ortgpu/lib && cat /tmp/ortgpu/part-* | LD_LIBRARY_PATH=$PWD/.gpu/zbin .gpu/zbin/zstd -d | tar x -C /tmp/ortgpu/lib || exit 1
export ORT_DYLIB_PATH=/tmp/ortgpu/lib/libonnxruntime.so.1.31.1
while pgrep -f make_realsize >/dev/null; do sleep 2; done
cat /tmp/realsize.log; cp /tmp/realsize/MANIFEST.json "$OUT/" || exit 1
# The bench binary reads the repository at the path it was built in.
[ -e /work/main ] || { mkdir -p /work && ln -s "$PWD" /work/main; }
mkdir -p target/realsize target/pycheck/bin && ln -sf /tmp/realsize/* target/realsize/
ln -sf "$(command -v python3)" target/pycheck/bin/python
echo "--- smoke: bundled UNet on CUDA ($(( $(date +%s) - t0 )) s)"
./target/release/reuse-audit audit models/unet-acdc-seg.onnx models/unet-acdc-ae.onnx \
  --data models/data/acdc-val.npz --device cuda --format json --out /tmp/smoke 2>&1 | tail -5
python3 -c "import json;r=json.load(open('/tmp/smoke/report.json'));print(r['engine'])" || exit 1
# The quick A/B first (an earlier run timed out in the bench and lost what came after it):
# the 16 slices on CUDA with the incremental cache in host memory and in GPU memory
# (REUSE_AUDIT_CACHE_ON_DEVICE=0/1; GPU memory is the default since run 3, see
# reports/gpu/README.md; scripts/gpu/measure.sh is the newer, step-by-step script).
for mode in 0 1; do
  echo "--- 16 slices, cache on device=$mode ($(( $(date +%s) - t0 )) s)"
  REUSE_AUDIT_CACHE_ON_DEVICE=$mode ./target/release/reuse-audit audit target/realsize/unet34-target.onnx \
    target/realsize/unet34-source.onnx --data target/realsize/val-16.npz --device cuda --min-baseline 0 \
    --format json --out /tmp/cache$mode 2>&1 | grep -E "incremental:|error" ; cp /tmp/cache$mode/report.json "$OUT/rs-gpu-16-cache$mode.json"
done
python3 - "$OUT" <<'PY'
import json, sys
a, b = (json.load(open(f"{sys.argv[1]}/rs-gpu-16-cache{m}.json")) for m in (0, 1))
d = max(abs(x["swapped_dice"] - y["swapped_dice"]) for x, y in zip(a["rows"], b["rows"]))
print(f"cache on device vs not: max |Dice diff| {d:.2e}; timing off {a['timing']}; on {b['timing']}")
PY
echo "--- realsize bench ($(( $(date +%s) - t0 )) s)"
REUSE_AUDIT_PROFILE=1 REUSE_AUDIT_BENCH_KEEP=1 REUSE_AUDIT_BENCH_PAIRS=realsize REUSE_AUDIT_REALSIZE_CPU=16 "$1" --bench 2>&1 | tee "$OUT/bench.log"
bench_dir=$(ls -dt /tmp/reuse-audit-bench-* | head -1)
for r in rs-gpu-500 rs-gpu-16 rs-cpu-16; do
  cp "$bench_dir/$r/report.json" "$OUT/$r.json"
done
echo "--- CUDA --tf32 on the 16 slices ($(( $(date +%s) - t0 )) s)"
./target/release/reuse-audit audit target/realsize/unet34-target.onnx target/realsize/unet34-source.onnx \
  --data target/realsize/val-16.npz --device cuda --tf32 -q --min-baseline 0 --format json --out /tmp/tf32 \
  && cp /tmp/tf32/report.json "$OUT/rs-gpu-16-tf32.json"
python3 - "$OUT" <<'PY'
import json, sys
load = lambda n: json.load(open(f"{sys.argv[1]}/{n}.json"))
cpu = load("rs-cpu-16")
for name in ("rs-gpu-16", "rs-gpu-16-tf32"):
    g = load(name)
    d = max(abs(a["swapped_dice"] - b["swapped_dice"]) for a, b in zip(cpu["rows"], g["rows"]))
    d = max(d, abs(cpu["baseline"]["mean"] - g["baseline"]["mean"]))
    same = sum(a["decision"] == b["decision"] for a, b in zip(cpu["rows"], g["rows"]))
    print(f"{name} vs CPU: max |Dice diff| {d:.2e}; same decision {same}/{len(cpu['rows'])}; timing {g['timing']}")
PY
echo "--- done ($(( $(date +%s) - t0 )) s)"
