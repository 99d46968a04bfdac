"""mmcv / mmdet checkpoints -> the state dict of a model built on
:mod:`omniconv.compat.mmcv.ops`: a pure ``dict -> dict`` map.

What mmcv's ``load_checkpoint`` does to the keys, and the ``*Pack`` layers' legacy keys:

* a leading ``module.`` (``DataParallel`` / ``DistributedDataParallel`` wrappers) goes,
  as mmcv's default ``revise_keys=[(r'^module\\.', '')]`` removes it;
* checkpoints from before version 2 of ``DeformConv2dPack`` / ``ModulatedDeformConv2dPack``
  (and mmdet 1.x's ``conv2_offset`` beside a ``DeformConv``) store a layer ``<p>``'s offset
  predictor as ``<p>_offset.weight`` / ``.bias``; version 2 keeps it at
  ``<p>.conv_offset.*``. Given a ``target`` model, :func:`upgrade_state_dict` applies
  mmcv's rule to that model's ``*Pack`` layers. Without one, the old keys are renamed
  wherever ``<p>.weight`` is a 4-D conv weight, ``<p>.conv_offset.*`` is absent, the
  checkpoint's ``_metadata`` (if any) gives ``<p>`` a version below 2, and the offset
  conv fits the layer: same kernel, ``2 * dg * kh * kw`` (DCNv1) or ``3 * dg * kh * kw``
  (DCNv2, with the mask) output channels, a matching 1-D bias.

Nothing else changes: mmcv's layers have torch's names and layouts.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from .._checkpoint import Target, bad_shape, check_target, input_state, put
from ._state import rename_legacy_offset_keys, upgrade_state_dict

__all__ = ["map_checkpoint"]

_WRAPPER = re.compile(r"^module\.")


def _check_offset(layer: str, state: Mapping[str, Tensor]) -> None:
    weight = state[f"{layer}.weight"]
    offset_key = f"{layer}.conv_offset.weight"
    offset = state[offset_key]
    kh, kw = weight.shape[-2:]
    taps = kh * kw
    if (
        offset.dim() != 4
        or tuple(offset.shape[-2:]) != (kh, kw)
        or offset.shape[0] % taps
        or ((offset.shape[0] // taps) % 2 and (offset.shape[0] // taps) % 3)
    ):
        raise bad_shape(
            offset_key,
            f"an offset conv for the {kh}x{kw} kernel of {layer!r}: (2*dg*{taps} or "
            f"3*dg*{taps}, C_in, {kh}, {kw})",
            offset,
        )
    bias = state.get(f"{layer}.conv_offset.bias")
    if bias is not None and tuple(bias.shape) != (offset.shape[0],):
        raise bad_shape(f"{layer}.conv_offset.bias", f"({offset.shape[0]},)", bias)


def _upgrade_without_model(state: OrderedDict[str, Tensor]) -> None:
    metadata: Mapping[str, Any] = getattr(state, "_metadata", None) or {}
    for key in list(state):
        if not key.endswith("_offset.weight"):
            continue
        layer = key[: -len("_offset.weight")]
        weight = state.get(f"{layer}.weight")
        if weight is None or weight.dim() != 4:
            continue
        version = metadata.get(layer, {}).get("version")
        if rename_legacy_offset_keys(state, f"{layer}.", version):
            _check_offset(layer, state)


def map_checkpoint(state: Mapping[str, Any], *, target: Target = None) -> OrderedDict[str, Tensor]:
    """An mmcv / mmdet checkpoint's state dict (``read_checkpoint`` of a ``.pth``) as the
    state dict of a model built on :mod:`omniconv.compat.mmcv.ops` (see the module
    docstring). ``target`` (a model or its state dict), if given, must have exactly the
    result's keys and shapes; a model's ``*Pack`` layers decide which keys are legacy."""
    tensors = input_state(state)
    out: OrderedDict[str, Tensor] = OrderedDict()
    for key, value in tensors.items():
        put(out, _WRAPPER.sub("", key), value, key)
    metadata = getattr(state, "_metadata", None)
    if isinstance(metadata, Mapping):
        out._metadata = OrderedDict(  # type: ignore[attr-defined]
            (_WRAPPER.sub("", k) if k != "module" else "", v) for k, v in metadata.items()
        )
    if isinstance(target, nn.Module):
        out = upgrade_state_dict(target, out)
    else:
        _upgrade_without_model(out)
    check_target(out, target, "mmcv")
    return out
