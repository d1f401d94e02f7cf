"""A held-out validation set for the adaptive-audit benchmark, seeded, numpy only.

    python3 models/make_heldout.py OUT.npz [N]      # default N = 240 acdc slices

The slices come from the same phantom generator as models/data/acdc-val.npz (models/
phantoms.py) with a seed of their own, so they are new images of the same domain. Not
committed: `cargo bench` makes it under target/ (about 4 MB for 240 slices).
"""

import hashlib
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from phantoms import dataset  # noqa: E402

SEED = 20261124  # models/make_models.py


def seed_of(*parts):
    """The seed scheme of models/make_models.py (stable, not Python's hash)."""
    h = hashlib.sha256(("/".join(map(str, parts)) + f"/{SEED}").encode()).digest()
    return int.from_bytes(h[:4], "little")


def main():
    out = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 240
    images, labels = dataset("acdc", n, seed_of("heldout", "acdc", n))
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    np.savez_compressed(out, images=images, labels=labels)
    print(f"{out}: {n} slices")


if __name__ == "__main__":
    main()
