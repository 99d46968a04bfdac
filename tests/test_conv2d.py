"""omniconv.functional.conv2d against the float64 loop reference (tests/reference.py)."""

from __future__ import annotations

import pytest
import torch
from _helpers import F64, TOL32, TOL64, channels_last, compare, leaves, noncontig, rand
from reference import ref_conv2d

from omniconv._shapes import conv_output_size, same_padding
from omniconv.functional import conv2d

PADDING_MODES = ["zeros", "reflect", "replicate", "circular"]


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _pad4(padding, in_size, kernel, stride, dilation):
    """The (top, bottom, left, right) padding the API promises for each padding form."""
    if padding == "same":
        return same_padding(in_size, kernel, stride, dilation)
    if padding == "valid":
        return (0, 0, 0, 0)
    if isinstance(padding, int):
        return (padding,) * 4
    if len(padding) == 2:
        return (padding[0], padding[0], padding[1], padding[1])
    return tuple(padding)


def _make(n, c, h, w, o, kernel, groups, seed=0, bias=True):
    x = rand(n, c, h, w, seed=seed)
    wt = rand(o, c // groups, *kernel, seed=seed + 1)
    b = rand(o, seed=seed + 2) if bias else None
    return x, wt, b


# (N, C, H, W, O, kernel, stride, padding, dilation, groups)
CASES = [
    # the asymmetric parametrisation
    (2, 6, 7, 6, 4, (3, 2), (2, 1), (1, 0), (2, 1), 2),
    (2, 4, 5, 6, 6, (3, 3), 1, 1, 1, 1),
    (1, 3, 6, 5, 2, (2, 3), (1, 2), (0, 2, 1, 0), 1, 1),  # 4-tuple, asymmetric
    (2, 4, 6, 7, 4, (3, 2), (2, 2), (2, 1, 0, 1), (1, 2), 2),
    (1, 4, 5, 5, 4, (1, 1), 1, 0, 1, 4),  # depthwise 1x1
    (2, 2, 8, 9, 3, (3, 4), 2, "same", 1, 1),  # odd totals on both axes
    (1, 2, 8, 7, 2, (3, 2), (2, 1), "same", (2, 1), 2),
    (1, 3, 5, 6, 2, (3, 3), (1, 1), "same", 1, 1),
    (2, 2, 7, 6, 3, (3, 2), (2, 1), "valid", (2, 1), 1),
]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_forward_and_grads_vs_reference(case, dtype):
    n, c, h, w, o, kernel, stride, padding, dilation, groups = case
    pad4 = _pad4(padding, (h, w), kernel, _pair(stride), _pair(dilation))
    x, wt, b = _make(n, c, h, w, o, kernel, groups)
    out, _ = compare(
        lambda x, wt, b: conv2d(x, wt, b, stride, padding, dilation, groups),
        lambda x, wt, b: ref_conv2d(x, wt, b, stride, pad4, dilation, groups),
        [x, wt, b],
        impl_dtype=dtype,
    )
    ho, wo = conv_output_size((h, w), kernel, _pair(stride), pad4, _pair(dilation))
    assert out.shape == (n, o, ho, wo)


@pytest.mark.parametrize("mode", PADDING_MODES)
@pytest.mark.parametrize(
    "padding,stride,dilation",
    [((1, 2), 1, 1), ((2, 0, 1, 2), (2, 1), (1, 2)), ("same", 2, 1), (1, (2, 1), (2, 1))],
    ids=["pair", "4tuple", "same", "int"],
)
def test_padding_modes_vs_reference(mode, padding, stride, dilation):
    n, c, h, w, o, kernel, groups = 2, 4, 5, 6, 4, (3, 2), 2
    pad4 = _pad4(padding, (h, w), kernel, _pair(stride), _pair(dilation))
    x, wt, b = _make(n, c, h, w, o, kernel, groups, seed=3)
    out, _ = compare(
        lambda x, wt, b: conv2d(x, wt, b, stride, padding, dilation, groups, padding_mode=mode),
        lambda x, wt, b: ref_conv2d(x, wt, b, stride, pad4, dilation, groups, mode),
        [x, wt, b],
    )
    ho, wo = conv_output_size((h, w), kernel, _pair(stride), pad4, _pair(dilation))
    assert out.shape == (n, o, ho, wo)
    if mode != "zeros":
        # the mode must matter: zero padding gives a different result here
        zeros = ref_conv2d(x, wt, b, stride, pad4, dilation, groups, "zeros")
        assert (zeros - out.detach()).abs().max() > 1e-3


@pytest.mark.parametrize(
    "h,w,kernel,stride,dilation",
    [
        (8, 9, (3, 4), (2, 2), (1, 1)),
        (7, 10, (2, 3), (2, 3), (1, 1)),
        (8, 5, (3, 2), (2, 1), (2, 1)),
    ],
)
def test_same_padding_puts_extra_bottom_right(h, w, kernel, stride, dilation):
    pad4 = same_padding((h, w), kernel, stride, dilation)
    top, bottom, left, right = pad4
    assert (top + bottom) % 2 == 1 or (left + right) % 2 == 1  # the case is discriminating
    assert bottom - top in (0, 1) and right - left in (0, 1)
    x, wt, b = _make(1, 2, h, w, 3, kernel, 1, seed=5)
    out = conv2d(x, wt, b, stride, "same", dilation)
    assert out.shape == (1, 3, -(-h // stride[0]), -(-w // stride[1]))
    expect = ref_conv2d(x, wt, b, stride, pad4, dilation, 1)
    torch.testing.assert_close(out, expect, **TOL64)
    # the mirrored padding (extra at top/left) gives a different answer
    swapped = ref_conv2d(x, wt, b, stride, (bottom, top, right, left), dilation, 1)
    assert swapped.shape != expect.shape or (swapped - expect).abs().max() > 1e-3


def test_valid_is_zero_padding():
    x, wt, b = _make(2, 3, 6, 7, 2, (3, 2), 1, seed=6)
    out = conv2d(x, wt, b, (2, 1), "valid", (1, 2))
    assert out.shape == (2, 2, *conv_output_size((6, 7), (3, 2), (2, 1), (0, 0, 0, 0), (1, 2)))
    torch.testing.assert_close(out, ref_conv2d(x, wt, b, (2, 1), (0, 0, 0, 0), (1, 2), 1), **TOL64)


# ----------------------------------------------------------------------------- NHWC


@pytest.mark.parametrize(
    "kernel,stride,padding,dilation,groups",
    [
        ((3, 2), (2, 1), (1, 0), (2, 1), 2),
        ((3, 3), 2, "same", 1, 1),
        ((2, 3), 1, (1, 0, 2, 1), 1, 3),
    ],
)
def test_nhwc_layout(kernel, stride, padding, dilation, groups):
    n, c, h, w, o = 2, 6, 7, 6, 6
    pad4 = _pad4(padding, (h, w), kernel, _pair(stride), _pair(dilation))
    x_nchw, w_oihw, b = _make(n, c, h, w, o, kernel, groups, seed=7)
    x_nhwc = x_nchw.permute(0, 2, 3, 1).contiguous()
    w_ohwi = w_oihw.permute(0, 2, 3, 1).contiguous()  # MXNet OHWI

    def impl(x, wt, b):
        return conv2d(x, wt, b, stride, padding, dilation, groups, layout="NHWC")

    def ref(x, wt, b):
        y = ref_conv2d(
            x.permute(0, 3, 1, 2), wt.permute(0, 3, 1, 2), b, stride, pad4, dilation, groups
        )
        return y.permute(0, 2, 3, 1)

    out, grads = compare(impl, ref, [x_nhwc, w_ohwi, b])
    ho, wo = conv_output_size((h, w), kernel, _pair(stride), pad4, _pair(dilation))
    assert out.shape == (n, ho, wo, o)
    assert grads[0].shape == x_nhwc.shape and grads[1].shape == w_ohwi.shape
    # and the NCHW call on the permuted tensors agrees
    nchw = conv2d(x_nchw, w_oihw, b, stride, padding, dilation, groups)
    torch.testing.assert_close(out.detach(), nchw.permute(0, 2, 3, 1), **TOL64)


# ----------------------------------------------------------------------------- gradcheck


@pytest.mark.parametrize(
    "kernel,stride,padding,dilation,groups,mode",
    [
        ((3, 2), (2, 1), (1, 0), (2, 1), 2, "zeros"),
        ((2, 3), (1, 2), (0, 1, 2, 1), 1, 1, "reflect"),
        ((3, 3), 2, "same", 1, 2, "circular"),
        ((2, 2), 1, 1, (1, 2), 1, "replicate"),
    ],
)
def test_gradcheck(kernel, stride, padding, dilation, groups, mode):
    x, wt, b = leaves(*_make(1, 2, 5, 4, 2, kernel, groups, seed=8))
    assert torch.autograd.gradcheck(
        lambda x, wt, b: conv2d(x, wt, b, stride, padding, dilation, groups, padding_mode=mode),
        (x, wt, b),
        eps=1e-6,
        atol=1e-7,
        rtol=1e-5,
    )


# ----------------------------------------------------------------------------- batch sizes


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_batch_zero(layout):
    kernel, stride, padding, dilation, groups = (3, 2), (2, 1), (1, 0), (2, 1), 2
    x, wt, b = _make(0, 6, 7, 6, 4, kernel, groups)
    ho, wo = conv_output_size((7, 6), kernel, stride, (1, 1, 0, 0), dilation)
    if layout == "NHWC":
        x, wt = x.permute(0, 2, 3, 1).contiguous(), wt.permute(0, 2, 3, 1).contiguous()
    x, wt, b = leaves(x, wt, b)
    out = conv2d(x, wt, b, stride, padding, dilation, groups, layout=layout)
    expect = (0, 4, ho, wo) if layout == "NCHW" else (0, ho, wo, 4)
    assert out.shape == expect and out.numel() == 0
    gx, gw, gb = torch.autograd.grad(out.sum(), (x, wt, b))
    assert gx.shape == x.shape
    assert torch.equal(gw, torch.zeros_like(wt)) and torch.equal(gb, torch.zeros_like(b))


def test_batch_33():
    x, wt, b = _make(33, 2, 3, 4, 3, (2, 2), 1, seed=9)
    compare(
        lambda x, wt, b: conv2d(x, wt, b, (1, 2), (1, 0, 0, 1), 1, 1, padding_mode="reflect"),
        lambda x, wt, b: ref_conv2d(x, wt, b, (1, 2), (1, 0, 0, 1), 1, 1, "reflect"),
        [x, wt, b],
    )


# ----------------------------------------------------------------------------- memory layouts


@pytest.mark.parametrize("mode", ["zeros", "reflect"])
@pytest.mark.parametrize("fmt", ["noncontig", "channels_last"])
def test_memory_formats(fmt, mode):
    kernel, stride, padding, dilation, groups = (3, 2), (2, 1), (1, 0), (2, 1), 2
    pad4 = (1, 1, 0, 0)
    x, wt, b = _make(2, 6, 7, 6, 4, kernel, groups, seed=10)
    conv = noncontig if fmt == "noncontig" else channels_last
    out, _ = compare(
        lambda x, wt, b: conv2d(
            conv(x), conv(wt), b, stride, padding, dilation, groups, padding_mode=mode
        ),
        lambda x, wt, b: ref_conv2d(x, wt, b, stride, pad4, dilation, groups, mode),
        [x, wt, b],
    )
    plain = conv2d(x, wt, b, stride, padding, dilation, groups, padding_mode=mode)
    torch.testing.assert_close(out.detach(), plain, **TOL64)


def test_nhwc_noncontiguous_input():
    x, wt, b = _make(2, 4, 5, 6, 4, (3, 3), 2, seed=11)
    x_nhwc = x.permute(0, 2, 3, 1)  # a non-contiguous view
    w_ohwi = wt.permute(0, 2, 3, 1)
    assert not x_nhwc.is_contiguous()
    out = conv2d(x_nhwc, w_ohwi, b, 1, 1, 1, 2, layout="NHWC")
    expect = ref_conv2d(x, wt, b, 1, (1, 1, 1, 1), 1, 2).permute(0, 2, 3, 1)
    torch.testing.assert_close(out, expect, **TOL64)


def test_float32_matches_float64():
    x, wt, b = _make(2, 6, 7, 6, 4, (3, 2), 2, seed=12)
    args = ((2, 1), "same", (2, 1), 2)
    o64 = conv2d(x, wt, b, *args, padding_mode="circular")
    o32 = conv2d(x.float(), wt.float(), b.float(), *args, padding_mode="circular")
    assert o32.dtype == torch.float32 and o64.dtype == F64
    torch.testing.assert_close(o32.double(), o64, **TOL32)


@pytest.mark.parametrize("mode", PADDING_MODES)
def test_reference_self_check(mode):
    """Guards the reference itself: ref_conv2d == F.pad + torch's conv2d."""
    import torch.nn.functional as F

    x, wt, b = _make(2, 6, 7, 6, 4, (3, 2), 2, seed=13)
    pad4 = (2, 1, 0, 1)
    xp = F.pad(x, (0, 1, 2, 1), mode="constant" if mode == "zeros" else mode)
    expect = F.conv2d(xp, wt, b, (2, 1), 0, (2, 1), 2)
    torch.testing.assert_close(ref_conv2d(x, wt, b, (2, 1), pad4, (2, 1), 2, mode), expect, **TOL64)


def test_nhwc_is_computed_on_views_without_copies():
    from torch.utils._python_dispatch import TorchDispatchMode

    class OpLog(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops.append(str(func.overloadpacket))
            return func(*args, **(kwargs or {}))

    x = torch.randn(2, 9, 8, 6)  # (N, H, W, C)
    w = torch.randn(4, 3, 2, 3)  # (O, kh, kw, I/groups), groups 2
    with OpLog() as log:
        out = conv2d(x, w, None, (2, 1), (1, 0), (2, 1), 2, layout="NHWC")
    copies = [op for op in log.ops if op.split(".")[-1] in ("clone", "copy_", "contiguous")]
    assert copies == [], log.ops
    assert out.shape == (2, 4, 7, 4) and out.is_contiguous()  # (N, H, W, O), row-major
