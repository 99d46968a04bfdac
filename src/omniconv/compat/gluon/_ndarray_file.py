"""MXNet's ``.params`` / ``mx.nd.save`` binary format: a pure ``bytes <-> arrays`` transform.

Layout (little-endian; MXNet 1.x ``src/ndarray/ndarray.cc``)::

    uint64 0x112, uint64 0, uint64 n          # list magic, reserved, number of arrays
    n x NDArray:
        uint32 magic                            # 0xF993FAC9 (V2) or 0xF993FACA (V3, np-shape)
        int32  storage_type                     # 0 = dense (sparse is rejected)
        int32  ndim, int64 dims[ndim]           # V2: ndim == 0 is a "none" array, nothing follows
        int32  dev_type, int32 dev_id
        int32  type_flag                        # mshadow type
        data   prod(dims) * itemsize bytes, C order
    uint64 n_names, n_names x (uint64 len, utf-8 bytes)

No pickles anywhere; every size, magic and type is checked.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping

import numpy as np

__all__ = ["MAGIC_V2", "MAGIC_V3", "dumps", "loads"]

LIST_MAGIC = 0x112
MAGIC_V1 = 0xF993FAC8
MAGIC_V2 = 0xF993FAC9
MAGIC_V3 = 0xF993FACA
# mshadow type flags (bf16 has no numpy type and is rejected)
TYPE_FLAGS: dict[int, np.dtype] = {
    0: np.dtype("<f4"),
    1: np.dtype("<f8"),
    2: np.dtype("<f2"),
    3: np.dtype("u1"),
    4: np.dtype("<i4"),
    5: np.dtype("i1"),
    6: np.dtype("<i8"),
    7: np.dtype("?"),
}
FLAG_OF = {dt.newbyteorder("<") if dt.itemsize > 1 else dt: k for k, dt in TYPE_FLAGS.items()}


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError(
                f"Invalid NDArray file format: truncated while reading {what} "
                f"(need {n} bytes at offset {self.pos}, file has {len(self.data)})"
            )
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str, what: str) -> tuple[int, ...]:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))


def _read_array(r: _Reader, index: int) -> np.ndarray | None:
    (magic,) = r.unpack("<I", f"array {index} magic")
    if magic not in (MAGIC_V2, MAGIC_V3):
        raise ValueError(
            f"Invalid NDArray file format: array {index} has magic {magic:#x}; "
            f"only V2 ({MAGIC_V2:#x}) and V3 ({MAGIC_V3:#x}) arrays are supported"
        )
    (stype,) = r.unpack("<i", f"array {index} storage type")
    if stype != 0:
        raise ValueError(
            f"Invalid NDArray file format: array {index} has storage type {stype}; "
            "only dense (0) arrays are supported"
        )
    (ndim,) = r.unpack("<i", f"array {index} ndim")
    if ndim < 0 or ndim > 32:
        raise ValueError(f"Invalid NDArray file format: array {index} has ndim={ndim}")
    dims = r.unpack(f"<{ndim}q", f"array {index} shape")
    if any(d < 0 for d in dims):
        raise ValueError(f"Invalid NDArray file format: array {index} has shape {dims}")
    if ndim == 0 and magic == MAGIC_V2:
        return None
    r.unpack("<ii", f"array {index} context")
    (flag,) = r.unpack("<i", f"array {index} type flag")
    dtype = TYPE_FLAGS.get(flag)
    if dtype is None:
        raise ValueError(f"Invalid NDArray file format: array {index} has unsupported type {flag}")
    nbytes = math.prod(dims) * dtype.itemsize  # exact (numpy's int64 product wraps)
    raw = r.take(nbytes, f"array {index} data")  # checked against the bytes left first
    return np.frombuffer(raw, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def loads(data: bytes) -> dict[str, np.ndarray] | list[np.ndarray]:
    """Parse ``mx.nd.save`` bytes: a dict when names are stored, else a list."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"`data` must be bytes; received data=<{type(data).__name__}>")
    r = _Reader(bytes(data))
    magic, _reserved = r.unpack("<QQ", "header")
    if magic != LIST_MAGIC:
        raise ValueError(
            f"Invalid NDArray file format: header magic {magic:#x}, expected {LIST_MAGIC:#x}"
        )
    (n,) = r.unpack("<Q", "array count")
    if n > len(r.data):
        raise ValueError(f"Invalid NDArray file format: {n} arrays in a {len(r.data)}-byte file")
    arrays = []
    for i in range(n):
        arr = _read_array(r, i)
        if arr is None:
            raise ValueError(f"Invalid NDArray file format: array {i} is empty (none)")
        arrays.append(arr)
    (n_names,) = r.unpack("<Q", "name count")
    if n_names not in (0, n):
        raise ValueError(f"Invalid NDArray file format: {n_names} names for {n} arrays")
    names = []
    for i in range(n_names):
        (length,) = r.unpack("<Q", f"name {i} length")
        try:
            names.append(bytes(r.take(length, f"name {i}")).decode("utf-8"))
        except UnicodeDecodeError:
            raise ValueError(f"Invalid NDArray file format: name {i} is not UTF-8") from None
    if r.pos != len(r.data):
        raise ValueError(
            f"Invalid NDArray file format: {len(r.data) - r.pos} trailing bytes after the names"
        )
    if n_names == 0:
        return arrays
    if len(set(names)) != len(names):
        raise ValueError("Invalid NDArray file format: duplicate names")
    return dict(zip(names, arrays, strict=True))


def _flag(arr: np.ndarray, name: str) -> int:
    dt = arr.dtype.newbyteorder("<") if arr.dtype.itemsize > 1 else arr.dtype
    flag = FLAG_OF.get(dt)
    if flag is None:
        raise TypeError(
            f"`{name}` must have one of the dtypes float32, float64, float16, uint8, int32, "
            f"int8, int64, bool; received {name}.dtype={arr.dtype}"
        )
    return flag


def dumps(arrays: Mapping[str, np.ndarray] | list[np.ndarray], *, np_shape: bool = False) -> bytes:
    """``mx.nd.save`` bytes of named (a mapping) or unnamed (a list) arrays, on cpu(0).

    ``np_shape=True`` writes V3 arrays (``npx.set_np()`` semantics); 0-d arrays need it.
    """
    items = list(arrays.items()) if isinstance(arrays, Mapping) else list(enumerate(arrays))
    out = [struct.pack("<QQQ", LIST_MAGIC, 0, len(items))]
    for key, value in items:
        name = str(key)
        arr = np.asarray(value)
        if not arr.flags.c_contiguous:
            arr = arr.copy(order="C")
        if arr.ndim == 0 and not np_shape:
            raise ValueError(
                f"`{name}` must have at least one dimension (a 0-d array needs np_shape=True); "
                f"received {name}.shape=()"
            )
        flag = _flag(arr, name)
        out.append(struct.pack("<Iii", MAGIC_V3 if np_shape else MAGIC_V2, 0, arr.ndim))
        out.append(struct.pack(f"<{arr.ndim}q", *arr.shape))
        out.append(struct.pack("<iii", 1, 0, flag))
        le = arr.dtype.newbyteorder("<") if arr.dtype.itemsize > 1 else arr.dtype
        out.append(arr.astype(le, copy=False).tobytes())
    if isinstance(arrays, Mapping):
        out.append(struct.pack("<Q", len(items)))
        for key, _ in items:
            raw = str(key).encode("utf-8")
            out.append(struct.pack("<Q", len(raw)) + raw)
    else:
        out.append(struct.pack("<Q", 0))
    return b"".join(out)
