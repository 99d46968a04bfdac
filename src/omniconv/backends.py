"""Which kernel runs omniconv's deformable convolution.

The op ``omniconv::deform_conv2d`` has a kernel per device in torch's dispatcher: on CPU
the numba kernels (where numba works here and the dtype is a float one), on every other
device (CUDA, MPS, ...) the pure-PyTorch kernel. Both give the same numbers; the numba
kernels are several times faster. The settings below apply to the calls made in the
current thread (or asyncio task) only: they are :mod:`contextvars`, so another thread's
``with`` block never changes what this one runs.

* ``deform_backend("auto")`` (the default): as described above.
* ``deform_backend("torch")``: the pure-PyTorch kernel on CPU too.
* ``deform_backend("numba")``: like ``"auto"``, but say (a ``RuntimeWarning``) when the
  numba kernels cannot run here.

::

    from omniconv import backends

    with backends.deform_backend("torch"):
        out = deform_conv2d(x, offset, weight)   # pure PyTorch for calls made here

Whether numba works is decided once per process, at first use: numba not installed means
the pure kernel, quietly; numba installed but unable to load or compile is warned about
once. An error inside a kernel is raised, never hidden by a switch to the other kernel.

Memory: each thread that ran the CPU kernels keeps the workspace of their temporaries
(the NHWC copy of NCHW input, tiles, packed weights: up to 16 MiB, the largest call's)
for its next call; :func:`cached_workspace_bytes` tells its size, :func:`release_workspace`
frees it (this thread's).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

from ._args import check_bool, fail
from .kernels import deform_cpu as _cpu

__all__ = [
    "BACKENDS",
    "cached_workspace_bytes",
    "deform_backend",
    "fused_gemm",
    "get_deform_backend",
    "numba_available",
    "release_workspace",
]

#: the names :func:`deform_backend` accepts
BACKENDS: tuple[str, ...] = _cpu.BACKENDS


def get_deform_backend() -> str:
    """The backend that deformable-conv calls made now, in this thread, use."""
    return _cpu.BACKEND.get()


def deform_backend(name: str) -> contextlib.AbstractContextManager[None]:
    """Run the deformable-conv calls made inside the block, in this thread, with backend
    ``name`` (one of :data:`BACKENDS`; checked at the call, before the block)."""
    if not isinstance(name, str):
        fail("name", f"a backend, one of {BACKENDS}", name, exc=TypeError)
    if name not in BACKENDS:
        fail("name", f"a backend, one of {BACKENDS}", name)
    return _deform_backend(name)


@contextlib.contextmanager
def _deform_backend(name: str) -> Iterator[None]:
    if name == "numba" and not numba_available():
        warnings.warn(
            f"omniconv: the numba kernels cannot run here ({_cpu.numba_problem()}); "
            "deformable convolutions use the pure-PyTorch kernel",
            RuntimeWarning,
            stacklevel=3,
        )
    token = _cpu.BACKEND.set(name)
    try:
        yield
    finally:
        _cpu.BACKEND.reset(token)


def fused_gemm(enabled: bool) -> contextlib.AbstractContextManager[None]:
    """Turn the fused CPU kernels (omniconv's GEMM called per tile on the numba threads) on or off
    for the calls made inside the block, in this thread; off, the sampled columns are
    multiplied by ``torch.addmm`` in chunks (same numbers). ``enabled``: True or False."""
    return _fused_gemm(check_bool(enabled, "enabled"))


@contextlib.contextmanager
def _fused_gemm(enabled: bool) -> Iterator[None]:
    token = _cpu.FUSED_GEMM.set(enabled)
    try:
        yield
    finally:
        _cpu.FUSED_GEMM.reset(token)


def numba_available() -> bool:
    """Whether the numba CPU kernels run here (imports numba and, the first time ever,
    compiles a small kernel; decided once per process)."""
    return _cpu.numba_kernels() is not None


def release_workspace() -> None:
    """Free the CPU kernels' cached workspace of the calling thread (the next call makes
    a new one)."""
    _cpu.release_workspace()


def cached_workspace_bytes() -> int:
    """Bytes of the CPU kernels' workspace the calling thread keeps between calls."""
    return _cpu.cached_workspace_bytes()
