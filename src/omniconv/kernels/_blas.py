"""The BLAS GEMM that torch itself uses on CPU, as raw entry points for the numba kernels.

torch's x86-64 Linux wheels link Intel MKL statically into ``libtorch_cpu.so`` and export its
Fortran ``sgemm_`` / ``dgemm_`` and ``MKL_Set_Num_Threads_Local``. The fused deformable-conv
kernels call them per tile from their own worker threads (one MKL thread each, so nothing
oversubscribes the cores); numba itself calls SciPy's BLAS the same way for ``np.dot``.

:func:`find` looks the symbols up with :mod:`ctypes` and checks them on a small product
against numpy before anything uses them. Where they are missing (other platforms, other
torch builds) or wrong, it returns ``None`` and the kernels fall back to chunked column
buffers multiplied by ``torch.addmm`` - slower, same numbers.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass

import numpy as np

__all__ = ["Gemm", "find"]


@dataclass(frozen=True)
class Gemm:
    """Addresses of ``sgemm_``, ``dgemm_`` and ``MKL_Set_Num_Threads_Local``."""

    sgemm: int
    dgemm: int
    set_threads: int


_P = ctypes.c_void_p


def _check(fn: ctypes._CFuncPtr, dtype: type[np.floating]) -> bool:  # type: ignore[name-defined]
    """``C = A @ B`` for row-major ``A (2, 3)``, ``B (3, 4)``, as column-major ``C^T = B^T A^T``."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 3)).astype(dtype)
    b = rng.standard_normal((3, 4)).astype(dtype)
    c = np.full((2, 4), np.nan, dtype=dtype)
    ctype = ctypes.c_float if dtype == np.float32 else ctypes.c_double

    def i(v: int) -> ctypes._Pointer[ctypes.c_int]:
        return ctypes.pointer(ctypes.c_int(v))

    def f(v: float) -> ctypes._Pointer[ctypes.c_float | ctypes.c_double]:
        return ctypes.pointer(ctype(v))

    n = ctypes.c_char_p(b"N")
    fn(n, n, i(4), i(2), i(3), f(1.0), b.ctypes.data, i(4), a.ctypes.data, i(3), f(0.0),
       c.ctypes.data, i(4))  # fmt: skip
    return bool(np.allclose(c, a @ b, rtol=1e-5, atol=1e-5))


def find() -> Gemm | None:
    """The checked entry points, or ``None`` where this torch build does not export them."""
    import torch

    path = os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so")
    if not os.path.exists(path):
        return None
    try:
        lib = ctypes.CDLL(path)  # already loaded by torch: this only gets a handle
        sgemm, dgemm = lib.sgemm_, lib.dgemm_
        set_threads = lib.MKL_Set_Num_Threads_Local
    except (OSError, AttributeError):
        return None
    for fn in (sgemm, dgemm):
        fn.restype = None
        fn.argtypes = [_P] * 13
    set_threads.restype = ctypes.c_int
    set_threads.argtypes = [ctypes.c_int]
    if not (_check(sgemm, np.float32) and _check(dgemm, np.float64)):
        return None

    def addr(fn: ctypes._CFuncPtr) -> int:  # type: ignore[name-defined]
        return ctypes.cast(fn, _P).value or 0

    return Gemm(addr(sgemm), addr(dgemm), addr(set_threads))
