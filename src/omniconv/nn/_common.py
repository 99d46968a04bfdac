"""Pieces shared by the modules: PyTorch's default initialisation and a repr of
non-default arguments."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .._args import check_fits

__all__ = ["check_weight_fits", "non_default_repr", "torch_default_init"]


def check_weight_fits(
    shape: Sequence[int], device: Any, dtype: Any, factors: Sequence[tuple[str, Any, int]]
) -> None:
    """Refuse a weight of ``shape`` too large to allocate (:func:`omniconv._args.check_fits`)
    before allocating it, naming the argument of ``factors`` (``(name, value, its factor of
    the element count)``) with the largest factor. A ``device`` / ``dtype`` torch refuses is
    left to torch's own error, as before."""
    try:
        itemsize = torch.empty((), dtype=dtype, device="meta").element_size()
        device_type = (torch.get_default_device() if device is None else torch.device(device)).type
    except (TypeError, ValueError, RuntimeError):
        return
    name, value, _ = max(factors, key=lambda f: f[2])
    check_fits(shape, itemsize, device_type, "the weight", name, value)


def torch_default_init(weight: Tensor, bias: Tensor | None) -> None:
    """``torch.nn.Conv2d``'s initialisation: weight and bias ~ U(-1/sqrt(fan_in),
    1/sqrt(fan_in)) with ``fan_in = weight.shape[1] * kh * kw`` (``kaiming_uniform_(a=sqrt(5))``),
    drawing from the RNG in the same order, so a seed gives torch's values."""
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = nn.init._calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        nn.init.uniform_(bias, -bound, bound)


def non_default_repr(module: nn.Module, defaults: Mapping[str, Any]) -> str:
    """``in, out, kernel_size=..`` then only the arguments that differ from ``defaults``."""
    m: Any = module
    s = f"{m.in_channels}, {m.out_channels}, kernel_size={m.kernel_size}"
    for name, default in defaults.items():
        value = getattr(m, name)
        if value != default:
            s += f", {name}={value!r}"
    if m.bias is None:
        s += ", bias=False"
    return s
