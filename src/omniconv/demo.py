"""``omniconv demo``: every native layer on a small synthetic image, checked against a
float64 reference computed independently (numpy loops for the deformable layers,
torch's native ops in float64 for the dense ones)."""

from __future__ import annotations

import time
import typing
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from . import nn as onn

__all__ = ["Row", "run_demo", "sample_image"]


def sample_image(size: int = 32) -> np.ndarray:
    """A deterministic 3-channel test pattern (rings, a gradient, a checkerboard)."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64) / size
    rings = np.sin(12 * np.hypot(x - 0.5, y - 0.5))
    grad = x - y
    checker = ((np.floor(x * 8) + np.floor(y * 8)) % 2) * 2 - 1
    return np.stack([rings, grad, checker])[None]  # (1, 3, H, W)


def _bilinear(img: np.ndarray, h: float, w: float) -> float:
    """Zero outside (-1, H) x (-1, W); off-image corners count zero."""
    height, width = img.shape
    if not (-1 < h < height and -1 < w < width):
        return 0.0
    h0, w0 = int(np.floor(h)), int(np.floor(w))
    lh, lw = h - h0, w - w0
    val = 0.0
    for dh, dw, wt in ((0, 0, (1 - lh) * (1 - lw)), (0, 1, (1 - lh) * lw),
                       (1, 0, lh * (1 - lw)), (1, 1, lh * lw)):  # fmt: skip
        hh, ww = h0 + dh, w0 + dw
        if 0 <= hh < height and 0 <= ww < width:
            val += wt * img[hh, ww]
    return val


def reference_deform_conv2d(
    x: np.ndarray,
    offset: np.ndarray,
    mask: np.ndarray | None,
    weight: np.ndarray,
    bias: np.ndarray | None,
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
) -> np.ndarray:
    """Point-by-point loops in float64 (slow; for small inputs)."""
    n, c, _, _ = x.shape
    o, cg, kh, kw = weight.shape
    groups = c // cg
    ho, wo = offset.shape[2:]
    k = kh * kw
    dg = offset.shape[1] // (2 * k)
    out = np.zeros((n, o, ho, wo))
    col = np.zeros((c, k))
    for b in range(n):
        for y in range(ho):
            for xx in range(wo):
                for ch in range(c):
                    g = ch // (c // dg)
                    for i in range(kh):
                        for j in range(kw):
                            t = i * kw + j
                            h = y * stride[0] - padding[0] + i * dilation[0]
                            w = xx * stride[1] - padding[1] + j * dilation[1]
                            h += offset[b, g * 2 * k + 2 * t, y, xx]
                            w += offset[b, g * 2 * k + 2 * t + 1, y, xx]
                            m = 1.0 if mask is None else mask[b, g * k + t, y, xx]
                            col[ch, t] = m * _bilinear(x[b, ch], h, w)
                for oc in range(o):
                    gi = oc // (o // groups)
                    out[b, oc, y, xx] = np.sum(
                        weight[oc].reshape(cg, k) * col[gi * cg : (gi + 1) * cg]
                    )
                    if bias is not None:
                        out[b, oc, y, xx] += bias[oc]
    return out


@dataclass
class Row:
    layer: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    max_error: float
    ms: float


def _timed(fn: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, float]:
    fn()  # warm-up
    t0 = time.perf_counter()
    with torch.no_grad():
        out = fn()
    return out, (time.perf_counter() - t0) * 1e3


def _f64(t: torch.Tensor | None) -> torch.Tensor:
    assert t is not None
    return t.detach().to(torch.float64)


def run_demo(seed: int = 0) -> list[Row]:
    """Run every native layer in float32 and compare with its float64 reference."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    img = torch.from_numpy(sample_image()).float()
    f = torch.nn.functional
    rows: list[Row] = []

    def add(name: str, inp: torch.Tensor, out: torch.Tensor, ref: torch.Tensor, ms: float) -> None:
        err = float((out.double() - ref).abs().max()) if out.numel() else 0.0
        rows.append(Row(name, tuple(inp.shape), tuple(out.shape), err, ms))

    conv = onn.Conv2d(
        3, 8, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(2, 1), activation="relu"
    )
    out, ms = _timed(lambda: conv(img))
    ref = f.conv2d(_f64(img), _f64(conv.weight), _f64(conv.bias), (2, 1), (1, 0), (2, 1)).relu()
    add("Conv2d (relu)", img, out, ref, ms)

    nhwc = onn.Conv2d(3, 6, 3, padding="same", layout="NHWC", groups=3)
    x_nhwc = img.permute(0, 2, 3, 1).contiguous()
    out, ms = _timed(lambda: nhwc(x_nhwc))
    pad = f.pad(_f64(img), (1, 1, 1, 1))
    ref = f.conv2d(pad, _f64(nhwc.weight), _f64(nhwc.bias), groups=3).permute(0, 2, 3, 1)
    add("Conv2d NHWC same", x_nhwc, out, ref, ms)

    tconv = onn.ConvTranspose2d(3, 4, 3, stride=2, padding=1)
    out, ms = _timed(lambda: tconv(img, output_size=(64, 64)))
    ref = f.conv_transpose2d(_f64(img), _f64(tconv.weight), _f64(tconv.bias), 2, 1, 1)
    add("ConvTranspose2d", img, out, ref, ms)

    small = img[:, :, :12, :12].contiguous()
    dcn = onn.DeformConv2d(3, 4, 3, padding=1, deformable_groups=3)
    offset = torch.from_numpy(rng.normal(0, 2, (1, 54, 12, 12))).float()
    mask = torch.from_numpy(rng.uniform(0, 1, (1, 27, 12, 12))).float()
    out, ms = _timed(lambda: dcn(small, offset, mask))
    ref_np = reference_deform_conv2d(
        small.double().numpy(), offset.double().numpy(), mask.double().numpy(),
        dcn.weight.detach().double().numpy(), dcn.bias.detach().double().numpy(),  # type: ignore[union-attr]
        (1, 1), (1, 1), (1, 1),
    )  # fmt: skip
    add("DeformConv2d (v2)", small, out, torch.from_numpy(ref_np), ms)

    pack = onn.DeformConv2dPack(3, 4, 3, padding=1)
    with torch.no_grad():
        pack.conv_offset.weight.normal_(0, 0.3)
    out, ms = _timed(lambda: pack(small))
    pred = _f64(pack.conv_offset(small))
    ref_np = reference_deform_conv2d(
        small.double().numpy(), pred[:, :18].numpy(), (2 * torch.sigmoid(pred[:, 18:])).numpy(),
        pack.weight.detach().double().numpy(), pack.bias.detach().double().numpy(),  # type: ignore[union-attr]
        (1, 1), (1, 1), (1, 1),
    )  # fmt: skip
    add("DeformConv2dPack", small, out, torch.from_numpy(ref_np), ms)

    group = onn.ImgConvGroup(3, [4, 4], pool_size=2, conv_act="relu",
                             conv_with_batchnorm=[False, True], pool_stride=2).eval()  # fmt: skip
    out, ms = _timed(lambda: group(img))
    c0, c1 = typing.cast(onn.Conv2d, group.conv0), typing.cast(onn.Conv2d, group.conv1)
    bn = typing.cast(torch.nn.BatchNorm2d, group.bn1)
    h = f.conv2d(_f64(img), _f64(c0.weight), _f64(c0.bias), padding=1).relu()
    h = f.conv2d(h, _f64(c1.weight), _f64(c1.bias), padding=1)
    h = (h - _f64(bn.running_mean)[:, None, None]) / torch.sqrt(
        _f64(bn.running_var)[:, None, None] + bn.eps
    ) * _f64(bn.weight)[:, None, None] + _f64(bn.bias)[:, None, None]
    ref = f.max_pool2d(h.relu(), 2, 2)
    add("ImgConvGroup (eval)", img, out, ref, ms)
    return rows


def format_table(rows: list[Row]) -> str:
    head = f"{'layer':<22} {'input':<16} {'output':<16} {'max |err| vs f64 ref':>20} {'ms':>8}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.layer:<22} {'x'.join(map(str, r.input_shape)):<16} "
            f"{'x'.join(map(str, r.output_shape)):<16} {r.max_error:>20.2e} {r.ms:>8.2f}"
        )
    return "\n".join(lines)
