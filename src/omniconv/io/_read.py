"""Reading a checkpoint of any supported format into ``{name: torch.Tensor}``."""

from __future__ import annotations

import io
import os
import pickle
import re
import warnings
import zipfile
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
from ._safe_pickle import TORCH_SAFE_GLOBALS, PickleDataError, UnsafeGlobal, brief, safe_load
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
# a torch zip archive's records may inflate to at most this many times the file's size
# (torch.save stores them uncompressed; a zip bomb inflates a small file into gigabytes)
ZIP_RATIO = 8


def _check_torch_zip(raw: IO[bytes], path: Path, size: int) -> None:
    """Every record of a torch zip archive inflates to at most :data:`ZIP_RATIO` times the
    file's size in all (read from the central directory, before torch allocates any)."""
    try:
        with zipfile.ZipFile(raw) as archive:
            records = archive.infolist()
    except Exception as err:  # zipfile's errors on a damaged directory are of many types
        raise CheckpointError(
            path, f"not a readable torch checkpoint (a broken zip: {err})"
        ) from None
    total = sum(r.file_size for r in records)
    if total > ZIP_RATIO * max(size, 1):
        raise CheckpointError(
            path,
            f"its zip records inflate to {total} bytes, over {ZIP_RATIO} times the file's "
            f"{size} bytes (torch.save never compresses them: a repacked or crafted archive)",
        )
    raw.seek(0)


class _StorageClaim(Exception):
    """A legacy torch file asks for more bytes than it has (the message says where)."""


class _Clamped:
    """A binary file whose reads stop at ``size``: a length a pickle declares is never
    allocated beyond the bytes the file has."""

    def __init__(self, f: IO[bytes], size: int) -> None:
        self._f, self._size = f, size

    def read(self, n: int = -1) -> bytes:
        pos = self._f.tell()
        left = max(self._size - pos, 0)
        if n is not None and n > left:
            raise _StorageClaim(
                f"its pickle declares {n} bytes at byte {pos}, {left} are left in the file"
            )
        return self._f.read(left if n is None or n < 0 else n)

    def readline(self, limit: int = -1) -> bytes:
        return self._f.readline(limit)


def _check_torch_legacy(raw: IO[bytes], path: Path, size: int) -> None:
    """The storages a legacy torch file's pickle asks for fit in the file: torch
    allocates each at the size the pickle claims before reading it. Runs torch's own
    weights-only unpickler over the pickles with storages on the meta device (nothing
    allocated), and reads no declared length beyond the file."""
    from torch import _weights_only_unpickler as wo

    f = _Clamped(raw, size)
    claimed: set[Any] = set()
    total = [0]

    def persistent_load(saved_id: Any) -> Any:
        if not (isinstance(saved_id, tuple) and len(saved_id) == 6 and saved_id[0] == "storage"):
            return None  # torch itself refuses the rest
        storage_type, key, _, numel, view = saved_id[1:]
        dtype = getattr(storage_type, "dtype", None)
        if not isinstance(dtype, torch.dtype) or type(numel) is not int or numel < 0:
            raise _StorageClaim(f"a storage of {brief(storage_type)} and {brief(numel)} elements")
        itemsize = torch._utils._element_size(dtype)
        if key not in claimed:
            claimed.add(key)
            total[0] += numel * itemsize
            if total[0] > size:
                raise _StorageClaim(f"its storages claim {total[0]} bytes, the file has {size}")
        if isinstance(view, tuple) and len(view) == 3 and type(view[2]) is int and view[2] >= 0:
            numel = view[2]  # a view of (key, offset, size) elements of the storage
        meta = torch.UntypedStorage(numel * itemsize, device="meta")
        return torch.storage.TypedStorage(wrap_storage=meta, dtype=dtype, _internal=True)

    try:
        with warnings.catch_warnings(), torch.serialization.safe_globals(TORCH_SAFE_GLOBALS):
            warnings.simplefilter("ignore")  # as in _load_torch
            for _ in range(3):  # magic number, protocol version, system info
                wo.load(f, encoding="utf-8")
            unpickler = wo.Unpickler(f, encoding="utf-8")
            unpickler.persistent_load = persistent_load  # type: ignore[method-assign]
            unpickler.load()
    except _StorageClaim as err:
        raise CheckpointError(path, f"not a readable torch checkpoint: {err}") from None
    except Exception as err:  # what torch.load would fail on, before it allocates
        raise _torch_error(err, path) from None
    raw.seek(0)


def _torch_error(err: Exception, path: Path) -> CheckpointError:
    """What torch's reader raised on a file, as the error naming the file."""
    refused = _REFUSED_GLOBAL.search(str(err))
    if isinstance(err, pickle.UnpicklingError) and refused:
        return UnsafeCheckpointError(
            path,
            refused.group(1),
            "torch.load(weights_only=True) refused it; if the file comes from a source "
            "you trust, load it with weights_only=False and save its state_dict()",
        )
    return CheckpointError(path, f"not a readable torch checkpoint ({_short(err)})")


def _load_torch(f: Any, path: Path) -> Any:
    try:
        # torch warns about oddities of corrupted files before failing on them
        with warnings.catch_warnings(), torch.serialization.safe_globals(TORCH_SAFE_GLOBALS):
            warnings.simplefilter("ignore")
            return torch.load(f, map_location="cpu", weights_only=True)
    except Exception as err:  # torch's zip reader and unpickler on corrupted bytes
        raise _torch_error(err, path) from None


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
    f: Any, raw: IO[bytes], path: Path, size: int, framework: str | None
) -> tuple[StateTree, str, str]:
    head = f.read(2)
    f.seek(0)
    try:
        obj = safe_load(f, size, scan=raw)
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
    if file.exists() and not file.is_file():  # a FIFO would block, /dev/zero never end
        kind = "a directory" if file.is_dir() else "not a regular file"
        raise CheckpointError(file, f"{kind}: a checkpoint is a regular file")
    with open(file, "rb") as raw:
        size = os.fstat(raw.fileno()).st_size
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
            tree, layout, fmt = _read_pickle(f, raw, file, size, wanted)
        else:
            if container == "torch-zip":
                _check_torch_zip(raw, file, size)
            else:
                _check_torch_legacy(raw, file, size)
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
