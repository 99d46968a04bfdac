"""Paddle's dense conv family on omniconv, checked against Paddle 3.3.1.

Fixtures ``paddle_family_*.npz`` (tools/fixtures/gen_paddle_family.py): ``paddle.nn.Conv2D``
/ ``Conv2DTranspose`` in dygraph, ``paddle.static.nn.conv2d`` / ``conv2d_transpose`` (what
``fluid.layers.conv2d`` / ``conv2d_transpose`` became) in a static program, the default
initial weights, a mixed float16 / float32 ``deform_conv2d``, and Paddle's error texts.
"""

from __future__ import annotations

import itertools
import json
import math
import re

import numpy as np
import pytest
import torch
from _helpers import FIXTURES, close_to_fixture, load_fixture
from reference import ref_conv2d, ref_conv_transpose2d, ref_deform_conv2d

from omniconv.compat import paddle as P
from omniconv.compat.paddle import Program, fluid
from omniconv.compat.paddle import nn as pnn
from omniconv.compat.paddle.nn import functional as PF
from omniconv.compat.paddle.vision.ops import DeformConv2D, deform_conv2d

F64 = torch.float64


def _torch_dtype(z):
    return {np.dtype("float64"): F64, np.dtype("float32"): torch.float32}[z["x"].dtype]


def _check_grads(out, named, z):
    grads = torch.autograd.grad(out, list(named.values()), torch.tensor(z["grad_out"]))
    for k, g in zip(named, grads, strict=True):
        assert g.dtype == named[k].dtype
        close_to_fixture(g, z[f"grad_{k}"], f"grad_{k}")


def test_fixture_inventory():
    files = sorted(FIXTURES.glob("paddle_family_*.npz"))
    assert len(files) == 26
    for f in files:
        z = load_fixture(f)
        assert (str(z["framework"]), str(z["version"])) == ("paddlepaddle", "3.3.1"), f.name
    assert sum(f.stat().st_size for f in files) < 500_000


# ---------------------------------------------------------------------------------------
# paddle.nn.Conv2D / Conv2DTranspose and their functionals

NN = sorted(FIXTURES.glob("paddle_family_nn_*.npz"))


@pytest.mark.parametrize("path", NN, ids=[p.stem.removeprefix("paddle_family_") for p in NN])
def test_nn_layers_and_functionals_match_paddle(path):
    z = load_fixture(path)
    dtype = _torch_dtype(z)
    kwargs = json.loads(str(z["kwargs"]))
    fkwargs = json.loads(str(z["forward_kwargs"]))
    transposed = str(z["layer"]) == "Conv2DTranspose"
    torch.manual_seed(0)
    layer = getattr(pnn, str(z["layer"]))(**kwargs).to(dtype)
    assert tuple(layer.weight.shape) == z["weight"].shape  # Paddle's parameter shapes
    assert (layer.bias is None) == ("bias" not in z)
    state = {k: torch.tensor(z[k]) for k in ("weight", "bias") if k in z}
    layer.load_state_dict(state)  # Paddle's state-dict keys
    assert list(layer.state_dict()) == list(state)
    x = torch.tensor(z["x"]).requires_grad_(True)
    out = layer(x, **fkwargs)
    assert out.dtype == dtype
    close_to_fixture(out, z["out"], "layer out")
    _check_grads(out, {"x": x, **dict(layer.named_parameters())}, z)

    if kwargs.get("padding_mode", "zeros") != "zeros":
        return  # the functional has no padding_mode
    args = {k: v for k, v in kwargs.items() if k in ("stride", "padding", "dilation", "groups")}
    args["data_format"] = kwargs.get("data_format", "NCHW")
    x2 = torch.tensor(z["x"]).requires_grad_(True)
    w = torch.tensor(z["weight"]).requires_grad_(True)
    b = torch.tensor(z["bias"]).requires_grad_(True) if "bias" in z else None
    if transposed:
        if "output_size" not in fkwargs:
            args["output_padding"] = kwargs.get("output_padding", 0)
        out2 = PF.conv2d_transpose(x2, w, b, **args, **fkwargs)
    else:
        out2 = PF.conv2d(x2, w, b, **args)
    close_to_fixture(out2, z["out"], "functional out")
    _check_grads(out2, {"x": x2, "weight": w, **({"bias": b} if b is not None else {})}, z)


