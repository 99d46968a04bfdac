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

The math is the floor convention of :mod:`omniconv.functional.deform_conv2d`. Kernels do
no allocation (buffers come from torch, so memory profiling sees them); the backward
kernel runs one thread per work item ``(row from, row to, channel from, channel to, slot)``:
items either own whole images (disjoint input-gradient regions) or a channel block (disjoint
channels), so scatters into ``gx`` never race; offset/mask partial sums over channels go to
the item's slot ``goff[slot]`` / ``gmsk[slot]`` (items sharing a slot own distinct images).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_FM = {"reassoc", "contract"}  # let LLVM vectorise the channel reductions


@njit(inline="always")
def _point(base_h, base_w, off, msk, use_mask, one, n, d, k, y, xo):  # pragma: no cover
    """Sample position ``(h, w)`` and mask of tap ``k``, deformable group ``d``, at output
    pixel ``(y, xo)`` of image ``n``."""
    k_all = base_h.shape[0]
    h = base_h[k, y] + off[n, d * 2 * k_all + 2 * k, y, xo]
    w = base_w[k, xo] + off[n, d * 2 * k_all + 2 * k + 1, y, xo]
    m = msk[n, d * k_all + k, y, xo] if use_mask else one
    return h, w, m


@njit(inline="always")
def _zero_columns(col, r, c0, c1, cg, k, k_all, zero):  # pragma: no cover - compiled
    """Row ``r``'s columns of tap ``k`` for input channels ``c0:c1`` (a point off the
    image), across the conv groups those channels belong to."""
    for g in range(c0 // cg, (c1 - 1) // cg + 1):
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


@njit(cache=True, nogil=True, parallel=True, error_model="numpy", fastmath=_FM)
def sample_columns(
    x, height, width, base_h, base_w, off, msk, use_mask, one, col, n0, l0, l1, wo, kw, cg
):  # pragma: no cover - compiled
    rows = col.shape[0]
    ncol = col.shape[1]
    xf = x.ravel()
    colf = col.ravel()
    c_all = x.shape[1]
    k_all = base_h.shape[0]
    dg = off.shape[1] // (2 * k_all)
    cgd = c_all // dg
    zero = one - one
    nl = l1 - l0
    for r in prange(rows):
        q = r // nl
        n = n0 + q
        pix = l0 + r - q * nl
        y = pix // wo
        xo = pix - y * wo
        img = n * height * width
        for k in range(k_all):
            for d in range(dg):
                c0 = d * cgd
                c1 = c0 + cgd
                h, w, m = _point(base_h, base_w, off, msk, use_mask, one, n, d, k, y, xo)
                if not (h > -1 and h < height and w > -1 and w < width):
                    _zero_columns(col, r, c0, c1, cg, k, k_all, zero)
                    continue
                lh, lw, hi, wi, top, bot, lef, rig = _corner(h, w, height, width)
                hh = one - lh
                hw = one - lw
                a00 = hh * hw * m if (top and lef) else zero
                a01 = hh * lw * m if (top and rig) else zero
                a10 = lh * hw * m if (bot and lef) else zero
                a11 = lh * lw * m if (bot and rig) else zero
                ht = img + max(hi, 0) * width
                hb = img + min(hi + 1, height - 1) * width
                wl = max(wi, 0)
                wr = min(wi + 1, width - 1)
                i00 = ht + wl
                i01 = ht + wr
                i10 = hb + wl
                i11 = hb + wr
                for g in range(c0 // cg, (c1 - 1) // cg + 1):
                    cs = max(c0, g * cg)
                    ce = min(c1, g * cg + cg)
                    base = g * k_all * cg + k * cg - g * cg
                    # flat unsigned indices: no wraparound checks, no array views
                    p00 = np.uint64(i00 * c_all + cs)
                    p01 = np.uint64(i01 * c_all + cs)
                    p10 = np.uint64(i10 * c_all + cs)
                    p11 = np.uint64(i11 * c_all + cs)
                    pc = np.uint64(r * ncol + base + cs)
                    for t in range(ce - cs):
                        u = np.uint64(t)
                        colf[pc + u] = (
                            a00 * xf[p00 + u]
                            + a01 * xf[p01 + u]
                            + a10 * xf[p10 + u]
                            + a11 * xf[p11 + u]
                        )


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
    gradient), add the input gradient into ``gx`` and write the per-block partial offset
    and mask gradients into ``goff[b]`` / ``gmsk[b]`` (zero-initialised)."""
    ncol = col.shape[1]
    xf = x.ravel()
    colf = col.ravel()
    gcolf = gcol.ravel()
    gxf = gx.ravel()
    c_all = x.shape[1]
    k_all = base_h.shape[0]
    dg = off.shape[1] // (2 * k_all)
    cgd = c_all // dg
    zero = one - one
    nl = l1 - l0
    for it in prange(items.shape[0]):
        ra = items[it, 0]
        rb = items[it, 1]
        cb0 = items[it, 2]
        cb1 = items[it, 3]
        b = items[it, 4]
        for r in range(ra, rb):
            q = r // nl
            n = n0 + q
            pix = l0 + r - q * nl
            y = pix // wo
            xo = pix - y * wo
            img = n * height * width
            for k in range(k_all):
                for d in range(dg):
                    c0 = max(d * cgd, cb0)
                    c1 = min(d * cgd + cgd, cb1)
                    if c0 >= c1:
                        continue
                    h, w, m = _point(base_h, base_w, off, msk, use_mask, one, n, d, k, y, xo)
                    if not (h > -1 and h < height and w > -1 and w < width):
                        _zero_columns(col, r, c0, c1, cg, k, k_all, zero)
                        continue
                    lh, lw, hi, wi, top, bot, lef, rig = _corner(h, w, height, width)
                    hh = one - lh
                    hw = one - lw
                    # bilinear weights and their derivatives in h and w, zero off-image
                    a00 = hh * hw if (top and lef) else zero
                    a01 = hh * lw if (top and rig) else zero
                    a10 = lh * hw if (bot and lef) else zero
                    a11 = lh * lw if (bot and rig) else zero
                    e00 = -hw if (top and lef) else zero
                    e01 = -lw if (top and rig) else zero
                    e10 = hw if (bot and lef) else zero
                    e11 = lw if (bot and rig) else zero
                    f00 = -hh if (top and lef) else zero
                    f01 = hh if (top and rig) else zero
                    f10 = -lh if (bot and lef) else zero
                    f11 = lh if (bot and rig) else zero
                    ht = img + max(hi, 0) * width
                    hb = img + min(hi + 1, height - 1) * width
                    wl = max(wi, 0)
                    wr = min(wi + 1, width - 1)
                    i00 = ht + wl
                    i01 = ht + wr
                    i10 = hb + wl
                    i11 = hb + wr
                    b00 = a00 * m
                    b01 = a01 * m
                    b10 = a10 * m
                    b11 = a11 * m
                    acc_h = zero
                    acc_w = zero
                    acc_m = zero
                    for g in range(c0 // cg, (c1 - 1) // cg + 1):
                        cs = max(c0, g * cg)
                        ce = min(c1, g * cg + cg)
                        base = g * k_all * cg + k * cg - g * cg
                        nc = ce - cs
                        # flat unsigned indices: no wraparound checks, no array views
                        p00 = np.uint64(i00 * c_all + cs)
                        p01 = np.uint64(i01 * c_all + cs)
                        p10 = np.uint64(i10 * c_all + cs)
                        p11 = np.uint64(i11 * c_all + cs)
                        pc = np.uint64(r * ncol + base + cs)
                        for t in range(nc):
                            u = np.uint64(t)
                            gc = gcolf[pc + u]
                            v00 = xf[p00 + u]
                            v01 = xf[p01 + u]
                            v10 = xf[p10 + u]
                            v11 = xf[p11 + u]
                            val = a00 * v00 + a01 * v01 + a10 * v10 + a11 * v11
                            colf[pc + u] = m * val
                            acc_m += gc * val
                            acc_h += gc * (e00 * v00 + e01 * v01 + e10 * v10 + e11 * v11)
                            acc_w += gc * (f00 * v00 + f01 * v01 + f10 * v10 + f11 * v11)
                        # one scatter stream per corner: each loop vectorises on its own
                        for t in range(nc):
                            u = np.uint64(t)
                            gxf[p00 + u] += gcolf[pc + u] * b00
                        for t in range(nc):
                            u = np.uint64(t)
                            gxf[p01 + u] += gcolf[pc + u] * b01
                        for t in range(nc):
                            u = np.uint64(t)
                            gxf[p10 + u] += gcolf[pc + u] * b10
                        for t in range(nc):
                            u = np.uint64(t)
                            gxf[p11 + u] += gcolf[pc + u] * b11
                    goff[b, n, d * 2 * k_all + 2 * k, y, xo] = acc_h * m
                    goff[b, n, d * 2 * k_all + 2 * k + 1, y, xo] = acc_w * m
                    if use_mask:
                        gmsk[b, n, d * k_all + k, y, xo] = acc_m
