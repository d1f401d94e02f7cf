"""Seeded synthetic cardiac short-axis MRI phantoms in three domains.

Labels: 0 background, 1 right ventricle (RV), 2 myocardium, 3 left ventricle (LV).
The three domains stand in for the paper's data sets:

- ``acdc``: cine-like contrast, bright blood pools, dark myocardium.
- ``t1``:   native-T1-map-like contrast, dark blood, bright myocardium, more noise.
- ``rvsc``: wider field of view (smaller heart), large RV, low tissue contrast,
            strong bias field.
"""

import numpy as np

SIZE = 64

# Per-domain appearance and shape statistics.
DOMAINS = {
    "acdc": dict(
        scale=1.0, rv_scale=1.0, lv=(7.0, 10.0), myo=(3.0, 4.5),
        intensity={"bg": 0.03, "tissue": 0.45, "rv": 0.90, "myo": 0.25, "lv": 0.95},
        noise=0.04, bias=0.20, texture=0.05,
    ),
    "t1": dict(
        scale=1.05, rv_scale=0.9, lv=(6.5, 9.5), myo=(3.5, 5.0),
        intensity={"bg": 0.00, "tissue": 0.55, "rv": 0.20, "myo": 0.75, "lv": 0.15},
        noise=0.07, bias=0.15, texture=0.08,
    ),
    "rvsc": dict(
        scale=0.8, rv_scale=1.45, lv=(6.0, 9.0), myo=(2.5, 4.0),
        intensity={"bg": 0.10, "tissue": 0.60, "rv": 0.80, "myo": 0.35, "lv": 0.70},
        noise=0.06, bias=0.40, texture=0.06,
    ),
}


def _smooth_field(rng, yy, xx, amplitude, n_waves=4, max_freq=2.5, size=SIZE):
    """Sum of a few random low-frequency sinusoids: a smooth random field (frequencies in
    cycles per image, so the same field at any size)."""
    field = np.zeros_like(yy)
    for _ in range(n_waves):
        fy, fx = rng.uniform(-max_freq, max_freq, size=2) * 2 * np.pi / size
        phase = rng.uniform(0, 2 * np.pi)
        field += np.sin(fy * yy + fx * xx + phase)
    return amplitude * field / np.sqrt(n_waves)


def _radius_profile(rng, theta, base, wobble):
    """A deformed circle: base radius with low-order Fourier wobble in angle."""
    r = np.full_like(theta, base)
    for k in (2, 3):
        r += wobble * base * rng.normal() * np.cos(k * theta + rng.uniform(0, 2 * np.pi)) / k
    return r


def phantom(rng, domain, size=SIZE):
    """One slice: (image float32 HxW, label uint8 HxW) of `size` x `size` pixels. Lengths
    are in 64-pixel units scaled by size / 64, so a larger slice is the same anatomy at a
    finer resolution; at the default 64 every number is as it always was (x 1.0 is exact)."""
    p = DOMAINS[domain]
    k = size / SIZE
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    # Smooth random deformation of the coordinate grid.
    wy = yy + _smooth_field(rng, yy, xx, 1.5 * k, size=size)
    wx = xx + _smooth_field(rng, yy, xx, 1.5 * k, size=size)

    s = p["scale"] * k
    cy = size / 2 + rng.uniform(-5, 5) * k
    cx = size / 2 + rng.uniform(-4, 6) * k
    dy, dx = wy - cy, wx - cx
    dist = np.hypot(dy, dx)
    theta = np.arctan2(dy, dx)

    r_lv = _radius_profile(rng, theta, s * rng.uniform(*p["lv"]), 0.12)
    r_epi = r_lv + s * rng.uniform(*p["myo"])
    lv = dist < r_lv
    myo = (dist >= r_lv) & (dist < r_epi)

    # RV: a crescent on the left-hand side, hugging the septum.
    rv_angle = np.pi + rng.uniform(-0.35, 0.35)
    rv_off = r_epi.mean() * rng.uniform(0.75, 0.95)
    rcy, rcx = cy + rv_off * np.sin(rv_angle), cx + rv_off * np.cos(rv_angle)
    rv_a = s * p["rv_scale"] * rng.uniform(10.0, 13.0)
    rv_b = s * p["rv_scale"] * rng.uniform(6.0, 8.5)
    ry, rx = wy - rcy, wx - rcx
    ca, sa = np.cos(rv_angle + np.pi / 2), np.sin(rv_angle + np.pi / 2)
    u = (rx * ca + ry * sa) / rv_a
    v = (-rx * sa + ry * ca) / rv_b
    rv = (u ** 2 + v ** 2 < 1.0) & (dist >= r_epi + 1.0 * k)

    # Body: a big ellipse around the heart.
    by, bx = (wy - size / 2) / (size * 0.46), (wx - size / 2) / (size * 0.40)
    body = by ** 2 + bx ** 2 < 1.0

    label = np.zeros((size, size), np.uint8)
    label[rv] = 1
    label[myo] = 2
    label[lv] = 3

    it = p["intensity"]
    img = np.full((size, size), it["bg"])
    img[body] = it["tissue"]
    for name, mask in (("rv", rv), ("myo", myo), ("lv", lv)):
        img[mask] = it[name] * rng.uniform(0.9, 1.1)
    img += _smooth_field(rng, yy, xx, p["texture"], n_waves=6, max_freq=6.0, size=size) * body
    bias = 1.0 + _smooth_field(rng, yy, xx, p["bias"], n_waves=2, max_freq=0.8, size=size)
    img = img * bias + rng.normal(0, p["noise"], size=img.shape)
    return img.astype(np.float32), label


def dataset(domain, n, seed, size=SIZE):
    """n slices of one domain: images Nx1xHxW float32, labels NxHxW uint8."""
    rng = np.random.default_rng(seed)
    imgs, labs = zip(*(phantom(rng, domain, size) for _ in range(n)))
    return np.stack(imgs)[:, None], np.stack(labs)


def zscore(images):
    """Per-image z-score normalisation (the tool's default `--normalize zscore`)."""
    mean = images.mean(axis=(1, 2, 3), keepdims=True)
    std = images.std(axis=(1, 2, 3), keepdims=True)
    return ((images - mean) / np.maximum(std, 1e-8)).astype(np.float32)
