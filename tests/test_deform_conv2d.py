"""omniconv.functional.deform_conv2d (DCNv1/v2) against the float64 loop reference."""

from __future__ import annotations

import pytest
import torch
from _helpers import (
    ASYM,
    CASES,
    F64,
    H_B,
    TOL32,
    TOL64,
    W_B,
    border_offsets,
    channels_last,
    compare,
    deform_impl,
    deform_inputs,
    deform_ref,
    leaves,
    make_deform,
    noncontig,
    out_size,
    pair,
    rand,
)
from reference import ref_conv2d, ref_deform_conv2d, ref_deform_offset_grad_explicit

from omniconv.functional import deform_conv2d


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("use_mask", [True, False], ids=["v2", "v1"])
@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_forward_and_grads_vs_reference(case, use_mask, dtype):
    n, _, h, w, o, kernel, stride, padding, dilation, _, _ = case
    x, off, wt, b, mask = make_deform(*case)
    out, _ = compare(
        deform_impl(stride, padding, dilation, use_mask),
        deform_ref(stride, padding, dilation, use_mask),
        deform_inputs(use_mask, x, off, wt, b, mask),
        impl_dtype=dtype,
    )
    assert out.shape == (n, o, *out_size(h, w, kernel, stride, padding, dilation))


@pytest.mark.parametrize("use_mask", [True, False], ids=["v2", "v1"])
@pytest.mark.parametrize(
    "case",
    [(1, 6, 5, 4, 4, (3, 2), (2, 1), (1, 0), (2, 1), 2, 3), (2, 2, 4, 4, 2, (2, 2), 1, 1, 1, 1, 1)],
)
def test_gradcheck(case, use_mask):
    _, _, _, _, _, _, stride, padding, dilation, _, _ = case
    inputs = leaves(*deform_inputs(use_mask, *make_deform(*case, seed=21, scale=1.5)))
    assert torch.autograd.gradcheck(
        deform_impl(stride, padding, dilation, use_mask),
        tuple(inputs),
        eps=1e-6,
        atol=1e-6,
        rtol=1e-5,
    )


# ----------------------------------------------------------------------------- im2col_step


def test_im2col_step_does_not_change_the_result():
    case = (5, 6, 7, 6, 4, (3, 2), (2, 1), (1, 0), (2, 1), 2, 3)
    _, _, _, _, _, _, stride, padding, dilation, _, _ = case
    data = make_deform(*case, seed=31)
    results = {}
    for step in (1, 2, 5, 64):
        inputs = leaves(*data)
        out = deform_conv2d(*inputs[:4], stride, padding, dilation, inputs[4], im2col_step=step)
        g = rand(*out.shape, seed=77)
        grads = torch.autograd.grad(out, inputs, g)
        results[step] = (out.detach(), grads)
    out1, grads1 = results[1]
    expect = ref_deform_conv2d(*data[:4], stride, padding, dilation, data[4])
    torch.testing.assert_close(out1, expect, **TOL64)
    for step in (2, 5, 64):
        out, grads = results[step]
        assert torch.equal(out, out1), f"im2col_step={step}: max diff {(out - out1).abs().max()}"
        for name, g, g1 in zip(
            ["input", "offset", "weight", "bias", "mask"], grads, grads1, strict=True
        ):
            torch.testing.assert_close(
                g, g1, rtol=1e-12, atol=1e-12, msg=f"step {step}, grad {name}"
            )


