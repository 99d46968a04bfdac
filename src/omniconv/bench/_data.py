"""The benchmark's shapes and data: one seeded draw per shape, shared by every contender
(the peers get the same arrays, NCHW, through an ``.npz`` file)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "QUICK_SCALE_FAMILIES",
    "QUICK_SHAPES",
    "SCALE_FAMILIES",
    "SHAPES",
    "Data",
    "make_data",
]

#: (N, C, H=W) of the DCNv2 3x3 benchmark (C_in = C_out, padding 1)
SHAPES: tuple[tuple[int, int, int], ...] = ((2, 64, 56), (4, 128, 28), (8, 256, 14), (1, 256, 64))
#: ``--quick``: one small shape
QUICK_SHAPES: tuple[tuple[int, int, int], ...] = ((2, 32, 20),)
#: ``--scale``: (N, C, H=W) of a segmentation-size map (4x the pixels from one shape to the
#: next) and of a batch of images (2x the images)
SCALE_FAMILIES: dict[str, tuple[tuple[int, int, int], ...]] = {
    "map": ((1, 64, 128), (1, 64, 256), (1, 64, 512)),
    "batch": ((16, 128, 28), (32, 128, 28), (64, 128, 28)),
}
#: ``--scale --quick``: tiny versions of both families
QUICK_SCALE_FAMILIES: dict[str, tuple[tuple[int, int, int], ...]] = {
    "map": ((1, 8, 12), (1, 8, 24)),
    "batch": ((2, 8, 10), (4, 8, 10)),
}


@dataclass(frozen=True)
class Data:
    """A DCNv2 problem: offsets ~ N(0, 2²), mask ~ U(0, 1), ``grad`` the upstream gradient."""

    x: Tensor
    weight: Tensor
    bias: Tensor
    offset: Tensor
    mask: Tensor
    grad: Tensor

    def inputs(self) -> list[Tensor]:
        """The arguments of every contender, in its order: x, weight, bias, offset, mask."""
        return [self.x, self.weight, self.bias, self.offset, self.mask]

    def arrays(self) -> dict[str, np.ndarray]:
        """All six as NCHW-contiguous float32 numpy arrays (what the peers receive)."""
        names = ("x", "weight", "bias", "offset", "mask", "grad")
        return {k: getattr(self, k).contiguous().numpy() for k in names}


def make_data(shape: tuple[int, int, int], seed: int = 0, channels_last: bool = False) -> Data:
    """The data of one (N, C, H=W) shape; the same ``seed`` gives the same numbers in
    either layout."""
    n, c, hw = shape
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, hw, hw, generator=g)
    weight = torch.randn(c, c, 3, 3, generator=g) / math.sqrt(9 * c)
    bias = torch.randn(c, generator=g)
    offset = 2 * torch.randn(n, 18, hw, hw, generator=g)
    mask = torch.rand(n, 9, hw, hw, generator=g)
    grad = torch.randn(n, c, hw, hw, generator=g)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
        grad = grad.contiguous(memory_format=torch.channels_last)
    return Data(x, weight, bias, offset, mask, grad)
