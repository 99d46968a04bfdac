"""Gluon's initialisers (``mxnet.init``), drawing from torch's RNG (``torch.manual_seed``).

``create(spec)`` turns a name (``'zeros'``, ``'xavier'``, ...), a dumped JSON
``'["xavier", {...}]'`` or an instance into an :class:`Initializer`; an initialiser is
called as ``init(desc_or_name, tensor)`` and fills ``tensor`` (Gluon's layout) in place.
"""

from __future__ import annotations

import json
import math
import numbers
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from ._errors import MXNetTypeError, MXNetValueError


def _real(value: Any, name: str, rule: str = "a number", minimum: float | None = None) -> float:
    """A real number (not a bool or a string) as a float, ``>= minimum`` when given:
    checked when the initialiser is made (MXNet fails when it runs)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise MXNetTypeError(f"`{name}` must be {rule}; received {name}={value!r}")
    if minimum is not None and not float(value) >= minimum:
        raise MXNetValueError(f"`{name}` must be {rule}; received {name}={value!r}")
    return float(value)


def _choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        rule = "one of " + ", ".join(repr(c) for c in choices)
        exc = MXNetValueError if isinstance(value, str) else MXNetTypeError
        raise exc(f"`{name}` must be {rule}; received {name}={value!r}")
    return value


__all__ = [
    "Bilinear",
    "Constant",
    "InitDesc",
    "Initializer",
    "MSRAPrelu",
    "Normal",
    "One",
    "Orthogonal",
    "Uniform",
    "Xavier",
    "Zero",
    "check_initializer",
    "create",
    "register",
]

_REGISTRY: dict[str, type[Initializer]] = {}


def register(klass: type[Initializer]) -> type[Initializer]:
    """Register an initialiser under its lower-case class name (and its ``aliases``)."""
    for name in (klass.__name__.lower(), *klass.aliases):
        _REGISTRY[name] = klass
    return klass


class InitDesc(str):
    """A parameter name with attributes (``{'__init__': init}``), as in MXNet."""

    attrs: dict[str, Any]
    global_init: Initializer | None

    def __new__(
        cls, name: str, attrs: dict[str, Any] | None = None, global_init: Initializer | None = None
    ) -> InitDesc:
        obj = super().__new__(cls, name)
        obj.attrs = attrs or {}
        obj.global_init = global_init
        return obj


class Initializer:
    """Base class: ``_init_weight(name, tensor)`` fills ``tensor`` in place."""

    aliases: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs

    def dumps(self) -> str:
        """``'["name", {kwargs}]'``, the string MXNet stores in a symbol's ``__init__``."""
        return json.dumps([self.__class__.__name__.lower(), self._kwargs])

    def __call__(self, desc: str, arr: Tensor) -> None:
        init = getattr(desc, "attrs", {}).get("__init__", "")
        with torch.no_grad():
            if init:
                create(init)._init_weight(desc, arr)
            else:
                self._init_weight(desc, arr)

    def _init_weight(self, name: str, arr: Tensor) -> None:
        raise NotImplementedError("Must override it")

    def __repr__(self) -> str:
        return self.dumps()


@register
class Zero(Initializer):
    """All zeros (``'zeros'``, ``'zero'``)."""

    aliases = ("zeros",)

    def _init_weight(self, name: str, arr: Tensor) -> None:
        arr.zero_()


@register
class One(Initializer):
    """All ones (``'ones'``, ``'one'``)."""

    aliases = ("ones",)

    def _init_weight(self, name: str, arr: Tensor) -> None:
        arr.fill_(1.0)


@register
class Constant(Initializer):
    """A constant (a number or an array broadcast to the parameter)."""

    def __init__(self, value: Any) -> None:
        if isinstance(value, str | bool) or not isinstance(
            value, numbers.Real | np.ndarray | list | tuple | Tensor
        ):
            raise MXNetTypeError(
                f"`value` must be a number or an array; received value={value!r:.80}"
            )
        super().__init__(value=value)
        self.value = value

    def _init_weight(self, name: str, arr: Tensor) -> None:
        value = self.value
        if isinstance(value, int | float):
            arr.fill_(value)
        else:
            arr.copy_(torch.as_tensor(np.asarray(value)).to(arr.dtype).expand_as(arr))


@register
class Uniform(Initializer):
    """U[-scale, scale) (MXNet's default, scale 0.07)."""

    def __init__(self, scale: float = 0.07) -> None:
        _real(scale, "scale")
        super().__init__(scale=scale)
        self.scale = scale

    def _init_weight(self, name: str, arr: Tensor) -> None:
        arr.uniform_(-self.scale, self.scale)


@register
class Normal(Initializer):
    """N(0, sigma^2) (sigma 0.01)."""

    def __init__(self, sigma: float = 0.01) -> None:
        _real(sigma, "sigma", "a non-negative number (the standard deviation)", 0.0)
        super().__init__(sigma=sigma)
        self.sigma = sigma

    def _init_weight(self, name: str, arr: Tensor) -> None:
        arr.normal_(0.0, self.sigma)


