"""Writing a state dict: safetensors, or torch's format, by the destination's extension."""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from .._args import check_bool, type_name
from .._progress import Progress
from ._atomic import atomic_write
from ._read import checkpoint_path
from ._safetensors import CODES, write_safetensors

__all__ = ["WRITERS", "write_checkpoint"]

#: destination extension -> format written
WRITERS = {".safetensors": "safetensors", ".pt": "torch", ".pth": "torch"}


def _checked(tensors: Any, kind: str) -> OrderedDict[str, Tensor]:
    if not isinstance(tensors, Mapping):
        rule = "a mapping of names to tensors"
        raise TypeError(f"`tensors` must be {rule}; received tensors={type_name(tensors)!r}")
    out: OrderedDict[str, Tensor] = OrderedDict()
    for name, tensor in tensors.items():
        if not isinstance(name, str) or not name or name == "__metadata__":
            raise ValueError(
                "`tensors` keys must be non-empty strings other than '__metadata__'; "
                f"received key {name!r}"
            )
        if not isinstance(tensor, Tensor):
            raise TypeError(
                f"`tensors[{name!r}]` must be a torch.Tensor; received {type_name(tensor)!r}"
            )
        if tensor.layout != torch.strided:
            raise ValueError(
                f"`tensors[{name!r}]` must be a dense tensor; received layout {tensor.layout}"
            )
        if kind == "safetensors" and tensor.dtype not in CODES:
            known = ", ".join(str(d).removeprefix("torch.") for d in CODES)
            raise ValueError(
                f"`tensors[{name!r}]` must have a dtype safetensors stores ({known}); "
                f"received dtype {str(tensor.dtype).removeprefix('torch.')}"
            )
        out[name] = tensor.detach()
    metadata = getattr(tensors, "_metadata", None)
    if metadata is not None:
        out._metadata = metadata  # type: ignore[attr-defined]
    return out


def write_checkpoint(
    tensors: Mapping[str, Tensor],
    path: str | os.PathLike[str],
    *,
    metadata: Mapping[str, str] | None = None,
    progress: bool = False,
) -> str:
    """Write ``tensors`` to ``path``: a safetensors file if it ends in ``.safetensors``,
    a ``torch.save`` file if it ends in ``.pt`` / ``.pth``. Returns the format written.

    The file is written to a temporary file beside ``path`` and renamed over it at the
    end, so a failure leaves ``path`` as it was and no temporary file behind.
    ``metadata`` (``{str: str}``) goes into the safetensors header's ``__metadata__``.
    ``progress`` draws a bar on stderr, one step per tensor.
    """
    target = checkpoint_path(path)
    kind = WRITERS.get(target.suffix.lower())
    if kind is None:
        raise ValueError(f"`path` must end in {', '.join(WRITERS)}; received path={str(target)!r}")
    progress = check_bool(progress, "progress")
    state = _checked(tensors, kind)
    if metadata is not None and not (
        isinstance(metadata, Mapping)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
    ):
        raise TypeError(
            f"`metadata` must be a mapping of str to str; received metadata={metadata!r:.80}"
        )
    bar = Progress(len(state), enabled=progress)
    with atomic_write(target) as f:
        if kind == "safetensors":
            write_safetensors(f, state, metadata, lambda name: bar.step(f"writing {name}"))
        else:
            torch.save(state, f)
            while progress and bar.done < bar.total:
                bar.step(f"writing {target.name}")
    return kind
