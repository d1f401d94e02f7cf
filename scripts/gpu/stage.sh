#!/usr/bin/env bash
# On a lent GPU machine (see ../../README.md "Running on a GPU" and the lender's recipe): keep one
# carried part of ONNX Runtime's CUDA build (.gpu/part-NN, made by pack-ort-gpu.sh) in /tmp/ortgpu,
# and with `start` also begin making the real-size pair in the background (models/make_realsize.py,
# trained on the GPU) while the other parts travel. Usage: scripts/gpu/stage.sh PART [start]
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
