"""Numba kernels of the fast CPU deformable convolution (imported lazily; needs numba).

Every kernel takes the named structures of :mod:`._deform_structs` (``Geometry``,
``Sampling``, ...) and plain arrays; its docstring states the layout it requires and what
it writes. All arrays are C-contiguous (each kernel checks: it indexes flat memory and
hands raw addresses to the GEMM and vector loops) and of one float dtype, float32 or float64.

Layouts shared by the kernels:

* ``x``: the input as NHWC rows ``(N*H*W, C)``: each bilinear corner is one contiguous
  run of channels.
* ``col``: the column matrix of a chunk of output pixels (see ``Chunk``),
  ``(rows, G*K*Cg)``: column ``g*K*Cg + k*Cg + c`` is channel ``g*Cg + c`` (of conv
  group ``g``) at tap ``k``, i.e. ``mask * bilinear(x)``; so ``col @ W'`` with
  ``W' = weight.permute(0, 2, 3, 1)`` is one GEMM per conv group.

The math is the floor convention of :mod:`omniconv.functional.deform_conv`. Every buffer
comes from torch, so memory profiling sees it (the kernels allocate only a few scalars a
thread, a row of zeros a call, and the forward a row of ones a call and two ``int32`` rows
of a tile's positions a thread).

Numba rule kept throughout: inside a ``prange`` loop, no array is *written* through a
field of a structure (numba drops such writes: numba issues #5872 / #7135); the parallel
kernels take the arrays they write as plain arguments or read the field into a local
before the loop, and :func:`_backward_row` (a real call, not inlined) may write through
its structures.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange, types
from numba.extending import overload
from numba.np.numpy_support import as_dtype

from ._channel_vectors import blend, pack_pairs_bf16, store_transposed, sweep, to_bf16
from ._deform_structs import Rows
from ._tap_vectors import sample_tap
from ._tile_gemm import MR, block_columns, gemm_tiles, gemm_tiles_bf16, padded
from ._tile_gemm import bf16_supported as bf16_supported  # for the host side

_FM = {"reassoc", "contract"}  # let LLVM vectorise the channel reductions


class _RowJob(NamedTuple):
    """One call of :func:`_backward_row` (integers only, so passing it costs no reference
    counting): output pixel ``(y, x)`` of image ``n``, input channels ``c_lo:c_hi``; tap
    ``k``, channel ``c`` of conv group ``g`` of that pixel are element
    ``start + g*(K - 1)*Cg + k*tap_stride + c - col_c0`` of the flat ``col`` / ``gcol``;
    the rows of ``x`` / ``gx`` start at image ``first_image``, and pixel ``i`` of ``x`` is
    pixel ``i - gx_shift`` of ``gx`` (a window of the input gradient)."""

    n: int
    y: int
    x: int
    c_lo: int
    c_hi: int
    start: int
    tap_stride: int
    col_c0: int
    first_image: int
    gx_shift: int


def _one_like(x):  # pragma: no cover - replaced by the overload in compiled code
    return type(x)(1)


def _zero_like(x):  # pragma: no cover - replaced by the overload in compiled code
    return type(x)(0)


@overload(_one_like, inline="always")
def _one_like_impl(x):  # pragma: no cover - compile time
    """1 in the dtype of the scalar ``x`` (a bare ``1`` would promote float32 to float64)."""
    one = as_dtype(x).type(1)
    return lambda x: one


def _nan_like(x):  # pragma: no cover - replaced by the overload in compiled code
    return type(x)("nan")


@overload(_nan_like, inline="always")
def _nan_like_impl(x):  # pragma: no cover - compile time
    nan = as_dtype(x).type(np.nan)
    return lambda x: nan


@overload(_zero_like, inline="always")
def _zero_like_impl(x):  # pragma: no cover - compile time
    zero = as_dtype(x).type(0)
    return lambda x: zero


@njit(inline="always")
def _require_c(arr):  # pragma: no cover - compiled
    """Refuse an array that is not C-contiguous: the kernels index flat memory and pass
    raw addresses to the GEMM and vector loops, so they check the layout they rely on
    instead of trusting it (the Python side hands them ``.contiguous()`` tensors; this is
    the kernel's own guard)."""
    if not arr.flags.c_contiguous:
        raise ValueError("omniconv kernel: an array argument is not C-contiguous")


@njit(inline="always")
def _require_c4(a, b, c, d):  # pragma: no cover - compiled
    """:func:`_require_c` of four arrays."""
    _require_c(a)
    _require_c(b)
    _require_c(c)
    _require_c(d)


@njit(inline="always")
def _flat(arr):  # pragma: no cover - compiled
    """``arr`` checked C-contiguous (:func:`_require_c`), as a flat view."""
    _require_c(arr)
    return arr.ravel()


@njit(inline="always")
def _require_sampling(smp):  # pragma: no cover - compiled
    _require_c(smp.base_h)
    _require_c(smp.base_w)
    _require_c(smp.offset)
    _require_c(smp.mask)


@njit(inline="always")
def _point(smp, n, d, k, y, xo):  # pragma: no cover - compiled
    """Sample position ``(h, w)`` and mask of tap ``k``, deformable group ``d``, at output
    pixel ``(y, xo)`` of image ``n``."""
    k_all = smp.base_h.shape[0]
    # unsigned indices: no negative-index wraparound checks on this hot path
    un, uy, ux, uk = np.uint64(n), np.uint64(y), np.uint64(xo), np.uint64(k)
    ch = np.uint64(d * 2 * k_all + 2 * k)
    h = smp.base_h[uk, uy] + smp.offset[un, ch, uy, ux]
    w = smp.base_w[uk, ux] + smp.offset[un, ch + np.uint64(1), uy, ux]
    m = smp.mask[un, np.uint64(d * k_all + k), uy, ux] if smp.use_mask else _one_like(h)
    return h, w, m


@njit(inline="always")
def _corner(h, w, height, width):  # pragma: no cover - compiled
    """Floor-convention bilinear: fractions, the top-left corner and which of the four
    corners lie on the image (top row, bottom row, left column, right column)."""
    h0 = np.floor(h)
    w0 = np.floor(w)
    hi = int(h0)
    wi = int(w0)
    return h - h0, w - w0, hi, wi, hi >= 0, hi + 1 <= height - 1, wi >= 0, wi + 1 <= width - 1


@njit(inline="always")
def _tap(geo, smp, n, d, k, y, xo):  # pragma: no cover - compiled
    """Tap ``k`` of deformable group ``d`` at output pixel ``(y, xo)`` of image ``n``:
    whether it samples the image at all (``-1 < h < H`` and ``-1 < w < W``; false for NaN
    and ``±inf``), its mask, its value when it does not (``fill``: NaN at a NaN position,
    else 0; the tap is then ``fill * mask``), and the corner setup of :func:`_corner`
    (meaningful only when inside)."""
    h, w, m = _point(smp, n, d, k, y, xo)
    inside = h > -1 and h < geo.height and w > -1 and w < geo.width
    zero = _zero_like(h)
    fill = zero
    if not inside and (h != h or w != w):  # a NaN position (only ever tested outside)
        fill = _nan_like(h)
    lh, lw, hi, wi, top, bot, lef, rig = _corner(
        h if inside else zero, w if inside else zero, geo.height, geo.width
    )
    return inside, m, fill, lh, lw, hi, wi, top, bot, lef, rig


@njit(inline="always")
def _bilinear(lh, lw, top, bot, lef, rig):  # pragma: no cover - compiled
    """The four bilinear weights (top-left, top-right, bottom-left, bottom-right), zero for
    corners off the image."""
    one = _one_like(lh)
    zero = _zero_like(lh)
    hh = one - lh
    hw = one - lw
    a00 = hh * hw if (top and lef) else zero
    a01 = hh * lw if (top and rig) else zero
    a10 = lh * hw if (bot and lef) else zero
    a11 = lh * lw if (bot and rig) else zero
    return a00, a01, a10, a11


@njit(inline="always")
def _corner_pixels(img, hi, wi, height, width):  # pragma: no cover - compiled
    """Flat pixel indices (rows of ``x``) of the four corners below/right of ``(hi, wi)``
    in the image starting at row ``img``, clamped onto the image (meaningful only for the
    corners on it)."""
    ht = img + max(hi, 0) * width
    hb = img + min(hi + 1, height - 1) * width
    wl = max(wi, 0)
    wr = min(wi + 1, width - 1)
    return ht + wl, ht + wr, hb + wl, hb + wr


@njit(inline="always")
def _source(xf, zrow, on, pixel, ld):  # pragma: no cover - compiled
    """Where a corner's channels start: ``xf`` at row ``pixel`` for a corner on the image,
    else the zero row ``zrow`` (so a corner off the image adds exactly 0, even next to a
    NaN or infinite pixel)."""
    if on:
        return xf, pixel * ld
    return zrow, 0


@njit(inline="always")
def _fill_row(count, dtype, value):  # pragma: no cover - compiled
    """``count`` copies of ``value``, filled by a plain loop: ``np.zeros`` / ``np.full``
    inside a ``parallel=True`` kernel becomes a parallel region of its own (one more fork
    and join per call)."""
    row = np.empty(count, dtype)
    for i in range(count):
        row[i] = value
    return row


@njit(inline="always")
def _zero_row(count, dtype):  # pragma: no cover - compiled
    """``count`` zeros (:func:`_fill_row`)."""
    return _fill_row(count, dtype, 0)


@njit(inline="always")
def _at(arr, index):  # pragma: no cover - compiled
    """The address of element ``index`` of the flat, C-contiguous ``arr``."""
    return np.int64(arr.ctypes.data) + np.int64(index) * arr.itemsize


@njit(inline="always")
def _blend(  # pragma: no cover - compiled
    colf, pc, nc, a00, a01, a10, a11, x00, p00, x01, p01, x10, p10, x11, p11
):
    """``colf[pc + t] = a00 * x00[p00 + t] + ... + a11 * x11[p11 + t]`` for ``t < nc``
    (flat arrays of one dtype, the coefficients of it too): explicit vectors
    (:func:`._channel_vectors.blend`)."""
    # (mypy reads an intrinsic's typing-context parameter as an argument)
    blend(_at(colf, pc), np.int64(nc), a00, a01, a10, a11, _at(x00, p00), _at(x01, p01),
          _at(x10, p10), _at(x11, p11))  # type: ignore[call-arg]  # fmt: skip


@njit(inline="always")
def _sample_row_plain(xf, zrow, colf, start, n, y, xo, geo, smp):  # pragma: no cover - compiled
    """:func:`_sample_row` for one conv group and one deformable group (the usual DCN):
    no group loops, so fewer live values around the channel loops."""
    k_all = geo.taps
    c_all = geo.channels
    img = n * geo.height * geo.width
    nc = np.uint64(c_all)
    for k in range(k_all):
        inside, m, fill, lh, lw, hi, wi, top, bot, lef, rig = _tap(geo, smp, n, 0, k, y, xo)
        pc = np.uint64(start + k * c_all)
        if not inside:
            v = fill * m
            for u in range(nc):
                colf[pc + u] = v
            continue
        a00, a01, a10, a11 = _bilinear(lh, lw, top, bot, lef, rig)
        a00, a01, a10, a11 = a00 * m, a01 * m, a10 * m, a11 * m
        i00, i01, i10, i11 = _corner_pixels(img, hi, wi, geo.height, geo.width)
        if top and bot and lef and rig:  # every corner on the image
            _blend(colf, pc, nc, a00, a01, a10, a11, xf, np.uint64(i00 * c_all), xf,
                   np.uint64(i01 * c_all), xf, np.uint64(i10 * c_all), xf,
                   np.uint64(i11 * c_all))  # fmt: skip
        else:
            x00, o00 = _source(xf, zrow, top and lef, i00, c_all)
            x01, o01 = _source(xf, zrow, top and rig, i01, c_all)
            x10, o10 = _source(xf, zrow, bot and lef, i10, c_all)
            x11, o11 = _source(xf, zrow, bot and rig, i11, c_all)
            _blend(colf, pc, nc, a00, a01, a10, a11, x00, np.uint64(o00), x01,
                   np.uint64(o01), x10, np.uint64(o10), x11, np.uint64(o11))  # fmt: skip


@njit(inline="always")
def _sample_row(xf, zrow, colf, start, n, y, xo, geo, smp):  # pragma: no cover - compiled
    """The column row of output pixel ``(y, xo)`` of image ``n``, i.e. every tap and
    channel of ``mask * bilinear(x)``, into ``colf[start : start + K*C]``; ``xf`` is the
    flat ``x``, ``zrow`` a row of ``C`` zeros (read by corners off the image)."""
    k_all = geo.taps
    c_all = geo.channels
    cg = geo.group_channels
    cgd = geo.deform_channels
    img = n * geo.height * geo.width
    for d in range(c_all // cgd):
        c0 = d * cgd
        c1 = c0 + cgd
        g0, g1 = c0 // cg, (c1 - 1) // cg + 1  # conv groups (divisions out of the tap loop)
        for k in range(k_all):
            inside, m, fill, lh, lw, hi, wi, top, bot, lef, rig = _tap(geo, smp, n, d, k, y, xo)
            if not inside:
                v = fill * m
                for g in range(g0, g1):
                    at = start + g * k_all * cg + k * cg - g * cg
                    colf[at + max(c0, g * cg) : at + min(c1, g * cg + cg)] = v
                continue
            a00, a01, a10, a11 = _bilinear(lh, lw, top, bot, lef, rig)
            a00, a01, a10, a11 = a00 * m, a01 * m, a10 * m, a11 * m
            i00, i01, i10, i11 = _corner_pixels(img, hi, wi, geo.height, geo.width)
            interior = top and bot and lef and rig  # every corner on the image
            x00, o00 = _source(xf, zrow, top and lef, i00, c_all)
            x01, o01 = _source(xf, zrow, top and rig, i01, c_all)
            x10, o10 = _source(xf, zrow, bot and lef, i10, c_all)
            x11, o11 = _source(xf, zrow, bot and rig, i11, c_all)
            for g in range(g0, g1):
                cs = max(c0, g * cg)
                ce = min(c1, g * cg + cg)
                pc = np.uint64(start + g * k_all * cg + k * cg - g * cg + cs)
                # flat unsigned indices: no wraparound checks, no array views
                if interior:
                    _blend(colf, pc, ce - cs, a00, a01, a10, a11, xf, np.uint64(o00 + cs), xf,
                           np.uint64(o01 + cs), xf, np.uint64(o10 + cs), xf,
                           np.uint64(o11 + cs))  # fmt: skip
                else:
                    _blend(colf, pc, ce - cs, a00, a01, a10, a11, x00, np.uint64(o00 + cs), x01,
                           np.uint64(o01 + cs), x10, np.uint64(o10 + cs), x11,
                           np.uint64(o11 + cs))  # fmt: skip


@njit(inline="always")
def _sample_into(xf, zrow, colf, start, n, y, xo, geo, smp, plain):  # pragma: no cover
    """:func:`_sample_row_plain` where ``plain`` (one conv group and one deformable
    group), else :func:`_sample_row`."""
    if plain:
        _sample_row_plain(xf, zrow, colf, start, n, y, xo, geo, smp)
    else:
        _sample_row(xf, zrow, colf, start, n, y, xo, geo, smp)


@njit(inline="always")
def _is_plain(geo):  # pragma: no cover - compiled
    return geo.group_channels == geo.channels and geo.deform_channels == geo.channels


@njit(inline="always")
def _chunk_pixel(chunk, r, wo):  # pragma: no cover - compiled
    """Image, output row and output column of row ``r`` of ``chunk``'s column matrix."""
    nl = chunk.end_pixel - chunk.first_pixel
    q = r // nl
    pix = chunk.first_pixel + r - q * nl
    y = pix // wo
    return chunk.first_image + q, y, pix - y * wo


@njit(inline="always")
def _transpose_tiles(src, s_at, dst, d_at, rows, cols, j0, j1):  # pragma: no cover
    """``dst[d_at + j*rows + i] = src[s_at + i*cols + j]`` for ``i < rows``,
    ``j0 <= j < j1`` (flat arrays of one dtype): columns of a ``(rows, cols)`` matrix
    transposed, every bit copied, in blocks of one vector's lanes transposed in registers
    (:func:`._channel_vectors.store_transposed`)."""
    item = dst.itemsize
    lanes = block_columns(item) // 2
    for i0 in range(0, rows, lanes):
        for q0 in range(j0, j1, lanes):
            store_transposed(_addr(dst) + (d_at + q0 * rows + i0) * item, np.int64(rows),
                             _addr(src) + (s_at + i0 * cols + q0) * item, np.int64(cols), None,
                             np.int64(min(lanes, rows - i0)), np.int64(min(lanes, j1 - q0)),
                             src[0])  # type: ignore[call-arg]  # fmt: skip


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def nchw_to_nhwc(src, dst):  # pragma: no cover - compiled
    """Write ``dst (N, H*W, C)`` = ``src (N, C, H*W)`` transposed (both C-contiguous; every
    bit copied, :func:`_transpose_tiles`), in parallel over images x blocks of 64 pixels -
    on numba's threads, like the kernels that read it."""
    sf = _flat(src)
    df = _flat(dst)
    n_img, c_all, pixels = src.shape
    blocks = (pixels + 63) // 64
    for job in prange(n_img * blocks):
        n = job // blocks
        p0 = (job - n * blocks) * 64
        base = n * c_all * pixels
        _transpose_tiles(sf, base, df, base, c_all, pixels, p0, min(p0 + 64, pixels))


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def weight_taps_first(w, taps, scratch, wk):  # pragma: no cover - compiled
    """``wk[g, k*Cg + c, o] = w[g, o, c*K + k]`` (``K = taps``) for ``o < O/G``; the rest of
    ``wk`` (its padding) is not written. Layout: ``w (G, O/G, Cg*K)`` (the weight in torch's
    layout), ``scratch (G, Cg*K, O/G)``, ``wk (G, KCp, OGp)`` with ``KCp >= K*Cg``,
    ``OGp >= O/G``; C-contiguous (checked), one dtype. Two parallel passes: ``w``
    transposed into ``scratch`` (:func:`_transpose_tiles`), then ``scratch``'s rows (runs
    of ``O/G``) into their tap-major places in ``wk``."""
    _require_c(w)
    _require_c(scratch)
    _require_c(wk)
    wf = w.ravel()
    sf = scratch.ravel()
    kf = wk.ravel()
    groups, og, ck = w.shape
    cg = ck // taps
    kcp, ogp = wk.shape[1], wk.shape[2]
    blocks = (ck + 63) // 64
    for job in prange(groups * blocks):
        g = job // blocks
        j0 = (job - g * blocks) * 64
        _transpose_tiles(wf, g * og * ck, sf, g * ck * og, og, ck, j0, min(j0 + 64, ck))
    for job in prange(groups * ck):
        g = job // ck
        row = job - g * ck
        k = row // cg
        c = row - k * cg
        src = (g * ck + c * taps + k) * og
        dst = (g * kcp + row) * ogp
        for o in range(og):
            kf[dst + o] = sf[src + o]


@njit(cache=True, nogil=True, parallel=True, error_model="numpy", fastmath=_FM)
def sample_columns(x, geo, smp, chunk, col):  # pragma: no cover - compiled
    """Sample the column matrix of ``chunk``, in parallel over its rows.

    Layout: ``x (N*H*W, C)`` NHWC rows; ``col (rows, K*C)`` in the column layout of the
    module docstring, ``rows`` at most the chunk's pixels times the images from
    ``chunk.first_image`` on. All arrays C-contiguous (checked), one float dtype.

    Writes every entry of ``col``, nothing else."""
    _require_c(x)
    _require_sampling(smp)
    _require_c(col)
    xf = x.ravel()
    zrow = _zero_row(x.shape[1], x.dtype)
    colf = col.ravel()
    plain = _is_plain(geo)
    for r in prange(col.shape[0]):
        n, y, xo = _chunk_pixel(chunk, r, geo.out_width)
        _sample_into(xf, zrow, colf, r * col.shape[1], n, y, xo, geo, smp, plain)


@njit(inline="always")
def _addr(arr):  # pragma: no cover - compiled
    """The data address of ``arr`` as int64 (so offsets added to it stay integers)."""
    return np.int64(arr.ctypes.data)


@njit(inline="always")
def _sample_tile_plain(xf, zrow, ones, pos, colf, ncol, n, l0, rows, geo, smp):  # pragma: no cover
    """:func:`_sample_tile` for one conv group and one deformable group: a vector of rows
    (16 float32 / 8 float64) at a time, every tap of them, the per-tap set-up across the
    rows' lanes (:func:`._tap_vectors.sample_tap`; the same bits as
    :func:`_sample_row_plain`). ``pos`` (``int32``, at least ``2*rows``) takes the rows'
    output row and column; ``ones`` is a row of at least ``max(C, 16)`` ones (also the
    mask when there is none)."""
    wo = geo.out_width
    c_all = geo.channels
    k_all = geo.taps
    per = smp.offset.shape[2] * smp.offset.shape[3]
    item = xf.itemsize
    for r in range(rows):
        y = (l0 + r) // wo
        pos[r] = y
        pos[rows + r] = l0 + r - y * wo
    lanes = block_columns(item) // 2
    img = _addr(xf) + n * geo.height * geo.width * c_all * item
    at_pos = _addr(pos)
    like = ones[0]  # the dtype (ones is never empty)
    for r0 in range(0, rows, lanes):
        for k in range(k_all):
            oh = _addr(smp.offset) + ((n * 2 * k_all + 2 * k) * per + l0) * item
            om = _addr(smp.mask) + ((n * k_all + k) * per + l0) * item
            bh = _addr(smp.base_h) + k * smp.base_h.shape[1] * item
            bw = _addr(smp.base_w) + k * smp.base_w.shape[1] * item
            sample_tap(_addr(colf) + (r0 * ncol + k * c_all) * item, np.int64(ncol),
                       np.int64(min(lanes, rows - r0)), np.int64(c_all), oh + r0 * item,
                       oh + (per + r0) * item, om + r0 * item if smp.use_mask else _addr(ones),
                       bh, bw, at_pos + r0 * 4, at_pos + (rows + r0) * 4,
                       np.int64(geo.height), np.int64(geo.width), img, _addr(zrow),
                       _addr(ones), like)  # type: ignore[call-arg]  # fmt: skip


@njit(inline="always")
def _sample_tile(xf, zrow, ones, pos, colf, ncol, n, l0, rows, geo, smp, plain):  # pragma: no cover
    """Column rows ``0:rows`` of ``colf`` (``ncol`` apart) = output pixels ``l0 + r`` of
    image ``n``."""
    if plain:
        _sample_tile_plain(xf, zrow, ones, pos, colf, ncol, n, l0, rows, geo, smp)
        return
    wo = geo.out_width
    for r in range(rows):
        y = (l0 + r) // wo
        _sample_into(xf, zrow, colf, r * ncol, n, y, l0 + r - y * wo, geo, smp, plain)


@njit(inline="always")
def _write_tile(
    outf, ot, bias, at0, per, rows, groups, og, ogp, channels_last, direct
):  # pragma: no cover
    """Output pixels ``at0 : at0 + rows`` (flat ``n*per + l``) from the output tile ``ot``
    (rows of ``G*OGp``) with the bias: ``outf`` channels_last or NCHW; ``direct``: the
    GEMM already wrote the channels_last rows, only the bias is added."""
    c_out = groups * og
    row_w = groups * ogp
    if direct:  # the bias, on rows still in cache
        for r in range(rows):
            at = (at0 + r) * c_out
            for o in range(c_out):
                outf[at + o] += bias[o]
    elif channels_last:
        for r in range(rows):
            at = (at0 + r) * c_out
            for g in range(groups):
                for o in range(og):
                    outf[at + g * og + o] = ot[r * row_w + g * ogp + o] + bias[g * og + o]
    else:  # blocks of L x L (one vector's lanes) transposed in registers
        n = at0 // per
        l0 = at0 - n * per
        item = outf.itemsize
        lanes = block_columns(item) // 2
        for g in range(groups):
            for o0 in range(0, og, lanes):
                nc = min(lanes, og - o0)
                for r0 in range(0, rows, lanes):
                    store_transposed(_addr(outf) + ((n * c_out + g * og + o0) * per + l0 + r0)
                                     * item, np.int64(per),
                                     _addr(ot) + (r0 * row_w + g * ogp + o0) * item,
                                     np.int64(row_w), _addr(bias) + (g * og + o0) * item,
                                     np.int64(min(lanes, rows - r0)), np.int64(nc),
                                     ot[0])  # type: ignore[call-arg]  # fmt: skip


def _weight_dims(wk, geo):  # pragma: no cover - replaced by the overload in compiled code
    raise NotImplementedError


@overload(_weight_dims, inline="always")
def _weight_dims_impl(wk, geo):  # pragma: no cover - compile time
    """``(G, K*Cg, K*Cg padded, OGp)`` of the forward's weight: float ``(G, K*Cg, OGp)``,
    or bfloat16 blocks ``(G, OGp/32, KCp/2, 64)`` (``uint16``, :func:`forward_fused`)."""
    if wk.dtype == types.uint16:
        return lambda wk, geo: (wk.shape[0], geo.taps * geo.group_channels, 2 * wk.shape[2],
                                wk.shape[1] * block_columns(4))  # fmt: skip
    return lambda wk, geo: (wk.shape[0], wk.shape[1], wk.shape[1], wk.shape[2])


def _products(colf, colb, rows, wk, kcg, kcp, c_at, c_ld, c_g):  # pragma: no cover
    raise NotImplementedError  # replaced by the overload in compiled code


@overload(_products, inline="always")
def _products_impl(colf, colb, rows, wk, kcg, kcp, c_at, c_ld, c_g):  # pragma: no cover
    """Output rows ``(rows, OGp)`` of each group ``g``, at ``c_at + g*c_g`` floats (rows
    ``c_ld`` apart) = the column rows ``col_g (rows, K*Cg)`` @ ``W'_g``: float products
    (:func:`._tile_gemm.gemm_tiles`), or, for a bfloat16 ``wk``, the rows first rounded
    to bfloat16 (:func:`._channel_vectors.to_bf16`) into ``colb`` (rows of ``G*KCp``, the
    padding column 0) and multiplied by :func:`._tile_gemm.gemm_tiles_bf16`."""
    if wk.dtype == types.uint16:

        def bf16(colf, colb, rows, wk, kcg, kcp, c_at, c_ld, c_g):
            groups, blocks, kp, _ = wk.shape
            ncol = groups * kcg
            for r in range(rows):
                for g in range(groups):
                    to_bf16(colb + (r * groups + g) * kcp * 2,
                            _addr(colf) + (r * ncol + g * kcg) * 4,
                            np.int64(kcg))  # type: ignore[call-arg]  # fmt: skip
            for g in range(groups):
                gemm_tiles_bf16(rows, blocks * block_columns(4), kp, colb + g * kcp * 2,
                                groups * kcp, _addr(wk) + g * blocks * kp * 128,
                                c_at + g * c_g * 4, c_ld, False)  # fmt: skip

        return bf16

    def float_(colf, colb, rows, wk, kcg, kcp, c_at, c_ld, c_g):
        groups, _, ogp = wk.shape
        item = colf.itemsize
        for g in range(groups):
            gemm_tiles(rows, ogp, kcg, _addr(colf) + g * kcg * item, groups * kcg, 1,
                       _addr(wk) + g * kcg * ogp * item, ogp, c_at + g * c_g * item, c_ld,
                       False, item)  # fmt: skip

    return float_


@njit(cache=True, nogil=True, parallel=True, error_model="numpy", fastmath=_FM)
def forward_fused(x, geo, smp, wk, bias, out, tiles):  # pragma: no cover - compiled
    """The whole forward, one parallel region.

    Layout: ``x (N*H*W, C)`` NHWC rows; ``wk (G, K*Cg, OGp)``: ``W'_g`` transposed, i.e.
    ``wk[g, k*Cg + c, o] = weight[g*O/G + o, c, k]``, its columns zero-padded to ``OGp``
    (a multiple of :func:`._tile_gemm.block_columns`); ``bias (O,)``; ``out`` an
    ``Output`` of ``N*O*Ho*Wo`` entries; ``tiles.buffers (threads, tile_p*(K*C + G*OGp))``
    with ``tile_p`` = ``tiles.rows`` rounded up to :data:`._tile_gemm.MR`. All arrays
    C-contiguous (checked), one float dtype.

    bfloat16 products (float32 only; CPUs with AVX512-BF16 only,
    :func:`._tile_gemm.bf16_supported`): ``wk (G, OGp/32, KCp/2, 64)`` ``uint16``, i.e.
    the same ``W'_g`` with ``K*Cg`` rows zero-padded to an even ``KCp``, as bfloat16 in the
    blocks of :func:`._tile_gemm.gemm_tiles_bf16`; ``tiles.buffers`` holds another
    ``tile_p*G*KCp/2`` floats (the bfloat16 column tile), zeroed.

    Writes every entry of ``out.data``; ``tiles.buffers`` is scratch.

    Each thread takes a contiguous range of tiles (``tiles.rows`` output pixels of one
    image), samples a tile's column rows into its own buffer (cache-resident) and
    multiplies it by ``W'`` right away (:func:`_products`) into output rows
    ``(pixel, G*OGp)``, then writes them with the bias into ``out``: ``(n, y, x, o)`` for a
    channels_last ``out``, else ``(n, o, y, x)``."""
    _require_c(x)
    _require_sampling(smp)
    _require_c(wk)
    _require_c(bias)
    outf = out.data  # written in the parallel loop: a local, not a field (module docstring)
    bufs = tiles.buffers
    _require_c(outf)
    _require_c(bufs)
    channels_last = out.channels_last
    tile = tiles.rows
    tile_p = padded(tile, MR)
    nt = bufs.shape[0]
    per = smp.offset.shape[2] * smp.offset.shape[3]
    groups, kcg, kcp, ogp = _weight_dims(wk, geo)
    og = bias.shape[0] // groups
    ncol = groups * kcg
    c_out = groups * og
    row_w = groups * ogp  # entries per row of the output tile
    tiles_per_image = (per + tile - 1) // tile
    total = smp.offset.shape[0] * tiles_per_image
    xf = x.ravel()
    zrow = _zero_row(x.shape[1], x.dtype)
    item = outf.itemsize
    plain = _is_plain(geo)
    ones = _fill_row(max(x.shape[1], 16), x.dtype, 1)
    for t in prange(nt):
        colf = bufs[t, : tile_p * ncol]
        ot = bufs[t, tile_p * ncol : tile_p * (ncol + row_w)]
        colb = _addr(bufs) + (t * bufs.shape[1] + tile_p * (ncol + row_w)) * item
        pos = np.empty(2 * tile_p, np.int32)  # one small allocation a thread
        for ti in range(total * t // nt, total * (t + 1) // nt):
            n = ti // tiles_per_image
            l0 = (ti - n * tiles_per_image) * tile
            rows = min(tile, per - l0)
            _sample_tile(xf, zrow, ones, pos, colf, ncol, n, l0, rows, geo, smp, plain)
            # straight into a channels_last output when whole register tiles fit in the
            # tile's own rows and columns (no padding column, rows a multiple of MR)
            direct = channels_last and ogp == og and rows % MR == 0
            c_at = _addr(outf) + (n * per + l0) * c_out * item if direct else _addr(ot)
            c_ld = c_out if direct else row_w
            c_g = og if direct else ogp  # columns from one group's block to the next
            _products(colf, colb, rows, wk, kcg, kcp, c_at, c_ld, c_g)
            _write_tile(outf, ot, bias, n * per + l0, per, rows, groups, og, ogp, channels_last,
                        direct)  # fmt: skip


def forward_tile_floats(cols: int, out_row: int, tile: int) -> int:
    """Floats of one thread's buffer in :func:`forward_fused`: the column tile and the
    output tile, ``tile`` rows rounded up to whole register tiles."""
    return padded(tile, MR) * (cols + out_row)


@njit(nogil=True, error_model="numpy", fastmath=_FM)  # a real call, not inlined
def _backward_row(x, gx, zrow, col, gcol, job, geo, smp, grads):  # pragma: no cover - compiled
    """One row of the backward (see :class:`_RowJob`): from its entries of ``gcol``
    rebuild its entries of ``col`` (both flat), add the input gradient into ``gx`` and the
    offset / mask gradients into ``grads``, each chunk of ``geo.reduce_channels`` channels
    into its own slot (``job.c_lo`` must start a chunk; slot 0 is the chunk that starts at
    channel ``x.first_channel``).

    ``x`` / ``gx`` are ``Rows`` holding (at least) channels ``job.c_lo:job.c_hi``; ``zrow``
    at least ``x.width`` zeros; ``grads`` an ``OffsetGrads``."""
    n, y, xo = job.n, job.y, job.x
    k_all = geo.taps
    cg = geo.group_channels
    cgd = geo.deform_channels
    chunk = geo.reduce_channels
    xf, x_ld, x_c0 = x
    gxf, gx_ld, gx_c0 = gx
    zero = xf.dtype.type(0)
    img = (n - job.first_image) * geo.height * geo.width
    gs = job.gx_shift
    j0 = x_c0 // chunk  # the chunk of slot 0
    for d in range(geo.channels // cgd):
        c0 = max(d * cgd, job.c_lo)
        c1 = min(d * cgd + cgd, job.c_hi)
        if c0 >= c1:
            continue
        g0, g1 = c0 // cg, (c1 - 1) // cg + 1
        kh = d * 2 * k_all
        for k in range(k_all):
            inside, m, fill, lh, lw, hi, wi, top, bot, lef, rig = _tap(geo, smp, n, d, k, y, xo)
            if not inside:
                v = fill * m
                for g in range(g0, g1):
                    at = job.start + g * (k_all - 1) * cg + k * job.tap_stride - job.col_c0
                    col[at + max(c0, g * cg) : at + min(c1, g * cg + cg)] = v
                if fill != fill:  # a NaN position: NaN derivatives by position and mask
                    for j in range(c0 // chunk - j0, (c1 - 1) // chunk + 1 - j0):
                        grads.offset[n, kh + 2 * k, y, xo, j] = fill
                        grads.offset[n, kh + 2 * k + 1, y, xo, j] = fill
                        if smp.use_mask:
                            grads.mask[n, d * k_all + k, y, xo, j] = fill
                continue
            a00, a01, a10, a11 = _bilinear(lh, lw, top, bot, lef, rig)
            i00, i01, i10, i11 = _corner_pixels(img, hi, wi, geo.height, geo.width)
            on00 = top and lef
            on01 = top and rig
            on10 = bot and lef
            on11 = bot and rig
            on = (1 if on00 else 0) | (2 if on01 else 0) | (4 if on10 else 0) | (8 if on11 else 0)
            x00, o00 = _source(xf, zrow, on00, i00, x_ld)
            x01, o01 = _source(xf, zrow, on01, i01, x_ld)
            x10, o10 = _source(xf, zrow, on10, i10, x_ld)
            x11, o11 = _source(xf, zrow, on11, i11, x_ld)
            b00 = a00 * m
            b01 = a01 * m
            b10 = a10 * m
            b11 = a11 * m
            one = _one_like(lh)
            hh = one - lh
            hw = one - lw
            c = c0
            while c < c1:
                # chunk j of the reduction: its own partial sums and slot, so the result
                # does not depend on which thread took which channels
                j = c // chunk
                cj = min(c1, j * chunk + chunk)
                # per-corner sums of gcol * x: the mask and offset gradients are fixed
                # linear combinations of these four, taken once per tap and chunk
                s00 = zero
                s01 = zero
                s10 = zero
                s11 = zero
                while c < cj:
                    g = c // cg
                    ce = min(cj, g * cg + cg)
                    nc = ce - c
                    # flat unsigned indices: no wraparound checks, no array views
                    p00 = np.uint64(o00 + c - x_c0)
                    p01 = np.uint64(o01 + c - x_c0)
                    p10 = np.uint64(o10 + c - x_c0)
                    p11 = np.uint64(o11 + c - x_c0)
                    pc = np.uint64(
                        job.start + g * (k_all - 1) * cg + k * job.tap_stride + c - job.col_c0
                    )
                    # col, the input gradient of the corners on the image (in corner
                    # order) and the four corner sums, each source loaded once
                    t: tuple = sweep(
                        _at(gcol, pc), _at(col, pc), np.int64(nc), _at(x00, p00),
                        _at(x01, p01), _at(x10, p10), _at(x11, p11),
                        _at(gxf, (i00 - gs) * gx_ld + c - gx_c0),
                        _at(gxf, (i01 - gs) * gx_ld + c - gx_c0),
                        _at(gxf, (i10 - gs) * gx_ld + c - gx_c0),
                        _at(gxf, (i11 - gs) * gx_ld + c - gx_c0), b00, b01, b10, b11, on,
                    )  # type: ignore[call-arg]  # fmt: skip
                    s00 += t[0]
                    s01 += t[1]
                    s10 += t[2]
                    s11 += t[3]
                    c = ce
                # d bilinear / dh and / dw per corner (the sums of corners off the image
                # are 0: they read the zero row), as in the pure path
                acc_h = hw * (s10 - s00) + lw * (s11 - s01)
                acc_w = hh * (s01 - s00) + lh * (s11 - s10)
                # the chunks' slots of one entry are adjacent: one cache line
                grads.offset[n, kh + 2 * k, y, xo, j - j0] += acc_h * m
                grads.offset[n, kh + 2 * k + 1, y, xo, j - j0] += acc_w * m
                if smp.use_mask:
                    grads.mask[n, d * k_all + k, y, xo, j - j0] += (
                        a00 * s00 + a01 * s01 + a10 * s10 + a11 * s11
                    )


@njit(inline="always")
def _require_grads(grads):  # pragma: no cover - compiled
    _require_c(grads.offset)
    _require_c(grads.mask)


@njit(cache=True, nogil=True, parallel=True, error_model="numpy", fastmath=_FM)
def backward_columns(x, geo, smp, chunk, gcol, col, gx, grads, items):  # pragma: no cover
    """The numba sweep of the chunked backward over ``chunk``.

    Layout: ``x`` / ``gx (N*H*W, C)`` NHWC rows; ``gcol`` = d loss / d ``col`` and ``col``
    ``(rows, K*C)`` as in :func:`sample_columns`; ``grads`` an ``OffsetGrads`` with a slot
    for every slot named in ``items (m, 5)`` (int64). All arrays C-contiguous (checked),
    one float dtype except ``items``.

    Writes every entry of ``col`` (rebuilt, for the weight gradient); adds the input
    gradient into ``gx`` and the offset and mask gradients into ``grads`` (the caller
    zeroes both). One thread per work item ``items[i] = (row from, row to, channel from,
    channel to)``: items either own whole images (disjoint input-gradient regions) or a
    block of whole reduction chunks (disjoint channels), so scatters into ``gx`` never
    race and each chunk's slot of ``grads`` is written by one item per image."""
    _require_c(x)
    _require_sampling(smp)
    _require_c(gcol)
    _require_c(col)
    _require_c(gx)
    _require_grads(grads)
    _require_c(items)
    ncol = col.shape[1]
    xr = Rows(x.ravel(), x.shape[1], 0)
    zrow = _zero_row(x.shape[1], x.dtype)
    gxr = Rows(gx.ravel(), gx.shape[1], 0)
    colf = col.ravel()
    gcolf = gcol.ravel()
    cg = geo.group_channels
    for it in prange(items.shape[0]):
        c_lo, c_hi = items[it, 2], items[it, 3]
        for r in range(items[it, 0], items[it, 1]):
            n, y, xo = _chunk_pixel(chunk, r, geo.out_width)
            job = _RowJob(n, y, xo, c_lo, c_hi, r * ncol, cg, 0, 0, 0)
            _backward_row(xr, gxr, zrow, colf, gcolf, job, geo, smp, grads)


def _gcol_products(got, w_t, gcol, rows, c_out, kc, kcp, bf):  # pragma: no cover
    raise NotImplementedError  # replaced by the overload in compiled code


@overload(_gcol_products, inline="always")
def _gcol_products_impl(got, w_t, gcol, rows, c_out, kc, kcp, bf):  # pragma: no cover
    """``gcol (rows, kcp) = got (rows, O) @ W_t``: float products, or for a bfloat16
    ``w_t`` (``(kcp/32, Op2/2, 64)`` blocks of :func:`._tile_gemm.gemm_tiles_bf16`, ``Op2``
    = ``O`` rounded up to even) the grad_out tile rounded to bfloat16 into ``bf[0] (tile_p,
    Op2)`` and, transposed, ``bf[1] (Op, tile_p)`` (for :func:`_gw_products`)."""
    if w_t.dtype == types.uint16:

        def bf16(got, w_t, gcol, rows, c_out, kc, kcp, bf):
            gb, gbt, _ = bf
            cop = gb.shape[1]
            for r in range(rows):
                to_bf16(_addr(gb) + r * cop * 2, _addr(got) + r * c_out * 4,
                        np.int64(c_out))  # type: ignore[call-arg]  # fmt: skip
                for o in range(c_out):
                    gbt[o, r] = gb[r, o]
            if rows % 2:  # the last pair's partner row: zero
                for o in range(c_out):
                    gbt[o, rows] = 0
            gemm_tiles_bf16(rows, kc, cop // 2, _addr(gb), cop, _addr(w_t), _addr(gcol), kcp,
                            False)  # fmt: skip

        return bf16

    def float_(got, w_t, gcol, rows, c_out, kc, kcp, bf):
        gemm_tiles(rows, kc, c_out, _addr(got), c_out, 1, _addr(w_t), kcp, _addr(gcol), kcp,
                   False, got.itemsize)  # fmt: skip

    return float_


def _gw_products(got, col, gw_t, w_t, rows, c_out, kc, kcp, bf):  # pragma: no cover
    raise NotImplementedError  # replaced by the overload in compiled code


@overload(_gw_products, inline="always")
def _gw_products_impl(got, col, gw_t, w_t, rows, c_out, kc, kcp, bf):  # pragma: no cover
    """``gW_t += got^T @ col`` (``col (rows, kcp)``): float products, or for a bfloat16
    ``w_t`` the column rows rounded to bfloat16 and packed in row pairs into ``bf[2]`` (a
    zero partner row for an odd count), times ``bf[1]``."""
    if w_t.dtype == types.uint16:

        def bf16(got, col, gw_t, w_t, rows, c_out, kc, kcp, bf):
            _, gbt, cp = bf
            pairs = (rows + 1) // 2
            if rows % 2:
                for j in range(kcp):
                    col[rows * kcp + j] = 0
            for q in range(pairs):
                pack_pairs_bf16(_addr(cp) + q * 64 * 2, _addr(col) + 2 * q * kcp * 4,
                                _addr(col) + (2 * q + 1) * kcp * 4, np.int64(kcp),
                                np.int64(pairs * 64))  # type: ignore[call-arg]  # fmt: skip
            gemm_tiles_bf16(c_out, kc, pairs, _addr(gbt), gbt.shape[1], _addr(cp), _addr(gw_t),
                            kcp, True)  # fmt: skip

        return bf16

    def float_(got, col, gw_t, w_t, rows, c_out, kc, kcp, bf):
        gemm_tiles(c_out, kc, rows, _addr(got), 1, c_out, _addr(col), kcp, _addr(gw_t), kcp,
                   True, got.itemsize)  # fmt: skip

    return float_


def _bf16_tiles(buf, at, w_t, c_out, kcp, tile):  # pragma: no cover
    raise NotImplementedError  # replaced by the overload in compiled code


@overload(_bf16_tiles, inline="always")
def _bf16_tiles_impl(buf, at, w_t, c_out, kcp, tile):  # pragma: no cover
    """The bfloat16 tiles of :func:`_gcol_products` / :func:`_gw_products` in ``buf[at:]``
    (:func:`bf16_tile_floats` floats): the grad_out tile, its transpose and the packed
    column pairs; empty for a float ``w_t``."""
    if w_t.dtype == types.uint16:

        def bf16(buf, at, w_t, c_out, kcp, tile):
            tile_p = padded(tile, MR)
            cop = padded(c_out, 2)
            u = buf[at:].view(np.uint16)
            a1 = padded(tile_p * cop, 32)
            a2 = a1 + padded(padded(c_out, MR) * tile_p, 32)
            gb = u[: tile_p * cop].reshape(tile_p, cop)
            gbt = u[a1 : a1 + padded(c_out, MR) * tile_p].reshape(padded(c_out, MR), tile_p)
            return gb, gbt, u[a2 : a2 + tile_p * kcp]

        return bf16

    def float_(buf, at, w_t, c_out, kcp, tile):
        return np.empty((0, 0), np.uint16), np.empty((0, 0), np.uint16), np.empty(0, np.uint16)

    return float_


def bf16_tile_floats(c_out: int, kcp: int, tile: int) -> int:
    """Floats of one thread's bfloat16 tiles in the backward (:func:`_bf16_tiles`)."""
    tile_p = padded(tile, MR)
    return (padded(tile_p * padded(c_out, 2), 32) + padded(padded(c_out, MR) * tile_p, 32)
            + tile_p * kcp) // 2  # fmt: skip


@njit(inline="always")
def _backward_tile(  # pragma: no cover - compiled
    x, gx, zrow, gof, got, w_t, gcol, col, gw_t, n, l0, rows, c_lo, cb, first, gx_shift,
    channels_last, c_out, kcp, geo, smp, grads, bf,
):  # fmt: skip
    """One tile of the fused backwards: output pixels ``l0 : l0 + rows`` of image ``n``,
    input channels ``c_lo : c_lo + cb`` (``x`` / ``gx`` ``Rows`` starting at image
    ``first``); ``gof`` the flat grad_out (NHWC when ``channels_last``, else NCHW); ``got``,
    ``gcol``, ``col`` the thread's tiles, ``w_t (O, kcp)`` and ``gw_t (Op, kcp)``, ``kcp``
    the row length of ``gcol`` / ``col`` too (all flat or 2-D, addressed by element);
    ``w_t`` may be bfloat16 blocks instead, with ``bf`` the thread's bfloat16 tiles
    (:func:`_bf16_tiles`): then both products are bfloat16.

    1. the grad_out tile as rows ``(pixel, O)`` into ``got``, ``gcol = got @ W_t``;
    2. :func:`_backward_row` on each row: ``col``, the input gradient, the offset / mask
       gradients;
    3. ``gW_t += got^T @ col``: each entry's chain continues over the tile's pixels."""
    per = smp.offset.shape[2] * smp.offset.shape[3]
    kc = geo.taps * cb
    wo = geo.out_width
    if channels_last:
        g_at = (n * per + l0) * c_out
        for i in range(rows * c_out):
            got[i] = gof[g_at + i]
    else:
        for o in range(c_out):
            g_at = (n * c_out + o) * per + l0
            for r in range(rows):
                got[r * c_out + o] = gof[g_at + r]
    _gcol_products(got, w_t, gcol, rows, c_out, kc, kcp, bf)
    for r in range(rows):
        y = (l0 + r) // wo
        job = _RowJob(n, y, l0 + r - y * wo, c_lo, c_lo + cb, r * kcp, cb, c_lo, first, gx_shift)
        _backward_row(x, gx, zrow, col, gcol, job, geo, smp, grads)
    _gw_products(got, col, gw_t, w_t, rows, c_out, kc, kcp, bf)


def backward_tile_parts(c_out: int, kcp: int, tile: int) -> tuple[int, int, int, int, int, int]:
    """Offsets (in floats) of the parts of one thread's buffer in :func:`backward_fused`
    for ``kcp`` (padded) columns and ``tile`` rows: ``W_t``, ``gW_t``, ``gcol``, ``col``,
    the grad_out tile, and the total; each part starts 16-float aligned."""
    tile_p = padded(tile, MR)
    at_gw = padded(c_out * kcp, 16)
    at_gcol = at_gw + padded(padded(c_out, MR) * kcp, 16)
    at_col = at_gcol + padded(tile_p * kcp, 16)
    at_go = at_col + padded(tile_p * kcp, 16)
    return 0, at_gw, at_gcol, at_col, at_go, at_go + padded(tile_p * c_out + MR, 16)


_backward_parts = njit(inline="always")(backward_tile_parts)


def _thread_weights(part, w, c_lo, cb, k_all, kcp):  # pragma: no cover
    raise NotImplementedError  # replaced by the overload in compiled code


@overload(_thread_weights, inline="always")
def _thread_weights_impl(part, w, c_lo, cb, k_all, kcp):  # pragma: no cover - compile time
    """A thread's slice of the weight ``w (O, C*K)`` (channels ``c_lo : c_lo + cb``) as
    ``W_t (O, kcp)``, taps outer (column ``k*cb + c``), written into ``part`` (flat, at
    least ``O*kcp`` floats) and returned; for a bfloat16 ``w`` (raw ``uint16``) as the
    blocks of :func:`._tile_gemm.gemm_tiles_bf16` instead (``(kcp/32, O2/2, 64)``, ``O2``
    = ``O`` rounded up to even; padding 0), in ``part`` too."""
    if w.dtype == types.uint16:

        def bf16(part, w, c_lo, cb, k_all, kcp):
            c_out = w.shape[0]
            cop = padded(c_out, 2)
            wb = part.view(np.uint16)[: kcp * cop].reshape(kcp // 32, cop // 2, 64)
            kc = k_all * cb
            for j in range(kcp // 32):
                for q in range(cop // 2):
                    for tt in range(32):
                        kcol = 32 * j + tt
                        k = kcol // cb
                        c = kcol - k * cb
                        for h in range(2):
                            o = 2 * q + h
                            v = np.uint16(0)
                            if o < c_out and kcol < kc:
                                v = w[o, (c_lo + c) * k_all + k]
                            wb[j, q, 2 * tt + h] = v
            return wb

        return bf16

    def float_(part, w, c_lo, cb, k_all, kcp):
        for o in range(w.shape[0]):
            for c in range(cb):
                for k in range(k_all):
                    part[o * kcp + k * cb + c] = w[o, (c_lo + c) * k_all + k]
        return part

    return float_


@njit(cache=True, nogil=True, parallel=True, error_model="numpy", fastmath=_FM)
def backward_fused(x, gx, geo, smp, grad_out, w, gw, grads, edges, tiles):  # pragma: no cover
    """The backward of one block of input channels (one conv group only), one parallel
    region.

    Layout: ``x`` / ``gx`` ``Rows`` of the block ``edges[0]:edges[-1]``; ``grad_out`` an
    ``Output`` of ``N*O*Ho*Wo`` entries; ``w`` / ``gw (O, C*K)``, the weight and its
    gradient in torch's layout; ``grads`` an ``OffsetGrads`` (a slot per reduction chunk);
    ``edges (threads + 1,)`` int64 channel cuts at chunk boundaries; ``tiles.buffers
    (threads, total)``, zeroed, ``total`` from :func:`backward_tile_parts` for the
    widest thread's columns ``K*cb`` rounded up to :func:`._tile_gemm.block_columns`.
    All arrays C-contiguous (checked), one float dtype except ``edges``. A bfloat16 ``w``
    (raw ``uint16``; float32 otherwise; AVX512-BF16 CPUs only) makes both products
    bfloat16 (:func:`_thread_weights`, :func:`_backward_tile`), with
    :func:`bf16_tile_floats` more floats per thread's buffer.

    Writes columns ``c*K + k`` of ``gw`` for the block's channels ``c``; adds the block's
    input gradient into ``gx`` and its offset and mask gradients into ``grads`` (the caller
    zeroes both); ``tiles.buffers`` is scratch.

    Thread ``t`` owns channels ``edges[t]:edges[t + 1]`` (so its input-gradient scatters
    and weight-gradient columns are its own). It copies its slice of the weight to
    ``W_t (O, K*cb)`` (taps outer, as its columns), then for every tile of output pixels
    of every image, in order:

    1. the tile of grad_out as rows ``(pixel, O)``, and ``gcol = grad_out_tile @ W_t``;
    2. :func:`_backward_row` on each row: ``col``, the input gradient into ``gx``, the
       offset / mask gradients into the slots of its chunks;
    3. ``gW_t += grad_out_tile^T @ col``: each entry one FMA chain over all output
       pixels in order, however the pixels were cut into tiles;

    and finally writes ``gW_t`` into its columns of ``gw`` (adds nothing else there)."""
    _require_c(x.data)
    _require_c(gx.data)
    _require_sampling(smp)
    gof = _flat(grad_out.data)
    bufs = tiles.buffers  # written in the parallel loop: a local, not a field
    _require_c4(w, gw, edges, bufs)
    _require_grads(grads)
    channels_last = grad_out.channels_last
    tile = tiles.rows
    nt = edges.shape[0] - 1
    n_img = smp.offset.shape[0]
    per = smp.offset.shape[2] * smp.offset.shape[3]
    k_all = geo.taps
    c_out = w.shape[0]
    tiles_per_image = (per + tile - 1) // tile
    item = gof.itemsize
    nr = block_columns(item)
    zero = gof.dtype.type(0)
    zrow = _zero_row(x.width, gof.dtype)
    for t in prange(nt):
        c_lo = edges[t]
        cb = edges[t + 1] - c_lo
        if cb <= 0:
            continue
        kc = k_all * cb
        kcp = padded(kc, nr)
        _, at_gw, at_gcol, at_col, at_go, end = _backward_parts(c_out, kcp, tile)
        buf = bufs[t]
        gw_t = buf[at_gw:at_gcol]
        gcol = buf[at_gcol:at_col]
        col = buf[at_col:at_go]
        got = buf[at_go:end]
        w_t = _thread_weights(buf[:at_gw], w, c_lo, cb, k_all, kcp)
        for o in range(c_out):
            for c in range(cb):
                for k in range(k_all):
                    gw_t[o * kcp + k * cb + c] = zero
        bf = _bf16_tiles(buf, end, w_t, c_out, kcp, tile)
        for ti in range(n_img * tiles_per_image):
            n = ti // tiles_per_image
            l0 = (ti - n * tiles_per_image) * tile
            rows = min(tile, per - l0)
            _backward_tile(x, gx, zrow, gof, got, w_t, gcol, col, gw_t, n, l0, rows, c_lo, cb,
                           0, 0, channels_last, c_out, kcp, geo, smp, grads, bf)  # fmt: skip
        for o in range(c_out):
            for c in range(cb):
                for k in range(k_all):
                    gw[o, (c_lo + c) * k_all + k] = gw_t[o * kcp + k * cb + c]


@njit(inline="always")
def _slot_args(x, gx, smp, grad_out, wb, gw_slots, cuts, grads, tiles):  # pragma: no cover
    """The checks shared by the slot-split backwards, and their flat views: ``x``, ``gx``,
    grad_out, and the per-thread buffers (read into a local: written in the parallel
    loop)."""
    _require_sampling(smp)
    bufs = tiles.buffers
    _require_c4(wb, gw_slots, cuts, bufs)
    _require_grads(grads)
    return _flat(x), _flat(gx), _flat(grad_out.data), bufs


def image_tile_parts(c_out: int, kcp: int, tile: int, slot_pixels: int, channels: int
                     ) -> tuple[int, int, int, int, int, int]:  # fmt: skip
    """Offsets (in floats) of the parts of one thread's buffer in :func:`backward_images`:
    ``gcol``, ``col``, the grad_out tile, the NHWC copies of a slot's input and of its
    gradient (``slot_pixels`` pixels of ``channels``; empty for channels_last input), and
    the total; each part starts 16-float aligned."""
    tile_p = padded(tile, MR)
    at_col = padded(tile_p * kcp, 16)
    at_go = at_col + padded(tile_p * kcp, 16)
    at_x = at_go + padded(tile_p * c_out + MR, 16)
    at_gx = at_x + padded(slot_pixels * channels, 16)
    return 0, at_col, at_go, at_x, at_gx, at_gx + padded(slot_pixels * channels, 16)


_image_parts = njit(inline="always")(image_tile_parts)


@njit(cache=True, nogil=True, parallel=True, error_model="numpy", fastmath=_FM)
def backward_images(
    x, gx, nchw, geo, smp, grad_out, wb, gw_slots, grads, cuts, tiles
):  # pragma: no cover
    """The backward (one conv group), the images split between the threads, one parallel
    region.

    Layout: ``x`` / ``gx``: the input and its gradient, ``(N*H*W, C)`` NHWC rows, or when
    ``nchw`` ``(N, C, H*W)``; ``grad_out`` an ``Output`` of ``N*O*Ho*Wo`` entries; ``wb
    (O, Kp)``: ``W'`` (``wb[o, k*C + c] = weight[o, c, k]``) with ``Kp`` = ``K*C`` rounded up
    to :func:`._tile_gemm.block_columns`, its padding zero; ``gw_slots (S, Op, Kp)`` zeroed,
    ``Op`` = ``O`` rounded up to :data:`._tile_gemm.MR`;
    ``grads`` an ``OffsetGrads``; ``cuts (S + 1,)`` int64 image cuts of the ``S`` slots;
    ``tiles.buffers (threads, total)`` zeroed, ``total`` from :func:`image_tile_parts`.
    All arrays C-contiguous (checked), one float dtype except ``cuts``.

    bfloat16 products (float32 only; CPUs with AVX512-BF16 only): ``wb`` as bfloat16
    blocks ``(Kp/32, O2/2, 64)`` ``uint16`` of :func:`._tile_gemm.gemm_tiles_bf16` (``W'``
    with ``O`` rounded up to even ``O2``, zero-padded), and each thread's buffer holds
    :func:`bf16_tile_floats` more floats (:func:`_backward_tile`).

    Writes ``gw_slots[s]``: slot ``s``'s weight gradient in ``W'``'s layout, each entry
    one FMA chain over the slot's output pixels in order (the caller adds the slots in
    slot order: the slots are a function of ``N`` only, so the sums never depend on the
    threads); adds the input gradient into ``gx`` (the caller zeroes it; with ``nchw`` it
    is written, not added) and the offset and mask gradients into ``grads``.

    Thread ``t`` takes whole slots of images (so its input-gradient scatters are its
    own), and for every tile of output pixels of each of their images, in order: the
    grad_out tile as rows ``(pixel, O)``, ``gcol = grad_out_tile @ W'``; :func:`_backward_row`
    on each row over all channels; ``gW_s += grad_out_tile^T @ col``. NCHW input is
    copied to NHWC one slot at a time, and the slot's gradient written back."""
    xf, gxf, gof, bufs = _slot_args(x, gx, smp, grad_out, wb, gw_slots, cuts, grads, tiles)
    channels_last = grad_out.channels_last
    tile = tiles.rows
    nt = bufs.shape[0]
    slots = cuts.shape[0] - 1
    per = smp.offset.shape[2] * smp.offset.shape[3]
    hw = geo.height * geo.width
    c_all = geo.channels
    c_out = gof.shape[0] // (smp.offset.shape[0] * per)
    kcp = gw_slots.shape[2]
    tiles_per_image = (per + tile - 1) // tile
    zrow = _zero_row(c_all, gof.dtype)
    span = 0  # the most images in a slot
    for s in range(slots):
        span = max(span, cuts[s + 1] - cuts[s])
    for t in prange(nt):
        _, at_col, at_go, at_x, at_gx, end = _image_parts(
            c_out, kcp, tile, span * hw if nchw else 0, c_all
        )
        buf = bufs[t]
        gcol = buf[:at_col]
        col = buf[at_col:at_go]
        got = buf[at_go:at_x]
        xs = buf[at_x:at_gx]
        gxs = buf[at_gx:end]
        bf = _bf16_tiles(buf, end, wb, c_out, kcp, tile)
        for s in range(slots * t // nt, slots * (t + 1) // nt):
            n0, n1 = cuts[s], cuts[s + 1]
            if nchw:  # the slot's input as NHWC rows, its gradient zeroed
                for n in range(n0, n1):
                    _transpose_tiles(xf, n * c_all * hw, xs, (n - n0) * hw * c_all, c_all, hw, 0,
                                     hw)  # fmt: skip
                for i in range((n1 - n0) * hw * c_all):
                    gxs[i] = 0
                xr = Rows(xs, c_all, 0)
                gxr = Rows(gxs, c_all, 0)
                first = n0
            else:
                xr = Rows(xf, c_all, 0)
                gxr = Rows(gxf, c_all, 0)
                first = 0
            gws = gw_slots[s].ravel()
            for ti in range((n1 - n0) * tiles_per_image):
                n = n0 + ti // tiles_per_image
                l0 = (ti % tiles_per_image) * tile
                rows = min(tile, per - l0)
                _backward_tile(xr, gxr, zrow, gof, got, wb, gcol, col, gws, n, l0, rows, 0,
                               c_all, first, 0, channels_last, c_out, kcp, geo, smp,
                               grads, bf)  # fmt: skip
            if nchw:  # the slot's input gradient back to NCHW
                for n in range(n0, n1):
                    _transpose_tiles(gxs, (n - n0) * hw * c_all, gxf, n * c_all * hw, hw, c_all, 0,
                                     c_all)  # fmt: skip


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def band_rows(geo, smp, bands, out):  # pragma: no cover - compiled
    """The input rows each band of output pixels of image 0 samples: ``out[s] = (first,
    last)``, ``(0, -1)`` when none. Layout: ``bands (S, 2)`` int64 flat pixel ranges
    ``[from, to)``; ``out (S, 2)`` int64. A superset is fine (clamped corner rows of
    every tap that samples the image)."""
    _require_sampling(smp)
    _require_c(bands)
    _require_c(out)
    wo = geo.out_width
    dgs = geo.channels // geo.deform_channels
    for s in prange(bands.shape[0]):
        lo = geo.height
        hi = -1
        for pix in range(bands[s, 0], bands[s, 1]):
            y = pix // wo
            xo = pix - y * wo
            for d in range(dgs):
                for k in range(geo.taps):
                    h, w, _ = _point(smp, 0, d, k, y, xo)
                    if h > -1 and h < geo.height and w > -1 and w < geo.width:
                        r = int(np.floor(h))
                        lo = min(lo, max(r, 0))
                        hi = max(hi, min(r + 1, geo.height - 1))
        out[s, 0] = lo if hi >= 0 else 0
        out[s, 1] = hi


@njit(cache=True, nogil=True, parallel=True, error_model="numpy", fastmath=_FM)
def backward_bands(
    x, geo, smp, grad_out, wb, gw_slots, grads, bands, windows, gxw, tiles
):  # pragma: no cover
    """The backward of one image (one conv group), its output pixels split into bands
    between the threads, one parallel region.

    Layout: ``x (H*W, C)`` NHWC rows; ``grad_out``, ``wb``, ``gw_slots (S, Op, Kp)`` and
    ``grads`` as in :func:`backward_images` (one band a slot); ``bands (S, 2)`` int64 flat
    output-pixel ranges ``[from, to)``; ``windows (S, 2)`` int64: the first input row of
    band ``s``'s window of the input gradient and where it starts in ``gxw`` (floats);
    ``gxw`` the windows, flat, zeroed, each ``(rows, W, C)`` covering every input row the
    band samples (:func:`band_rows`); ``tiles`` as in :func:`backward_images` with no slot
    copies. All arrays C-contiguous (checked), one float dtype except the int64 ones.

    Writes ``gw_slots`` as :func:`backward_images` does and adds each band's input
    gradient into its window (the caller adds the windows up in band order,
    :func:`merge_windows`) and the offset and mask gradients into ``grads``."""
    xf, gxf, gof, bufs = _slot_args(x, gxw, smp, grad_out, wb, gw_slots, bands, grads, tiles)
    _require_c(windows)
    channels_last = grad_out.channels_last
    tile = tiles.rows
    nt = bufs.shape[0]
    slots = bands.shape[0]
    c_all = geo.channels
    c_out = gof.shape[0] // (smp.offset.shape[0] * smp.offset.shape[2] * smp.offset.shape[3])
    kcp = gw_slots.shape[2]
    zrow = _zero_row(c_all, gof.dtype)
    for t in prange(nt):
        _, at_col, at_go, at_x, _, end = _image_parts(c_out, kcp, tile, 0, c_all)
        buf = bufs[t]
        gcol = buf[:at_col]
        col = buf[at_col:at_go]
        got = buf[at_go:at_x]
        bf = _bf16_tiles(buf, end, wb, c_out, kcp, tile)
        for s in range(slots * t // nt, slots * (t + 1) // nt):
            xr = Rows(xf, c_all, 0)
            gxr = Rows(gxf[windows[s, 1] :], c_all, 0)
            shift = windows[s, 0] * geo.width
            gws = gw_slots[s].ravel()
            for l0 in range(bands[s, 0], bands[s, 1], tile):
                rows = min(tile, bands[s, 1] - l0)
                _backward_tile(xr, gxr, zrow, gof, got, wb, gcol, col, gws, 0, l0, rows, 0,
                               c_all, 0, shift, channels_last, c_out, kcp, geo, smp,
                               grads, bf)  # fmt: skip


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def merge_windows(gxw, windows, height, width, gx, nchw, threads):  # pragma: no cover
    """``gx`` = the bands' windows of :func:`backward_bands` added up in band order (each
    entry ``((0 + w_0) + w_1) + ...`` over the windows that cover it; 0 where none).

    Layout: ``gxw`` flat; ``windows (S, 3)`` int64: first row, rows, start in ``gxw``;
    ``gx`` ``(H*W, C)`` NHWC rows, or ``(C, H*W)`` when ``nchw``. C-contiguous (checked).
    ``threads`` ranges of rows, one per thread.

    Row by row: the covering windows' runs added into the row (whole runs, vectorised),
    the NCHW row then written in register-transposed blocks
    (:func:`._channel_vectors.store_transposed`)."""
    _require_c(gxw)
    _require_c(windows)
    _require_c(gx)
    src = gxw.ravel()
    dst = gx.ravel()
    c_all = gx.shape[0] if nchw else gx.shape[1]
    run = width * c_all
    nt = max(1, threads)
    item = dst.itemsize
    lanes = block_columns(item) // 2
    for t in prange(nt):
        row = np.empty(run if nchw else 0, dst.dtype)
        for r in range(height * t // nt, height * (t + 1) // nt):
            acc = row if nchw else dst[r * run : (r + 1) * run]
            for j in range(run):
                acc[j] = 0
            for s in range(windows.shape[0]):
                r0 = windows[s, 0]
                if r >= r0 and r < r0 + windows[s, 1]:
                    at = windows[s, 2] + (r - r0) * run
                    for j in range(run):
                        acc[j] += src[at + j]
            if nchw:  # acc (W, C) -> dst[c, r, :]
                for c0 in range(0, c_all, lanes):
                    for x0 in range(0, width, lanes):
                        store_transposed(_addr(dst) + (c0 * height * width + r * width + x0) * item,
                                         np.int64(height * width),
                                         _addr(row) + (x0 * c_all + c0) * item, np.int64(c_all),
                                         None, np.int64(min(lanes, width - x0)),
                                         np.int64(min(lanes, c_all - c0)),
                                         row[0])  # type: ignore[call-arg]  # fmt: skip


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def sum_slots(slots, out, accumulate):  # pragma: no cover - compiled
    """``out[i] = ((slots[i, 0] + slots[i, 1]) + slots[i, 2]) + ...``, or
    ``((out[i] + slots[i, 0]) + slots[i, 1]) + ...`` when ``accumulate``: the slots added
    up in their order (a fixed order, whatever the thread count), in parallel over ``i``.

    Layout: ``slots (M, S)``, ``out (M,)``, C-contiguous (checked), one float dtype."""
    _require_c(slots)
    _require_c(out)
    size, count = slots.shape
    for i in prange(size):
        acc = out[i] + slots[i, 0] if accumulate else slots[i, 0]
        for j in range(1, count):
            acc += slots[i, j]
        out[i] = acc
