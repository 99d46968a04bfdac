"""omniconv.functional.conv_transpose2d against the float64 scatter reference."""

from __future__ import annotations

import pytest
import torch
from _helpers import F64, TOL32, TOL64, channels_last, compare, leaves, noncontig, rand
from reference import ref_conv_transpose2d

from omniconv._shapes import conv_transpose_output_size, transpose_same_padding
from omniconv.functional import conv_transpose2d
from omniconv.nn import ConvTranspose2d, LazyConvTranspose2d


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


# ---------------------------------------------------------------------------------------
# four-sided padding, 'same' / 'valid', layout='NHWC' (functional and module)

# (N, C, H, W, O, kernel, stride, (top, bottom, left, right), output_padding, dilation, groups)
PAD4_CASES = [
    (2, 6, 4, 5, 4, (3, 2), (2, 1), (1, 0, 0, 1), (1, 0), (2, 1), 2),
    (1, 4, 3, 4, 6, (3, 3), 2, (2, 1, 1, 2), 1, 1, 2),
    (2, 3, 4, 3, 2, (2, 3), (3, 2), (0, 2, 3, 1), (2, 1), (1, 2), 1),
    (1, 2, 5, 5, 4, (4, 2), (1, 3), (3, 0, 0, 0), (0, 2), (1, 1), 1),  # op beyond a 0 pad
    (2, 3, 5, 5, 6, (5, 5), 2, (2, 2, 2, 2), 0, 1, 1),  # 4-tuple that is symmetric
]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("case", PAD4_CASES, ids=[f"pad4_{i}" for i in range(len(PAD4_CASES))])
def test_four_sided_padding_vs_reference(case, dtype):
    n, c, h, w, o, kernel, stride, pad4, out_pad, dilation, groups = case
    x, wt, b = _make(n, c, h, w, o, kernel, groups, seed=20)
    out, _ = compare(
        lambda x, wt, b: conv_transpose2d(x, wt, b, stride, pad4, out_pad, groups, dilation),
        lambda x, wt, b: ref_conv_transpose2d(x, wt, b, stride, pad4, out_pad, groups, dilation),
        [x, wt, b],
        impl_dtype=dtype,
    )
    size = conv_transpose_output_size(
        (h, w), kernel, _pair(stride), pad4, _pair(dilation), _pair(out_pad)
    )
    assert out.shape == (n, o, *size)


def test_four_sided_padding_crops_the_unpadded_result():
    """(top, bottom, left, right) removes that many rows/columns from each side of the
    unpadded result: an independent statement of the rule (torch's own op, padding 0)."""
    x, wt, b = _make(2, 4, 5, 6, 3, (3, 3), 1, seed=21)
    full = torch.nn.functional.conv_transpose2d(x, wt, b, 2)
    out = conv_transpose2d(x, wt, b, 2, (1, 0, 2, 1))
    torch.testing.assert_close(out, full[..., 1:, 2:-1], **TOL64)


def test_four_sided_padding_with_output_size():
    kernel, stride, pad4, dilation = (3, 2), (3, 2), (2, 0, 0, 1), (1, 2)
    x, wt, b = _make(2, 4, 3, 4, 4, kernel, 2, seed=22)
    infer = conv_transpose_output_size((3, 4), kernel, stride, pad4, dilation)
    for extra in [(0, 0), (2, 1), (1, 0)]:
        size = (infer[0] + extra[0], infer[1] + extra[1])
        out, _ = compare(
            lambda x, wt, b, size=size: conv_transpose2d(
                x, wt, b, stride, pad4, groups=2, dilation=dilation, output_size=size
            ),
            lambda x, wt, b, extra=extra: ref_conv_transpose2d(
                x, wt, b, stride, pad4, extra, 2, dilation
            ),
            [x, wt, b],
        )
        assert out.shape[-2:] == size
    with pytest.raises(ValueError, match="`output_size` must be within"):
        conv_transpose2d(x, wt, b, stride, pad4, groups=2, dilation=dilation,
                         output_size=(infer[0] + 3, infer[1]))  # fmt: skip