def test_nn_float32_fixtures_also_in_float64():
    """float32 fixtures upcast to float64 agree at Paddle's float32 rounding."""
    for path in NN:
        z = load_fixture(path)
        if z["x"].dtype != np.float32:
            continue
        layer = getattr(pnn, str(z["layer"]))(**json.loads(str(z["kwargs"]))).to(F64)
        layer.load_state_dict({k: torch.tensor(z[k]).double() for k in ("weight", "bias")})
        out = layer(torch.tensor(z["x"]).double())
        close_to_fixture(out, z["out"], path.stem, tol=1e-5)


# ---------------------------------------------------------------------------------------
# fluid.layers.conv2d / conv2d_transpose (in a Program, loaded by Paddle's names) and the
# 1.x dygraph Conv2D

STATIC = sorted(FIXTURES.glob("paddle_family_static_*.npz"))


@pytest.mark.parametrize(
    "path", STATIC, ids=[p.stem.removeprefix("paddle_family_") for p in STATIC]
)
def test_fluid_layers_match_paddle_static_layers(path):
    z = load_fixture(path)
    dtype = str(z["x"].dtype)
    func = getattr(fluid.layers, str(z["func"]))
    kwargs = json.loads(str(z["kwargs"]))

    def build():
        x = fluid.layers.data(name="x", shape=list(z["x"].shape[1:]), dtype=dtype)
        return func(x, **kwargs)

    net = Program(build)
    x = torch.tensor(z["x"]).requires_grad_(True)
    net.build(x)
    names = [str(n) for n in z["param_names"]]
    assert list(net.state_dict()) == names  # Paddle's parameter names, in its order
    net.load_state_dict({n: z["weight" if n.endswith(".w_0") else "bias"] for n in names})
    out = net(x)
    close_to_fixture(out, z["out"], "out")
    layer = next(iter(net.layers.values()))
    named = {"x": x, "weight": layer.weight}
    if layer.bias is not None:
        named["bias"] = layer.bias
    _check_grads(out, named, z)


def test_fluid_dygraph_conv2d_matches_paddle():
    """fluid.dygraph.Conv2D (pair padding, act) against the same conv as Paddle's static
    conv2d fixture."""
    z = load_fixture(FIXTURES / "paddle_family_static_conv_pair_sigmoid.npz")
    kwargs = json.loads(str(z["kwargs"]))
    layer = fluid.dygraph.Conv2D(
        z["x"].shape[1], kwargs["num_filters"], kwargs["filter_size"], stride=kwargs["stride"],
        padding=kwargs["padding"], dilation=kwargs["dilation"], act=kwargs["act"],
        dtype="float64",
    )  # fmt: skip
    assert list(layer.state_dict()) == ["weight", "bias"]
    assert layer.full_name().startswith("conv2_d_")
    layer.load_state_dict({k: torch.tensor(z[k]) for k in ("weight", "bias")})
    x = torch.tensor(z["x"]).requires_grad_(True)
    out = layer(x)
    close_to_fixture(out, z["out"], "out")
    _check_grads(out, {"x": x, **dict(layer.named_parameters())}, z)


# ---------------------------------------------------------------------------------------
# default initialisers against Paddle's


@pytest.mark.parametrize("key", ["nn_conv", "nn_convT", "static_conv", "static_convT"])
def test_default_initialisers_match_paddle(key):
    z = load_fixture(FIXTURES / "paddle_family_init.npz")
    shape = tuple(int(v) for v in z[f"{key}:shape"])
    torch.manual_seed(3)
    if key == "nn_conv":
        m = pnn.Conv2D(64, 128, 3, groups=2)
    elif key == "nn_convT":
        m = pnn.Conv2DTranspose(64, 96, (3, 2), groups=2)
    else:
        func = fluid.layers.conv2d if key == "static_conv" else fluid.layers.conv2d_transpose
        size = {"filter_size": 3} if key == "static_conv" else {"filter_size": (3, 2)}
        net = Program(
            lambda: func(
                fluid.layers.data(name="x", shape=[64, 8, 8], dtype="float32"),
                128 if key == "static_conv" else 96, groups=2, **size,
            )
        )  # fmt: skip
        net.build(torch.zeros(1, 64, 8, 8))
        assert list(net.state_dict()) == [str(n) for n in z[f"{key}:param_names"]]
        m = next(iter(net.layers.values()))
    w = m.weight.detach().double()
    assert tuple(w.shape) == shape
    # ~36k to ~74k draws: the sample std is within 1.5% of Paddle's (its sd is ~0.4%)
    assert abs(w.std().item() / float(z[f"{key}:std"]) - 1) < 0.015
    assert abs(w.mean().item()) < 0.02 * float(z[f"{key}:std"]) * 10
    if key.endswith("T"):  # Xavier-uniform: the same bound (Paddle's fans)
        fan_in, fan_out = shape[1] * shape[2] * shape[3], shape[0] * shape[2] * shape[3]
        bound = math.sqrt(6 / (fan_in + fan_out))
        assert float(z[f"{key}:absmax"]) <= bound and w.abs().max().item() <= bound
        assert w.abs().max().item() > 0.99 * bound
    assert float(z[f"{key}:bias_absmax"]) == 0 and not m.bias.any()


