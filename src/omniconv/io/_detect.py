"""What a checkpoint file is, from its first bytes (never its name).

* ``mxnet``: MXNet's NDArray list (``mx.nd.save``, ``.params``): uint64 ``0x112``;
* ``torch``: a torch zip archive (``torch.save``, ``.pth`` / ``.pt``): ``PK\\x03\\x04``;
  or torch's legacy format: a protocol-2 pickle of the long ``0x1950a86a20f9469cfc6c``;
* ``safetensors``: a uint64 header size that fits the file, then ``{``;
* ``paddle`` / ``megengine``: any other pickle (``\\x80`` and protocol 2 to 5). A pickle
  of numpy arrays is Paddle's (``paddle.save``, ``paddle.static.save``) when it has one
  of Paddle's marks (:func:`omniconv.io._tree.looks_like_paddle`), else MegEngine's
  (``megengine.save``: a pickled dict of numpy arrays); that is decided once it is read.

MegEngine's traced graphs (``trace.dump``, ``MGBS`` / ``MGBC``) are recognised and
refused: they are programs, not state dicts.
"""

from __future__ import annotations

import struct

__all__ = ["ALIASES", "CONTAINERS", "FORMATS", "canonical_framework", "sniff"]

FORMATS = ("mxnet", "paddle", "megengine", "torch", "safetensors")
ALIASES = {"gluon": "mxnet", "pytorch": "torch", "mmcv": "torch", "mmdet": "torch"}
#: container -> the formats it can hold
CONTAINERS = {
    "mxnet": ("mxnet",),
    "torch-zip": ("torch",),
    "torch-legacy": ("torch",),
    "safetensors": ("safetensors",),
    "pickle": ("paddle", "megengine"),
}
DESCRIPTIONS = {
    "mxnet": "an MXNet NDArray list",
    "torch-zip": "a torch zip archive",
    "torch-legacy": "a torch legacy pickle",
    "safetensors": "a safetensors file",
    "pickle": "a pickle",
}
_MXNET = struct.pack("<Q", 0x112)
_TORCH_LEGACY = b"\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")
_MEGENGINE_GRAPH = (b"MGBS", b"MGBC")
HEAD = 16


def canonical_framework(framework: object) -> str | None:
    """``framework`` (None, a format or an alias) as a format name; ValueError otherwise."""
    if framework is None:
        return None
    if isinstance(framework, str) and framework.lower() in (*FORMATS, *ALIASES):
        name = framework.lower()
        return ALIASES.get(name, name)
    known = ", ".join([*FORMATS, *ALIASES])
    error = ValueError if isinstance(framework, str) else TypeError
    raise error(f"`framework` must be None or one of {known}; received framework={framework!r}")


def sniff(head: bytes, size: int) -> str:
    """The container of a file of ``size`` bytes starting with ``head`` (its first
    :data:`HEAD` bytes): a key of :data:`CONTAINERS`; ValueError with what it is
    otherwise."""
    if head[:8] == _MXNET:
        return "mxnet"
    if head[:4] == b"PK\x03\x04":
        return "torch-zip"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "torch-legacy" if head[2:14] == _TORCH_LEGACY else "pickle"
    if len(head) >= 9 and head[8:9] == b"{":
        (n,) = struct.unpack("<Q", head[:8])
        if 8 + n <= size:
            return "safetensors"
        raise ValueError(
            f"truncated safetensors file: its header needs {n} bytes after the first 8, "
            f"the file has {size} bytes"
        )
    if head[:4] in _MEGENGINE_GRAPH:
        raise ValueError(
            "a MegEngine traced graph (trace.dump), not a state dict: save the weights "
            "with megengine.save(module.state_dict(), path)"
        )
    if size == 0:
        raise ValueError("the file is empty")
    shown = head[:8].hex(" ")
    raise ValueError(
        "not a checkpoint format omniconv reads (MXNet .params, Paddle / MegEngine "
        f"pickles, torch .pth, safetensors); it starts with bytes {shown}"
    )
