"""``megengine.config``: the global ``compute_mode`` override of the convolutions.

``config._compute_mode`` (default ``'default'``) overrides the per-call / per-layer
``compute_mode`` whenever it is anything other than ``'default'``, as in MegEngine's
``_config._get_actual_op_param``. Set it directly or for a block with
``with config._override(compute_mode='float32'): ...``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["_compute_mode", "_get_actual_op_param", "_override"]

_compute_mode: str = "default"


def _get_actual_op_param(function_param: str, config_param: str) -> str:
    """The per-op value unless the global one is not ``'default'``."""
    return function_param if config_param == "default" else config_param


@contextmanager
def _override(compute_mode: str | None = None) -> Iterator[None]:
    """Temporarily set the global ``compute_mode`` (restored on exit)."""
    global _compute_mode
    saved = _compute_mode
    if compute_mode is not None:
        _compute_mode = compute_mode
    try:
        yield
    finally:
        _compute_mode = saved