# ---------------------------------------------------------------------------------------
# deformable conv: float16 offset / weight / bias / mask with a float32 input (Paddle
# casts them to x's dtype on CPU), wrong dtypes are TypeErrors before any shape check


def test_dcn_mixed_float16_float32_matches_paddle():
    z = load_fixture(FIXTURES / "paddle_family_dcn_mixed.npz")
    keys = ("x", "offset", "weight", "bias", "mask")
    named = {k: torch.tensor(z[k]).requires_grad_(True) for k in keys}
    assert named["x"].dtype == torch.float32 and named["weight"].dtype == torch.float16
    out = deform_conv2d(
        named["x"], named["offset"], named["weight"], named["bias"], padding=1,
        deformable_groups=2, groups=2, mask=named["mask"],
    )  # fmt: skip
    assert out.dtype == torch.float32
    close_to_fixture(out, z["out"], "out", tol=1e-5)
    grads = torch.autograd.grad(out, list(named.values()), torch.tensor(z["grad_out"]))
    for k, g in zip(named, grads, strict=True):
        expected = z[f"grad_{k}"]
        assert g.dtype == named[k].dtype  # float16 gradients for the float16 tensors
        # float16 results: Paddle and omniconv may round the float32 gradient differently
        # by one float16 step (2**-10 relative)
        tol = 1e-5 if g.dtype == torch.float32 else 2e-3
        close_to_fixture(g.float(), expected.astype(np.float32), f"grad_{k}", tol=tol)
    # the cast-then-compute rule, exactly: omniconv on the tensors cast to float32
    ref = deform_conv2d(
        named["x"], named["offset"].float(), named["weight"].float(), named["bias"].float(),
        padding=1, deformable_groups=2, groups=2, mask=named["mask"].float(),
    )  # fmt: skip
    torch.testing.assert_close(out, ref, rtol=0, atol=0)


def test_deform_conv2d_layer_with_float16_parameters():
    """Paddle's own CPU fp16 case (TestDeformConv2DAPI_CPU_FP16), as a layer and as the
    functional: ones everywhere, deformable_groups=5 -> 46 at every output (bias 1)."""
    x = torch.ones(4, 5, 5, 5)
    offset = torch.ones(4, 90, 5, 5, dtype=torch.float16)
    weight = torch.ones(5, 5, 3, 3, dtype=torch.float16)
    bias = torch.ones(5, dtype=torch.float16)
    mask = torch.ones(4, 45, 5, 5, dtype=torch.float16)
    out = deform_conv2d(x, offset, weight, bias, 1, 1, 1, deformable_groups=5, mask=mask)
    assert out.shape == (4, 5, 5, 5) and out.dtype == torch.float32
    # offset (1, 1): every tap reads x one row down and one column right, 0 past the border
    ref = ref_deform_conv2d(
        x.double(), offset.double(), weight.double(), bias.double(), 1, 1, 1, mask.double()
    )
    torch.testing.assert_close(out.double(), ref, rtol=1e-6, atol=1e-6)
    assert out[0, 0, 0, 0].item() == 46.0  # Paddle 3.3.1 gives 46 here too
    layer = DeformConv2D(5, 5, 3, padding=1, deformable_groups=5).half()
    layer.load_state_dict({"weight": weight, "bias": bias})
    torch.testing.assert_close(layer(x, offset, mask), out, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"x": torch.ones(1, 2, 5, 5, dtype=torch.int32)}, "received int32."),
        ({"x": torch.ones(1, 2, 5, dtype=torch.int32)}, "received int32."),  # shape wrong too
        ({"x": torch.ones(1, 2, 5, 5, dtype=torch.float16)}, "received float16."),
        ({"x": [1.0]}, "The type of 'x' in deform_conv2d must be Tensor"),
        ({"offset": torch.ones(1, 18, 3, 3, dtype=torch.int32)}, "'offset'"),
        ({"weight": torch.ones(3, 2, 3, 3, dtype=torch.float64)}, "'weight'"),
        ({"offset": torch.ones(1, 18, 3, 3).bfloat16()}, "'offset'"),
        ({"mask": torch.ones(1, 9, 3, 3, dtype=torch.float64)}, "'mask'"),
        ({"bias": torch.ones(3, dtype=torch.int64)}, "'bias'"),
    ],
)
def test_deform_conv2d_wrong_dtypes_are_type_errors_before_shapes(kwargs, message):
    args = {
        "x": torch.randn(1, 2, 5, 5),
        "offset": torch.zeros(1, 18, 3, 3),
        "weight": torch.randn(3, 2, 3, 3),
        "bias": None,
        "mask": None,
    }
    args.update(kwargs)
    with pytest.raises(TypeError, match=re.escape(message)):
        deform_conv2d(args.pop("x"), args.pop("offset"), args.pop("weight"), **args)
    layer = DeformConv2D(2, 3, 3)
    if "x" in kwargs or "offset" in kwargs or "mask" in kwargs:
        x = kwargs.get("x", torch.randn(1, 2, 5, 5))
        with pytest.raises(TypeError, match=re.escape(message)):
            layer(x, kwargs.get("offset", torch.zeros(1, 18, 3, 3)), kwargs.get("mask"))


