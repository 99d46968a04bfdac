"""The MegEngine front-end (``omniconv.compat.megengine``): MegEngine's documented
example, argument rules and error texts, layouts and initialisation, state dicts, the
numbers against the float64 reference (conv_mode, padding_mode, compute_mode), the
Tensor mirror, ``functional.pad`` and ``module.init``."""

from __future__ import annotations

import copy
import logging
import math
import re
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from _helpers import (
    F64,
    H_B,
    TOL32,
    TOL64,
    W_B,
    away_from_integers,
    border_offsets,
    compare,
    out_size,
    rand,
    relayout,
)
from reference import ref_conv2d, ref_conv_transpose2d, ref_deform_conv2d
from torch.utils._python_dispatch import TorchDispatchMode

import omniconv.compat.megengine as mge
import omniconv.compat.megengine.functional as MF
import omniconv.compat.megengine.module as M
from omniconv.compat.megengine.module import init

# --------------------------------------------------------------------------- the example


def test_documented_example_runs_with_only_the_import_changed(capsys):
    # MegEngine's Conv2d docstring example; only the imports differ
    src = textwrap.dedent(
        """
        import numpy as np
        import omniconv.compat.megengine as mge
        import omniconv.compat.megengine.module as M
        m = M.Conv2d(in_channels=3, out_channels=1, kernel_size=3)
        inp = mge.tensor(np.arange(0, 96).astype("float32").reshape(2, 3, 4, 4))
        oup = m(inp)
        print(oup.numpy().shape)
        """
    )
    scope: dict = {}
    exec(compile(src, "<megengine example>", "exec"), scope)
    assert capsys.readouterr().out == "(2, 1, 2, 2)\n"
    # the values: the float64 reference with the layer's parameters (MegEngine's init:
    # weight (1, 3, 3, 3) ~ N(0, 1/27), bias (1, 1, 1, 1) zero)
    m, inp, oup = scope["m"], scope["inp"], scope["oup"]
    w, b = m.weight.detach().double(), m.bias.detach().double()
    assert w.shape == (1, 3, 3, 3) and b.shape == (1, 1, 1, 1) and not b.any()
    expect = ref_conv2d(inp.double(), w, b.reshape(-1), 1, (0, 0, 0, 0), 1, 1)
    torch.testing.assert_close(torch.from_numpy(oup.numpy()).double(), expect, **TOL32)
    assert np.abs(oup.numpy()).max() > 1  # inputs 0..95: not a vacuous comparison


def test_outputs_are_megengine_tensors_and_still_train():
    m = M.Conv2d(3, 4, 3, padding=1)
    out = m(torch.randn(2, 3, 5, 5))  # a plain torch input still gives a MegEngine Tensor
    assert type(out) is mge.Tensor and out.requires_grad
    arr = out.numpy()
    assert isinstance(arr, np.ndarray) and arr.shape == (2, 4, 5, 5)
    y = (out * 2).relu().sum()
    assert type(y) is mge.Tensor
    arr[...] = 0  # .numpy() is a copy, never an alias
    assert out.detach().abs().sum() > 0
    y.backward()
    assert m.weight.grad is not None and m.bias.grad is not None
    before = m.weight.detach().clone()
    torch.optim.SGD(m.parameters(), lr=0.1).step()
    assert not torch.equal(before, m.weight.detach())


# --------------------------------------------------------------------------- Tensor mirror


def test_tensor_dtypes_and_parameter():
    assert mge.tensor(np.zeros(3)).dtype == torch.float32  # MegEngine has no float64
    assert mge.tensor([1, 2]).dtype == torch.int32
    assert mge.tensor(np.zeros(3), dtype="float64").dtype == F64
    assert mge.tensor(np.zeros(2, np.float16)).dtype == torch.float16
    assert mge.Tensor is mge.tensor(1.0).__class__
    p = mge.Parameter(np.ones(3, np.float32))
    assert isinstance(p, torch.nn.Parameter) and p.requires_grad and p.is_leaf
    assert type(p * 2) is mge.Tensor  # ops on a Parameter give Tensors, as in MegEngine
    holder = M.Module()
    holder.p = p
    assert [n for n, _ in holder.named_parameters()] == ["p"]
    q = copy.deepcopy(p)
    assert type(q) is mge.Parameter and isinstance(q, torch.nn.Parameter) and q.requires_grad
    assert np.array_equal(mge.tensor([1.5]).astype("float16").numpy(), np.array([1.5], np.float16))


# --------------------------------------------------------------------------- arguments


def _raises(exc, message, fn):
    """``fn()`` raises exactly ``exc`` (also a ValueError / TypeError) with ``message``."""
    with pytest.raises(exc, match="^" + re.escape(message) + "$") as info:
        fn()
    assert type(info.value) is exc and isinstance(info.value, ValueError | TypeError)


AE = mge.MegEngineAssertionError  # an AssertionError (MegEngine's type) and a ValueError


def test_get_ndtuple_rules():
    m = M.Conv2d(2, 2, np.int32(3), stride=np.int64(2), padding=(1, 2), dilation=[1, 2])
    assert (m.kernel_size, m.stride, m.padding, m.dilation) == ((3, 3), (2, 2), (1, 2), (1, 2))
    # stricter than MegEngine's int(): floats do not truncate, a string is not digits
    _raises(
        TypeError,
        "`kernel_size` must be an int or a sequence of 2 ints; received kernel_size=3.7",
        lambda: M.Conv2d(2, 2, 3.7),
    )
    _raises(
        TypeError,
        "`padding` must be an int or a sequence of 2 ints; received padding='12'",
        lambda: M.Conv2d(2, 2, 3, padding="12"),
    )
    _raises(
        TypeError,
        "`dilation` must be an int or a sequence of 2 ints; received dilation=(1.9, 2)",
        lambda: M.Conv2d(2, 2, 3, dilation=(1.9, 2)),
    )
    assert issubclass(AE, AssertionError) and issubclass(AE, ValueError)
    _raises(
        AE, "tuple len is not equal to n: 3; received kernel_size='3'", lambda: M.Conv2d(2, 2, "3")
    )
    _raises(
        AE,
        "tuple len is not equal to n: (1, 2, 3); received kernel_size=(1, 2, 3)",
        lambda: M.Conv2d(2, 2, (1, 2, 3)),
    )
    _raises(
        AE, "invalid value: (-1, -1); received padding=-1", lambda: M.Conv2d(2, 2, 3, padding=-1)
    )
    _raises(
        AE,
        "invalid value: (1, 0); received stride=(1, 0)",
        lambda: M.Conv2d(2, 2, 3, stride=(1, 0)),
    )
    _raises(AE, "invalid value: (0, 0); received kernel_size=0", lambda: M.Conv2d(2, 2, 0))
    M.Conv2d(2, 2, 3, padding=0)  # zero padding is allowed


