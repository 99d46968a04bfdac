"""Peak memory: the highest sum of live CPU tensor allocations made during a call, read
from ``torch.profiler``'s allocator records (``profile_memory=True``) summed in time order.

Memory held by BLAS/oneDNN internals outside torch's allocator is not counted, for any
contender."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["peak_memory"]


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Silence file descriptor 2 (the profiler library prints a line at every start and
    stop straight to it), restoring it afterwards; Python's ``sys.stderr`` is flushed
    first so nothing of ours is lost."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no usable fd 2: nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def peak_memory(fn: Callable[[], Any]) -> int:
    """Peak bytes of CPU tensor memory allocated (and still live) during ``fn()``.

    Frees of tensors allocated before the call count as negative, so ``fn`` must not
    release older tensors (e.g. last run's gradients) or the peak reads low."""
    from torch.profiler import ProfilerActivity, profile

    with (
        _native_stderr_silenced(),
        profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof,
    ):
        fn()
    # raw allocator records (every allocation and free, with its own timestamp)
    records = [
        (e.start_ns(), e.nbytes())
        for e in prof.profiler.kineto_results.events()
        if e.name() == "[memory]" and str(e.device_type()).endswith("CPU")
    ]
    records.sort()
    cur = peak = 0
    for _, nbytes in records:
        cur += nbytes
        peak = max(peak, cur)
    return peak
