"""Paddle's initialisers and ``ParamAttr`` (``fluid.initializer``, ``fluid.ParamAttr``).

Every initialiser is a callable ``init(tensor, layer=None)`` filling ``tensor`` in place
(the tensor in Paddle's layout, which for every Paddle layer here is also torch's), so
it plugs straight into :class:`omniconv.compat._frontend.FrontendMixin` tables. Fans
follow Paddle's ``_compute_fans``: for a ``[d0, d1, *k]`` tensor ``fan_in = d1 * prod(k)``
and ``fan_out = d0 * prod(k)`` (applied as-is to the transposed-conv layout).
A non-zero ``seed`` draws from a private ``torch.Generator`` seeded with it (repeatable);
``seed=0`` (Paddle's default: the program's seed) draws from torch's global generator.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..._args import as_int, check_bool, fail, type_name
from .._errors import received
from ._common import PaddleAssertionError

__all__ = [
    "MSRA",
    "Assign",
    "Constant",
    "ConstantInitializer",
    "Initializer",
    "MSRAInitializer",
    "Normal",
    "NormalInitializer",
    "NumpyArrayInitializer",
    "ParamAttr",
    "TruncatedNormal",
    "TruncatedNormalInitializer",
    "Uniform",
    "UniformInitializer",
    "Xavier",
    "XavierInitializer",
    "apply_param_attrs",
    "conv_normal",
    "initializers_of",
    "to_param_attr",
]


def compute_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """Paddle's ``_compute_fans``: ``(fan_in, fan_out)``."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _real(value: Any, name: str) -> float:
    """A real number (an int or a float, not a bool or a string), as a float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        fail(name, "a number", value, exc=TypeError)
    return float(value)


def _seed(value: Any) -> int:
    seed = as_int(value)
    if seed is None:
        fail("seed", "an int (0: the global RNG)", value, exc=TypeError)
    return seed


def _fan(value: Any, name: str) -> float | None:
    if value is None:
        return None
    fan = _real(value, name)
    if not fan > 0:
        fail(name, "None or a positive number", value)
    return fan


class Initializer:
    """Base class: ``init(tensor, layer=None)`` fills ``tensor`` in place."""

    seed: int = 0

    def _generator(self, tensor: Tensor) -> torch.Generator | None:
        if not self.seed:
            return None
        return torch.Generator(device=tensor.device).manual_seed(int(self.seed))

    def __call__(self, tensor: Tensor, layer: nn.Module | None = None) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k != "value")
        return f"{type(self).__name__}({fields})"


class Constant(Initializer):
    def __init__(self, value: float = 0.0, force_cpu: bool = False) -> None:
        self.value_ = _real(value, "value")

    def __call__(self, tensor: Tensor, layer: nn.Module | None = None) -> None:
        with torch.no_grad():
            tensor.fill_(self.value_)


class Uniform(Initializer):
    def __init__(self, low: float = -1.0, high: float = 1.0, seed: int = 0) -> None:
        self.low, self.high, self.seed = _real(low, "low"), _real(high, "high"), _seed(seed)
        if self.high < self.low:  # Paddle: assert high >= low
            raise PaddleAssertionError(received("high must be >= low", low=low, high=high))

    def __call__(self, tensor: Tensor, layer: nn.Module | None = None) -> None:
        with torch.no_grad():
            tensor.uniform_(self.low, self.high, generator=self._generator(tensor))


def _normal_args(loc: Any, scale: Any, seed: Any) -> tuple[float, float, int]:
    loc_, scale_ = _real(loc, "loc"), _real(scale, "scale")
    if scale_ < 0:
        fail("scale", "a non-negative number (the standard deviation)", scale)
    return loc_, scale_, _seed(seed)


class Normal(Initializer):
    def __init__(self, loc: float = 0.0, scale: float = 1.0, seed: int = 0) -> None:
        self.loc, self.scale, self.seed = _normal_args(loc, scale, seed)

    def __call__(self, tensor: Tensor, layer: nn.Module | None = None) -> None:
        with torch.no_grad():
            tensor.normal_(self.loc, self.scale, generator=self._generator(tensor))


class TruncatedNormal(Initializer):
    """Normal truncated at two standard deviations (re-drawn), as Paddle's."""

    def __init__(self, loc: float = 0.0, scale: float = 1.0, seed: int = 0) -> None:
        self.loc, self.scale, self.seed = _normal_args(loc, scale, seed)

    def __call__(self, tensor: Tensor, layer: nn.Module | None = None) -> None:
        lo, hi = self.loc - 2 * self.scale, self.loc + 2 * self.scale
        with torch.no_grad():
            nn.init.trunc_normal_(
                tensor, self.loc, self.scale, lo, hi, generator=self._generator(tensor)
            )