def test_channel_and_name_errors():
    _raises(
        ValueError,
        "in_channels must be divisible by groups; received in_channels=3, groups=2",
        lambda: M.Conv2d(3, 4, 3, groups=2),
    )
    _raises(
        ValueError,
        "out_channels must be divisible by groups; received out_channels=3, groups=2",
        lambda: M.Conv2d(4, 3, 3, groups=2),
    )
    # checked before MegEngine's divisions (which would raise ZeroDivisionError / a raw
    # TypeError from ``%``)
    _raises(
        ValueError,
        "`groups` must be a positive integer; received groups=0",
        lambda: M.Conv2d(4, 4, 3, groups=0),
    )
    _raises(
        TypeError,
        "`in_channels` must be a positive integer; received in_channels=None",
        lambda: M.Conv2d(None, 4, 3),
    )
    _raises(
        ValueError,
        "`in_channels` must be a positive integer; received in_channels=0",
        lambda: M.Conv2d(0, 4, 3),
    )
    _raises(
        AE,
        "Module's name must be a non-empty string; received name=' '",
        lambda: M.Conv2d(4, 4, 3, name=" "),
    )
    _raises(
        AE, "Module's name must be a non-empty string; received name=3", lambda: M.Module(name=3)
    )
    with pytest.raises(TypeError, match="unexpected keyword argument 'layout'"):
        M.Conv2d(4, 4, 3, layout="NHWC")
    assert M.Conv2d(4, 4, 3, name="conv").name == "conv"
    # the tuple rules run before the channel checks, as in MegEngine
    with pytest.raises(AE, match="invalid value"):
        M.Conv2d(3, 4, 0, groups=2)


def test_modes_are_checked_at_construction():
    # MegEngine stores them unchecked and fails in forward (a bare AssertionError for
    # padding_mode); here the constructor refuses them, with a message
    for mode in ("circular", "REFLECT"):
        _raises(
            AE,
            "padding_mode must be one of 'zeros', 'reflect', 'replicate'; "
            f"received padding_mode={mode!r}",
            lambda mode=mode: M.Conv2d(2, 2, 3, padding=1, padding_mode=mode),
        )
    _raises(
        ValueError,
        "`conv_mode` must be one of 'cross_correlation', 'convolution' (any "
        "case); received conv_mode='corr'",
        lambda: M.Conv2d(2, 2, 3, conv_mode="corr"),
    )
    _raises(
        ValueError,
        "`compute_mode` must be one of 'default', 'float32' (any case); "
        "received compute_mode='float64'",
        lambda: M.Conv2d(2, 2, 3, compute_mode="float64"),
    )
    _raises(
        TypeError,
        "`conv_mode` must be one of 'cross_correlation', 'convolution' (any "
        "case); received conv_mode=None",
        lambda: M.Conv2d(2, 2, 3, conv_mode=None),
    )
    x = torch.randn(1, 2, 5, 5)
    m = M.Conv2d(2, 2, 3, conv_mode="CROSS_CORRELATION", compute_mode="DEFAULT")  # any case
    assert (m.conv_mode, m.compute_mode) == ("cross_correlation", "default")
    m(x)
    # the global override is set at run time: checked at the call that uses it
    with mge.config._override(compute_mode="float64"):
        _raises(
            ValueError,
            "`config._compute_mode` must be one of 'default', 'float32' (any case); "
            "received config._compute_mode='float64'",
            lambda: m(x),
        )


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({}, "Conv2d(4, 6, kernel_size=(3, 3))"),
        (
            {"stride": 2, "padding": (1, 0), "dilation": (1, 2), "groups": 2, "bias": False},
            "Conv2d(4, 6, kernel_size=(3, 3), stride=(2, 2), padding=(1, 0), dilation=(1, 2), "
            "groups=2, bias=False)",
        ),
        (
            {"padding_mode": "reflect", "conv_mode": "convolution"},
            "Conv2d(4, 6, kernel_size=(3, 3))",
        ),
    ],
)
def test_repr(kwargs, text):
    assert repr(M.Conv2d(4, 6, 3, **kwargs)) == text


# --------------------------------------------------------------------------- parameters


def test_parameters_have_megengine_shapes():
    """``m.weight`` / ``m.bias`` are MegEngine's (seed 004 and MegEngine code read and write
    them): everything that walks the parameters sees those shapes; the torch layout is a
    view of them."""
    m = M.Conv2d(4, 6, (3, 2), groups=2)
    assert tuple(m.weight.shape) == (2, 3, 2, 3, 2) and tuple(m.bias.shape) == (1, 6, 1, 1)
    assert {n: tuple(p.shape) for n, p in m.named_parameters()} == {
        "weight": (2, 3, 2, 3, 2),
        "bias": (1, 6, 1, 1),
    }
    assert m.weight is m.weight
    w4, b1 = m.torch_param("weight"), m.torch_param("bias")
    assert tuple(w4.shape) == (6, 2, 3, 2) and tuple(b1.shape) == (6,)
    assert w4.data_ptr() == m.weight.data_ptr() and b1.data_ptr() == m.bias.data_ptr()
    dense = M.Conv2d(4, 6, 3)
    assert tuple(dense.weight.shape) == (6, 4, 3, 3)
    assert M.Conv2d(4, 6, 3, bias=False).bias is None
    # MegEngine code writes m.weight / m.bias in its shapes, and trains them
    x = torch.randn(2, 4, 5, 5)
    with torch.no_grad():
        m.weight.copy_(torch.ones(2, 3, 2, 3, 2))
        m.bias.copy_(torch.arange(6.0).view(1, 6, 1, 1))
    want = torch.nn.functional.conv2d(x, torch.ones(6, 2, 3, 2), torch.arange(6.0), groups=2)
    torch.testing.assert_close(m(x).as_subclass(torch.Tensor), want)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    m(x).sum().backward()
    assert m.weight.grad.shape == (2, 3, 2, 3, 2) and m.bias.grad.shape == (1, 6, 1, 1)
    opt.step()
    assert not torch.equal(m.weight, torch.ones(2, 3, 2, 3, 2))


