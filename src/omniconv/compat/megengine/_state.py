"""MegEngine state dicts <-> torch state dicts: pure ``dict -> dict`` transforms.

A MegEngine state dict holds each parameter and persistent buffer in MegEngine's layout
(``Conv2d``: 5-D grouped weight, ``(1, C, 1, 1)`` bias), keyed by its dotted attribute
path, keys sorted. The module only supplies the structure (names, layouts, shapes): the
transforms never touch its values, and they read arrays and tensors only (no pickles).

Errors are MegEngine's (``module.load_state_dict``), each also a ``ValueError``
(:class:`MegEngineKeyError`, :class:`MegEngineAssertionError`):

* ``ValueError: param `{k}` shape mismatch, should be {var_shape}, get {shape}``
* ``KeyError: Unused params violate `strict=True`, unused={...}``
* ``KeyError: Missing params violate `strict=True`, missing={...}`` (a set, as in
  MegEngine's ``module.py``, v1.0 to v1.13; printed sorted)
* ``AssertionError: closure should return a `np.ndarray`, now `{k}` get {v}`` (torch
  tensors are accepted too).

With ``strict=False`` unused and missing keys are logged as MegEngine's warnings
(``Unused params in `strict=False` mode, unused={...}``; logger
``omniconv.compat.megengine``) and skipped.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .._frontend import FrontendMixin, as_tensor
from ._errors import MegEngineAssertionError, MegEngineKeyError

__all__ = ["load_megengine", "megengine_entries", "megengine_to_torch", "torch_to_megengine"]

logger = logging.getLogger("omniconv.compat.megengine")

StateSource = Mapping[str, Any] | Callable[[str, Tensor], Any]


def _locate(module: nn.Module) -> dict[str, tuple[nn.Module, str]]:
    """Sorted ``{key: (owner module, attribute name)}`` of parameters and persistent buffers."""
    found: dict[str, tuple[nn.Module, str]] = {}
    for prefix, m in module.named_modules():
        names = [n for n, p in m._parameters.items() if p is not None]
        names += [
            n
            for n, b in m._buffers.items()
            if b is not None and n not in m._non_persistent_buffers_set
        ]
        for name in names:
            found[f"{prefix}.{name}" if prefix else name] = (m, name)
    return dict(sorted(found.items()))


def _framework_value(owner: nn.Module, name: str) -> Tensor:
    if isinstance(owner, FrontendMixin):
        return owner.framework_param(name)
    return getattr(owner, name)


def _torch_value(owner: nn.Module, name: str) -> Tensor:
    if isinstance(owner, FrontendMixin):
        return owner.torch_param(name)
    return getattr(owner, name)


def megengine_entries(module: nn.Module) -> OrderedDict[str, Tensor]:
    """``{key: tensor in MegEngine's layout}``, keys sorted; the tensors are the
    parameters themselves or views of them (same storage, still attached to autograd)."""
    return OrderedDict((k, _framework_value(m, n)) for k, (m, n) in _locate(module).items())


def _to_torch_layout(owner: nn.Module, name: str, value: Tensor) -> Tensor:
    return owner.to_torch_layout(name, value) if isinstance(owner, FrontendMixin) else value


def _as_value(key: str, value: Any) -> Tensor:
    if isinstance(value, Tensor):
        return value.detach()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    raise MegEngineAssertionError(f"closure should return a `np.ndarray`, now `{key}` get {value}")


def _set_repr(keys: list[str]) -> str:
    """A set of keys as MegEngine prints it (``{'a', 'b'}``), sorted to be deterministic."""
    return "{" + ", ".join(map(repr, sorted(keys))) + "}"


def _strict_report(unused: list[str], missing: list[str], strict: bool) -> None:
    for kind, keys in (("Unused", unused), ("Missing", missing)):
        if not keys:
            continue
        listed = f"{kind.lower()}={_set_repr(keys)}"
        if strict:
            raise MegEngineKeyError(f"{kind} params violate `strict=True`, {listed}")
        logger.warning(f"{kind} params in `strict=False` mode, {listed}")


def _read_megengine(
    state_dict: StateSource, module: nn.Module, strict: bool
) -> list[tuple[str, nn.Module, str, Tensor]]:
    """``(key, owner, attribute, value in MegEngine's layout)`` for every entry of
    ``module`` the source has, each shape checked against the module's MegEngine shape;
    MegEngine's unused / missing report."""
    closure: Callable[[str, Tensor], Any]
    if isinstance(state_dict, Mapping):
        closure, given = (lambda key, var: state_dict.get(key)), list(state_dict)
    elif callable(state_dict):
        closure, given = state_dict, []
    else:
        raise ValueError(f"`state_dict` must load a dict or callable, got {type(state_dict)}")
    out: list[tuple[str, nn.Module, str, Tensor]] = []
    missing: list[str] = []
    for key, (owner, name) in _locate(module).items():
        var = _framework_value(owner, name)
        value = closure(key, var)
        if value is None:
            missing.append(key)
            continue
        data = _as_value(key, value)
        var_shape, shape = tuple(var.shape), tuple(data.shape)
        if var_shape != shape:
            raise ValueError(f"param `{key}` shape mismatch, should be {var_shape}, get {shape}")
        out.append((key, owner, name, data))
    found = {key for key, *_ in out}
    unused = sorted(k for k in given if k not in found and k not in missing)
    _strict_report(unused, missing, strict)
    return out


def load_megengine(module: nn.Module, state_dict: StateSource, strict: bool = True) -> None:
    """``module.load_state_dict`` of MegEngine: copy each checked MegEngine-layout value
    into its parameter or buffer (cast to its dtype)."""
    entries = _read_megengine(state_dict, module, strict)
    with torch.no_grad():
        for _, owner, name, data in entries:
            _framework_value(owner, name).copy_(data)


def megengine_to_torch(
    state_dict: StateSource, module: nn.Module, strict: bool = True
) -> dict[str, Tensor]:
    """A MegEngine state dict (or MegEngine's ``closure(key, var)`` callable) for ``module``
    as a torch-layout state dict (``module.torch_state_dict()`` shapes).

    Values are numpy arrays or torch tensors in MegEngine's layout and shape; every
    shape is checked against ``module``'s MegEngine shapes. Keys the module lacks are
    ``unused``, keys it has but the source lacks are ``missing``.
    """
    entries = _read_megengine(state_dict, module, strict)
    return {key: _to_torch_layout(owner, name, data) for key, owner, name, data in entries}


def torch_to_megengine(
    state_dict: Mapping[str, Any], module: nn.Module, strict: bool = True
) -> OrderedDict[str, np.ndarray]:
    """A torch-layout state dict (e.g. from ``torch.nn.Conv2d`` or
    ``module.torch_state_dict()``) as MegEngine's state dict of numpy arrays, keys sorted.
    Shapes are checked against ``module``'s torch-layout parameters."""
    out: OrderedDict[str, np.ndarray] = OrderedDict()
    missing: list[str] = []
    for key, (owner, name) in _locate(module).items():
        if key not in state_dict:
            missing.append(key)
            continue
        data = as_tensor(state_dict[key], key)
        var_shape, shape = tuple(_torch_value(owner, name).shape), tuple(data.shape)
        if var_shape != shape:
            raise ValueError(f"param `{key}` shape mismatch, should be {var_shape}, get {shape}")
        if isinstance(owner, FrontendMixin):
            data = owner.to_framework_layout(name, data.contiguous())
        out[key] = data.cpu().numpy().copy()
    unused = sorted(k for k in state_dict if k not in out and k not in missing)
    _strict_report(unused, missing, strict)
    return out
