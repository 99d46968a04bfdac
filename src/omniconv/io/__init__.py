"""Checkpoints in and out.

* :func:`read_checkpoint` / :func:`load_checkpoint`: the tensors of an MXNet ``.params``,
  a Paddle ``.pdparams`` / ``.pdopt``, a MegEngine ``.pkl`` / ``.mge``, a torch / mmcv
  ``.pth`` or a safetensors file, the format read from the bytes; pickles through a
  restricted unpickler that runs nothing;
* :func:`map_checkpoint`: a framework's names and layouts as the state dict of the
  matching omniconv / torch modules (:data:`MAPPINGS`: ``gluon``, ``megengine``,
  ``mmcv``, ``paddle``);
* :func:`write_checkpoint`: safetensors (written here, no dependency) or ``torch.save``,
  all at once (a temporary file renamed at the end).

``omniconv convert`` and ``omniconv inspect`` are these on the command line.
"""

from ._errors import CheckpointError, UnsafeCheckpointError
from ._mapping import MAPPINGS, map_checkpoint
from ._read import Checkpoint, detect_format, load_checkpoint, read_checkpoint
from ._write import write_checkpoint

__all__ = [
    "MAPPINGS",
    "Checkpoint",
    "CheckpointError",
    "UnsafeCheckpointError",
    "detect_format",
    "load_checkpoint",
    "map_checkpoint",
    "read_checkpoint",
    "write_checkpoint",
]
