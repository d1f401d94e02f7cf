#!/usr/bin/env bash
# On a lent GPU machine (README "Running on a GPU"): keep one carried part of ONNX Runtime's CUDA
# build in /tmp/ortgpu, and with `start` also begin making the real-size pair in the background
# (models/make_realsize.py, trained on the GPU) while the other parts travel.
# Usage: scripts/gpu/stage.sh PART [start]
#
# Prepared on the developer machine, in git-ignored folders (.git/info/exclude) that each call carries:
# - .gpu/part-00..NN: the onnxruntime-gpu 1.31.1 libraries, tar | zstd -19 | split (the lender's
#   pack-ort-gpu.sh, outside this repository: pip download --no-deps onnxruntime-gpu==1.31.1, unzip
#   libonnxruntime.so*, libonnxruntime_providers_cuda.so and _shared.so). Parts of 56 MiB fit one
#   call only when the travelling tree is small: the session that ran it called from a temporary
#   branch holding only models/{make_realsize,phantoms}.py, the bundled UNet pair and its data.
# - .whl/segmentation_models_pytorch-0.6.0-py3-none-any.whl (its other needs are on the machine).
# - .gpu/zbin: a zstd binary and its libraries (the machine has none), for realsize.sh.
set -uo pipefail
mkdir -p /tmp/ortgpu && cp ".gpu/$1" /tmp/ortgpu/ && ls -la /tmp/ortgpu
if [ "${2:-}" = start ]; then
  nvidia-smi -L
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
  mkdir -p /tmp/rs && cp -r models/make_realsize.py models/phantoms.py /tmp/rs/
  (PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 setsid nohup python3 /tmp/rs/make_realsize.py /tmp/realsize \
     --train-device cuda >/tmp/realsize.log 2>&1 &)
fi
sleep 1; cat /tmp/realsize.log 2>/dev/null
