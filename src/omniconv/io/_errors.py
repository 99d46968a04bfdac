"""The errors of checkpoint reading and writing: ``ValueError`` s naming the file."""

from __future__ import annotations

import os

__all__ = ["CheckpointError", "UnsafeCheckpointError"]


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read or written as asked: truncated, corrupted,
    of another format, or holding something that is not a state dict. The message
    starts with the file's path and says what is wrong."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class UnsafeCheckpointError(CheckpointError):
    """A pickle in a checkpoint asked for a Python global that is not a numpy array,
    dtype, scalar or plain container (``global_name``, e.g. ``'posix.system'``). Nothing
    it asked for was run."""

    def __init__(self, path: str | os.PathLike[str], global_name: str, hint: str = "") -> None:
        self.global_name = global_name
        problem = (
            f"refusing to unpickle global {global_name!r}: a checkpoint may hold only "
            "arrays, tensors, dtypes, numbers, strings and plain containers"
        )
        super().__init__(path, problem + (f" ({hint})" if hint else ""))
