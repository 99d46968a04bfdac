"""Reading a checkpoint of any supported format into ``{name: torch.Tensor}``."""

from __future__ import annotations

import io
import os
import pickle
import re
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import torch
from torch import Tensor

from .._args import check_bool, type_name
from .._progress import Progress
from ._detect import CONTAINERS, DESCRIPTIONS, HEAD, canonical_framework, sniff
from ._errors import CheckpointError, UnsafeCheckpointError
from ._safe_pickle import TORCH_SAFE_GLOBALS, PickleDataError, UnsafeGlobal, safe_load
from ._safetensors import read_safetensors
from ._tree import StateTree, TreeError, looks_like_paddle, state_tree

__all__ = ["Checkpoint", "checkpoint_path", "detect_format", "load_checkpoint", "read_checkpoint"]


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint file as read: ``format`` (``'mxnet'``, ``'paddle'``, ``'megengine'``,
    ``'torch'`` or ``'safetensors'``), ``container`` (how the bytes are laid out, e.g.
    ``'pickle protocol 4'``), the state dict ``tensors`` (names as written), ``entry``
    (the key the state dict was found under, or None) and ``metadata`` (``{key: short
    description}`` of whatever else the file holds)."""

    path: str
    format: str
    container: str
    tensors: OrderedDict[str, Tensor]
    entry: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


def checkpoint_path(path: Any, name: str = "path") -> Path:
    if not isinstance(path, str | os.PathLike):
        raise TypeError(
            f"`{name}` must be a str or os.PathLike; received {name}={type_name(path)!r}"
        )
    return Path(path)


class _ProgressFile:
    """A binary file that advances a percentage bar as it is read."""

    def __init__(self, f: io.BufferedIOBase, size: int, bar: Progress, label: str) -> None:
        self._f, self._size, self._bar, self._label = f, max(size, 1), bar, label

    def _advance(self) -> None:
        percent = min(100, self._f.tell() * 100 // self._size)
        while self._bar.done < percent:
            self._bar.step(self._label)

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        self._advance()
        return data

    def readinto(self, buffer: Any) -> int:
        n = self._f.readinto(buffer)
        self._advance()
        return n

    def readline(self, limit: int = -1) -> bytes:
        data = self._f.readline(limit)
        self._advance()
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True


_REFUSED_GLOBAL = re.compile(r"(?:unsupported GLOBAL|Unsupported global: GLOBAL) ([\w.]+)")


def _load_torch(f: Any, path: Path) -> Any:
    try:
        # torch warns about oddities of corrupted files before failing on them
        with warnings.catch_warnings(), torch.serialization.safe_globals(TORCH_SAFE_GLOBALS):
            warnings.simplefilter("ignore")
            return torch.load(f, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        refused = _REFUSED_GLOBAL.search(str(err))
        if refused:
            raise UnsafeCheckpointError(
                path,
                refused.group(1),
                "torch.load(weights_only=True) refused it; if the file comes from a source "
                "you trust, load it with weights_only=False and save its state_dict()",
            ) from None
        raise CheckpointError(path, f"not a readable torch checkpoint ({_short(err)})") from None
    except Exception as err:  # torch's zip reader and unpickler on corrupted bytes
        raise CheckpointError(path, f"not a readable torch checkpoint ({_short(err)})") from None


def _short(err: BaseException) -> str:
    text = " ".join(str(err).split())
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1].strip()
    return f"{type(err).__name__}: {text[:300]}"


def _read_mxnet(f: IO[bytes], path: Path) -> tuple[StateTree, str]:
    from ..compat.gluon import load_bytes  # MXNet's .params reader of the Gluon front-end

    try:
        loaded = load_bytes(f.read())
    except ValueError as err:
        raise CheckpointError(path, str(err)) from None
    tree = StateTree()
    if isinstance(loaded, dict):
        items = list(loaded.items())
        prefixed = any(k.startswith(("arg:", "aux:")) for k, _ in items)
        kind = "named arrays (export: arg:/aux: names)" if prefixed else "named arrays"
    else:
        items = [(str(i), a) for i, a in enumerate(loaded)]
        kind = "unnamed arrays (named by position)"
    for name, array in items:
        tree.tensors[name] = torch.from_numpy(array.copy())
    return tree, f"MXNet NDArray list, {len(items)} {kind}"


def _read_pickle(
    f: Any, path: Path, size: int, framework: str | None
) -> tuple[StateTree, str, str]:
    head = f.read(2)
    f.seek(0)
    try:
        obj = safe_load(f)
    except UnsafeGlobal as err:
        hint = ""
        if err.name.startswith(("megengine.", "paddle.")):
            hint = "save the state_dict() of the model, not the model or its tensors"
        raise UnsafeCheckpointError(path, err.name, hint) from None
    except PickleDataError as err:
        raise CheckpointError(path, str(err)) from None
    trailing = size - f.tell()
    if trailing:
        raise CheckpointError(path, f"{trailing} bytes after the end of the pickle (corrupted)")
    fmt = framework or ("paddle" if looks_like_paddle(obj) else "megengine")
    try:
        tree = state_tree(obj, paddle=fmt == "paddle")
    except TreeError as err:
        raise CheckpointError(path, f"not a state dict: {err}") from None
    return tree, f"pickle protocol {head[1]}", fmt


def load_checkpoint(
    path: str | os.PathLike[str], framework: str | None = None, *, progress: bool = False
) -> Checkpoint:
    """Read a checkpoint; the format comes from the file's bytes (see
    :func:`omniconv.io.read_checkpoint`). ``progress`` draws a bar on stderr."""
    file = checkpoint_path(path)
    wanted = canonical_framework(framework)
    progress = check_bool(progress, "progress")
    size = file.stat().st_size
    with open(file, "rb") as raw:
        try:
            container = sniff(raw.read(HEAD), size)
        except ValueError as err:
            raise CheckpointError(file, str(err)) from None
        raw.seek(0)
        if wanted is not None and wanted not in CONTAINERS[container]:
            raise CheckpointError(
                file,
                f"framework={wanted!r} was asked for, but the file is "
                f"{DESCRIPTIONS[container]} (read as {'/'.join(CONTAINERS[container])})",
            )
        bar = Progress(100, enabled=progress)
        f: Any = _ProgressFile(raw, size, bar, f"reading {file.name}") if progress else raw
        metadata: dict[str, str] = {}
        if container == "mxnet":
            tree, layout = _read_mxnet(f, file)
            fmt = "mxnet"
        elif container == "safetensors":
            try:
                tensors, metadata = read_safetensors(f, size)
            except ValueError as err:
                raise CheckpointError(file, str(err)) from None
            tree, layout, fmt = StateTree(), "safetensors", "safetensors"
            tree.tensors = tensors
        elif container == "pickle":
            tree, layout, fmt = _read_pickle(f, file, size, wanted)
        else:
            try:
                tree = state_tree(_load_torch(f, file))
            except TreeError as err:
                raise CheckpointError(file, f"not a state dict: {err}") from None
            layout = "torch zip archive" if container == "torch-zip" else "torch legacy pickle"
            fmt = "torch"
        while progress and bar.done < bar.total:
            bar.step(f"reading {file.name}")
    return Checkpoint(
        path=str(file),
        format=fmt,
        container=layout,
        tensors=tree.tensors,
        entry=tree.entry,
        metadata={**metadata, **tree.metadata},
    )


def read_checkpoint(
    path: str | os.PathLike[str], framework: str | None = None
) -> OrderedDict[str, Tensor]:
    """The tensors of a checkpoint file, ``{name: torch.Tensor}`` with the names as the
    file writes them, whatever framework wrote it. The format is read from the bytes
    (magic numbers, then the pickle's structure), never from the file name:

    * ``'mxnet'``: MXNet's NDArray list (``.params`` from ``save_parameters``, names like
      ``0.weight``, or from ``export``, names like ``arg:conv0_weight``);
    * ``'paddle'``: ``paddle.save`` / ``paddle.static.save`` pickles (``.pdparams``,
      ``.pdopt``); a pickle of numpy arrays with one of Paddle's marks;
    * ``'megengine'``: ``megengine.save`` pickles of a state dict (``.pkl``, ``.mge``): any
      other pickle of a dict of numpy arrays;
    * ``'torch'``: ``torch.save`` files (``.pth``, ``.pt``), read with
      ``torch.load(weights_only=True)``;
    * ``'safetensors'``.

    A checkpoint holding its state dict under ``state_dict`` (mmcv, mmengine) or
    ``model`` gives that state dict. ``framework`` (one of the names above, or ``'gluon'``,
    ``'pytorch'``, ``'mmcv'``) says which framework wrote a pickle of numpy arrays
    (Paddle's or MegEngine's), and otherwise must agree with the bytes.

    Pickles are read by a restricted unpickler that builds numpy arrays, dtypes, scalars
    and plain containers only; anything else is refused (:class:`UnsafeCheckpointError`,
    naming the file and the global) before it runs. A truncated or corrupted file raises
    :class:`CheckpointError` (a ``ValueError``) naming the file and what is wrong.
    """
    return load_checkpoint(path, framework).tensors


def detect_format(path: str | os.PathLike[str]) -> str:
    """The format :func:`read_checkpoint` reads ``path`` as (it reads the file)."""
    return load_checkpoint(path).format