def _tf_conv_same_pads(size, k, s, d):
    """TensorFlow's conv2d 'SAME' padding of one dimension of size ``size`` (written out
    here, independently of omniconv._shapes): output ceil(size / s), the odd pixel last."""
    out = -(-size // s)
    total = max((out - 1) * s + d * (k - 1) + 1 - size, 0)
    return total // 2, total - total // 2


SAME_CASES = [
    # (H, W, kernel, stride, dilation, groups): k_eff > s, == s, < s (output padding)
    (3, 4, (3, 3), (2, 2), (1, 1), 1),
    (4, 3, (4, 2), (2, 2), (1, 1), 2),
    (3, 3, (2, 3), (3, 2), (2, 1), 1),
    (2, 3, (1, 2), (3, 3), (1, 1), 1),  # k_eff < s in both dimensions
    (5, 4, (3, 3), (1, 1), (2, 1), 2),
]


@pytest.mark.parametrize("case", SAME_CASES, ids=[f"same_{i}" for i in range(len(SAME_CASES))])
def test_same_is_the_adjoint_of_conv2d_same_and_outputs_h_times_s(case):
    """``padding='same'`` (TensorFlow's rule for a transposed conv) gives ``H * s`` and is
    the adjoint of conv2d 'SAME' on an ``H * s`` input: its result is the gradient of
    ref_conv2d with TensorFlow's padding (plus the bias)."""
    from reference import ref_conv2d

    h, w, kernel, stride, dilation, groups = case
    x, wt, b = _make(2, 4, h, w, 6, kernel, groups, seed=23)
    out = conv_transpose2d(x, wt, b, stride, "same", groups=groups, dilation=dilation)
    big = (h * stride[0], w * stride[1])
    assert out.shape == (2, 6, *big)
    pads = _tf_conv_same_pads(big[0], kernel[0], stride[0], dilation[0]) + _tf_conv_same_pads(
        big[1], kernel[1], stride[1], dilation[1]
    )
    z = torch.zeros(2, 6, *big, dtype=F64, requires_grad=True)
    y = ref_conv2d(z, wt, None, stride, pads, dilation, groups)
    assert y.shape[-2:] == (h, w)
    (adjoint,) = torch.autograd.grad(y, z, x)
    torch.testing.assert_close(out, adjoint + b[None, :, None, None], **TOL64)
    # the module resolves it once and computes the same
    m = ConvTranspose2d(4, 6, kernel, stride, "same", groups=groups, dilation=dilation, dtype=F64)
    with torch.no_grad():
        m.weight.copy_(wt)
        m.bias.copy_(b)
    assert m.padding == "same" and len(m._resolved_padding) == 4
    torch.testing.assert_close(m(x), out, rtol=0, atol=0)


def test_same_gradients_vs_reference():
    kernel, stride, dilation = (3, 2), (2, 3), (1, 2)
    pads, out_pad = transpose_same_padding(kernel, stride, dilation)
    # k_eff (3, 3) vs stride (2, 3): total (1, 0), output padding (0, 0)
    assert (pads, out_pad) == ((0, 1, 0, 0), (0, 0))
    x, wt, b = _make(2, 4, 3, 4, 4, kernel, 2, seed=24)
    out, _ = compare(
        lambda x, wt, b: conv_transpose2d(x, wt, b, stride, "same", groups=2, dilation=dilation),
        lambda x, wt, b: ref_conv_transpose2d(x, wt, b, stride, pads, out_pad, 2, dilation),
        [x, wt, b],
    )
    assert out.shape[-2:] == (6, 12)
    assert transpose_same_padding((1, 2), (3, 3), (1, 1)) == ((0, 0, 0, 0), (2, 1))


def test_valid_is_no_padding():
    x, wt, b = _make(1, 4, 3, 5, 2, (3, 2), 1, seed=25)
    torch.testing.assert_close(
        conv_transpose2d(x, wt, b, 2, "VALID"), conv_transpose2d(x, wt, b, 2, 0), rtol=0, atol=0
    )


def _nhwc(t):
    return t.permute(0, 2, 3, 1)


@pytest.mark.parametrize("padding", [(1, 0, 0, 2), 1, "same"])
def test_nhwc_vs_reference(padding):
    kernel, stride, out_pad, dilation, groups = (3, 2), (2, 1), (0, 0), (1, 2), 2
    x, wt, b = _make(2, 4, 4, 5, 6, kernel, groups, seed=26)
    if padding == "same":
        pads, out_pad = transpose_same_padding(kernel, stride, dilation)
    else:
        pads = padding
    out, _ = compare(
        lambda x, wt, b: conv_transpose2d(
            _nhwc(x),
            _nhwc(wt),
            b,
            stride,
            padding,
            groups=groups,
            dilation=dilation,
            layout="NHWC",
        ),
        lambda x, wt, b: _nhwc(
            ref_conv_transpose2d(x, wt, b, stride, pads, out_pad, groups, dilation)
        ),
        [x, wt, b],
    )
    assert out.shape[0] == 2 and out.shape[-1] == 6


def test_nhwc_module_keeps_the_torch_weight_layout():
    torch.manual_seed(0)
    m = ConvTranspose2d(4, 6, (3, 2), stride=2, padding=(1, 0, 0, 1), groups=2, dtype=F64,
                        layout="NHWC")  # fmt: skip
    assert m.weight.shape == (4, 3, 3, 2) and m.layout == "NHWC"
    x = rand(2, 4, 4, 5, seed=27)
    ref = ref_conv_transpose2d(x, m.weight, m.bias, 2, (1, 0, 0, 1), 0, 2, 1)
    torch.testing.assert_close(m(_nhwc(x)), _nhwc(ref), **TOL64)
    assert "layout='NHWC'" in m.extra_repr() and "padding=(1, 0, 0, 1)" in m.extra_repr()
    lazy = LazyConvTranspose2d(6, (3, 2), stride=2, padding=(1, 0, 0, 1), groups=2, dtype=F64,
                               layout="NHWC")  # fmt: skip
    lazy(_nhwc(x))
    assert type(lazy) is ConvTranspose2d and lazy.in_channels == 4


@pytest.mark.parametrize(
    ("padding", "torch_padding", "resolved", "out_pad"),
    [
        (1, (1, 1), (1, 1, 1, 1), (1, 1)),
        ((1, 2), (1, 2), (1, 1, 2, 2), (1, 1)),
        ((2, 2, 0, 0), (2, 0), (2, 2, 0, 0), (1, 1)),
        ((0, 1, 2, 3), (0, 1, 2, 3), (0, 1, 2, 3), (1, 1)),
        ("valid", (0, 0), (0, 0, 0, 0), (1, 1)),
        ("SAME", "same", (1, 1, 0, 0), (0, 0)),  # kernel (4, 2), stride 2: total 2 and 0
    ],
)
def test_module_padding_is_resolved_at_construction(
    padding, torch_padding, resolved, out_pad, monkeypatch
):
    op = 0 if padding == "SAME" else 1
    m = ConvTranspose2d(2, 3, (4, 2), stride=2, padding=padding, output_padding=op, dtype=F64)
    assert m.padding == torch_padding
    assert m._resolved_padding == resolved and m._resolved_output_padding == out_pad
    x = rand(1, 2, 4, 5, seed=28)
    expected = ref_conv_transpose2d(x, m.weight, m.bias, 2, resolved, out_pad, 1, 1)
    # forward uses the stored padding: no 'same' arithmetic, no argument parsing per call
    import omniconv._shapes
    import omniconv.functional.conv_transpose as fconvt

    def refuse(*args, **kwargs):
        raise AssertionError("called at forward")

    monkeypatch.setattr(omniconv._shapes, "transpose_same_padding", refuse)
    for name in ("to_pair", "to_padding", "check_positive_int", "check_choice",
                 "construction_transpose_padding"):  # fmt: skip
        monkeypatch.setattr(fconvt, name, refuse)
    out = m(x)
    torch.testing.assert_close(out, expected, **TOL64)
    if padding == "SAME":
        assert out.shape[-2:] == (8, 10)  # H * stride


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_gradcheck_four_sided_and_layouts(layout):
    x, wt, b = leaves(*_make(1, 2, 3, 3, 2, (3, 2), 1, seed=29))
    if layout == "NHWC":
        x, wt = (
            x.detach().permute(0, 2, 3, 1).requires_grad_(True),
            wt.detach().permute(0, 2, 3, 1).requires_grad_(True),
        )
    assert torch.autograd.gradcheck(
        lambda x, wt, b: conv_transpose2d(
            x, wt, b, (2, 1), (1, 0, 0, 2), (1, 0), 1, (1, 2), layout=layout
        ),
        (x, wt, b),
        eps=1e-6,
        atol=1e-7,
        rtol=1e-5,
    )
    assert torch.autograd.gradcheck(
        lambda x, wt, b: conv_transpose2d(x, wt, b, 3, "same", layout=layout),
        (x, wt, b),
        eps=1e-6,
        atol=1e-7,
        rtol=1e-5,
    )


@pytest.mark.parametrize("batch", [0, 33])
def test_batch_edges_with_four_sided_padding_and_nhwc(batch):
    kernel, stride, pad4 = (3, 2), (2, 1), (0, 1, 1, 0)
    x, wt, b = _make(batch, 4, 3, 4, 4, kernel, 2, seed=30)
    out, grads = compare(
        lambda x, wt, b: conv_transpose2d(
            _nhwc(x), _nhwc(wt), b, stride, pad4, groups=2, layout="NHWC"
        ),
        lambda x, wt, b: _nhwc(ref_conv_transpose2d(x, wt, b, stride, pad4, 0, 2, 1)),
        [x, wt, b],
    )
    size = conv_transpose_output_size((3, 4), kernel, stride, pad4, (1, 1))
    assert out.shape == (batch, *size, 4)
    if batch == 0:
        assert torch.equal(grads[1], torch.zeros_like(wt))


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("fmt", ["channels_last", "transposed", "strided", "sliced", "expanded"])
def test_memory_layouts_with_four_sided_padding(fmt, layout):
    from _helpers import distinct_layout, relayout

    kernel, stride, pad4, out_pad = (3, 2), (2, 1), (1, 0, 0, 1), (1, 0)
    dilation, groups = (2, 1), 2
    x, wt, b = _make(3, 6, 4, 5, 4, kernel, groups, seed=31)
    assert distinct_layout(x, fmt) and distinct_layout(wt, fmt)
    view = (lambda t: _nhwc(relayout(t, fmt))) if layout == "NHWC" else (lambda t: relayout(t, fmt))
    out, _ = compare(
        lambda x, wt, b: conv_transpose2d(
            view(x), view(wt), b, stride, pad4, out_pad, groups, dilation, layout=layout
        ),
        lambda x, wt, b: (_nhwc if layout == "NHWC" else (lambda t: t))(
            ref_conv_transpose2d(
                relayout(x, fmt), relayout(wt, fmt), b, stride, pad4, out_pad, groups, dilation
            )
        ),
        [x, wt, b],
    )
    assert out.shape[0] == 3
