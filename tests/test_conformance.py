"""Conformance against numbers produced by the real frameworks.

The fixtures in tests/fixtures/*.npz were written by tools/fixtures/gen_paddle.py
(paddlepaddle 3.3.1, CPU) and tools/fixtures/gen_mxnet.py (mxnet 1.9.1, CPU, NCHW); see
tools/fixtures/README.md.  Each holds the inputs, parameters and hyper-parameters of one
call, the framework's output, a random head gradient ``grad_out`` and the framework's
gradients of every input and parameter for that head gradient.

Every fixture is run through omniconv in its own dtype.  The float32 fixtures are also
run in float64 (inputs upcast), compared with the float32 tolerance: this checks the
float64 path against the framework up to the framework's own float32 rounding.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

FIXTURES = Path(__file__).parent / "fixtures"

# tolerance, relative to the largest magnitude of the expected array (and also rtol)
TOL = {torch.float64: 1e-10, torch.float32: 1e-5}


def _files(prefix: str) -> list[Path]:
    return sorted(FIXTURES.glob(f"{prefix}_*.npz"))


DEFORM = _files("paddle_deform")
CONVT = _files("paddle_convT")
GLUON = _files("mxnet_conv2d")


def _load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _params(files: list[Path]):
    """(file, compute dtype) pairs: the fixture's dtype, plus float64 for float32 fixtures."""
    out = []
    for f in files:
        with np.load(f) as z:
            fdt = z["x"].dtype
        out.append(pytest.param(f, None, id=f"{f.stem}-native"))
        if fdt == np.float32:
            out.append(pytest.param(f, torch.float64, id=f"{f.stem}-as_float64"))
    return out


def _torch_dtype(z, override):
    if override is not None:
        return override
    return {np.dtype("float64"): torch.float64, np.dtype("float32"): torch.float32}[z["x"].dtype]


def _tol(z) -> float:
    # the tolerance follows the precision of the framework's numbers, not the compute dtype
    return TOL[torch.float64] if z["x"].dtype == np.float64 else TOL[torch.float32]


def _pair(a: np.ndarray) -> tuple[int, int]:
    v = tuple(int(i) for i in np.asarray(a).reshape(-1))
    assert len(v) == 2, v
    return v  # type: ignore[return-value]


