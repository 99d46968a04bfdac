"""The named checkpoint mappings (``omniconv convert --map NAME``): each is a front-end's
``map_checkpoint``, imported when used."""

from __future__ import annotations

import importlib
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from torch import Tensor

__all__ = ["MAPPINGS", "map_checkpoint"]

#: mapping name -> (module defining ``map_checkpoint``, what it does)
MAPPINGS: dict[str, tuple[str, str]] = {
    "gluon": (
        "omniconv.compat.gluon",
        "MXNet .params: arg:/aux: dropped, conv0_weight -> conv0.weight, gamma/beta -> "
        "weight/bias, NHWC weights (--layout NHWC) -> OIHW",
    ),
    "megengine": (
        "omniconv.compat.megengine",
        "MegEngine: 5-D grouped weights -> 4-D, (1, C, 1, 1) biases and batch-norm "
        "parameters -> (C,)",
    ),
    "mmcv": (
        "omniconv.compat.mmcv",
        "mmcv / mmdet: leading module. dropped, legacy <layer>_offset.* -> <layer>.conv_offset.*",
    ),
    "paddle": (
        "omniconv.compat.paddle",
        "Paddle: static names (conv2d_0.w_0) kept for Program, 2.x _mean/_variance -> "
        "running_mean/running_var, Linear weights transposed",
    ),
}


def map_checkpoint(
    state: Mapping[str, Any], mapping: str, **options: Any
) -> OrderedDict[str, Tensor]:
    """``state`` mapped by the front-end mapping named ``mapping`` (``'gluon'``,
    ``'megengine'``, ``'mmcv'``, ``'paddle'``): the checkpoint's names and layouts as the
    state dict of the matching omniconv / torch modules, strictly checked. ``options``
    go to that mapping (``target=`` a model or state dict to match exactly, for all;
    ``layout='NHWC'`` for ``'gluon'``)."""
    if not isinstance(mapping, str) or mapping not in MAPPINGS:
        exc = ValueError if isinstance(mapping, str) else TypeError
        raise exc(f"`mapping` must be one of {', '.join(MAPPINGS)}; received mapping={mapping!r}")
    module = importlib.import_module(MAPPINGS[mapping][0])
    result: OrderedDict[str, Tensor] = module.map_checkpoint(state, **options)
    return result
