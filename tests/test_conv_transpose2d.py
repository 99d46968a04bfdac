"""omniconv.functional.conv_transpose2d against the float64 scatter reference."""

from __future__ import annotations

import pytest
import torch
from _helpers import F64, TOL32, TOL64, channels_last, compare, leaves, noncontig, rand
from reference import ref_conv_transpose2d

from omniconv._shapes import conv_transpose_output_size
from omniconv.functional import conv_transpose2d


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _make(n, c, h, w, o, kernel, groups, seed=0, bias=True):
    x = rand(n, c, h, w, seed=seed)
    wt = rand(c, o // groups, *kernel, seed=seed + 1)  # (C_in, C_out/groups, kh, kw)
    b = rand(o, seed=seed + 2) if bias else None
    return x, wt, b


# (N, C, H, W, O, kernel, stride, padding, output_padding, dilation, groups)
CASES = [
    # the asymmetric parametrisation
    (2, 6, 4, 5, 4, (3, 2), (2, 1), (1, 0), (1, 0), (2, 1), 2),
    (2, 6, 4, 5, 4, (3, 2), (2, 1), (1, 0), 0, (2, 1), 2),
    (1, 4, 3, 4, 6, (3, 3), 2, 1, 1, 1, 2),
    (2, 3, 4, 3, 2, (2, 3), (3, 2), (0, 1), (2, 1), (1, 2), 1),
    (1, 4, 3, 3, 4, (1, 1), 1, 0, 0, 1, 4),  # depthwise 1x1
    (1, 2, 3, 3, 4, (4, 2), (1, 3), (2, 0), (0, 2), (1, 1), 1),
]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_forward_and_grads_vs_reference(case, dtype):
    n, c, h, w, o, kernel, stride, padding, out_pad, dilation, groups = case
    x, wt, b = _make(n, c, h, w, o, kernel, groups)
    out, _ = compare(
        lambda x, wt, b: conv_transpose2d(x, wt, b, stride, padding, out_pad, groups, dilation),
        lambda x, wt, b: ref_conv_transpose2d(x, wt, b, stride, padding, out_pad, groups, dilation),
        [x, wt, b],
        impl_dtype=dtype,
    )
    size = conv_transpose_output_size(
        (h, w), kernel, _pair(stride), _pair(padding), _pair(dilation), _pair(out_pad)
    )
    assert out.shape == (n, o, *size)


@pytest.mark.parametrize(
    "end,as_int", [("low", False), ("high", False), ("mixed", False), ("low", True), ("high", True)]
)
def test_output_size_range_ends(end, as_int):
    kernel, stride, padding, dilation, groups = (3, 3), (3, 2), (1, 1), (1, 2), 2
    if as_int:
        stride, dilation = (2, 2), (1, 1)
    n, c, h, w, o = 2, 4, 3, 3, 4
    infer = conv_transpose_output_size((h, w), kernel, stride, padding, dilation)
    top = (infer[0] + stride[0] - 1, infer[1] + stride[1] - 1)
    size = {"low": infer, "high": top, "mixed": (infer[0], top[1])}[end]
    if as_int:
        assert size[0] == size[1]
        size_arg = size[0]
    else:
        size_arg = size
    out_pad = (size[0] - infer[0], size[1] - infer[1])
    x, wt, b = _make(n, c, h, w, o, kernel, groups, seed=3)
    out, _ = compare(
        lambda x, wt, b: conv_transpose2d(
            x, wt, b, stride, padding, groups=groups, dilation=dilation, output_size=size_arg
        ),
        lambda x, wt, b: ref_conv_transpose2d(x, wt, b, stride, padding, out_pad, groups, dilation),
        [x, wt, b],
    )
    assert out.shape == (n, o, *size)


@pytest.mark.parametrize("delta", [(-1, 0), (0, -1), ("s", 0), (0, "s")])
def test_output_size_out_of_range_raises(delta):
    kernel, stride, padding, dilation = (3, 2), (3, 2), (1, 0), (1, 2)
    x, wt, b = _make(1, 2, 3, 4, 2, kernel, 1, seed=4)
    infer = conv_transpose_output_size((3, 4), kernel, stride, padding, dilation)
    size = [infer[i] + (stride[i] if d == "s" else d) for i, d in enumerate(delta)]
    with pytest.raises(ValueError):
        conv_transpose2d(x, wt, b, stride, padding, dilation=dilation, output_size=size)
    # the same call with an in-range size works (the error is about the size)
    ok = conv_transpose2d(x, wt, b, stride, padding, dilation=dilation, output_size=infer)
    assert ok.shape[-2:] == infer


def test_output_padding_changes_only_the_far_edge():
    """output_padding adds rows/cols at the bottom/right; the rest is unchanged."""
    x, wt, b = _make(1, 2, 3, 3, 2, (3, 3), 1, seed=5)
    base = conv_transpose2d(x, wt, b, 2, 1)
    more = conv_transpose2d(x, wt, b, 2, 1, output_padding=(1, 1))
    assert more.shape[-2:] == (base.shape[-2] + 1, base.shape[-1] + 1)
    torch.testing.assert_close(more[..., :-1, :-1], base, **TOL64)
    torch.testing.assert_close(more, ref_conv_transpose2d(x, wt, b, 2, 1, 1, 1, 1), **TOL64)


@pytest.mark.parametrize(
    "kernel,stride,padding,out_pad,dilation,groups",
    [((3, 2), (2, 1), (1, 0), (1, 0), (2, 1), 2), ((2, 3), (1, 3), (0, 1), (0, 2), 1, 1)],
)
def test_gradcheck(kernel, stride, padding, out_pad, dilation, groups):
    x, wt, b = leaves(*_make(1, 2, 3, 3, 2, kernel, groups, seed=6))
    assert torch.autograd.gradcheck(
        lambda x, wt, b: conv_transpose2d(x, wt, b, stride, padding, out_pad, groups, dilation),
        (x, wt, b),
        eps=1e-6,
        atol=1e-7,
        rtol=1e-5,
    )


def test_gradcheck_output_size():
    x, wt, b = leaves(*_make(1, 2, 3, 2, 2, (2, 2), 1, seed=7))
    assert torch.autograd.gradcheck(
        lambda x, wt, b: conv_transpose2d(x, wt, b, (2, 3), 0, output_size=(7, 7)),
        (x, wt, b),
        eps=1e-6,
        atol=1e-7,
        rtol=1e-5,
    )


def test_batch_zero():
    kernel, stride, padding, out_pad, dilation, groups = (3, 2), (2, 1), (1, 0), (1, 0), (2, 1), 2
    x, wt, b = leaves(*_make(0, 6, 4, 5, 4, kernel, groups))
    out = conv_transpose2d(x, wt, b, stride, padding, out_pad, groups, dilation)
    size = conv_transpose_output_size((4, 5), kernel, stride, padding, dilation, out_pad)
    assert out.shape == (0, 4, *size) and out.numel() == 0
    gx, gw, gb = torch.autograd.grad(out.sum(), (x, wt, b))
    assert gx.shape == x.shape
    assert torch.equal(gw, torch.zeros_like(wt)) and torch.equal(gb, torch.zeros_like(b))


def test_batch_33():
    x, wt, b = _make(33, 2, 2, 3, 2, (2, 2), 1, seed=8)
    compare(
        lambda x, wt, b: conv_transpose2d(x, wt, b, (2, 1), (0, 1), (1, 0)),
        lambda x, wt, b: ref_conv_transpose2d(x, wt, b, (2, 1), (0, 1), (1, 0), 1, 1),
        [x, wt, b],
    )


@pytest.mark.parametrize("fmt", ["noncontig", "channels_last"])
def test_memory_formats(fmt):
    kernel, stride, padding, out_pad, dilation, groups = (3, 2), (2, 1), (1, 0), (1, 0), (2, 1), 2
    x, wt, b = _make(2, 6, 4, 5, 4, kernel, groups, seed=9)
    conv = noncontig if fmt == "noncontig" else channels_last
    out, _ = compare(
        lambda x, wt, b: conv_transpose2d(
            conv(x), conv(wt), b, stride, padding, out_pad, groups, dilation
        ),
        lambda x, wt, b: ref_conv_transpose2d(x, wt, b, stride, padding, out_pad, groups, dilation),
        [x, wt, b],
    )
    plain = conv_transpose2d(x, wt, b, stride, padding, out_pad, groups, dilation)
    torch.testing.assert_close(out.detach(), plain, **TOL64)


def test_float32_matches_float64():
    x, wt, b = _make(2, 6, 4, 5, 4, (3, 2), 2, seed=10)
    args = ((2, 1), (1, 0), (1, 0), 2, (2, 1))
    o64 = conv_transpose2d(x, wt, b, *args)
    o32 = conv_transpose2d(x.float(), wt.float(), b.float(), *args)
    assert o32.dtype == torch.float32 and o64.dtype == F64
    torch.testing.assert_close(o32.double(), o64, **TOL32)


def test_reference_self_check():
    """Guards the reference itself: ref_conv_transpose2d == torch's conv_transpose2d."""
    import torch.nn.functional as F

    x, wt, b = _make(2, 6, 4, 5, 4, (3, 2), 2, seed=11)
    expect = F.conv_transpose2d(x, wt, b, (3, 1), (1, 0), (2, 0), 2, (2, 1))
    got = ref_conv_transpose2d(x, wt, b, (3, 1), (1, 0), (2, 0), 2, (2, 1))
    torch.testing.assert_close(got, expect, **TOL64)
