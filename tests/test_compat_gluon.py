"""omniconv.compat.gluon: MXNet Gluon's Conv2D and block machinery, against real MXNet 1.9.1
files (tests/fixtures/mxnet_compat_*, made by tools/fixtures/gen_mxnet_compat.py)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import struct
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from reference import ref_conv2d, ref_conv_transpose2d, ref_deform_conv2d

from omniconv.compat import gluon
from omniconv.compat.gluon import init, nn
from omniconv.compat.gluon._ndarray_file import dumps, loads
from omniconv.compat.gluon.contrib import cnn

FIX = Path(__file__).parent / "fixtures"
NET = np.load(FIX / "mxnet_compat_net.npz")
CONV_CASES = sorted(p.name[len("mxnet_conv2d_") : -4] for p in FIX.glob("mxnet_conv2d_*.npz"))


def build_net():
    net = nn.HybridSequential()
    with net.name_scope():
        net.add(nn.Conv2D(4, 3, padding=1, in_channels=2, activation="relu"))
        net.add(nn.Conv2D(6, (3, 2), strides=(2, 1), groups=2, activation="softrelu"))
        net.add(nn.Conv2D(3, 1, use_bias=False, activation="tanh"))
    return net


def build_summary_net():
    net = nn.HybridSequential()
    with net.name_scope():
        net.add(nn.Conv2D(8, 3, strides=2, in_channels=2, activation="relu"))
        net.add(nn.Conv2D(4, 1, in_channels=8, use_bias=False))
    return net


class Custom(gluon.HybridBlock):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.left = nn.Conv2D(3, 3, padding=1, in_channels=2)
            self.right = nn.Conv2D(3, 1, activation="sigmoid")

    def hybrid_forward(self, F, x):
        return F.relu(self.left(x)) + self.right(x)


class Mixer(gluon.HybridBlock):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.conv = nn.Conv2D(2, 3, strides=2, in_channels=2, activation="softsign")

    def hybrid_forward(self, F, x):
        a = self.conv(x)
        b = F.concat(a, F.broadcast_mul(a, a), dim=1)
        return F.Flatten(b * b - F.tanh(b))


def loaded_net():
    with gluon.NameManager():
        net = build_net()
    net.load_parameters(str(FIX / "mxnet_compat_net.params"))
    return net


# -- the .params binary format ----------------------------------------------------------


@pytest.mark.parametrize("path", sorted(FIX.glob("mxnet_compat_*.params")), ids=lambda p: p.name)
def test_params_file_roundtrip_is_byte_identical(path):
    raw = path.read_bytes()
    arrays = loads(raw)
    assert isinstance(arrays, dict) and arrays
    assert dumps(arrays) == raw


def test_params_file_layout_matches_the_spec_hexdump():
    raw = (FIX / "mxnet_compat_single.params").read_bytes()
    assert raw[:24] == struct.pack("<QQQ", 0x112, 0, 2)
    assert raw[24:28] == bytes.fromhex("c9fa93f9")
    d = loads(raw)
    assert d["weight"].tolist() == [[[[1.5]]]] and d["bias"].tolist() == [-2.0]
    f16 = loads((FIX / "mxnet_compat_single_f16.params").read_bytes())
    assert f16["weight"].dtype == np.float16 and f16["weight"].item() == 1.5
    assert loads(dumps([np.ones(2, np.float32)]))[0].tolist() == [1.0, 1.0]


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda b: b"\x13" + b[1:], "header magic 0x113"),
        (lambda b: b[:24] + b"\x00" + b[25:], "only V2"),
        (lambda b: b[:28] + b"\x01" + b[29:], "storage type 1"),
        (lambda b: b[:-3], "truncated"),
        (lambda b: b + b"\x00", "trailing bytes"),
    ],
)
def test_params_file_reader_is_strict(mutate, match):
    raw = (FIX / "mxnet_compat_single.params").read_bytes()
    with pytest.raises(ValueError, match=match):
        loads(mutate(raw))


def test_params_file_writer_rejects_bad_arrays():
    with pytest.raises(TypeError, match="`w` must have one of the dtypes"):
        dumps({"w": np.ones(2, np.complex64)})
    with pytest.raises(ValueError, match="0-d array needs np_shape=True"):
        dumps({"w": np.float32(1.0)})
    assert loads(dumps({"w": np.float32(2.0)}, np_shape=True))["w"].shape == ()


# -- seed 002: the documented Conv2D --------------------------------------------------


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_seed_002_conv2d_documented_behaviour(layout):
    """mxnet.gluon.nn.Conv2D as its documentation describes it: in_channels inferred at the
    first forward, out_height = floor((H + 2p - d(k-1) - 1)/s) + 1, the activation after
    the bias; the values against the float64 reference."""
    with gluon.NameManager():
        net = nn.Conv2D(6, (3, 2), strides=(2, 1), padding=(1, 0), dilation=(2, 1), groups=2,
                        layout=layout, activation="tanh")  # fmt: skip
    net.initialize(init.Normal(0.5))
    x = torch.randn(2, 4, 9, 7, generator=torch.Generator().manual_seed(0))
    xin = x if layout == "NCHW" else x.permute(0, 2, 3, 1)
    out = net(xin)
    out_h, out_w = (9 + 2 * 1 - 2 * (3 - 1) - 1) // 2 + 1, (7 + 0 - 1 * (2 - 1) - 1) // 1 + 1
    assert (out_h, out_w) == (4, 6) and net.in_channels == 4
    assert out.shape == ((2, 6, 4, 6) if layout == "NCHW" else (2, 4, 6, 6))
    net.bias.set_data(torch.linspace(-1, 1, 6))  # the default bias is zeros
    out = net(xin)
    w = net.weight.data().detach().double()  # Gluon's layout: OHWI for NHWC
    w = w if layout == "NCHW" else w.permute(0, 3, 1, 2)
    b = net.bias.data().detach().double()
    ref = ref_conv2d(x.double(), w, b, (2, 1), (1, 1, 0, 0), (2, 1), 2).tanh()
    ref = ref if layout == "NCHW" else ref.permute(0, 2, 3, 1)
    assert ref.std() > 0.1
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)


# -- real MXNet files through the front-end --------------------------------------------


def test_mxnet_network_params_load_and_match_output():
    net = loaded_net()
    out = net(NET["x"])
    np.testing.assert_allclose(out.detach().numpy(), NET["out"], rtol=1e-5, atol=1e-6)
    assert repr(net) == str(NET["repr"])
    assert repr(net.collect_params()) == str(NET["params_repr"])


def test_save_parameters_is_byte_identical_to_mxnet(tmp_path):
    net = loaded_net()
    net.save_parameters(str(tmp_path / "a.params"))
    assert (tmp_path / "a.params").read_bytes() == (FIX / "mxnet_compat_net.params").read_bytes()


def test_export_is_byte_identical_to_mxnet(tmp_path):
    with gluon.NameManager():
        net = build_net()
    with pytest.raises(RuntimeError, match=r"Please first call block\.hybridize"):
        net.export(str(tmp_path / "n"))
    net.initialize()
    net.hybridize(backend="eager")
    net(NET["x"])  # graph built before the deferred shapes are known, as in MXNet
    net.load_parameters(str(FIX / "mxnet_compat_net.params"))
    net.export(str(tmp_path / "mxnet_compat_net"), epoch=2)
    for name in ("mxnet_compat_net-symbol.json", "mxnet_compat_net-0002.params"):
        assert (tmp_path / name).read_bytes() == (FIX / name).read_bytes(), name


def test_custom_hybrid_forward_block_matches_mxnet():
    with gluon.NameManager():
        net = Custom()
    assert "(right): Conv2D(None -> 3," in repr(net)
    net.load_parameters(str(FIX / "mxnet_compat_custom.params"))
    assert repr(net) == str(NET["custom_repr"])
    out = net(torch.from_numpy(NET["x"]))
    np.testing.assert_allclose(out.detach().numpy(), NET["custom_out"], rtol=1e-5, atol=1e-6)
    assert list(net.state_dict()) == ["left.weight", "left.bias", "right.weight", "right.bias"]


def test_summary_matches_mxnet():
    with gluon.NameManager():
        net = build_summary_net()
    net.initialize()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        net.summary(NET["x"])
    assert buf.getvalue() == str(NET["summary"])
    net.hybridize()
    with pytest.raises(
        AssertionError,
        match='"hybridsequential0_conv0_relu" must not be hybridized to print summary',
    ):
        net.summary(NET["x"])


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_matches_mxnet_fixtures(case):
    fx = np.load(FIX / f"mxnet_conv2d_{case}.npz")
    act = str(fx["activation"]) or None
    kw = {k: tuple(int(v) for v in fx[n]) for k, n in
          (("kernel_size", "kernel_size"), ("strides", "stride"), ("padding", "padding"),
           ("dilation", "dilation"))}  # fmt: skip
    net = nn.Conv2D(
        int(fx["channels"]), groups=int(fx["groups"]), use_bias=bool(fx["use_bias"]),
        activation=act, **kw,
    )  # fmt: skip
    net.cast(fx["x"].dtype)
    net.initialize()
    x = torch.from_numpy(fx["x"]).requires_grad_(True)
    out = net(x)
    net.weight.set_data(fx["weight"])
    if fx["use_bias"]:
        net.bias.set_data(fx["bias"])
    out = net(x)
    f32 = fx["x"].dtype == np.float32

    def check(actual, name):  # tests/fixtures README: atol scales with the largest value
        expected = fx[name]
        scale = max(1.0, float(np.abs(expected).max()))
        tol = 1e-5 if f32 else 1e-10
        np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * scale, err_msg=name)

    check(out.detach().numpy(), "out")
    out.backward(torch.from_numpy(fx["grad_out"]))
    check(x.grad.numpy(), "grad_x")
    check(net.weight.grad().numpy(), "grad_weight")
    if fx["use_bias"]:
        check(net.bias.grad().numpy(), "grad_bias")


def test_legacy_single_layer_files(tmp_path):
    with gluon.NameManager():
        known = nn.Conv2D(1, 1, in_channels=1)
        deferred = nn.Conv2D(1, 1)
    for net in (known, deferred):
        net.load_parameters(str(FIX / "mxnet_compat_single.params"))
        assert net.weight.data().item() == 1.5 and net.bias.data().item() == -2.0
        assert net(np.ones((1, 1, 2, 2), np.float32)).detach().numpy().tolist() == [
            [[[-0.5] * 2] * 2]
        ]
    with pytest.raises(
        AssertionError, match=r"dtype incompatible expected <class 'numpy.float32'>"
    ):
        known.load_parameters(str(FIX / "mxnet_compat_single_f16.params"))
    known.load_parameters(str(FIX / "mxnet_compat_single_f16.params"), cast_dtype=True)
    known.cast("float16")
    with pytest.raises(
        AssertionError, match=r"expected float16 vs saved <class 'numpy.float32'>\. Set cast_dtype"
    ):
        known.load_parameters(str(FIX / "mxnet_compat_single.params"))
    known.load_parameters(str(FIX / "mxnet_compat_single_f16.params"))
    assert known.weight.data().dtype == torch.float16
    known.save_parameters(str(tmp_path / "h.params"))
    assert (tmp_path / "h.params").read_bytes() == (
        FIX / "mxnet_compat_single_f16.params"
    ).read_bytes()


def test_load_parameters_errors(tmp_path):
    with gluon.NameManager():
        lone = nn.Conv2D(2, 1, in_channels=1)
        nobias = nn.Conv2D(1, 1, in_channels=1, use_bias=False)
    with pytest.raises(
        ValueError,
        match=r"Parameter 'bias' loaded from file: .* is not present in ParameterDict, "
        r"choices are: 'conv1_weight'\. Set ignore_extra",
    ):
        nobias.load_parameters(str(FIX / "mxnet_compat_single.params"))
    with pytest.raises(
        AssertionError,
        match=r"Failed loading Parameter 'conv0_weight' from saved params: shape "
        r"incompatible expected \(2, 1, 1, 1\) vs saved \(1, 1, 1, 1\)",
    ):
        lone.load_parameters(str(FIX / "mxnet_compat_single.params"), ignore_extra=True)
    with gluon.NameManager():
        net = build_net()
    net.add(nn.Conv2D(1, 1))
    with pytest.raises(
        AssertionError,
        match=r"Parameter '3\.weight' is missing in file '.*mxnet_compat_net\.params', which "
        r"contains parameters: '0\.weight', '0\.bias', '1\.weight', '1\.bias', '2\.weight'\. "
        r"Set allow_missing=True to ignore missing parameters\.",
    ):
        net.load_parameters(str(FIX / "mxnet_compat_net.params"))
    net.load_parameters(str(FIX / "mxnet_compat_net.params"), allow_missing=True)
    with pytest.raises(
        ValueError,
        match=r"Parameter 'left\.weight' loaded from file '.*' is not present in ParameterDict, "
        r"which contains parameters \. Set ignore_extra=True to ignore\. $",
    ):
        net.load_parameters(str(FIX / "mxnet_compat_custom.params"), allow_missing=True)


# -- MXNet round trip (needs a real MXNet venv) ----------------------------------------

MXNET_PY = os.environ.get("OMNICONV_MXNET_PYTHON")


@pytest.mark.skipif(not MXNET_PY, reason="set OMNICONV_MXNET_PYTHON to an MXNet 1.9.1 python")
def test_files_written_by_omniconv_load_in_real_mxnet(tmp_path):
    """save_parameters and export files from omniconv, read by real MXNet 1.9.1: same outputs
    (NCHW network, and SymbolBlock.imports of the export) and same NHWC (OHWI) weights."""
    torch.manual_seed(3)
    with gluon.NameManager():
        net = build_net()
        net.add(nn.Conv2D(2, (1, 3), dilation=(1, 2), padding=(0, 2), in_channels=3))
        nhwc = nn.Conv2D(6, (3, 2), groups=2, in_channels=4, layout="NHWC")
    net.initialize(init.Xavier())
    nhwc.initialize(init.Normal(0.5))
    x = np.random.RandomState(1).standard_normal((2, 2, 7, 6)).astype(np.float32)
    ours = net(x).detach().numpy()
    net.save_parameters(str(tmp_path / "ours.params"))
    net.hybridize(backend="eager")
    net(x)
    net.export(str(tmp_path / "exp"), epoch=5)
    nhwc.save_parameters(str(tmp_path / "nhwc.params"))
    np.save(tmp_path / "x.npy", x)
    tools = Path(__file__).parents[1] / "tools" / "fixtures"
    script = textwrap.dedent(f"""
        import os, sys
        os.environ["MXNET_MKLDNN_ENABLED"] = "0"
        import numpy as np, mxnet as mx
        from mxnet import gluon
        from mxnet.gluon import nn
        sys.path.insert(0, {str(tools)!r})
        from gen_mxnet_compat import build_net
        d = {str(tmp_path)!r}
        x = mx.nd.array(np.load(os.path.join(d, "x.npy")))
        net = build_net()
        net.add(nn.Conv2D(2, (1, 3), dilation=(1, 2), padding=(0, 2), in_channels=3))
        net.load_parameters(os.path.join(d, "ours.params"))
        np.save(os.path.join(d, "theirs.npy"), net(x).asnumpy())
        sym = gluon.SymbolBlock.imports(
            os.path.join(d, "exp-symbol.json"), ["data"], os.path.join(d, "exp-0005.params")
        )
        np.save(os.path.join(d, "imported.npy"), sym(x).asnumpy())
        nhwc = nn.Conv2D(6, (3, 2), groups=2, in_channels=4, layout="NHWC")
        nhwc.load_parameters(os.path.join(d, "nhwc.params"))
        np.save(os.path.join(d, "nhwc_w.npy"), nhwc.weight.data().asnumpy())
    """)
    env = {**os.environ, "MXNET_MKLDNN_ENABLED": "0"}
    subprocess.run([MXNET_PY, "-c", script], check=True, env=env, capture_output=True)
    np.testing.assert_allclose(np.load(tmp_path / "theirs.npy"), ours, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.load(tmp_path / "imported.npy"), ours, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(
        np.load(tmp_path / "nhwc_w.npy"), nhwc.weight.data().detach().numpy()
    )


# -- Conv2D behaviour -------------------------------------------------------------------


def test_names_params_and_torch_state_dict():
    with gluon.NameManager():
        a = nn.Conv2D(2, 3)
        b = nn.Conv2D(2, 3, prefix="foo_")
        c = nn.Conv2D(2, 3, activation="relu")
    assert (a.name, a.prefix, b.name, c.name) == ("conv0", "conv0_", "foo", "conv1")
    assert c.act.name == "conv1_relu"
    assert list(a.collect_params()) == ["conv0_weight", "conv0_bias"]
    assert list(a.params) == ["conv0_weight", "conv0_bias"]
    assert isinstance(a.weight, gluon.Parameter) and a.weight is a.params["conv0_weight"]
    assert a.weight.shape == (2, 0, 3, 3) and a.bias.shape == (2,)
    assert list(a.state_dict()) == ["weight", "bias"]
    assert list(b.collect_params(".*bias")) == ["foo_bias"]
    assert isinstance(a, torch.nn.Module)


def test_initialization_rules():
    torch.manual_seed(0)
    with pytest.raises(
        RuntimeError, match=r"Parameter 'conv0_weight' has not been initialized\. Note"
    ):
        with gluon.NameManager():
            net = nn.Conv2D(64, 3, in_channels=64)
        net(torch.ones(1, 64, 3, 3))
    net.initialize()
    w = net.weight.data()
    assert -0.07 <= w.min() < -0.069 and 0.069 < w.max() <= 0.07
    assert torch.all(net.bias.data() == 0)
    with pytest.warns(UserWarning) as rec:
        net.initialize()
    assert [str(w.message) for w in rec] == [
        f"Parameter 'conv0_{n}' is already initialized, ignoring. Set force_reinit=True to "
        "re-initialize."
        for n in ("weight", "bias")
    ]
    net.initialize(init.Xavier(), force_reinit=True)
    bound = (3 / ((64 * 9 + 64 * 9) / 2)) ** 0.5
    assert net.weight.data().abs().max() <= bound and net.weight.data().abs().max() > 0.9 * bound
    assert torch.all(net.bias.data() == 0)
    nob = nn.Conv2D(8, 3, bias_initializer=None, weight_initializer="ones")
    nob.initialize(init.Uniform(0.5))
    bias = nob.bias.data().detach().clone()
    assert 0 < bias.abs().max() <= 0.5
    nob(torch.ones(1, 2, 3, 3))  # the deferred weight is initialised; the bias is kept
    assert torch.all(nob.weight.data() == 1) and torch.equal(nob.bias.data(), bias)
    nhwc = nn.Conv2D(6, (3, 1), in_channels=4, layout="NHWC", weight_initializer=init.Xavier())
    nhwc.initialize()
    xb = (3 / ((3 * 1 * 4 + 6 * 1 * 4) / 2)) ** 0.5  # MXNet's fan rule on the OHWI shape
    assert nhwc.weight.data().abs().max() <= xb and nhwc.weight.data().abs().max() > 0.8 * xb
    c = nn.Conv2D(2, 1, in_channels=1, weight_initializer=init.Constant(0.5))
    c.initialize(init.MSRAPrelu())
    assert torch.all(c.weight.data() == 0.5)


def test_deferred_init_and_errors():
    with gluon.NameManager():
        net = nn.Conv2D(4, 3, groups=2)
    net.initialize()
    with pytest.raises(
        gluon.DeferredInitializationError,
        match="Parameter 'conv0_weight' has not been initialized yet because initialization "
        "was deferred",
    ):
        net.weight.data()
    assert net.bias.data().shape == (4,)
    with pytest.raises(
        ValueError,
        match=r"Deferred initialization failed because shape cannot be inferred\. "
        r".*input num_filter must divide group size",
    ):
        net(torch.ones(1, 3, 5, 5))
    with pytest.raises(
        ValueError, match=r"Deferred initialization failed .* Input data should be 4D"
    ):
        net(torch.ones(3, 5, 5))
    out = net(torch.ones(1, 6, 5, 5))
    assert out.shape == (1, 4, 3, 3) and net.weight.shape == (4, 3, 3, 3)
    assert repr(net) == "Conv2D(3 -> 4, kernel_size=(3, 3), stride=(1, 1), groups=2)"
    known = nn.Conv2D(2, 3, in_channels=3)
    known.initialize()
    with pytest.raises(
        gluon.MXNetError,
        match=r"Shape inconsistent, Provided = \[2,3,3,3\], inferred shape=\(2,4,3,3\)",
    ):
        known(torch.ones(1, 4, 5, 5))


# every construction error is MXNet's type and ValueError/TypeError: (kwargs, exact class,
# the standard class it also is, the whole message: MXNet's words, then the Gluon argument)
ACTS = "{'relu', 'sigmoid', 'softrelu', 'softsign', 'tanh'}"
CONSTRUCTOR_ERRORS = [
    (
        {"layout": "NCW"},
        gluon.GluonAssertionError,
        AssertionError,
        "Only supports 'NCHW' and 'NHWC' layout for now; received layout='NCW'",
    ),
    (
        {"kernel_size": (3, 3, 3)},
        gluon.GluonAssertionError,
        AssertionError,
        "kernel_size must be a number or a list of 2 ints; received kernel_size=(3, 3, 3)",
    ),
    (
        {"kernel_size": 3.0},
        gluon.MXNetTypeError,
        TypeError,
        "Invalid Parameter format for kernel expect Shape(tuple) but value='(3.0, 3.0)'; "
        "received kernel_size=(3.0, 3.0)",
    ),
    (
        {"strides": (1, 1, 1)},
        gluon.MXNetValueError,
        ValueError,
        "Check failed: param_.kernel.ndim() == param_.stride.ndim() (2 vs. 3) : Stride must have "
        "the same number of dimensions with kernel_size,but kernel_size is set to [3,3] while "
        "stride is [1,1,1]; received strides=(1, 1, 1)",
    ),
    (
        {"channels": 0},
        gluon.MXNetValueError,
        ValueError,
        "value 0 for Parameter num_filter should be greater equal to 1; received channels=0",
    ),
    (
        {"strides": 0},
        gluon.MXNetValueError,
        ValueError,
        "Check failed: param_.stride.Size() > 0U (0 vs. 0) : incorrect stride size: [0,0]; "
        "received strides=(0, 0)",
    ),
    (
        {"dilation": 0},
        gluon.MXNetValueError,
        ValueError,
        "Check failed: param_.dilate.Size() > 0U (0 vs. 0) : incorrect dilate size: [0,0]; "
        "received dilation=(0, 0)",
    ),
    (
        {"channels": 3, "groups": 2},
        gluon.MXNetValueError,
        ValueError,
        "Check failed: param_.num_filter % param_.num_group == 0U (1 vs. 0) : output num_filter "
        "must divide group size; received channels=3, groups=2",
    ),
    (
        {"in_channels": 3, "groups": 2},
        gluon.MXNetValueError,
        ValueError,
        "Check failed: dshape[1] % param_.num_group == 0U (1 vs. 0) : input num_filter must "
        "divide group size; received in_channels=3, groups=2",
    ),
    (
        {"padding": -1},
        gluon.MXNetValueError,
        ValueError,
        "`padding` must be non-negative integers; received padding=(-1, -1)",
    ),
    (
        {"channels": 2.0},
        gluon.MXNetTypeError,
        TypeError,
        "Invalid Parameter format for num_filter expect int (non-negative) but value='2.0'; "
        "received channels=2.0",
    ),
    (
        {"padding": (1.5, 1)},
        gluon.MXNetTypeError,
        TypeError,
        "Invalid Parameter format for pad expect Shape(tuple) but value='(1.5, 1)'; "
        "received padding=(1.5, 1)",
    ),
    (
        {"channels": -2},
        gluon.MXNetValueError,
        ValueError,
        "Check failed: dim_size >= -1 (-2 vs. -1) : shape dim size must be >= -1, while "
        "received -2; received channels=-2",
    ),
    (
        {"kernel_size": (0, 3)},
        gluon.MXNetValueError,
        ValueError,
        "Check failed: param_.kernel.Size() > 0U (0 vs. 0) : incorrect kernel size: [0,3]; "
        "received kernel_size=(0, 3)",
    ),
    (
        {"groups": 0},
        gluon.MXNetValueError,
        ValueError,
        "`groups` must be a positive integer; received groups=0",
    ),
    (
        {"in_channels": -1},
        gluon.MXNetValueError,
        ValueError,
        "`in_channels` must be a non-negative integer (0: inferred at the first forward); "
        "received in_channels=-1",
    ),
    (
        {"activation": "gelu"},  # MXNet: at the first forward; here at construction
        gluon.MXNetValueError,
        ValueError,
        f"Invalid Input: 'gelu', valid values are: {ACTS}, in operator "
        'Activation(name="", act_type="gelu"); received activation=\'gelu\'',
    ),
    ({"foo": 1}, TypeError, TypeError, "__init__() got an unexpected keyword argument 'foo'"),
]


@pytest.mark.parametrize(("kwargs", "exc", "std", "message"), CONSTRUCTOR_ERRORS)
def test_constructor_errors(kwargs, exc, std, message):
    args = {"channels": 4, "kernel_size": 3, **kwargs}
    with pytest.raises(exc, match="^" + re.escape(message) + "$") as info:
        nn.Conv2D(**args)
    assert type(info.value) is exc and isinstance(info.value, std)
    if exc is not TypeError:  # the framework's type too
        assert isinstance(info.value, gluon.MXNetError | AssertionError)


def test_unknown_activation_fails_at_construction():
    with pytest.raises(gluon.MXNetValueError, match=r"^Invalid Input: 'softmax', valid values"):
        nn.Activation("softmax")
    with pytest.raises(ValueError, match=r"Invalid Input: 'gelu'"):
        nn.Conv2D(2, 1, in_channels=1, activation="gelu")


def test_nhwc_weight_is_an_ohwi_view_and_matches_nchw():
    torch.manual_seed(1)
    a = nn.Conv2D(
        6,
        (3, 2),
        strides=(2, 1),
        padding=(1, 0),
        groups=2,
        in_channels=4,
        layout="NHWC",
        activation="tanh",
    )
    b = nn.Conv2D(
        6, (3, 2), strides=(2, 1), padding=(1, 0), groups=2, in_channels=4, activation="tanh"
    )
    a.cast("float64")
    b.cast("float64")
    a.initialize()
    b.initialize()
    assert a.weight.shape == (6, 3, 2, 2) and a.state_dict()["weight"].shape == (6, 2, 3, 2)
    assert a.weight.data().data_ptr() == a.state_dict()["weight"].data_ptr()
    b.weight.set_data(a.weight.data().permute(0, 3, 1, 2))
    b.bias.set_data(torch.linspace(-1, 1, 6))
    a.bias.set_data(torch.linspace(-1, 1, 6))
    x = torch.randn(2, 4, 7, 6, dtype=torch.float64)
    xa = x.permute(0, 2, 3, 1).requires_grad_(True)
    out_a = a(xa)
    torch.testing.assert_close(out_a.permute(0, 3, 1, 2), b(x), rtol=1e-12, atol=1e-12)
    out_a.sum().backward()
    assert a.weight.grad().shape == (6, 3, 2, 2)
    torch.testing.assert_close(
        a.weight.grad(), a.state_dict(keep_vars=True)["weight"].grad.permute(0, 2, 3, 1)
    )
    assert (
        repr(a) == "Conv2D(3 -> 6, kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), groups=2, "
        "Activation(tanh))"
    )


def test_hybridize_gives_the_same_numbers():
    net = loaded_net()
    eager = net(NET["x"]).detach()
    net.hybridize(backend="aot_eager")
    net(NET["x"])
    again = net(NET["x"])
    assert net._compiled is not None
    torch.testing.assert_close(again.detach(), eager, rtol=0, atol=0)
    net.hybridize(False)
    assert net._compiled is None and not net[0]._active


def test_cast_hooks_apply_and_numpy_inputs():
    net = loaded_net()
    seen = []
    handle = net[0].register_forward_hook(
        lambda blk, inp, out: seen.append((blk.name, tuple(out.shape)))
    )
    net(NET["x"])
    handle.detach()
    net(NET["x"])
    assert seen == [(net[0].name, (2, 4, 7, 6))]
    names = []
    assert net.apply(lambda b: names.append(type(b).__name__)) is net
    assert names == [
        "Activation",
        "Conv2D",
        "Activation",
        "Conv2D",
        "Activation",
        "Conv2D",
        "HybridSequential",
    ]
    net.cast("float64")
    assert net[0].weight.dtype == "float64" and net[0].weight.data().dtype == torch.float64
    assert repr(net[0].weight).endswith("(shape=(4, 2, 3, 3), dtype=float64)")
    out = net(NET["x"].astype(np.float64))
    np.testing.assert_allclose(out.detach().numpy(), NET["out"], rtol=1e-5, atol=1e-6)
    with pytest.raises(TypeError, match="`dtype` must be one of"):
        net.cast("complex64")


def test_parameter_api():
    net = nn.Conv2D(2, 1, in_channels=1)
    net.initialize()
    p = net.weight
    p.set_data(np.full((2, 1, 1, 1), 3.0, np.float32))
    assert p.data().flatten().tolist() == [3.0, 3.0]
    with pytest.raises(
        AssertionError,
        match=r"Expected shape \(3, 1, 1, 1\) is incompatible with given shape \(2, 1, 1, 1\)",
    ):
        p.set_data(np.zeros((3, 1, 1, 1), np.float32))
    p.grad_req = "null"
    assert not net.state_dict(keep_vars=True)["weight"].requires_grad
    with pytest.raises(RuntimeError, match="because grad_req='null'"):
        p.grad()
    free = gluon.Parameter("w", shape=(2, 3))
    with pytest.raises(AssertionError, match=r"^Parameter 'w' has not been initialized$"):
        free.set_data(np.ones((2, 3), np.float32))
    with pytest.raises(RuntimeError, match="Parameter 'w' has not been initialized"):
        free.data()
    free.initialize(init="ones")
    assert free.data().sum().item() == 6.0
    with pytest.raises(
        ValueError, match=r"Cannot initialize Parameter 'v' because it has invalid shape: \(0, 3\)"
    ):
        gluon.Parameter("v", shape=(0, 3)).initialize()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert repr(free) == "Parameter w (shape=(2, 3), dtype=<class 'numpy.float32'>)"


def test_flat_and_mirror_names():
    assert gluon.nn.Conv2D is gluon.Conv2D and gluon.init.Xavier is gluon.Xavier
    assert (
        init.create("zeros").__class__ is gluon.Zero and init.create("one").__class__ is gluon.One
    )
    assert (
        init.Xavier().dumps()
        == '["xavier", {"rnd_type": "uniform", "factor_type": "avg", "magnitude": 3}]'
    )
    assert sys.modules["omniconv.compat.gluon.nn"] is nn


def test_custom_block_export_is_byte_identical_to_mxnet(tmp_path):
    with gluon.NameManager():
        net = Custom()
    net.initialize()
    net.hybridize(backend="eager")
    net(NET["x"])
    net.load_parameters(str(FIX / "mxnet_compat_custom.params"))
    net.export(str(tmp_path / "mxnet_compat_custom"))
    for name in ("mxnet_compat_custom-symbol.json", "mxnet_compat_custom-0000.params"):
        assert (tmp_path / name).read_bytes() == (FIX / name).read_bytes(), name


def test_nhwc_params_file_from_mxnet(tmp_path):
    kw = {"strides": (2, 1), "padding": (1, 0), "groups": 2, "activation": "softsign"}
    with gluon.NameManager():
        net = nn.Conv2D(6, (3, 2), layout="NHWC", in_channels=4, **kw)
        deferred = nn.Conv2D(6, (3, 2), layout="NHWC", **kw)
    assert repr(net) == str(NET["nhwc_repr"])
    for layer in (net, deferred):
        layer.load_parameters(str(FIX / "mxnet_compat_nhwc.params"))
        assert layer.weight.shape == (6, 3, 2, 2) and layer.in_channels == 4
        out = layer(NET["nhwc_x"])
        np.testing.assert_allclose(out.detach().numpy(), NET["nhwc_out"], rtol=1e-5, atol=1e-6)
    deferred.save_parameters(str(tmp_path / "n.params"))
    assert (tmp_path / "n.params").read_bytes() == (FIX / "mxnet_compat_nhwc.params").read_bytes()


def test_kernel_larger_than_input_errors():
    with gluon.NameManager():
        known = nn.Conv2D(1, 7, in_channels=1)
        deferred = nn.Conv2D(1, (1, 7), padding=(0, 1))
    known.initialize()
    deferred.initialize()
    with pytest.raises(
        gluon.MXNetError,
        match=r"Check failed: dilated_ksize_y <= AddPad\(dshape\[2\], param_\.pad\[0\]\) "
        r"\(7 vs\. 6\) : kernel size exceed input",
    ):
        known(torch.ones(1, 1, 6, 6))
    with pytest.raises(
        ValueError,
        match=r"Deferred initialization failed because shape cannot be inferred\. MXNetError: "
        r"Error in operator conv1_fwd: Check failed: dilated_ksize_x <= AddPad\(dshape\[3\], "
        r"param_\.pad\[1\]\) \(7 vs\. 6\)",
    ):
        deferred(torch.ones(1, 1, 6, 4))
    with pytest.raises(gluon.MXNetError, match=r"\(3 vs\. 4\) : Input data should be 4D"):
        known(torch.ones(1, 6, 6))


def test_legacy_load_missing_parameter_message(tmp_path):
    (tmp_path / "w.params").write_bytes(dumps({"weight": np.ones((1, 1, 1, 1), np.float32)}))
    with gluon.NameManager():
        net = nn.Conv2D(1, 1, in_channels=1)
    with pytest.raises(
        AssertionError,
        match=r"Parameter 'bias' is missing in file: .*w\.params, which contains parameters: "
        r"'conv0_weight'\. Please make sure source and target networks have the same prefix\.",
    ):
        net.load_parameters(str(tmp_path / "w.params"))
    net.load_parameters(str(tmp_path / "w.params"), allow_missing=True)
    assert net.weight.data().item() == 1.0


def test_shared_params_and_plain_blocks():
    with gluon.NameManager():
        a = nn.Conv2D(2, 3, in_channels=2)
        b = nn.Conv2D(2, 3, in_channels=2, params=a.collect_params())

        class Twice(gluon.Block):
            def __init__(self):
                super().__init__()
                with self.name_scope():
                    self.body = gluon.Sequential()
                    self.body.add(a, b)

            def forward(self, x):
                return self.body(x) * 2

        net = Twice()
    assert b.weight is a.weight and b.name == "conv1"
    assert list(net.collect_params()) == ["conv0_weight", "conv0_bias"]
    net.initialize(init.One())
    x = torch.ones(1, 2, 5, 5)
    assert net(x).shape == (1, 2, 1, 1)
    assert net(x)[0, 0, 0, 0].item() == 2 * (18 * 18 + 0)
    a.weight.set_data(np.zeros((2, 2, 3, 3), np.float32))
    assert torch.all(b(x) == 0)
    assert net.body.name == "twice0_sequential0" and len(net.body) == 2


def test_user_block_with_more_operators_matches_mxnet_export(tmp_path):
    with gluon.NameManager():
        net = Mixer()
    net.initialize()
    net.hybridize(backend="eager")
    net.collect_params().load(str(FIX / "mxnet_compat_mixer-0000.params"))
    out = net(NET["x"])
    np.testing.assert_allclose(out.detach().numpy(), NET["mixer_out"], rtol=1e-5, atol=1e-6)
    net.export(str(tmp_path / "mxnet_compat_mixer"))
    for name in ("mxnet_compat_mixer-symbol.json", "mxnet_compat_mixer-0000.params"):
        assert (tmp_path / name).read_bytes() == (FIX / name).read_bytes(), name
    compiled = net(NET["x"])  # second hybridized call: torch.compile
    torch.testing.assert_close(compiled, out, rtol=0, atol=0)


class Scaled(gluon.HybridBlock):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.conv = nn.Conv2D(2, 1, layout="NHWC")
            self.scale = self.params.get("scale", shape=(1, 1, 1, 2), init="ones")

    def hybrid_forward(self, F, x, scale):
        return F.broadcast_mul(self.conv(x), scale)


def test_user_parameters_and_torch_state_dict_roundtrip(tmp_path):
    with gluon.NameManager():
        net = Scaled()
        fresh = Scaled()
    assert list(net.collect_params()) == [
        "scaled0_scale",
        "scaled0_conv0_weight",
        "scaled0_conv0_bias",
    ]
    assert list(net.state_dict()) == ["scale", "conv.weight", "conv.bias"]
    net.initialize()
    x = torch.randn(2, 3, 3, 3)
    out = net(x)
    assert out.shape == (2, 3, 3, 2) and torch.all(net.scale.data() == 1)
    net.scale.set_data(np.array([2.0, -1.0], np.float32).reshape(1, 1, 1, 2))
    fresh.load_state_dict(net.state_dict())  # deferred conv takes the checkpoint's shape
    assert fresh.conv.weight.shape == (2, 1, 1, 3) and fresh.conv.in_channels == 3
    torch.testing.assert_close(fresh(x), net(x))
    net.save_parameters(str(tmp_path / "s.params"))
    assert list(loads((tmp_path / "s.params").read_bytes())) == [
        "scale",
        "conv.weight",
        "conv.bias",
    ]
    assert loads((tmp_path / "s.params").read_bytes())["conv.weight"].shape == (2, 1, 1, 3)


def test_shared_deferred_weight():
    with gluon.NameManager():
        a = nn.Conv2D(2, 1)
        b = nn.Conv2D(2, 1, params=a.collect_params())
    a.initialize(init.One())
    out = b(torch.ones(1, 3, 2, 2))  # b infers the shared weight's shape
    assert a.weight.shape == (2, 3, 1, 1) and b.in_channels == 3 and a.in_channels == 3
    torch.testing.assert_close(a(torch.ones(1, 3, 2, 2)), out)
    assert torch.all(out == 3)


def test_deterministic_initializers_match_mxnet():
    w = torch.zeros(2, 1, 3, 3)
    init.Bilinear()(gluon.init.InitDesc("w", {"__init__": "bilinear"}), w)
    row = [0.0625, 0.1875, 0.1875]  # MXNet 1.9.1's values for this shape
    assert w[1, 0].tolist() == [row, [0.1875, 0.5625, 0.5625], [0.1875, 0.5625, 0.5625]]
    k = torch.zeros(1, 1, 4, 4)
    init.create("bilinear")("w", k)
    assert k[0, 0, 0].tolist() == [0.0625, 0.1875, 0.1875, 0.0625]
    q = torch.zeros(3, 2, 2, 2)
    init.Orthogonal(scale=2.0)("w", q)
    m = q.reshape(3, 8).double()
    torch.testing.assert_close(m @ m.T, 4 * torch.eye(3, dtype=torch.float64), atol=1e-5, rtol=0)
    dumped = [i.dumps() for i in (init.MSRAPrelu(), init.Orthogonal(), init.Constant(0.5))]
    assert dumped == [
        '["msraprelu", {"factor_type": "avg", "slope": 0.25}]',
        '["orthogonal", {"scale": 1.414, "rand_type": "uniform"}]',
        '["constant", {"value": 0.5}]',
    ]
    assert isinstance(init.create(dumped[0]), init.MSRAPrelu)
    with pytest.raises(ValueError, match="Cannot find initializer 'nope'"):
        init.create("nope")
    with pytest.raises(ValueError, match="Xavier initializer cannot be applied to vector b"):
        init.Xavier()("b", torch.zeros(3))


class Unused(gluon.HybridBlock):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.conv = nn.Conv2D(2, 1, in_channels=1)
            self.extra = self.params.get("extra", shape=(2,))

    def hybrid_forward(self, F, x, extra):
        return F.relu(self.conv(x))


def test_export_warns_about_parameters_outside_the_graph(tmp_path):
    with gluon.NameManager():
        net = Unused()
    net.initialize()
    net.hybridize(backend="eager")
    net(torch.ones(1, 1, 2, 2))
    with pytest.warns(UserWarning, match='^Parameter "unused0_extra" is not found in the graph. $'):
        net.export(str(tmp_path / "u"))
    assert list(loads((tmp_path / "u-0000.params").read_bytes())) == [
        "arg:unused0_conv0_weight",
        "arg:unused0_conv0_bias",
    ]
    assert '"name": "unused0_relu0"' in (tmp_path / "u-symbol.json").read_text()


# == the rest of the family: Conv2DTranspose and contrib.cnn's deformable convolutions ===
# (values and gradients against MXNet's numbers: tests/test_conformance.py)

FAMILY = np.load(FIX / "mxnet_compat_family.npz")
LAYERS = json.loads(str(FAMILY["layers"]))
# three float32 layers, two of them deformable: MXNet's output and ours are each up to
# ~1.2e-5 / ~1.8e-5 (absolute) from the same net in float64, so they may differ by that
FAMILY_TOL = {"rtol": 1e-5, "atol": 3e-5}


def build_family_net():
    net = nn.HybridSequential()
    offset_init = init.Normal(0.3)
    with net.name_scope():
        net.add(
            nn.Conv2DTranspose(4, 3, strides=2, output_padding=1, in_channels=2, activation="relu")
        )
        net.add(
            cnn.DeformableConvolution(
                4, 3, padding=1, num_deformable_group=2, offset_weight_initializer=offset_init
            )
        )
        net.add(
            cnn.ModulatedDeformableConvolution(
                2,
                (3, 2),
                padding=(1, 0),
                use_bias=False,
                offset_use_bias=False,
                offset_weight_initializer=offset_init,
            )
        )
    return net


# the blocks of the generator's LAYERS (tools/fixtures/gen_mxnet_family.py)
MAKERS = {
    "convT_in4": (lambda: nn.Conv2DTranspose(8, (3, 2), strides=2, output_padding=1,
                                             in_channels=4), (1, 4, 5, 6)),
    "convT_deferred": (lambda: nn.Conv2DTranspose(8, (3, 2), strides=2, output_padding=1),
                       (1, 3, 5, 6)),
    "convT_groups": (lambda: nn.Conv2DTranspose(8, (3, 2), strides=(2, 1), padding=(1, 0),
                                                dilation=(1, 2), groups=2, in_channels=4,
                                                activation="relu", use_bias=False),
                     (1, 4, 5, 6)),
    "convT_nhwc": (lambda: nn.Conv2DTranspose(8, (3, 2), in_channels=4, layout="NHWC"),
                   (1, 5, 6, 4)),
    "dcn1_deferred": (lambda: cnn.DeformableConvolution(4, 3, padding=[1, 1], activation="relu",
                                                        use_bias=False), (1, 2, 4, 4)),
    "dcn1_in": (lambda: cnn.DeformableConvolution(6, (3, 2), strides=(2, 1), dilation=(1, 2),
                                                  groups=2, num_deformable_group=2,
                                                  in_channels=4, offset_use_bias=False),
                (1, 4, 7, 6)),
    "dcn2": (lambda: cnn.ModulatedDeformableConvolution(4, 3), (1, 4, 5, 5)),
    "dcn2_act": (lambda: cnn.ModulatedDeformableConvolution(4, 3, activation="relu",
                                                            in_channels=4), (1, 4, 5, 5)),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_family_reprs_names_and_shapes_match_mxnet(name):
    """repr (with MXNet's quirks: ``channels/groups -> in_channels`` for the transposed
    conv, its output padding never shown, the deformable weight's deferred list shape, the
    modulated block's empty Block repr) and collect_params, before and after the first
    forward, as MXNet 1.9.1 prints them."""
    make, shape = MAKERS[name]
    with gluon.NameManager():
        block = make()
    assert repr(block) + "\n" + repr(block.collect_params()) == LAYERS[name]["before"]
    block.initialize()
    out = block(torch.ones(shape))
    assert out.dim() == 4 and out.numel() > 0
    if "after" in LAYERS[name]:  # (MXNet cannot run NHWC Deconvolution on CPU)
        assert repr(block) + "\n" + repr(block.collect_params()) == LAYERS[name]["after"]


def test_family_params_file_from_mxnet_loads_and_matches():
    with gluon.NameManager():
        net = build_family_net()
    assert repr(net.collect_params()) == str(FAMILY["params_repr"])
    net.load_parameters(str(FIX / "mxnet_compat_family.params"))
    out = net(FAMILY["x"])
    assert float(out.std()) > 1.0
    np.testing.assert_allclose(out.detach().numpy(), FAMILY["out"], **FAMILY_TOL)
    assert repr(net) == str(FAMILY["repr"])
    assert repr(net.collect_params()) == str(FAMILY["params_repr_after"])
    assert list(net.state_dict()) == [
        "0.weight", "0.bias", "1.offset_weight", "1.offset_bias", "1.deformable_conv_weight",
        "1.deformable_conv_bias", "2.deformable_conv_weight", "2.offset_weight",
    ]  # fmt: skip


def test_family_save_parameters_and_export_are_byte_identical_to_mxnet(tmp_path):
    with gluon.NameManager():
        net = build_family_net()
    net.initialize(init.Normal(0.5))
    net.hybridize(backend="eager")
    net(FAMILY["x"])  # the graph is built before the deferred shapes are known, as in MXNet
    net.load_parameters(str(FIX / "mxnet_compat_family.params"))
    net.save_parameters(str(tmp_path / "mxnet_compat_family.params"))
    net.export(str(tmp_path / "mxnet_compat_family"))
    for name in (
        "mxnet_compat_family.params",
        "mxnet_compat_family-symbol.json",
        "mxnet_compat_family-0000.params",
    ):
        assert (tmp_path / name).read_bytes() == (FIX / name).read_bytes(), name
    again = net(FAMILY["x"])  # hybridized (compiled) call
    np.testing.assert_allclose(again.detach().numpy(), FAMILY["out"], **FAMILY_TOL)


@pytest.mark.skipif(not MXNET_PY, reason="set OMNICONV_MXNET_PYTHON to an MXNet 1.9.1 python")
def test_family_files_written_by_omniconv_load_in_real_mxnet(tmp_path):
    """The family network initialised by omniconv (other values than the fixture's),
    saved and exported, run by real MXNet 1.9.1: same outputs (DCNv1 with MXNet's border
    rule included)."""
    torch.manual_seed(5)
    with gluon.NameManager():
        net = build_family_net()
    net.initialize(init.Normal(0.4))
    x = np.random.RandomState(3).standard_normal((2, 2, 5, 4)).astype(np.float32)
    ours = net(x).detach().numpy()
    assert ours.std() > 0.5
    net.save_parameters(str(tmp_path / "ours.params"))
    net.hybridize(backend="eager")
    net(x)
    net.export(str(tmp_path / "exp"), epoch=3)
    np.save(tmp_path / "x.npy", x)
    tools = Path(__file__).parents[1] / "tools" / "fixtures"
    script = textwrap.dedent(f"""
        import os, sys
        os.environ["MXNET_MKLDNN_ENABLED"] = "0"
        import numpy as np, mxnet as mx
        from mxnet import gluon
        sys.path.insert(0, {str(tools)!r})
        from gen_mxnet_family import build_family_net
        d = {str(tmp_path)!r}
        x = mx.nd.array(np.load(os.path.join(d, "x.npy")))
        net = build_family_net()
        net.load_parameters(os.path.join(d, "ours.params"))
        np.save(os.path.join(d, "theirs.npy"), net(x).asnumpy())
        sym = gluon.SymbolBlock.imports(
            os.path.join(d, "exp-symbol.json"), ["data"], os.path.join(d, "exp-0003.params")
        )
        np.save(os.path.join(d, "imported.npy"), sym(x).asnumpy())
    """)
    env = {**os.environ, "MXNET_MKLDNN_ENABLED": "0"}
    subprocess.run([MXNET_PY, "-c", script], check=True, env=env, capture_output=True)
    np.testing.assert_allclose(np.load(tmp_path / "theirs.npy"), ours, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.load(tmp_path / "imported.npy"), ours, rtol=1e-4, atol=1e-5)


# -- Conv2DTranspose ------------------------------------------------------------------------


def _convT_ref(x, w, b, stride, padding, output_padding, groups, dilation):
    return ref_conv_transpose2d(x, w, b, stride, padding, output_padding, groups, dilation)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_conv2d_transpose_values_and_gradients_against_the_reference(layout):
    """Asymmetric everything, groups, deferred in_channels, NHWC through the OHWI-like
    ``(in, kh, kw, out/groups)`` view: output ``(H-1)*s - 2p + d*(k-1) + 1 + op``, values
    and every gradient against the float64 reference."""
    kw = dict(strides=(2, 3), padding=(1, 0), output_padding=(1, 2), dilation=(2, 1),
              groups=2, layout=layout, activation="tanh")  # fmt: skip
    with gluon.NameManager():
        net = nn.Conv2DTranspose(6, (3, 2), **kw)
    net.cast("float64")
    net.initialize(init.Normal(0.5))
    x = torch.randn(2, 4, 5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    xin = (x if layout == "NCHW" else x.permute(0, 2, 3, 1)).clone().requires_grad_(True)
    out = net(xin)
    ho, wo = (5 - 1) * 2 - 2 + 2 * (3 - 1) + 1 + 1, (4 - 1) * 3 + 1 * (2 - 1) + 1 + 2
    assert (ho, wo) == (12, 13) and net.in_channels == 4
    assert out.shape == ((2, 6, ho, wo) if layout == "NCHW" else (2, ho, wo, 6))
    net.bias.set_data(torch.linspace(-1, 1, 6))
    out = net(xin)
    w = net.weight.data()  # (4, 3, 3, 2) NCHW, (4, 3, 2, 3) NHWC
    assert w.shape == ((4, 3, 3, 2) if layout == "NCHW" else (4, 3, 2, 3))
    w_t = (w if layout == "NCHW" else w.permute(0, 3, 1, 2)).detach().clone().requires_grad_(True)
    b_t = net.bias.data().detach().clone().requires_grad_(True)
    x_t = x.clone().requires_grad_(True)
    ref = _convT_ref(x_t, w_t, b_t, (2, 3), (1, 0), (1, 2), 2, (2, 1)).tanh()
    assert ref.std() > 0.1
    out_nchw = out if layout == "NCHW" else out.permute(0, 3, 1, 2)
    torch.testing.assert_close(out_nchw, ref, rtol=1e-10, atol=1e-10)
    g = torch.randn(ref.shape, dtype=torch.float64)
    ref.backward(g)
    out_nchw.backward(g)
    xg = xin.grad if layout == "NCHW" else xin.grad.permute(0, 3, 1, 2)
    wg = net.weight.grad() if layout == "NCHW" else net.weight.grad().permute(0, 3, 1, 2)
    for name, got, want in (("x", xg, x_t.grad), ("weight", wg, w_t.grad),
                            ("bias", net.bias.grad(), b_t.grad)):  # fmt: skip
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10, msg=name)


def test_conv2d_transpose_gradcheck_batch0_and_memory_layouts():
    with gluon.NameManager():
        net = nn.Conv2DTranspose(4, (2, 3), strides=(1, 2), padding=(0, 1), output_padding=(0, 1),
                                 groups=2, in_channels=2)  # fmt: skip
    net.cast("float64")
    net.initialize(init.Normal(0.5))
    x = torch.randn(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(net, (x,))
    # batch 0: the output's shape, and gradients that exist (zero)
    empty = torch.zeros(0, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    out = net(empty)
    assert out.shape == (0, 4, 4, 6)
    out.sum().backward()
    assert empty.grad.shape == empty.shape and torch.all(net.weight.grad() == 0)
    # channels_last and non-contiguous inputs give the same numbers
    x = torch.randn(2, 2, 4, 5, dtype=torch.float64)
    want = net(x)
    torch.testing.assert_close(net(x.to(memory_format=torch.channels_last)), want)
    torch.testing.assert_close(net(torch.stack([x, x], -1)[..., 1]), want)


def test_conv2d_transpose_state_dict_and_params_round_trips(tmp_path):
    """torch state dict = torch.nn.ConvTranspose2d's (same numbers), loadable into a
    deferred layer; Gluon's legacy single-layer .params path."""
    torch.manual_seed(2)
    with gluon.NameManager():
        net = nn.Conv2DTranspose(6, 3, strides=2, padding=1, output_padding=1, groups=3,
                                 in_channels=3)  # fmt: skip
        deferred = nn.Conv2DTranspose(6, 3, strides=2, padding=1, output_padding=1, groups=3)
    net.initialize(init.Xavier())
    assert isinstance(net, torch.nn.ConvTranspose2d)
    sd = net.state_dict()
    assert list(sd) == ["weight", "bias"] and sd["weight"].shape == (3, 2, 3, 3)
    torch_conv = torch.nn.ConvTranspose2d(3, 6, 3, 2, 1, 1, groups=3)
    torch_conv.load_state_dict(sd)
    x = torch.randn(2, 3, 4, 5)
    torch.testing.assert_close(net(x), torch_conv(x))
    deferred.load_state_dict(sd)
    assert deferred.weight.shape == (3, 2, 3, 3) and deferred.in_channels == 3
    torch.testing.assert_close(deferred(x), torch_conv(x))
    net.save_parameters(str(tmp_path / "t.params"))
    assert list(loads((tmp_path / "t.params").read_bytes())) == ["weight", "bias"]
    with gluon.NameManager():
        fresh = nn.Conv2DTranspose(6, 3, strides=2, padding=1, output_padding=1, groups=3)
    fresh.load_parameters(str(tmp_path / "t.params"))
    torch.testing.assert_close(fresh(x), torch_conv(x))
    # MXNet's Xavier fans on the Gluon weight (in, out/groups, kh, kw) as it is
    bound = (3 / ((2 * 9 + 3 * 9) / 2)) ** 0.5
    assert 0.8 * bound < net.weight.data().abs().max() <= bound


def test_conv2d_transpose_default_init_and_deferred_groups():
    """U(-0.07, 0.07) weight and zero bias from initialize(); a grouped layer with deferred
    in_channels works (MXNet 1.9.1 fails to construct it: its shape inference checks
    0 % groups as (unknown) -1 % groups)."""
    torch.manual_seed(0)
    with gluon.NameManager():
        net = nn.Conv2DTranspose(64, 3, groups=2)
    net.initialize()
    out = net(torch.ones(1, 64, 3, 3))
    assert out.shape == (1, 64, 5, 5) and net.weight.shape == (64, 32, 3, 3)
    w = net.weight.data()
    assert -0.07 <= w.min() < -0.069 and 0.069 < w.max() <= 0.07
    assert torch.all(net.bias.data() == 0)


CONVT_ERRORS = [
    (
        {"output_padding": 1},  # strides 1; MXNet's rule ignores the dilation
        gluon.MXNetValueError,
        "Check failed: param_.stride[0]-1 >= o_adj[0] (0 vs. 1) : adj(y) must be samller than "
        "stride[0]; received output_padding=(1, 1), strides=(1, 1)",
    ),
    (
        {"strides": (2, 1), "output_padding": (1, 1), "dilation": 2},
        gluon.MXNetValueError,
        "Check failed: param_.stride[1]-1 >= o_adj[1] (0 vs. 1) : adj(x) must be samller than "
        "stride[1]; received output_padding=(1, 1), strides=(2, 1)",
    ),
    (
        {"output_padding": (1, 1, 1)},
        gluon.GluonAssertionError,
        "output_padding must be a number or a list of 2 ints; received output_padding=(1, 1, 1)",
    ),
    (
        {"strides": 2, "output_padding": 1.0},
        gluon.MXNetTypeError,
        "Invalid Parameter format for adj expect Shape(tuple) but value='(1.0, 1.0)'; "
        "received output_padding=(1.0, 1.0)",
    ),
    (
        {"kernel_size": (3, 3, 3)},
        gluon.GluonAssertionError,
        "kernel_size must be a number or a list of 2 ints; received kernel_size=(3, 3, 3)",
    ),
    (
        {"layout": "NCW"},
        gluon.GluonAssertionError,
        "Only supports 'NCHW' and 'NHWC' layout for now; received layout='NCW'",
    ),
    (
        {"channels": 0},
        gluon.MXNetValueError,
        "value 0 for Parameter num_filter should be greater equal to 1; received channels=0",
    ),
    (
        {"channels": 5, "groups": 2},
        gluon.MXNetValueError,
        "Check failed: param_.num_filter % param_.num_group == 0U (1 vs. 0) : output num_filter "
        "must divide group size; received channels=5, groups=2",
    ),
    (
        {"in_channels": 3, "groups": 2},
        gluon.MXNetValueError,
        "Check failed: dshape[1] % param_.num_group == 0U (1 vs. 0) : input num_filter must "
        "divide group size; received in_channels=3, groups=2",
    ),
    (
        {"strides": 0},
        gluon.MXNetValueError,
        "Check failed: param_.stride.Size() > 0U (0 vs. 0) : incorrect stride size: [0,0]; "
        "received strides=(0, 0)",
    ),
    (
        {"padding": -1},  # MXNet accepts it and fails in the kernel (a crop)
        gluon.MXNetValueError,
        "`padding` must be non-negative integers; received padding=(-1, -1)",
    ),
    (
        {"strides": 2, "output_padding": -1},  # MXNet accepts it and fails in the kernel
        gluon.MXNetValueError,
        "`output_padding` must be non-negative integers; received output_padding=(-1, -1)",
    ),
    (
        {"activation": "gelu"},
        gluon.MXNetValueError,
        f"Invalid Input: 'gelu', valid values are: {ACTS}, in operator "
        'Activation(name="", act_type="gelu"); received activation=\'gelu\'',
    ),
]


@pytest.mark.parametrize(("kwargs", "exc", "message"), CONVT_ERRORS)
def test_conv2d_transpose_constructor_errors(kwargs, exc, message):
    args = {"channels": 4, "kernel_size": 3, **kwargs}
    with pytest.raises(exc, match="^" + re.escape(message) + "$") as info:
        nn.Conv2DTranspose(**args)
    assert type(info.value) is exc
    assert isinstance(info.value, ValueError | TypeError)
    assert isinstance(info.value, gluon.MXNetError | AssertionError)


def test_conv2d_transpose_first_forward_errors():
    with gluon.NameManager():
        deferred = nn.Conv2DTranspose(4, 3, groups=2)
        known = nn.Conv2DTranspose(4, 3, in_channels=2)
    deferred.initialize()
    known.initialize()
    with pytest.raises(
        ValueError,
        match=r"^Deferred initialization failed because shape cannot be inferred\. MXNetError: "
        r"Error in operator conv0_fwd: Check failed: dshape\[1\] % param_\.num_group == 0U "
        r"\(1 vs\. 0\) : input num_filter must divide group size$",
    ):
        deferred(torch.ones(1, 3, 5, 5))
    with pytest.raises(ValueError, match=r"Deferred initialization failed .* should be 4D"):
        deferred(torch.ones(3, 5, 5))
    with pytest.raises(
        gluon.MXNetValueError,
        match=r"^Shape inconsistent, Provided = \[2,4,3,3\], inferred shape=\(3,4,3,3\)$",
    ):
        known(torch.ones(1, 3, 5, 5))
    with gluon.NameManager():
        big_pad = nn.Conv2DTranspose(4, 3, padding=3, in_channels=2)
    big_pad.initialize()
    with pytest.raises(gluon.MXNetValueError, match="the output would be -2x-2 for input size 2x2"):
        big_pad(torch.ones(1, 2, 2, 2))


# -- DeformableConvolution / ModulatedDeformableConvolution ----------------------------------


def _deform_layer(cls, cout, cin, dtype=torch.float64, **kw):
    with gluon.NameManager():
        net = cls(cout, in_channels=cin, **kw)
    net.cast(dtype)
    net.initialize(init.Normal(0.5))
    net.offset_weight.set_data(torch.randn(net.offset_weight.shape, dtype=dtype) * 0.3)
    if net.offset_bias is not None:
        net.offset_bias.set_data(torch.randn(net.offset_bias.shape, dtype=dtype) * 0.5)
    if net.deformable_conv_bias is not None:
        net.deformable_conv_bias.set_data(torch.randn(net.deformable_conv_bias.shape, dtype=dtype))
    return net


DCN_CONFIGS = [
    dict(kernel_size=3, padding=1),
    dict(
        kernel_size=(3, 2),
        strides=(2, 1),
        padding=(1, 0),
        dilation=(1, 2),
        groups=2,
        num_deformable_group=2,
    ),
    dict(
        kernel_size=(2, 3),
        padding=(0, 1),
        use_bias=False,
        offset_use_bias=False,
        activation="softrelu",
        num_deformable_group=4,
    ),
]


@pytest.mark.parametrize("kw", DCN_CONFIGS)
def test_modulated_gradients_against_the_float64_reference(kw):
    """MXNet 1.9.1 has no CPU backward for its modulated operator; every gradient of the
    Gluon block against the float64 reference (offset conv, slice, ``2*sigmoid`` mask,
    DCNv2 with zero outside ``(-1, H) x (-1, W)``, the rule of MXNet's CUDA kernel)."""
    torch.manual_seed(4)
    net = _deform_layer(cnn.ModulatedDeformableConvolution, 4, 4, **kw)
    x = torch.randn(2, 4, 6, 5, dtype=torch.float64)
    net(x)  # the deferred deformable weight
    net.deformable_conv_weight.set_data(torch.randn(net.deformable_conv_weight.shape,
                                                    dtype=torch.float64) * 0.5)  # fmt: skip
    names = ["offset_weight", "offset_bias", "deformable_conv_weight", "deformable_conv_bias"]
    present = [n for n in names if getattr(net, n) is not None]
    kwo, kwd = net._kwargs_offset, net._kwargs_deformable_conv
    split = net.offset_split_index

    def ref(x, ow, ob=None, w=None, b=None):
        if w is None:  # no offset bias: (x, ow, w[, b])
            w, b, ob = ob, w, None
        p = kwo["pad"]
        off = ref_conv2d(x, ow, ob, kwo["stride"], (p[0], p[0], p[1], p[1]), kwo["dilate"],
                         kwo["num_group"])  # fmt: skip
        mask = 2 * torch.sigmoid(off[:, split:])
        out = ref_deform_conv2d(x, off[:, :split], w, b, kwd["stride"], kwd["pad"],
                                kwd["dilate"], mask)  # fmt: skip
        act = kw.get("activation")
        return out if act is None else torch.nn.functional.softplus(out)

    x_t = x.clone().requires_grad_(True)
    params_t = [getattr(net, n).data().detach().clone().requires_grad_(True) for n in present]
    expect = ref(x_t, *params_t)
    x_o = x.clone().requires_grad_(True)
    out = net(x_o)
    torch.testing.assert_close(out, expect, rtol=1e-10, atol=1e-10)
    g = torch.randn(out.shape, dtype=torch.float64)
    expect.backward(g)
    out.backward(g)
    torch.testing.assert_close(x_o.grad, x_t.grad, rtol=1e-10, atol=1e-10)
    for n, t in zip(present, params_t, strict=True):
        torch.testing.assert_close(getattr(net, n).grad(), t.grad, rtol=1e-10, atol=1e-10, msg=n)
    assert x_t.grad.abs().max() > 0.1 and params_t[0].grad.abs().max() > 0.01


def test_v1_border_rule_matches_mxnet_and_differs_exactly_at_the_border():
    """The raw operators on hand-placed sample positions (mxnet_deform_border.npz): DCNv1
    (MXNet's border rule) matches MXNet's values and every gradient, DCNv2 (omniconv's
    rule) matches MXNet's modulated values, and the two differ exactly at the output pixels
    with a sample in the strips ``(-1, 0)``, ``(H - 1, H)`` (rows) or the same for columns,
    inside the other coordinate's ``(-1, size)``, and nowhere else."""
    from omniconv.compat.gluon import _ndarray
    from omniconv.functional import deform_conv2d

    z = np.load(FIX / "mxnet_deform_border.npz")
    kwargs = dict(kernel=(3, 3), stride=(1, 1), dilate=(1, 1), pad=(1, 1), num_filter=2,
                  num_group=1, num_deformable_group=2, no_bias=False, layout="NCHW")  # fmt: skip
    t = {k: torch.from_numpy(z[k]).requires_grad_(True) for k in ("x", "offset", "weight", "bias")}
    v1 = _ndarray.contrib.DeformableConvolution(t["x"], t["offset"], t["weight"], t["bias"],
                                                **kwargs)  # fmt: skip
    np.testing.assert_allclose(v1.detach().numpy(), z["v1_out"], rtol=1e-10, atol=1e-10)
    v1.backward(torch.from_numpy(z["grad_out"]))
    for k, leaf in t.items():
        np.testing.assert_allclose(leaf.grad.numpy(), z[f"v1_grad_{k}"], rtol=1e-10, atol=1e-10,
                                   err_msg=k)  # fmt: skip
    v2 = deform_conv2d(t["x"], t["offset"], t["weight"], t["bias"], 1, 1, 1)
    np.testing.assert_allclose(v2.detach().numpy(), z["v2_out"], rtol=1e-10, atol=1e-10)
    h, w = z["x"].shape[2:]
    ph, pw = z["pos_h"], z["pos_w"]  # (N, dg, kh, kw, H_out, W_out)
    sampled_by_v2 = (ph > -1) & (ph < h) & (pw > -1) & (pw < w)
    same_rule = (ph >= 0) & (ph <= h - 1) & (pw >= 0) & (pw <= w - 1)
    differs = (sampled_by_v2 & ~same_rule).any(axis=(1, 2, 3))  # (N, H_out, W_out)
    gap = np.abs(z["v1_out"] - z["v2_out"]).max(axis=1)
    assert 0.2 < differs.mean() < 0.98  # both kinds of pixels occur
    assert gap[differs].min() > 1e-6 and gap[~differs].max() < 1e-12
    for size, pos in ((h, ph), (w, pw)):  # every special position occurs
        assert {-1.0, -0.5, 0.0, size - 1.0, size - 0.5, float(size)} <= set(np.unique(pos))


def test_v1_gradcheck_away_from_the_kinks():
    """DCNv1's eager operator (MXNet's rule) passes gradcheck where no sample is within
    0.1 of an integer row or column (the rule's jumps and kinks)."""
    from omniconv.compat.gluon import _ndarray

    g = torch.Generator().manual_seed(6)
    x = torch.randn(1, 2, 4, 5, dtype=torch.float64, generator=g, requires_grad=True)
    off = torch.randn(1, 2 * 2 * 6, 4, 3, dtype=torch.float64, generator=g) * 1.5
    off = (torch.floor(off) + 0.1 + 0.8 * (off - torch.floor(off))).requires_grad_(True)
    w = torch.randn(4, 1, 2, 3, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, generator=g, requires_grad=True)
    kwargs = dict(kernel=(2, 3), stride=(1, 2), dilate=(2, 1), pad=(1, 1), num_filter=4,
                  num_group=2, num_deformable_group=2, no_bias=False, layout="NCHW")  # fmt: skip

    def fn(x, off, w, b):
        return _ndarray.contrib.DeformableConvolution(x, off, w, b, **kwargs)

    assert fn(x, off, w, b).shape == (1, 4, 4, 3)
    torch.autograd.gradcheck(fn, (x, off, w, b))


@pytest.mark.parametrize("cls", [cnn.DeformableConvolution, cnn.ModulatedDeformableConvolution])
def test_deformable_blocks_batch0_layouts_hybridize_and_state(cls, tmp_path):
    torch.manual_seed(7)
    net = _deform_layer(cls, 4, 2, kernel_size=3, padding=1, num_deformable_group=2)
    x = torch.randn(2, 2, 5, 6, dtype=torch.float64)
    want = net(x)
    # channels_last and non-contiguous inputs
    torch.testing.assert_close(net(x.to(memory_format=torch.channels_last)), want)
    torch.testing.assert_close(net(torch.stack([x, x], -1)[..., 0]), want)
    # batch 0
    empty = torch.zeros(0, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    out = net(empty)
    assert out.shape == (0, 4, 5, 6)
    out.sum().backward()
    assert empty.grad.shape == empty.shape
    # torch state dict into a fresh (deferred) block, Gluon's .params file
    sd = net.state_dict()
    keys = ["offset_weight", "offset_bias", "deformable_conv_weight", "deformable_conv_bias"]
    assert sorted(sd) == sorted(keys)
    assert list(sd) == (keys if cls is cnn.DeformableConvolution else keys[2:] + keys[:2])
    with gluon.NameManager():
        fresh = cls(4, 3, padding=1, num_deformable_group=2)
    fresh.cast("float64")
    fresh.load_state_dict(sd)
    torch.testing.assert_close(fresh(x), want)
    net.save_parameters(str(tmp_path / "d.params"))
    with gluon.NameManager():
        loaded = cls(4, 3, padding=1, num_deformable_group=2)
    loaded.cast("float64")
    loaded.load_parameters(str(tmp_path / "d.params"))
    torch.testing.assert_close(loaded(x), want)
    # hybridize: torch.compile of the eager forward, same numbers
    net.hybridize(backend="eager")
    net(x)
    torch.testing.assert_close(net(x), want)
    assert net._compiled is not None


def test_deformable_init_rules_and_deferred_weight():
    """Offsets start at zero (zero offset weight and bias: a plain convolution), the
    deformable weight is U(-0.07, 0.07) and deferred until the first forward even with
    in_channels given, as in MXNet."""
    torch.manual_seed(8)
    with gluon.NameManager():
        dcn = cnn.DeformableConvolution(8, 3, padding=1, in_channels=4)
    dcn.initialize()
    assert torch.all(dcn.offset_weight.data() == 0) and dcn.offset_weight.shape == (18, 4, 3, 3)
    with pytest.raises(
        gluon.DeferredInitializationError,
        match=r"^Parameter 'deformable_conv0_deformable_conv_weight' has not been initialized yet "
        r"because initialization was deferred",
    ):
        dcn.deformable_conv_weight.data()
    x = torch.randn(2, 4, 5, 5)
    out = dcn(x)
    w = dcn.deformable_conv_weight.data()
    assert -0.07 <= w.min() < -0.06 and 0.06 < w.max() <= 0.07
    assert torch.all(dcn.deformable_conv_bias.data() == 0)
    plain = ref_conv2d(x.double(), w.double(), None, 1, (1, 1, 1, 1), 1, 1)
    torch.testing.assert_close(out.double(), plain, rtol=1e-5, atol=1e-6)


DCN_ERRORS = [
    (
        cnn.DeformableConvolution,
        {"layout": "NHWC"},  # MXNet: at the first forward
        gluon.MXNetValueError,
        "Invalid Input: 'NHWC', valid values are: {None, 'NCDHW', 'NCHW', 'NCW'}, in operator "
        "_contrib_DeformableConvolution; received layout='NHWC'",
    ),
    (
        cnn.ModulatedDeformableConvolution,
        {"layout": "NCW"},
        gluon.GluonAssertionError,
        "Only supports 'NCHW' and 'NHWC' layout for now; received layout='NCW'",
    ),
    (
        cnn.ModulatedDeformableConvolution,
        {"groups": 2, "in_channels": 4},  # the offset conv's 27 channels
        gluon.MXNetValueError,
        "Check failed: param_.num_filter % param_.num_group == 0U (1 vs. 0) : output num_filter "
        "must divide group size; received num_deformable_group=1, groups=2",
    ),
    (
        cnn.DeformableConvolution,
        {"num_deformable_group": 0},
        gluon.MXNetValueError,
        "value 0 for Parameter num_filter should be greater equal to 1; received "
        "num_deformable_group=0",
    ),
    (
        cnn.DeformableConvolution,
        {"channels": 0},  # MXNet: at the first forward
        gluon.MXNetValueError,
        "value 0 for Parameter num_filter should be greater equal to 1; received channels=0",
    ),
    (
        cnn.DeformableConvolution,
        {"channels": 5, "groups": 2, "in_channels": 4},  # MXNet: at the first forward
        gluon.MXNetValueError,
        "Check failed: param_.num_filter % param_.num_group == 0U (1 vs. 0) : output num_filter "
        "must divide group size; received channels=5, groups=2",
    ),
    (
        cnn.DeformableConvolution,
        {"num_deformable_group": 3, "in_channels": 4},
        gluon.MXNetValueError,
        "Check failed: dshape[1] % param_.num_deformable_group == 0U (1 vs. 0) : input "
        "num_filter must divide deformable group size; received in_channels=4, "
        "num_deformable_group=3",
    ),
    (
        cnn.ModulatedDeformableConvolution,
        {"channels": 3, "num_deformable_group": 2},  # MXNet: at the first forward
        gluon.MXNetValueError,
        "Check failed: oshape[1] % param_.num_deformable_group == 0U (1 vs. 0) : output "
        "num_filter must divide deformable group size; received channels=3, "
        "num_deformable_group=2",
    ),
    (
        cnn.DeformableConvolution,
        {"adj": (1, 1)},
        gluon.MXNetTypeError,
        "Cannot find argument 'adj', in operator Convolution; received adj=(1, 1)",
    ),
    (
        cnn.DeformableConvolution,
        {"strides": (1, 1, 1)},
        gluon.MXNetValueError,
        "Check failed: param_.kernel.ndim() == param_.stride.ndim() (2 vs. 3) : Stride must have "
        "the same number of dimensions with kernel_size,but kernel_size is set to [3,3] while "
        "stride is [1,1,1]; received strides=(1, 1, 1)",
    ),
    (
        cnn.ModulatedDeformableConvolution,
        {"activation": "gelu"},  # MXNet: at the first forward
        gluon.MXNetValueError,
        f"Invalid Input: 'gelu', valid values are: {ACTS}, in operator "
        'Activation(name="", act_type="gelu"); received activation=\'gelu\'',
    ),
]


@pytest.mark.parametrize(("cls", "kwargs", "exc", "message"), DCN_ERRORS)
def test_deformable_constructor_errors(cls, kwargs, exc, message):
    args = {"channels": 4, "kernel_size": 3, **kwargs}
    with pytest.raises(exc, match="^" + re.escape(message) + "$") as info:
        cls(**args)
    assert type(info.value) is exc
    assert isinstance(info.value, ValueError | TypeError)
    assert isinstance(info.value, gluon.MXNetError | AssertionError)


def test_deformable_first_forward_errors():
    """MXNet's shape-inference errors, named after the operator that fails (the offset
    conv ``convolution0`` or the deformable ``fwd``), wrapped while initialisation is
    deferred (always at the first forward: the deformable weight is always deferred)."""
    deferred = "Deferred initialization failed because shape cannot be inferred. MXNetError: "
    cases = [
        ({"num_deformable_group": 3}, (1, 4, 5, 5),
         deferred + "Error in operator deformable_conv0_fwd: Check failed: dshape[1] % "
         "param_.num_deformable_group == 0U (1 vs. 0) : input num_filter must divide deformable "
         "group size"),
        ({"in_channels": 2}, (1, 4, 5, 5),
         deferred + "Error in operator deformable_conv0_convolution0: Shape inconsistent, "
         "Provided = [18,2,3,3], inferred shape=(18,4,3,3)"),
        ({"kernel_size": 7}, (1, 4, 5, 5),
         deferred + "Error in operator deformable_conv0_convolution0: Check failed: "
         "dilated_ksize_y <= AddPad(dshape[2], param_.pad[0]) (7 vs. 5) : kernel size exceed "
         "input"),
        ({"groups": 2}, (1, 3, 5, 5),
         deferred + "Error in operator deformable_conv0_convolution0: Check failed: dshape[1] % "
         "param_.num_group == 0U (1 vs. 0) : input num_filter must divide group size"),
    ]  # fmt: skip
    for kwargs, shape, message in cases:
        args = {"channels": 4, "kernel_size": 3, **kwargs}
        with gluon.NameManager():
            net = cnn.DeformableConvolution(**args)
        net.initialize()
        with pytest.raises(ValueError, match="^" + re.escape(message) + "$") as info:
            net(torch.ones(shape))
        assert type(info.value) is ValueError  # MXNet's own type here
    with gluon.NameManager():
        net = cnn.DeformableConvolution(4, 3, in_channels=2)
    net.initialize()
    net(torch.ones(1, 2, 5, 5))
    with pytest.raises(
        gluon.MXNetValueError,
        match=r"^Shape inconsistent, Provided = \[18,2,3,3\], inferred shape=\(18,3,3,3\)$",
    ):
        net(torch.ones(1, 3, 5, 5))
    from omniconv.compat.gluon import _ndarray

    kwargs = dict(kernel=(3, 3), stride=(1, 1), dilate=(1, 1), pad=(1, 1), num_filter=2,
                  num_group=1, num_deformable_group=1, no_bias=True, layout="NCHW")  # fmt: skip
    x, w = torch.ones(1, 2, 5, 5), torch.ones(2, 2, 3, 3)
    with pytest.raises(gluon.MXNetValueError, match=r"^output height must equal to offset map "
                       r"height \(5\); received offset\.shape=\(1, 18, 4, 5\)$"):  # fmt: skip
        _ndarray.contrib.DeformableConvolution(x, torch.zeros(1, 18, 4, 5), w, **kwargs)
    with pytest.raises(gluon.MXNetValueError, match=r"^offset filter must divide deformable "
                       r"group size .*; received mask\.shape=\(1, 18, 5, 5\)$"):  # fmt: skip
        _ndarray.contrib.ModulatedDeformableConvolution(
            x, torch.zeros(1, 18, 5, 5), torch.zeros(1, 18, 5, 5), w, **kwargs
        )
    with pytest.raises(gluon.MXNetValueError, match=r"^Input offset should be 4D"):
        _ndarray.contrib.DeformableConvolution(x, torch.zeros(18, 5, 5), w, **kwargs)


def test_family_import_paths_mirror_mxnet():
    import importlib

    layers = importlib.import_module("omniconv.compat.gluon.contrib.cnn.conv_layers")
    assert gluon.contrib.cnn is cnn and gluon.nn.Conv2DTranspose is gluon.Conv2DTranspose
    assert cnn.DeformableConvolution is layers.DeformableConvolution
    assert cnn.ModulatedDeformableConvolution is layers.ModulatedDeformableConvolution
    with gluon.NameManager():
        net = nn.HybridSequential()
        with net.name_scope():
            net.add(cnn.DeformableConvolution(4, 3, padding=1, in_channels=2))
    net.initialize()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        net.summary(torch.ones(1, 2, 5, 5))
    # as MXNet 1.9.1 prints it: the offset conv (18*2*9 + 18), the deformable (4*2*9 + 4)
    assert "DeformableConvolution-1" in buf.getvalue()
    assert "Total params: 418" in buf.getvalue()


@pytest.mark.parametrize("cls", [cnn.DeformableConvolution, cnn.ModulatedDeformableConvolution])
def test_deformable_blocks_gradcheck(cls):
    """The whole block (offset conv, offsets and mask from the data, deformable conv) with
    random offset weights: no sample sits on a kink of the sampling rule."""
    torch.manual_seed(9)
    net = _deform_layer(cls, 2, 2, kernel_size=(2, 3), strides=(1, 2), padding=1,
                        num_deformable_group=2)  # fmt: skip
    x = torch.randn(1, 2, 4, 5, dtype=torch.float64, requires_grad=True)
    assert net(x).shape == (1, 2, 5, 3)
    torch.autograd.gradcheck(net, (x,))


def test_eager_operators_for_user_blocks():
    """``F.Deconvolution`` (NCHW and NHWC, whose weight is ``(I, kh, kw, O/groups)``) and
    ``F.slice_axis`` as a user ``hybrid_forward`` calls them."""
    from omniconv.compat.gluon import _ndarray

    g = torch.Generator().manual_seed(10)
    x = torch.randn(2, 4, 3, 5, dtype=torch.float64, generator=g)
    w = torch.randn(4, 3, 3, 2, dtype=torch.float64, generator=g)
    b = torch.randn(6, dtype=torch.float64, generator=g)
    kw = dict(kernel=(3, 2), stride=(2, 1), dilate=(1, 2), pad=(1, 0), adj=(1, 0),
              num_filter=6, num_group=2, no_bias=False)  # fmt: skip
    want = ref_conv_transpose2d(x, w, b, (2, 1), (1, 0), (1, 0), 2, (1, 2))
    got = _ndarray.Deconvolution(x, w, b, layout="NCHW", **kw)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    nhwc = _ndarray.Deconvolution(
        x.permute(0, 2, 3, 1), w.permute(0, 2, 3, 1), b, layout="NHWC", **kw
    )
    torch.testing.assert_close(nhwc.permute(0, 3, 1, 2), want, rtol=1e-10, atol=1e-10)
    assert torch.equal(_ndarray.slice_axis(x, axis=1, begin=1, end=None), x[:, 1:])
    assert torch.equal(_ndarray.slice_axis(x, axis=-1, begin=-3, end=-1), x[..., -3:-1])