def test_conv_input_dtype_is_a_type_error_before_shapes():
    bad = torch.ones(2, 4, 8, dtype=torch.int32)  # wrong dtype and 3-D
    for call in (
        lambda: pnn.Conv2D(4, 6, 3)(bad),
        lambda: pnn.Conv2DTranspose(4, 6, 3)(bad),
        lambda: PF.conv2d(bad, torch.randn(6, 4, 3, 3)),
        lambda: PF.conv2d_transpose(bad, torch.randn(4, 3, 3, 3)),
    ):
        with pytest.raises(TypeError, match=r"must be \['float16', 'uint16', 'float32', "):
            call()
    with pytest.raises(TypeError, match="'input' in conv2d must be float16 or float32 or"):
        fluid.layers.conv2d(bad, 4, 3)
    with pytest.raises(TypeError, match="'input' in Conv2D must be"):
        fluid.dygraph.Conv2D(4, 6, 3)(bad)


# ---------------------------------------------------------------------------------------
# Paddle's error texts (3.3.1), with the argument and value added where they lack them

ERRORS = load_fixture(FIXTURES / "paddle_family_errors.npz")
X = torch.randn(2, 4, 8, 8)
W = torch.randn(6, 4, 3, 3)
WT = torch.randn(4, 3, 3, 3)


def _static_x(shape, dtype=torch.float32):
    return torch.zeros(shape, dtype=dtype)


