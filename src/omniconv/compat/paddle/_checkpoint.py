"""Paddle checkpoints -> omniconv / torch state dicts: a pure ``dict -> dict`` map.

Paddle names a parameter two ways, and both are handled:

* **static names** (``paddle.static.save``, fluid programs): ``conv2d_0.w_0``,
  ``conv2d_0.b_0``, ``batch_norm_0.w_0`` (scale), ``.b_0`` (shift), ``.w_1`` (moving
  mean), ``.w_2`` (moving variance), ``deformable_conv_0.w_0``, ``conv2d_transpose_0.w_0``.
  These are the keys of :class:`omniconv.compat.paddle.Program`'s state dict, so they
  are kept; each layer's shapes are checked.
* **structured names** (``paddle.save(layer.state_dict())``, Paddle 2.x): ``<path>.weight``
  / ``.bias`` and a batch norm's ``<path>._mean`` / ``._variance``, which become torch's
  ``running_mean`` / ``running_var``. Conv, transposed-conv and deformable-conv weights
  have torch's layout already. Paddle's ``Linear`` stores its weight ``(in, out)``, torch
  ``(out, in)``: a 2-D ``weight`` is transposed (given a ``target`` model, only where
  the target's layer is a ``torch.nn.Linear``).

Anything else (an optimizer's ``.pdopt`` accumulators, unknown attributes) is refused.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from .._checkpoint import (
    Target,
    bad_shape,
    check_norm,
    check_target,
    input_state,
    join_key,
    owners,
    put,
    split_key,
)

__all__ = ["map_checkpoint"]

_STATIC = re.compile(r"^(?P<layer>(?P<kind>[A-Za-z]\w*?)_\d+)\.(?P<attr>[wb]_\d+)$")
_STRUCTURED = {"weight": "weight", "bias": "bias", "_mean": "running_mean",
               "_variance": "running_var"}  # fmt: skip
_NORM_STATS = ("_mean", "_variance")
# static layer kinds whose parameters are checked as a batch norm's / a conv's
_NORM_KINDS = ("batch_norm", "batch_norm2d", "sync_batch_norm")
_CONV_KINDS = ("conv2d", "conv2d_transpose", "deformable_conv", "deform_conv2d")


def _check_conv(where: str, weight: Tensor | None, bias: Tensor | None, wkey: str) -> None:
    if weight is not None and weight.dim() != 4:
        raise bad_shape(wkey, f"the 4-D weight of conv layer {where!r}", weight)
    if bias is not None and bias.dim() != 1:
        raise bad_shape(f"{where}.b_0", f"the 1-D bias of conv layer {where!r}", bias)


def _map_static(
    state: Mapping[str, Tensor], names: list[re.Match[str]]
) -> OrderedDict[str, Tensor]:
    layers: dict[str, dict[str, Tensor]] = {}
    kinds: dict[str, str] = {}
    for m in names:
        layers.setdefault(m["layer"], {})[m["attr"]] = state[m.string]
        kinds[m["layer"]] = m["kind"]
    for layer, params in layers.items():
        if kinds[layer] in _NORM_KINDS:
            check_norm(layer, {f"{layer}.{a}": v for a, v in params.items()})
        elif kinds[layer] in _CONV_KINDS:
            _check_conv(layer, params.get("w_0"), params.get("b_0"), f"{layer}.w_0")
    return OrderedDict(state)


def _map_structured(state: Mapping[str, Tensor], target: Target) -> OrderedDict[str, Tensor]:
    by_owner = owners(target)
    groups: dict[str, dict[str, tuple[str, Tensor]]] = {}
    for key, value in state.items():
        path, attr = split_key(key)
        if attr not in _STRUCTURED:
            raise ValueError(
                f"`state_dict` keys must be Paddle parameter names (static: conv2d_0.w_0; "
                f"structured: <layer>.{{{', '.join(_STRUCTURED)}}}); received {key!r}"
            )
        groups.setdefault(path, {})[attr] = (key, value)
    out: OrderedDict[str, Tensor] = OrderedDict()
    for path, params in groups.items():
        if any(a in params for a in _NORM_STATS):
            check_norm(path, dict(params.values()))
        for attr, (key, value) in params.items():
            new_key = join_key(path, _STRUCTURED[attr])
            if attr == "weight" and value.dim() == 2:
                owner = by_owner.get(new_key, (None, ""))[0]
                if owner is None or isinstance(owner, nn.Linear):
                    value = value.t().contiguous()  # Paddle's Linear: (in, out)
            put(out, new_key, value, key)
    return out


def map_checkpoint(state: Mapping[str, Any], *, target: Target = None) -> OrderedDict[str, Tensor]:
    """A Paddle checkpoint (``read_checkpoint`` of a ``.pdparams``: static or structured
    names, see the module docstring) as the state dict of the matching omniconv / torch
    model: static names for :class:`~omniconv.compat.paddle.Program`, torch names and
    layouts for structured ones. ``target`` (a model or its state dict), if given, must
    have exactly the result's keys and shapes."""
    tensors = input_state(state)
    static = [m for m in map(_STATIC.match, tensors) if m is not None]
    if static and len(static) != len(tensors):
        other = next(k for k in tensors if not _STATIC.match(k))
        raise ValueError(
            "`state_dict` keys must be all static names (conv2d_0.w_0) or all structured "
            f"names (conv.weight); received {static[0].string!r} and {other!r}"
        )
    out = _map_static(tensors, static) if static else _map_structured(tensors, target)
    check_target(out, target, "Paddle")
    return out
