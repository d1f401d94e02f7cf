"""Seed corpora for the fuzz targets (fuzz/corpus/TARGET/seed-*), from the test fixtures
and small files made here. Run from the repository root with a Python that has numpy and
onnx: python fuzz/seeds.py. Deterministic (fixed seeds); `cargo fuzz cmin` then keeps the
inputs that add coverage."""

import gzip
import io
import os
import struct
import zipfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "corpus")
rng = np.random.default_rng(14)


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def npy(a, fortran=False):
    b = io.BytesIO()
    np.lib.format.write_array(b, np.asfortranarray(a) if fortran else a)
    return b.getvalue()


def npz(arrays, deflate):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED) as z:
        for k, v in arrays.items():
            z.writestr(k + ".npy", npy(v))
    return b.getvalue()


# --- npy: [settings][split/64] images [labels] ---
imgs = rng.standard_normal((2, 8, 8)).astype(np.float32)
labs = rng.integers(0, 4, (2, 8, 8)).astype(np.uint8)
for i, (a, l, settings) in enumerate([
    (imgs, labs, 0),
    (rng.standard_normal((2, 1, 8, 8)).astype(np.float32), None, 9),
    (rng.standard_normal((2, 8, 8, 3)).astype(">f2"), None, 0x2C),
    (rng.integers(0, 255, (3, 6, 5)).astype(np.uint8), rng.integers(0, 3, (3,)).astype(np.int64), 0x41),
    (rng.standard_normal((2, 3, 4, 4)), None, 0xC3),
]):
    image_bytes = npy(a, fortran=(i == 4))
    if l is None:
        put("npy", f"{i}", bytes([settings, 0]) + image_bytes)
    else:
        # The labels start at a multiple of 64 bytes: the images padded up to it (npy
        # readers ignore bytes after the data).
        split = (len(image_bytes) + 63) // 64
        filler = b"\0" * (split * 64 - len(image_bytes))
        put("npy", f"{i}", bytes([settings, split]) + image_bytes + filler + npy(l))

# --- npz: [settings] archive ---
put("npz", "stored", bytes([0]) + npz({"images": imgs, "labels": labs}, False))
put("npz", "deflated", bytes([0x29]) + npz({"images": rng.standard_normal((2, 8, 8, 1)).astype(np.float32)}, True))
put("npz", "classes", bytes([0x12]) + npz({"images": imgs, "labels": np.array([1, 3])}, True))
put("npz", "extra", bytes([0x80]) + npz({"images": labs, "labels": labs, "other": np.arange(3)}, False))


# --- nifti: [mode] file ---
def nii(data, dtype_code, bitpix, dims, slope=0.0, inter=0.0, big=False):
    e = ">" if big else "<"
    h = bytearray(352)
    struct.pack_into(e + "i", h, 0, 348)
    d = [len(dims)] + list(dims) + [1] * (7 - len(dims))
    struct.pack_into(e + "8h", h, 40, *d)
    struct.pack_into(e + "hh", h, 70, dtype_code, bitpix)
    struct.pack_into(e + "8f", h, 76, 1, 1, 1, 1, 1, 1, 1, 1)
    struct.pack_into(e + "fff", h, 108, 352.0, slope, inter)
    h[344:348] = b"n+1\0"
    return bytes(h) + data


vol = rng.integers(0, 4, (6, 5, 3)).astype(np.uint8)
f32 = rng.standard_normal((4, 4, 2, 2)).astype(np.float32)
i16 = rng.integers(-300, 300, (5, 4, 3)).astype(">i2")
files = {
    "u8": nii(vol.tobytes(order="F"), 2, 8, vol.shape),
    "f32-4d": nii(f32.tobytes(order="F"), 16, 32, f32.shape, slope=2.0, inter=-1.0),
    "i16-big": nii(i16.tobytes(order="F"), 4, 16, i16.shape, big=True),
    "f64-2d": nii(np.arange(12, dtype=np.float64).tobytes(), 64, 64, (4, 3)),
}
for name, data in files.items():
    put("nifti", name, bytes([0]) + data)
    put("nifti", name + "-gz", bytes([1]) + data)
gt = os.path.join(ROOT, "models", "data", "acdc-nifti", "patient001_frame01_gt.nii.gz")
put("nifti", "acdc-gt", bytes([2]) + open(gt, "rb").read())
put("nifti", "u8-gzfile", bytes([2]) + gzip.compress(files["u8"], mtime=0))

# --- mapping: CSV text for the classifier pair ---
m = onnx.load(os.path.join(ROOT, "tests", "corpus", "classifier-target.onnx"))
names = [t.name for t in m.graph.initializer]
put("mapping", "all", ("target_initializer,source_initializer\n" + "".join(f"{n},{n}\n" for n in names)).encode())
put("mapping", "quoted", ("# two\r\n\"features.0.weight\",\"features.0.weight\"\r\n\nfc.bias , fc.bias\n").encode())
put("mapping", "crossed", b"features.0.weight,features.3.weight\nfeatures.1.running_mean,features.4.running_var\n")
put("mapping", "twice", b"fc.weight,fc.weight\nfc.bias,fc.weight\n")
with open(os.path.join(ROOT, "fuzz", "mapping.dict"), "w") as f:
    for n in names + ["target_initializer", "source_initializer"]:
        f.write(f'"{n}"\n')
    f.write('","\n"\\x0a"\n"\\x22"\n"#"\n')

