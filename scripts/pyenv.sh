#!/usr/bin/env bash
# Makes (once) the Python environment of the independent check and the benchmark's peer:
# target/pycheck with onnxruntime 1.31.1 (the version reuse-audit loads), onnx and numpy.
# Prints the interpreter's path.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/pycheck
py="$venv/bin/python"
if ! "$py" -c "import onnx, onnxruntime, numpy" >/dev/null 2>&1; then
  python3 -m venv "$venv" >&2
  "$py" -m pip install -q --disable-pip-version-check onnxruntime==1.31.1 onnx==1.23.2 numpy >&2
fi
echo "$PWD/$py"
