"""Which kernel runs omniconv's deformable convolution.

* ``"auto"`` (the default): on CPU, the numba kernels where numba loads and the dtype is
  supported; elsewhere (CUDA, other devices, no numba) the pure-PyTorch kernel.
* ``"torch"``: always the pure-PyTorch kernel.
* ``"numba"``: like ``"auto"``, but say so when numba cannot load.

::

    from omniconv import backends

    with backends.deform_backend("torch"):
        out = deform_conv2d(x, offset, weight)   # pure PyTorch for calls made here
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from .kernels import deform_cpu as _fast

__all__ = ["BACKENDS", "deform_backend", "fused_gemm", "get_deform_backend", "numba_available"]

BACKENDS = _fast.BACKENDS


def get_deform_backend() -> str:
    """The backend that deformable-conv calls made now use."""
    return _fast.get_backend()


@contextlib.contextmanager
def deform_backend(name: str) -> Iterator[None]:
    """Run the deformable-conv calls made inside the block with backend ``name``."""
    with _fast.use_backend(name):
        yield


@contextlib.contextmanager
def fused_gemm(enabled: bool) -> Iterator[None]:
    """Turn the fused CPU kernels (BLAS called per tile from the numba threads) on or off;
    off, the sampled columns are multiplied by ``torch.addmm`` in chunks (same numbers)."""
    with _fast.use_fused_gemm(enabled):
        yield


def numba_available() -> bool:
    """Whether the numba CPU kernels load here (imports numba on first call)."""
    return _fast.available()