# --- onnx_model: the small fixtures, and tiny models made here ---
for name in ["classifier-target.onnx", "families-target.onnx"]:
    put("onnx_model", name, open(os.path.join(ROOT, "tests", "corpus", name), "rb").read())


def tiny(external=False, constant=False, qdq=False, control=False):
    w = numpy_helper.from_array(rng.standard_normal((2, 1, 3, 3)).astype(np.float32), "conv.weight")
    b = numpy_helper.from_array(rng.standard_normal(2).astype(np.float32), "conv.bias")
    bn = [numpy_helper.from_array(v.astype(np.float32), f"bn.{k}") for k, v in
          [("weight", np.ones(2)), ("bias", np.zeros(2)), ("running_mean", np.zeros(2)), ("running_var", np.ones(2))]]
    inits, nodes = [b] + bn, []
    if external:
        w.ClearField("raw_data")
        w.data_location = TensorProto.EXTERNAL
        for k, v in [("location", "weights.bin"), ("offset", "64"), ("length", "72")]:
            e = w.external_data.add()
            e.key, e.value = k, v
    if constant:
        nodes.append(helper.make_node("Constant", [], ["conv.weight"], value=w, name="wconst"))
    elif qdq:
        q = numpy_helper.from_array(rng.integers(-100, 100, (2, 1, 3, 3)).astype(np.int8), "conv.weight_q")
        inits += [q, numpy_helper.from_array(np.array(0.01, np.float32), "s"),
                  numpy_helper.from_array(np.array(0, np.int8), "z")]
        nodes.append(helper.make_node("DequantizeLinear", ["conv.weight_q", "s", "z"], ["conv.weight"], name="dq"))
    else:
        inits.append(w)
    nodes += [
        helper.make_node("Conv", ["x", "conv.weight", "conv.bias"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("BatchNormalization", ["c"] + [t.name for t in bn], ["y0"], name="bn"),
    ]
    if control:
        then = helper.make_graph([helper.make_node("Relu", ["y0"], ["t"])], "then", [],
                                 [helper.make_tensor_value_info("t", TensorProto.FLOAT, None)])
        other = helper.make_graph([helper.make_node("Sigmoid", ["y0"], ["e"])], "else", [],
                                  [helper.make_tensor_value_info("e", TensorProto.FLOAT, None)])
        inits.append(numpy_helper.from_array(np.array(True), "cond"))
        nodes.append(helper.make_node("If", ["cond"], ["y"], then_branch=then, else_branch=other, name="if"))
    else:
        nodes.append(helper.make_node("Relu", ["y0"], ["y"], name="relu"))
    g = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 8, 8])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()


def tiny_families():
    """Conv, then the other families: InstanceNormalization, LayerNormalization, Gemm, MatMul."""
    f = lambda name, shape: numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)
    inits = [f("conv.weight", (2, 1, 3, 3)), f("conv.bias", (2,)), f("inorm.weight", (2,)), f("inorm.bias", (2,)),
             f("lnorm.weight", (32,)), f("lnorm.bias", (32,)), f("fc.weight", (4, 32)), f("fc.bias", (4,)),
             f("proj.weight", (4, 3)), numpy_helper.from_array(np.array([1, 32], np.int64), "flat")]
    nodes = [
        helper.make_node("Conv", ["x", "conv.weight", "conv.bias"], ["c"], strides=[2, 2], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("InstanceNormalization", ["c", "inorm.weight", "inorm.bias"], ["n"], name="inorm"),
        helper.make_node("Reshape", ["n", "flat"], ["r"], name="flatten"),
        helper.make_node("LayerNormalization", ["r", "lnorm.weight", "lnorm.bias"], ["l"], axis=-1, name="lnorm"),
        helper.make_node("Gemm", ["l", "fc.weight", "fc.bias"], ["g"], transB=1, name="fc"),
        helper.make_node("MatMul", ["g", "proj.weight"], ["y"], name="proj"),
    ]
    g = helper.make_graph(nodes, "families", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()


put("onnx_model", "tiny-families", tiny_families())
put("onnx_model", "tiny", tiny())
put("onnx_model", "tiny-external", tiny(external=True))
put("onnx_model", "tiny-constant", tiny(constant=True))
put("onnx_model", "tiny-qdq", tiny(qdq=True))
put("onnx_model", "tiny-if", tiny(control=True))
with open(os.path.join(ROOT, "fuzz", "onnx_model.dict"), "w") as f:
    for w in ["Conv", "ConvTranspose", "BatchNormalization", "Gemm", "MatMul", "Identity", "Constant", "Cast",
              "DequantizeLinear", "QuantizeLinear", "QLinearConv", "ConvInteger", "If", "Loop", "Scan",
              "InstanceNormalization", "GroupNormalization", "LayerNormalization", "Sigmoid", "Softmax",
              "location", "offset", "length", "weights.bin", "../weights.bin", "/etc/passwd", "value"]:
        f.write(f'"{w}"\n')
