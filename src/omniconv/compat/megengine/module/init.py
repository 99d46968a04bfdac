"""``megengine.module.init`` subset, in place and under ``torch.no_grad()`` (so it works
on parameters that require grad), drawing from torch's RNG.

The fans are MegEngine's: for a 5-D grouped weight (``conv.weight`` of a grouped
``Conv2d``) the group dimension is ignored.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ...._args import fail

__all__ = [
    "calculate_fan_in_and_fan_out",
    "fill_",
    "normal_",
    "ones_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]


def fill_(tensor: Tensor, val: float) -> None:
    """Fill ``tensor`` with ``val``."""
    with torch.no_grad():
        tensor.fill_(val)


def zeros_(tensor: Tensor) -> None:
    fill_(tensor, 0)


def ones_(tensor: Tensor) -> None:
    fill_(tensor, 1)


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0) -> None:
    """U(a, b)."""
    with torch.no_grad():
        tensor.uniform_(a, b)


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0) -> None:
    """N(mean, std²)."""
    with torch.no_grad():
        tensor.normal_(mean, std)


def calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[float, float]:
    """MegEngine's fans: 2-D ``(out, in)``; otherwise ``shape[1] * receptive field`` and
    ``shape[0] * receptive field``, the leading group dimension of a 5-D weight ignored."""
    shape = tuple(tensor.shape)
    if len(shape) < 2:
        raise ValueError(
            "fan_in and fan_out can not be computed for tensor with fewer than 2 dimensions"
        )
    if len(shape) == 2:
        return float(shape[1]), float(shape[0])
    if len(shape) >= 5:
        shape = shape[1:]
    receptive = math.prod(shape[2:])
    return float(shape[1] * receptive), float(shape[0] * receptive)


def _xavier_std(tensor: Tensor, gain: float) -> float:
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    if fan_in + fan_out <= 0:
        fail("tensor.shape", "non-empty", tuple(tensor.shape))
    return gain * math.sqrt(2.0 / (fan_in + fan_out))


def xavier_uniform_(tensor: Tensor, gain: float = 1.0) -> None:
    """U(-a, a), ``a = gain * sqrt(6 / (fan_in + fan_out))``."""
    bound = math.sqrt(3.0) * _xavier_std(tensor, gain)
    uniform_(tensor, -bound, bound)


def xavier_normal_(tensor: Tensor, gain: float = 1.0) -> None:
    """N(0, std²), ``std = gain * sqrt(2 / (fan_in + fan_out))``."""
    normal_(tensor, 0.0, _xavier_std(tensor, gain))
