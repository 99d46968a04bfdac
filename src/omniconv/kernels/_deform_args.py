"""The arguments of the ``omniconv::deform_conv2d`` op, written once.

The op's schema, its fake, autograd and device kernels all come from the two structures
below: every kernel takes ``(DeformTensors, DeformParams)`` (the backward adds the output
gradient first). The functional (:mod:`omniconv.functional.deform_conv`) has checked every
argument before the op is called.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, get_type_hints

import torch
from torch import Tensor

__all__ = [
    "BACKWARD_SCHEMA",
    "FORWARD_SCHEMA",
    "DeformParams",
    "DeformTensors",
    "is_channels_last",
    "output_memory_format",
    "split_args",
]


class DeformTensors(NamedTuple):
    """The tensor arguments (or their gradients), one dtype and device."""

    input: Tensor  #: ``(N, C, H, W)``, NCHW or channels_last
    weight: Tensor  #: ``(O, C/groups, kh, kw)``
    offset: Tensor  #: ``(N, 2*dg*kh*kw, Ho, Wo)``
    mask: Tensor  #: ``(N, dg*kh*kw, Ho, Wo)``; any placeholder when ``use_mask`` is false
    bias: Tensor  #: ``(O,)``, zeros for a layer without bias


class DeformParams(NamedTuple):
    """The non-tensor arguments."""

    stride_h: int
    stride_w: int
    pad_h: int
    pad_w: int
    dil_h: int
    dil_w: int
    use_mask: bool  #: DCNv2 (``mask`` used) or DCNv1
    im2col_step: int  #: at most this many images are sampled at a time (memory only)

    @property
    def stride(self) -> tuple[int, int]:
        return self.stride_h, self.stride_w

    @property
    def padding(self) -> tuple[int, int]:
        return self.pad_h, self.pad_w

    @property
    def dilation(self) -> tuple[int, int]:
        return self.dil_h, self.dil_w


_SCHEMA_TYPES: dict[Any, str] = {Tensor: "Tensor", int: "SymInt", bool: "bool"}


def _schema_args(cls: type) -> str:
    hints = get_type_hints(cls)
    return ", ".join(f"{_SCHEMA_TYPES[hints[name]]} {name}" for name in cls._fields)  # type: ignore[attr-defined]


_ARGS = f"{_schema_args(DeformTensors)}, {_schema_args(DeformParams)}"
#: ``(Tensor input, ..., SymInt im2col_step) -> Tensor``
FORWARD_SCHEMA = f"({_ARGS}) -> Tensor"
#: the gradients of ``(input, weight, offset, mask, bias)``
BACKWARD_SCHEMA = f"(Tensor grad_out, {_ARGS}) -> (Tensor, Tensor, Tensor, Tensor, Tensor)"


def split_args(args: Sequence[Any]) -> tuple[DeformTensors, DeformParams]:
    """The op's positional arguments as the two structures."""
    n = len(DeformTensors._fields)
    return DeformTensors(*args[:n]), DeformParams(*args[n:])


def is_channels_last(t: Tensor) -> bool:
    return (
        t.dim() == 4
        and not t.is_contiguous()
        and t.is_contiguous(memory_format=torch.channels_last)
    )


def output_memory_format(input: Tensor) -> torch.memory_format:
    """The memory format of the output and input gradient (the input's, as torch convs)."""
    return torch.channels_last if is_channels_last(input) else torch.contiguous_format
