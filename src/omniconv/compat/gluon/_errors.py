"""MXNet's exception types, each also a ``ValueError`` / ``TypeError`` where it reports a
bad argument (the front-ends' error policy, :mod:`omniconv.compat._errors`).

``mxnet.base.MXNetError`` is a ``RuntimeError``; Gluon's Python checks are ``assert``
statements (``AssertionError``).
"""

from __future__ import annotations

from .._errors import FrameworkAssertionError

__all__ = [
    "DeferredInitializationError",
    "GluonAssertionError",
    "MXNetError",
    "MXNetTypeError",
    "MXNetValueError",
]


class MXNetError(RuntimeError):
    """An error MXNet's C++ core would raise (same words as MXNet 1.9.1)."""


class MXNetValueError(MXNetError, ValueError):
    """An :class:`MXNetError` about a bad value (an argument's or an input's)."""


class MXNetTypeError(MXNetError, TypeError):
    """An :class:`MXNetError` about a value of the wrong type."""


class DeferredInitializationError(MXNetError):
    """A deferred parameter was accessed before its shape was known."""


class GluonAssertionError(FrameworkAssertionError):
    """Where Gluon's Python code has ``assert cond, "message"``: an ``AssertionError``
    with Gluon's words, and a ``ValueError``."""
