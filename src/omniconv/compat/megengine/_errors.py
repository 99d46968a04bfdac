"""MegEngine's exception types, each also a ``ValueError`` (the front-ends' error policy,
:mod:`omniconv.compat._errors`): MegEngine's Python checks are ``assert`` statements and
its state-dict strictness errors are ``KeyError`` s."""

from __future__ import annotations

from .._errors import FrameworkAssertionError

__all__ = ["MegEngineAssertionError", "MegEngineKeyError"]


class MegEngineAssertionError(FrameworkAssertionError):
    """Where MegEngine's Python code has ``assert cond, "message"``: an ``AssertionError``
    with MegEngine's words (plus the argument and value received), and a ``ValueError``."""


class MegEngineKeyError(KeyError, ValueError):
    """MegEngine's ``KeyError`` for unused / missing state-dict keys, also a ``ValueError``."""
