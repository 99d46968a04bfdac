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

import math
from typing import NamedTuple

import torch
from torch import Tensor

from ._deform_args import DeformParams, DeformTensors

__all__ = ["backward", "forward"]


class _Corner(NamedTuple):
    flat: Tensor  # (n, dg, 1, K*L) int64 flat index into H*W + 1; H*W (a zero) where not read
    weight: Tensor  # (n, dg, 1, K*L) bilinear weight: 0 where not read, NaN at a NaN position
    dh: Tensor  # d weight / d h (0 where not read, NaN at a NaN position)
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


def _corners(h: Tensor, w: Tensor, height: int, width: int) -> tuple[list[_Corner], Tensor]:
    """The four bilinear corners of every sample point, floor convention, and where the
    point lies inside ``(-1, H) x (-1, W)`` (``(n, dg, 1, K*L)``).

    The NaN / Inf rule (``docs/numerics.md``): a point inside reads its corners that lie on
    the image (a NaN there reaches the tap even at weight 0); a corner off the image, and
    every corner of a point outside (``±inf`` included), reads the zero appended after the
    image (index ``H*W``) with weight 0, so contributes exactly 0; a NaN position reads
    nothing and has NaN weights, so its tap is NaN.
    """
    n, dg = h.shape[:2]
    h = h.reshape(n, dg, 1, -1)
    w = w.reshape(n, dg, 1, -1)
    inside = (h > -1) & (h < height) & (w > -1) & (w < width)
    zero = torch.zeros((), dtype=h.dtype, device=h.device)
    # 0 off the image, NaN at a NaN position (NaN compares false, so it is not inside)
    fill = torch.where(torch.isnan(h) | torch.isnan(w), torch.nan, zero)
    hs = torch.where(inside, h, zero)  # no floor / int cast of inf or NaN
    ws = torch.where(inside, w, zero)
    h0 = torch.floor(hs)
    w0 = torch.floor(ws)
    lh = hs - h0
    lw = ws - w0
    hh = 1 - lh
    hw = 1 - lw
    h0i = h0.to(torch.int64)
    w0i = w0.to(torch.int64)
    out = []
    # (row, col, weight, d weight/dh, d weight/dw)
    for hi, wi, wt, dh, dw in (
        (h0i, w0i, hh * hw, -hw, -hh),
        (h0i, w0i + 1, hh * lw, -lw, hh),
        (h0i + 1, w0i, lh * hw, hw, -lh),
        (h0i + 1, w0i + 1, lh * lw, lw, lh),
    ):
        ok = inside & (hi >= 0) & (hi <= height - 1) & (wi >= 0) & (wi <= width - 1)
        index = torch.where(ok, hi * width + wi, height * width)
        out.append(
            _Corner(
                index,
                torch.where(ok, wt, fill),
                torch.where(ok, dh, fill),
                torch.where(ok, dw, fill),
            )
        )
    return out, inside


