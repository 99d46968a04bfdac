"""MegEngine's exception types, each also a ``ValueError`` (the front-ends' error policy,
:mod:`omniconv.compat._errors`): MegEngine's Python checks are ``assert`` statements, its
state-dict strictness errors are ``KeyError`` s, and megdnn's checks (``megdnn_assert``)
reach Python as ``RuntimeError`` s."""

from __future__ import annotations

from .._errors import FrameworkAssertionError

__all__ = ["MegEngineAssertionError", "MegEngineKeyError", "MegEngineRuntimeError"]


class MegEngineAssertionError(FrameworkAssertionError):
    """Where MegEngine's Python code has ``assert cond, "message"``: an ``AssertionError``
    with MegEngine's words (plus the argument and value received), and a ``ValueError``."""


class MegEngineKeyError(KeyError, ValueError):
    """MegEngine's ``KeyError`` for unused / missing state-dict keys, also a ``ValueError``."""


class MegEngineRuntimeError(RuntimeError, ValueError):
    """A megdnn check (``megdnn_assert``, a ``RuntimeError`` in MegEngine's Python) on a bad
    value, with megdnn's words, also a ``ValueError``."""
