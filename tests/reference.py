"""Slow, obviously-correct float64 references for the omniconv ops.

Written independently of omniconv and of ``torch.nn.functional.conv*`` /
``grid_sample``: explicit Python loops over kernel taps (and, for the explicit
offset-gradient check, over every output pixel), with plain index gathers.
Everything that the tests differentiate is built from differentiable torch ops,
so torch autograd gives the reference gradients.

Conventions
-----------
* ``pad4`` is ``(top, bottom, left, right)``.
* conv weight ``(C_out, C_in/groups, kh, kw)``; transposed-conv weight
  ``(C_in, C_out/groups, kh, kw)``.
* deformable offsets ``(N, 2*dg*kh*kw, Ho, Wo)``, channel ``g*2K + 2k`` = dy,
  ``g*2K + 2k + 1`` = dx with ``k = i*kw + j``; mask ``(N, dg*K, Ho, Wo)``, channel
  ``g*K + k``; input channel ``c`` uses deformable group ``c // (C_in/dg)``.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "pad_index",
    "ref_conv2d",
    "ref_conv_transpose2d",
    "ref_deform_conv2d",
    "ref_deform_offset_grad_explicit",
]


def _pair(v):
    if isinstance(v, int):
        return (v, v)
    a, b = v
    return (int(a), int(b))


# --------------------------------------------------------------------------- padding


def pad_index(size: int, before: int, after: int, mode: str) -> tuple[list[int], list[bool]]:
    """For each padded position p in [0, before+size+after) the source index and
    whether it holds a real value (False only for zero padding outside)."""
    src: list[int] = []
    valid: list[bool] = []
    for p in range(before + size + after):
        i = p - before
        if 0 <= i < size:
            src.append(i)
            valid.append(True)
            continue
        if mode == "zeros":
            src.append(0)
            valid.append(False)
        elif mode == "replicate":
            src.append(min(max(i, 0), size - 1))
            valid.append(True)
        elif mode == "circular":
            src.append(i % size)
            valid.append(True)
        elif mode == "reflect":
            # mirror about the first / last element, the edge itself is not repeated
            j = abs(i)
            j = min(j, 2 * (size - 1) - j)
            assert 0 <= j < size, "reflect padding must be smaller than the size"
            src.append(j)
            valid.append(True)
        else:
            raise ValueError(mode)
    return src, valid


def _pad_input(x: torch.Tensor, pad4, mode: str) -> torch.Tensor:
    top, bottom, left, right = pad4
    H, W = x.shape[-2:]
    rows, rvalid = pad_index(H, top, bottom, mode)
    cols, cvalid = pad_index(W, left, right, mode)
    xp = x[:, :, rows, :][:, :, :, cols]  # advanced indexing: a plain gather
    if mode == "zeros":
        m = (
            torch.tensor(rvalid, dtype=x.dtype)[:, None]
            * torch.tensor(cvalid, dtype=x.dtype)[None, :]
        )
        xp = xp * m
    return xp


# --------------------------------------------------------------------------- conv2d


def ref_conv2d(x, w, b, stride, pad4, dilation, groups, padding_mode="zeros"):
    """Cross-correlation, NCHW, loop over taps and groups."""
    sh, sw = _pair(stride)
    dh, dw = _pair(dilation)
    kh, kw = w.shape[-2:]
    N, C = x.shape[:2]
    Co = w.shape[0]
    cpg, opg = C // groups, Co // groups
    xp = _pad_input(x, pad4, padding_mode)
    Hp, Wp = xp.shape[-2:]
    Ho = (Hp - (dh * (kh - 1) + 1)) // sh + 1
    Wo = (Wp - (dw * (kw - 1) + 1)) // sw + 1
    out = torch.zeros(N, Co, Ho, Wo, dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            rows = [y * sh + i * dh for y in range(Ho)]
            cols = [q * sw + j * dw for q in range(Wo)]
            patch = xp[:, :, rows, :][:, :, :, cols]  # (N, C, Ho, Wo)
            parts = []
            for g in range(groups):
                pg = patch[:, g * cpg : (g + 1) * cpg]
                wg = w[g * opg : (g + 1) * opg, :, i, j]  # (opg, cpg)
                parts.append((pg[:, None] * wg[None, :, :, None, None]).sum(2))
            out = out + torch.cat(parts, 1)
    if b is not None:
        out = out + b[None, :, None, None]
    return out


# --------------------------------------------------------------------------- conv_transpose2d


def ref_conv_transpose2d(x, w, b, stride, padding, output_padding, groups, dilation):
    """Scatter form: input pixel (h, w) adds w[c, o, i, j] * x[c, h, w] to output
    position (h*s - top + i*d, w*s - left + j*d); positions outside the output are
    dropped. ``padding`` is an int, a pair (symmetric) or ``(top, bottom, left, right)``:
    the output has ``(H-1)*s - top - bottom + d*(k-1) + 1 + output_padding`` rows."""
    sh, sw = _pair(stride)
    if not isinstance(padding, int) and len(padding) == 4:
        pt, pb, pl, pr = (int(p) for p in padding)
    else:
        pt, pl = _pair(padding)
        pb, pr = pt, pl
    oph, opw = _pair(output_padding)
    dh, dw = _pair(dilation)
    N, C, H, W = x.shape
    kh, kw = w.shape[-2:]
    opg = w.shape[1]
    Co = opg * groups
    cpg = C // groups
    Ho = (H - 1) * sh - pt - pb + dh * (kh - 1) + 1 + oph
    Wo = (W - 1) * sw - pl - pr + dw * (kw - 1) + 1 + opw
    out = torch.zeros(N, Co, Ho, Wo, dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            parts = []
            for g in range(groups):
                xg = x[:, g * cpg : (g + 1) * cpg]  # (N, cpg, H, W)
                wg = w[g * cpg : (g + 1) * cpg, :, i, j]  # (cpg, opg)
                parts.append((xg[:, :, None] * wg[None, :, :, None, None]).sum(1))
            contrib = torch.cat(parts, 1)  # (N, Co, H, W), contribution of every input pixel
            for h in range(H):
                oy = h * sh - pt + i * dh
                if not 0 <= oy < Ho:
                    continue
                for q in range(W):
                    ox = q * sw - pl + j * dw
                    if not 0 <= ox < Wo:
                        continue
                    out[:, :, oy, ox] = out[:, :, oy, ox] + contrib[:, :, h, q]
    if b is not None:
        out = out + b[None, :, None, None]
    return out


# --------------------------------------------------------------------------- deform_conv2d


def _gather_hw(x, yy, xx):
    """x (N, C, H, W); yy, xx integer tensors (N, C, Ho, Wo) inside the image."""
    N, C, H, W = x.shape
    idx = (yy * W + xx).reshape(N, C, -1)
    return torch.gather(x.reshape(N, C, H * W), 2, idx).reshape(yy.shape)


def _bilinear(x, h, w, m):
    """Paddle / torchvision bilinear sample at float positions h, w of shape (N, C, Ho, Wo),
    times the mask ``m`` (same shape): ``sum over the 4 corners of (weight * m) * pixel``.

    The NaN / Inf rule of docs/numerics.md, written out:

    * a point reads only if -1 < h < H and -1 < w < W (false for NaN and +-inf), and then
      only its corners on the image; a corner that is not read has pixel 0 (``where``, so
      neither its value nor its gradient ever touches the image), a point that reads
      nothing is parked at (0, 0) so that its weights stay finite;
    * a read corner's NaN / Inf reaches the tap even at weight 0 (IEEE multiply);
    * a NaN position reads nothing, and the tap and its derivatives by h, w and m are NaN.
    """
    H, W = x.shape[-2:]
    inside = (h > -1) & (h < H) & (w > -1) & (w < W)
    hs = torch.where(inside, h, 0.0)
    ws = torch.where(inside, w, 0.0)
    h_low = torch.floor(hs.detach())
    w_low = torch.floor(ws.detach())
    lh = hs - h_low
    lw = ws - w_low
    val = torch.zeros_like(h)
    for dy, wy in ((0, 1 - lh), (1, lh)):
        for dx, wx in ((0, 1 - lw), (1, lw)):
            yy = (h_low + dy).long()
            xx = (w_low + dx).long()
            read = inside & (yy >= 0) & (yy <= H - 1) & (xx >= 0) & (xx <= W - 1)
            v = torch.where(read, _gather_hw(x, yy.clamp(0, H - 1), xx.clamp(0, W - 1)), 0.0)
            val = val + (wy * wx * m) * v
    nan_pos = torch.isnan(h) | torch.isnan(w)
    p = torch.where(nan_pos, h + w, 0.0)  # NaN there (value and derivative), else 0
    return val + p * p * m


def ref_deform_conv2d(
    x, offset, w, b=None, stride=1, padding=0, dilation=1, mask=None, column=None
):
    """``column``: applied to each tap's sampled columns before the products (e.g. a
    rounding to bfloat16), else none."""
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    N, C, H, W = x.shape
    Co, cpg, kh, kw = w.shape
    groups = C // cpg
    opg = Co // groups
    K = kh * kw
    dg = offset.shape[1] // (2 * K)
    Ho = (H + 2 * ph - (dh * (kh - 1) + 1)) // sh + 1
    Wo = (W + 2 * pw - (dw * (kw - 1) + 1)) // sw + 1
    assert offset.shape == (N, 2 * dg * K, Ho, Wo), offset.shape
    if mask is not None:
        assert mask.shape == (N, dg * K, Ho, Wo), mask.shape
    ch_group = [c // (C // dg) for c in range(C)]  # deformable group of each input channel
    base_y = torch.arange(Ho, dtype=x.dtype)[:, None] * sh - ph
    base_x = torch.arange(Wo, dtype=x.dtype)[None, :] * sw - pw
    out = torch.zeros(N, Co, Ho, Wo, dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            k = i * kw + j
            dy = offset[:, [g * 2 * K + 2 * k for g in ch_group]]  # (N, C, Ho, Wo)
            dx = offset[:, [g * 2 * K + 2 * k + 1 for g in ch_group]]
            h = base_y + i * dh + dy
            ww = base_x + j * dw + dx
            m = torch.ones_like(h) if mask is None else mask[:, [g * K + k for g in ch_group]]
            col = _bilinear(x, h, ww, m)  # (N, C, Ho, Wo)
            if column is not None:
                col = column(col)
            parts = []
            for g in range(groups):
                cg = col[:, g * cpg : (g + 1) * cpg]
                wg = w[g * opg : (g + 1) * opg, :, i, j]
                parts.append((cg[:, None] * wg[None, :, :, None, None]).sum(2))
            out = out + torch.cat(parts, 1)
    if b is not None:
        out = out + b[None, :, None, None]
    return out


def ref_deform_offset_grad_explicit(
    x, offset, w, grad_out, stride=1, padding=0, dilation=1, mask=None
):
    """d(sum(out * grad_out)) / d offset, written out per pixel from the
    torchvision / Paddle coordinate-weight formula (plain Python floats)::

        dv/dh = (1-lw) * (v(hl+1, wl) - v(hl, wl)) + lw * (v(hl+1, wl+1) - v(hl, wl+1))
        dv/dw = (1-lh) * (v(hl, wl+1) - v(hl, wl)) + lh * (v(hl+1, wl+1) - v(hl+1, wl))

    with hl = floor(h), corners outside the image = 0 and the whole gradient 0
    when the point is outside (-1, H) x (-1, W) (including exactly -1 and H).
    Keep shapes tiny: this is O(N*Ho*Wo*K*C*C_out) Python operations.
    """
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    X = x.detach().double().tolist()
    OF = offset.detach().double().tolist()
    Wt = w.detach().double().tolist()
    G = grad_out.detach().double().tolist()
    M = None if mask is None else mask.detach().double().tolist()
    N, C, H, Wd = x.shape
    Co, cpg, kh, kw = w.shape
    groups = C // cpg
    opg = Co // groups
    K = kh * kw
    dg = offset.shape[1] // (2 * K)
    Ho, Wo = offset.shape[-2:]
    res = [[[[0.0] * Wo for _ in range(Ho)] for _ in range(2 * dg * K)] for _ in range(N)]

    def v(n, c, yy, xx):
        if 0 <= yy <= H - 1 and 0 <= xx <= Wd - 1:
            return X[n][c][yy][xx]
        return 0.0

    for n in range(N):
        for y in range(Ho):
            for q in range(Wo):
                for i in range(kh):
                    for j in range(kw):
                        k = i * kw + j
                        for c in range(C):
                            g = c // (C // dg)
                            hpos = y * sh - ph + i * dh + OF[n][g * 2 * K + 2 * k][y][q]
                            wpos = q * sw - pw + j * dw + OF[n][g * 2 * K + 2 * k + 1][y][q]
                            if not (-1 < hpos < H and -1 < wpos < Wd):
                                continue
                            hl, wl = math.floor(hpos), math.floor(wpos)
                            lh, lw = hpos - hl, wpos - wl
                            d_h = (1 - lw) * (v(n, c, hl + 1, wl) - v(n, c, hl, wl)) + lw * (
                                v(n, c, hl + 1, wl + 1) - v(n, c, hl, wl + 1)
                            )
                            d_w = (1 - lh) * (v(n, c, hl, wl + 1) - v(n, c, hl, wl)) + lh * (
                                v(n, c, hl + 1, wl + 1) - v(n, c, hl + 1, wl)
                            )
                            # upstream: sum over the output channels of c's conv group
                            cg = c // cpg
                            up = sum(
                                G[n][o][y][q] * Wt[o][c - cg * cpg][i][j]
                                for o in range(cg * opg, (cg + 1) * opg)
                            )
                            m = 1.0 if M is None else M[n][g * K + k][y][q]
                            res[n][g * 2 * K + 2 * k][y][q] += up * m * d_h
                            res[n][g * 2 * K + 2 * k + 1][y][q] += up * m * d_w
    return torch.tensor(res, dtype=torch.float64)
