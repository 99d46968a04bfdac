"""mmcv's exception types, each also a ``ValueError`` (the front-ends' error policy,
:mod:`omniconv.compat._errors`).

mmcv's Python checks are ``assert`` statements (``AssertionError``); its C++ shape checks
(``TORCH_CHECK``) reach Python as ``RuntimeError``. omniconv raises the same type, with
mmcv's words, as a class that is also a ``ValueError``.
"""

from __future__ import annotations

from .._errors import FrameworkAssertionError

__all__ = ["MMCVAssertionError", "MMCVRuntimeError"]


class MMCVAssertionError(FrameworkAssertionError):
    """Where mmcv has ``assert cond, "message"``: an ``AssertionError`` with mmcv's words
    (plus the argument and value received), and a ``ValueError``."""


class MMCVRuntimeError(RuntimeError, ValueError):
    """Where mmcv's C++ op raises (``TORCH_CHECK``): a ``RuntimeError`` with mmcv's words
    (plus the values received), and a ``ValueError``."""