# ----------------------------------------------------------------------------- borders


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("use_mask", [True, False], ids=["v2", "v1"])
def test_exact_border_positions(use_mask, dtype):
    n, c, o, kernel, stride, padding, dilation, groups, dg = 2, 4, 4, (3, 3), 1, 1, 1, 2, 2
    x, _, wt, b, mask = make_deform(
        n, c, H_B, W_B, o, kernel, stride, padding, dilation, groups, dg, seed=41
    )
    ho, wo = out_size(H_B, W_B, kernel, stride, padding, dilation)
    off = border_offsets(n, dg, kernel, ho, wo, stride, padding, dilation, seed=42)
    _, grads = compare(
        deform_impl(stride, padding, dilation, use_mask),
        deform_ref(stride, padding, dilation, use_mask),
        deform_inputs(use_mask, x, off, wt, b, mask),
        impl_dtype=dtype,
    )
    # independent check of the offset gradient from the torchvision / Paddle formula
    out = ref_deform_conv2d(x, off, wt, b, stride, padding, dilation, mask if use_mask else None)
    gout = rand(*out.shape, seed=1234)  # the upstream gradient compare() used
    explicit = ref_deform_offset_grad_explicit(
        x, off, wt, gout, stride, padding, dilation, mask if use_mask else None
    )
    tol = TOL64 if dtype == F64 else TOL32
    torch.testing.assert_close(grads[1].double(), explicit, **tol)


def test_spec_boundary_values():
    """1x1 kernel, identity weight: out = sample of x at (y + dy, x + dx)."""
    h, w = 3, 4
    x = rand(1, 1, h, w, seed=51)
    wt = torch.ones(1, 1, 1, 1, dtype=F64)
    cases = [  # (dy, row) -> expected value for output row 0, column 1
        (-1.0, 0.0),
        (-0.5, 0.5 * x[0, 0, 0, 1]),
        (-0.999, 0.001 * x[0, 0, 0, 1]),
        (1.0, x[0, 0, 1, 1]),
        (h - 1 + 0.5, 0.5 * x[0, 0, h - 1, 1]),
        (float(h), 0.0),
        (h - 0.001, 0.001 * x[0, 0, h - 1, 1]),
        (-7.0, 0.0),
    ]
    for dy, expect in cases:
        off = torch.zeros(1, 2, h, w, dtype=F64)
        off[0, 0, 0, 1] = dy
        out = deform_conv2d(x, off, wt)
        assert out[0, 0, 0, 1].item() == pytest.approx(float(expect), abs=1e-12), dy
    # dx (channel 1) moves along the width
    off = torch.zeros(1, 2, h, w, dtype=F64)
    off[:, 1] = 1.0
    out = deform_conv2d(x, off, wt)
    torch.testing.assert_close(out[..., :-1], x[..., 1:], **TOL64)
    assert torch.equal(out[..., -1], torch.zeros_like(out[..., -1]))


def test_spec_offset_gradient_at_integers():
    """One-sided (floor) offset gradients at integer positions, 0 at -1 and H."""
    h, w = 4, 3
    x = rand(1, 1, h, w, seed=52)[0, 0]
    wt = torch.ones(1, 1, 1, 1, dtype=F64)
    c = 1  # output column 1 samples column 1 (dx = 0): d/dw = x[r, c+1] - x[r, c]
    for pos, expect_dh, expect_dw in [
        (-1.0, 0.0, 0.0),
        (float(h), 0.0, 0.0),
        (0.0, x[1, c] - x[0, c], x[0, c + 1] - x[0, c]),
        (2.0, x[3, c] - x[2, c], x[2, c + 1] - x[2, c]),
        (float(h - 1), -x[h - 1, c], x[h - 1, c + 1] - x[h - 1, c]),
        (-0.5, x[0, c], 0.5 * (x[0, c + 1] - x[0, c])),
    ]:
        off = torch.zeros(1, 2, h, w, dtype=F64)
        off[0, 0, 0, c] = pos  # output row 0: base row 0
        off.requires_grad_(True)
        out = deform_conv2d(x[None, None], off, wt)
        (g,) = torch.autograd.grad(out[0, 0, 0, c], off)
        assert g[0, 0, 0, c].item() == pytest.approx(float(expect_dh), abs=1e-12), pos
        assert g[0, 1, 0, c].item() == pytest.approx(float(expect_dw), abs=1e-12), pos
        assert torch.count_nonzero(g[0, :, 0, c]) <= 2
        g[0, :, 0, c] = 0
        assert torch.equal(g, torch.zeros_like(g))  # no other pixel depends on that offset


