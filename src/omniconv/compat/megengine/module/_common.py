"""What MegEngine's conv modules share (``_ConvNd``): argument normalisation
(``get_ndtuple``), the channel rules, the declared parameter layouts, the zero bias and the
repr's ``_module_info_string``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from torch import Tensor, nn

from ...._args import as_int, check_positive_int, fail
from ..._errors import received
from ..._frontend import ParamView
from .._errors import MegEngineAssertionError

__all__ = [
    "MEGENGINE_VIEWS",
    "check_channels",
    "get_ndtuple",
    "info_string",
    "init_bias",
    "pair",
    "unexpected",
]


def get_ndtuple(value: Any, *, n: int, allow_zero: bool = True, name: str) -> tuple[int, ...]:
    """MegEngine's ``get_ndtuple``: a scalar is repeated; an iterable (a string too) must
    have length ``n``; every entry must be >= 0 (``allow_zero``) or >= 1. Failures are
    :class:`MegEngineAssertionError` s with MegEngine's texts and the argument ``name``.
    Stricter than MegEngine's ``int()`` on one point: an entry that is a bool, a float or a
    string is a ``TypeError`` naming the argument (MegEngine truncates ``2.5`` to 2)."""
    if not isinstance(value, Iterable):
        items: list[Any] = [value] * n
    else:
        if len(value) != n:  # type: ignore[arg-type]
            message = f"tuple len is not equal to n: {value}"
            raise MegEngineAssertionError(received(message, **{name: value}))
        items = list(value)
    ints = [as_int(v) for v in items]
    if any(v is None for v in ints):
        fail(name, f"an int or a sequence of {n} ints", value, exc=TypeError)
    out = tuple(v for v in ints if v is not None)
    if min(out) < (0 if allow_zero else 1):
        raise MegEngineAssertionError(received(f"invalid value: {out}", **{name: value}))
    return out


def pair(value: Any, name: str, allow_zero: bool) -> tuple[int, int]:
    a, b = get_ndtuple(value, n=2, allow_zero=allow_zero, name=name)
    return a, b


def check_channels(in_channels: Any, out_channels: Any, groups: Any) -> None:
    """``_ConvNd``'s rules: ``ValueError("in_channels must be divisible by groups")`` /
    ``"out_channels ..."`` (after checking they are positive integers)."""
    for arg, value in (
        ("in_channels", in_channels),
        ("out_channels", out_channels),
        ("groups", groups),
    ):
        check_positive_int(value, arg)  # before the divisions (groups=0, None)
    for arg, value in (("in_channels", in_channels), ("out_channels", out_channels)):
        if value % groups != 0:
            message = f"{arg} must be divisible by groups"
            raise ValueError(received(message, **{arg: value, "groups": groups}))


def unexpected(kwargs: dict[str, Any]) -> None:
    """Python's error for a keyword MegEngine's ``Module`` does not take (it takes ``name``)."""
    if kwargs:
        raise TypeError(f"__init__() got an unexpected keyword argument '{next(iter(kwargs))}'")


def _weight_to_megengine(t: Tensor, layer: nn.Module) -> Tensor:
    g = cast(Any, layer).groups
    if g == 1:
        return t
    return t.view(g, t.shape[0] // g, *t.shape[1:])


def _weight_to_torch(t: Tensor, layer: nn.Module) -> Tensor:
    return t if cast(Any, layer).groups == 1 else t.reshape(-1, *t.shape[2:])


#: MegEngine's layouts of a conv's parameters (all three convs: the grouped weight is
#: torch's with its first dimension split into ``(groups, dim0/groups)``; the bias is
#: ``(1, C, 1, 1)``)
MEGENGINE_VIEWS: dict[str, ParamView] = {
    "weight": ParamView(_weight_to_megengine, _weight_to_torch),
    "bias": ParamView(lambda t, layer: t.view(1, -1, 1, 1), lambda t, layer: t.reshape(-1)),
}


def init_bias(t: Tensor, layer: nn.Module) -> None:
    t.zero_()


def info_string(layer: Any) -> str:
    """MegEngine's ``_ConvNd._module_info_string``: ``in, out, kernel_size=...`` and the
    non-default stride, padding, dilation, groups and ``bias=False``."""
    s = f"{layer.in_channels}, {layer.out_channels}, kernel_size={layer.kernel_size}"
    if layer.stride != (1, 1):
        s += f", stride={layer.stride}"
    if layer.padding != (0, 0):
        s += f", padding={layer.padding}"
    if layer.dilation != (1, 1):
        s += f", dilation={layer.dilation}"
    if layer.groups != 1:
        s += f", groups={layer.groups}"
    if layer.bias is None:
        s += ", bias=False"
    return s
