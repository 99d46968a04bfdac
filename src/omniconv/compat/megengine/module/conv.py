"""``megengine.module.Conv2d`` over :class:`omniconv.nn.Conv2d`.

The parameters have MegEngine's shapes, as MegEngine code reads and writes them:
``weight`` ``(G, O/G, I/G, kh, kw)`` when ``groups > 1`` (else ``(O, I, kh, kw)``) and
``bias`` ``(1, O, 1, 1)``; so ``m.weight``, ``named_parameters()``, ``state_dict()``,
optimisers and initialisers all see those. ``forward`` hands the functional their torch
layout, a free reshape (``param_views`` declares the two layouts, which the state-dict
importers use too).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, cast

from torch import Tensor, nn

from ...._args import check_positive_int
from ....nn import Conv2d as _Conv2d
from ..._frontend import FrontendMixin, ParamView
from ..functional import _conv2d
from .module import Module, check_name

__all__ = ["Conv2d", "get_ndtuple"]


def get_ndtuple(value: Any, *, n: int, allow_zero: bool = True) -> tuple[int, ...]:
    """MegEngine's ``get_ndtuple``: a scalar is ``int()``-ed (floats truncate) and repeated;
    an iterable (a string too) must have length ``n`` and is mapped with ``int``;
    every entry must be >= 0 (``allow_zero``) or >= 1. Failures are AssertionErrors with
    MegEngine's texts."""
    if not isinstance(value, Iterable):
        out = (int(value),) * n
    else:
        if len(value) != n:  # type: ignore[arg-type]
            raise AssertionError(f"tuple len is not equal to n: {value}")
        out = tuple(map(int, value))
    if min(out) < (0 if allow_zero else 1):
        raise AssertionError(f"invalid value: {out}")
    return out


def _pair(value: Any) -> tuple[int, int]:
    a, b = get_ndtuple(value, n=2, allow_zero=True)
    return a, b


def _pair_nonzero(value: Any) -> tuple[int, int]:
    a, b = get_ndtuple(value, n=2, allow_zero=False)
    return a, b


def _weight_to_megengine(t: Tensor, layer: nn.Module) -> Tensor:
    g = cast("Conv2d", layer).groups
    if g == 1:
        return t
    return t.view(g, t.shape[0] // g, *t.shape[1:])


def _weight_to_torch(t: Tensor, layer: nn.Module) -> Tensor:
    return t if cast("Conv2d", layer).groups == 1 else t.reshape(-1, *t.shape[2:])


def _init_weight(t: Tensor, layer: nn.Module) -> None:
    conv = cast("Conv2d", layer)
    kh, kw = conv.kernel_size
    t.normal_(0.0, math.sqrt(1.0 / (kh * kw * conv.in_channels)))  # full C_in, not C_in/G


def _init_bias(t: Tensor, layer: nn.Module) -> None:
    t.zero_()


class Conv2d(FrontendMixin, Module, _Conv2d):
    """``megengine.module.Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0,
    dilation=1, groups=1, bias=True, conv_mode='cross_correlation', compute_mode='default',
    padding_mode='zeros', **kwargs)``.

    * Arguments are normalised with MegEngine's ``get_ndtuple`` (floats truncated, strings
      iterated, ``AssertionError("tuple len is not equal to n: ...")`` /
      ``AssertionError("invalid value: ...")``), then
      ``ValueError("in_channels must be divisible by groups")`` /
      ``"out_channels must be divisible by groups"``. ``kwargs`` is ``name=``.
    * Init: weight ~ N(0, 1/(kh·kw·in_channels)) (torch's RNG), bias zeros.
    * ``conv_mode``, ``compute_mode`` and ``padding_mode`` are stored unchecked, as in
      MegEngine, and checked by ``forward``: an unknown ``padding_mode`` is a bare
      ``AssertionError``; ``conv_mode='convolution'`` is a true convolution (MegEngine
      crashes there); ``compute_mode='float32'`` accumulates float16 in float32.
      The global ``megengine.config._compute_mode`` overrides ``compute_mode``.
    """

    param_views = {  # noqa: RUF012 (FrontendMixin's declared class table)
        "weight": ParamView(_weight_to_megengine, _weight_to_torch),
        "bias": ParamView(lambda t, layer: t.view(1, -1, 1, 1), lambda t, layer: t.reshape(-1)),
    }
    param_layout = "framework"
    default_initializers = {"weight": _init_weight, "bias": _init_bias}  # noqa: RUF012

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        conv_mode: str = "cross_correlation",
        compute_mode: str = "default",
        padding_mode: str = "zeros",
        **kwargs: Any,
    ) -> None:
        kernel_size = _pair_nonzero(kernel_size)
        stride = _pair_nonzero(stride)
        padding = _pair(padding)
        dilation = _pair_nonzero(dilation)
        name = kwargs.pop("name", None)
        if kwargs:
            raise TypeError(f"__init__() got an unexpected keyword argument '{next(iter(kwargs))}'")
        check_name(name)
        for arg, value in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("groups", groups),
        ):
            check_positive_int(value, arg)  # before the divisions (groups=0, None)
        if in_channels % groups != 0:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups != 0:
            raise ValueError("out_channels must be divisible by groups")
        _Conv2d.__init__(
            self, in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
            bool(bias),
        )  # fmt: skip
        self.name = name
        self.padding = padding  # MegEngine's (ph, pw); symmetric
        self.conv_mode = conv_mode
        self.compute_mode = compute_mode
        self.padding_mode = padding_mode

    def _weight_shape(self) -> tuple[int, ...]:
        o, i, kh, kw = super()._weight_shape()
        g = self.groups
        return (o, i, kh, kw) if g == 1 else (g, o // g, i, kh, kw)

    def _bias_shape(self) -> tuple[int, ...]:
        return (1, self.out_channels, 1, 1)

    def forward(self, inp: Tensor) -> Tensor:
        return self.calc_conv(inp, self.weight, self.bias)

    def calc_conv(self, inp: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        """MegEngine's ``calc_conv`` with MegEngine-layout ``weight`` / ``bias``."""
        if self.padding_mode not in ("zeros", "reflect", "replicate"):
            raise AssertionError
        return _conv2d(
            inp, weight, bias, self.stride, self.padding, self.dilation, self.groups,
            self.conv_mode, self.compute_mode, self.padding_mode,
        )  # fmt: skip

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        if self.stride != (1, 1):
            s += f", stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s
