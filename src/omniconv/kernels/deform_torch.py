"""Deformable convolution (DCNv1/v2) in plain PyTorch tensor ops: runs on any device.

The math (documented in full in :mod:`omniconv.functional.deform_conv`) is split in
two steps per chunk of at most ``im2col_step`` images:

1. *sampling*: build the column tensor ``col[n, c, k, l]`` = ``mask * bilinear(x[n, c], p)``
   at the deformed position ``p`` of tap ``k`` and output pixel ``l``;
2. *aggregation*: a grouped GEMM of the weight ``[g, O/g, C/g*K]`` with the columns.

Bilinear sampling is written with ``floor`` in pixel units, as the reference kernels
(Paddle, torchvision) do, so integer sample positions (every zero offset) give exact
values and the same one-sided offset gradients. No Python loop runs over pixels,
taps or channels: only over image chunks and the 4 bilinear corners.

Both passes take the op's arguments as :class:`DeformTensors` and :class:`DeformParams`;
group counts come from the tensor shapes.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from ._deform_args import DeformParams, DeformTensors

__all__ = ["backward", "forward"]


class _Corner(NamedTuple):
    flat: Tensor  # (n, dg, 1, K*L) int64 flat index into H*W (clamped, always valid)
    weight: Tensor  # (n, dg, 1, K*L) bilinear weight, 0 where the corner is off-image
    dh: Tensor  # d weight / d h (0 where the corner is off-image)
    dw: Tensor  # d weight / d w


def _sampling_grid(
    offset: Tensor,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
) -> tuple[Tensor, Tensor]:
    """Absolute sample positions ``(h, w)``, each ``(n, dg, K, Ho, Wo)``, in pixel units."""
    n, c_off, ho, wo = offset.shape
    kh, kw = kernel
    k = kh * kw
    dg = c_off // (2 * k)
    off = offset.view(n, dg, k, 2, ho, wo)
    dev, dt = offset.device, offset.dtype
    # base positions: y*s - p + i*d for row taps, x*s - p + j*d for column taps
    ys = torch.arange(ho, device=dev, dtype=dt) * stride[0] - padding[0]
    xs = torch.arange(wo, device=dev, dtype=dt) * stride[1] - padding[1]
    ti = (torch.arange(kh, device=dev, dtype=dt) * dilation[0]).repeat_interleave(kw)
    tj = (torch.arange(kw, device=dev, dtype=dt) * dilation[1]).repeat(kh)
    base_h = (ti[:, None] + ys[None, :])[:, :, None]  # (K, Ho, 1)
    base_w = (tj[:, None] + xs[None, :])[:, None, :]  # (K, 1, Wo)
    return base_h + off[:, :, :, 0], base_w + off[:, :, :, 1]


def _corners(h: Tensor, w: Tensor, height: int, width: int) -> list[_Corner]:
    """The four bilinear corners of every sample point, floor convention.

    A point outside ``(-1, H) x (-1, W)`` contributes nothing; inside it, each corner
    that lies off the image counts as zero (zero padding, not clamping).
    """
    n, dg = h.shape[:2]
    h = h.reshape(n, dg, 1, -1)
    w = w.reshape(n, dg, 1, -1)
    inside = (h > -1) & (h < height) & (w > -1) & (w < width)
    h0 = torch.floor(h)
    w0 = torch.floor(w)
    lh = h - h0
    lw = w - w0
    hh = 1 - lh
    hw = 1 - lw
    h0i = h0.to(torch.int64)
    w0i = w0.to(torch.int64)
    zero = torch.zeros((), dtype=h.dtype, device=h.device)
    out = []
    # (row, col, weight, d weight/dh, d weight/dw)
    for hi, wi, wt, dh, dw in (
        (h0i, w0i, hh * hw, -hw, -hh),
        (h0i, w0i + 1, hh * lw, -lw, hh),
        (h0i + 1, w0i, lh * hw, hw, -lh),
        (h0i + 1, w0i + 1, lh * lw, lw, lh),
    ):
        ok = inside & (hi >= 0) & (hi <= height - 1) & (wi >= 0) & (wi <= width - 1)
        index = hi.clamp(0, height - 1) * width + wi.clamp(0, width - 1)
        out.append(
            _Corner(
                index,
                torch.where(ok, wt, zero),
                torch.where(ok, dh, zero),
                torch.where(ok, dw, zero),
            )
        )
    return out


def _gather(x: Tensor, index: Tensor) -> Tensor:
    """``x`` (n, dg, Cg, HW) at ``index`` (n, dg, 1, KL) -> (n, dg, Cg, KL)."""
    return torch.gather(x, 3, index.expand(-1, -1, x.shape[2], -1))


def _columns(
    x: Tensor,
    corners: list[_Corner],
    mask: Tensor | None,
) -> Tensor:
    """``mask * bilinear`` for every channel, tap and output pixel: (n, C, K*L)."""
    n, c = x.shape[:2]
    dg = corners[0].flat.shape[1]
    xg = x.reshape(n, dg, c // dg, -1)
    first, *rest = corners
    col = _gather(xg, first.flat) * first.weight
    for cor in rest:
        col = col + _gather(xg, cor.flat) * cor.weight
    if mask is not None:
        col = col * mask.reshape(n, dg, 1, -1)
    return col.reshape(n, c, -1)


class _Dims(NamedTuple):
    n: int
    c: int
    height: int
    width: int
    c_out: int
    cg: int  # input channels per conv group
    groups: int
    kernel: tuple[int, int]
    k: int  # taps
    ho: int
    wo: int

    @classmethod
    def of(cls, t: DeformTensors) -> _Dims:
        n, c, height, width = t.input.shape
        c_out, cg, kh, kw = t.weight.shape
        ho, wo = t.offset.shape[2:]
        return cls(n, c, height, width, c_out, cg, c // cg, (kh, kw), kh * kw, ho, wo)


def _chunks(batch: int, step: int) -> list[tuple[int, int]]:
    return [(s, min(s + step, batch)) for s in range(0, batch, step)]


def _chunk_corners(t: DeformTensors, p: DeformParams, d: _Dims, s: int, e: int) -> list[_Corner]:
    """The bilinear corners of images ``s:e``."""
    h_pos, w_pos = _sampling_grid(t.offset[s:e], d.kernel, p.stride, p.padding, p.dilation)
    return _corners(h_pos, w_pos, d.height, d.width)


def forward(t: DeformTensors, p: DeformParams) -> Tensor:
    """Forward pass (``mask`` is ignored when ``use_mask`` is false)."""
    d = _Dims.of(t)
    out = t.input.new_empty((d.n, d.c_out, d.ho, d.wo))
    w = t.weight.reshape(d.groups, d.c_out // d.groups, d.cg * d.k)
    for s, e in _chunks(d.n, p.im2col_step):
        corners = _chunk_corners(t, p, d, s, e)
        col = _columns(t.input[s:e], corners, t.mask[s:e] if p.use_mask else None)
        col = col.view(e - s, d.groups, d.cg * d.k, d.ho * d.wo)
        res = torch.matmul(w, col)  # (n, g, O/g, L)
        out[s:e] = res.reshape(e - s, d.c_out, d.ho, d.wo)
    return out + t.bias.view(1, -1, 1, 1)


def backward(grad_out: Tensor, t: DeformTensors, p: DeformParams) -> DeformTensors:
    """Gradients of the tensor arguments; the mask's is zero when ``use_mask`` is false."""
    d = _Dims.of(t)
    k, ho, wo = d.k, d.ho, d.wo
    dg = t.offset.shape[1] // (2 * k)
    cdg = d.c // dg  # input channels per deformable group
    grad_out = grad_out.contiguous()
    grad_input = torch.zeros_like(t.input, memory_format=torch.contiguous_format)
    grad_offset = torch.empty_like(t.offset, memory_format=torch.contiguous_format)
    grad_mask = torch.empty_like(t.mask, memory_format=torch.contiguous_format)
    w = t.weight.reshape(d.groups, d.c_out // d.groups, d.cg * k)
    grad_w = torch.zeros_like(w)
    for s, e in _chunks(d.n, p.im2col_step):
        m = e - s
        corners = _chunk_corners(t, p, d, s, e)
        mk = t.mask[s:e].reshape(m, dg, 1, -1) if p.use_mask else None
        xg = t.input[s:e].reshape(m, dg, cdg, -1)
        go = grad_out[s:e].reshape(m, d.groups, d.c_out // d.groups, ho * wo)
        # weight gradient: grad_out @ col^T, summed over the chunk
        col = _columns(t.input[s:e], corners, mk).view(m, d.groups, d.cg * k, ho * wo)
        grad_w += torch.matmul(go, col.transpose(-1, -2)).sum(0)
        del col
        # column gradient: W^T @ grad_out -> (m, dg, C/dg, K*L)
        gcol = torch.matmul(w.transpose(-1, -2), go).reshape(m, dg, cdg, k * ho * wo)
        gx = grad_input[s:e].view(m, dg, cdg, d.height * d.width)
        # per-corner sums over channels; d/dh, d/dw and the mask gradient are their
        # combinations with each corner's weight derivatives
        gh = gw = gm = gcol.new_zeros(m, dg, 1, k * ho * wo)
        for cor in corners:
            v = (_gather(xg, cor.flat) * gcol).sum(2, keepdim=True)  # (m, dg, 1, KL)
            gh = gh + v * cor.dh
            gw = gw + v * cor.dw
            gm = gm + v * cor.weight
            coef = cor.weight if mk is None else cor.weight * mk
            gx.scatter_add_(3, cor.flat.expand(-1, -1, cdg, -1), gcol * coef)
        if mk is not None:
            gh = gh * mk
            gw = gw * mk
            grad_mask[s:e] = gm.view(m, dg * k, ho, wo)
        gd = torch.stack((gh.view(m, dg, k, ho, wo), gw.view(m, dg, k, ho, wo)), dim=3)
        grad_offset[s:e] = gd.view(m, 2 * dg * k, ho, wo)
    if not p.use_mask:
        grad_mask.zero_()
    grad_bias = grad_out.sum((0, 2, 3))
    return DeformTensors(grad_input, grad_w.view_as(t.weight), grad_offset, grad_mask, grad_bias)