# ----------------------------------------------------------------------------- special cases


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(
    "case", [ASYM, (1, 4, 5, 5, 4, (3, 3), 1, 1, 1, 2, 2)], ids=["asym", "sym"]
)
def test_zero_offsets_unit_mask_equal_conv2d(case, dtype):
    *_, stride, padding, dilation, groups, _ = case
    x, off, wt, b, mask = make_deform(*case, seed=61)
    zero_off = torch.zeros_like(off, dtype=dtype)
    ones = torch.ones_like(mask, dtype=dtype)
    ph, pw = pair(padding)

    def impl(x, wt, b):
        return deform_conv2d(x, zero_off, wt, b, stride, padding, dilation, ones)

    def ref(x, wt, b):
        return ref_conv2d(x, wt, b, stride, (ph, ph, pw, pw), dilation, groups)

    compare(impl, ref, [x, wt, b], impl_dtype=dtype)


@pytest.mark.parametrize("case", [ASYM, CASES[4]], ids=["asym", "straddle"])
def test_dcnv1_equals_unit_mask(case):
    _, _, _, _, _, _, stride, padding, dilation, _, _ = case
    x, off, wt, b, mask = make_deform(*case, seed=71)
    ones = torch.ones_like(mask)
    a_in = leaves(x, off, wt, b)
    b_in = leaves(x, off, wt, b)
    out_v1 = deform_conv2d(*a_in, stride, padding, dilation, None)
    out_v2 = deform_conv2d(*b_in, stride, padding, dilation, ones)
    torch.testing.assert_close(out_v1, out_v2, **TOL64)
    g = rand(*out_v1.shape, seed=72)
    for ga, gb in zip(
        torch.autograd.grad(out_v1, a_in, g), torch.autograd.grad(out_v2, b_in, g), strict=True
    ):
        torch.testing.assert_close(ga, gb, **TOL64)


@pytest.mark.parametrize("use_mask", [True, False], ids=["v2", "v1"])
def test_batch_zero(use_mask):
    case = (0, 6, 7, 6, 4, (3, 2), (2, 1), (1, 0), (2, 1), 2, 3)
    _, _, h, w, o, kernel, stride, padding, dilation, _, _ = case
    x, off, wt, b, mask = leaves(*make_deform(*case))
    out = deform_conv2d(x, off, wt, b, stride, padding, dilation, mask if use_mask else None)
    assert out.shape == (0, o, *out_size(h, w, kernel, stride, padding, dilation))
    assert out.numel() == 0
    need = (x, off, wt, b, mask) if use_mask else (x, off, wt, b)
    grads = torch.autograd.grad(out.sum(), need)
    for t, g in zip(need, grads, strict=True):
        assert g.shape == t.shape
    assert torch.equal(grads[2], torch.zeros_like(wt)) and torch.equal(
        grads[3], torch.zeros_like(b)
    )


@pytest.mark.parametrize("use_mask", [True, False], ids=["v2", "v1"])
def test_batch_33(use_mask):
    case = (33, 2, 3, 3, 2, (2, 2), 1, 1, (1, 2), 1, 2)
    _, _, _, _, _, _, stride, padding, dilation, _, _ = case
    x, off, wt, b, mask = make_deform(*case, seed=81)
    compare(
        deform_impl(stride, padding, dilation, use_mask, step=4),
        deform_ref(stride, padding, dilation, use_mask),
        deform_inputs(use_mask, x, off, wt, b, mask),
    )


