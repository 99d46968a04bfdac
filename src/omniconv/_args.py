"""Argument normalisation shared by every layer of omniconv.

Every public entry point normalises its arguments here, once, and every bad value
is reported with one template::

    `<name>` must be <rule>; received <name>=<value>

so that a message always names the argument, the rule and the value received.
"""

from __future__ import annotations

import operator
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any, Literal, NoReturn

Pair = tuple[int, int]
Pad4 = tuple[int, int, int, int]

__all__ = [
    "Pad4",
    "Pair",
    "as_int",
    "check_bool",
    "check_choice",
    "check_fits",
    "check_optional_bool",
    "check_positive_int",
    "fail",
    "fits",
    "memory_limit",
    "rename_args",
    "renamed_args",
    "to_padding",
    "to_pair",
    "type_name",
]


def fail(name: str, rule: str, value: Any, *, exc: type[Exception] = ValueError) -> NoReturn:
    """Raise ``exc`` with the library's one error template."""
    raise exc(f"`{name}` must be {rule}; received {name}={value!r}")


class _TypeName(str):
    """Shows as ``<list>`` in a message: the type of a value that was not shown."""

    def __repr__(self) -> str:
        return f"<{self}>"


def type_name(value: Any) -> str:
    """A value's type name, for messages about values of the wrong type."""
    return _TypeName(type(value).__name__)


def as_int(value: Any) -> int | None:
    """``value`` as an int if it is an integer (Python or numpy, not bool), else None."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _int_tuple(value: Any, name: str, length: int, shape_rule: str) -> tuple[int, ...]:
    scalar = as_int(value)
    if scalar is not None:
        return (scalar,) * length
    if isinstance(value, str) or not isinstance(value, Iterable):
        fail(name, shape_rule, value, exc=TypeError)
    items = list(value)
    if len(items) != length:
        fail(name, shape_rule, value)
    ints = [as_int(v) for v in items]
    if any(v is None for v in ints):
        fail(name, shape_rule, value, exc=TypeError)
    return tuple(v for v in ints if v is not None)


def to_pair(value: Any, name: str, *, minimum: int = 1) -> Pair:
    """Normalise an int or a pair of ints to ``(h, w)``, each ``>= minimum``.

    >>> to_pair(3, "kernel_size")
    (3, 3)
    >>> to_pair((1, 0), "stride")
    Traceback (most recent call last):
    ...
    ValueError: `stride` must be positive integers; received stride=(1, 0)
    """
    out = _int_tuple(value, name, 2, "an int or a pair of ints")
    if min(out) < minimum:
        rule = "positive integers" if minimum == 1 else f"integers >= {minimum}"
        if minimum == 0:
            rule = "non-negative integers"
        fail(name, rule, value)
    return out[0], out[1]


def to_padding(value: Any, name: str = "padding", *, allow_strings: bool = True) -> Pad4 | str:
    """Normalise a padding argument.

    Accepts an int, a pair ``(pad_h, pad_w)``, a 4-tuple ``(top, bottom, left, right)``
    or, when ``allow_strings``, ``'same'`` / ``'valid'`` (any case). Returns a
    4-tuple ``(top, bottom, left, right)``, or ``'same'`` (resolved later, when the
    input size is known, by :func:`omniconv._shapes.resolve_padding`).
    """
    rule = "an int, a pair, a 4-tuple (top, bottom, left, right)"
    if allow_strings:
        rule += ", 'same' or 'valid'"
    if isinstance(value, str):
        low = value.lower()
        if allow_strings and low == "valid":
            return (0, 0, 0, 0)
        if allow_strings and low == "same":
            return "same"
        fail(name, rule, value)
    scalar = as_int(value)
    if scalar is not None:
        pads: tuple[int, ...] = (scalar,) * 4
    elif isinstance(value, Sequence) and len(value) in (2, 4):
        items = _int_tuple(value, name, len(value), rule)
        pads = items if len(items) == 4 else (items[0], items[0], items[1], items[1])
    elif isinstance(value, Sequence):
        fail(name, rule, value)
    else:
        fail(name, rule, value, exc=TypeError)
    if min(pads) < 0:
        fail(name, "non-negative integers", value)
    return pads[0], pads[1], pads[2], pads[3]


def check_positive_int(value: Any, name: str) -> int:
    """An integer >= 1 (Python or numpy integer; not bool)."""
    out = as_int(value)
    if out is None:
        fail(name, "a positive integer", value, exc=TypeError)
    if out < 1:
        fail(name, "a positive integer", value)
    return out


def check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    """One of ``choices`` (exact, case-sensitive string match)."""
    if not isinstance(value, str) or value not in choices:
        rule = "one of " + ", ".join(repr(c) for c in choices)
        fail(name, rule, value, exc=ValueError if isinstance(value, str) else TypeError)
    return value


def check_bool(value: Any, name: str) -> bool:
    """A flag: ``True`` or ``False`` (a Python or numpy bool). Strings and numbers are
    refused: ``bias="no"`` is not ``True``."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":  # numpy.bool_
        return bool(value)
    fail(name, "True or False", value, exc=TypeError)


