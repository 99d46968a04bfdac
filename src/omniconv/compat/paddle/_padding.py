"""Paddle's conv argument rules, shared by the fluid (1.x) and ``paddle.nn`` (2.x/3.x)
conv layers and functionals: padding forms, ``data_format``, the input dtype check.

A padding becomes ``(algorithm, (top, bottom, left, right))`` with ``algorithm`` one of
Paddle's ``'EXPLICIT'``, ``'SAME'``, ``'VALID'``. Under ``'SAME'`` Paddle ignores the
dilation (its kernels set it to 1, for ``conv2d`` and ``conv2d_transpose`` alike); the
conv layers pass dilation 1 to omniconv then.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..._args import Pad4
from .._errors import received
from ._common import convert_to_list

__all__ = [
    "DATA_FORMATS",
    "check_data_format",
    "check_float_input",
    "fluid_padding",
    "nn_padding",
]

DATA_FORMATS = ("NCHW", "NHWC")

_DTYPE_NAMES = {
    torch.float16: "float16",
    torch.bfloat16: "uint16",  # Paddle's name for bfloat16 in its dtype checks
    torch.float32: "float32",
    torch.float64: "float64",
}


def check_data_format(data_format: Any, message: str) -> str:
    """``data_format`` is ``'NCHW'`` or ``'NHWC'``; else ``ValueError(message)`` (Paddle's
    words, formatted with the value) and the value received."""
    if data_format not in DATA_FORMATS:
        raise ValueError(received(message.format(data_format), data_format=data_format))
    return str(data_format)


def dtype_name(dtype: torch.dtype) -> str:
    """Paddle's name of a torch dtype (``float32``, ``int32``, ...)."""
    return _DTYPE_NAMES.get(dtype, str(dtype).removeprefix("torch."))


def check_float_input(
    value: Any,
    name: str,
    op: str,
    allowed: tuple[torch.dtype, ...] = (torch.float32, torch.float64),
    expected: str | None = None,
) -> Tensor:
    """Paddle's ``check_variable_and_dtype``: a tensor (TypeError ``"The type of '<name>'
    in <op> must be Tensor, but received <class ...>."``) of an allowed dtype (TypeError
    ``"The data type of '<name>' in <op> must be <expected>, but received int32."``;
    ``expected`` defaults to the list of Paddle's dtype names). Checked before any shape,
    as Paddle does."""
    if not isinstance(value, Tensor):
        raise TypeError(f"The type of '{name}' in {op} must be Tensor, but received {type(value)}.")
    if value.dtype not in allowed:
        rule = expected if expected is not None else str([dtype_name(d) for d in allowed])
        raise TypeError(
            f"The data type of '{name}' in {op} must be {rule}, but received "
            f"{dtype_name(value.dtype)}."
        )
    return value


def _string_padding(value: str) -> tuple[str, Pad4]:
    up = value.upper()
    if up not in ("SAME", "VALID"):
        raise ValueError(
            received(f"Unknown padding: '{up}'. It can only be 'SAME' or 'VALID'.", padding=value)
        )
    return up, (0, 0, 0, 0)


def _nested(value: Any, channel_last: bool) -> list[int]:
    """``[[0, 0], [0, 0], [t, b], [l, r]]`` (NCHW) / ``[[0, 0], [t, b], [l, r], [0, 0]]``
    (NHWC) -> ``[t, b, l, r]``; non-zero batch or channel pads are refused."""
    outer = (value[0], value[3]) if channel_last else (value[0], value[1])
    if any(list(p) != [0, 0] for p in outer):
        raise ValueError(
            f"Non-zero padding({value}) in the batch or channel dimensions is not supported."
        )
    inner = value[1:3] if channel_last else value[2:4]
    return [v for pair in inner for v in pair]


def fluid_padding(value: Any, data_format: str = "NCHW") -> tuple[str, Pad4]:
    """``fluid.layers.conv2d`` / ``conv2d_transpose`` (1.8): ``'SAME'`` / ``'VALID'`` (any
    case), a flat 4-list ``[t, b, l, r]``, a nested 4-list with the batch and channel pairs
    zero, or ``convert_to_list(padding, 2)`` (an int or a pair)."""
    if isinstance(value, str):
        return _string_padding(value)
    if isinstance(value, list | tuple) and len(value) == 4:
        if isinstance(value[0], list | tuple):
            value = _nested(value, data_format == "NHWC")
        t, b, lf, r = convert_to_list(value, 4, "padding")
        return "EXPLICIT", (t, b, lf, r)
    ph, pw = convert_to_list(value, 2, "padding")
    return "EXPLICIT", (ph, ph, pw, pw)


def nn_padding(value: Any, data_format: str = "NCHW") -> tuple[str, Pad4]:
    """``paddle.nn`` / ``paddle.nn.functional`` (3.3.1 ``_update_padding_nd``): a string,
    a nested ``2 + 2``-list, a flat 4-list or 2-list of ints, or an int; every pad >= 0
    (``"Invalid padding, all value should be larger than or equal to 0, ..."``)."""
    if isinstance(value, str):
        return _string_padding(value)
    if isinstance(value, list | tuple):
        if len(value) == 4 and isinstance(value[0], list | tuple):
            pads = convert_to_list(_nested(value, data_format == "NHWC"), 4, "padding")
        elif len(value) == 4 and isinstance(value[0], int):
            pads = convert_to_list(value, 4, "padding")
        elif len(value) == 2 and isinstance(value[0], int):
            ph, pw = convert_to_list(value, 2, "padding")
            pads = [ph, ph, pw, pw]
        else:
            raise ValueError(f"In valid padding: {value}")
    else:
        ph, pw = convert_to_list(value, 2, "padding")
        pads = [ph, ph, pw, pw]
    if min(pads) < 0:
        shown = pads if pads[0] != pads[1] or pads[2] != pads[3] else [pads[0], pads[2]]
        raise ValueError(
            f"Invalid padding, all value should be larger than or equal to 0, but received: {shown}"
        )
    return "EXPLICIT", (pads[0], pads[1], pads[2], pads[3])