def _padded(x: Tensor, n: int, dg: int) -> Tensor:
    """``x (n, C, H, W)`` as ``(n, dg, C/dg, H*W + 1)``: the pixels and a zero after them,
    which every corner that reads nothing points at."""
    pixels = x.shape[2] * x.shape[3]
    return torch.nn.functional.pad(x.reshape(n, dg, x.shape[1] // dg, pixels), (0, 1))


def _gather(x: Tensor, index: Tensor) -> Tensor:
    """``x`` (n, dg, Cg, HW) at ``index`` (n, dg, 1, KL) -> (n, dg, Cg, KL)."""
    return torch.gather(x, 3, index.expand(-1, -1, x.shape[2], -1))


def _columns(
    xg: Tensor,
    corners: list[_Corner],
    mask: Tensor | None,
) -> Tensor:
    """``sum over corners of (mask * bilinear weight) * pixel`` for every channel, tap and
    output pixel: (n, C, K*L), from the padded input ``xg`` (:func:`_padded`)."""
    n, dg, cdg = xg.shape[:3]
    mk = None if mask is None else mask.reshape(n, dg, 1, -1)
    coefs = [cor.weight if mk is None else cor.weight * mk for cor in corners]
    col = _gather(xg, corners[0].flat) * coefs[0]
    for cor, coef in zip(corners[1:], coefs[1:], strict=True):
        col = col + _gather(xg, cor.flat) * coef
    return col.reshape(n, dg * cdg, col.shape[-1])


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


def _chunk_corners(
    t: DeformTensors, p: DeformParams, d: _Dims, s: int, e: int
) -> tuple[list[_Corner], Tensor]:
    """The bilinear corners of images ``s:e``, and which sample points lie inside."""
    h_pos, w_pos = _sampling_grid(t.offset[s:e], d.kernel, p.stride, p.padding, p.dilation)
    return _corners(h_pos, w_pos, d.height, d.width)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the kernels compute in: float16 / bfloat16 in float32, as the CPU fast
    path does (``docs/numerics.md``), others as they are."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _in_compute_dtype(t: DeformTensors) -> DeformTensors:
    dt = compute_dtype(t.input.dtype)
    return DeformTensors(*(a.to(dt) for a in t))


#: elements per block of :func:`bias_grad`'s partial sums
BIAS_BLOCK = 4096


def bias_grad(grad_out: Tensor) -> Tensor:
    """``grad_out (N, O, Ho, Wo)`` summed over everything but ``O``, in an order that
    depends on the shape only, never on torch's thread count: sums of fixed blocks of
    ``BIAS_BLOCK`` pixels (a serial reduction each: torch splits a reduction between
    threads only when it has a single output), then a ``cumsum`` over the blocks, image by
    image (sequential). A plain ``grad_out.sum((0, 2, 3))`` of one output channel is split
    between threads, and its bits change with their number."""
    n, o = grad_out.shape[:2]
    go3 = grad_out.reshape(n, o, math.prod(grad_out.shape[2:]))
    per = go3.shape[2]
    cut = per - per % BIAS_BLOCK
    parts = []
    if cut:
        parts.append(go3[..., :cut].unflatten(2, (cut // BIAS_BLOCK, BIAS_BLOCK)).sum(3))
    if cut < per or not parts:
        parts.append(go3[..., cut:].sum(2, keepdim=True))
    partial = torch.cat(parts, 2).transpose(0, 1).reshape(o, -1)
    if partial.shape[1] == 0:
        return partial.sum(1)
    return partial.cumsum(1)[:, -1].contiguous()


def forward(t: DeformTensors, p: DeformParams) -> Tensor:
    """Forward pass (``mask`` is ignored when ``use_mask`` is false), in the input's dtype
    (computed in :func:`compute_dtype`)."""
    dtype = t.input.dtype
    t = _in_compute_dtype(t)
    d = _Dims.of(t)
    dg = t.offset.shape[1] // (2 * d.k)
    out = t.input.new_empty((d.n, d.c_out, d.ho, d.wo))
    w = t.weight.reshape(d.groups, d.c_out // d.groups, d.cg * d.k)
    for s, e in _chunks(d.n, p.im2col_step):
        corners, _ = _chunk_corners(t, p, d, s, e)
        xg = _padded(t.input[s:e], e - s, dg)
        col = _columns(xg, corners, t.mask[s:e] if p.use_mask else None)
        col = col.view(e - s, d.groups, d.cg * d.k, d.ho * d.wo)
        res = torch.matmul(w, col)  # (n, g, O/g, L)
        out[s:e] = res.reshape(e - s, d.c_out, d.ho, d.wo)
    return (out + t.bias.view(1, -1, 1, 1)).to(dtype)


def backward(grad_out: Tensor, t: DeformTensors, p: DeformParams) -> DeformTensors:
    """Gradients of the tensor arguments, each in its argument's dtype (computed in
    :func:`compute_dtype`); the mask's is zero when ``use_mask`` is false."""
    dtypes = [a.dtype for a in t]
    t = _in_compute_dtype(t)
    grad_out = grad_out.to(t.input.dtype)
    d = _Dims.of(t)
    k, ho, wo = d.k, d.ho, d.wo
    dg = t.offset.shape[1] // (2 * k)
    cdg = d.c // dg  # input channels per deformable group
    hw = d.height * d.width
    grad_out = grad_out.contiguous()
    grad_input = torch.empty_like(t.input, memory_format=torch.contiguous_format)
    grad_offset = torch.empty_like(t.offset, memory_format=torch.contiguous_format)
    grad_mask = torch.empty_like(t.mask, memory_format=torch.contiguous_format)
    w = t.weight.reshape(d.groups, d.c_out // d.groups, d.cg * k)
    grad_w = torch.zeros_like(w)
    for s, e in _chunks(d.n, p.im2col_step):
        m = e - s
        corners, inside = _chunk_corners(t, p, d, s, e)
        mk = t.mask[s:e].reshape(m, dg, 1, -1) if p.use_mask else None
        xg = _padded(t.input[s:e], m, dg)
        go = grad_out[s:e].reshape(m, d.groups, d.c_out // d.groups, ho * wo)
        # weight gradient: grad_out @ col^T, summed over the chunk
        col = _columns(xg, corners, mk).view(m, d.groups, d.cg * k, ho * wo)
        grad_w += torch.matmul(go, col.transpose(-1, -2)).sum(0)
        del col
        # column gradient: W^T @ grad_out -> (m, dg, C/dg, K*L)
        gcol = torch.matmul(w.transpose(-1, -2), go).reshape(m, dg, cdg, k * ho * wo)
        # the input gradient, with the zero column that unread corners scatter into
        gx = gcol.new_zeros(m, dg, cdg, hw + 1)
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
        grad_input[s:e] = gx[..., :hw].reshape(m, d.c, d.height, d.width)
        if mk is not None:
            # the mask multiplies the position derivatives of a point inside; outside
            # they are exactly 0 (NaN at a NaN position), whatever the mask
            gh = torch.where(inside, gh * mk, gh)
            gw = torch.where(inside, gw * mk, gw)
            grad_mask[s:e] = gm.view(m, dg * k, ho, wo)
        gd = torch.stack((gh.view(m, dg, k, ho, wo), gw.view(m, dg, k, ho, wo)), dim=3)
        grad_offset[s:e] = gd.view(m, 2 * dg * k, ho, wo)
    if not p.use_mask:
        grad_mask.zero_()
    grads = (grad_input, grad_w.view_as(t.weight), grad_offset, grad_mask, bias_grad(grad_out))
    return DeformTensors(*(g.to(dt) for g, dt in zip(grads, dtypes, strict=True)))