ERROR_CALLS = {
    "nn_conv_weight_attr_false": lambda: pnn.Conv2D(4, 6, 3, weight_attr=False),
    "nn_conv_reflect_list_padding": lambda: pnn.Conv2D(
        4, 6, 3, padding=[1, 1], padding_mode="reflect"
    ),
    "nn_conv_in_groups": lambda: pnn.Conv2D(4, 6, 3, groups=3),
    "nn_conv_groups0": lambda: pnn.Conv2D(4, 6, 3, groups=0),
    "nn_convT_groups0": lambda: pnn.Conv2DTranspose(4, 6, 3, groups=0),
    "nn_conv_kernel_len3": lambda: pnn.Conv2D(4, 6, (3, 3, 3)),
    "nn_conv_kernel_float": lambda: pnn.Conv2D(4, 6, 3.0),
    "nn_conv_padding_neg": lambda: pnn.Conv2D(4, 6, 3, padding=-1),
    "nn_conv_padding_str": lambda: pnn.Conv2D(4, 6, 3, padding="full"),
    "nn_conv_padding_len3": lambda: pnn.Conv2D(4, 6, 3, padding=[1, 1, 1]),
    "nn_conv_padding_nested": lambda: pnn.Conv2D(4, 6, 3, padding=[[1, 1], [1, 1], [0, 0], [0, 0]]),
    "nn_convT_output_size_str": lambda: pnn.Conv2DTranspose(4, 6, 3, stride=2)(X, output_size="a"),
    "nn_convT_output_size_high": lambda: pnn.Conv2DTranspose(4, 6, 3, stride=2)(X, output_size=19),
    "F_conv_groups0": lambda: PF.conv2d(X, W, groups=0),
    "F_conv_channels_groups": lambda: PF.conv2d(X, W, groups=3),
    "F_conv_filters_groups": lambda: PF.conv2d(X, torch.randn(6, 1, 3, 3), groups=4),
    "F_conv_data_format": lambda: PF.conv2d(X, W, data_format="NCWH"),
    "F_conv_x_3d": lambda: PF.conv2d(torch.randn(4, 8, 8), W),
    "F_convT_groups0": lambda: PF.conv2d_transpose(X, WT, groups=0),
    "F_convT_channels_groups": lambda: PF.conv2d_transpose(X, WT, groups=3),
    "F_convT_data_format": lambda: PF.conv2d_transpose(X, WT, data_format="NCWH"),
    "F_convT_weight_1d": lambda: PF.conv2d_transpose(X, torch.randn(4)),
    "F_convT_outpad_and_size": lambda: PF.conv2d_transpose(
        X, WT, stride=2, output_padding=1, output_size=[17, 17]
    ),
    "F_convT_output_size_len3": lambda: PF.conv2d_transpose(
        X, WT, stride=2, output_size=[17, 17, 17]
    ),
    "F_convT_output_size_float": lambda: PF.conv2d_transpose(X, WT, stride=2, output_size=17.0),
    "deform_groups0": lambda: DeformConv2D(4, 4, 3, groups=0),
    "static_F_conv_int32": lambda: PF.conv2d(_static_x((2, 4, 8, 8), torch.int32), W),
    "static_F_convT_int32": lambda: PF.conv2d_transpose(_static_x((2, 4, 8, 8), torch.int32), WT),
    "static_deform_int32": lambda: deform_conv2d(
        _static_x((1, 2, 5, 5), torch.int32), torch.zeros(1, 18, 3, 3), torch.zeros(3, 2, 3, 3)
    ),
    "static_conv_use_cudnn": lambda: fluid.layers.conv2d(
        _static_x((1, 4, 8, 8)), 4, 3, use_cudnn=1
    ),
    "static_conv_data_format": lambda: fluid.layers.conv2d(
        _static_x((1, 4, 8, 8)), 4, 3, data_format="NCWH"
    ),
    "static_conv_channels_groups": lambda: fluid.layers.conv2d(
        _static_x((1, 4, 8, 8)), 6, 3, groups=3
    ),
    "static_conv_padding_str": lambda: fluid.layers.conv2d(
        _static_x((1, 4, 8, 8)), 4, 3, padding="Vald"
    ),
    "static_conv_padding_nested": lambda: fluid.layers.conv2d(
        _static_x((1, 4, 8, 8)), 4, 3, padding=[[0, 0], [1, 1], [0, 0], [0, 0]]
    ),
    "static_convT_data_format": lambda: fluid.layers.conv2d_transpose(
        _static_x((1, 4, 8, 8)), 4, filter_size=3, data_format="NCDHW"
    ),
    "static_convT_no_sizes": lambda: fluid.layers.conv2d_transpose(_static_x((1, 4, 8, 8)), 4),
}

#: Paddle's types -> the omniconv class that must be raised (both the framework's type
#: and ValueError / TypeError)
_TYPES = {
    "AssertionError": P.PaddleAssertionError,
    "ZeroDivisionError": P.PaddleZeroDivisionError,
    "ValueError": ValueError,
    "TypeError": TypeError,
}


def _normalise(text: str) -> str:
    """Paddle prints shapes as ``paddle.Size([2, 4])`` (dygraph) or ``(2, 4)`` (static),
    omniconv as a list; both sides are compared with tuples written as lists. The 3.x
    static conv2d_transpose names its op path ``paddle.static.nn.layers``, 1.8's
    ``fluid.layers``."""
    text = re.sub(r"paddle\.Size\((\[[^\]]*\])\)", r"\1", text)
    text = re.sub(r"\((\d+(?:, \d+)+),?\)", r"[\1]", text)
    text = re.sub(r"\((\d+),\)", r"[\1]", text)
    return text.replace("paddle.static.nn.layers.", "fluid.layers.")


def test_error_table_covers_the_fixture():
    recorded = {k for k in ERRORS if not k.endswith(":type")} - {"framework", "version", "case"}
    assert sorted(ERROR_CALLS) == sorted(recorded)


