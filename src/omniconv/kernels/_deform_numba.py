"""Numba kernels of the fast CPU deformable convolution (imported lazily; needs numba).

Data layout (all arrays C-contiguous, one float dtype throughout):

* ``x``: the input as ``(N*H*W, C)`` rows, i.e. channels last: each bilinear corner is a
  contiguous run of channels.
* ``col``: the column matrix of a chunk of output positions, ``(rows, G*K*Cg)``: the chunk
  is pixels ``l0 <= l < l1`` (flattened ``y * Wo + x``) of images ``n0, n0 + 1, ...``, row
  ``r`` being pixel ``l0 + r % (l1 - l0)`` of image ``n0 + r // (l1 - l0)``; column
  ``g*K*Cg + k*Cg + c`` is channel ``g*Cg + c`` of conv group ``g`` at tap ``k``; so
  ``col @ W'`` with ``W' = weight.permute(0, 2, 3, 1)`` is one GEMM per conv group.
* ``base_h (K, Ho)`` / ``base_w (K, Wo)``: the undeformed positions in the offset dtype
  (the same numbers the pure-PyTorch path adds the offsets to).

The math is the floor convention of :mod:`omniconv.functional.deform_conv`. Every buffer
comes from torch, so memory profiling sees it (the kernels allocate only a few scalars a
thread for BLAS's by-reference arguments); the chunked backward
kernel runs one thread per work item ``(row from, row to, channel from, channel to, slot)``:
items either own whole images (disjoint input-gradient regions) or a channel block (disjoint
channels), so scatters into ``gx`` never race; offset/mask partial sums over channels go to
the item's slot ``goff[slot]`` / ``gmsk[slot]`` (items sharing a slot own distinct images).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

_FM = {"reassoc", "contract"}  # let LLVM vectorise the channel reductions


@njit(inline="always")
def _require_c(arr):  # pragma: no cover - compiled
    """Refuse an array that is not C-contiguous: the kernels index flat memory and pass
    raw addresses to BLAS, so they check the layout they rely on instead of trusting it
    (the Python side hands them ``.contiguous()`` tensors; this is the kernel's own guard)."""
    if not arr.flags.c_contiguous:
        raise ValueError("omniconv kernel: an array argument is not C-contiguous")


@njit(inline="always")
def _point(base_h, base_w, off, msk, use_mask, one, n, d, k, y, xo):  # pragma: no cover
    """Sample position ``(h, w)`` and mask of tap ``k``, deformable group ``d``, at output
    pixel ``(y, xo)`` of image ``n``."""
    k_all = base_h.shape[0]
    # unsigned indices: no negative-index wraparound checks on this hot path
    un, uy, ux, uk = np.uint64(n), np.uint64(y), np.uint64(xo), np.uint64(k)
    ch = np.uint64(d * 2 * k_all + 2 * k)
    h = base_h[uk, uy] + off[un, ch, uy, ux]
    w = base_w[uk, ux] + off[un, ch + np.uint64(1), uy, ux]
    m = msk[un, np.uint64(d * k_all + k), uy, ux] if use_mask else one
    return h, w, m


@njit(inline="always")
def _zero_columns(col, r, c0, c1, g0, g1, cg, k, k_all, zero):  # pragma: no cover - compiled
    """Row ``r``'s columns of tap ``k`` for input channels ``c0:c1`` (a point off the
    image), across the conv groups ``g0:g1`` those channels belong to."""
    for g in range(g0, g1):
        cs = max(c0, g * cg)
        ce = min(c1, g * cg + cg)
        base = g * k_all * cg + k * cg - g * cg
        col[r, base + cs : base + ce] = zero


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
def _tap(
    base_h, base_w, off, msk, use_mask, one, n, d, k, y, xo, height, width
):  # pragma: no cover
    """Tap ``k`` of deformable group ``d`` at output pixel ``(y, xo)`` of image ``n``:
    whether it samples the image at all (``-1 < h < H`` and ``-1 < w < W``), its mask, and
    the corner setup of :func:`_corner` (meaningful only when inside)."""
    h, w, m = _point(base_h, base_w, off, msk, use_mask, one, n, d, k, y, xo)
    inside = h > -1 and h < height and w > -1 and w < width
    zero = one - one  # (``0 * h`` would be float64: int times float32 promotes in numba)
    lh, lw, hi, wi, top, bot, lef, rig = _corner(
        h if inside else zero, w if inside else zero, height, width
    )
    return inside, m, lh, lw, hi, wi, top, bot, lef, rig


@njit(inline="always")
def _bilinear(lh, lw, top, bot, lef, rig, one):  # pragma: no cover - compiled
    """The four bilinear weights (top-left, top-right, bottom-left, bottom-right), zero for
    corners off the image."""
    zero = one - one
    hh = one - lh
    hw = one - lw
    a00 = hh * hw if (top and lef) else zero
    a01 = hh * lw if (top and rig) else zero
    a10 = lh * hw if (bot and lef) else zero
    a11 = lh * lw if (bot and rig) else zero
    return a00, a01, a10, a11


@njit(inline="always")
def _masked_bilinear(lh, lw, top, bot, lef, rig, one, m):  # pragma: no cover - compiled
    """:func:`_bilinear` times the mask ``m`` (the forward's sampling weights)."""
    a00, a01, a10, a11 = _bilinear(lh, lw, top, bot, lef, rig, one)
    return a00 * m, a01 * m, a10 * m, a11 * m


@njit(inline="always")
def _corner_pixels(img, hi, wi, height, width):  # pragma: no cover - compiled
    """Flat pixel indices (rows of ``x``) of the four corners below/right of ``(hi, wi)``
    in the image starting at row ``img``, clamped onto the image (off-image corners have
    weight zero, so any in-bounds row will do)."""
    ht = img + max(hi, 0) * width
    hb = img + min(hi + 1, height - 1) * width
    wl = max(wi, 0)
    wr = min(wi + 1, width - 1)
    return ht + wl, ht + wr, hb + wl, hb + wr


@njit(inline="always")
def _sample_row_plain(
    xf, colf, pc_row, n, y, xo, height, width, base_h, base_w, off, msk, use_mask, one, c_all
):  # pragma: no cover - compiled
    """:func:`_sample_row` for one conv group and one deformable group (the usual DCN):
    no group loops, so fewer live values around the channel loops."""
    k_all = base_h.shape[0]
    zero = one - one
    img = n * height * width
    nc = np.uint64(c_all)
    for k in range(k_all):
        inside, m, lh, lw, hi, wi, top, bot, lef, rig = _tap(
            base_h, base_w, off, msk, use_mask, one, n, 0, k, y, xo, height, width
        )
        pc = np.uint64(pc_row + k * c_all)
        if not inside:
            for u in range(nc):
                colf[pc + u] = zero
            continue
        a00, a01, a10, a11 = _masked_bilinear(lh, lw, top, bot, lef, rig, one, m)
        i00, i01, i10, i11 = _corner_pixels(img, hi, wi, height, width)
        p00 = np.uint64(i00 * c_all)
        p01 = np.uint64(i01 * c_all)
        p10 = np.uint64(i10 * c_all)
        p11 = np.uint64(i11 * c_all)
        for u in range(nc):
            colf[pc + u] = (
                a00 * xf[p00 + u] + a01 * xf[p01 + u] + a10 * xf[p10 + u] + a11 * xf[p11 + u]
            )


@njit(inline="always")
def _sample_row(
    xf, colf, col, r, pc_row, n, y, xo, height, width, base_h, base_w, off, msk, use_mask, one, cg
):  # pragma: no cover - compiled
    """Row ``r`` of ``col`` (starting at flat index ``pc_row``): every tap and channel of
    output pixel ``(y, xo)`` of image ``n``, i.e. ``mask * bilinear(x)``."""
    c_all = col.shape[1] // base_h.shape[0]
    k_all = base_h.shape[0]
    dg = off.shape[1] // (2 * k_all)
    cgd = c_all // dg
    zero = one - one
    img = n * height * width
    for d in range(dg):
        c0 = d * cgd
        c1 = c0 + cgd
        g0, g1 = c0 // cg, (c1 - 1) // cg + 1  # conv groups (divisions out of the tap loop)
        for k in range(k_all):
            inside, m, lh, lw, hi, wi, top, bot, lef, rig = _tap(
                base_h, base_w, off, msk, use_mask, one, n, d, k, y, xo, height, width
            )
            if not inside:
                _zero_columns(col, r, c0, c1, g0, g1, cg, k, k_all, zero)
                continue
            a00, a01, a10, a11 = _masked_bilinear(lh, lw, top, bot, lef, rig, one, m)
            i00, i01, i10, i11 = _corner_pixels(img, hi, wi, height, width)
            for g in range(g0, g1):
                cs = max(c0, g * cg)
                ce = min(c1, g * cg + cg)
                base = g * k_all * cg + k * cg - g * cg
                # flat unsigned indices: no wraparound checks, no array views
                p00 = np.uint64(i00 * c_all + cs)
                p01 = np.uint64(i01 * c_all + cs)
                p10 = np.uint64(i10 * c_all + cs)
                p11 = np.uint64(i11 * c_all + cs)
                pc = np.uint64(pc_row + base + cs)
                for t in range(ce - cs):
                    u = np.uint64(t)
                    colf[pc + u] = (
                        a00 * xf[p00 + u]
                        + a01 * xf[p01 + u]
                        + a10 * xf[p10 + u]
                        + a11 * xf[p11 + u]
                    )


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def nchw_to_nhwc(src, dst):  # pragma: no cover - compiled
    """``dst (N, H*W, C) = src (N, C, H*W)`` transposed, in blocks of 32 pixels (each
    block's destination rows are one contiguous, cache-resident run), in parallel over
    images x pixel blocks - on numba's threads, like the kernels that read it."""
    _require_c(src)
    _require_c(dst)
    n_img, c_all, pixels = src.shape
    blocks = (pixels + 31) // 32
    for job in prange(n_img * blocks):
        n = job // blocks
        p0 = (job - n * blocks) * 32
        p1 = min(p0 + 32, pixels)
        for c in range(c_all):
            for p in range(p0, p1):
                dst[n, p, c] = src[n, c, p]


@njit(cache=True, nogil=True, parallel=True, error_model="numpy", fastmath=_FM)
def sample_columns(
    x, height, width, base_h, base_w, off, msk, use_mask, one, col, n0, l0, l1, wo, kw, cg
):  # pragma: no cover - compiled
    """The column rows of a chunk (see the module docstring), in parallel over rows."""
    _require_c(x)
    _require_c(base_h)
    _require_c(base_w)
    _require_c(off)
    _require_c(msk)
    _require_c(col)
    ncol = col.shape[1]
    xf = x.ravel()
    colf = col.ravel()
    nl = l1 - l0
    plain = cg == x.shape[1] and off.shape[1] == 2 * base_h.shape[0]
    for r in prange(col.shape[0]):
        q = r // nl
        pix = l0 + r - q * nl
        y = pix // wo
        xo = pix - y * wo
        if plain:
            _sample_row_plain(
                xf, colf, r * ncol, n0 + q, y, xo, height, width, base_h, base_w, off, msk,
                use_mask, one, x.shape[1],
            )  # fmt: skip
        else:
            _sample_row(
                xf, colf, col, r, r * ncol, n0 + q, y, xo, height, width,
                base_h, base_w, off, msk, use_mask, one, cg,
            )  # fmt: skip


@intrinsic
def _call_gemm(typingctx, fn, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """Call the Fortran ``?gemm_`` at address ``fn``; every argument is an address."""
    sig = types.void(fn, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)

    def codegen(context, builder, signature, args):  # pragma: no cover - compile time
        ptr = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [ptr] * 13)
        callee = builder.inttoptr(args[0], fnty.as_pointer())
        builder.call(callee, [builder.inttoptr(v, ptr) for v in args[1:]])
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _call_set_threads(typingctx, fn, nthreads):
    """``MKL_Set_Num_Threads_Local(nthreads)`` at address ``fn``; returns the old value."""
    sig = types.int32(fn, nthreads)

    def codegen(context, builder, signature, args):  # pragma: no cover - compile time
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(i32, [i32])
        callee = builder.inttoptr(args[0], fnty.as_pointer())
        return builder.call(callee, [builder.trunc(args[1], i32)])

    return sig, codegen


@njit(inline="always")
def _addr(arr):  # pragma: no cover - compiled
    """The data address of ``arr`` as int64 (so offsets added to it stay integers)."""
    return np.int64(arr.ctypes.data)


@njit(inline="always")
def _gemm(fn, ints, scal, ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc):  # pragma: no cover
    """Column-major ``C (m, n) = op(A) @ op(B) + beta * C`` with ``op`` = transpose where
    ``ta`` / ``tb`` is true; ``a``, ``b``, ``c`` are addresses, ``ints`` (int32, 8) and
    ``scal`` (2, of the data dtype) are the caller's scratch for by-reference arguments."""
    ints[0] = 84 if ta else 78  # 'T' / 'N'
    ints[1] = 84 if tb else 78
    ints[2] = m
    ints[3] = n
    ints[4] = k
    ints[5] = lda
    ints[6] = ldb
    ints[7] = ldc
    scal[0] = 1
    scal[1] = beta
    p = _addr(ints)
    s = _addr(scal)
    # (mypy reads an intrinsic's typing-context parameter as an argument)
    _call_gemm(fn, p, p + 4, p + 8, p + 12, p + 16, s, a, p + 20, b, p + 24, s + scal.itemsize,
               c, p + 28)  # type: ignore[call-arg]  # fmt: skip


@njit(cache=True, nogil=True, parallel=True, error_model="numpy", fastmath=_FM)
def forward_fused(
    x,
    height,
    width,
    base_h,
    base_w,
    off,
    msk,
    use_mask,
    one,
    wt,
    bias,
    out,
    channels_last,
    bufs,
    tile,
    wo,
    cg,
    gemm,
    set_threads,
):  # pragma: no cover - compiled
    """The whole forward, one parallel region: each thread takes a contiguous range of
    tiles (``tile`` output pixels of one image), samples a tile's column rows into its own
    buffer (the first ``tile * K*C`` entries of ``bufs[t]``, cache-resident) and multiplies
    it by ``W'`` right away with one single-threaded BLAS GEMM per conv group into output
    rows ``(pixel, O)``: straight into ``out`` (flat) for channels_last, else into the rest
    of ``bufs[t]`` and from there, transposed, into ``out`` as ``(n, O, y, x)``; the bias
    is added on the way."""
    _require_c(x)
    _require_c(base_h)
    _require_c(base_w)
    _require_c(off)
    _require_c(msk)
    _require_c(wt)
    _require_c(bias)
    _require_c(out)
    _require_c(bufs)
    nt = bufs.shape[0]
    n_img = off.shape[0]
    per = off.shape[2] * off.shape[3]
    groups, og, kcg = wt.shape
    ncol = groups * kcg
    c_out = groups * og
    tiles = (per + tile - 1) // tile
    total = n_img * tiles
    xf = x.ravel()
    item = out.itemsize
    plain = groups == 1 and off.shape[1] == 2 * base_h.shape[0]
    for t in prange(nt):
        old: int = _call_set_threads(set_threads, 1)  # type: ignore[call-arg]
        colf = bufs[t, : tile * ncol]
        col = colf.reshape(tile, ncol)
        ot = bufs[t, tile * ncol :]  # (tile, O) output rows, for NCHW output
        ints = np.empty(8, np.int32)
        scal = np.empty(2, out.dtype)
        for ti in range(total * t // nt, total * (t + 1) // nt):
            n = ti // tiles
            l0 = (ti - n * tiles) * tile
            rows = min(tile, per - l0)
            for r in range(rows):
                y = (l0 + r) // wo
                xo = l0 + r - y * wo
                if plain:
                    _sample_row_plain(
                        xf, colf, r * ncol, n, y, xo, height, width, base_h, base_w, off,
                        msk, use_mask, one, ncol // base_h.shape[0],
                    )  # fmt: skip
                else:
                    _sample_row(
                        xf, colf, col, r, r * ncol, n, y, xo, height, width,
                        base_h, base_w, off, msk, use_mask, one, cg,
                    )  # fmt: skip
            # output rows (rows, O): straight into a channels_last output, else into this
            # thread's tile, transposed into the NCHW output below (BLAS is faster this
            # way round than writing (O, rows) blocks with leading dimension H*W)
            rows_at = _addr(out) + (n * per + l0) * c_out * item if channels_last else _addr(ot)
            for g in range(groups):
                a = _addr(colf) + g * kcg * item
                w = _addr(wt) + g * og * kcg * item
                # rows^T (og, rows), ld O  =  W'_g @ col_g^T
                _gemm(gemm, ints, scal, True, False, og, rows, kcg, w, kcg, a, ncol, 0,
                      rows_at + g * og * item, c_out)  # fmt: skip
            if channels_last:
                for r in range(rows):
                    at = (n * per + l0 + r) * c_out
                    for o in range(c_out):
                        out[at + o] += bias[o]
            else:
                for o in range(c_out):
                    at = (n * c_out + o) * per + l0
                    for r in range(rows):
                        out[at + r] = ot[r * c_out + o] + bias[o]
        _call_set_threads(set_threads, old)


@njit(nogil=True, error_model="numpy", fastmath=_FM)  # a real call: too many args to inline
def _backward_row(
    xf,
    x_ld,
    x_c0,
    gxf,
    gx_ld,
    gx_c0,
    colf,
    gcolf,
    pc_row,
    k_stride,
    col_c0,
    r,
    n,
    y,
    xo,
    c_lo,
    c_hi,
    cgd,
    height,
    width,
    base_h,
    base_w,
    off,
    msk,
    use_mask,
    one,
    cg,
    goff,
    gmsk,
    b,
    col,
):  # pragma: no cover - compiled
    """One output pixel ``(y, xo)`` of image ``n``, input channels ``c_lo:c_hi``: from its
    ``gcol`` entries rebuild its ``col`` entries, add the input gradient into ``gx`` and
    the offset / mask gradients into ``goff[b]`` / ``gmsk[b]``.

    Layouts: channel ``c`` of input pixel ``i`` is ``xf[i * x_ld + c - x_c0]`` (likewise
    ``gxf``); tap ``k``, channel ``c`` of conv group ``g`` is element
    ``pc_row + g * (K - 1) * cg + k * k_stride + c - col_c0`` of ``colf`` / ``gcolf``
    (``col``, the 2-D view of ``colf``, zeroes off-image taps in row ``r``). ``cgd`` is
    the number of channels per deformable group."""
    k_all = base_h.shape[0]
    dg = off.shape[1] // (2 * k_all)
    zero = one - one
    img = n * height * width
    for d in range(dg):
        c0 = max(d * cgd, c_lo)
        c1 = min(d * cgd + cgd, c_hi)
        if c0 >= c1:
            continue
        g0, g1 = c0 // cg, (c1 - 1) // cg + 1
        for k in range(k_all):
            inside, m, lh, lw, hi, wi, top, bot, lef, rig = _tap(
                base_h, base_w, off, msk, use_mask, one, n, d, k, y, xo, height, width
            )
            if not inside:
                for g in range(g0, g1):
                    cs = max(c0, g * cg)
                    ce = min(c1, g * cg + cg)
                    at = g * (k_all - 1) * cg + k * k_stride - col_c0
                    col[r, at + cs : at + ce] = zero
                continue
            a00, a01, a10, a11 = _bilinear(lh, lw, top, bot, lef, rig, one)
            i00, i01, i10, i11 = _corner_pixels(img, hi, wi, height, width)
            b00 = a00 * m
            b01 = a01 * m
            b10 = a10 * m
            b11 = a11 * m
            # per-corner sums of gcol * x: the mask and offset gradients are fixed linear
            # combinations of these four, taken once per tap after the channel loop
            s00 = zero
            s01 = zero
            s10 = zero
            s11 = zero
            for g in range(g0, g1):
                cs = max(c0, g * cg)
                ce = min(c1, g * cg + cg)
                nc = ce - cs
                # flat unsigned indices: no wraparound checks, no array views
                p00 = np.uint64(i00 * x_ld + cs - x_c0)
                p01 = np.uint64(i01 * x_ld + cs - x_c0)
                p10 = np.uint64(i10 * x_ld + cs - x_c0)
                p11 = np.uint64(i11 * x_ld + cs - x_c0)
                q00 = np.uint64(i00 * gx_ld + cs - gx_c0)
                q01 = np.uint64(i01 * gx_ld + cs - gx_c0)
                q10 = np.uint64(i10 * gx_ld + cs - gx_c0)
                q11 = np.uint64(i11 * gx_ld + cs - gx_c0)
                pc = np.uint64(pc_row + g * (k_all - 1) * cg + k * k_stride + cs - col_c0)
                for t in range(nc):  # loads only: vectorises without alias checks
                    u = np.uint64(t)
                    gc = gcolf[pc + u]
                    s00 += gc * xf[p00 + u]
                    s01 += gc * xf[p01 + u]
                    s10 += gc * xf[p10 + u]
                    s11 += gc * xf[p11 + u]
                for t in range(nc):
                    u = np.uint64(t)
                    colf[pc + u] = (
                        b00 * xf[p00 + u] + b01 * xf[p01 + u] + b10 * xf[p10 + u]
                        + b11 * xf[p11 + u]
                    )  # fmt: skip
                # one scatter stream per corner: each loop vectorises on its own
                for t in range(nc):
                    u = np.uint64(t)
                    gxf[q00 + u] += gcolf[pc + u] * b00
                for t in range(nc):
                    u = np.uint64(t)
                    gxf[q01 + u] += gcolf[pc + u] * b01
                for t in range(nc):
                    u = np.uint64(t)
                    gxf[q10 + u] += gcolf[pc + u] * b10
                for t in range(nc):
                    u = np.uint64(t)
                    gxf[q11 + u] += gcolf[pc + u] * b11
            # d bilinear / dh and / dw per corner (zero off-image), as in the pure path
            hh = one - lh
            hw = one - lw
            s00 = s00 if (top and lef) else zero
            s01 = s01 if (top and rig) else zero
            s10 = s10 if (bot and lef) else zero
            s11 = s11 if (bot and rig) else zero
            acc_h = hw * (s10 - s00) + lw * (s11 - s01)
            acc_w = hh * (s01 - s00) + lh * (s11 - s10)
            goff[b, n, d * 2 * k_all + 2 * k, y, xo] += acc_h * m
            goff[b, n, d * 2 * k_all + 2 * k + 1, y, xo] += acc_w * m
            if use_mask:
                gmsk[b, n, d * k_all + k, y, xo] += a00 * s00 + a01 * s01 + a10 * s10 + a11 * s11


@njit(cache=True, nogil=True, parallel=True, error_model="numpy", fastmath=_FM)
def backward_columns(
    x,
    height,
    width,
    base_h,
    base_w,
    off,
    msk,
    use_mask,
    one,
    gcol,
    col,
    gx,
    goff,
    gmsk,
    items,
    n0,
    l0,
    l1,
    wo,
    kw,
    cg,
):  # pragma: no cover - compiled
    """From ``gcol = d loss / d col`` of a chunk: rebuild ``col`` (for the weight
    gradient), add the input gradient into ``gx`` and the per-slot partial offset and mask
    gradients into ``goff[b]`` / ``gmsk[b]`` (zero-initialised)."""
    _require_c(x)
    _require_c(base_h)
    _require_c(base_w)
    _require_c(off)
    _require_c(msk)
    _require_c(gcol)
    _require_c(col)
    _require_c(gx)
    _require_c(goff)
    _require_c(gmsk)
    _require_c(items)
    ncol = col.shape[1]
    xf = x.ravel()
    colf = col.ravel()
    gcolf = gcol.ravel()
    gxf = gx.ravel()
    c_all = x.shape[1]
    cgd = c_all // (off.shape[1] // (2 * base_h.shape[0]))
    nl = l1 - l0
    for it in prange(items.shape[0]):
        for r in range(items[it, 0], items[it, 1]):
            q = r // nl
            pix = l0 + r - q * nl
            y = pix // wo
            _backward_row(
                xf, c_all, 0, gxf, c_all, 0, colf, gcolf, r * ncol, cg, 0, r, n0 + q, y,
                pix - y * wo, items[it, 2], items[it, 3], cgd, height, width, base_h, base_w,
                off, msk, use_mask, one, cg, goff, gmsk, items[it, 4], col,
            )  # fmt: skip


@njit(cache=True, nogil=True, parallel=True, error_model="numpy", fastmath=_FM)
def backward_fused(
    x,
    x_c0,
    gx,
    gx_c0,
    height,
    width,
    base_h,
    base_w,
    off,
    msk,
    use_mask,
    one,
    go,
    channels_last,
    w,
    gw,
    goff,
    gmsk,
    edges,
    bufs,
    tile,
    wo,
    gemm,
    set_threads,
):  # pragma: no cover - compiled
    """The backward of one block of input channels (one conv group only), one parallel
    region: thread ``t`` owns channels ``edges[t]:edges[t + 1]`` (so its input-gradient
    scatters and weight-gradient columns are its own). It copies its slice of the weight
    to ``W_t (O, K*cb)`` (taps outer, as its columns), then for every tile of output
    pixels of every image:

    1. ``gcol = grad_out_tile @ W_t`` (BLAS);
    2. :func:`_backward_row` on each row: ``col``, the input gradient into ``gx``, the
       offset / mask gradients into slot ``t`` of ``goff`` / ``gmsk``;
    3. ``gW_t += grad_out_tile^T @ col`` (BLAS);

    and finally writes ``gW_t`` into its columns of the torch-layout weight gradient.

    ``x`` / ``gx`` hold channels ``x_c0 : x_c0 + x.shape[1]`` (likewise ``gx``) as NHWC
    rows; ``go`` is the flat output gradient, rows ``(n, y, x)`` x ``O`` for channels_last
    else ``(n, O, y, x)``; ``w`` / ``gw`` are ``(O, C*K)``; ``bufs[t]`` holds ``W_t``,
    ``gW_t`` and two tiles."""
    _require_c(x)
    _require_c(gx)
    _require_c(base_h)
    _require_c(base_w)
    _require_c(off)
    _require_c(msk)
    _require_c(go)
    _require_c(w)
    _require_c(gw)
    _require_c(goff)
    _require_c(gmsk)
    _require_c(edges)
    _require_c(bufs)
    nt = edges.shape[0] - 1
    n_img = off.shape[0]
    per = off.shape[2] * off.shape[3]
    k_all = base_h.shape[0]
    c_out = w.shape[0]
    c_all = w.shape[1] // k_all
    cgd = c_all // (off.shape[1] // (2 * k_all))
    tiles = (per + tile - 1) // tile
    xf = x.ravel()
    gxf = gx.ravel()
    gof = go.ravel()
    item = go.itemsize
    zero = one - one
    for t in prange(nt):
        c_lo = edges[t]
        cb = edges[t + 1] - c_lo
        if cb <= 0:
            continue
        old: int = _call_set_threads(set_threads, 1)  # type: ignore[call-arg]
        kc = k_all * cb
        buf = bufs[t]
        w_t = buf[: c_out * kc]
        gw_t = buf[c_out * kc : 2 * c_out * kc]
        gcol = buf[2 * c_out * kc : 2 * c_out * kc + tile * kc]
        col = buf[2 * c_out * kc + tile * kc : 2 * c_out * kc + 2 * tile * kc]
        col2 = col.reshape(tile, kc)
        for o in range(c_out):
            for c in range(cb):
                for k in range(k_all):
                    w_t[o * kc + k * cb + c] = w[o, (c_lo + c) * k_all + k]
                    gw_t[o * kc + k * cb + c] = zero
        ints = np.empty(8, np.int32)
        scal = np.empty(2, go.dtype)
        for ti in range(n_img * tiles):
            n = ti // tiles
            l0 = (ti - n * tiles) * tile
            rows = min(tile, per - l0)
            if channels_last:  # grad_out tile^T: (O, rows), ld O
                g_at = _addr(gof) + (n * per + l0) * c_out * item
                g_t, g_ld = False, c_out
            else:  # grad_out tile: (rows, O), ld per
                g_at = _addr(gof) + (n * c_out * per + l0) * item
                g_t, g_ld = True, per
            # 1. gcol^T (K*cb, rows) = W_t^T (K*cb, O) @ grad_out_tile^T (O, rows)
            _gemm(gemm, ints, scal, False, g_t, kc, rows, c_out, _addr(w_t), kc, g_at, g_ld,
                  0, _addr(gcol), kc)  # fmt: skip
            # 2. col, gx, goff, gmsk
            for r in range(rows):
                y = (l0 + r) // wo
                _backward_row(
                    xf, x.shape[1], x_c0, gxf, gx.shape[1], gx_c0, col, gcol, r * kc, cb,
                    c_lo, r, n, y, l0 + r - y * wo, c_lo, c_lo + cb, cgd, height, width,
                    base_h, base_w, off, msk, use_mask, one, c_all, goff, gmsk, t, col2,
                )  # fmt: skip
            # 3. gW_t^T (K*cb, O) += col^T (K*cb, rows) @ grad_out_tile (rows, O)
            _gemm(gemm, ints, scal, False, not g_t, kc, c_out, rows, _addr(col), kc, g_at,
                  g_ld, 1, _addr(gw_t), kc)  # fmt: skip
        for o in range(c_out):
            for c in range(cb):
                for k in range(k_all):
                    gw[o, (c_lo + c) * k_all + k] = gw_t[o * kc + k * cb + c]
        _call_set_threads(set_threads, old)
