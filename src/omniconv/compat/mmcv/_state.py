"""mmcv's legacy state-dict keys of the ``*Pack`` layers, and their upgrade.

Before version 2 of ``DeformConv2dPack`` / ``ModulatedDeformConv2dPack``, a layer stored
at ``<parent>.conv2`` kept its offset predictor beside it, as ``<parent>.conv2_offset.*``;
version 2 keeps it inside, as ``<parent>.conv2.conv_offset.*``. mmcv's
``_load_from_state_dict`` renames the old keys when the checkpoint's version of the layer
(``state_dict._metadata[<layer name>]["version"]``) is missing or below 2, and only where
the new key is absent; :class:`LegacyOffsetKeys` does the same.

``torch.nn.Module.load_state_dict`` hands each child only the keys under the child's own
prefix, so the old keys, which sit under the parent's prefix, never reach the layer there
(mmengine's ``load_state_dict`` hands every module the whole dict, so they do, and are
still listed as unexpected by the parent). :func:`upgrade_state_dict` applies the same
rule to a whole state dict up front, so ``model.load_state_dict(upgrade_state_dict(model,
state), strict=True)`` loads an old checkpoint.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, ClassVar

from torch import Tensor, nn

__all__ = ["LegacyOffsetKeys", "rename_legacy_offset_keys", "upgrade_state_dict"]

logger = logging.getLogger("omniconv.compat.mmcv")


def rename_legacy_offset_keys(
    state_dict: dict[str, Any], prefix: str, version: int | None
) -> list[str]:
    """mmcv's rule for the layer at ``prefix`` (``"a.conv2."``), in place: when
    ``version`` is None or < 2, ``a.conv2_offset.{weight,bias}`` becomes
    ``a.conv2.conv_offset.{weight,bias}`` where only the old key is present. Returns the
    renamed (old) keys."""
    renamed: list[str] = []
    if version is not None and version >= 2:
        return renamed
    for name in ("weight", "bias"):
        new, old = f"{prefix}conv_offset.{name}", f"{prefix[:-1]}_offset.{name}"
        if new not in state_dict and old in state_dict:
            state_dict[new] = state_dict.pop(old)
            renamed.append(old)
    return renamed


class LegacyOffsetKeys:
    """Mixin of the ``*Pack`` layers (before their ``nn.Module`` base): state-dict
    version 2, and mmcv's upgrade of the version-1 keys when loading (the layer's log
    line too, on the ``omniconv.compat.mmcv`` logger at INFO, where mmcv's ``print_log``
    writes it: when the stored version is already above 1)."""

    _version: ClassVar[int] = 2
    _log_name: ClassVar[str]

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        version = local_metadata.get("version")
        rename_legacy_offset_keys(state_dict, prefix, version)
        if version is not None and version > 1:
            logger.info("%s %s is upgraded to version 2.", self._log_name, prefix.rstrip("."))
        super()._load_from_state_dict(  # type: ignore[misc]
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )


def upgrade_state_dict(model: nn.Module, state_dict: Mapping[str, Tensor]) -> OrderedDict:
    """A copy of ``state_dict`` with mmcv's legacy-key rule applied for every
    ``DeformConv2dPack`` / ``ModulatedDeformConv2dPack`` of ``model``: the old
    ``<parent>.<layer>_offset.*`` keys become ``<parent>.<layer>.conv_offset.*`` where the
    checkpoint's version of that layer (``state_dict._metadata``) is missing or below 2
    and the new key is absent. Keys are matched as ``model.state_dict()`` names them; the
    input is not modified and its ``_metadata`` is kept."""
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"`model` must be a torch.nn.Module; received model=<{type(model).__name__}>"
        )
    if not isinstance(state_dict, Mapping):
        raise TypeError(
            "`state_dict` must be a mapping of names to tensors; received "
            f"state_dict=<{type(state_dict).__name__}>"
        )
    metadata = getattr(state_dict, "_metadata", None)
    out: OrderedDict = OrderedDict(state_dict)
    if metadata is not None:
        out._metadata = metadata  # type: ignore[attr-defined]
    for name, module in model.named_modules():
        if isinstance(module, LegacyOffsetKeys):
            version = (metadata or {}).get(name, {}).get("version", None)
            rename_legacy_offset_keys(out, f"{name}." if name else "", version)
    return out
