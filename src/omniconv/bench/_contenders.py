"""What the DCN rows time: the dense conv, omniconv's deformable conv and two in-process
baselines, each as a function of (x, weight, bias, offset, mask), and the runners that call
one in a forward pass or a forward+backward pass."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as TF
from torch import Tensor

from .. import backends
from ..functional import deform_conv2d
from ._data import Data

__all__ = [
    "BASELINES",
    "Contender",
    "ForwardBackward",
    "contenders",
    "forward",
    "grid_sample_deform_conv2d",
]

Contender = Callable[[Tensor, Tensor, Tensor, Tensor, Tensor], Tensor]

#: the in-process baselines (``--no-baselines`` leaves them out)
BASELINES = ("pure_torch", "grid_sample")


def grid_sample_deform_conv2d(
    x: Tensor, offset: Tensor, weight: Tensor, bias: Tensor | None, mask: Tensor | None, pad: int
) -> Tensor:
    """The usual ~30-line DCNv2 (stride 1, dilation 1, one deformable group) on
    ``grid_sample``: bilinear in normalised coordinates (inexact at integer points)."""
    n, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    ho, wo = offset.shape[2:]
    k = kh * kw
    dt, dev = x.dtype, x.device
    ys = torch.arange(ho, dtype=dt, device=dev) - pad
    xs = torch.arange(wo, dtype=dt, device=dev) - pad
    ti = torch.arange(kh, dtype=dt, device=dev).repeat_interleave(kw)
    tj = torch.arange(kw, dtype=dt, device=dev).repeat(kh)
    off = offset.view(n, k, 2, ho, wo)
    py = ti.view(1, k, 1, 1) + ys.view(1, 1, ho, 1) + off[:, :, 0]
    px = tj.view(1, k, 1, 1) + xs.view(1, 1, 1, wo) + off[:, :, 1]
    grid = torch.stack(((2 * px + 1) / w - 1, (2 * py + 1) / h - 1), dim=-1)
    col = TF.grid_sample(
        x, grid.view(n, k * ho, wo, 2), mode="bilinear", padding_mode="zeros", align_corners=False
    ).view(n, c, k, ho * wo)
    if mask is not None:
        col = col * mask.view(n, 1, k, ho * wo)
    out = torch.matmul(weight.reshape(o, c * k), col.view(n, c * k, ho * wo))
    out = out.view(n, o, ho, wo)
    return out if bias is None else out + bias.view(1, -1, 1, 1)


def _dense(x: Tensor, w: Tensor, b: Tensor, off: Tensor, m: Tensor) -> Tensor:
    return TF.conv2d(x, w, b, 1, 1)


def _omniconv(x: Tensor, w: Tensor, b: Tensor, off: Tensor, m: Tensor) -> Tensor:
    return deform_conv2d(x, off, w, b, 1, 1, 1, m)


def _pure_torch(x: Tensor, w: Tensor, b: Tensor, off: Tensor, m: Tensor) -> Tensor:
    with backends.deform_backend("torch"):
        return deform_conv2d(x, off, w, b, 1, 1, 1, m)


def _grid_sample(x: Tensor, w: Tensor, b: Tensor, off: Tensor, m: Tensor) -> Tensor:
    return grid_sample_deform_conv2d(x, off, w, b, m, 1)


def contenders(baselines: bool = True) -> dict[str, Contender]:
    """``dense`` (``F.conv2d``, the yardstick), ``omniconv`` and, with ``baselines``,
    ``pure_torch`` (omniconv's pure-PyTorch kernel) and ``grid_sample``."""
    fns: dict[str, Contender] = {"dense": _dense, "omniconv": _omniconv}
    if baselines:
        fns.update(pure_torch=_pure_torch, grid_sample=_grid_sample)
    return fns


def forward(fn: Contender, data: Data) -> Callable[[], Tensor]:
    """A forward pass under ``torch.no_grad()``."""
    inputs = data.inputs()

    def run() -> Tensor:
        with torch.no_grad():
            return fn(*inputs)

    return run


class ForwardBackward:
    """A forward and backward pass (upstream gradient ``data.grad``) on leaf copies of the
    inputs (same memory format); each call first drops the previous call's gradients."""

    def __init__(self, fn: Contender, data: Data) -> None:
        self.fn = fn
        self.grad = data.grad
        self.leaves = [
            t.detach().clone(memory_format=torch.preserve_format).requires_grad_()
            for t in data.inputs()
        ]

    def clear(self) -> None:
        for t in self.leaves:
            t.grad = None

    def __call__(self) -> Tensor:
        self.clear()
        out = self.fn(*self.leaves)
        out.backward(self.grad)
        return out
