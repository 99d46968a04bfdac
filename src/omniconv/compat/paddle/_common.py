"""Paddle's argument helpers and error types, shared by the Paddle front-end."""

from __future__ import annotations

from typing import Any

import torch

from ..._args import as_int, fail
from .._errors import FrameworkAssertionError, received

__all__ = [
    "FLUID_ARG_NAMES",
    "PaddleAssertionError",
    "PaddleZeroDivisionError",
    "check_dtype_name",
    "check_groups",
    "check_use_cudnn",
    "convert_to_list",
    "unique_name",
]


#: Paddle 1.x's names of the omniconv.nn constructor arguments (``fluid.dygraph``,
#: ``fluid.layers``): an error names the argument the user wrote
FLUID_ARG_NAMES = {
    "in_channels": "num_channels",
    "out_channels": "num_filters",
    "kernel_size": "filter_size",
}


class PaddleAssertionError(FrameworkAssertionError):
    """Where Paddle uses ``assert cond, "message"``: the same words, catchable both as
    ``AssertionError`` (Paddle's type) and ``ValueError`` (omniconv's)."""


class PaddleZeroDivisionError(ZeroDivisionError, ValueError):
    """``groups=0``: Paddle's layers compute ``channels % groups`` and raise Python's
    ``ZeroDivisionError`` (Paddle's own tests expect it); this is that type and
    ``ValueError`` (omniconv's), with the argument added."""


def check_groups(
    groups: Any,
    channels: int | None = None,
    message: str = "",
    values: dict[str, Any] | None = None,
    zero_message: str = "integer modulo by zero",
) -> int:
    """Paddle's ``channels % groups != 0 -> ValueError(message)`` (its words, then
    ``values`` if its words lack them; skipped when ``channels`` is None), and
    ``groups=0`` a :class:`PaddleZeroDivisionError` (``zero_message``: Python's words for
    the operation Paddle's code makes); returns ``groups``."""
    if isinstance(groups, bool) or not isinstance(groups, int):
        fail("groups", "an int", groups, exc=TypeError)
    if groups == 0:
        raise PaddleZeroDivisionError(received(zero_message, groups=groups))
    if groups < 0:
        fail("groups", "a positive integer", groups)
    if channels is not None and channels % groups:
        raise ValueError(received(message, **values) if values else message)
    return groups


_counters: dict[str, int] = {}


def unique_name(prefix: str) -> str:
    """Paddle's ``unique_name.generate``: ``<prefix>_0``, ``<prefix>_1``, ... (one counter
    per prefix, per process), a dygraph layer's ``full_name()``."""
    n = _counters.get(prefix, 0)
    _counters[prefix] = n + 1
    return f"{prefix}_{n}"


def convert_to_list(value: Any, n: int, name: str) -> list[int]:
    """``paddle.fluid.layers.utils.convert_to_list`` with Paddle's messages. Stricter than
    Paddle's on one point: a bool, a float or a string is not an int (Paddle's ``int()``
    would take ``True`` as 1, ``2.5`` as 2 and ``"3"`` as 3); a bool is a ``TypeError``
    naming the argument, a non-integer entry Paddle's ``ValueError``."""
    if isinstance(value, bool):
        fail(name, f"an int or a list/tuple of {n} ints", value, exc=TypeError)
    scalar = as_int(value)
    if scalar is not None:
        return [scalar] * n
    try:
        items = list(value)
    except TypeError:
        raise ValueError(f"The {name}'s type must be list or tuple. Received: {value}") from None
    if len(items) != n:
        raise ValueError(f"The {name}'s length must be {n}. Received: {value}")
    out = []
    for v in items:
        item = as_int(v)
        if item is not None:
            out.append(item)
        else:
            raise ValueError(
                f"The {name}'s type must be a list or tuple of {n} {int} . Received: {value} "
                f"including element {v} of type {type(v)}"
            )
    return out


def check_use_cudnn(value: Any, exc: type[Exception] = ValueError) -> None:
    """Paddle's conv2d (ValueError) / pool2d (TypeError) check of ``use_cudnn``."""
    if not isinstance(value, bool):
        raise exc(f"Attr(use_cudnn) should be True or False. Received Attr(use_cudnn): {value}. ")


_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def check_dtype_name(dtype: Any, name: str = "dtype") -> torch.dtype:
    """``'float32'`` / ``'float64'`` (or the torch / numpy dtype) as a torch dtype."""
    if isinstance(dtype, torch.dtype) and dtype in _DTYPES.values():
        return dtype
    key = getattr(dtype, "__name__", None) if isinstance(dtype, type) else str(dtype)
    if key in _DTYPES:
        return _DTYPES[key]
    fail(
        name,
        "'float32' or 'float64'",
        dtype,
        exc=TypeError if not isinstance(dtype, str) else ValueError,
    )
