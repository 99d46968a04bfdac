"""Writing a file all at once: into a temporary file beside it, renamed over it at the end.

A failure at any point (an exception, Ctrl-C) removes the temporary file and leaves the
destination as it was: never half a file. A destination that cannot be written (a
directory, a missing or read-only directory) raises the ``OSError`` naming it before
anything is written.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["atomic_write"]


def _new_file_mode(path: Path) -> int:
    """The mode a new file gets (0o666 less the umask), or the mode of the file it
    replaces."""
    with contextlib.suppress(OSError):
        return path.stat().st_mode & 0o7777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """``with atomic_write(path) as f: f.write(...)``: ``path`` appears, complete, when
    the block ends without an exception, and is left untouched otherwise."""
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(errno.EISDIR, "Is a directory, not a file to write", str(target))
    mode = _new_file_mode(target)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as err:  # a missing or read-only directory: name the destination
        raise type(err)(
            err.errno, f"cannot write {target.name} there: {err.strerror}", str(target)
        ) from None
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