def test_default_init_is_normal_with_the_full_in_channels():
    torch.manual_seed(3)
    m = M.Conv2d(64, 256, 3, groups=4)
    std = math.sqrt(1 / (3 * 3 * 64))  # fan_in = kh*kw*C_in, not C_in/groups
    w = m.weight.detach().double()
    assert abs(w.mean().item()) < 0.05 * std
    assert abs(w.std().item() / std - 1) < 0.03  # in/groups would give a ratio of 2
    assert torch.count_nonzero(m.bias) == 0
    kurtosis = ((w - w.mean()) ** 4).mean() / w.var() ** 2
    assert abs(kurtosis.item() - 3) < 0.2  # Gaussian (a uniform would give 1.8)
    torch.manual_seed(3)
    again = M.Conv2d(64, 256, 3, groups=4)
    assert torch.equal(again.weight, m.weight)  # torch's RNG


# --------------------------------------------------------------------------- state dicts


class Net(M.Module):
    def __init__(self):
        super().__init__()
        self.conv_b = M.Conv2d(4, 6, 3, groups=2)
        self.conv_a = M.Conv2d(6, 2, 1, bias=False)
        self.bn = torch.nn.BatchNorm2d(2)

    def forward(self, x):
        return self.bn(self.conv_a(self.conv_b(x)))


def test_state_dict_is_sorted_numpy_in_megengine_shapes():
    sd = M.Conv2d(4, 6, 3, groups=2).state_dict()
    assert list(sd) == ["bias", "weight"]
    assert all(type(v) is np.ndarray for v in sd.values())
    assert sd["weight"].shape == (2, 3, 2, 3, 3) and sd["bias"].shape == (1, 6, 1, 1)
    net = Net()
    sd = net.state_dict()
    assert list(sd) == sorted(sd)
    assert list(sd)[:3] == ["bn.bias", "bn.num_batches_tracked", "bn.running_mean"]
    assert sd["conv_b.weight"].shape == (2, 3, 2, 3, 3) and "conv_a.bias" not in sd
    sd["conv_b.weight"][...] = 7  # copies: editing them changes nothing
    assert not torch.any(net.conv_b.weight == 7)
    kept = net.state_dict(keep_var=True)
    assert kept["conv_b.weight"].data_ptr() == net.conv_b.weight.data_ptr()
    rst: dict = {}
    assert net.conv_a.state_dict(rst, prefix="x.") is rst and list(rst) == ["x.weight"]
    # torch layouts stay available; torch parents see the parameters' (MegEngine) shapes
    torch_sd = net.torch_state_dict()
    assert tuple(torch_sd["conv_b.bias"].shape) == (6,)
    assert tuple(torch_sd["conv_b.weight"].shape) == (6, 2, 3, 3)
    theirs = torch.nn.Conv2d(4, 6, 3, groups=2)
    net.conv_b.load_torch_state_dict(theirs.state_dict())
    torch.testing.assert_close(net.conv_b.torch_param("weight"), theirs.weight.detach())
    seq = torch.nn.Sequential(M.Conv2d(4, 6, 3, groups=2))
    assert tuple(seq.state_dict()["0.weight"].shape) == (2, 3, 2, 3, 3)
    seq2 = torch.nn.Sequential(M.Conv2d(4, 6, 3, groups=2))
    seq2.load_state_dict(seq.state_dict())
    assert torch.equal(seq2[0].weight, seq[0].weight)


def test_load_state_dict_round_trip_numpy_and_torch():
    src, dst = Net(), Net()
    src.bn.running_mean.fill_(0.5)
    dst.load_state_dict(src.state_dict())
    x = torch.randn(2, 4, 6, 6)
    src.eval(), dst.eval()
    assert torch.equal(src(x), dst(x))
    third = Net()
    third.load_state_dict({k: torch.from_numpy(v) for k, v in src.state_dict().items()})
    assert torch.equal(third.conv_b.weight, src.conv_b.weight)
    # closure form: (key, var) -> array or None
    fourth = Net()
    fourth.load_state_dict(lambda k, var: np.full(tuple(var.shape), 2, np.float32))
    assert torch.all(fourth.conv_b.bias == 2)


def test_load_state_dict_errors():
    m = M.Conv2d(4, 6, 3, groups=2)
    sd = m.state_dict()
    bad = dict(sd, bias=np.zeros(6, np.float32))  # a torch-layout bias
    with pytest.raises(
        ValueError, match=r"^param `bias` shape mismatch, should be \(1, 6, 1, 1\), get \(6,\)$"
    ):
        m.load_state_dict(bad)
    bad = dict(sd, weight=np.zeros((6, 2, 3, 3), np.float32))  # a 4-D grouped weight
    with pytest.raises(ValueError, match=r"should be \(2, 3, 2, 3, 3\), get \(6, 2, 3, 3\)"):
        m.load_state_dict(bad)
    KE = mge.MegEngineKeyError  # a KeyError (MegEngine's type) and a ValueError
    with pytest.raises(KE, match=r"Unused params violate `strict=True`, unused=\{'extra'\}"):
        m.load_state_dict(dict(sd, extra=np.zeros(1)))
    with pytest.raises(KE, match=r"Missing params violate `strict=True`, missing=\{'bias'\}"):
        m.load_state_dict({"weight": sd["weight"]})
    assert issubclass(KE, KeyError) and issubclass(KE, ValueError)
    with pytest.raises(AE, match=r"^closure should return a `np.ndarray`, now `bias` get \[0"):
        m.load_state_dict(dict(sd, bias=[0.0] * 6))
    with pytest.raises(ValueError, match=r"`state_dict` must load a dict or callable, got"):
        m.load_state_dict(3)


def test_load_state_dict_non_strict_warns_and_loads_the_rest(caplog):
    m = M.Conv2d(4, 6, 3, groups=2)
    w = np.ones((2, 3, 2, 3, 3), np.float32)
    with caplog.at_level(logging.WARNING, logger="omniconv.compat.megengine"):
        m.load_state_dict({"weight": w, "junk": w}, strict=False)
    assert "Unused params in `strict=False` mode, unused={'junk'}" in caplog.text
    assert "Missing params in `strict=False` mode, missing={'bias'}" in caplog.text
    assert torch.all(m.weight == 1)


def test_importer_transforms_are_pure_and_strict():
    m = M.Conv2d(4, 6, 3, groups=2)
    before = m.weight.detach().clone()
    theirs = torch.nn.Conv2d(4, 6, 3, groups=2)
    mge_sd = mge.torch_to_megengine(theirs.state_dict(), m)
    assert list(mge_sd) == ["bias", "weight"] and mge_sd["weight"].shape == (2, 3, 2, 3, 3)
    back = mge.megengine_to_torch(mge_sd, m)
    assert torch.equal(back["weight"], theirs.weight.detach())
    assert torch.equal(back["bias"], theirs.bias.detach())
    assert torch.equal(m.weight, before)  # the module is only read
    m.load_state_dict(mge_sd)
    x = torch.randn(1, 4, 5, 5)
    torch.testing.assert_close(m(x).as_subclass(torch.Tensor), theirs(x))
    with pytest.raises(ValueError, match=r"param `bias` shape mismatch, should be \(6,\)"):
        mge.torch_to_megengine({"weight": theirs.weight, "bias": torch.zeros(1, 6, 1, 1)}, m)
    with pytest.raises(KeyError, match=r"missing=\{'bias'\}"):
        mge.torch_to_megengine({"weight": theirs.weight}, m)


