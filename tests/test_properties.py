"""Property tests: the fast path, the pure path and the float64 reference agree.

Random shapes, strides, paddings, dilations, conv and deformable groups; every input in a
random layout (contiguous, channels_last, transposed, expanded, sliced); offsets that are
integers, half-integers, on the grid of 1/64, generic, on the image border, huge,
infinite or NaN; masks with zeros, ones and NaN; pixels with NaN and ±inf; every dtype.
The output and all five gradients must be non-finite in the same places (the NaN / Inf
rule of ``docs/numerics.md``) and agree elsewhere within the dtype's tolerance
(``TOLERANCES``, the table of ``docs/numerics.md``).

The example count follows the hypothesis profile (``tests/conftest.py``): at least 1000
in CI (``ci``, derandomized), 20 000 with ``HYPOTHESIS_PROFILE=soak``. The last test
checks and prints how many examples ran.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import ref_deform_conv2d

from omniconv import backends
from omniconv._shapes import conv_output_size
from omniconv.functional import deform_conv2d

pytestmark = pytest.mark.skipif(not backends.numba_available(), reason="numba not installed")

F64 = torch.float64
#: (rtol, atol as a fraction of the largest finite reference value) per dtype, for the
#: output and every gradient, both paths against the float64 reference (docs/numerics.md)
TOLERANCES = {
    torch.float64: (1e-9, 1e-9),
    torch.float32: (2e-5, 2e-5),
    torch.float16: (2e-3, 2e-3),
    torch.bfloat16: (1.6e-2, 1.6e-2),
}
EXAMPLES = max(1000, settings.default.max_examples)
LAYOUTS = ("contiguous", "channels_last", "transposed", "expanded", "sliced")
_ran = {"examples": 0, "non_finite": 0}


def _layout(t: torch.Tensor, how: str) -> tuple[torch.Tensor, object]:
    """``(stored, view)``: the tensor as stored (the leaf), and how to see ``t`` in it."""
    if how == "channels_last" and t.dim() == 4:
        return t.clone(), "cl"
    if how == "transposed" and t.dim() >= 2:
        return t.transpose(-1, -2).contiguous(), "t"
    if how == "sliced":
        big = torch.zeros(*t.shape[:-1], 2 * t.shape[-1], dtype=t.dtype)
        big[..., ::2] = t
        return big, "s"
    return t.clone(), "c"


def _view(leaf: torch.Tensor, how: object) -> torch.Tensor:
    if how == "cl":
        return leaf.contiguous(memory_format=torch.channels_last)
    if how == "t":
        return leaf.transpose(-1, -2)
    if how == "s":
        return leaf[..., ::2]
    if isinstance(how, tuple):  # expanded along dim 0
        return leaf.expand(*how)
    return leaf


@st.composite
def cases(draw):
    groups = draw(st.sampled_from([1, 1, 2]))
    dg = draw(st.sampled_from([1, 1, 2]))
    c = math.lcm(groups, dg) * draw(st.integers(1, 3))
    c_out = groups * draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    h = draw(st.integers(max(1, (kh - 1) * dilation[0] + 1 - 2 * padding[0]), 7))
    w = draw(st.integers(max(1, (kw - 1) * dilation[1] + 1 - 2 * padding[1]), 7))
    return {
        "n": draw(st.integers(1, 2)),
        "c": c,
        "c_out": c_out,
        "h": h,
        "w": w,
        "kernel": (kh, kw),
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "groups": groups,
        "dg": dg,
        "dtype": draw(
            st.sampled_from([F64, torch.float32, torch.float32, torch.float16, torch.bfloat16])
        ),
        "use_mask": draw(st.booleans()),
        "offsets": draw(st.sampled_from(["grid", "generic", "integer", "border", "mixed"])),
        "special": draw(
            st.sampled_from(
                [
                    "none",
                    "none",
                    "nan_offset",
                    "inf_offset",
                    "nan_mask",
                    "nan_pixel",
                    "inf_pixel",
                    "all",
                ]
            )
        ),
        "layouts": [draw(st.sampled_from(LAYOUTS)) for _ in range(5)],
        "fused": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**31 - 1)),
    }


def _offsets(cs, ho, wo, g):
    """Offsets of the case's kind, as float64 values exact in every dtype."""
    n, dg, (kh, kw) = cs["n"], cs["dg"], cs["kernel"]
    k = kh * kw
    shape = (n, dg, k, 2, ho, wo)
    kind = cs["offsets"]
    grid = torch.randint(-192, 193, shape, generator=g).double() / 64
    generic = (
        torch.randint(-3, 3, shape, generator=g)
        + 0.05
        + 0.9 * torch.rand(shape, generator=g, dtype=F64)
    )
    integer = torch.randint(-3, 4, shape, generator=g).double()
    # border: the sample lands on -1, -0.5, 0, size - 1, size - 0.5 or size exactly
    ys = torch.arange(ho) * cs["stride"][0] - cs["padding"][0]
    xs = torch.arange(wo) * cs["stride"][1] - cs["padding"][1]
    ti = (torch.arange(kh) * cs["dilation"][0]).repeat_interleave(kw)
    tj = (torch.arange(kw) * cs["dilation"][1]).repeat(kh)
    base_h = (ti[:, None] + ys[None, :])[:, :, None].expand(k, ho, wo)
    base_w = (tj[:, None] + xs[None, :])[:, None, :].expand(k, ho, wo)
    targets = lambda size: torch.tensor([-1.0, -0.5, 0.0, size - 1, size - 0.5, size])  # noqa: E731
    pick = lambda size: targets(size)[torch.randint(0, 6, (n, dg, k, ho, wo), generator=g)]  # noqa: E731
    border = torch.stack((pick(cs["h"]) - base_h, pick(cs["w"]) - base_w), dim=3)
    if kind == "mixed":
        which = torch.randint(0, 4, shape, generator=g)
        off = torch.where(
            which == 0,
            grid,
            torch.where(which == 1, integer, torch.where(which == 2, border, generic)),
        )
    else:
        off = {"grid": grid, "generic": generic, "integer": integer, "border": border}[kind]
    if cs["special"] in ("inf_offset", "all"):
        big = torch.tensor([1e4, -1e4, math.inf, -math.inf], dtype=F64)
        hit = torch.rand(shape, generator=g) < 0.15
        off = torch.where(hit, big[torch.randint(0, 4, shape, generator=g)], off)
    if cs["special"] in ("nan_offset", "all"):
        off = torch.where(torch.rand(shape, generator=g) < 0.1, math.nan, off)
    return off.reshape(n, 2 * dg * k, ho, wo)


