"""Helpers shared by the op tests: seeded data, leaf copies, forward + autograd comparisons
against ``tests/reference.py``, memory layouts, and the deformable-conv cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from reference import ref_deform_conv2d

from omniconv._shapes import conv_output_size, deform_mask_channels, deform_offset_channels
from omniconv.functional import deform_conv2d

F64 = torch.float64

# implementation in float64 vs the float64 reference
TOL64 = {"rtol": 1e-9, "atol": 1e-10}
# implementation in float32 vs the float64 reference / vs itself in float64
TOL32 = {"rtol": 1e-4, "atol": 1e-4}


def rand(*shape, dtype=F64, seed=None, scale=1.0):
    g = torch.Generator().manual_seed(0 if seed is None else seed)
    return torch.randn(*shape, generator=g, dtype=F64).mul(scale).to(dtype)


def leaves(*tensors, dtype=None):
    """Fresh leaf copies (requires_grad) of the given tensors; None stays None."""
    out = []
    for t in tensors:
        if t is None:
            out.append(None)
            continue
        t = t.detach().clone()
        if dtype is not None:
            t = t.to(dtype)
        out.append(t.requires_grad_(True))
    return out


def value_and_grads(fn, inputs, grad_seed=1234):
    """``out = fn(*inputs)`` and the gradients of ``sum(out * g)`` (g random, fixed seed)
    w.r.t. every non-None input. Returns ``(out, [grad or None, ...])``."""
    out = fn(*inputs)
    g = rand(*out.shape, seed=grad_seed).to(out.dtype)
    need = [t for t in inputs if t is not None]
    if out.numel() == 0:
        # still differentiable: every gradient must exist (zero / empty)
        grads = torch.autograd.grad(out.sum(), need, allow_unused=False)
    else:
        grads = torch.autograd.grad(out, need, g, allow_unused=False)
    it = iter(grads)
    return out, [None if t is None else next(it) for t in inputs]


def compare(impl_fn, ref_fn, inputs, tol=None, impl_dtype=None, grad_seed=1234):
    """Run ``impl_fn`` and ``ref_fn`` on independent leaf copies of ``inputs`` (the
    reference always in float64) and assert outputs and all gradients agree."""
    ref_in = leaves(*inputs, dtype=F64)
    imp_in = leaves(*inputs, dtype=impl_dtype)
    r_out, r_grads = value_and_grads(ref_fn, ref_in, grad_seed)
    i_out, i_grads = value_and_grads(impl_fn, imp_in, grad_seed)
    if tol is None:
        tol = TOL32 if i_out.dtype == torch.float32 else TOL64
    assert i_out.shape == r_out.shape
    if impl_dtype is not None:
        assert i_out.dtype == impl_dtype
    torch.testing.assert_close(i_out.double(), r_out, **tol, msg=lambda m: "output: " + m)
    for k, (ig, rg) in enumerate(zip(i_grads, r_grads, strict=True)):
        if rg is None:
            continue
        assert ig is not None, f"no gradient for input {k}"
        assert ig.shape == rg.shape
        torch.testing.assert_close(
            ig.double(), rg, **tol, msg=lambda m, k=k: f"gradient of input {k}: " + m
        )
    return i_out, i_grads


def noncontig(t):
    """Same values, non-contiguous strides (a strided slice of a larger tensor); differentiable."""
    out = torch.stack([t, torch.zeros_like(t)], -1)[..., 0]
    assert not out.is_contiguous()
    return out


def channels_last(t):
    out = t.to(memory_format=torch.channels_last)
    assert out.is_contiguous(memory_format=torch.channels_last)
    return out


def _transposed(t):
    """Same values, the first two dimensions' strides swapped (a transposed view)."""
    return t.transpose(0, 1).contiguous().transpose(0, 1)


def _sliced(t, memory_format=torch.contiguous_format):
    """Same values, every second entry of dim 0 of a tensor twice as long (which has
    ``memory_format``)."""
    return t.repeat_interleave(2, dim=0).contiguous(memory_format=memory_format)[::2]


def _expanded(t):
    """Slice 0 of dim 0 broadcast over dim 0 (stride 0): the values change, so the caller
    gives the same view to the implementation and to the reference."""
    return t[:1].expand_as(t)


#: memory layouts an op must take for any tensor argument: name -> differentiable view
#: (1-D tensors take the ones that make sense for them)
LAYOUTS = {
    "contiguous": lambda t: t,
    "channels_last": channels_last,
    "transposed": _transposed,
    "strided": noncontig,
    "sliced": _sliced,
    "sliced_channels_last": lambda t: _sliced(t, torch.channels_last),
    "expanded": _expanded,
    "expanded_channels_last": lambda t: channels_last(t[:1]).expand_as(t),
}
LAYOUTS_1D = ("contiguous", "strided", "sliced", "expanded")


def relayout(t, layout):
    """``LAYOUTS[layout](t)``: a view with the same shape (and, but for the expanded
    layouts, the same values) in that layout."""
    return LAYOUTS[layout](t)


def distinct_layout(t, layout):
    """Whether ``layout`` is a real non-contiguous layout for a tensor of ``t``'s shape
    (channels_last of a 1x1 weight, say, is plain contiguous)."""
    out = relayout(t, layout)
    if layout.startswith("expanded"):
        return t.shape[0] > 1 and out.stride(0) == 0
    return not out.is_contiguous()


# ----------------------------------------------------------------------------- deformable conv


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def out_size(h, w, kernel, stride, padding, dilation):
    ph, pw = pair(padding)
    return conv_output_size((h, w), kernel, pair(stride), (ph, ph, pw, pw), pair(dilation))


