"""Tensor checks shared by the functionals (the boundary where bad input is caught)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .._args import check_fits, fail, fits, type_name

__all__ = [
    "check_allocation",
    "check_bias",
    "check_float_tensor",
    "check_input_and_weight",
    "check_like",
    "check_output_fits",
    "check_shape",
    "check_weight",
]

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


def check_input_and_weight(input: Any, weight: Any) -> tuple[Tensor, Tensor]:
    """A 4-D floating-point ``input`` and a non-empty 4-D ``weight`` of its dtype and device."""
    input = check_float_tensor(input, "input", 4)
    weight = check_weight(weight)
    check_like(weight, "weight", input, "input")
    return input, weight


def check_bias(bias: Any, input: Tensor, c_out: int, why: str) -> Tensor | None:
    """None, or a ``(c_out,)`` floating-point tensor of ``input``'s dtype and device."""
    if bias is None:
        return None
    bias = check_float_tensor(bias, "bias", 1)
    check_like(bias, "bias", input, "input")
    check_shape(bias, "bias", (c_out,), why)
    return bias


def check_output_fits(
    input: Tensor, kernel: Any, stride: Any, padding: Any, dilation: Any, out: tuple[int, int]
) -> None:
    """The output size ``out`` (from :mod:`omniconv._shapes`) is at least 1x1."""
    if out[0] < 1 or out[1] < 1:
        fail(
            "input.shape",
            f"large enough for a {kernel[0]}x{kernel[1]} kernel with stride={stride}, "
            f"padding={padding}, dilation={dilation} (output would be {out[0]}x{out[1]})",
            tuple(input.shape),
        )


def check_allocation(like: Tensor, *tensors: tuple[tuple[int, ...], str, str, Any]) -> None:
    """Tensors ``(shape, what, name, value)`` of ``like``'s dtype and device can be
    allocated (before they are): else a ``ValueError`` / ``MemoryError`` naming the argument
    ``name`` that makes one large (:func:`omniconv._args.check_fits`; a ``torch.Size``
    value is shown as a tuple). Skipped while ``torch.compile`` traces (the sizes are
    symbolic there; the eager call that a compiled graph replays was checked)."""
    if torch.compiler.is_compiling():
        return
    itemsize, device_type = like.element_size(), like.device.type
    for shape, what, name, value in tensors:
        if not fits(shape, itemsize, device_type):
            shown = tuple(value) if isinstance(value, torch.Size) else value
            check_fits(shape, itemsize, device_type, what, name, shown)