@pytest.mark.parametrize("fmt", ["noncontig", "channels_last"])
def test_memory_formats(fmt):
    _, _, _, _, _, _, stride, padding, dilation, _, _ = ASYM
    x, off, wt, b, mask = make_deform(*ASYM, seed=91)
    conv = noncontig if fmt == "noncontig" else channels_last
    out, _ = compare(
        deform_impl(stride, padding, dilation, True, fmt=conv),
        deform_ref(stride, padding, dilation, True),
        [x, off, wt, b, mask],
    )
    plain = deform_conv2d(x, off, wt, b, stride, padding, dilation, mask)
    torch.testing.assert_close(out.detach(), plain, **TOL64)


def test_transposed_view_input():
    """An input that is a transposed view (H and W swapped back) of a contiguous tensor."""
    case = (2, 4, 5, 6, 4, (3, 2), 1, (1, 0), 1, 2, 2)
    _, _, _, _, _, _, stride, padding, dilation, _, _ = case
    x, off, wt, b, mask = make_deform(*case, seed=92)
    xt = x.transpose(2, 3).contiguous().transpose(2, 3)
    assert not xt.is_contiguous() and torch.equal(xt, x)
    out = deform_conv2d(xt, off, wt, b, stride, padding, dilation, mask)
    torch.testing.assert_close(
        out, ref_deform_conv2d(x, off, wt, b, stride, padding, dilation, mask), **TOL64
    )


def test_float32_matches_float64():
    _, _, _, _, _, _, stride, padding, dilation, _, _ = ASYM
    data = make_deform(*ASYM, seed=101)
    o64 = deform_conv2d(*data[:4], stride, padding, dilation, data[4])
    o32 = deform_conv2d(*[t.float() for t in data[:4]], stride, padding, dilation, data[4].float())
    assert o32.dtype == torch.float32 and o64.dtype == F64
    torch.testing.assert_close(o32.double(), o64, **TOL32)


def test_reference_self_check():
    """Guards the reference itself: ref_deform_conv2d == a per-channel grid_sample
    composition (align_corners=True, zero padding), and its autograd offset gradient ==
    the explicit formula at random positions."""
    import torch.nn.functional as F

    n, c, h, w, o, kernel, stride, padding, dilation, groups, dg = ASYM
    x, off, wt, b, mask = make_deform(*ASYM, seed=111, scale=3.0)
    kh, kw = kernel
    k = kh * kw
    ho, wo = off.shape[-2:]
    expect = b[None, :, None, None].expand(n, o, ho, wo).clone()
    opg, cpg = o // groups, c // groups
    for ch in range(c):
        g = ch // (c // dg)
        for i in range(kh):
            for j in range(kw):
                t = i * kw + j
                hy = torch.arange(ho, dtype=F64)[:, None] * stride[0] - padding[0] + i * dilation[0]
                wx = torch.arange(wo, dtype=F64)[None, :] * stride[1] - padding[1] + j * dilation[1]
                hy = hy + off[:, g * 2 * k + 2 * t]
                wx = wx + off[:, g * 2 * k + 2 * t + 1]
                grid = torch.stack([wx / (w - 1) * 2 - 1, hy / (h - 1) * 2 - 1], -1)
                v = F.grid_sample(x[:, ch : ch + 1], grid, align_corners=True)[:, 0]
                v = v * mask[:, g * k + t]
                cg = ch // cpg
                for oc in range(cg * opg, (cg + 1) * opg):
                    expect[:, oc] += v * wt[oc, ch - cg * cpg, i, j]
    got = ref_deform_conv2d(x, off, wt, b, stride, padding, dilation, mask)
    torch.testing.assert_close(got, expect, **TOL64)
    (off_l,) = leaves(off)
    out = ref_deform_conv2d(x, off_l, wt, b, stride, padding, dilation, mask)
    gout = rand(*out.shape, seed=5)
    (g_auto,) = torch.autograd.grad(out, off_l, gout)
    explicit = ref_deform_offset_grad_explicit(x, off, wt, gout, stride, padding, dilation, mask)
    torch.testing.assert_close(g_auto, explicit, **TOL64)