# --------------------------------------------------------------------------- numbers

# (in, out, kernel, stride, padding, dilation, groups, bias)
CONFIGS = [
    (3, 5, 3, 1, 0, 1, 1, True),
    (4, 6, (3, 2), (2, 1), (1, 2), (2, 1), 2, True),
    (6, 6, 3, 1, 1, 1, 6, False),  # depthwise
    (4, 8, (1, 3), (1, 2), (0, 2), (1, 2), 4, True),
]


def _to_ref(w, b, groups):
    w4 = w if groups == 1 else w.reshape(-1, *w.shape[2:])
    return w4, None if b is None else b.reshape(-1)


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate"])
@pytest.mark.parametrize(("cin", "cout", "k", "s", "p", "d", "g", "bias"), CONFIGS)
def test_module_matches_the_reference(cin, cout, k, s, p, d, g, bias, mode):
    m = M.Conv2d(cin, cout, k, s, p, d, g, bias, padding_mode=mode).double()
    if bias:
        init.normal_(m.bias)
    x = rand(2, cin, 7, 8)
    w, b = m.weight, m.bias if bias else None
    ph, pw = m.padding
    w4, b1 = _to_ref(w.detach(), None if b is None else b.detach(), g)
    expect = ref_conv2d(x, w4, b1, m.stride, (ph, ph, pw, pw), m.dilation, g, mode)
    torch.testing.assert_close(m(x).as_subclass(torch.Tensor), expect, **TOL64)


