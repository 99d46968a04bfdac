"""The safetensors format, read and written here (no dependency on the ``safetensors``
package; its tests check that the package reads these files bit-exactly)::

    uint64 N                     # little-endian: the size of the header
    N bytes of JSON              # {"__metadata__": {str: str}, name: {"dtype": "F32",
                                 #   "shape": [2, 3], "data_offsets": [begin, end]}, ...}
                                 # padded with spaces to a multiple of 8 bytes
    the data                     # each tensor's bytes, C order, little-endian, at
                                 # [begin, end) from the end of the header; the tensors
                                 # tile the data exactly, with no gap or overlap

The writer puts the tensors in the order given.
"""

from __future__ import annotations

import json
import math
import struct
import sys
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import IO, Any

import torch
from torch import Tensor

from ._safe_pickle import brief

__all__ = ["DTYPES", "read_safetensors", "write_safetensors"]

DTYPES: dict[str, torch.dtype] = {
    "BOOL": torch.bool,
    "U8": torch.uint8,
    "I8": torch.int8,
    "I16": torch.int16,
    "U16": torch.uint16,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I32": torch.int32,
    "U32": torch.uint32,
    "F32": torch.float32,
    "F64": torch.float64,
    "I64": torch.int64,
    "U64": torch.uint64,
    "F8_E4M3": torch.float8_e4m3fn,
    "F8_E5M2": torch.float8_e5m2,
    "C64": torch.complex64,
}
CODES = {dtype: code for code, dtype in DTYPES.items()}
MAX_HEADER = 100 * 1024 * 1024  # the safetensors package's limit
MAX_DIMS = 64  # dimensions of a tensor (as the safe unpickler allows)


def _little_endian() -> None:
    if sys.byteorder != "little":  # pragma: no cover - every platform torch ships on
        raise OSError("omniconv reads and writes safetensors on little-endian machines only")


def write_safetensors(
    f: IO[bytes],
    tensors: Mapping[str, Tensor],
    metadata: Mapping[str, str] | None = None,
    step: Callable[[str], None] | None = None,
) -> None:
    """Write ``tensors`` (checked: see :func:`omniconv.io.write_checkpoint`) to ``f``;
    ``step(name)`` after each tensor's bytes."""
    _little_endian()
    header: dict[str, Any] = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    offset = 0
    for name, tensor in tensors.items():
        nbytes = tensor.numel() * tensor.element_size()
        header[name] = {
            "dtype": CODES[tensor.dtype],
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    f.write(struct.pack("<Q", len(text)))
    f.write(text)
    for name, tensor in tensors.items():
        if tensor.numel():
            flat = tensor.detach().to("cpu").contiguous().reshape(-1)
            f.write(flat.view(torch.uint8).numpy().data)
        if step is not None:
            step(name)


def _entry(name: str, info: Any) -> tuple[torch.dtype, tuple[int, ...], int, int]:
    if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
        raise ValueError(f"header entry {brief(name)} is not {{dtype, shape, data_offsets}}")
    dtype = DTYPES.get(info["dtype"]) if isinstance(info["dtype"], str) else None
    if dtype is None:
        raise ValueError(f"tensor {brief(name)} has unsupported dtype {brief(info['dtype'])}")
    shape, offsets = info["shape"], info["data_offsets"]
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_DIMS
        or not all(type(d) is int and 0 <= d < 2**63 for d in shape)
        or math.prod(max(d, 1) for d in shape) * dtype.itemsize >= 2**63
    ):
        raise ValueError(f"tensor {brief(name)} has shape {brief(shape)}")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(type(o) is int and o >= 0 for o in offsets)
    ):
        raise ValueError(f"tensor {brief(name)} has data_offsets {brief(offsets)}")
    begin, end = offsets
    need = math.prod(shape) * dtype.itemsize
    if end - begin != need:
        raise ValueError(
            f"tensor {brief(name)}: data_offsets {offsets} hold {end - begin} bytes, its shape "
            f"{tuple(shape)} of {info['dtype']} needs {need}"
        )
    return dtype, tuple(shape), begin, end


def read_safetensors(
    f: IO[bytes], size: int, step: Callable[[str], None] | None = None
) -> tuple[OrderedDict[str, Tensor], dict[str, str]]:
    """``(tensors, metadata)`` of a safetensors file of ``size`` bytes; ValueError saying
    what is wrong with a malformed one."""
    _little_endian()
    head = f.read(8)
    if len(head) < 8:
        raise ValueError(f"truncated safetensors file: {len(head)} bytes")
    (n,) = struct.unpack("<Q", head)
    if n > MAX_HEADER:
        raise ValueError(f"safetensors header of {n} bytes (the limit is {MAX_HEADER})")
    if 8 + n > size:
        raise ValueError(f"truncated safetensors file: header of {n} bytes, file of {size}")
    try:
        header = json.loads(f.read(n).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"safetensors header is not JSON ({err})") from None
    except RecursionError:
        raise ValueError("safetensors header is JSON nested too deeply") from None
    if not isinstance(header, dict):
        raise ValueError(f"safetensors header is a JSON {type(header).__name__}, not an object")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise ValueError("safetensors __metadata__ is not a {str: str} object")
    entries = {name: _entry(name, info) for name, info in header.items()}
    data_size = size - 8 - n
    expected = 0
    for name, (_, _, begin, end) in sorted(entries.items(), key=lambda e: e[1][2:]):
        if begin != expected:
            raise ValueError(
                f"tensor {brief(name)} starts at byte {begin} of the data, expected {expected} "
                "(tensors must tile the data with no gap or overlap)"
            )
        expected = end
    if expected != data_size:
        problem = "truncated" if expected > data_size else "has trailing bytes"
        raise ValueError(
            f"safetensors data {problem}: the header describes {expected} bytes, the file "
            f"holds {data_size}"
        )
    tensors: OrderedDict[str, Tensor] = OrderedDict()
    for name, (dtype, shape, begin, end) in entries.items():
        if begin == end:
            tensors[name] = torch.empty(shape, dtype=dtype)
        else:
            f.seek(8 + n + begin)
            raw = bytearray(f.read(end - begin))
            if len(raw) != end - begin:
                raise ValueError(f"truncated safetensors file while reading tensor {brief(name)}")
            tensors[name] = torch.frombuffer(raw, dtype=dtype).reshape(shape)
        if step is not None:
            step(name)
    return tensors, metadata