def _leaf(a: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    return torch.tensor(a, dtype=dtype).requires_grad_(True)


def _check(name: str, actual: torch.Tensor, expected: np.ndarray, tol: float, dtype) -> None:
    assert actual is not None, f"{name}: no gradient"
    assert tuple(actual.shape) == expected.shape, (
        f"{name}: shape {tuple(actual.shape)} != {expected.shape}"
    )
    assert actual.dtype == dtype, f"{name}: dtype {actual.dtype} != {dtype}"
    exp = torch.from_numpy(np.asarray(expected, dtype=np.float64))
    scale = max(1.0, float(np.abs(expected).max()) if expected.size else 1.0)
    torch.testing.assert_close(
        actual.detach().to(torch.float64),
        exp,
        rtol=tol,
        atol=tol * scale,
        msg=lambda m: f"{name} (tol {tol:g} x scale {scale:.3g}): {m}",
    )


def _check_all(z, out, grads: dict[str, torch.Tensor], dtype) -> None:
    tol = _tol(z)
    _check("out", out, z["out"], tol, dtype)
    expected_grads = sorted(k for k in z if k.startswith("grad_") and k != "grad_out")
    assert sorted(grads) == expected_grads, (sorted(grads), expected_grads)
    for k in expected_grads:
        _check(k, grads[k], z[k], tol, dtype)


def _grads(out: torch.Tensor, named: dict[str, torch.Tensor], grad_out: np.ndarray):
    g = torch.tensor(grad_out, dtype=out.dtype)
    assert tuple(out.shape) == g.shape, f"out shape {tuple(out.shape)} != {g.shape}"
    res = torch.autograd.grad(out, list(named.values()), g, allow_unused=True)
    return {f"grad_{k}": v for k, v in zip(named, res, strict=True)}


# ---------------------------------------------------------------------------------------
# inventory: the fixtures are there and say where they come from


def test_fixture_inventory():
    assert len(DEFORM) >= 10 and len(CONVT) >= 5 and len(GLUON) >= 13
    total = 0
    for f in DEFORM + CONVT + GLUON:
        z = _load(f)
        total += f.stat().st_size
        fw, ver = str(z["framework"]), str(z["version"])
        if f.name.startswith("paddle_"):
            assert (fw, ver) == ("paddlepaddle", "3.3.1"), (f.name, fw, ver)
        else:
            assert (fw, ver) == ("mxnet", "1.9.1"), (f.name, fw, ver)
        assert "grad_out" in z and "out" in z and "grad_x" in z and "grad_weight" in z
        assert ("bias" in z) == ("grad_bias" in z)
    assert total < 1_000_000
    acts = {str(_load(f)["activation"]) for f in GLUON}
    assert {"relu", "sigmoid", "tanh", "softrelu", "softsign", ""} <= acts


# ---------------------------------------------------------------------------------------
# paddle.vision.ops.deform_conv2d / _C_ops.deformable_conv


@pytest.mark.parametrize(("path", "dtype_override"), _params(DEFORM))
def test_paddle_deform_conv2d(path, dtype_override):
    from omniconv.functional import deform_conv2d

    z = _load(path)
    dtype = _torch_dtype(z, dtype_override)
    # the API infers groups and deformable groups from the shapes; make sure they are the
    # fixture's
    kh, kw = z["weight"].shape[2:]
    assert z["x"].shape[1] // z["weight"].shape[1] == int(z["groups"])
    assert z["offset"].shape[1] // (2 * kh * kw) == int(z["deformable_groups"])

    names = ["x", "offset", "weight"] + [k for k in ("mask", "bias") if k in z]
    t = {k: _leaf(z[k], dtype) for k in names}
    out = deform_conv2d(
        t["x"],
        t["offset"],
        t["weight"],
        t.get("bias"),
        stride=_pair(z["stride"]),
        padding=_pair(z["padding"]),
        dilation=_pair(z["dilation"]),
        mask=t.get("mask"),
        im2col_step=int(z["im2col_step"]),
    )
    _check_all(z, out, _grads(out, t, z["grad_out"]), dtype)


def test_paddle_im2col_step_fixture_records_paddle_backward_bug():
    """The step-2 fixture stores Paddle's step-1 gradients (correct); Paddle's own step-2
    gradients (kept for the record) differ, so omniconv must not be compared to those."""
    z = _load(FIXTURES / "paddle_deform_v2_im2col_step2.npz")
    assert int(z["im2col_step"]) == 2 and z["x"].shape[0] == 4
    assert not np.allclose(z["paddle_step2_grad_x"], z["grad_x"])
    assert not np.allclose(z["paddle_step2_grad_weight"], z["grad_weight"])


# ---------------------------------------------------------------------------------------
# paddle.nn.functional.conv2d_transpose


@pytest.mark.parametrize(("path", "dtype_override"), _params(CONVT))
def test_paddle_conv_transpose2d(path, dtype_override):
    from omniconv.functional import conv_transpose2d

    z = _load(path)
    dtype = _torch_dtype(z, dtype_override)
    names = ["x", "weight"] + (["bias"] if "bias" in z else [])
    t = {k: _leaf(z[k], dtype) for k in names}
    kwargs = {}
    if "output_size" in z:
        kwargs["output_size"] = _pair(z["output_size"])
    else:
        kwargs["output_padding"] = _pair(z["output_padding"])
    out = conv_transpose2d(
        t["x"],
        t["weight"],
        t.get("bias"),
        stride=_pair(z["stride"]),
        padding=_pair(z["padding"]),
        groups=int(z["groups"]),
        dilation=_pair(z["dilation"]),
        **kwargs,
    )
    _check_all(z, out, _grads(out, t, z["grad_out"]), dtype)


# ---------------------------------------------------------------------------------------
# mxnet.gluon.nn.Conv2D


@pytest.mark.parametrize(("path", "dtype_override"), _params(GLUON))
def test_mxnet_gluon_conv2d(path, dtype_override):
    from omniconv.nn import Conv2d

    z = _load(path)
    dtype = _torch_dtype(z, dtype_override)
    use_bias = bool(int(z["use_bias"]))
    assert use_bias == ("bias" in z)
    act = str(z["activation"]) or None
    m = Conv2d(
        int(z["in_channels"]),
        int(z["channels"]),
        _pair(z["kernel_size"]),
        stride=_pair(z["stride"]),
        padding=_pair(z["padding"]),
        dilation=_pair(z["dilation"]),
        groups=int(z["groups"]),
        bias=use_bias,
        layout="NCHW",
        activation=act,
        dtype=dtype,
    )
    assert tuple(m.weight.shape) == z["weight"].shape
    assert (m.bias is None) == (not use_bias)
    with torch.no_grad():
        m.weight.copy_(torch.from_numpy(z["weight"]))
        if use_bias:
            m.bias.copy_(torch.from_numpy(z["bias"]))
    x = _leaf(z["x"], dtype)
    out = m(x)
    named = {"x": x, "weight": m.weight}
    if use_bias:
        named["bias"] = m.bias
    _check_all(z, out, _grads(out, named, z["grad_out"]), dtype)


# ---------------------------------------------------------------------------------------
# mxnet.gluon.nn.Conv2DTranspose and gluon.contrib.cnn.(Modulated)DeformableConvolution,
# through the Gluon front-end (tools/fixtures/gen_mxnet_family.py)

GLUON_CONVT = _files("mxnet_convT")
GLUON_DEFORM = [f for f in _files("mxnet_deform") if f.stem != "mxnet_deform_border"]
DEFORM_PARAMS = {  # Gluon attribute -> fixture key
    "offset_weight": "offset_weight",
    "offset_bias": "offset_bias",
    "deformable_conv_weight": "weight",
    "deformable_conv_bias": "bias",
}


def test_mxnet_family_fixture_inventory():
    assert len(GLUON_CONVT) >= 10 and len(GLUON_DEFORM) >= 12
    total = 0
    for f in [*GLUON_CONVT, *GLUON_DEFORM, FIXTURES / "mxnet_deform_border.npz"]:
        z = _load(f)
        total += f.stat().st_size
        assert (str(z["framework"]), str(z["version"])) == ("mxnet", "1.9.1"), f.name
        v2 = f.name.startswith("mxnet_deform_v2_")
        # MXNet's modulated operator has no CPU backward: v2 files hold no gradients
        assert any(k.startswith("grad_") for k in z) != v2, f.name
    assert total < 1_000_000
    cases = {str(_load(f)["case"]) for f in GLUON_CONVT}
    assert {"f32_stride2_dilation2", "dilation12_stride21", "all_asym_groups2"} <= cases


def _gluon_convT(z, dtype):
    from omniconv.compat.gluon import nn

    net = nn.Conv2DTranspose(
        int(z["channels"]), _pair(z["kernel_size"]), strides=_pair(z["stride"]),
        padding=_pair(z["padding"]), output_padding=_pair(z["output_padding"]),
        dilation=_pair(z["dilation"]), groups=int(z["groups"]), use_bias=bool(z["use_bias"]),
        activation=str(z["activation"]) or None, in_channels=int(z["in_channels"]),
    )  # fmt: skip
    net.cast(dtype)
    net.initialize()
    net.weight.set_data(torch.from_numpy(z["weight"]).to(dtype))
    if "bias" in z:
        net.bias.set_data(torch.from_numpy(z["bias"]).to(dtype))
    return net


@pytest.mark.parametrize(("path", "dtype_override"), _params(GLUON_CONVT))
def test_mxnet_gluon_conv2d_transpose(path, dtype_override):
    z = _load(path)
    dtype = _torch_dtype(z, dtype_override)
    net = _gluon_convT(z, dtype)
    x = _leaf(z["x"], dtype)
    out = net(x)
    g = torch.tensor(z["grad_out"], dtype=dtype)
    out.backward(g)
    grads = {"grad_x": x.grad, "grad_weight": net.weight.grad()}
    if "bias" in z:
        grads["grad_bias"] = net.bias.grad()
    _check_all(z, out, grads, dtype)


def test_mxnet_native_deconvolution_bug_is_recorded():
    """With stride and dilation > 1 on one axis MXNet's native CPU Deconvolution is wrong:
    the fixtures hold MKLDNN's numbers, which the float64 reference confirms, and keep the
    native ones (which omniconv does not reproduce) for the record."""
    from reference import ref_conv_transpose2d

    recorded = [f for f in GLUON_CONVT if "native_out" in _load(f)]
    assert len(recorded) == 2
    for f in recorded:
        z = _load(f)
        assert int(z["mkldnn"]) == 1
        assert any(s > 1 and d > 1 for s, d in zip(z["stride"], z["dilation"], strict=True))
        t = {k: torch.from_numpy(z[k]).double() for k in ("x", "weight", "bias") if k in z}
        ref = ref_conv_transpose2d(
            t["x"], t["weight"], t.get("bias"), _pair(z["stride"]), _pair(z["padding"]),
            _pair(z["output_padding"]), int(z["groups"]), _pair(z["dilation"]),
        )  # fmt: skip
        act = str(z["activation"])
        ref = getattr(torch, act)(ref) if act else ref
        np.testing.assert_allclose(z["out"], ref.numpy(), rtol=1e-5, atol=1e-5)
        assert np.abs(z["native_out"] - z["out"]).max() > 1.0


def _gluon_deform(z, dtype):
    from omniconv.compat.gluon.contrib import cnn

    cls = getattr(cnn, str(z["op"]).rsplit(".", 1)[1])
    net = cls(
        int(z["channels"]), _pair(z["kernel_size"]), strides=_pair(z["stride"]),
        padding=_pair(z["padding"]), dilation=_pair(z["dilation"]), groups=int(z["groups"]),
        num_deformable_group=int(z["num_deformable_group"]), use_bias=bool(z["use_bias"]),
        offset_use_bias=bool(z["offset_use_bias"]), activation=str(z["activation"]) or None,
        in_channels=int(z["in_channels"]),
    )  # fmt: skip
    net.cast(dtype)
    net.initialize()
    net(torch.zeros(z["x"].shape, dtype=dtype))  # the deformable weight is always deferred
    for attr, key in DEFORM_PARAMS.items():
        assert (getattr(net, attr) is None) == (key not in z), (attr, key)
        if key in z:
            getattr(net, attr).set_data(torch.from_numpy(z[key]).to(dtype))
    return net


@pytest.mark.parametrize(("path", "dtype_override"), _params(GLUON_DEFORM))
def test_mxnet_gluon_deformable_convolution(path, dtype_override):
    """Values against MXNet's (DCNv1 with MXNet's own border rule), and for DCNv1 every
    gradient; DCNv2 has no MXNet CPU backward (its gradients: test_compat_gluon.py,
    against the float64 reference)."""
    z = _load(path)
    dtype = _torch_dtype(z, dtype_override)
    net = _gluon_deform(z, dtype)
    x = _leaf(z["x"], dtype)
    out = net(x)
    if "grad_out" not in z:
        _check("out", out, z["out"], _tol(z), dtype)
        return
    out.backward(torch.tensor(z["grad_out"], dtype=dtype))
    grads = {"grad_x": x.grad}
    for attr, key in DEFORM_PARAMS.items():
        if key in z:
            grads["grad_" + key] = getattr(net, attr).grad()
    _check_all(z, out, grads, dtype)


@pytest.mark.parametrize(
    "path", [f for f in GLUON_DEFORM if "_v1_" in f.name], ids=lambda p: p.stem
)
def test_mxnet_deformable_v1_against_the_v2_border_rule(path):
    """``out_v2_rule`` (MXNet's modulated operator, mask 1, on the layer's offsets) is
    omniconv's own rule, and differs from MXNet's DCNv1 output: the fixtures exercise the
    border."""
    from omniconv.functional import deform_conv2d

    z = _load(path)
    t = {k: torch.from_numpy(z[k]) for k in ("x", "offset", "weight", "bias") if k in z}
    out = deform_conv2d(
        t["x"], t["offset"], t["weight"], t.get("bias"), _pair(z["stride"]),
        _pair(z["padding"]), _pair(z["dilation"]), groups=int(z["groups"]),
    )  # fmt: skip
    act = str(z["activation"])
    out = getattr(torch, act)(out) if act else out
    _check("out_v2_rule", out, z["out_v2_rule"], _tol(z), out.dtype)
    assert np.abs(z["out"] - z["out_v2_rule"]).max() > 0.5


# omniconv.functional.conv_transpose2d's four-sided padding and NHWC against
# paddle.nn.Conv2DTranspose (the explicit-padding cases of paddle_family_nn_convT_*)

# Paddle's 'SAME' for a transposed conv is its own rule (the front-end's); 'valid' and the
# explicit paddings are omniconv's
FAMILY_CONVT = [
    f
    for f in sorted(FIXTURES.glob("paddle_family_nn_convT_*.npz"))
    if str(json.loads(str(_load(f)["kwargs"])).get("padding", 0)).lower() != "same"
]


@pytest.mark.parametrize(("path", "dtype_override"), _params(FAMILY_CONVT))
def test_paddle_conv_transpose2d_four_sided_and_nhwc(path, dtype_override):
    from omniconv.functional import conv_transpose2d

    z = _load(path)
    dtype = _torch_dtype(z, dtype_override)
    kw = json.loads(str(z["kwargs"]))
    fkw = json.loads(str(z["forward_kwargs"]))
    pad = kw.get("padding", 0)
    if isinstance(pad, list) and len(pad) == 4 and isinstance(pad[0], list):  # nested
        pairs = pad[1:3] if kw.get("data_format") == "NHWC" else pad[2:4]
        pad = [v for pair in pairs for v in pair]
    layout = kw.get("data_format", "NCHW")
    names = ["x", "weight"] + (["bias"] if "bias" in z else [])
    t = {k: _leaf(z[k], dtype) for k in names}
    weight = t["weight"].permute(0, 2, 3, 1) if layout == "NHWC" else t["weight"]
    extra = (
        {"output_size": fkw["output_size"]}
        if "output_size" in fkw
        else {"output_padding": kw.get("output_padding", 0)}
    )
    out = conv_transpose2d(
        t["x"], weight, t.get("bias"), kw.get("stride", 1),
        tuple(pad) if isinstance(pad, list) else pad, groups=kw.get("groups", 1),
        dilation=kw.get("dilation", 1), layout=layout, **extra,
    )  # fmt: skip
    _check_all(z, out, _grads(out, t, z["grad_out"]), dtype)


def test_family_convT_fixtures_cover_four_sided_and_nhwc():
    kinds = {
        str(json.loads(str(_load(f)["kwargs"])).get("data_format", "NCHW")) for f in FAMILY_CONVT
    }
    assert kinds == {"NCHW", "NHWC"} and len(FAMILY_CONVT) >= 4
