"""MXNet Gluon ``.params`` -> omniconv / torch state dicts: a pure ``dict -> dict`` map.

MXNet writes a parameter under one of two names:

* ``save_parameters``: the attribute path, ``0.weight``, ``features.3.gamma`` (and a lone
  layer's ``weight``); these are the Gluon front-end's state-dict keys already;
* ``export``: ``arg:`` / ``aux:`` and the Gluon name, ``arg:conv0_weight``,
  ``aux:batchnorm0_running_mean``. The prefix goes; without a ``target`` the name becomes
  ``<block prefix>.<attribute>`` (``conv0.weight``: a model whose layers carry Gluon's
  block names); given a Gluon model (:class:`omniconv.compat.gluon.Block`) as ``target``,
  each name becomes the key of that model's parameter of the same Gluon name.

Attributes: a batch norm's ``gamma`` / ``beta`` become torch's ``weight`` / ``bias``
(``running_mean`` / ``running_var`` stay); ``weight``, ``bias`` and the deformable
blocks' ``offset_weight``, ``offset_bias``, ``deformable_conv_weight``,
``deformable_conv_bias`` stay. Any other attribute is refused.

Layouts: an NHWC ``Conv2D`` / ``Conv2DTranspose`` stores its weight with the channels
last (``(O, kh, kw, I)``); torch's layout is ``(O, I, kh, kw)``. ``layout='NHWC'``
permutes every 4-D ``weight``; given a ``target`` model, a Gluon front-end layer's own
layout decides instead (its declared views), and the ``layout`` argument applies to the
other layers.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from torch import Tensor

from .._checkpoint import (
    Target,
    check_norm,
    check_target,
    input_state,
    join_key,
    owners,
    put,
    split_key,
    torch_layout,
)
from .._frontend import FrontendMixin
from .block import Block

__all__ = ["map_checkpoint"]

_RENAMES = {"gamma": "weight", "beta": "bias"}
_ATTRS = (
    "deformable_conv_weight",
    "deformable_conv_bias",
    "offset_weight",
    "offset_bias",
    "running_mean",
    "running_var",
    "weight",
    "bias",
    "gamma",
    "beta",
)  # longest first: the suffix a flat name ends with
_NORM = ("gamma", "beta", "running_mean", "running_var")


def _split(name: str) -> tuple[str, str]:
    """``'0.weight'`` -> ``('0', 'weight')``; ``'conv0_weight'`` -> ``('conv0', 'weight')``."""
    if "." in name:
        path, attr = split_key(name)
        if attr in _ATTRS:
            return path, attr
    else:
        for attr in _ATTRS:
            if name == attr:
                return "", attr
            if name.endswith("_" + attr):
                return name[: -len(attr) - 1], attr
    raise ValueError(
        "`state_dict` keys must be Gluon parameter names ending in one of "
        f"{', '.join(_ATTRS)}; received {name!r}"
    )


def _gluon_keys(target: Target) -> dict[str, str]:
    """``{Gluon name: state-dict key}`` of a Gluon model's parameters."""
    if not isinstance(target, Block):
        return {}
    structured = target._collect_params_with_prefix()
    return {param.name: key for key, param in structured.items()}


def _check_norms(groups: Mapping[str, Mapping[str, tuple[str, Tensor]]]) -> None:
    for path, params in groups.items():
        stats = dict(v for a, v in params.items() if a in _NORM)
        if stats:
            check_norm(path, stats)


def map_checkpoint(
    state: Mapping[str, Any], *, layout: str = "NCHW", target: Target = None
) -> OrderedDict[str, Tensor]:
    """An MXNet ``.params`` checkpoint (``read_checkpoint``'s names, ``arg:``/``aux:``
    prefixes included) as the state dict of the matching omniconv / torch model (see the
    module docstring). ``layout``: ``'NCHW'`` or ``'NHWC'``, the layout of the layers
    (where ``target`` does not say). ``target`` (a model or its state dict), if given,
    must have exactly the result's keys and shapes."""
    if layout not in ("NCHW", "NHWC"):
        raise ValueError(f"`layout` must be 'NCHW' or 'NHWC'; received layout={layout!r}")
    tensors = input_state(state)
    by_gluon_name = _gluon_keys(target)
    by_owner = owners(target)
    groups: dict[str, dict[str, tuple[str, Tensor]]] = {}
    renamed: list[tuple[str, str, str, Tensor]] = []  # (source key, new key, attr, value)
    for key, value in tensors.items():
        name = key[4:] if key.startswith(("arg:", "aux:")) else key
        path, attr = _split(name)
        groups.setdefault(path, {})[attr] = (key, value)
        if name in by_gluon_name:
            path, attr = split_key(by_gluon_name[name])
        new_key = join_key(path, _RENAMES.get(attr, attr))
        renamed.append((key, new_key, attr, value))
    _check_norms(groups)
    out: OrderedDict[str, Tensor] = OrderedDict()
    for key, new_key, attr, value in renamed:
        owner = by_owner.get(new_key, (None, ""))[0]
        if isinstance(owner, FrontendMixin):
            value = torch_layout(owner, split_key(new_key)[1], value)
        elif attr == "weight" and layout == "NHWC" and value.dim() == 4:
            value = value.permute(0, 3, 1, 2).contiguous()
        put(out, new_key, value, key)
    check_target(out, target, "Gluon")
    return out