def away_from_integers(off):
    """Keep every fractional part in [0.1, 0.9]: sample positions (integer base + offset)
    then stay off the kinks of bilinear interpolation (finite differences, float32)."""
    return torch.floor(off) + 0.1 + 0.8 * (off - torch.floor(off))


def make_deform(n, c, h, w, o, kernel, stride, padding, dilation, groups, dg, seed=0, scale=2.0):
    ho, wo = out_size(h, w, kernel, stride, padding, dilation)
    x = rand(n, c, h, w, seed=seed)
    wt = rand(o, c // groups, *kernel, seed=seed + 1)
    b = rand(o, seed=seed + 2)
    off = away_from_integers(
        rand(n, deform_offset_channels(dg, kernel), ho, wo, seed=seed + 3, scale=scale)
    )
    g = torch.Generator().manual_seed(seed + 4)
    mask = (
        torch.rand(n, deform_mask_channels(dg, kernel), ho, wo, generator=g, dtype=F64) * 1.5 - 0.25
    )
    return x, off, wt, b, mask


def deform_impl(stride, padding, dilation, use_mask, step=64, fmt=None):
    conv = fmt or (lambda t: t)

    def fn(x, off, wt, b, mask=None):
        m = conv(mask) if use_mask else None
        return deform_conv2d(
            conv(x), conv(off), conv(wt), b, stride, padding, dilation, m, im2col_step=step
        )

    return fn


def deform_ref(stride, padding, dilation, use_mask):
    def fn(x, off, wt, b, mask=None):
        return ref_deform_conv2d(
            x, off, wt, b, stride, padding, dilation, mask if use_mask else None
        )

    return fn


# (N, C, H, W, O, kernel, stride, padding, dilation, groups, dg)
ASYM = (2, 6, 7, 6, 4, (3, 2), (2, 1), (1, 0), (2, 1), 2, 3)
CASES = [
    ASYM,
    (2, 4, 5, 5, 4, (3, 3), 1, 1, 1, 1, 2),
    (1, 2, 4, 6, 2, (1, 3), (1, 2), (0, 1), 1, 1, 1),
    (1, 4, 5, 5, 4, (2, 2), 2, 1, (1, 2), 4, 4),  # depthwise
    (1, 6, 4, 4, 6, (3, 3), 1, 1, 1, 3, 2),  # deformable groups straddle conv groups
]


def deform_inputs(use_mask, x, off, wt, b, mask):
    return [x, off, wt, b, mask] if use_mask else [x, off, wt, b]


H_B, W_B = 4, 5


def border_offsets(n, dg, kernel, ho, wo, stride, padding, dilation, seed, h=H_B, w=W_B):
    """Offsets that put every sample exactly on one of a set of target positions
    (beyond every border, exactly -1, 0, H-1, H, halfway outside, interior integers) of
    an ``h x w`` image."""
    kh, kw = kernel
    sh, sw = pair(stride)
    ph, pw = pair(padding)
    dh, dw = pair(dilation)
    th = torch.tensor([-3.0, -1.0, -0.5, 0.0, 1.0, 2.25, h - 1, h - 0.5, h, h + 1.5], dtype=F64)
    tw = torch.tensor([-2.5, -1.0, -0.25, 0.0, 2.0, 3.5, w - 1, w - 0.75, w, w + 2.0], dtype=F64)
    g = torch.Generator().manual_seed(seed)
    k = kh * kw
    pick_h = th[torch.randint(len(th), (n, dg, k, ho, wo), generator=g)]
    pick_w = tw[torch.randint(len(tw), (n, dg, k, ho, wo), generator=g)]
    ti = torch.arange(kh, dtype=F64).repeat_interleave(kw)[:, None, None] * dh
    tj = torch.arange(kw, dtype=F64).repeat(kh)[:, None, None] * dw
    base_h = torch.arange(ho, dtype=F64)[None, :, None] * sh - ph + ti
    base_w = torch.arange(wo, dtype=F64)[None, None, :] * sw - pw + tj
    off = torch.stack([pick_h - base_h, pick_w - base_w], 3)  # (n, dg, K, 2, ho, wo)
    # every target occurs
    assert set(pick_h.unique().tolist()) == set(th.tolist())
    assert set(pick_w.unique().tolist()) == set(tw.tolist())
    return off.reshape(n, 2 * dg * k, ho, wo)


# ----------------------------------------------------------------------------- framework fixtures

FIXTURES = Path(__file__).parent / "fixtures"


def load_fixture(path):
    """All arrays of a ``tests/fixtures/*.npz`` file, as a dict."""
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def close_to_fixture(actual, expected, name, tol=None):
    """``actual`` (a tensor) equals a framework's array: ``rtol = tol`` and
    ``atol = tol * max(1, max|expected|)``, ``tol`` 1e-10 for float64 arrays and 1e-5
    for float32 ones unless given."""
    expected = np.asarray(expected)
    tol = tol if tol is not None else (1e-10 if expected.dtype == np.float64 else 1e-5)
    scale = max(1.0, float(np.abs(expected).max())) if expected.size else 1.0
    assert tuple(actual.shape) == expected.shape, (name, tuple(actual.shape), expected.shape)
    torch.testing.assert_close(
        actual.detach().double(),
        torch.from_numpy(expected.astype(np.float64)),
        rtol=tol,
        atol=tol * scale,
        msg=lambda m: f"{name}: {m}",
    )
