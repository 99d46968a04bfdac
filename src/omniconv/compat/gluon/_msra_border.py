r"""MXNet's DCNv1 border rule, as an offset and a mask for omniconv's deformable conv.

MXNet 1.9.1's ``contrib.DeformableConvolution`` (CPU and GPU, the operator MSRA
contributed with the DCNv1 paper's code) samples a position ``(h, w)`` of an ``H x W``
map as follows (``deformable_im2col.h``):

* outside ``[0, H) x [0, W)`` the sample is 0 (so ``h = -0.5`` reads 0), and its
  gradients are 0;
* inside, the bilinear corners are clamped to the last row / column: for
  ``H - 1 <= h < H`` the sample reads row ``H - 1`` in full (``h`` is taken as
  ``H - 1``) and its gradient with respect to ``h`` is 0; likewise for ``w``.

The DCNv2 operators (MXNet's ``ModulatedDeformableConvolution``, torchvision, mmcv,
Paddle, MegEngine and omniconv) use the other rule: zero outside the open box
``(-1, H) x (-1, W)``, bilinear with zero corners inside. The two agree at every
position inside ``[0, H - 1] x [0, W - 1]`` and at every integer position; they differ
for samples in the strips ``(-1, 0)``, ``(H - 1, H)`` (and likewise in ``w``).

:func:`msra_offset_and_mask` turns MXNet's DCNv1 sampling into omniconv's DCNv2 rule
exactly, values and gradients: the mask is 1 inside ``[0, H) x [0, W)`` and 0 outside
(a constant), and an offset whose row lands in ``[H - 1, H)`` is replaced by the
constant that lands it on ``H - 1`` (so its gradient there is 0, as in MXNet).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..._args import Pair

__all__ = ["msra_offset_and_mask"]


def _clamp_to_last(pos: Tensor, offset: Tensor, base: Tensor, size: int) -> Tensor:
    """``offset``, except where ``pos = base + offset`` lies at or beyond ``size - 1``:
    there the constant offset ``size - 1 - base`` (no gradient), as MXNet clamps."""
    last = (size - 1) - base
    return torch.where(pos.detach() >= size - 1, last, offset)


def msra_offset_and_mask(
    input_size: Pair,
    offset: Tensor,
    kernel: Pair,
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    deformable_groups: int,
) -> tuple[Tensor, Tensor]:
    """``(offset', mask)`` with which the DCNv2 rule computes MXNet's DCNv1 sampling.

    ``offset`` is ``(N, dg*2*kh*kw, H_out, W_out)`` (checked by the caller), in the
    torchvision / MXNet channel order (``dy`` then ``dx`` per tap); ``offset'`` has the
    same shape and ``mask`` is ``(N, dg*kh*kw, H_out, W_out)``, of ``offset``'s dtype.
    """
    h, w = input_size
    kh, kw = kernel
    n, _, ho, wo = offset.shape
    taps = offset.reshape(n, deformable_groups, kh, kw, 2, ho, wo)
    dtype, device = offset.dtype, offset.device
    # sampling rows / columns of the undeformed grid: tap row i, output row y
    rows = torch.arange(kh, dtype=dtype, device=device)[:, None] * dilation[0] + (
        torch.arange(ho, dtype=dtype, device=device)[None, :] * stride[0] - padding[0]
    )
    cols = torch.arange(kw, dtype=dtype, device=device)[:, None] * dilation[1] + (
        torch.arange(wo, dtype=dtype, device=device)[None, :] * stride[1] - padding[1]
    )
    base_h = rows[:, None, :, None]  # (kh, 1, ho, 1)
    base_w = cols[None, :, None, :]  # (1, kw, 1, wo)
    off_h, off_w = taps[:, :, :, :, 0], taps[:, :, :, :, 1]
    pos_h, pos_w = base_h + off_h, base_w + off_w
    with torch.no_grad():
        inside = (pos_h >= 0) & (pos_h < h) & (pos_w >= 0) & (pos_w < w)
    new_h = _clamp_to_last(pos_h, off_h, base_h, h)
    new_w = _clamp_to_last(pos_w, off_w, base_w, w)
    new_offset = torch.stack((new_h, new_w), dim=4).reshape(offset.shape)
    mask = inside.to(offset.dtype).reshape(n, deformable_groups * kh * kw, ho, wo)
    return new_offset, mask