def check_optional_bool(value: Any, name: str) -> bool | None:
    """``None``, ``True`` or ``False`` (strings and numbers refused, as :func:`check_bool`)."""
    if value is None:
        return None
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    fail(name, "True, False or None", value, exc=TypeError)


def _memory_bytes() -> int:
    """This machine's memory (RAM + swap) in bytes, or 0 when unknown."""
    try:
        ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return 0
    swap = 0
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("SwapTotal:"):
                    swap = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return ram + swap


@cache
def memory_limit(device_type: str) -> tuple[int, str]:
    """The largest allocation (bytes) a tensor on ``device_type`` may need, and what sets it:
    ``sys.maxsize`` (what a 64-bit process can address; torch's sizes are int64) for every
    device, and on ``'cpu'`` this machine's memory (RAM + swap), beyond which the allocator
    fails (or the kernel's OOM killer ends the process when the pages are touched)."""
    if device_type == "cpu":
        machine = _memory_bytes()
        if 0 < machine < sys.maxsize:
            return machine, "this machine's memory (RAM + swap)"
    return sys.maxsize, "what a process can address"


def _bytes_text(n: int) -> str:
    for unit, scale in (
        ("EiB", 2**60),
        ("PiB", 2**50),
        ("TiB", 2**40),
        ("GiB", 2**30),
        ("MiB", 2**20),
    ):
        if n >= scale:
            return f"{n} bytes ({n / scale:.1f} {unit})"
    return f"{n} bytes"


def fits(shape: Sequence[int], itemsize: int, device_type: str) -> bool:
    """Whether :func:`check_fits` accepts ``shape`` (the fast test, without the message)."""
    nbytes = itemsize
    for size in shape:
        nbytes *= size
    return nbytes <= memory_limit("meta" if device_type == "meta" else device_type)[0]


def check_fits(
    shape: Sequence[int],
    itemsize: int,
    device_type: str,
    what: str,
    name: str,
    value: Any,
) -> None:
    """Refuse, before allocating it, a tensor of ``shape`` (``itemsize`` bytes per element)
    larger than :func:`memory_limit` allows: a ``ValueError`` when no process could address
    it, a ``MemoryError`` when only this machine's memory is too small; both in the one
    template, naming the argument ``name`` (that makes it large), ``what`` is allocated,
    its size and the limit. A ``'meta'`` tensor allocates nothing and is only bounded by
    the address space."""
    nbytes = itemsize
    for size in shape:
        nbytes *= int(size)
    limit, why = memory_limit("meta" if device_type == "meta" else device_type)
    if nbytes <= limit:
        return
    exc: type[Exception] = ValueError if nbytes > sys.maxsize else MemoryError
    if exc is ValueError:
        limit, why = sys.maxsize, "what a process can address"
    rule = (
        f"small enough for {what} {tuple(int(s) for s in shape)} to be allocated: "
        f"{_bytes_text(nbytes)} > {_bytes_text(limit)}, {why}"
    )
    fail(name, rule, value, exc=exc)


def rename_args(message: str, names: Mapping[str, str]) -> str:
    """``message`` (in the template) with the argument it is about renamed from omniconv's
    name to the framework's (``names``: ``{omniconv name: framework name}``): the leading
    ```name``` and the ``received name=`` (also ``name.shape``, ``name[0]``), and the
    reference tensor of a dtype / device rule (``(the dtype of input)``); other mentions
    inside the rule are left as they are."""
    for old, new in names.items():
        o = re.escape(old)
        message = re.sub(rf"^`{o}(?=[`.\[])", f"`{new}", message)
        message = re.sub(rf"(?<=; received ){o}(?=[=.\[])", new, message)
        message = re.sub(rf"(\(the (?:dtype|device) of ){o}(?=\))", rf"\g<1>{new}", message)
    return message


class renamed_args:
    """omniconv's errors (exactly ``ValueError``, ``TypeError``, ``MemoryError``) raised
    inside name the framework's argument (:func:`rename_args`), and become
    ``types[type(err)]`` where given (the framework's class that is also the standard one);
    the message is otherwise unchanged. (A class, not a generator: it wraps every forward
    of a front-end, so its cost matters.)"""

    __slots__ = ("names", "types")

    def __init__(
        self,
        names: Mapping[str, str],
        types: Mapping[type[Exception], type[Exception]] | None = None,
    ) -> None:
        self.names = names
        self.types = types

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, err: Any, tb: Any) -> Literal[False]:
        if exc_type not in (ValueError, TypeError, MemoryError):
            return False  # no error, or a framework's own (its words, its names)
        new_type = (self.types or {}).get(exc_type, exc_type)
        args = err.args
        if len(args) == 1 and isinstance(args[0], str):
            args = (rename_args(args[0], self.names),)
        if new_type is exc_type and args == err.args:
            return False
        raise new_type(*args).with_traceback(tb) from None
