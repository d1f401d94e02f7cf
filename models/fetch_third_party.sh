#!/usr/bin/env bash
# Fetch the third-party model of tests/corpus case 8 (not committed): the PaddleOCR PP-OCRv4
# DB text detector shipped inside the rapidocr-onnxruntime wheel, with pip's ordinary client.
#
#   bash models/fetch_third_party.sh            # -> target/third-party/ch_PP-OCRv4_det_infer.onnx
#   PYTHON=/work/corpus-venv/bin/python bash models/fetch_third_party.sh
#
# Then `python models/make_corpus.py --only ocr` writes the planted-perturbation source model
# next to it and recomputes tests/corpus/ocr-det.expected.json.
set -euo pipefail
VERSION=1.4.4
MODEL=ch_PP-OCRv4_det_infer.onnx
PY=${PYTHON:-python3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEST="$ROOT/target/third-party"
mkdir -p "$DEST"
"$PY" -m pip download --no-deps --only-binary=:all: "rapidocr-onnxruntime==$VERSION" -d "$DEST" >&2
WHEEL=$(ls "$DEST"/rapidocr_onnxruntime-"$VERSION"-*.whl | head -n 1)
"$PY" - "$WHEEL" "$DEST" "$MODEL" <<'PYEOF'
import sys, zipfile, os
wheel, dest, model = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.endswith("/" + model)]
    if not names:
        sys.exit(f"{model} not found in {wheel}")
    with z.open(names[0]) as f, open(os.path.join(dest, model), "wb") as out:
        out.write(f.read())
    cfg = [n for n in z.namelist() if n.endswith("config.yaml")]
    for c in cfg:  # keep rapidocr's config next to the model: it documents the preprocessing
        with z.open(c) as f, open(os.path.join(dest, "rapidocr-config.yaml"), "wb") as out:
            out.write(f.read())
print(os.path.join(dest, model))
PYEOF
sha256sum "$DEST/$MODEL"
