"""From what a checkpoint file unpickles to, the state dict: ``{dotted name: tensor}``.

A checkpoint is a state dict, or a dict holding one under ``state_dict`` (mmcv, mmengine,
Lightning) or ``model`` (detectron2, torchvision's references, a Paddle
``{"model": ..., "epoch": ...}``); everything else in it (``meta``, ``epoch``, an
optimizer's state) is metadata, described but not read. Nested dicts and lists inside
the state dict give dotted names (``a.b.0``). Paddle writes a tensor inside a nested
object as a ``(name, ndarray)`` pair and splits arrays of over 2**30 bytes into
``<key>@@.<i>`` slices listed under ``UnpackBigParamInfor@@`` (pickle protocols 2 and
3); both are undone here, as ``paddle.load`` does.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ._safe_pickle import brief

__all__ = ["StateTree", "TreeError", "looks_like_paddle", "state_tree"]

STATE_ENTRIES = ("state_dict", "model")
PADDLE_BIG = "UnpackBigParamInfor@@"
PADDLE_NAMES = "StructuredToParameterName@@"
# Paddle's unique variable names: conv2d_0.w_0, batch_norm_0.w_2, and optimizer
# accumulators / scalars built on them (conv2d_0.w_0_moment1_0, learning_rate_0)
_PADDLE_VAR = re.compile(r"^\w+_\d+\.[wb]_\d+(_\w+_\d+)?$|^learning_rate_\d+$|^@\w+@$")
_MAX_NODES = 5_000_000
_MAX_DEPTH = 1_000  # nesting of dicts / lists inside a state dict
_MAX_NAME = 65_536  # characters of a dotted name


class TreeError(Exception):
    """The object is not a state dict (the message says why)."""


class StateTree:
    """``tensors``: the state dict (an ``OrderedDict``; torch's ``_metadata`` is kept);
    ``entry``: the key it was found under, or None; ``metadata``: ``{key: short
    description}`` of everything else."""

    def __init__(self) -> None:
        self.tensors: OrderedDict[str, Tensor] = OrderedDict()
        self.entry: str | None = None
        self.metadata: dict[str, str] = {}


def _is_array(value: Any) -> bool:
    return isinstance(value, np.ndarray | Tensor)


def _is_paddle_pair(value: Any) -> bool:
    return (
        isinstance(value, tuple)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], np.ndarray)
    )


def looks_like_paddle(obj: Any) -> bool:
    """Whether an unpickled numpy checkpoint has one of Paddle's marks: its name table or
    big-array table, ``(name, ndarray)`` pairs, or Paddle's variable names
    (``conv2d_0.w_0``)."""
    if _is_paddle_pair(obj):
        return True
    if not isinstance(obj, Mapping):
        return False
    if PADDLE_NAMES in obj or PADDLE_BIG in obj:
        return True
    inner = next((obj[k] for k in STATE_ENTRIES if isinstance(obj.get(k), Mapping)), obj)
    return any(
        _is_paddle_pair(v) or (isinstance(k, str) and _PADDLE_VAR.match(k))
        for k, v in inner.items()
    )


def _to_tensor(value: np.ndarray | Tensor) -> Tensor:
    if isinstance(value, Tensor):
        if value.layout != torch.strided:
            raise TreeError(f"a {value.layout} tensor (only dense tensors are read)")
        return value.detach()
    arr = value.view(np.ndarray)
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return torch.from_numpy(np.array(arr, order="C", copy=True))


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, int) and not isinstance(key, bool):
        return str(key)
    raise TreeError(f"a key of type {type(key).__name__} ({brief(key, 40)}); names must be strings")


def _items(obj: Any) -> Iterator[tuple[Any, Any]] | None:
    if isinstance(obj, Mapping):
        return iter(obj.items())
    if isinstance(obj, list | tuple):
        return iter(enumerate(obj))
    return None


def _leaves(root: Any, prefix: str, paddle: bool) -> Iterator[tuple[str, Any]]:
    """``(dotted name, leaf)`` of a nested dict/list (Paddle pairs are leaves), depth
    first, each container visited once."""
    seen: set[int] = set()
    stack: list[tuple[str, int, Any]] = [(prefix, 0, root)]
    nodes = 0
    while stack:
        name, depth, obj = stack.pop()
        nodes += 1
        if nodes > _MAX_NODES:
            raise TreeError(f"more than {_MAX_NODES} entries")
        items = None if paddle and _is_paddle_pair(obj) else _items(obj)
        if items is None:
            yield name, obj
            continue
        if depth >= _MAX_DEPTH:
            raise TreeError(f"containers nested more than {_MAX_DEPTH} deep")
        if id(obj) in seen:
            raise TreeError(
                f"{brief(name or 'the top level')} holds a container seen before "
                "(a cycle or a repeat)"
            )
        seen.add(id(obj))
        children = []
        for k, v in items:
            key = _key(k)
            if len(name) + 1 + len(key) > _MAX_NAME:
                raise TreeError(f"a name longer than {_MAX_NAME} characters ({brief(name)})")
            children.append((f"{name}.{key}" if name else key, depth + 1, v))
        stack.extend(reversed(children))


def _describe(value: Any) -> str:
    if value is None or isinstance(value, bool | int | float | complex | np.generic):
        return brief(value)
    if isinstance(value, str):
        return repr(value) if len(value) <= 60 else f"str of {len(value)} characters"
    if isinstance(value, bytes | bytearray):
        return f"{type(value).__name__} of {len(value)} bytes"
    if _is_array(value):
        return f"an array {tuple(value.shape)} {value.dtype}"
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        kind = "dict" if isinstance(value, Mapping) else type(value).__name__
        return f"a {kind} of {len(value)} entries"
    return type(value).__name__


def _join_big_arrays(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Paddle's ``_pack_loaded_dict``: concatenate the ``<key>@@.<i>`` slices."""
    info = obj[PADDLE_BIG]
    out = {k: v for k, v in obj.items() if k != PADDLE_BIG}
    if not isinstance(info, Mapping):
        raise TreeError(f"{PADDLE_BIG} is a {type(info).__name__}, not a dict")
    for key, spec in info.items():
        try:
            names, shape = list(spec["slices"]), tuple(spec["OriginShape"])
            parts = [out.pop(n) for n in names]
        except (KeyError, TypeError) as err:
            raise TreeError(f"{PADDLE_BIG} entry {brief(key, 60)} is incomplete ({err})") from None
        if not parts or not all(isinstance(p, np.ndarray) and p.ndim == 1 for p in parts):
            raise TreeError(f"{PADDLE_BIG} entry {brief(key, 60)}: slices are not 1-D arrays")
        try:
            out[key] = np.concatenate(parts).reshape(shape)
        except (ValueError, TypeError) as err:
            raise TreeError(f"{PADDLE_BIG} entry {brief(key, 60)}: {err}") from None
    return out


def state_tree(obj: Any, *, paddle: bool = False) -> StateTree:
    """The state dict in ``obj`` (see the module docstring); ``paddle`` undoes Paddle's
    pairs and slices."""
    tree = StateTree()
    if paddle and _is_paddle_pair(obj):
        obj = {obj[0]: obj[1]}
    if not isinstance(obj, Mapping):
        raise TreeError(f"the file holds {_describe(obj)}, not a dict of tensors")
    if paddle and PADDLE_BIG in obj:
        obj = _join_big_arrays(obj)
    root: Any = obj
    for entry in STATE_ENTRIES:
        if isinstance(obj.get(entry), Mapping):
            tree.entry, root = entry, obj[entry]
            for key, value in obj.items():
                if key != entry:
                    tree.metadata[_key(key)] = _describe(value)
            break
    where = "" if tree.entry is None else f"{tree.entry}."
    torch_metadata = getattr(root, "_metadata", None)
    if isinstance(root, Mapping) and PADDLE_NAMES in root:
        # Paddle's table of structured name -> variable name: metadata
        tree.metadata[where + PADDLE_NAMES] = _describe(root[PADDLE_NAMES])
        root = {k: v for k, v in root.items() if k != PADDLE_NAMES}
    built: dict[int, Tensor] = {}  # an array referenced twice is one tensor (shared)
    for name, leaf in _leaves(root, "", paddle):
        if paddle and _is_paddle_pair(leaf):
            leaf = leaf[1]
        if not _is_array(leaf):
            tree.metadata[where + name] = _describe(leaf)
        elif name in tree.tensors:
            raise TreeError(f"two entries are both named {brief(name)}")
        elif id(leaf) in built:
            tree.tensors[name] = built[id(leaf)]
        else:
            try:
                tree.tensors[name] = built[id(leaf)] = _to_tensor(leaf)
            except TreeError as err:
                raise TreeError(f"entry {brief(name)}: {err}") from None
    if isinstance(torch_metadata, Mapping):
        tree.tensors._metadata = torch_metadata  # type: ignore[attr-defined]
    return tree