@register
class Orthogonal(Initializer):
    """An orthogonal matrix (SVD of a random ``(O, prod(rest))`` matrix) times ``scale``."""

    def __init__(self, scale: float = 1.414, rand_type: str = "uniform") -> None:
        _real(scale, "scale")
        _choice(rand_type, "rand_type", ("uniform", "normal"))
        super().__init__(scale=scale, rand_type=rand_type)
        self.scale = scale
        self.rand_type = rand_type

    def _init_weight(self, name: str, arr: Tensor) -> None:
        nout = arr.shape[0]
        nin = math.prod(arr.shape[1:])
        tmp = torch.empty(nout, nin, dtype=torch.float64)
        if self.rand_type == "uniform":
            tmp.uniform_(-1.0, 1.0)
        else:
            tmp.normal_(0.0, 1.0)
        u, _, v = torch.linalg.svd(tmp, full_matrices=False)
        res = u if u.shape == tmp.shape else v
        arr.copy_((self.scale * res).reshape(arr.shape))


@register
class Xavier(Initializer):
    """Xavier/Glorot: ``fan_in = shape[1]·prod(shape[2:])``, ``fan_out = shape[0]·prod(shape[2:])``
    (MXNet's rule, applied to the Gluon layout as it is, also for an NHWC weight)."""

    def __init__(
        self, rnd_type: str = "uniform", factor_type: str = "avg", magnitude: float = 3
    ) -> None:
        _choice(rnd_type, "rnd_type", ("uniform", "gaussian"))
        _choice(factor_type, "factor_type", ("avg", "in", "out"))
        _real(magnitude, "magnitude", "a non-negative number", 0.0)
        super().__init__(rnd_type=rnd_type, factor_type=factor_type, magnitude=magnitude)
        self.rnd_type = rnd_type
        self.factor_type = factor_type
        self.magnitude = float(magnitude)

    def _init_weight(self, name: str, arr: Tensor) -> None:
        shape = tuple(arr.shape)
        if len(shape) < 2:
            raise ValueError(
                f"Xavier initializer cannot be applied to vector {name}. It requires at least 2D."
            )
        hw_scale = float(math.prod(shape[2:])) if len(shape) > 2 else 1.0
        fan_in, fan_out = shape[1] * hw_scale, shape[0] * hw_scale
        factors = {"avg": (fan_in + fan_out) / 2.0, "in": fan_in, "out": fan_out}
        if self.factor_type not in factors:
            raise ValueError("Incorrect factor type")
        scale = math.sqrt(self.magnitude / factors[self.factor_type])
        if self.rnd_type == "uniform":
            arr.uniform_(-scale, scale)
        elif self.rnd_type == "gaussian":
            arr.normal_(0.0, scale)
        else:
            raise ValueError("Unknown random type")


@register
class MSRAPrelu(Xavier):
    """He/MSRA: Gaussian Xavier with magnitude ``2 / (1 + slope²)``."""

    def __init__(self, factor_type: str = "avg", slope: float = 0.25) -> None:
        _real(slope, "slope")
        super().__init__("gaussian", factor_type, 2.0 / (1 + slope**2))
        self._kwargs = {"factor_type": factor_type, "slope": slope}


@register
class Bilinear(Initializer):
    """Bilinear upsampling kernel (for a deconvolution weight)."""

    def _init_weight(self, name: str, arr: Tensor) -> None:
        shape = tuple(arr.shape)
        f = math.ceil(shape[3] / 2.0)
        c = (2 * f - 1 - f % 2) / (2.0 * f)
        idx = np.arange(math.prod(shape))
        x = idx % shape[3]
        y = (idx // shape[3]) % shape[2]
        weight = (1 - np.abs(x / f - c)) * (1 - np.abs(y / f - c))
        arr.copy_(torch.as_tensor(weight.astype(np.float32).reshape(shape)))


_REGISTRY["zero"] = Zero
_REGISTRY["one"] = One


def create(spec: Any) -> Initializer:
    """An :class:`Initializer` from an instance, a registered name or a dumped JSON string."""
    if isinstance(spec, Initializer):
        return spec
    if isinstance(spec, str):
        if spec.startswith("["):
            name, kwargs = json.loads(spec)
            return _REGISTRY[name.lower()](**kwargs)
        klass = _REGISTRY.get(spec.lower())
        if klass is None:
            raise ValueError(
                f"Cannot find initializer {spec!r}. Valid names are: "
                f"{', '.join(sorted(_REGISTRY))}; received init={spec!r}"
            )
        return klass()
    raise TypeError(
        f"`init` must be an Initializer or the name of one; received init=<{type(spec).__name__}>"
    )


def check_initializer(value: Any, name: str) -> None:
    """``None``, an :class:`Initializer`, a registered name or a dumped JSON spec, checked
    at construction (MXNet fails only at ``initialize()``): an ``MXNetValueError`` /
    ``MXNetTypeError`` naming the argument."""
    if value is None or isinstance(value, Initializer):
        return
    rule = "None, an Initializer or one of " + ", ".join(repr(k) for k in sorted(_REGISTRY))
    if not isinstance(value, str):
        raise MXNetTypeError(f"`{name}` must be {rule}; received {name}=<{type(value).__name__}>")
    try:
        create(value)
    except (ValueError, TypeError, KeyError, IndexError) as err:
        raise MXNetValueError(f"`{name}` must be {rule}; received {name}={value!r}") from err
