"""Activation lookup shared by the modules: a name, a callable, or None."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import Tensor, nn

from .._args import fail

__all__ = ["ACTIVATIONS", "get_activation"]

# name -> factory; PyTorch defaults (framework front-ends pass their own modules)
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "softrelu": nn.Softplus,  # log(1 + e^x), MXNet's name
    "softplus": nn.Softplus,
    "softsign": nn.Softsign,
    "leaky_relu": nn.LeakyReLU,  # slope 0.01
    "relu6": nn.ReLU6,
    "gelu": nn.GELU,  # exact (erf)
    "silu": nn.SiLU,
    "swish": nn.SiLU,
    "elu": nn.ELU,
    "hard_sigmoid": nn.Hardsigmoid,  # relu6(x + 3) / 6
    "hard_swish": nn.Hardswish,
}


class _Lambda(nn.Module):
    """Wraps a plain callable so that it can live in a module tree."""

    def __init__(self, fn: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x)

    def extra_repr(self) -> str:
        return getattr(self.fn, "__qualname__", repr(self.fn))


def get_activation(
    activation: Any,
    name: str = "activation",
    table: Mapping[str, Callable[[], nn.Module]] = ACTIVATIONS,
) -> nn.Module | None:
    """None, a name in ``table`` (default :data:`ACTIVATIONS`; a new module each call), an
    ``nn.Module`` (itself) or another callable (wrapped in a module)."""
    if activation is None or isinstance(activation, nn.Module):
        return activation
    if isinstance(activation, str):
        factory = table.get(activation)
        if factory is None:
            fail(name, "None, a callable or one of " + ", ".join(map(repr, table)), activation)
        return factory()
    if callable(activation):
        return _Lambda(activation)
    fail(name, "None, a callable or an activation name", activation, exc=TypeError)
