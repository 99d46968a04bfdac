"""Tensor checks shared by the functionals (the boundary where bad input is caught)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .._args import fail, type_name

__all__ = ["check_float_tensor", "check_like", "check_shape", "check_weight"]

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_float_tensor(value: Any, name: str, ndim: int) -> Tensor:
    """A floating-point tensor with ``ndim`` dimensions."""
    if not isinstance(value, Tensor):
        fail(name, "a torch.Tensor", type_name(value), exc=TypeError)
    if value.dtype not in _FLOAT_DTYPES:
        fail(f"{name}.dtype", "a floating-point dtype", value.dtype, exc=TypeError)
    if value.dim() != ndim:
        fail(f"{name}.shape", f"{ndim}-D", tuple(value.shape))
    return value


def check_weight(value: Any, name: str = "weight") -> Tensor:
    """A 4-D floating-point weight with no zero-size dimension."""
    value = check_float_tensor(value, name, 4)
    if 0 in value.shape:
        fail(f"{name}.shape", "non-empty in every dimension", tuple(value.shape))
    return value


def check_like(value: Tensor, name: str, ref: Tensor, ref_name: str) -> None:
    """Same device as ``ref``, and the same dtype unless autocast is on for that device
    (then the op casts its arguments to one dtype itself, as torch's convs do)."""
    if value.dtype != ref.dtype and not torch.is_autocast_enabled(ref.device.type):
        fail(f"{name}.dtype", f"{ref.dtype} (the dtype of {ref_name})", value.dtype, exc=TypeError)
    if value.device != ref.device:
        fail(f"{name}.device", f"{ref.device} (the device of {ref_name})", value.device)


def check_shape(value: Tensor, name: str, expected: tuple[int, ...], why: str) -> None:
    """Exactly ``expected``; ``why`` explains where the expectation comes from."""
    if tuple(value.shape) != tuple(expected):
        fail(f"{name}.shape", f"{tuple(expected)} ({why})", tuple(value.shape))
