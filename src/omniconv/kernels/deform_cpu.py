"""Fast CPU deformable convolution: channels-last sampling (numba) + GEMM.

Design (what DCNv3/v4 taught: sample channels-last, no full im2col buffer, fuse the
per-channel reductions):

* forward, fused (where torch exports its BLAS, :mod:`._blas`): one numba parallel region;
  each thread samples a tile of output pixels, ``mask * bilinear(x)`` for every tap and
  channel, into its own cache-resident column buffer ``col (tile, K*C)`` — rows are output
  pixels, columns ``(tap, channel)`` with channels innermost, so each bilinear corner is one
  contiguous run of channels of the NHWC input — and multiplies it right away by
  ``W' = weight.permute(0, 2, 3, 1)`` with one single-threaded BLAS GEMM per conv group,
  straight into the output (channels_last for channels_last input, no copy; NCHW
  otherwise), then adds the bias. No column matrix is ever materialised; the two thread
  pools (numba's and torch's) never take turns. Elsewhere the same columns are sampled
  per chunk and multiplied by ``torch.addmm`` (bias fused).
* backward, fused (one conv group, torch's BLAS exported): one parallel region per block
  of input channels; the threads split the block's channels (so input-gradient scatters
  and weight-gradient columns never race) and walk all tiles of output pixels: per tile
  ``gcol = grad_out_tile @ W_t`` (BLAS), one numba sweep that rebuilds ``col`` and adds
  the input gradient (scatter) and the offset and mask gradients (reductions over
  channels), then ``gW_t += grad_out_tile^T @ col`` (BLAS). For NCHW input each block is
  copied to NHWC and its gradient written back block by block (``ROUND_BYTES``), so no
  whole-tensor copy exists; the weight gradient is written in torch's layout directly.
  Elsewhere (grouped conv, no BLAS symbols) the chunked form: ``gcol = grad_out @ W'``
  (``torch.mm``), the same numba sweep over the chunk, ``grad_W' += grad_out^T @ col``.
* threads: numba runs ``torch.get_num_threads()`` threads (never more), the fused kernels
  calling single-threaded BLAS from them; the chunked backward splits whole images per
  thread when a chunk holds enough of them (chunks take the same pixel range of several
  images for that), else channel blocks — either way input-gradient scatters never race.

Chunk, tile and block sizes only bound memory (and order floating-point sums).
Half-precision inputs are computed in float32 and rounded once at the end.

This module imports numba lazily (:func:`available`); if numba is missing or fails to
load, :mod:`omniconv.kernels.deform_op` runs the pure-PyTorch path instead. The
backend can be forced with ``OMNICONV_DEFORM_BACKEND=torch|numba|auto`` or
:func:`use_backend`; the fused kernels switched off with ``OMNICONV_DEFORM_GEMM=0`` or
:func:`use_fused_gemm`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import warnings
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import Tensor

from . import _blas

__all__ = [
    "BACKENDS",
    "applicable",
    "available",
    "deform_conv2d_backward",
    "deform_conv2d_forward",
    "disable",
    "get_backend",
    "set_backend",
    "use_backend",
    "use_fused_gemm",
]

BACKENDS = ("auto", "numba", "torch")
#: bytes of the backward's column-matrix chunk (it holds two: ``col`` and ``gcol``); the
#: forward holds one buffer of twice this size, so fewer, larger GEMMs at the same peak
CHUNK_BYTES = 2 << 20
_FAST_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)

_backend = os.environ.get("OMNICONV_DEFORM_BACKEND", "auto")
if _backend not in BACKENDS:  # pragma: no cover - environment misconfiguration
    warnings.warn(
        f"OMNICONV_DEFORM_BACKEND={_backend!r} is not one of {BACKENDS}; using 'auto'",
        RuntimeWarning,
        stacklevel=1,
    )
    _backend = "auto"
_impl: ModuleType | None = None
_load_error: BaseException | None = None
#: bytes of one thread's tile of column rows in the fused forward (stays in L2)
TILE_BYTES = 1 << 20
#: bytes of one thread's two tiles (gcol and col) in the fused backward
BACKWARD_TILE_BYTES = 128 << 10
#: bytes the fused backward of NCHW input holds per block of input channels (it works
#: through them in blocks): the block's NHWC copies of x and of its gradient, and the
#: threads' slices of the weight and of its gradient
ROUND_BYTES = 1 << 20
_use_gemm = os.environ.get("OMNICONV_DEFORM_GEMM", "1") != "0"


def get_backend() -> str:
    return _backend


def set_backend(name: str) -> None:
    """``'auto'`` (numba where it applies, else pure PyTorch), ``'torch'`` (always the
    pure-PyTorch path) or ``'numba'`` (like auto, but warn if numba cannot load)."""
    global _backend
    if name not in BACKENDS:
        raise ValueError(f"`backend` must be one of {BACKENDS}; received backend={name!r}")
    _backend = name


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    old = _backend
    set_backend(name)
    try:
        yield
    finally:
        set_backend(old)


def _load() -> ModuleType | None:
    global _impl, _load_error
    if _impl is not None or _load_error is not None:
        return _impl
    try:
        from . import _deform_numba as impl
    except Exception as exc:  # numba missing, broken, or no usable cache location
        _load_error = exc
        if _backend == "numba":
            warnings.warn(
                f"omniconv: numba fast path unavailable ({exc!r}); using pure PyTorch",
                RuntimeWarning,
                stacklevel=3,
            )
        return None
    _impl = impl
    return impl


def _blas_gemm() -> _blas.Gemm | None:
    """torch's own BLAS GEMM for the fused kernels, if this build exports it (see
    :mod:`._blas`) and it is not switched off (``OMNICONV_DEFORM_GEMM=0`` or
    :func:`use_fused_gemm`); ``None`` means the chunked ``torch.addmm`` path."""
    return _find_gemm() if _use_gemm else None


@functools.cache
def _find_gemm() -> _blas.Gemm | None:
    try:
        return _blas.find()
    except Exception:  # pragma: no cover - an unexpected ctypes failure
        return None


@contextlib.contextmanager
def use_fused_gemm(enabled: bool) -> Iterator[None]:
    """Turn the fused kernels (BLAS called per tile from the numba threads) on or off;
    off, the column chunks are multiplied by ``torch.addmm`` instead."""
    global _use_gemm
    old = _use_gemm
    _use_gemm = enabled
    try:
        yield
    finally:
        _use_gemm = old


def disable(exc: BaseException) -> None:
    """Turn the fast path off for this process after an unexpected failure (e.g. a broken
    JIT cache); the pure-PyTorch path takes over."""
    global _impl, _load_error
    _impl, _load_error = None, exc
    warnings.warn(
        f"omniconv: numba fast path failed ({exc!r}); using pure PyTorch from now on",
        RuntimeWarning,
        stacklevel=3,
    )


def available() -> bool:
    """Whether the numba kernels can be used (imports numba on first call)."""
    return _load() is not None


def applicable(*tensors: Tensor) -> bool:
    """The fast path runs on CPU tensors of float32/64 (and float16/bfloat16, computed in
    float32), outside tracing, when the backend allows it and numba loads."""
    if _backend == "torch":
        return False
    for t in tensors:
        if t.device.type != "cpu" or t.dtype not in _FAST_DTYPES or t.layout != torch.strided:
            return False
        if type(t) is not torch.Tensor and not isinstance(t, torch.nn.Parameter):
            return False  # subclasses (e.g. tensor wrappers) keep the plain path
    return available()


def _threads() -> int:
    import numba

    n = max(1, min(torch.get_num_threads(), int(numba.config.NUMBA_NUM_THREADS)))  # type: ignore[attr-defined]
    numba.set_num_threads(n)
    return n


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return dtype if dtype in (torch.float32, torch.float64) else torch.float32


def _is_channels_last(t: Tensor) -> bool:
    return (
        t.dim() == 4
        and not t.is_contiguous()
        and t.is_contiguous(memory_format=torch.channels_last)
    )


def output_memory_format(input: Tensor) -> torch.memory_format:
    """The memory format of the output and input gradient (the input's, as torch convs)."""
    return torch.channels_last if _is_channels_last(input) else torch.contiguous_format


@functools.lru_cache(maxsize=64)
def _base_positions(
    ho: int, wo: int, kh: int, kw: int, stride: tuple[int, int], padding: tuple[int, int],
    dilation: tuple[int, int], dtype: type[np.floating],
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Undeformed positions ``(K, Ho)`` / ``(K, Wo)`` in the offset dtype: the same (exact,
    small-integer) numbers the pure path adds the offsets to. Read-only, cached."""
    ys = np.arange(ho, dtype=dtype) * dtype(stride[0]) - dtype(padding[0])
    xs = np.arange(wo, dtype=dtype) * dtype(stride[1]) - dtype(padding[1])
    ti = np.repeat(np.arange(kh, dtype=dtype) * dtype(dilation[0]), kw)
    tj = np.tile(np.arange(kw, dtype=dtype) * dtype(dilation[1]), kh)
    base_h = np.ascontiguousarray(ti[:, None] + ys[None, :])
    base_w = np.ascontiguousarray(tj[:, None] + xs[None, :])
    base_h.flags.writeable = base_w.flags.writeable = False
    return base_h, base_w


def _array(t: Tensor) -> np.ndarray:
    """An input of the numba kernels or BLAS: ``t`` as a C-contiguous numpy array (a view
    when ``t`` already is, else a contiguous copy made here). The kernels index flat memory
    and hand raw addresses to BLAS, so no tensor reaches them with strides they did not
    see checked (a transposed, sliced or expanded view would be read wrongly or past its
    buffer)."""
    return t.contiguous().numpy()


def _out_array(t: Tensor) -> np.ndarray:
    """A buffer the kernels write: it must already be C-contiguous (a copy would lose the
    writes), so this checks rather than copies."""
    if not t.is_contiguous():
        raise RuntimeError(
            f"omniconv internal error: a kernel output buffer of shape {tuple(t.shape)} "
            f"has strides {t.stride()}, not C-contiguous"
        )
    return t.numpy()


_NP_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


class _Setup:
    """Everything both passes derive from the arguments (numpy views of torch buffers)."""

    def __init__(
        self,
        input: Tensor,
        weight: Tensor,
        offset: Tensor,
        mask: Tensor,
        use_mask: bool,
        stride: tuple[int, int],
        padding: tuple[int, int],
        dilation: tuple[int, int],
        im2col_step: int,
        buffers: int = 1,
    ) -> None:
        dt = _compute_dtype(input.dtype)
        np_dt = _NP_DTYPES[dt]
        self.dtype = dt
        self.itemsize = np.dtype(np_dt).itemsize
        self.n, self.c, self.h, self.w = input.shape
        self.c_out, self.cg, kh, kw = weight.shape
        self.kw = kw
        self.k = kh * kw
        self.groups = self.c // self.cg
        self.og = self.c_out // self.groups
        self.ho, self.wo = offset.shape[2:]
        self.rows = self.n * self.ho * self.wo
        self.cols = self.k * self.c
        self._input, self._weight = input, weight
        self.off = offset.to(dt).contiguous()
        self.mask = mask.to(dt).contiguous() if use_mask else self.off.new_zeros(1, 1, 1, 1)
        self.use_mask = use_mask
        self.base_h, self.base_w = _base_positions(
            self.ho, self.wo, kh, kw, stride, padding, dilation, np_dt
        )
        self.one = np_dt(1)
        step_rows = max(1, im2col_step) * self.ho * self.wo
        self.step = max(1, im2col_step)
        self.threads = _threads() if self.rows else 1
        budget = 2 * CHUNK_BYTES // buffers  # the forward has one buffer, the backward two
        self.chunk = max(1, min(self.rows, step_rows, budget // (self.cols * self.itemsize)))

    @functools.cached_property
    def x(self) -> Tensor:
        """The NHWC input as ``(N*H*W, C)`` rows (a view for channels_last input; NCHW
        float input is transposed by a numba kernel, twice as fast here as torch's copy)."""
        x = self._input.to(self.dtype)
        if x.is_contiguous() and x.numel():
            impl = _load()
            assert impl is not None
            rows = torch.empty(self.n * self.h * self.w, self.c, dtype=self.dtype)
            impl.nchw_to_nhwc(
                _array(x.view(self.n, self.c, -1)), _out_array(rows.view(self.n, -1, self.c))
            )
            return rows
        return x.permute(0, 2, 3, 1).contiguous().view(-1, self.c)

    @functools.cached_property
    def wt(self) -> Tensor:
        """``W' (G, O/G, K*Cg)``: taps outer, channels inner, as the columns."""
        w = self._weight.to(self.dtype).permute(0, 2, 3, 1)
        return w.reshape(self.groups, self.og, self.k * self.cg)

    def _partial(self) -> tuple[int, int]:
        group = max(1, min(self.n, self.threads, self.step))
        return group, max(1, self.chunk // group)

    def buffer_rows(self) -> int:
        if self.chunk >= self.ho * self.wo:
            return self.chunk
        group, span = self._partial()
        return group * span

    def chunks(self) -> Iterator[tuple[int, int, int, int]]:
        """``(n0, n1, l0, l1)``: pixels ``l0:l1`` of images ``n0:n1``, at most ``self.chunk``
        rows; whole images when one fits, else the same pixel range of several images
        (so the backward can give each thread its own images)."""
        per = self.ho * self.wo
        if self.chunk >= per:
            imgs = self.chunk // per
            for n0 in range(0, self.n, imgs):
                yield n0, min(n0 + imgs, self.n), 0, per
            return
        group, span = self._partial()
        for n0 in range(0, self.n, group):
            for l0 in range(0, per, span):
                yield n0, min(n0 + group, self.n), l0, min(l0 + span, per)

    def args(self) -> tuple[Any, ...]:
        return (
            _array(self.x), self.h, self.w, self.base_h, self.base_w,
            _array(self.off), _array(self.mask), self.use_mask, self.one,
        )  # fmt: skip


def _work_items(images: int, pixels: int, channels: int, threads: int) -> Tensor:
    """Rows ``(from, to)``, channels ``(from, to)`` and partial-sum slot of each backward
    work item: whole images per thread when the chunk has enough of them (no redundant
    bilinear weights, full channel runs), else 16-aligned channel blocks (no false
    sharing of input-gradient cache lines), else one item."""
    if threads > 1 and images >= threads:
        cuts = [images * i // threads for i in range(threads + 1)]
        rows = [(cuts[i] * pixels, cuts[i + 1] * pixels, 0, channels, 0) for i in range(threads)]
    elif threads > 1 and channels >= 32:
        edges = _edges(0, channels, threads).tolist()
        rows = [(0, images * pixels, edges[i], edges[i + 1], i) for i in range(threads)]
    else:
        rows = [(0, images * pixels, 0, channels, 0)]
    return torch.tensor(rows, dtype=torch.int64)


def deform_conv2d_forward(
    input: Tensor,
    weight: Tensor,
    offset: Tensor,
    mask: Tensor,
    bias: Tensor,
    stride_h: int,
    stride_w: int,
    pad_h: int,
    pad_w: int,
    dil_h: int,
    dil_w: int,
    use_mask: bool,
    im2col_step: int,
) -> Tensor:
    impl = _load()
    assert impl is not None
    s = _Setup(
        input, weight, offset, mask, use_mask,
        (stride_h, stride_w), (pad_h, pad_w), (dil_h, dil_w), im2col_step,
    )  # fmt: skip
    channels_last = output_memory_format(input) == torch.channels_last
    per = s.ho * s.wo
    if channels_last:  # rows (n, y, x) x O: the GEMM writes the channels_last output
        out_rows = torch.empty(s.rows, s.c_out, dtype=s.dtype)
        out3 = out_rows.view(s.n, per, s.c_out).transpose(1, 2)
    else:
        out3 = torch.empty(s.n, s.c_out, per, dtype=s.dtype)
    b = bias.to(s.dtype)
    gemm = _blas_gemm()
    if s.rows and gemm is not None:
        tile = max(1, min(per, TILE_BYTES // (s.cols * s.itemsize)))
        # per thread: the column tile, and for NCHW output a (tile, O) block of output rows
        extra = 0 if channels_last else tile * s.c_out
        bufs = torch.empty(s.threads, tile * s.cols + extra, dtype=s.dtype)
        flat = (out_rows if channels_last else out3).view(-1)
        impl.forward_fused(
            *s.args(), _array(s.wt), _array(b), _out_array(flat), channels_last, _out_array(bufs),
            tile, s.wo, s.cg, gemm.sgemm if s.dtype == torch.float32 else gemm.dgemm,
            gemm.set_threads,
        )  # fmt: skip
    elif s.rows:
        bcol = b.view(-1, 1)
        buf = torch.empty(s.buffer_rows() * s.cols, dtype=s.dtype)
        args = s.args()
        w2 = s.wt[0]
        for n0, n1, l0, l1 in s.chunks():
            nl = l1 - l0
            rows = (n1 - n0) * nl
            col = buf[: rows * s.cols].view(rows, s.cols)
            impl.sample_columns(*args, _out_array(col), n0, l0, l1, s.wo, s.kw, s.cg)
            if s.groups == 1 and channels_last and nl == per:
                torch.addmm(b, col, w2.t(), out=out_rows[n0 * per : n1 * per])
                continue
            for n in range(n0, n1):
                seg = col[(n - n0) * nl : (n - n0 + 1) * nl]
                if s.groups == 1 and channels_last:
                    torch.addmm(b, seg, w2.t(), out=out_rows[n * per + l0 : n * per + l1])
                elif s.groups == 1:
                    if nl == per:
                        torch.addmm(bcol, w2, seg.t(), out=out3[n])
                    else:
                        out3[n, :, l0:l1] = torch.addmm(bcol, w2, seg.t())
                else:  # (G, O/G, K*Cg) @ (G, K*Cg, l) -> (G, O/G, l)
                    segg = seg.view(nl, s.groups, -1).permute(1, 2, 0)
                    res = torch.baddbmm(b.view(s.groups, s.og, 1), s.wt, segg)
                    out3[n, :, l0:l1] = res.view(s.c_out, nl)
        del buf
    out = out3.view(s.n, s.c_out, s.ho, s.wo)
    if channels_last:
        out = out_rows.view(s.n, s.ho, s.wo, s.c_out).permute(0, 3, 1, 2)
    return out.to(input.dtype)


def deform_conv2d_backward(
    grad_out: Tensor,
    input: Tensor,
    weight: Tensor,
    offset: Tensor,
    mask: Tensor,
    bias: Tensor,
    stride_h: int,
    stride_w: int,
    pad_h: int,
    pad_w: int,
    dil_h: int,
    dil_w: int,
    use_mask: bool,
    im2col_step: int,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    impl = _load()
    assert impl is not None
    s = _Setup(
        input, weight, offset, mask, use_mask,
        (stride_h, stride_w), (pad_h, pad_w), (dil_h, dil_w), im2col_step, 2,
    )  # fmt: skip
    gemm = _blas_gemm()
    if gemm is not None and s.groups == 1 and s.rows:
        return _backward_fused(s, grad_out, input, weight, offset, mask, bias, gemm)
    dt = s.dtype
    per = s.ho * s.wo
    go3 = grad_out.to(dt).reshape(s.n, s.c_out, per)  # a view for NCHW / channels_last
    gx = torch.zeros(s.n * s.h * s.w, s.c, dtype=dt)
    gwt = torch.zeros(s.groups, s.og, s.k * s.cg, dtype=dt)
    if s.rows:
        nt = s.threads
        goff = torch.zeros((nt, *offset.shape), dtype=dt)
        gmsk = torch.zeros((nt, *mask.shape) if use_mask else (nt, 1, 1, 1, 1), dtype=dt)
        buf = torch.empty(2, s.buffer_rows() * s.cols, dtype=dt)
        args = s.args()
        for n0, n1, l0, l1 in s.chunks():
            nl = l1 - l0
            rows = (n1 - n0) * nl
            gcol = buf[0, : rows * s.cols].view(rows, s.cols)
            col = buf[1, : rows * s.cols].view(rows, s.cols)
            for n in range(n0, n1):  # gcol = grad_out^T @ W'
                g = go3[n, :, l0:l1]
                at = (n - n0) * nl
                if s.groups == 1:
                    torch.mm(g.t(), s.wt[0], out=gcol[at : at + nl])
                else:
                    gg = g.reshape(s.groups, s.og, nl).transpose(1, 2)  # (G, l, O/G)
                    gcol[at : at + nl].view(nl, s.groups, -1).copy_(
                        torch.bmm(gg, s.wt).transpose(0, 1)
                    )
            items = _work_items(n1 - n0, nl, s.c, nt)
            impl.backward_columns(
                *args, _array(gcol), _out_array(col), _out_array(gx), _out_array(goff),
                _out_array(gmsk), _array(items), n0, l0, l1, s.wo, s.kw, s.cg,
            )  # fmt: skip
            for n in range(n0, n1):  # grad W' += grad_out @ col
                g = go3[n, :, l0:l1]
                seg = col[(n - n0) * nl : (n - n0 + 1) * nl]
                if s.groups == 1:
                    gwt[0].addmm_(g, seg)
                else:
                    gg = g.reshape(s.groups, s.og, nl)
                    gwt.baddbmm_(gg, seg.view(nl, s.groups, -1).transpose(0, 1))
        del buf, args
        grad_offset = goff[0] if nt == 1 else goff.sum(0)
        grad_mask = (gmsk[0] if nt == 1 else gmsk.sum(0)) if use_mask else torch.zeros_like(mask)
        del goff, gmsk
    else:
        grad_offset = torch.zeros(offset.shape, dtype=dt)
        grad_mask = torch.zeros(mask.shape, dtype=dt)
    del s
    fmt = output_memory_format(input)
    grad_input = gx.view(input.shape[0], input.shape[2], input.shape[3], input.shape[1])
    del gx
    grad_input = grad_input.permute(0, 3, 1, 2).to(dtype=input.dtype, memory_format=fmt)
    grad_weight = gwt.view(weight.shape[0], *weight.shape[2:], weight.shape[1]).permute(0, 3, 1, 2)
    del gwt
    return (
        grad_input,
        grad_weight.to(dtype=weight.dtype, memory_format=torch.contiguous_format),
        grad_offset.to(dtype=offset.dtype, memory_format=torch.contiguous_format),
        grad_mask.to(dtype=mask.dtype, memory_format=torch.contiguous_format),
        go3.sum((0, 2)).to(bias.dtype),
    )


def _edges(c0: int, c1: int, parts: int) -> Tensor:
    """``parts + 1`` cuts of channels ``c0:c1``, 16-aligned where possible (no false
    sharing of input-gradient cache lines between threads)."""
    cb = c1 - c0
    cuts = [c0 + min(cb, (cb * i // parts + 15) // 16 * 16) for i in range(parts)] + [c1]
    return torch.tensor(cuts, dtype=torch.int64)


def _backward_fused(
    s: _Setup,
    grad_out: Tensor,
    input: Tensor,
    weight: Tensor,
    offset: Tensor,
    mask: Tensor,
    bias: Tensor,
    gemm: _blas.Gemm,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The fused backward (one conv group): the threads split the input channels, in
    rounds of channel blocks for NCHW input (each round copies its block of the input to
    NHWC and writes its block of the input gradient back, so neither is copied whole)."""
    impl = _load()
    assert impl is not None
    dt, nt, c = s.dtype, s.threads, s.c
    channels_last = output_memory_format(input) == torch.channels_last
    go_cl = _is_channels_last(grad_out)
    go = grad_out.to(dt)
    go = go.permute(0, 2, 3, 1) if go_cl else go.contiguous()
    w = weight.to(dt).contiguous().view(s.c_out, c * s.k)
    gw = torch.zeros(s.c_out, c * s.k, dtype=dt)
    goff = torch.zeros((nt, *offset.shape), dtype=dt)
    gmsk = torch.zeros((nt, *mask.shape) if s.use_mask else (nt, 1, 1, 1, 1), dtype=dt)
    pixels = s.n * s.h * s.w
    if channels_last:
        gi = torch.zeros(s.n, s.h, s.w, c, dtype=dt)
        block = c
    else:
        gi = torch.empty(s.n, c, s.h, s.w, dtype=dt)
        # the NHWC copies of x and of its gradient, and each thread's W_t and gW_t
        per_channel = 2 * (pixels + s.c_out * s.k) * s.itemsize
        unit = 16 * nt  # each thread's share stays 16-aligned
        # at least 32 channels a thread: fewer makes each tap's setup dominate
        block = max(2 * unit, ROUND_BYTES // per_channel // unit * unit)
    widest = 0
    rounds = []
    for b0 in range(0, c, block):
        edges = _edges(b0, min(c, b0 + block), nt)
        widest = max(widest, int((edges[1:] - edges[:-1]).max()))
        rounds.append(edges)
    kc = s.k * widest
    tile = max(1, min(s.ho * s.wo, BACKWARD_TILE_BYTES // (2 * kc * s.itemsize)))
    bufs = torch.empty(nt, 2 * (s.c_out + tile) * kc, dtype=dt)  # W_t, gW_t, gcol, col
    fn = gemm.sgemm if dt == torch.float32 else gemm.dgemm
    rest = (
        s.h, s.w, s.base_h, s.base_w, _array(s.off), _array(s.mask), s.use_mask, s.one,
        _array(go), go_cl, _array(w), _out_array(gw), _out_array(goff), _out_array(gmsk),
    )  # fmt: skip
    for edges in rounds:
        b0, b1 = int(edges[0]), int(edges[-1])
        if channels_last:
            x, gx = s.x, gi.view(pixels, c)
        else:
            x = input[:, b0:b1].to(dt).permute(0, 2, 3, 1).contiguous().view(pixels, b1 - b0)
            gx = torch.zeros(pixels, b1 - b0, dtype=dt)
        impl.backward_fused(
            _array(x), b0, _out_array(gx), b0, *rest, _array(edges), _out_array(bufs), tile,
            s.wo, fn, gemm.set_threads,
        )  # fmt: skip
        if not channels_last:
            gi[:, b0:b1] = gx.view(s.n, s.h, s.w, b1 - b0).permute(0, 3, 1, 2)
        del x, gx
    del bufs
    if channels_last:
        gi = gi.permute(0, 3, 1, 2)
    grad_offset = goff[0] if nt == 1 else goff.sum(0)
    grad_mask = (gmsk[0] if nt == 1 else gmsk.sum(0)) if s.use_mask else torch.zeros_like(mask)
    return (
        gi.to(input.dtype),
        gw.view(weight.shape).to(weight.dtype),
        grad_offset.to(offset.dtype),
        grad_mask.to(mask.dtype),
        grad_out.sum((0, 2, 3), dtype=dt).to(bias.dtype),
    )