@pytest.mark.parametrize(("cin", "cout", "k", "s", "p", "d", "g", "bias"), CONFIGS)
def test_functional_values_and_gradients(cin, cout, k, s, p, d, g, bias):
    x = rand(2, cin, 7, 8, seed=1)
    wshape = (cout, cin, *(k if isinstance(k, tuple) else (k, k)))
    if g > 1:
        wshape = (g, cout // g, cin // g, *wshape[2:])
    w = rand(*wshape, seed=2)
    b = rand(1, cout, 1, 1, seed=3) if bias else None
    pair = lambda v: v if isinstance(v, tuple) else (v, v)  # noqa: E731
    ph, pw = pair(p)

    def ref(x, w, b=None):
        w4, b1 = _to_ref(w, b, g)
        return ref_conv2d(x, w4, b1, pair(s), (ph, ph, pw, pw), pair(d), g)

    def impl(x, w, b=None):
        return MF.conv2d(x, w, b, s, p, d, g)

    compare(impl, ref, [x, w, b] if bias else [x, w])
    compare(impl, ref, [x, w, b] if bias else [x, w], impl_dtype=torch.float32, tol=TOL32)


def test_conv_mode_convolution_flips_the_kernel():
    x, w, b = rand(2, 4, 6, 7, seed=4), rand(2, 3, 2, 3, 2, seed=5), rand(1, 6, 1, 1, seed=6)

    def ref(x, w, b):
        w4, b1 = _to_ref(w, b, 2)
        return ref_conv2d(x, w4.flip(-1, -2), b1, (1, 2), (1, 1, 0, 0), (2, 1), 2)

    def impl(x, w, b):
        return MF.conv2d(x, w, b, (1, 2), (1, 0), (2, 1), 2, conv_mode="convolution")

    compare(impl, ref, [x, w, b])
    corr = MF.conv2d(x, w, b, (1, 2), (1, 0), (2, 1), 2)
    conv = impl(x, w, b)
    assert not torch.allclose(corr, conv)
    m = M.Conv2d(4, 6, (3, 2), (1, 2), (1, 0), (2, 1), 2, conv_mode="Convolution").double()
    m.load_state_dict({"weight": w, "bias": b})
    torch.testing.assert_close(m(x), conv, **TOL64)


def test_reflect_and_replicate_equal_torch():
    x = rand(2, 4, 6, 5, dtype=torch.float32, seed=8)
    for mode in ("reflect", "replicate"):
        theirs = torch.nn.Conv2d(4, 6, 3, padding=(2, 1), groups=2, padding_mode=mode)
        ours = M.Conv2d(4, 6, 3, padding=(2, 1), groups=2, padding_mode=mode)
        ours.load_state_dict(mge.torch_to_megengine(theirs.state_dict(), ours))
        torch.testing.assert_close(ours(x).as_subclass(torch.Tensor), theirs(x), **TOL32)
    with pytest.raises(ValueError, match=r"^`padding` must be smaller than the input size"):
        M.Conv2d(4, 6, 3, padding=6, padding_mode="reflect")(x)


class _ConvDtypes(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.dtypes = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if "convolution" in str(func):
            self.dtypes.append(args[0].dtype)
        return func(*args, **(kwargs or {}))


def test_compute_mode_float32_accumulates_float16_in_float32():
    x = rand(2, 8, 9, 9, dtype=torch.float16, seed=9)
    w = (rand(4, 8, 3, 3, seed=10) * 0.2).half()
    b = rand(1, 4, 1, 1, dtype=torch.float16, seed=11)
    expect = TF.conv2d(x.float(), w.float(), None, 1, 1).half() + b  # MegEngine: bias after
    with _ConvDtypes() as seen:
        out = MF.conv2d(x, w, b, padding=1, compute_mode="float32")
    assert seen.dtypes == [torch.float32]
    assert out.dtype == torch.float16 and torch.equal(out, expect)
    ref = ref_conv2d(x.double(), w.double(), None, 1, (1, 1, 1, 1), 1, 1)
    conv_only = TF.conv2d(x.float(), w.float(), None, 1, 1).half().double()
    assert ((conv_only - ref).abs() <= ref.abs() * 2**-11 + 2**-24).all()  # one fp16 rounding
    with _ConvDtypes() as seen:
        MF.conv2d(x, w, b, padding=1)
    assert seen.dtypes == [torch.float16]
    # the global override, and the module path
    m = M.Conv2d(8, 4, 3, padding=1).half()
    m.load_state_dict({"weight": w, "bias": b})
    with mge.config._override(compute_mode="float32"), _ConvDtypes() as seen:
        assert torch.equal(m(x), expect)
    assert seen.dtypes == [torch.float32] and mge.config._compute_mode == "default"
    with _ConvDtypes() as seen:
        M.Conv2d(2, 2, 1, compute_mode="float32")(torch.randn(1, 2, 3, 3))
    assert seen.dtypes == [torch.float32]  # float32 input: nothing changes


def test_functional_weight_rules():
    x = torch.randn(1, 4, 5, 5)
    with pytest.raises(ValueError, match=r"^`weight.shape` must be 5-D \(groups, "):
        MF.conv2d(x, torch.randn(4, 2, 3, 3), groups=2)
    with pytest.raises(ValueError, match=r"^`weight.shape` must be 4-D"):
        MF.conv2d(x, torch.randn(2, 2, 2, 3, 3))
    # the group count comes from the 5-D weight, stride/padding take the first two entries
    w = torch.randn(4, 1, 1, 3, 3)
    out = MF.conv2d(x, w, None, (1, 1, 9), [1, 1, 9], 1, groups=2)
    torch.testing.assert_close(
        out.as_subclass(torch.Tensor), TF.conv2d(x, w[:, 0], None, 1, 1, 1, 4)
    )
    # the arguments are checked before the convolution (omniconv's words: MegEngine's
    # C++ op parameters have no Python check)
    w = torch.randn(2, 4, 3, 3)
    _raises(
        ValueError,
        "`stride` must be positive integers; received stride=(0, 0)",
        lambda: MF.conv2d(x, w, stride=0),
    )
    _raises(
        ValueError,
        "`padding` must be non-negative integers; received padding=(-1, 1)",
        lambda: MF.conv2d(x, w, padding=(-1, 1)),
    )
    _raises(
        ValueError,
        "`conv_mode` must be one of 'cross_correlation', 'convolution' (any "
        "case); received conv_mode='corr'",
        lambda: MF.conv2d(x, w, conv_mode="corr"),
    )


# --------------------------------------------------------------------------- pad, init


@pytest.mark.parametrize(
    ("mode", "np_mode"),
    [("reflect", "reflect"), ("edge", "edge"), ("REPLICATE", "edge"), ("constant", "constant")],
)
def test_pad_matches_numpy(mode, np_mode):
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    width = ((0, 0), (0, 0), (2, 1), (3, 0))
    out = MF.pad(mge.tensor(x), width, mode)
    assert type(out) is mge.Tensor
    np.testing.assert_array_equal(out.numpy(), np.pad(x, width, np_mode))
    np.testing.assert_array_equal(
        MF.pad(mge.tensor(x), ((1, 1),), "constant", 5.0).numpy(),
        np.pad(x, ((1, 1), (0, 0), (0, 0), (0, 0)), constant_values=5.0),
    )


def test_pad_errors():
    with pytest.raises(ValueError, match=r"^`mode` must be one of 'constant', 'edge'"):
        MF.pad(torch.zeros(1, 1, 3, 3), ((0, 0), (0, 0), (1, 1)), "circular")
    with pytest.raises(ValueError, match=r"^`pad_width` must be zero except on the last 3"):
        MF.pad(torch.zeros(2, 2, 3, 3), ((1, 1),), "reflect")


def test_init_functions():
    m = M.Conv2d(4, 6, 3, groups=2)
    init.fill_(m.weight, 2.0)  # works on parameters that require grad
    assert torch.all(m.weight == 2)
    init.zeros_(m.bias)
    init.ones_(m.weight)  # through the view
    assert torch.all(m.weight == 1) and torch.all(m.bias == 0)
    init.uniform_(m.weight, -0.5, 0.5)
    assert m.weight.abs().max() <= 0.5
    assert init.calculate_fan_in_and_fan_out(m.weight) == (18.0, 27.0)
    assert init.calculate_fan_in_and_fan_out(torch.empty(3, 5)) == (5.0, 3.0)
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.calculate_fan_in_and_fan_out(torch.empty(3))
    torch.manual_seed(0)
    big = torch.empty(200, 300)
    init.xavier_normal_(big)
    assert abs(big.std().item() / math.sqrt(2 / 500) - 1) < 0.03
    init.xavier_uniform_(big, gain=2.0)
    assert big.abs().max() <= 2 * math.sqrt(6 / 500)


# =========================================================================== ConvTranspose2d

# (in, out, kernel, stride, padding, output_padding, dilation, groups, bias)
CONFIGS_T = [
    (3, 5, 3, 1, 0, 0, 1, 1, True),
    (4, 6, (3, 2), (2, 3), (1, 0), (1, 2), (2, 1), 2, True),
    (6, 6, 3, 2, 1, 1, 1, 6, False),  # depthwise
    (4, 8, (1, 3), (1, 2), (0, 2), (0, 1), (1, 2), 4, True),
]


def _to_ref_t(w, b, groups):
    """MegEngine's transposed weight (dense (I, O, kh, kw) or (G, I/G, O/G, kh, kw)) and
    (1, O, 1, 1) bias in the reference's (I, O/G, kh, kw) and (O,)."""
    w4 = w if groups == 1 else w.reshape(-1, *w.shape[2:])
    return w4, None if b is None else b.reshape(-1)


def _pair(v):
    return v if isinstance(v, tuple) else (v, v)


def test_conv_transpose_documented_example_runs_with_only_the_import_changed(capsys):
    # MegEngine 1.13's ConvTranspose2d docstring example; only the import differs
    src = textwrap.dedent(
        """
        import torch
        import omniconv.compat.megengine as megengine
        conv_transpose = megengine.module.conv.ConvTranspose2d(3, 64, 3, stride=2, padding=1)
        input = megengine.tensor(torch.randn(16, 3, 32, 32))
        output = conv_transpose.forward(input)
        print(output.numpy().shape)
        """
    )
    scope: dict = {}
    exec(compile(src, "<megengine example>", "exec"), scope)
    assert capsys.readouterr().out == "(16, 64, 63, 63)\n"
    m, inp, out = scope["conv_transpose"], scope["input"], scope["output"]
    assert m.weight.shape == (3, 64, 3, 3) and m.bias.shape == (1, 64, 1, 1)
    x = inp[:2].double()  # a slice of the batch against the float64 reference
    expect = ref_conv_transpose2d(x, m.weight.detach().double(), None, 2, 1, 0, 1, 1)
    torch.testing.assert_close(out[:2].as_subclass(torch.Tensor).double(), expect, **TOL32)
    assert expect.abs().max() > 0.5


@pytest.mark.parametrize(("cin", "cout", "k", "s", "p", "op", "d", "g", "bias"), CONFIGS_T)
def test_conv_transpose_module_and_functional_against_the_reference(
    cin, cout, k, s, p, op, d, g, bias
):
    """Values and every gradient (input, MegEngine-layout weight and bias) against the
    float64 reference, module and functional, float64 and float32."""
    m = M.ConvTranspose2d(cin, cout, k, s, p, op, d, g, bias).double()
    kh, kw = _pair(k)
    assert tuple(m.weight.shape) == ((cin, cout, kh, kw) if g == 1 else
                                     (g, cin // g, cout // g, kh, kw))  # fmt: skip
    assert (m.bias is None) == (not bias) and (not bias or m.bias.shape == (1, cout, 1, 1))
    x = rand(2, cin, 5, 4, seed=1)
    w = rand(*m.weight.shape, seed=2)
    b = rand(1, cout, 1, 1, seed=3) if bias else None
    m.load_state_dict({"weight": w, **({"bias": b} if bias else {})})

    def ref(x, w, b=None):
        w4, b1 = _to_ref_t(w, b, g)
        return ref_conv_transpose2d(x, w4, b1, _pair(s), _pair(p), _pair(op), g, _pair(d))

    def functional(x, w, b=None):
        return MF.conv_transpose2d(x, w, b, s, p, op, d, g)

    def module(x, w, b=None):
        return m.calc_conv_transpose2d(x, w, b)

    inputs = [x, w, b] if bias else [x, w]
    out, _ = compare(functional, ref, inputs)
    assert out.shape[2:] == tuple(
        (n - 1) * ss - 2 * pp + dd * (kk - 1) + 1 + oo
        for n, ss, pp, dd, kk, oo in zip(
            (5, 4), _pair(s), _pair(p), _pair(d), (kh, kw), _pair(op), strict=True
        )
    )
    compare(module, ref, inputs)
    compare(functional, ref, inputs, impl_dtype=torch.float32, tol=TOL32)
    torch.testing.assert_close(m(x).as_subclass(torch.Tensor), ref(x, w, b), **TOL64)


def test_conv_transpose_megengine_bugs_are_not_reproduced():
    """MegEngine 1.12-1.13's functional applies ``output_padding`` only when its height
    entry is non-zero (``output_pad_h != 0 or output_pad_h != 0``), indexes ``stride[0]``
    (an int stride crashes) and sizes the output from ``weight.shape[1:3]`` (wrong for a
    5-D weight): here the width entry applies alone, int arguments work and grouped
    weights are sized right."""
    x = rand(1, 4, 3, 3, seed=4)
    w = rand(4, 2, 3, 3, seed=5)
    out = MF.conv_transpose2d(x, w, None, 2, 1, (0, 1))
    assert out.shape == (1, 2, 5, 6)  # MegEngine: (1, 2, 5, 5), the output padding dropped
    torch.testing.assert_close(
        out.as_subclass(torch.Tensor), ref_conv_transpose2d(x, w, None, 2, 1, (0, 1), 1, 1), **TOL64
    )
    wg = rand(2, 2, 3, 3, 3, seed=6)  # (G, I/G, O/G, kh, kw)
    out = MF.conv_transpose2d(x, wg, None, 2, 1, 1, 1, groups=2)
    expect = ref_conv_transpose2d(x, wg.reshape(4, 3, 3, 3), None, 2, 1, 1, 2, 1)
    assert out.shape == (1, 6, 6, 6)
    torch.testing.assert_close(out.as_subclass(torch.Tensor), expect, **TOL64)


def test_conv_transpose_conv_mode_and_compute_mode():
    x, w, b = rand(2, 4, 4, 5, seed=7), rand(2, 2, 3, 3, 2, seed=8), rand(1, 6, 1, 1, seed=9)
    conv = MF.conv_transpose2d(x, w, b, (2, 1), (1, 0), (1, 0), 1, 2, conv_mode="CONVOLUTION")
    w4, b1 = _to_ref_t(w, b, 2)
    expect = ref_conv_transpose2d(x, w4.flip(-1, -2), b1, (2, 1), (1, 0), (1, 0), 2, 1)
    torch.testing.assert_close(conv.as_subclass(torch.Tensor), expect, **TOL64)
    corr = MF.conv_transpose2d(x, w, b, (2, 1), (1, 0), (1, 0), 1, 2)
    assert not torch.allclose(conv, corr)
    m = M.ConvTranspose2d(4, 6, (3, 2), (2, 1), (1, 0), (1, 0), groups=2, conv_mode="Convolution")
    m.double().load_state_dict({"weight": w, "bias": b})
    torch.testing.assert_close(m(x), conv, **TOL64)
    # compute_mode='float32' on float16: the transposed conv runs in float32, cast back
    xh, wh = x.half(), (w * 0.3).half()
    with _ConvDtypes() as seen:
        out = MF.conv_transpose2d(xh, wh, None, 2, 1, 1, 1, 2, compute_mode="float32")
    assert seen.dtypes == [torch.float32] and out.dtype == torch.float16
    expect = TF.conv_transpose2d(xh.float(), wh.reshape(4, 3, 3, 2).float(), None, 2, 1, 1, 2)
    assert torch.equal(out.as_subclass(torch.Tensor), expect.half())
    with mge.config._override(compute_mode="float32"), _ConvDtypes() as seen:
        MF.conv_transpose2d(xh, wh, None, 2, 1, 1, 1, 2)
    assert seen.dtypes == [torch.float32]


def test_conv_transpose_errors():
    _raises(
        AE,
        "output_padding[0] shoule be less than stride[0]; received output_padding=2, stride=(2, 2)",
        lambda: M.ConvTranspose2d(2, 2, 3, stride=2, output_padding=2),
    )
    _raises(  # MegEngine would not even look at the width entry (its typo)
        AE,
        "output_padding[1] shoule be less than stride[1]; received output_padding=(0, 1), "
        "stride=(1, 1)",
        lambda: M.ConvTranspose2d(2, 2, 3, output_padding=(0, 1)),
    )
    _raises(
        AE,
        "output_padding[0] shoule be less than stride[0]; received output_padding=1, "
        "stride=(1, 1)",  # MegEngine's rule, whatever the dilation (torch: < max(s, d))
        lambda: MF.conv_transpose2d(
            torch.ones(1, 2, 3, 3), torch.ones(2, 2, 3, 3), output_padding=1, dilation=2
        ),
    )
    _raises(
        AE,
        "invalid value: (-1, -1); received output_padding=-1",
        lambda: M.ConvTranspose2d(2, 2, 3, stride=2, output_padding=-1),
    )
    _raises(
        ValueError,
        "out_channels must be divisible by groups; received out_channels=3, groups=2",
        lambda: M.ConvTranspose2d(4, 3, 3, groups=2),
    )
    _raises(
        ValueError,
        "`conv_mode` must be one of 'cross_correlation', 'convolution' (any case); received "
        "conv_mode='corr'",
        lambda: M.ConvTranspose2d(4, 4, 3, conv_mode="corr"),
    )
    with pytest.raises(TypeError, match="unexpected keyword argument 'padding_mode'"):
        M.ConvTranspose2d(4, 4, 3, padding_mode="zeros")
    with pytest.raises(ValueError, match=r"^`weight.shape` must be 5-D \(groups, I/groups, "):
        MF.conv_transpose2d(torch.ones(1, 4, 3, 3), torch.ones(4, 2, 3, 3), groups=2)
    with pytest.raises(ValueError, match=r"^`weight.shape` must be 4-D \(I, O, kh, kw\)"):
        MF.conv_transpose2d(torch.ones(1, 4, 3, 3), torch.ones(2, 2, 2, 3, 3))


def test_conv_transpose_init_repr_and_state_dicts():
    torch.manual_seed(3)
    m = M.ConvTranspose2d(64, 256, 3, groups=4)
    std = math.sqrt(1 / (3 * 3 * 256))  # MegEngine: fan_in = kh*kw*out_channels
    w = m.weight.detach().double()
    assert m.weight.shape == (4, 16, 64, 3, 3)
    assert abs(w.std().item() / std - 1) < 0.03 and torch.count_nonzero(m.bias) == 0
    assert repr(M.ConvTranspose2d(4, 6, 3, 2, 1, 1, 2, 2, False)) == (
        "ConvTranspose2d(4, 6, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), "
        "dilation=(2, 2), groups=2, bias=False)"
    )
    m = M.ConvTranspose2d(4, 6, (3, 2), 2, (1, 0), 1, groups=2).double()
    sd = m.state_dict()
    assert list(sd) == ["bias", "weight"] and isinstance(sd["weight"], np.ndarray)
    assert sd["weight"].shape == (2, 2, 3, 3, 2) and sd["bias"].shape == (1, 6, 1, 1)
    x = rand(2, 4, 5, 4, seed=10)
    torch_conv = torch.nn.ConvTranspose2d(4, 6, (3, 2), 2, (1, 0), 1, groups=2).double()
    torch_conv.load_state_dict(m.torch_state_dict())
    torch.testing.assert_close(m(x).as_subclass(torch.Tensor), torch_conv(x), **TOL64)
    fresh = M.ConvTranspose2d(4, 6, (3, 2), 2, (1, 0), 1, groups=2).double()
    fresh.load_state_dict(sd)
    torch.testing.assert_close(fresh(x), m(x), **TOL64)
    again = M.ConvTranspose2d(4, 6, (3, 2), 2, (1, 0), 1, groups=2).double()
    again.load_torch_state_dict(torch_conv.state_dict())
    torch.testing.assert_close(again(x), m(x), **TOL64)
    assert isinstance(m, torch.nn.ConvTranspose2d)


def test_conv_transpose_gradcheck_batch0_and_layouts():
    m = M.ConvTranspose2d(2, 4, (2, 3), (1, 2), (0, 1), (0, 1), groups=2).double()
    x = rand(1, 2, 3, 3, seed=11).requires_grad_(True)
    torch.autograd.gradcheck(lambda x: m(x).as_subclass(torch.Tensor), (x,))
    empty = torch.zeros(0, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    out = m(empty)
    assert out.shape == (0, 4, 4, 6)
    out.sum().backward()
    assert empty.grad.shape == empty.shape and torch.count_nonzero(m.weight.grad) == 0
    x = rand(2, 2, 4, 5, seed=12)
    want = m(x)
    for layout in ("channels_last", "strided", "transposed"):
        torch.testing.assert_close(m(relayout(x, layout)), want, **TOL64)


# ========================================================================== DeformableConv2d

# (in, out, kernel, stride, padding, dilation, groups, deformable groups, bias)
CONFIGS_D = [
    (4, 6, 3, 1, 1, 1, 1, 2, True),
    (4, 6, (3, 2), (2, 1), (1, 0), (2, 1), 2, 2, True),
    (6, 6, (2, 2), 2, 1, (1, 2), 3, 3, False),
    (2, 4, (1, 3), (1, 2), (0, 1), 1, 1, 1, True),
]


def _deform_inputs(cin, cout, k, s, p, d, g, dg, seed, h=6, w=5, border=False):
    kh, kw = _pair(k)
    ho, wo = out_size(h, w, (kh, kw), s, p, d)
    x = rand(2, cin, h, w, seed=seed)
    wshape = (cout, cin, kh, kw) if g == 1 else (g, cout // g, cin // g, kh, kw)
    weight = rand(*wshape, seed=seed + 1)
    if border:  # every sample exactly on -1, 0, H-1, H, halfway outside, ...
        offset = border_offsets(2, dg, (kh, kw), ho, wo, s, p, d, seed=seed + 2)
    else:
        offset = away_from_integers(rand(2, 2 * dg * kh * kw, ho, wo, seed=seed + 2, scale=1.5))
    mask = torch.rand(2, dg * kh * kw, ho, wo, dtype=F64,
                      generator=torch.Generator().manual_seed(seed + 3)) * 1.5  # fmt: skip
    return x, weight, offset, mask


@pytest.mark.parametrize(("cin", "cout", "k", "s", "p", "d", "g", "dg", "bias"), CONFIGS_D)
def test_deformable_module_and_functional_against_the_reference(cin, cout, k, s, p, d, g, dg, bias):
    """megdnn's DeformableConv is DCNv2 with torchvision's conventions: values and every
    gradient (input, MegEngine-layout weight, offset, mask, bias) against the float64
    reference, deformable groups read from the offset, module and functional."""
    m = M.DeformableConv2d(cin, cout, k, s, p, d, g, bias).double()
    x, w, offset, mask = _deform_inputs(cin, cout, k, s, p, d, g, dg, seed=20)
    assert tuple(m.weight.shape) == tuple(w.shape)
    b = rand(1, cout, 1, 1, seed=30) if bias else None
    m.load_state_dict({"weight": w, **({"bias": b} if bias else {})})

    def ref(x, w, offset, mask, b=None):
        w4 = w if g == 1 else w.reshape(-1, *w.shape[2:])
        return ref_deform_conv2d(x, offset, w4, None if b is None else b.reshape(-1), s, p, d,
                                 mask)  # fmt: skip

    def functional(x, w, offset, mask, b=None):
        return MF.deformable_conv2d(x, w, offset, mask, b, s, p, d, g)

    def module(x, w, offset, mask, b=None):
        return m.calc_conv(x, w, offset, mask, b)

    inputs = [x, w, offset, mask] + ([b] if bias else [])
    compare(functional, ref, inputs)
    compare(module, ref, inputs)
    compare(functional, ref, inputs, impl_dtype=torch.float32, tol=TOL32)
    torch.testing.assert_close(m(x, offset, mask).as_subclass(torch.Tensor),
                               ref(x, w, offset, mask, b), **TOL64)  # fmt: skip


def test_deformable_border_samples_follow_megdnn():
    """Samples exactly on -1, 0, H-1, H and halfway outside: megdnn's naive kernel's rule
    (zero outside (-1, H) x (-1, W), zero corners, the floor convention of its gradients)
    is the reference's, values and gradients."""
    x, w, offset, mask = _deform_inputs(4, 4, 3, 1, 1, 1, 1, 2, seed=40, h=H_B, w=W_B,
                                        border=True)  # fmt: skip

    def ref(x, w, offset, mask):
        return ref_deform_conv2d(x, offset, w, None, 1, 1, 1, mask)

    compare(lambda x, w, o, m: MF.deformable_conv2d(x, w, o, m, padding=1), ref,
            [x, w, offset, mask])  # fmt: skip


def test_deformable_rules_and_errors():
    x, w, offset, mask = _deform_inputs(4, 6, 3, 1, 1, 1, 1, 2, seed=50)
    _raises(  # megdnn: dg (read from the offset) must divide the output channels
        mge.MegEngineRuntimeError,
        "oc % deformable_group != 0; received weight.shape=(3, 4, 3, 3), deformable_group=2",
        lambda: MF.deformable_conv2d(x, w[:3], offset, mask, padding=1),
    )
    assert issubclass(mge.MegEngineRuntimeError, RuntimeError)
    _raises(
        TypeError,
        "`mask` must be a Tensor (MegEngine's deformable convolution always takes a mask); "
        "received mask=<NoneType>",
        lambda: MF.deformable_conv2d(x, w, offset, None, padding=1),
    )
    for mode in ("convolution", "corr", None):
        _raises(
            AE,
            f"only support CROSS_CORRELATION mode; received conv_mode={mode!r}",
            lambda mode=mode: M.DeformableConv2d(4, 6, 3, conv_mode=mode),
        )
    _raises(
        AE,
        "only support CROSS_CORRELATION mode; received conv_mode='convolution'",
        lambda: MF.deformable_conv2d(x, w, offset, mask, padding=1, conv_mode="convolution"),
    )
    M.DeformableConv2d(4, 6, 3, conv_mode="CROSS_CORRELATION")  # any case
    _raises(
        ValueError,
        "in_channels must be divisible by groups; received in_channels=4, groups=3",
        lambda: M.DeformableConv2d(4, 6, 3, groups=3),
    )
    with pytest.raises(ValueError, match=r"`mask.shape` must be \(2, 18, 6, 5\)"):
        MF.deformable_conv2d(x, w, offset, mask[:, :9], padding=1)
    # offset and mask of another dtype are cast to the input's (MegEngine: float32)
    xf, wf = x.float(), w.float()
    got = MF.deformable_conv2d(xf, wf, offset, mask, padding=1)
    want = MF.deformable_conv2d(xf, wf, offset.float(), mask.float(), padding=1)
    assert got.dtype == torch.float32 and torch.equal(got, want)
    ints = MF.deformable_conv2d(xf, wf, offset.round().int(), mask, padding=1)
    torch.testing.assert_close(
        ints, MF.deformable_conv2d(xf, wf, offset.round().float(), mask, padding=1)
    )


def test_deformable_init_repr_state_dicts_and_tooling():
    torch.manual_seed(5)
    m = M.DeformableConv2d(64, 128, 3, padding=1, groups=4)
    std = math.sqrt(1 / (3 * 3 * 64))  # MegEngine: fan_in = kh*kw*in_channels
    assert m.weight.shape == (4, 32, 16, 3, 3) and m.bias.shape == (1, 128, 1, 1)
    assert abs(m.weight.detach().double().std().item() / std - 1) < 0.03
    assert torch.count_nonzero(m.bias) == 0
    assert not isinstance(m, torch.nn.Conv2d)
    assert repr(M.DeformableConv2d(4, 6, (3, 2), 2, 1, 2, 2, bias=False)) == (
        "DeformableConv2d(4, 6, kernel_size=(3, 2), stride=(2, 2), padding=(1, 1), "
        "dilation=(2, 2), groups=2, bias=False)"
    )
    m = M.DeformableConv2d(4, 6, 3, padding=1, groups=2).double()
    x, _, offset, mask = _deform_inputs(4, 6, 3, 1, 1, 1, 2, 2, seed=60)
    want = m(x, offset, mask)
    sd = m.state_dict()
    assert list(sd) == ["bias", "weight"] and sd["weight"].shape == (2, 3, 2, 3, 3)
    fresh = M.DeformableConv2d(4, 6, 3, padding=1, groups=2).double()
    fresh.load_state_dict(sd)
    torch.testing.assert_close(fresh(x, offset, mask), want, **TOL64)
    # the torch layouts are omniconv.nn.DeformConv2d's
    from omniconv.nn import DeformConv2d

    plain = DeformConv2d(4, 6, 3, padding=1, groups=2, deformable_groups=2, dtype=F64)
    plain.load_state_dict(m.torch_state_dict())
    torch.testing.assert_close(plain(x, offset, mask), want.as_subclass(torch.Tensor), **TOL64)
    back = M.DeformableConv2d(4, 6, 3, padding=1, groups=2).double()
    back.load_torch_state_dict(plain.state_dict())
    torch.testing.assert_close(back(x, offset, mask), want, **TOL64)


def test_deformable_gradcheck_batch0_and_layouts():
    m = M.DeformableConv2d(2, 4, (2, 3), (1, 2), (1, 1), (2, 1), groups=2).double()
    x, _, offset, mask = _deform_inputs(2, 4, (2, 3), (1, 2), (1, 1), (2, 1), 2, 2, seed=70,
                                        h=4, w=5)  # fmt: skip
    x, offset, mask = x[:1], offset[:1], mask[:1]
    leaves = [t.clone().requires_grad_(True) for t in (x, offset, mask)]
    torch.autograd.gradcheck(lambda *t: m(*t).as_subclass(torch.Tensor), leaves)
    out = m(x[:0], offset[:0], mask[:0])
    assert out.shape == (0, 4, *offset.shape[2:])
    want = m(x, offset, mask)
    for layout in ("channels_last", "strided", "transposed"):
        got = m(relayout(x, layout), relayout(offset, layout), relayout(mask, layout))
        torch.testing.assert_close(got, want, **TOL64)
