"""MegEngine state dicts -> omniconv / torch state dicts: a pure ``dict -> dict`` map,
with no model needed (:func:`megengine_to_torch` is the per-model form).

``megengine.save(module.state_dict())`` keys each parameter and buffer by its attribute
path, in MegEngine's shapes:

* ``Conv2d`` / ``DeformableConv2d`` with ``groups > 1``: weight ``(G, O/G, I/G, kh, kw)``
  -> torch's ``(O, I/G, kh, kw)``; ``ConvTranspose2d``: ``(G, I/G, O/G, kh, kw)`` ->
  ``(I, O/G, kh, kw)``: both merge the first two axes;
* every conv's bias ``(1, C, 1, 1)`` -> ``(C,)``; a ``Linear``'s ``(C,)`` stays;
* ``BatchNorm2d``: ``weight``, ``bias``, ``running_mean``, ``running_var`` ``(1, C, 1, 1)``
  (MegEngine 1.1 and later; 1.0 and the newest ``state_dict()`` write ``(C,)``) ->
  ``(C,)``.

A conv bias must have one of the output-channel counts its weight allows. Attributes
other than these four are refused. The MegEngine front-end's own layers store
MegEngine's shapes and load such a state dict as it is: given a ``target`` model, its
MegEngine layers keep their values unmapped.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from torch import Tensor

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
from .._frontend import FrontendMixin

__all__ = ["map_checkpoint"]

_ATTRS = ("weight", "bias", "running_mean", "running_var")


def _per_channel(key: str, value: Tensor, what: str) -> Tensor:
    shape = tuple(value.shape)
    if value.dim() == 1 or (value.dim() == 4 and shape[0] == shape[2] == shape[3] == 1):
        return value.reshape(-1)
    raise bad_shape(key, f"(1, C, 1, 1) or (C,), as {what}", value)


def _map_norm(path: str, params: Mapping[str, tuple[str, Tensor]]) -> dict[str, Tensor]:
    out = {
        attr: _per_channel(key, value, "a batch norm's") for attr, (key, value) in params.items()
    }
    check_norm(path, {key: out[attr] for attr, (key, _) in params.items()})
    return out


def _map_layer(params: Mapping[str, tuple[str, Tensor]]) -> dict[str, Tensor]:
    out: dict[str, Tensor] = {}
    channels: tuple[int, ...] = ()
    if "weight" in params:
        weight = params["weight"][1]
        s = tuple(weight.shape)
        if weight.dim() == 5:  # grouped: merge (G, O/G) (conv) or (G, I/G) (transposed)
            out["weight"] = weight.reshape(s[0] * s[1], *s[2:])
            channels = (s[0] * s[1], s[0] * s[2])  # conv, transposed conv
        else:
            out["weight"] = weight
            channels = (s[0], s[1]) if weight.dim() == 4 else s[:1]
    if "bias" in params:
        key, bias = params["bias"]
        out["bias"] = _per_channel(key, bias, "a conv's (or a Linear's) bias")
        if channels and out["bias"].numel() not in channels:
            rule = f"the bias of {' or '.join(map(str, sorted(set(channels))))} channels"
            raise bad_shape(key, f"{rule} its weight {tuple(out['weight'].shape)} allows", bias)
    return out


def map_checkpoint(state: Mapping[str, Any], *, target: Target = None) -> OrderedDict[str, Tensor]:
    """A MegEngine state dict (``read_checkpoint`` of a ``megengine.save`` file) as the
    state dict of the matching torch-layout model (:mod:`omniconv.nn`, ``torch.nn``): see
    the module docstring. ``target`` (a model or its state dict), if given, must have
    exactly the result's keys and shapes; its MegEngine front-end layers keep
    MegEngine's shapes."""
    tensors = input_state(state)
    groups: dict[str, dict[str, tuple[str, Tensor]]] = {}
    for key, value in tensors.items():
        path, attr = split_key(key)
        if attr not in _ATTRS:
            raise ValueError(
                f"`state_dict` keys must name a {', '.join(_ATTRS)} (MegEngine's conv, "
                f"linear and batch-norm attributes); received {key!r}"
            )
        groups.setdefault(path, {})[attr] = (key, value)
    by_owner = owners(target)
    out: OrderedDict[str, Tensor] = OrderedDict()
    mapped: dict[str, Tensor] = {}
    for path, params in groups.items():
        norm = "running_mean" in params or "running_var" in params
        for attr, value in (_map_norm(path, params) if norm else _map_layer(params)).items():
            mapped[join_key(path, attr)] = value
    for key, value in tensors.items():
        owner = by_owner.get(key, (None, ""))[0]
        framework_layout = isinstance(owner, FrontendMixin) and owner.param_layout == "framework"
        new = value if framework_layout else mapped[key]  # MegEngine layers keep its shapes
        put(out, key, new.contiguous(), key)
    check_target(out, target, "MegEngine")
    return out
