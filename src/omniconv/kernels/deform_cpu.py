"""Fast CPU deformable convolution: channels-last sampling (numba) + our own GEMM.

Design (what DCNv3/v4 taught: sample channels-last, no full im2col buffer, fuse the
per-channel reductions):

* forward, fused: one numba parallel region; each thread samples a tile of output
  pixels, ``mask * bilinear(x)`` for every tap and channel, into its own cache-resident
  column buffer ``col (tile, K*C)`` — rows are output pixels, columns ``(tap, channel)``
  with channels innermost, so each bilinear corner is one contiguous run of channels of
  the NHWC input (:mod:`._channel_vectors`: explicit vectors) — and multiplies it right
  away by ``W'`` (:mod:`._tile_gemm`: a register-tile GEMM emitted as LLVM IR, each entry
  one FMA chain in a fixed order) into an output tile, then writes it with the bias into
  the output (channels_last for channels_last input, NCHW otherwise). No column matrix
  is ever materialised. Elsewhere the same columns are sampled per chunk and multiplied
  by ``torch.addmm`` (bias fused).
* backward, fused (one conv group), for a batch (``N > 1``): the threads split the
  images, in slots fixed by ``N``; per tile of output pixels ``gcol = grad_out_tile @ W'``,
  one numba sweep that rebuilds ``col`` and adds the input gradient (scatter) and the
  offset and mask gradients (reductions over channels), then ``gW_slot += grad_out_tile^T
  @ col``; the slots' weight gradients are added in slot order. NCHW input is copied to
  NHWC a slot at a time. For one image: one parallel region per block of input channels;
  the threads split the block's channels (so input-gradient scatters and weight-gradient
  columns never race) and walk all tiles, the same three steps on their channels; for
  NCHW input each block is copied to NHWC and its gradient written back block by block
  (``ROUND_BYTES``). Elsewhere (grouped conv, or ``fused_gemm(False)``) the chunked form:
  ``gcol = grad_out @ W'`` (``torch.mm``), the same numba sweep over the chunk,
  ``grad_W' += grad_out^T @ col``.
* threads: numba runs ``torch.get_num_threads()`` threads (never more); the chunked
  backward splits whole images per thread when a chunk holds enough of them (chunks take
  the same pixel range of several images for that), else channel blocks — either way
  input-gradient scatters never race.

Chunk, tile and block sizes only bound memory (and order floating-point sums).
Half-precision inputs are computed in float32 and rounded once at the end.

Which kernel runs is decided per call by :mod:`.deform_op`'s CPU kernel through
:func:`runs`: the thread-local choice of :mod:`omniconv.backends` (:data:`BACKEND`), the
dtypes, and whether numba works here (:func:`numba_kernels`, decided once per process at
first use). :data:`FUSED_GEMM` (also set through :mod:`omniconv.backends`) switches the
fused kernels off for the chunked ``torch.addmm`` form.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import math
import threading
import warnings
from collections.abc import Iterator
from contextvars import ContextVar
from types import ModuleType
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from ._deform_args import DeformParams, DeformTensors, is_channels_last, output_memory_format
from ._deform_structs import Chunk, Geometry, OffsetGrads, Output, Rows, Sampling, Tiles
from .deform_torch import bias_grad

__all__ = [
    "BACKEND",
    "BACKENDS",
    "FUSED_GEMM",
    "backward",
    "cached_workspace_bytes",
    "forward",
    "numba_kernels",
    "numba_problem",
    "release_workspace",
    "runs",
]

#: the backends :func:`omniconv.backends.deform_backend` accepts
BACKENDS = ("auto", "numba", "torch")
#: the backend of this thread's (context's) calls; ``"torch"`` keeps CPU calls on the
#: pure-PyTorch kernel
BACKEND: ContextVar[str] = ContextVar("omniconv_deform_backend", default="auto")
#: whether this thread's (context's) calls may use the fused kernels (GEMM per tile)
FUSED_GEMM: ContextVar[bool] = ContextVar("omniconv_deform_fused_gemm", default=True)

#: bytes of the backward's column-matrix chunk (it holds two: ``col`` and ``gcol``); the
#: forward holds one buffer of twice this size, so fewer, larger GEMMs at the same peak
CHUNK_BYTES = 2 << 20
#: bytes of one thread's tile of column rows in the fused forward (stays in L2)
TILE_BYTES = 128 << 10
#: bytes of one thread's two tiles (gcol and col) in the fused backward
BACKWARD_TILE_BYTES = 128 << 10
#: bytes the fused backward of NCHW input holds per block of input channels (it works
#: through them in blocks): the block's NHWC copies of x and of its gradient, and the
#: threads' slices of the weight and of its gradient
ROUND_BYTES = 1 << 20
#: bytes of one thread's two column tiles (gcol and col) in the backward by images
IMAGE_TILE_BYTES = 512 << 10
#: at most this many slots of images in the backward by images (each slot has its own
#: weight-gradient partial sum; the slots are added in order)
IMAGE_SLOTS = 8
#: bands of output pixels in the backward of one image (each with its own window of the
#: input gradient and weight-gradient partial; added in band order)
BANDS = 8
#: the windows of the bands may hold at most this many copies of the input (sampling far
#: away makes them overlap); beyond, the backward of one image splits channels instead
BAND_WINDOW_COPIES = 2
#: images per chunk of the chunked passes when a chunk holds less than one image (the
#: backward can then give whole images to that many threads)
SPAN_IMAGES = 2
#: a thread keeps the workspace of its calls' temporaries (the NHWC copy of NCHW input,
#: tiles, packed weights) between calls, up to this many bytes (:func:`_workspace`)
WORKSPACE_CACHE_BYTES = 16 << 20

_FAST_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
_NP_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}
_NUMBA_PACKAGES = ("numba", "llvmlite")
_log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- when numba runs

_load_lock = threading.Lock()
_loaded: tuple[ModuleType | None, str | None] | None = None  # (kernels, why not), once


def numba_kernels() -> ModuleType | None:
    """The numba kernel module, or ``None`` where numba cannot run here. Decided once per
    process, at first use: numba not installed is a quiet fallback to the pure-PyTorch
    kernel (a log message); numba installed but failing to load or compile (a broken
    install, no writable cache, no threading layer) is warned about, once."""
    global _loaded
    if _loaded is None:
        with _load_lock:
            if _loaded is None:
                _loaded = _load()
    return _loaded[0]


def numba_problem() -> str | None:
    """Why :func:`numba_kernels` is ``None`` (after it was called), else ``None``."""
    return None if _loaded is None else _loaded[1]


def _load() -> tuple[ModuleType | None, str | None]:
    try:
        from . import _deform_numba

        _self_test(_deform_numba)
    except Exception as exc:
        if isinstance(exc, ModuleNotFoundError) and exc.name in _NUMBA_PACKAGES:
            _log.info("omniconv: numba is not installed; deformable convolutions on CPU use "
                      "the pure-PyTorch kernel")  # fmt: skip
            return None, f"numba is not installed ({exc})"
        warnings.warn(
            f"omniconv: the numba CPU kernels cannot run here ({exc!r}); deformable "
            "convolutions use the pure-PyTorch kernel in this process",
            RuntimeWarning,
            stacklevel=2,
        )
        return None, repr(exc)
    return _deform_numba, None


def _self_test(kernels: ModuleType) -> None:
    """Start numba's thread pool, then compile (or load from numba's cache) and run one
    small parallel kernel."""
    src = np.arange(2 * 3 * 40, dtype=np.float32).reshape(2, 3, 40)
    dst = np.empty((2, 40, 3), np.float32)
    _start_pool()
    _set_threads()
    kernels.nchw_to_nhwc(src, dst)
    if not np.array_equal(dst, src.transpose(0, 2, 1)):
        raise RuntimeError("the numba self-test computed wrong numbers")


def runs(*tensors: Tensor) -> bool:
    """Whether a CPU call on ``tensors`` runs the numba kernels: unless this thread forced
    the pure path (``omniconv.backends.deform_backend("torch")``), on plain strided CPU
    tensors of float32/64 (and float16/bfloat16, computed in float32) where numba works."""
    if BACKEND.get() == "torch":
        return False
    for t in tensors:
        if t.device.type != "cpu" or t.dtype not in _FAST_DTYPES or t.layout != torch.strided:
            return False
        if type(t) is not torch.Tensor and not isinstance(t, torch.nn.Parameter):
            return False  # subclasses (e.g. tensor wrappers) keep the plain path
    return numba_kernels() is not None


def _kernels() -> ModuleType:
    kernels = numba_kernels()
    if kernels is None:
        raise RuntimeError(f"omniconv: the numba CPU kernels cannot run here: {numba_problem()}")
    return kernels


def _start_pool() -> None:
    """Start numba's thread pool, leaving torch's thread count as it was.

    numba's OpenMP threading layer shares the process's ``libgomp`` with torch, and
    starting its pool calls ``omp_set_num_threads(NUMBA_NUM_THREADS)`` (every core): a
    process that asked torch for 1 thread (``OMP_NUM_THREADS=1``, as ``torchrun`` sets
    it, or ``torch.set_num_threads(1)``) would silently run torch on all cores after its
    first deformable conv, and two such processes on one machine were 30x slower."""
    import numba.np.ufunc.parallel as numba_parallel

    before = torch.get_num_threads()
    numba_parallel._launch_threads()
    if torch.get_num_threads() != before:
        torch.set_num_threads(before)


def _threads() -> int:
    """numba's thread count for a call: torch's (never more than numba's pool). Loads the
    kernels first, so numba's pool starts through :func:`_start_pool`."""
    _kernels()
    return _set_threads()


def _set_threads() -> int:
    import numba

    n = max(1, min(torch.get_num_threads(), int(numba.config.NUMBA_NUM_THREADS)))  # type: ignore[attr-defined]
    numba.set_num_threads(n)
    return n


class _Workspace(threading.local):
    """This thread's cached workspace: ``buffer`` (bytes), the most bytes a call asked
    for (``want``), the bytes handed out in the current call, and the call depth."""

    def __init__(self) -> None:
        self.buffer: Tensor | None = None
        self.want = 0
        self.used = 0
        self.depth = 0


_workspace_state = _Workspace()


@contextlib.contextmanager
def _workspace() -> Iterator[None]:
    """One kernel call's temporaries come from this thread's cached buffer
    (:func:`_temporary`), grown at the start of a call to the most an earlier call asked
    for, within ``WORKSPACE_CACHE_BYTES``.

    Why: fresh temporaries of a few MiB each call cost page faults whenever glibc's
    malloc has handed the memory back to the kernel (its trim heuristics make this
    happen in some processes and not in others): 2,64,56 NCHW forward 1.6-2.7 ms with
    ~150-880 faults per call, against 1.37-1.51 ms with the temporaries kept."""
    ws = _workspace_state
    ws.depth += 1
    try:
        if ws.depth == 1:
            size = 0 if ws.buffer is None else ws.buffer.numel()
            if size < ws.want <= WORKSPACE_CACHE_BYTES:
                ws.buffer = None  # freed before the larger one is made
                ws.buffer = torch.empty(ws.want, dtype=torch.uint8)
            ws.used = 0
        yield
    finally:
        if ws.depth == 1:
            ws.want = max(ws.want, ws.used)
        ws.depth -= 1


def _temporary(shape: tuple[int, ...], dtype: torch.dtype, zero: bool = False) -> Tensor:
    """A tensor that lives only inside the current kernel call (it must not escape): a
    view of this thread's workspace when one is active and has room, else a fresh
    tensor; zeroed when ``zero``."""
    ws = _workspace_state
    if ws.depth == 1:
        start = _round_up(ws.used, 64)
        ws.used = start + math.prod(shape) * dtype.itemsize
        if ws.buffer is not None and ws.used <= ws.buffer.numel():
            t = ws.buffer[start : ws.used].view(dtype).view(shape)
            return t.zero_() if zero else t
    return torch.zeros(shape, dtype=dtype) if zero else torch.empty(shape, dtype=dtype)


def cached_workspace_bytes() -> int:
    """Bytes of this thread's cached workspace (:func:`_workspace`)."""
    buffer = _workspace_state.buffer
    return 0 if buffer is None else buffer.numel()


def release_workspace() -> None:
    """Free this thread's cached workspace (:func:`_workspace`)."""
    ws = _workspace_state
    ws.buffer = None
    ws.want = 0


def _fused() -> bool:
    """Whether this context's calls may use the fused kernels (:data:`FUSED_GEMM`)."""
    return FUSED_GEMM.get()


# ----------------------------------------------------------------------------- preparation


def _array(t: Tensor) -> np.ndarray:
    """An input of the numba kernels: ``t`` as a C-contiguous numpy array (a view
    when ``t`` already is, else a contiguous copy made here). The kernels index flat memory
    and hand raw addresses to the GEMM, so no tensor reaches them with strides they did not
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


class _Dims(NamedTuple):
    """The sizes of one call, and the dtype the kernels compute in."""

    n: int
    c: int
    h: int
    w: int
    c_out: int
    cg: int  # input channels per conv group
    kh: int
    kw: int
    dg: int  # deformable groups
    ho: int
    wo: int
    dtype: torch.dtype  # float32 or float64

    @classmethod
    def of(cls, t: DeformTensors) -> _Dims:
        n, c, h, w = t.input.shape
        c_out, cg, kh, kw = t.weight.shape
        _, c_off, ho, wo = t.offset.shape
        dtype = t.input.dtype if t.input.dtype in _NP_DTYPES else torch.float32
        return cls(n, c, h, w, c_out, cg, kh, kw, c_off // (2 * kh * kw), ho, wo, dtype)

    @property
    def k(self) -> int:
        return self.kh * self.kw

    @property
    def groups(self) -> int:
        return self.c // self.cg

    @property
    def og(self) -> int:
        return self.c_out // self.groups

    @property
    def per(self) -> int:
        """Output pixels per image."""
        return self.ho * self.wo

    @property
    def rows(self) -> int:
        """Output pixels of the batch: the rows of the column matrix."""
        return self.n * self.per

    @property
    def cols(self) -> int:
        """Columns of the column matrix: ``K*C``."""
        return self.k * self.c

    @property
    def itemsize(self) -> int:
        return self.dtype.itemsize

    @property
    def chunk(self) -> int:
        """Channels per chunk of the offset / mask gradient reduction
        (:func:`reduce_channels`)."""
        return reduce_channels(self.c)

    @property
    def chunks(self) -> int:
        return -(-self.c // self.chunk)

    def geometry(self) -> Geometry:
        return Geometry(
            self.h, self.w, self.c, self.cg, self.c // self.dg, self.k, self.wo, self.chunk
        )


def reduce_channels(channels: int) -> int:
    """Channels per chunk of the offset / mask gradient reduction: 16 up to 32 channels
    (two threads can still share them), else a multiple of 32 that keeps at most 16
    chunks (each chunk ends in a few scattered writes, and its partial sums take a copy of
    those gradients). A function of the channel count only: threads take whole chunks,
    and the chunks' sums are added in chunk order, so the thread count never changes a
    bit."""
    if channels <= 32:
        return 16
    return 32 * max(1, -(-channels // 512))


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


def _sampling(t: DeformTensors, p: DeformParams, d: _Dims) -> Sampling:
    """The base positions, offsets and mask in the compute dtype, checked C-contiguous."""
    np_dtype = _NP_DTYPES[d.dtype]
    base_h, base_w = _base_positions(
        d.ho, d.wo, d.kh, d.kw, p.stride, p.padding, p.dilation, np_dtype
    )
    offset = _array(t.offset.to(d.dtype))
    mask = _array(t.mask.to(d.dtype)) if p.use_mask else np.zeros((1, 1, 1, 1), np_dtype)
    return Sampling(base_h, base_w, offset, mask, p.use_mask)


def _nhwc_rows(input: Tensor, d: _Dims) -> Tensor:
    """The input as NHWC rows ``(N*H*W, C)`` in the compute dtype: a view of channels_last
    input; NCHW float input is transposed by a numba kernel (twice as fast here as
    torch's copy)."""
    x = input.to(d.dtype)
    if x.is_contiguous() and x.numel():
        rows = _temporary((d.n * d.h * d.w, d.c), d.dtype)
        _kernels().nchw_to_nhwc(_array(x.view(d.n, d.c, -1)), _out_array(rows.view(d.n, -1, d.c)))
        return rows
    return x.permute(0, 2, 3, 1).contiguous().view(-1, d.c)


def _weight_columns(weight: Tensor, d: _Dims) -> Tensor:
    """``W' (G, O/G, K*Cg)``: taps outer, channels inner, as the columns."""
    return weight.to(d.dtype).permute(0, 2, 3, 1).reshape(d.groups, d.og, d.k * d.cg)


def _offset_grad_slots(
    t: DeformTensors, p: DeformParams, d: _Dims, chunks: int
) -> tuple[Tensor, Tensor]:
    """Zeroed partial sums of the offset and mask gradients for ``chunks`` chunks of
    :func:`reduce_channels` channels (the kernels see them as :class:`OffsetGrads`)."""
    offset = torch.zeros((*t.offset.shape, chunks), dtype=d.dtype)
    shape = (*t.mask.shape, chunks) if p.use_mask else (1, 1, 1, 1, chunks)
    return offset, torch.zeros(shape, dtype=d.dtype)


def _add_slots(slots: Tensor, total: Tensor | None = None) -> Tensor:
    """``total`` (if any) plus the slots, added up in chunk order
    (:func:`._deform_numba.sum_slots`): a left-to-right sum over all chunks whether they
    come in one piece or in several."""
    out = torch.empty(slots.shape[:-1], dtype=slots.dtype) if total is None else total
    flat = _array(slots.view(-1, slots.shape[-1]))
    _kernels().sum_slots(flat, _out_array(out.view(-1)), total is not None)
    return out


def _mask_grad(gmsk: Tensor, t: DeformTensors, p: DeformParams) -> Tensor:
    """The mask gradient from its summed slots (zeros without a mask)."""
    return gmsk if p.use_mask else torch.zeros_like(t.mask)


# ----------------------------------------------------------------------------- planning


def _round_up(count: int, block: int) -> int:
    return -(-count // block) * block


class _Span(NamedTuple):
    """Pixels ``l0:l1`` of images ``n0:n1``: one chunk of the chunked passes."""

    n0: int
    n1: int
    l0: int
    l1: int

    @property
    def chunk(self) -> Chunk:
        return Chunk(self.n0, self.l0, self.l1)

    @property
    def pixels(self) -> int:
        return self.l1 - self.l0

    @property
    def rows(self) -> int:
        return (self.n1 - self.n0) * self.pixels


class _ChunkPlan:
    """How the chunked passes cut the column matrix: chunks of at most ``rows`` rows,
    within ``im2col_step`` images and a byte budget (``CHUNK_BYTES``; the forward holds one
    buffer, the backward two)."""

    def __init__(self, d: _Dims, im2col_step: int, threads: int, buffers: int) -> None:
        self.d = d
        self.step = max(1, im2col_step)
        self.threads = threads
        budget = 2 * CHUNK_BYTES // buffers
        self.rows = max(1, min(d.rows, self.step * d.per, budget // (d.cols * d.itemsize)))

    def _partial(self) -> tuple[int, int]:
        # a fixed number of images (not the thread count): the chunks, and so the order
        # in which the weight gradient sums them, never depend on the threads
        group = max(1, min(self.d.n, SPAN_IMAGES, self.step))
        return group, max(1, self.rows // group)

    def buffer_rows(self) -> int:
        """Rows of the largest chunk :meth:`spans` yields."""
        if self.rows >= self.d.per:
            return self.rows
        group, span = self._partial()
        return group * span

    def spans(self) -> Iterator[_Span]:
        """Whole images when one fits, else the same pixel range of several images (so the
        backward can give each thread its own images)."""
        per, n = self.d.per, self.d.n
        if self.rows >= per:
            imgs = self.rows // per
            for n0 in range(0, n, imgs):
                yield _Span(n0, min(n0 + imgs, n), 0, per)
            return
        group, span = self._partial()
        for n0 in range(0, n, group):
            for l0 in range(0, per, span):
                yield _Span(n0, min(n0 + group, n), l0, min(l0 + span, per))


def _work_items(images: int, pixels: int, channels: int, threads: int, chunk: int) -> Tensor:
    """Rows ``(from, to)`` and channels ``(from, to)`` of each chunked backward work item:
    whole images per thread when the chunk has enough of them (no redundant bilinear
    weights, full channel runs), else blocks of whole reduction chunks (``chunk``
    channels, a multiple of 16: no false sharing of input-gradient cache lines), else one
    item."""
    if threads > 1 and images >= threads:
        cuts = [images * i // threads for i in range(threads + 1)]
        rows = [(cuts[i] * pixels, cuts[i + 1] * pixels, 0, channels) for i in range(threads)]
    elif threads > 1 and channels >= 2 * chunk:
        edges = _edges(0, channels, threads, chunk).tolist()
        rows = [(0, images * pixels, edges[i], edges[i + 1]) for i in range(threads)]
    else:
        rows = [(0, images * pixels, 0, channels)]
    return torch.tensor(rows, dtype=torch.int64)


def _edges(c0: int, c1: int, parts: int, chunk: int) -> Tensor:
    """``parts + 1`` cuts of channels ``c0:c1`` (``c0`` a multiple of ``chunk``) at
    multiples of ``chunk``: threads take whole reduction chunks (and no two threads share
    an input-gradient cache line)."""
    cb = c1 - c0
    cuts = [c0 + min(cb, (cb * i // parts + chunk - 1) // chunk * chunk) for i in range(parts)]
    return torch.tensor([*cuts, c1], dtype=torch.int64)


def _widest(rounds: list[Tensor]) -> int:
    return max(int((edges[1:] - edges[:-1]).max()) for edges in rounds)


def _channel_rounds(d: _Dims, threads: int, channels_last: bool) -> list[Tensor]:
    """The fused backward's blocks of input channels, each cut between the threads: all
    channels at once for channels_last input, else blocks of about ``ROUND_BYTES`` (the
    block's NHWC copies of x and of its gradient, each thread's W_t and gW_t)."""
    if channels_last:
        block = d.c
    else:
        per_channel = 2 * (d.n * d.h * d.w + d.c_out * d.k) * d.itemsize
        unit = d.chunk * threads  # each thread's share: whole reduction chunks
        # at least 32 channels a thread: fewer makes each tap's setup dominate
        block = max(2 * unit, ROUND_BYTES // per_channel // unit * unit)
    return [_edges(b0, min(d.c, b0 + block), threads, d.chunk) for b0 in range(0, d.c, block)]


# ----------------------------------------------------------------------------- passes


def forward(t: DeformTensors, p: DeformParams) -> Tensor:
    """The output, in the input's dtype and memory format."""
    with _workspace():
        return _forward(t, p)


def _forward(t: DeformTensors, p: DeformParams) -> Tensor:
    d = _Dims.of(t)
    smp = _sampling(t, p, d)
    threads = _threads() if d.rows else 1
    channels_last = is_channels_last(t.input)
    if channels_last:  # rows (n, y, x) x O: the GEMM writes the channels_last output
        out_rows = torch.empty(d.rows, d.c_out, dtype=d.dtype)
        out3 = out_rows.view(d.n, d.per, d.c_out).transpose(1, 2)
    else:
        out3 = torch.empty(d.n, d.c_out, d.per, dtype=d.dtype)
    bias = t.bias.to(d.dtype)
    if d.rows and _fused():
        flat = (out_rows if channels_last else out3).view(-1)
        _forward_fused(t, d, smp, bias, Output(_out_array(flat), channels_last), threads)
    elif d.rows:
        _forward_chunked(t, p, d, smp, bias, out3, channels_last, threads)
    if channels_last:
        return out_rows.view(d.n, d.ho, d.wo, d.c_out).permute(0, 3, 1, 2).to(t.input.dtype)
    return out3.view(d.n, d.c_out, d.ho, d.wo).to(t.input.dtype)


def _forward_fused(
    t: DeformTensors, d: _Dims, smp: Sampling, bias: Tensor, out: Output, threads: int
) -> None:
    kernels = _kernels()
    # whole register tiles of rows, at least two (the GEMM's B block is reused across
    # them; whole tiles let it write a channels_last output directly)
    rows = max(2 * kernels.MR, TILE_BYTES // (d.cols * d.itemsize)) // kernels.MR * kernels.MR
    tile = max(1, min(d.per, rows))
    ogp = _round_up(d.og, kernels.block_columns(d.itemsize))
    kcg = d.k * d.cg
    bf16 = _bf16_products(t)
    kcp = _round_up(kcg, 2) if bf16 else kcg  # bfloat16 columns come in pairs
    # W'_g transposed, (G, K*Cg, OGp), its padding rows and columns zero
    wk = _temporary((d.groups, kcp, ogp), d.dtype, zero=kcp != kcg or ogp != d.og)
    w3 = t.weight.to(d.dtype).contiguous().view(d.groups, d.og, kcg)
    scratch = _temporary((d.groups, kcg, d.og), d.dtype)
    kernels.weight_taps_first(_array(w3), d.k, _out_array(scratch), _out_array(wk))
    # zeroed: rows past a tile's end are read (never used) before any sample is written
    size = kernels.forward_tile_floats(d.cols, d.groups * ogp, tile)
    if bf16:  # and the bfloat16 column tile (its padding columns stay 0)
        size += _round_up(tile, kernels.MR) * d.groups * kcp // 2
    bufs = _temporary((threads, size), d.dtype, zero=True)
    kernels.forward_fused(
        _array(_nhwc_rows(t.input, d)), d.geometry(), smp,
        _packed_bf16(wk) if bf16 else _array(wk), _array(bias), out,
        Tiles(_out_array(bufs), tile),
    )  # fmt: skip


def _packed_bf16(wk: Tensor) -> np.ndarray:
    """``wk (G, KCp, OGp)`` (``KCp`` even, ``OGp`` a multiple of 32) as bfloat16 in the
    blocks :func:`._tile_gemm.gemm_tiles_bf16` reads: ``(G, OGp/32, KCp/2, 32, 2)``, raw
    ``uint16``."""
    g, kcp, ogp = wk.shape
    blocks = wk.to(torch.bfloat16).view(g, kcp // 2, 2, ogp // 32, 32).permute(0, 3, 1, 4, 2)
    return _bf16_bits(blocks.reshape(g, ogp // 32, kcp // 2, 64))


def _bf16_bits(t: Tensor) -> np.ndarray:
    """The bfloat16 tensor ``t`` as raw ``uint16`` (what the numba kernels take; numpy has
    no bfloat16), C-contiguous as :func:`_array` makes it."""
    return _array(t.view(torch.int16)).view(np.uint16)


@functools.cache
def _bf16_cpu() -> bool:
    return bool(_kernels().bf16_supported())


def _bf16_products(t: DeformTensors) -> bool:
    """Whether the fused kernels multiply in bfloat16 (forward and backward): bfloat16
    input and weight (every factor is bfloat16 already, but for the sampled columns,
    rounded once from their float32 blend), on a CPU with AVX512-BF16."""
    return t.input.dtype == t.weight.dtype == torch.bfloat16 and _bf16_cpu()


def _forward_chunked(
    t: DeformTensors, p: DeformParams, d: _Dims, smp: Sampling, bias: Tensor, out3: Tensor,
    channels_last: bool, threads: int,
) -> None:  # fmt: skip
    """Columns sampled chunk by chunk, multiplied by ``torch.addmm`` (bias fused) into the
    output ``out3 (N, O, Ho*Wo)`` (a transposed view of output rows ``(N*Ho*Wo, O)`` for
    channels_last input)."""
    kernels = _kernels()
    out_rows = out3.transpose(1, 2).view(d.rows, d.c_out) if channels_last else out3
    geo = d.geometry()
    wt = _weight_columns(t.weight, d)
    w2 = wt[0]
    bcol = bias.view(-1, 1)
    per = d.per
    plan = _ChunkPlan(d, p.im2col_step, threads, buffers=1)
    buf = _temporary((plan.buffer_rows() * d.cols,), d.dtype)
    x = _array(_nhwc_rows(t.input, d))
    for span in plan.spans():
        n0, n1, l0, l1 = span
        nl = span.pixels
        col = buf[: span.rows * d.cols].view(span.rows, d.cols)
        kernels.sample_columns(x, geo, smp, span.chunk, _out_array(col))
        if d.groups == 1 and channels_last and nl == per:
            torch.addmm(bias, col, w2.t(), out=out_rows[n0 * per : n1 * per])
            continue
        for n in range(n0, n1):
            seg = col[(n - n0) * nl : (n - n0 + 1) * nl]
            if d.groups == 1 and channels_last:
                torch.addmm(bias, seg, w2.t(), out=out_rows[n * per + l0 : n * per + l1])
            elif d.groups == 1:
                if nl == per:
                    torch.addmm(bcol, w2, seg.t(), out=out3[n])
                else:
                    out3[n, :, l0:l1] = torch.addmm(bcol, w2, seg.t())
            else:  # (G, O/G, K*Cg) @ (G, K*Cg, l) -> (G, O/G, l)
                segg = seg.view(nl, d.groups, -1).permute(1, 2, 0)
                res = torch.baddbmm(bias.view(d.groups, d.og, 1), wt, segg)
                out3[n, :, l0:l1] = res.view(d.c_out, nl)


def backward(grad_out: Tensor, t: DeformTensors, p: DeformParams) -> DeformTensors:
    """The gradients of the tensor arguments in their dtypes: the input's in the input's
    memory format, the others contiguous (the mask's zero without ``use_mask``)."""
    with _workspace():
        return _backward(grad_out, t, p)


def _backward(grad_out: Tensor, t: DeformTensors, p: DeformParams) -> DeformTensors:
    d = _Dims.of(t)
    smp = _sampling(t, p, d)
    threads = _threads() if d.rows else 1
    if _fused() and d.groups == 1 and d.rows and d.n > 1:
        return _backward_images(grad_out, t, p, d, smp, threads)
    if _fused() and d.groups == 1 and d.rows:
        bands = _bands(d, smp)
        if bands is not None:
            return _backward_bands(grad_out, t, p, d, smp, threads, *bands)
        return _backward_fused(grad_out, t, p, d, smp, threads)
    return _backward_chunked(grad_out, t, p, d, smp, threads)


def _backward_chunked(
    grad_out: Tensor, t: DeformTensors, p: DeformParams, d: _Dims, smp: Sampling, threads: int
) -> DeformTensors:
    """Per chunk: ``gcol = grad_out^T @ W'`` (torch), the numba sweep (``col``, input,
    offset and mask gradients), ``grad W' += grad_out @ col`` (torch)."""
    dt, per = d.dtype, d.per
    go3 = grad_out.to(dt).reshape(d.n, d.c_out, per)  # a view for NCHW / channels_last
    gx = torch.zeros(d.n * d.h * d.w, d.c, dtype=dt)
    wt = _weight_columns(t.weight, d)
    gwt = torch.zeros(d.groups, d.og, d.k * d.cg, dtype=dt)
    if d.rows:
        kernels = _kernels()
        geo = d.geometry()
        goff, gmsk = _offset_grad_slots(t, p, d, d.chunks)
        grads = OffsetGrads(_out_array(goff), _out_array(gmsk))
        plan = _ChunkPlan(d, p.im2col_step, threads, buffers=2)
        buf = torch.empty(2, plan.buffer_rows() * d.cols, dtype=dt)
        x = _array(_nhwc_rows(t.input, d))
        for span in plan.spans():
            n0, n1, l0, l1 = span
            nl = span.pixels
            gcol = buf[0, : span.rows * d.cols].view(span.rows, d.cols)
            col = buf[1, : span.rows * d.cols].view(span.rows, d.cols)
            for n in range(n0, n1):  # gcol = grad_out^T @ W'
                g = go3[n, :, l0:l1]
                at = (n - n0) * nl
                if d.groups == 1:
                    torch.mm(g.t(), wt[0], out=gcol[at : at + nl])
                else:
                    gg = g.reshape(d.groups, d.og, nl).transpose(1, 2)  # (G, l, O/G)
                    gcol[at : at + nl].view(nl, d.groups, -1).copy_(
                        torch.bmm(gg, wt).transpose(0, 1)
                    )
            items = _work_items(n1 - n0, nl, d.c, threads, d.chunk)
            kernels.backward_columns(
                x, geo, smp, span.chunk, _array(gcol), _out_array(col), _out_array(gx), grads,
                _array(items),
            )  # fmt: skip
            for n in range(n0, n1):  # grad W' += grad_out @ col
                g = go3[n, :, l0:l1]
                seg = col[(n - n0) * nl : (n - n0 + 1) * nl]
                if d.groups == 1:
                    gwt[0].addmm_(g, seg)
                else:
                    gg = g.reshape(d.groups, d.og, nl)
                    gwt.baddbmm_(gg, seg.view(nl, d.groups, -1).transpose(0, 1))
        del buf, x, grads
        grad_offset, grad_mask = _add_slots(goff), _mask_grad(_add_slots(gmsk), t, p)
        del goff, gmsk
    else:
        grad_offset = torch.zeros(t.offset.shape, dtype=dt)
        grad_mask = torch.zeros(t.mask.shape, dtype=dt)
    grad_input = gx.view(d.n, d.h, d.w, d.c).permute(0, 3, 1, 2)
    del gx
    fmt = output_memory_format(t.input)
    grad_weight = gwt.view(d.c_out, d.kh, d.kw, d.cg).permute(0, 3, 1, 2)
    del gwt
    contiguous = torch.contiguous_format
    return DeformTensors(
        grad_input.to(dtype=t.input.dtype, memory_format=fmt),
        grad_weight.to(dtype=t.weight.dtype, memory_format=contiguous),
        grad_offset.to(dtype=t.offset.dtype, memory_format=contiguous),
        grad_mask.to(dtype=t.mask.dtype, memory_format=contiguous),
        bias_grad(go3).to(t.bias.dtype),
    )


def _backward_images(
    grad_out: Tensor, t: DeformTensors, p: DeformParams, d: _Dims, smp: Sampling, threads: int
) -> DeformTensors:
    """The fused backward of a batch (one conv group, ``N > 1``): the threads split the
    images, in at most ``IMAGE_SLOTS`` slots fixed by ``N`` (each slot's weight gradient
    a partial sum of its own, the slots added in order: the bits never follow the
    threads); every thread computes all channels of its images."""
    channels_last = is_channels_last(t.input)
    count = min(d.n, IMAGE_SLOTS)
    cuts = [d.n * s // count for s in range(count + 1)]
    span = max(b - a for a, b in itertools.pairwise(cuts))
    slots = _Slots.make(grad_out, t, p, d, count, threads, 0 if channels_last else span * d.h * d.w)
    if channels_last:
        x, gx = _nhwc_rows(t.input, d), torch.zeros(d.n * d.h * d.w, d.c, dtype=d.dtype)
    else:
        x = t.input.to(d.dtype).contiguous().view(d.n, d.c, -1)
        gx = torch.empty(d.n, d.c, d.h * d.w, dtype=d.dtype)  # every slot writes its images
    _kernels().backward_images(
        _array(x), _out_array(gx), not channels_last, slots.geo, smp, slots.go,
        slots.wb, _out_array(slots.gw), slots.grads(),
        _array(torch.tensor(cuts, dtype=torch.int64)), slots.tiles,
    )  # fmt: skip
    del x
    return slots.gradients(t, p, d, grad_out, gx, channels_last)


class _Slots(NamedTuple):
    """The operands of the slot-split backwards (by images, by bands): grad_out as an
    ``Output`` (NHWC for channels_last, else NCHW), ``W' (O, Kp)`` with zero padding
    columns (or its bfloat16 blocks, :func:`_bf16_products`), the zeroed weight-gradient
    partials ``(slots, Op, Kp)`` (rows rounded up to whole register tiles: the GEMM
    writes them), the one-chunk offset and mask gradient sums, the geometry with that one
    chunk (a thread owns every channel of a pixel: 4 horizontal vector sums per tap
    instead of 4 per chunk) and the threads' tiles."""

    go: Output
    wb: np.ndarray  # checked C-contiguous (made by _array / _packed_bf16)
    gw: Tensor
    goff: Tensor
    gmsk: Tensor
    geo: Geometry
    tiles: Tiles

    @classmethod
    def make(
        cls, grad_out: Tensor, t: DeformTensors, p: DeformParams, d: _Dims, count: int,
        threads: int, slot_pixels: int,
    ) -> _Slots:  # fmt: skip
        kernels = _kernels()
        go_cl = is_channels_last(grad_out)
        go = grad_out.to(d.dtype)
        go = go.permute(0, 2, 3, 1) if go_cl else go.contiguous()
        kcp = _round_up(d.cols, kernels.block_columns(d.itemsize))
        bf16 = _bf16_products(t)
        # W' (O, Kp), or its bfloat16 blocks (its rows, the GEMM's k, in pairs)
        wb = torch.zeros(_round_up(d.c_out, 2) if bf16 else d.c_out, kcp, dtype=d.dtype)
        wb[: d.c_out, : d.cols] = _weight_columns(t.weight, d)[0]
        gw = torch.zeros(count, _round_up(d.c_out, kernels.MR), kcp, dtype=d.dtype)
        goff, gmsk = _offset_grad_slots(t, p, d, 1)
        tile = max(1, min(d.per, IMAGE_TILE_BYTES // (2 * kcp * d.itemsize)))
        size = kernels.image_tile_parts(d.c_out, kcp, tile, slot_pixels, d.c)[-1]
        if bf16:
            size += kernels.bf16_tile_floats(d.c_out, kcp, tile)
        bufs = _temporary((threads, size), d.dtype, zero=True)  # zeroed: the padding
        geo = d.geometry()._replace(reduce_channels=d.c)
        wk = _packed_bf16(wb[None])[0] if bf16 else _array(wb)
        return cls(Output(_array(go), go_cl), wk, gw, goff, gmsk, geo,
                   Tiles(_out_array(bufs), tile))  # fmt: skip

    def grads(self) -> OffsetGrads:
        return OffsetGrads(_out_array(self.goff), _out_array(self.gmsk))

    def gradients(
        self, t: DeformTensors, p: DeformParams, d: _Dims, grad_out: Tensor, gx: Tensor,
        channels_last: bool,
    ) -> DeformTensors:  # fmt: skip
        """The gradients: the input's from ``gx`` (NHWC rows, or NCHW), the slots' weight
        gradients added in slot order, in torch's layout; the offset's and mask's."""
        if channels_last:
            grad_input = gx.view(d.n, d.h, d.w, d.c).permute(0, 3, 1, 2)
        else:
            grad_input = gx.view(d.n, d.c, d.h, d.w)
        gw = self.gw[0]
        for s in range(1, self.gw.shape[0]):  # in slot order
            gw += self.gw[s]
        grad_weight = gw[: d.c_out, : d.cols].reshape(d.c_out, d.kh, d.kw, d.c)
        contiguous = torch.contiguous_format
        return DeformTensors(
            grad_input.to(t.input.dtype),
            grad_weight.permute(0, 3, 1, 2).to(t.weight.dtype, memory_format=contiguous),
            self.goff[..., 0].to(t.offset.dtype, memory_format=contiguous),
            _mask_grad(self.gmsk[..., 0], t, p).to(t.mask.dtype, memory_format=contiguous),
            bias_grad(grad_out.to(d.dtype)).to(t.bias.dtype),
        )


def _bands(d: _Dims, smp: Sampling) -> tuple[Tensor, Tensor] | None:
    """For the backward of one image: ``BANDS`` bands of output pixels (fixed by the
    shape) and each band's window of input rows ``(first row, rows, start)``; ``None``
    when the windows would hold more than ``BAND_WINDOW_COPIES`` copies of the input."""
    kernels = _kernels()
    count = min(BANDS, d.per)
    cuts = [d.per * s // count for s in range(count + 1)]
    bands = torch.tensor(list(itertools.pairwise(cuts)), dtype=torch.int64)
    seen = torch.empty(count, 2, dtype=torch.int64)
    kernels.band_rows(d.geometry(), smp, _array(bands), _out_array(seen))
    windows = torch.zeros(count, 3, dtype=torch.int64)
    start = 0
    for s, (first, last) in enumerate(seen.tolist()):
        rows = max(0, last - first + 1)
        windows[s] = torch.tensor([first, rows, start])
        start += rows * d.w * d.c
    if start > BAND_WINDOW_COPIES * d.h * d.w * d.c:
        return None
    return bands, windows


def _backward_bands(
    grad_out: Tensor, t: DeformTensors, p: DeformParams, d: _Dims, smp: Sampling, threads: int,
    bands: Tensor, windows: Tensor,
) -> DeformTensors:  # fmt: skip
    """The fused backward of one image (one conv group): the threads split its output
    pixels in ``BANDS`` bands fixed by the shape; each band scatters its input gradient
    into a window of its own (the input rows it samples), the windows added in band order
    afterwards, so the bits never follow the threads."""
    kernels = _kernels()
    channels_last = is_channels_last(t.input)
    slots = _Slots.make(grad_out, t, p, d, bands.shape[0], threads, 0)
    gxw = torch.zeros(int(windows[-1, 2] + windows[-1, 1] * d.w * d.c), dtype=d.dtype)
    x = _nhwc_rows(t.input, d)
    kernels.backward_bands(
        _array(x), slots.geo, smp, slots.go, slots.wb, _out_array(slots.gw),
        slots.grads(), _array(bands), _array(windows[:, [0, 2]]), _out_array(gxw), slots.tiles,
    )  # fmt: skip
    del x
    shape = (d.h * d.w, d.c) if channels_last else (d.c, d.h * d.w)
    gx = torch.empty(shape, dtype=d.dtype)
    kernels.merge_windows(
        _array(gxw), _array(windows), d.h, d.w, _out_array(gx), not channels_last, threads
    )
    del gxw
    return slots.gradients(t, p, d, grad_out, gx, channels_last)


def _backward_fused(
    grad_out: Tensor, t: DeformTensors, p: DeformParams, d: _Dims, smp: Sampling, threads: int
) -> DeformTensors:
    """The fused backward (one conv group): the threads split the input channels, in
    rounds of channel blocks for NCHW input (each round copies its block of the input to
    NHWC and writes its block of the input gradient back, so neither is copied whole)."""
    kernels = _kernels()
    dt, c = d.dtype, d.c
    channels_last = is_channels_last(t.input)
    go_cl = is_channels_last(grad_out)
    go = grad_out.to(dt)
    go = go.permute(0, 2, 3, 1) if go_cl else go.contiguous()
    # the weight in torch's layout: raw bfloat16 for bfloat16 products, else in dt
    w = t.weight.contiguous().view(d.c_out, c * d.k)
    bf16 = _bf16_products(t)
    w_arr = _bf16_bits(w) if bf16 else _array(w.to(dt))
    gw = torch.zeros(d.c_out, c * d.k, dtype=dt)
    pixels = d.n * d.h * d.w
    if channels_last:
        gi = torch.zeros(d.n, d.h, d.w, c, dtype=dt)
    else:
        gi = torch.empty(d.n, c, d.h, d.w, dtype=dt)
    rounds = _channel_rounds(d, threads, channels_last)
    # partial sums for one round's chunks at a time, added to the totals after each round
    # (in chunk order: the same sums as all chunks at once)
    round_chunks = [-(-(int(e[-1]) - int(e[0])) // d.chunk) for e in rounds]
    total_off: Tensor | None = None
    total_msk: Tensor | None = None
    kcp = _round_up(d.k * _widest(rounds), kernels.block_columns(d.itemsize))
    tile = max(1, min(d.per, BACKWARD_TILE_BYTES // (2 * kcp * d.itemsize)))
    # W_t, gW_t, gcol, col and the grad_out tile (the kernel's layout); zeroed: the
    # padding columns of W_t and col must be
    size = kernels.backward_tile_parts(d.c_out, kcp, tile)[-1]
    if bf16:
        size += kernels.bf16_tile_floats(d.c_out, kcp, tile)
    bufs = _temporary((threads, size), dt, zero=True)
    geo = d.geometry()
    grad_output = Output(_array(go), go_cl)
    tiles = Tiles(_out_array(bufs), tile)
    for edges, chunks in zip(rounds, round_chunks, strict=True):
        b0, b1 = int(edges[0]), int(edges[-1])
        goff, gmsk = _offset_grad_slots(t, p, d, chunks)
        grads = OffsetGrads(_out_array(goff), _out_array(gmsk))
        if channels_last:
            x, gx = _nhwc_rows(t.input, d), gi.view(pixels, c)
        else:
            x = t.input[:, b0:b1].to(dt).permute(0, 2, 3, 1).contiguous().view(pixels, b1 - b0)
            gx = torch.zeros(pixels, b1 - b0, dtype=dt)
        kernels.backward_fused(
            Rows(_array(x).reshape(-1), b1 - b0, b0), Rows(_out_array(gx).reshape(-1), b1 - b0, b0),
            geo, smp, grad_output, w_arr, _out_array(gw), grads, _array(edges), tiles,
        )  # fmt: skip
        total_off = _add_slots(goff, total_off)
        total_msk = _add_slots(gmsk, total_msk)
        if not channels_last:
            gi[:, b0:b1] = gx.view(d.n, d.h, d.w, b1 - b0).permute(0, 3, 1, 2)
        del x, gx, grads, goff, gmsk
    del bufs, tiles
    if channels_last:
        gi = gi.permute(0, 3, 1, 2)
    if total_off is None or total_msk is None:  # pragma: no cover - there is a round
        raise RuntimeError("omniconv internal error: no channel round")
    return DeformTensors(
        gi.to(t.input.dtype),
        gw.view(t.weight.shape).to(t.weight.dtype),
        total_off.to(t.offset.dtype),
        _mask_grad(total_msk, t, p).to(t.mask.dtype),
        bias_grad(grad_out.to(dt)).to(t.bias.dtype),
    )