def _inputs(cs):
    g = torch.Generator().manual_seed(cs["seed"])
    n, c, c_out, (kh, kw) = cs["n"], cs["c"], cs["c_out"], cs["kernel"]
    ph, pw = cs["padding"]
    ho, wo = conv_output_size(
        (cs["h"], cs["w"]), cs["kernel"], cs["stride"], (ph, ph, pw, pw), cs["dilation"]
    )
    x = torch.randn(n, c, cs["h"], cs["w"], generator=g, dtype=F64)
    if cs["special"] in ("nan_pixel", "inf_pixel", "all"):
        vals = {"nan_pixel": [math.nan], "inf_pixel": [math.inf, -math.inf]}.get(
            cs["special"], [math.nan, math.inf, -math.inf]
        )
        hit = torch.rand(x.shape, generator=g) < 0.08
        x = torch.where(
            hit, torch.tensor(vals, dtype=F64)[torch.randint(0, len(vals), x.shape, generator=g)], x
        )
    off = _offsets(cs, ho, wo, g)
    weight = torch.randn(c_out, c // cs["groups"], kh, kw, generator=g, dtype=F64) * 0.3
    bias = torch.randn(c_out, generator=g, dtype=F64)
    mask = torch.rand(n, cs["dg"] * kh * kw, ho, wo, generator=g, dtype=F64)
    mask = torch.where(torch.rand(mask.shape, generator=g) < 0.1, torch.round(mask), mask)
    if cs["special"] in ("nan_mask", "all"):
        mask = torch.where(torch.rand(mask.shape, generator=g) < 0.1, math.nan, mask)
    grad_out = torch.randn(n, c_out, ho, wo, generator=g, dtype=F64)
    logical = [x, off, weight, bias, mask]
    stored = []
    for i, (t, how) in enumerate(zip(logical, cs["layouts"], strict=True)):
        if how == "expanded" and t.shape[0] > 1:
            leaf = t[:1].clone()
            stored.append((leaf, tuple(t.shape)))
        else:
            stored.append(_layout(t, how))
        del i
    # every implementation sees the values rounded to the case's dtype
    stored = [(leaf.to(cs["dtype"]).to(F64), how) for leaf, how in stored]
    return stored, grad_out.to(cs["dtype"]).to(F64)


def _run(cs, stored, grad_out, dtype, backend):
    leaves = [leaf.to(dtype).requires_grad_() for leaf, _ in stored]
    x, off, weight, bias, mask = (
        _view(leaf, how) for leaf, (_, how) in zip(leaves, stored, strict=True)
    )
    args = (cs["stride"], cs["padding"], cs["dilation"])
    if backend == "reference":
        out = ref_deform_conv2d(x, off, weight, bias, *args, mask if cs["use_mask"] else None)
    else:
        with backends.deform_backend(backend), backends.fused_gemm(cs["fused"]):
            out = deform_conv2d(x, off, weight, bias, *args, mask if cs["use_mask"] else None)
    assert out.dtype == dtype
    # the gradients of the op's own arguments (the views), not of the stored tensors: an
    # expanded leaf's gradient would add the op's gradients up again in the low dtype
    views = [x, off, weight, bias, mask] if cs["use_mask"] else [x, off, weight, bias]
    grads = torch.autograd.grad(out, views, grad_out.to(dtype))
    for g_, v in zip(grads, views, strict=True):
        assert g_.dtype == dtype and g_.shape == v.shape
    return [out.detach().double()] + [g_.double() for g_ in grads]


def _agree(name, got, ref, dtype, what):
    rtol, atol = TOLERANCES[dtype]
    assert torch.equal(torch.isnan(got), torch.isnan(ref)), f"{what} {name}: NaN in other places"
    assert torch.equal(torch.isinf(got), torch.isinf(ref)), f"{what} {name}: inf in other places"
    inf = torch.isinf(ref)
    assert torch.equal(got[inf], ref[inf]), f"{what} {name}: inf of another sign"
    fin = torch.isfinite(ref)
    if fin.any():
        scale = ref[fin].abs().max().item()
        err = (got[fin] - ref[fin]).abs()
        bound = atol * scale + rtol * ref[fin].abs()
        assert bool((err <= bound).all()), (
            f"{what} {name}: max error {err.max().item():.3g} (scale {scale:.3g}, {dtype})"
        )


NAMES = ("output", "grad_input", "grad_offset", "grad_weight", "grad_bias", "grad_mask")


@settings(max_examples=EXAMPLES)
@given(cs=cases())
def test_fast_pure_and_reference_agree(cs):
    stored, grad_out = _inputs(cs)
    ref = _run(cs, stored, grad_out, F64, "reference")
    fast = _run(cs, stored, grad_out, cs["dtype"], "auto")
    pure = _run(cs, stored, grad_out, cs["dtype"], "torch")
    for name, f, p, r in zip(NAMES, fast, pure, ref, strict=False):
        _agree(name, f, r, cs["dtype"], "fast path vs reference:")
        _agree(name, p, r, cs["dtype"], "pure path vs reference:")
    _ran["examples"] += 1
    _ran["non_finite"] += int(any(not bool(torch.isfinite(r).all()) for r in ref))


def test_example_count():
    """Runs after the property test (file order): it ran the profile's example count."""
    print(f"\nproperty examples: {_ran['examples']} ({_ran['non_finite']} with NaN / inf)")
    if _ran["examples"] == 0:
        pytest.skip("the property test did not run in this session")
    assert _ran["examples"] >= EXAMPLES
