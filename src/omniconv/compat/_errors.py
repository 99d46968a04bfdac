"""The error policy of every front-end, in one place.

A front-end checks its arguments at construction and raises an exception that is both
its framework's type and :class:`ValueError` / :class:`TypeError`, with the framework's
words; where those words do not name the argument and the value received,
:func:`received` appends them (``"<framework's words>; received name=value"``).
"""

from __future__ import annotations

from typing import Any

from .._args import rename_args, renamed_args

__all__ = ["FrameworkAssertionError", "received", "rename_args", "renamed_args"]


class FrameworkAssertionError(ValueError, AssertionError):
    """A framework's ``assert cond, "message"`` failing on a bad value: the framework's
    words, catchable as ``AssertionError`` (the framework's type) and ``ValueError``
    (omniconv's). Each front-end names its own subclass."""


def received(message: str, **values: Any) -> str:
    """``message`` followed by ``; received name=value, ...`` (values shown with ``repr``)."""
    return message + "; received " + ", ".join(f"{k}={v!r}" for k, v in values.items())
