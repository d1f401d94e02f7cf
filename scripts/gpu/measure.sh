#!/usr/bin/env bash
# On a lent GPU machine, after stage.sh has put every part in /tmp/ortgpu and begun the real-size
# pair: unpack ONNX Runtime's CUDA build, wait for the pair, then the audits that matter most first,
# each under its own time limit and each copied to $OUT as soon as it ends (a call that runs out of
# time still returns what came before):
#   1. the bundled UNet on CUDA (smoke; the engine line);
#   2. the 500 slices with --adaptive (rounds of images, each swap stopping once decided), then
#      --adaptive --tf32: the speed goal's likeliest route, since the exact audit's FP32 ideal on
#      an H200 is ~114 s (run 3);
#   3. the 500 slices, default settings (TF32 off, cache in GPU memory, one worker): the exact
#      audit the adaptive ones are compared with;
#   3b. the exact audit with --tf32;
#   4. the GPU's own forward pass over the 500, TF32 off and on (the bench's child, BENCH);
#   5. the first 16 slices on the CPU, and on CUDA with and without TF32 (Dice compared);
#   6. the 500 slices with --tf32 on two CUDA workers (REUSE_AUDIT_CUDA_WORKERS=2);
#   7. the 500 slices, TF32 off, with the cache in host memory (REUSE_AUDIT_CACHE_ON_DEVICE=0);
#   8. the 500 slices, TF32 off, with the host work between runs (REUSE_AUDIT_OVERLAP_HOST=0);
#   9. the forward pass and the 500 slices with --tf32 and channels-last kernels (REUSE_AUDIT_CUDA_NHWC=1).
# STEPS (space-separated names: smoke adaptive-500 fp32-500 tf32-500 forward subset tf32-500-w2 host-500 inline-500 nhwc) picks
# some, in this order; all by default.
# Usage: scripts/gpu/measure.sh BENCH  (BENCH: target/release/deps/audit-HASH, carried with
# target/release/reuse-audit; the bench binary reads the repository at /work/main.)
set -uo pipefail
t0=$(date +%s)
el() { echo "$(( $(date +%s) - t0 )) s"; }
mkdir -p /tmp/ortgpu/lib && cat /tmp/ortgpu/part-* | LD_LIBRARY_PATH=$PWD/.gpu/zbin .gpu/zbin/zstd -d | tar x -C /tmp/ortgpu/lib || exit 1
export ORT_DYLIB_PATH=/tmp/ortgpu/lib/libonnxruntime.so.1.31.1
while pgrep -f make_realsize >/dev/null; do sleep 1; done
echo "--- pair ready ($(el))"; tail -3 /tmp/realsize.log; cp /tmp/realsize/MANIFEST.json "$OUT/" || exit 1
[ -e /work/main ] || { mkdir -p /work && ln -s "$PWD" /work/main; }
mkdir -p target/realsize && ln -sf /tmp/realsize/* target/realsize/
nvidia-smi --query-gpu=name,memory.total,memory.free --format=csv | tee "$OUT/gpu.txt"
BIN=./target/release/reuse-audit
T=target/realsize/unet34-target.onnx S=target/realsize/unet34-source.onnx

summary() { python3 - "$OUT/$1.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); t = r["timing"]
print(f"  {sys.argv[1].rsplit('/',1)[1]}: total {t['total_s']} s, baseline {t['baseline_s']} s, swaps {t['swaps_s']} s, "
      f"{t['image_forwards_per_s']}/s, rows {len(r['rows'])}, baseline Dice {r['baseline']['mean']:.6f}, engine {r['engine'].get('device')} tf32={r['settings'].get('tf32')}")
PY
}
# audit NAME LIMIT_S DATA [ENV=VALUE ...] -- [FLAGS ...]
audit() {
  local name=$1 limit=$2 data=$3; shift 3
  local envs=(); while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done; shift
  echo "--- $name ($(el)): ${envs[*]} $*"
  env REUSE_AUDIT_PROFILE=1 "${envs[@]}" timeout "$limit" $BIN audit $T $S --data "target/realsize/$data" \
    --min-baseline 0 --format json --out "/tmp/$name" "$@" >"/tmp/$name.log" 2>&1
  local rc=$?
  { echo "=== $name"; cat "/tmp/$name.log"; } >>"$OUT/all.log"
  grep -E "incremental:|error|total \(cpu" "/tmp/$name.log" | head -5
  echo "  rc=$rc ($(el))"
  [ -f "/tmp/$name/report.json" ] && cp "/tmp/$name/report.json" "$OUT/$name.json" && summary "$name"
}
forward() { # forward NAME TF32(0/1)
  echo "--- forward pass $1 ($(el))"
  REUSE_AUDIT_BENCH_TF32=$2 REUSE_AUDIT_BENCH_REALSIZE=cuda,target/realsize/val-500.npz timeout 120 "$BENCH" \
    | tee "$OUT/$1.csv"
}
BENCH=$1
STEPS=${STEPS:-smoke fp32-500 adaptive-500 tf32-500 forward subset tf32-500-w2 host-500 inline-500 nhwc}
want() { [[ " $STEPS " == *" $1 "* ]]; }

want smoke && { echo "--- smoke ($(el))"
timeout 60 $BIN audit models/unet-acdc-seg.onnx models/unet-acdc-ae.onnx --data models/data/acdc-val.npz \
  --device cuda --format json --out /tmp/smoke >/tmp/smoke.log 2>&1; echo "  rc=$?"
python3 -c "import json;r=json.load(open('/tmp/smoke/report.json'));print(r['engine'],r['timing'])"; }
want adaptive-500 && { audit rs-gpu-500-adaptive 200 val-500.npz -- --device cuda --adaptive
  audit rs-gpu-500-adaptive-tf32 150 val-500.npz -- --device cuda --adaptive --tf32; }
want fp32-500 && audit rs-gpu-500 300 val-500.npz -- --device cuda
want tf32-500 && audit rs-gpu-500-tf32 200 val-500.npz -- --device cuda --tf32
want forward && { forward forward-fp32 0; forward forward-tf32 1; }
want subset && {
audit rs-cpu-16 120 val-16.npz -- --device cpu
audit rs-gpu-16 60 val-16.npz -- --device cuda
audit rs-gpu-16-tf32 60 val-16.npz -- --device cuda --tf32
}
want tf32-500-w2 && audit rs-gpu-500-tf32-w2 200 val-500.npz REUSE_AUDIT_CUDA_WORKERS=2 -- --device cuda --tf32
want host-500 && audit rs-gpu-500-host 300 val-500.npz REUSE_AUDIT_CACHE_ON_DEVICE=0 -- --device cuda
want inline-500 && audit rs-gpu-500-inline 300 val-500.npz REUSE_AUDIT_OVERLAP_HOST=0 -- --device cuda
want nhwc && { REUSE_AUDIT_CUDA_NHWC=1 forward forward-tf32-nhwc 1
  audit rs-gpu-500-tf32-nhwc 200 val-500.npz REUSE_AUDIT_CUDA_NHWC=1 -- --device cuda --tf32; }
python3 - "$OUT" <<'PY'
import json, os, sys
load = lambda n: json.load(open(f"{sys.argv[1]}/{n}.json"))
def diff(a, b):
    d = max(abs(x["swapped_dice"] - y["swapped_dice"]) for x, y in zip(a["rows"], b["rows"]))
    return max(d, abs(a["baseline"]["mean"] - b["baseline"]["mean"])), sum(x["decision"] == y["decision"] for x, y in zip(a["rows"], b["rows"]))
for a, b in (("rs-cpu-16", "rs-gpu-16"), ("rs-cpu-16", "rs-gpu-16-tf32"), ("rs-gpu-500", "rs-gpu-500-tf32"),
             ("rs-gpu-500", "rs-gpu-500-adaptive"), ("rs-gpu-500", "rs-gpu-500-adaptive-tf32")):
    if all(os.path.exists(f"{sys.argv[1]}/{n}.json") for n in (a, b)):
        d, same = diff(load(a), load(b))
        print(f"{b} vs {a}: max |Dice diff| {d:.2e}; same decision {same}/{len(load(a)['rows'])}")
PY
echo "--- done ($(el))"
