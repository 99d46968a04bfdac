"""Paddle's activation ops with the defaults of their 1.x op attributes, declared once.

``act='leaky_relu'`` in Paddle 1.x appends the ``leaky_relu`` op with its default
``alpha=0.02`` (PyTorch: 0.01); ``hard_sigmoid`` is ``clip(0.2 x + 0.5, 0, 1)``;
``softmax`` is over the **last** axis (W of an NCHW map); ``softplus`` is ``ln(1 + e^x)``
with no threshold; ``gelu`` is exact (erf).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..._args import fail
from .._errors import received

__all__ = ["ACTIVATIONS", "LAYERS", "PaddleActivation", "get_activation"]


def _thresholded_relu(x: Tensor, threshold: float) -> Tensor:
    return torch.where(x > threshold, x, torch.zeros_like(x))


def _soft_relu(x: Tensor, threshold: float) -> Tensor:
    return torch.log1p(torch.exp(x.clamp(-threshold, threshold)))


def _hard_sigmoid(x: Tensor, slope: float, offset: float) -> Tensor:
    return (x * slope + offset).clamp(0.0, 1.0)


def _stanh(x: Tensor, scale_a: float, scale_b: float) -> Tensor:
    return scale_b * torch.tanh(scale_a * x)


def _swish(x: Tensor, beta: float) -> Tensor:
    return x * torch.sigmoid(beta * x)


def _hard_swish(x: Tensor, threshold: float, scale: float, offset: float) -> Tensor:
    return x * (x + offset).clamp(0.0, threshold) / scale


def _softplus(x: Tensor) -> Tensor:
    return torch.logaddexp(x, torch.zeros_like(x))


def _tanh_shrink(x: Tensor) -> Tensor:
    return x - torch.tanh(x)


# name -> (function, Paddle 1.x op default attributes)
ACTIVATIONS: dict[str, tuple[Callable[..., Tensor], dict[str, Any]]] = {
    "relu": (F.relu, {}),
    "sigmoid": (torch.sigmoid, {}),
    "tanh": (torch.tanh, {}),
    "softmax": (F.softmax, {"dim": -1}),
    "leaky_relu": (F.leaky_relu, {"negative_slope": 0.02}),
    "relu6": (F.hardtanh, {"min_val": 0.0, "max_val": 6.0}),
    "elu": (F.elu, {"alpha": 1.0}),
    "gelu": (F.gelu, {"approximate": "none"}),
    "swish": (_swish, {"beta": 1.0}),
    "hard_swish": (_hard_swish, {"threshold": 6.0, "scale": 6.0, "offset": 3.0}),
    "hard_sigmoid": (_hard_sigmoid, {"slope": 0.2, "offset": 0.5}),
    "brelu": (F.hardtanh, {"min_val": 0.0, "max_val": 24.0}),
    "soft_relu": (_soft_relu, {"threshold": 40.0}),
    "stanh": (_stanh, {"scale_a": 2.0 / 3.0, "scale_b": 1.7159}),
    "thresholded_relu": (_thresholded_relu, {"threshold": 1.0}),
    "softplus": (_softplus, {}),
    "softsign": (F.softsign, {}),
    "logsigmoid": (F.logsigmoid, {}),
    "tanh_shrink": (_tanh_shrink, {}),
    "softshrink": (F.softshrink, {"lambd": 0.5}),
    "hard_shrink": (F.hardshrink, {"lambd": 0.5}),
    "exp": (torch.exp, {}),
    "abs": (torch.abs, {}),
    "square": (torch.square, {}),
    "sqrt": (torch.sqrt, {}),
    "rsqrt": (torch.rsqrt, {}),
    "log": (torch.log, {}),
    "reciprocal": (torch.reciprocal, {}),
    "ceil": (torch.ceil, {}),
    "floor": (torch.floor, {}),
    "cos": (torch.cos, {}),
    "sin": (torch.sin, {}),
}


class PaddleActivation(nn.Module):
    """One Paddle activation op with its default attributes (see :data:`ACTIVATIONS`)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        fn, attrs = ACTIVATIONS[name]
        self.name = name
        self.attrs = dict(attrs)
        self.fn = partial(fn, **self.attrs)

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x)

    def extra_repr(self) -> str:
        attrs = ", ".join(f"{k}={v!r}" for k, v in self.attrs.items())
        return f"{self.name!r}" + (f", {attrs}" if attrs else "")


#: name -> a factory of that activation's module (``activation_layers`` of ImgConvGroup)
LAYERS: dict[str, Callable[[], nn.Module]] = {
    name: partial(PaddleActivation, name) for name in ACTIVATIONS
}


def get_activation(act: Any, name: str = "act") -> PaddleActivation | None:
    """None or a Paddle activation name. A non-str raises Paddle's TypeError
    (``"<act> should be unicode or str"``, then the argument); an unknown name a
    ValueError listing the names."""
    if act is None:
        return None
    if not isinstance(act, str):
        raise TypeError(received(str(act) + " should be unicode or str", **{name: act}))
    if act not in ACTIVATIONS:
        fail(name, "None or a Paddle activation (" + ", ".join(ACTIVATIONS) + ")", act)
    return PaddleActivation(act)
