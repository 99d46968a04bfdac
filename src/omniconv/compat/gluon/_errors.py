"""MXNet's exception types (``mxnet.base.MXNetError`` is a RuntimeError)."""

from __future__ import annotations

__all__ = ["DeferredInitializationError", "MXNetError"]


class MXNetError(RuntimeError):
    """An error MXNet's C++ core would raise (same words as MXNet 1.9.1)."""


class DeferredInitializationError(MXNetError):
    """A deferred parameter was accessed before its shape was known."""