class Xavier(Initializer):
    """Glorot: uniform ``±sqrt(6/(fan_in+fan_out))`` or normal ``sqrt(2/(fan_in+fan_out))``."""

    def __init__(
        self,
        uniform: bool = True,
        fan_in: float | None = None,
        fan_out: float | None = None,
        seed: int = 0,
    ) -> None:
        self.uniform = check_bool(uniform, "uniform")
        self.fan_in, self.fan_out = _fan(fan_in, "fan_in"), _fan(fan_out, "fan_out")
        self.seed = _seed(seed)

    def __call__(self, tensor: Tensor, layer: nn.Module | None = None) -> None:
        fans = compute_fans(tuple(tensor.shape))
        f_in = fans[0] if self.fan_in is None else self.fan_in
        f_out = fans[1] if self.fan_out is None else self.fan_out
        gen = self._generator(tensor)
        with torch.no_grad():
            if self.uniform:
                limit = math.sqrt(6.0 / (f_in + f_out))
                tensor.uniform_(-limit, limit, generator=gen)
            else:
                tensor.normal_(0.0, math.sqrt(2.0 / (f_in + f_out)), generator=gen)


class MSRA(Initializer):
    """He/Kaiming: uniform ``±sqrt(6/fan_in)`` or normal ``sqrt(2/fan_in)``."""

    def __init__(self, uniform: bool = True, fan_in: float | None = None, seed: int = 0) -> None:
        self.uniform, self.fan_in = check_bool(uniform, "uniform"), _fan(fan_in, "fan_in")
        self.seed = _seed(seed)

    def __call__(self, tensor: Tensor, layer: nn.Module | None = None) -> None:
        f_in = compute_fans(tuple(tensor.shape))[0] if self.fan_in is None else self.fan_in
        gen = self._generator(tensor)
        with torch.no_grad():
            if self.uniform:
                limit = math.sqrt(6.0 / f_in)
                tensor.uniform_(-limit, limit, generator=gen)
            else:
                tensor.normal_(0.0, math.sqrt(2.0 / f_in), generator=gen)


class NumpyArrayInitializer(Initializer):
    """Copies ``value`` (same shape as the parameter)."""

    def __init__(self, value: Any) -> None:
        if isinstance(value, Tensor):
            value = value.detach().cpu().numpy()
        if not isinstance(value, np.ndarray):
            fail("value", "a numpy array", type_name(value), exc=TypeError)
        self.value = value

    def __call__(self, tensor: Tensor, layer: nn.Module | None = None) -> None:
        if tuple(self.value.shape) != tuple(tensor.shape):
            fail(
                "value.shape",
                f"the parameter's shape {tuple(tensor.shape)}",
                tuple(self.value.shape),
            )
        with torch.no_grad():
            tensor.copy_(torch.as_tensor(self.value))

    def __repr__(self) -> str:
        return f"NumpyArrayInitializer(shape={tuple(self.value.shape)})"


Assign = NumpyArrayInitializer
ConstantInitializer = Constant
UniformInitializer = Uniform
NormalInitializer = Normal
TruncatedNormalInitializer = TruncatedNormal
XavierInitializer = Xavier
MSRAInitializer = MSRA


