"""The eager ``F`` of ``hybrid_forward(F, x, ...)``: MXNet's operators on torch tensors.

Convolution is :func:`omniconv.functional.conv2d`; the activations come from the one
Gluon table, :data:`ACTIVATIONS` (anything else is MXNet's "Invalid Input" error).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as TF
from torch import Tensor

from ... import functional as OF
from .._errors import received
from ._errors import MXNetValueError

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "Convolution",
    "Flatten",
    "broadcast_add",
    "broadcast_div",
    "broadcast_mul",
    "broadcast_sub",
    "check_act_type",
    "concat",
    "elemwise_add",
    "elemwise_mul",
    "elemwise_sub",
    "flatten",
    "relu",
    "sigmoid",
    "softsign",
    "tanh",
]

# MXNet 1.9.1's Activation act_type enum (activation-inl.h), the only ones accepted
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "softrelu": TF.softplus,  # log(1 + e^x)
    "softsign": TF.softsign,
}


def check_act_type(act_type: Any, arg: str | None = None) -> Callable[[Tensor], Tensor]:
    """The activation named ``act_type``, or MXNet's "Invalid Input" error (followed by
    the layer's argument ``arg`` and its value, when given)."""
    fn = ACTIVATIONS.get(act_type) if isinstance(act_type, str) else None
    if fn is None:
        valid = ", ".join(f"'{k}'" for k in sorted(ACTIVATIONS))
        message = (
            f"Invalid Input: '{act_type}', valid values are: {{{valid}}}, in operator "
            f'Activation(name="", act_type="{act_type}")'
        )
        raise MXNetValueError(message if arg is None else received(message, **{arg: act_type}))
    return fn


def Activation(data: Tensor, act_type: str, name: str | None = None) -> Tensor:
    return check_act_type(act_type)(data)


def Convolution(
    data: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    *,
    kernel: Any,
    stride: Any,
    dilate: Any,
    pad: Any,
    num_filter: int,
    num_group: int,
    no_bias: bool,
    layout: str,
    name: str | None = None,
) -> Tensor:
    return OF.conv2d(
        data, weight, None if no_bias else bias, stride, tuple(pad), dilate, num_group,
        layout=layout,
    )  # fmt: skip


def relu(data: Tensor, name: str | None = None) -> Tensor:
    return torch.relu(data)


def sigmoid(data: Tensor, name: str | None = None) -> Tensor:
    return torch.sigmoid(data)


def tanh(data: Tensor, name: str | None = None) -> Tensor:
    return torch.tanh(data)


def softsign(data: Tensor, name: str | None = None) -> Tensor:
    return TF.softsign(data)


def concat(*data: Tensor, dim: int = 1, name: str | None = None) -> Tensor:
    return torch.cat(data, dim=dim)


def Flatten(data: Tensor, name: str | None = None) -> Tensor:
    return data.reshape(data.shape[0], -1)


flatten = Flatten


def _same_shape(op: str, lhs: Tensor, rhs: Tensor) -> None:
    if lhs.shape != rhs.shape:
        raise MXNetValueError(f"{op}: shapes {tuple(lhs.shape)} and {tuple(rhs.shape)} differ")


def elemwise_add(lhs: Tensor, rhs: Tensor, name: str | None = None) -> Tensor:
    _same_shape("elemwise_add", lhs, rhs)
    return lhs + rhs


def elemwise_sub(lhs: Tensor, rhs: Tensor, name: str | None = None) -> Tensor:
    _same_shape("elemwise_sub", lhs, rhs)
    return lhs - rhs


def elemwise_mul(lhs: Tensor, rhs: Tensor, name: str | None = None) -> Tensor:
    _same_shape("elemwise_mul", lhs, rhs)
    return lhs * rhs


def broadcast_add(lhs: Tensor, rhs: Tensor, name: str | None = None) -> Tensor:
    return lhs + rhs


def broadcast_sub(lhs: Tensor, rhs: Tensor, name: str | None = None) -> Tensor:
    return lhs - rhs


def broadcast_mul(lhs: Tensor, rhs: Tensor, name: str | None = None) -> Tensor:
    return lhs * rhs


def broadcast_div(lhs: Tensor, rhs: Tensor, name: str | None = None) -> Tensor:
    return lhs / rhs