@pytest.mark.parametrize("key", sorted(ERROR_CALLS))
def test_errors_keep_paddle_words_and_type(key):
    paddle_type = _TYPES[str(ERRORS[f"{key}:type"])]
    with pytest.raises(Exception) as info:
        ERROR_CALLS[key]()
    err = info.value
    assert isinstance(err, paddle_type), (type(err), paddle_type)
    assert isinstance(err, ValueError | TypeError)  # omniconv's error policy
    # 1.x's use_cudnn text ends in ". " (the fixture's first lines are stripped)
    ours = _normalise(str(err)).rstrip()
    expected = _normalise(str(ERRORS[key]))
    assert ours == expected or ours.startswith(expected + "; received "), (ours, expected)


# ---------------------------------------------------------------------------------------
# behaviour beyond the fixtures


def test_paddle_same_for_transposed_conv_depends_on_the_input_size():
    """Paddle's 'SAME' of conv2d_transpose pads like a conv of the input size (dilation
    ignored): 13 for H=7, s=2 (omniconv's own 'same' gives 14 = H*s); resolved per call."""
    torch.manual_seed(0)
    m = pnn.Conv2DTranspose(2, 3, 3, stride=2, padding="same", dilation=3).double()
    assert m.padding == "SAME" and m.dilation == (1, 1)
    for h, w in [(7, 8), (6, 5)]:
        x = torch.randn(1, 2, h, w, dtype=F64)
        out = m(x)
        # independent statement: conv 'SAME' padding of the input (TensorFlow's formula)
        pads = []
        for size in (h, w):
            total = max((-(-size // 2) - 1) * 2 + 3 - size, 0)
            pads += [total // 2, total - total // 2]
        ref = ref_conv_transpose2d(x, m.weight, m.bias, 2, pads, 0, 1, 1)
        torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    assert m(torch.randn(1, 2, 7, 8, dtype=F64)).shape[-2:] == (13, 16)
    s1 = pnn.Conv2DTranspose(2, 3, (4, 3), padding="SAME")  # stride 1: resolved once
    assert s1._resolved_padding == (1, 2, 1, 1) and not s1._same_from_input


def test_paddle_same_conv2d_ignores_dilation():
    torch.manual_seed(0)
    m = pnn.Conv2D(2, 3, 3, stride=2, padding="SAME", dilation=2).double()
    x = torch.randn(1, 2, 7, 6, dtype=F64)
    pads = (1, 1, 0, 1)  # TensorFlow's 'SAME' for a 3x3 kernel, stride 2, on 7x6
    ref = ref_conv2d(x, m.weight, m.bias, 2, pads, 1, 1)
    torch.testing.assert_close(m(x), ref, rtol=1e-10, atol=1e-10)


def test_fluid_conv2d_transpose_rules():
    x = torch.randn(1, 3, 5, 5)
    out = fluid.layers.conv2d_transpose(x, 4, output_size=[11, 12], stride=2, padding=1)
    assert out.shape == (1, 4, 11, 12)  # kernel (3, 4) inferred from output_size
    with pytest.raises(ValueError, match=r"^output_size should be list or int; received"):
        fluid.layers.conv2d_transpose(x, 4, output_size=(11, 12), filter_size=3, stride=2)
    with pytest.raises(ValueError, match="should not be less than the inferred output size"):
        fluid.layers.conv2d_transpose(x, 4, output_size=[8, 9], filter_size=3, stride=2)
    with pytest.raises(P.PaddleAssertionError, match="param_attr should not be False in conv2d_"):
        fluid.layers.conv2d_transpose(x, 4, filter_size=3, param_attr=False)
    with pytest.raises(P.PaddleZeroDivisionError):
        fluid.layers.conv2d_transpose(x, 4, filter_size=3, groups=0)
    # NHWC: the bias runs along the channels ([num_filters]; Paddle 1.x's [H_out] is a bug)
    y = fluid.layers.conv2d_transpose(
        x.permute(0, 2, 3, 1), 4, filter_size=3, data_format="NHWC",
        bias_attr=fluid.ParamAttr(initializer=fluid.initializer.Constant(1.5)),
        param_attr=fluid.ParamAttr(initializer=fluid.initializer.Constant(0.0)),
    )  # fmt: skip
    assert y.shape == (1, 7, 7, 4) and torch.equal(y, torch.full_like(y, 1.5))


def test_fluid_conv2d_names_and_depthwise():
    def build():
        x = fluid.layers.data(name="x", shape=[4, 6, 6], dtype="float32")
        y = fluid.layers.conv2d(x, 8, 3, groups=4, use_cudnn=False)  # depthwise op name
        y = fluid.layers.conv2d(y, 4, 1, name="head", bias_attr=False)
        return fluid.layers.conv2d_transpose(y, 2, filter_size=2, stride=2)

    net = Program(build)
    net.build(torch.randn(1, 4, 6, 6))
    assert list(net.state_dict()) == [
        "depthwise_conv2d_0.w_0", "depthwise_conv2d_0.b_0", "head.w_0",
        "conv2d_transpose_0.w_0", "conv2d_transpose_0.b_0",
    ]  # fmt: skip


# ---------------------------------------------------------------------------------------
# a fluid DCN block: offsets predicted by fluid.layers.conv2d, fed to
# fluid.layers.deformable_conv, inside a Program; it trains and equals the float64 reference


def _dcn_block():
    img = fluid.layers.data(name="img", shape=[3, 9, 9], dtype="float32")
    feat = fluid.layers.conv2d(img, 4, 3, padding=1, act="relu")
    offset = fluid.layers.conv2d(feat, 18, 3, padding=1, name="offset")
    mask = fluid.layers.conv2d(feat, 9, 3, padding=1, act="sigmoid", name="mask")
    return fluid.layers.deformable_conv(
        feat, offset, mask, num_filters=5, filter_size=3, padding=1, im2col_step=1
    )


def test_fluid_dcn_block_trains_and_matches_the_reference():
    torch.manual_seed(0)
    net = Program(_dcn_block)
    g = torch.Generator().manual_seed(5)
    img = torch.randn(4, 3, 9, 9, generator=g)
    target = torch.randn(4, 5, 9, 9, generator=g)
    net.build(img)
    assert list(net.state_dict()) == [
        "conv2d_0.w_0", "conv2d_0.b_0", "offset.w_0", "offset.b_0", "mask.w_0", "mask.b_0",
        "deformable_conv_0.w_0", "deformable_conv_0.b_0",
    ]  # fmt: skip
    # non-zero offsets: scale the offset predictor up so that sampling leaves the grid
    with torch.no_grad():
        net.layers["conv2d_1"].weight.mul_(4.0)

    # forward == float64 reference built from the program's parameters
    p = {k: v.detach().double() for k, v in net.state_dict().items()}
    x = img.double()
    feat = ref_conv2d(x, p["conv2d_0.w_0"], p["conv2d_0.b_0"], 1, (1, 1, 1, 1), 1, 1).relu()
    off = ref_conv2d(feat, p["offset.w_0"], p["offset.b_0"], 1, (1, 1, 1, 1), 1, 1)
    mask = torch.sigmoid(ref_conv2d(feat, p["mask.w_0"], p["mask.b_0"], 1, (1, 1, 1, 1), 1, 1))
    assert off.abs().max() > 1.0  # the samples really move
    ref = ref_deform_conv2d(
        feat, off, p["deformable_conv_0.w_0"], p["deformable_conv_0.b_0"], 1, 1, 1, mask
    )
    out = net(img)
    torch.testing.assert_close(out.double(), ref, rtol=1e-4, atol=1e-4)

    opt = torch.optim.SGD(net.param_groups(0.05))
    losses = []
    for _ in range(6):
        opt.zero_grad()
        loss = (net(img) - target).pow(2).mean()
        loss.backward()
        assert net.layers["conv2d_1"].weight.grad.abs().sum() > 0  # gradients reach the offsets
        opt.step()
        losses.append(loss.item())
    assert all(b < a for a, b in itertools.pairwise(losses))


# ---------------------------------------------------------------------------------------
# Paddle's conv2d_transpose OpTest cases (test/legacy_test/test_conv2d_transpose_op.py:
# shapes and attributes) through the Paddle functional, against tests/reference.py

#: the OpTest classes' attributes; defaults: input (2, 3, 5, 5), filter (3, 6, 3, 3),
#: stride 1, pad (0, 0), dilation 1, groups 1, EXPLICIT padding, NCHW
_OPTEST_BASE = {
    "input": (2, 3, 5, 5), "filter": (3, 6, 3, 3), "stride": (1, 1), "pad": (0, 0),
    "dilation": (1, 1), "groups": 1, "algorithm": "EXPLICIT", "output_size": None,
    "output_padding": None, "data_format": "NCHW",
}  # fmt: skip
_UP = {"input": (2, 3, 7, 7), "filter": (3, 6, 5, 5), "stride": (2, 2), "pad": (2, 2)}
_NHWC = {"input": (2, 5, 5, 3), "data_format": "NHWC"}
OPTEST_CASES = {
    "base": {},
    "symmetric_pad": {"pad": (1, 1)},
    "asymmetric_pad": {"pad": (1, 0, 1, 2)},
    "same": {"input": (2, 3, 6, 5), "filter": (3, 6, 4, 3), "stride": (2, 1),
             "dilation": (1, 2), "algorithm": "SAME"},
    "valid": {"algorithm": "VALID"},
    "groups": {"input": (2, 4, 5, 5), "filter": (4, 3, 3, 3), "pad": (1, 1), "groups": 2},
    "stride": {"pad": (1, 1), "stride": (2, 2)},
    "dilation": {"pad": (1, 1), "dilation": (2, 2)},
    "even_upsample": {**_UP, "output_size": (14, 14)},
    "even_upsample_outpad": {**_UP, "output_padding": (1, 1)},
    "nhwc": _NHWC,
    "nhwc_symmetric_pad": {**_NHWC, "pad": (1, 1)},
    "nhwc_asymmetric_pad": {**_NHWC, "pad": (1, 0, 1, 2)},
    "nhwc_groups": {**_NHWC, "input": (2, 5, 5, 4), "filter": (4, 3, 3, 3), "pad": (1, 1),
                    "groups": 2},
    "nhwc_stride": {**_NHWC, "pad": (1, 1), "stride": (2, 2)},
    "nhwc_dilation": {**_NHWC, "pad": (1, 1), "dilation": (2, 2)},
    "nhwc_even_upsample": {**_UP, **_NHWC, "input": (2, 7, 7, 3), "output_size": (14, 14)},
    "nhwc_even_upsample_outpad": {**_UP, **_NHWC, "input": (2, 7, 7, 3),
                                  "output_padding": (1, 1)},
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(OPTEST_CASES))
def test_paddle_optest_conv2d_transpose_cases(case):
    """The 18 CPU classes of Paddle's test_conv2d_transpose_op.py (their shapes and
    attributes), through paddle.nn.functional.conv2d_transpose, against the float64
    scatter reference with the padding worked out here from Paddle's rules."""
    c = {**_OPTEST_BASE, **OPTEST_CASES[case]}
    f_shape, stride, fmt, osize, opad = (
        c["filter"],
        c["stride"],
        c["data_format"],
        c["output_size"],
        c["output_padding"],
    )
    g = torch.Generator().manual_seed(len(case))
    x = torch.rand(c["input"], generator=g, dtype=F64)
    w = torch.rand(f_shape, generator=g, dtype=F64)
    padding = c["algorithm"] if c["algorithm"] != "EXPLICIT" else list(c["pad"])
    kwargs = {"output_size": list(osize)} if osize else {}
    if opad:
        kwargs["output_padding"] = list(opad)
    out = PF.conv2d_transpose(
        x, w, stride=list(stride), padding=padding, dilation=list(c["dilation"]),
        groups=c["groups"], data_format=fmt, **kwargs,
    )  # fmt: skip
    xn = x.permute(0, 3, 1, 2) if fmt == "NHWC" else x
    h, wd = xn.shape[-2:]
    dil = c["dilation"]
    if c["algorithm"] == "SAME":  # Paddle: conv 'SAME' padding of the input, dilation 1
        pads, dil = [], (1, 1)
        for size, k, s in zip((h, wd), f_shape[2:], stride, strict=True):
            total = max((-(-size // s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
    else:
        pads = [0, 0, 0, 0] if c["algorithm"] == "VALID" else list(c["pad"])
    four = pads if len(pads) == 4 else (pads[0], pads[0], pads[1], pads[1])
    extra = opad or (0, 0)
    if osize:
        base_h = (h - 1) * stride[0] - four[0] - four[1] + dil[0] * (f_shape[2] - 1) + 1
        base_w = (wd - 1) * stride[1] - four[2] - four[3] + dil[1] * (f_shape[3] - 1) + 1
        extra = (osize[0] - base_h, osize[1] - base_w)
    ref = ref_conv_transpose2d(xn, w, None, stride, four, extra, c["groups"], dil)
    if fmt == "NHWC":
        ref = ref.permute(0, 2, 3, 1)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