class ParamAttr:
    """``fluid.ParamAttr``: the name, initialiser and training options of one parameter.

    ``name``: the parameter's Paddle name (its ``state_dict`` key inside a
    :class:`~omniconv.compat.paddle.Program`; two layers asking for one name share the
    parameter). ``initializer``: any :class:`Initializer` (or a callable
    ``init(tensor, layer)``). ``trainable=False`` sets ``requires_grad=False``.
    ``learning_rate`` and ``regularizer`` are kept on the parameter as
    ``param.optimize_attr`` / ``param.regularizer`` (see ``Program.param_groups``).
    """

    def __init__(
        self,
        name: str | None = None,
        initializer: Any = None,
        learning_rate: float = 1.0,
        regularizer: Any = None,
        trainable: bool = True,
        do_model_average: bool = True,
        need_clip: bool = True,
    ) -> None:
        if name is not None and not isinstance(name, str):
            fail("name", "None or a str", type_name(name), exc=TypeError)
        if initializer is not None and not callable(initializer):
            fail("initializer", "None or an Initializer", type_name(initializer), exc=TypeError)
        self.name = name
        self.initializer = initializer
        self.learning_rate = _real(learning_rate, "learning_rate")
        self.regularizer = regularizer
        self.trainable = check_bool(trainable, "trainable")
        self.do_model_average = do_model_average
        self.need_clip = need_clip

    def __repr__(self) -> str:
        return (
            f"ParamAttr(name={self.name!r}, initializer={self.initializer!r}, "
            f"learning_rate={self.learning_rate}, trainable={self.trainable})"
        )


def to_param_attr(attr: Any, name: str = "param_attr") -> ParamAttr | None:
    """Paddle's ``ParamAttr._to_attr``: None -> default, str -> ParamAttr(name=str),
    an Initializer -> ParamAttr(initializer=...), False -> None (no parameter)."""
    if attr is None or attr is True:
        return ParamAttr()
    if attr is False:
        return None
    if isinstance(attr, ParamAttr):
        return attr
    if isinstance(attr, str):
        return ParamAttr(name=attr)
    if isinstance(attr, Initializer):
        return ParamAttr(initializer=attr)
    fail(name, "None, False, a str, an Initializer or a ParamAttr", type_name(attr), exc=TypeError)


def apply_attr(param: Tensor | None, attr: ParamAttr | None) -> None:
    """Record ``trainable`` / ``learning_rate`` / ``regularizer`` on a parameter."""
    if param is None or attr is None:
        return
    param.requires_grad_(attr.trainable)
    param.optimize_attr = {"learning_rate": attr.learning_rate}  # type: ignore[attr-defined]
    param.regularizer = attr.regularizer  # type: ignore[attr-defined]


def initializers_of(attrs: dict[str, ParamAttr | None]) -> dict[str, Any]:
    """``{parameter: the ParamAttr's initializer}`` (the layer's ``initializers=`` overrides)."""
    return {k: a.initializer for k, a in attrs.items() if a is not None}


def apply_param_attrs(module: nn.Module, attrs: dict[str, ParamAttr | None]) -> None:
    """Each ``ParamAttr``'s training options on the module's parameter of that name."""
    for name, attr in attrs.items():
        apply_attr(getattr(module, name, None), attr)


def conv_normal(tensor: Tensor, layer: nn.Module | None = None) -> None:
    """Paddle's default conv weight init: ``Normal(0, sqrt(2 / (kh * kw * C_in)))`` with
    the **full** input channel count (``filter_elem_num``), also when ``groups > 1``
    (``layer.in_channels``; without a layer, ``tensor.shape[1]``)."""
    kh, kw = tensor.shape[-2:]
    c_in = int(getattr(layer, "in_channels", tensor.shape[1]))
    with torch.no_grad():
        tensor.normal_(0.0, math.sqrt(2.0 / (kh * kw * c_in)))
