"""omniconv demo: each layer of omniconv, and one framework front-end example (MegEngine's
Conv2d docstring example), run in float32 on a small test image and checked against a
float64 reference computed independently: numpy loops for the deformable layers, torch's
own ops in float64 for the dense ones.

A layer matches when its largest absolute error is at most 1e-4 x max(1, largest absolute
reference value). The command prints each layer as it finishes, what ran, its error and
its tolerance, and exits with status 0 when every layer matches, 1 otherwise. On its first
run on a machine numba compiles the deformable-conv kernels (about 10 s; it says so when
it does); later runs load them from numba's cache.

With --plot [PATH] it then trains a small deformable conv for a few seconds and draws where
it samples (a PNG, omniconv-sampling.png by default). The task: reproduce a fixed filter's
output on the test pattern seen 1.5x smaller and shaded from left to right, so the offsets
must learn to spread the kernel 1.5x and the mask to follow the shading. It prints how
close the learned sample points are to the zoom's and where it wrote the picture. The
picture needs matplotlib (pip install 'omniconv[viz]'); without it the demo says so and
its exit status is the checks' alone.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO, cast

import numpy as np
import torch
import torch.nn.functional as F

from . import backends
from . import nn as onn

__all__ = [
    "EXAMPLES",
    "PLOT_PATH",
    "RTOL",
    "Check",
    "Example",
    "SamplingDemo",
    "checks",
    "main",
    "sample_image",
    "train_sampling_demo",
]

#: a layer's tolerance is RTOL x max(1, max |reference|)
RTOL = 1e-4


def sample_image(size: int = 32) -> np.ndarray:
    """A deterministic 3-channel test pattern (rings, a gradient, a checkerboard), float64
    ``(1, 3, size, size)``."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64) / size
    rings = np.sin(12 * np.hypot(x - 0.5, y - 0.5))
    grad = x - y
    checker = ((np.floor(x * 8) + np.floor(y * 8)) % 2) * 2 - 1
    return np.stack([rings, grad, checker])[None]


# --------------------------------------------------------------------------- references


def _bilinear(img: np.ndarray, h: float, w: float) -> float:
    """Zero outside (-1, H) x (-1, W); off-image corners count zero."""
    height, width = img.shape
    if not (-1 < h < height and -1 < w < width):
        return 0.0
    h0, w0 = int(np.floor(h)), int(np.floor(w))
    lh, lw = h - h0, w - w0
    val = 0.0
    for hh, wh in ((h0, 1 - lh), (h0 + 1, lh)):
        for ww, ww_weight in ((w0, 1 - lw), (w0 + 1, lw)):
            if 0 <= hh < height and 0 <= ww < width:
                val += wh * ww_weight * img[hh, ww]
    return val


def reference_deform_conv2d(
    x: np.ndarray,
    offset: np.ndarray,
    mask: np.ndarray | None,
    weight: np.ndarray,
    bias: np.ndarray | None,
    padding: int,
) -> np.ndarray:
    """Deformable conv (stride 1, dilation 1), point by point in float64: every tap of every
    output pixel sampled bilinearly, then contracted with the weight group by group (slow;
    for small inputs)."""
    taps = [(i, j) for i in range(weight.shape[2]) for j in range(weight.shape[3])]
    channels = x.shape[1]
    per_dg = channels * 2 * len(taps) // offset.shape[1]  # input channels per offset group
    cols = np.zeros((x.shape[0], channels, len(taps), *offset.shape[2:]))
    for b, ch, t, y, xx in np.ndindex(cols.shape):
        tap = ch // per_dg * len(taps) + t  # the tap's index in this offset group's channels
        h = y - padding + taps[t][0] + offset[b, 2 * tap, y, xx]
        w = xx - padding + taps[t][1] + offset[b, 2 * tap + 1, y, xx]
        m = 1.0 if mask is None else mask[b, tap, y, xx]
        cols[b, ch, t, y, xx] = m * _bilinear(x[b, ch], h, w)
    groups = channels // weight.shape[1]
    out = np.concatenate(
        [
            np.einsum("oct,nctyx->noyx", wg.reshape(*wg.shape[:2], -1), cg)
            for wg, cg in zip(np.split(weight, groups), np.split(cols, groups, 1), strict=True)
        ],
        axis=1,
    )
    return out if bias is None else out + bias[:, None, None]


def _f64(t: Any) -> torch.Tensor:
    return torch.as_tensor(t).detach().to(torch.float64)


def _np64(t: Any) -> np.ndarray:
    return _f64(t).numpy()


def _call(prefix: str, cls: type, *args: Any, **kwargs: Any) -> tuple[Any, str]:
    """``cls(*args, **kwargs)`` and how it reads as code."""
    text = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())])
    return cls(*args, **kwargs), f"{prefix}{cls.__name__}({text})"


# --------------------------------------------------------------------------- examples


@dataclass
class Example:
    """What one example ran (``call``, as code), on what, and the two results to compare."""

    layer: str
    call: str
    input: Any
    output: Any
    reference: Any


def _conv2d(img: torch.Tensor) -> Example:
    args = dict(stride=(2, 1), padding=(1, 0), dilation=(2, 1), activation="relu")
    conv, call = _call("nn.", onn.Conv2d, 3, 8, (3, 2), **args)
    ref = F.conv2d(_f64(img), _f64(conv.weight), _f64(conv.bias), (2, 1), (1, 0), (2, 1))
    return Example("Conv2d (relu)", f"{call}(image)", img, conv(img), ref.relu())


def _conv2d_nhwc(img: torch.Tensor) -> Example:
    conv, call = _call("nn.", onn.Conv2d, 3, 6, 3, padding="same", layout="NHWC", groups=3)
    x = img.permute(0, 2, 3, 1).contiguous()
    ref = F.conv2d(_f64(img), _f64(conv.weight), _f64(conv.bias), padding=1, groups=3)
    return Example(
        "Conv2d NHWC 'same'", f"{call}(image as NHWC)", x, conv(x), ref.permute(0, 2, 3, 1)
    )


def _conv_transpose2d(img: torch.Tensor) -> Example:
    conv, call = _call("nn.", onn.ConvTranspose2d, 3, 4, 3, stride=2, padding=1)
    out = conv(img, output_size=(64, 64))
    ref = F.conv_transpose2d(_f64(img), _f64(conv.weight), _f64(conv.bias), 2, 1, 1)
    return Example("ConvTranspose2d", f"{call}(image, output_size=(64, 64))", img, out, ref)


def _deform_conv2d(img: torch.Tensor) -> Example:
    dcn, call = _call("nn.", onn.DeformConv2d, 3, 4, 3, padding=1, deformable_groups=3)
    x = img[:, :, :12, :12]
    offset = 2 * torch.randn(1, 54, 12, 12)
    mask = torch.rand(1, 27, 12, 12)
    ref = reference_deform_conv2d(
        _np64(x), _np64(offset), _np64(mask), _np64(dcn.weight), _np64(dcn.bias), 1
    )
    call += "(image[:, :, :12, :12], offset ~ N(0, 2²), mask ~ U(0, 1))"
    return Example("DeformConv2d (v2)", call, x, dcn(x, offset, mask), ref)


def _deform_conv2d_pack(img: torch.Tensor) -> Example:
    pack, call = _call("nn.", onn.DeformConv2dPack, 3, 4, 3, padding=1)
    x = img[:, :, :12, :12]
    with torch.no_grad():
        pack.conv_offset.weight.normal_(0, 0.3)
    pred = _np64(pack.conv_offset(x))
    mask = 2 / (1 + np.exp(-pred[:, 18:]))
    ref = reference_deform_conv2d(
        _np64(x), pred[:, :18], mask, _np64(pack.weight), _np64(pack.bias), 1
    )
    call += "(image[:, :, :12, :12]), conv_offset weights ~ N(0, 0.3²)"
    return Example("DeformConv2dPack", call, x, pack(x), ref)


def _img_conv_group(img: torch.Tensor) -> Example:
    group, call = _call(
        "nn.",
        onn.ImgConvGroup,
        3,
        [4, 4],
        pool_size=2,
        conv_act="relu",
        conv_with_batchnorm=[False, True],
        pool_stride=2,
    )
    group.eval()
    c0, c1 = cast(onn.Conv2d, group.conv0), cast(onn.Conv2d, group.conv1)
    bn = cast(torch.nn.BatchNorm2d, group.bn1)
    cast(torch.Tensor, bn.running_mean).uniform_(-0.5, 0.5)
    cast(torch.Tensor, bn.running_var).uniform_(0.5, 2.0)
    h = F.conv2d(_f64(img), _f64(c0.weight), _f64(c0.bias), padding=1).relu()
    h = F.conv2d(h, _f64(c1.weight), _f64(c1.bias), padding=1)
    h = F.batch_norm(
        h, _f64(bn.running_mean), _f64(bn.running_var), _f64(bn.weight), _f64(bn.bias), eps=bn.eps
    )
    ref = F.max_pool2d(h.relu(), 2, 2)
    call += ".eval()(image), BN running mean ~ U(-0.5, 0.5), var ~ U(0.5, 2)"
    return Example("ImgConvGroup (eval)", call, img, group(img), ref)


def _megengine_conv2d(img: torch.Tensor) -> Example:
    """The example of MegEngine's ``Conv2d`` docstring, through omniconv's front-end."""
    import omniconv.compat.megengine as mge
    import omniconv.compat.megengine.module as M

    m, call = _call("M.", M.Conv2d, in_channels=3, out_channels=1, kernel_size=3)
    inp = mge.tensor(np.arange(0, 96).astype("float32").reshape(2, 3, 4, 4))
    oup = m(inp).numpy()
    weight, bias = _f64(m.weight.numpy()), _f64(m.bias.numpy())
    ref = F.conv2d(_f64(inp.numpy()), weight.reshape(1, 3, 3, 3), bias.reshape(1))
    call += "(mge.tensor(np.arange(0, 96).astype('float32').reshape(2, 3, 4, 4)))"
    return Example("MegEngine M.Conv2d", call, inp, oup, ref)


#: the examples, in the order they run
EXAMPLES: list[Callable[[torch.Tensor], Example]] = [
    _conv2d,
    _conv2d_nhwc,
    _conv_transpose2d,
    _deform_conv2d,
    _deform_conv2d_pack,
    _img_conv_group,
    _megengine_conv2d,
]


# --------------------------------------------------------------------------- checks


@dataclass
class Check:
    """One example's outcome."""

    layer: str
    call: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    max_error: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.max_error <= self.tolerance  # False for NaN too


def _check(example: Example) -> Check:
    out, ref = _np64(example.output), _np64(example.reference)
    same = out.shape == ref.shape
    err = float(np.abs(out - ref).max(initial=0.0)) if same else float("inf")
    tol = RTOL * max(1.0, float(np.abs(ref).max(initial=0.0)))
    shape = tuple(np.shape(example.input))
    return Check(example.layer, example.call, shape, out.shape, err, tol)


def checks(seed: int = 0) -> Iterator[Check]:
    """Run the examples in turn (parameters drawn from ``seed``), yielding each check as it
    finishes."""
    torch.manual_seed(seed)
    img = torch.from_numpy(sample_image()).float()
    for example in EXAMPLES:
        with torch.no_grad():
            yield _check(example(img))


# --------------------------------------------------------------------------- the picture

#: where ``omniconv demo --plot`` writes its picture when given no path
PLOT_PATH = "omniconv-sampling.png"
PLOT_ZOOM = 1.5  # the target shows the test pattern this many times smaller
PLOT_SIZE = 40  # the test pattern's size for the picture
PLOT_DILATION = 2
PLOT_POINTS = ((11, 11), (11, 28), (19, 19), (28, 11), (28, 28))  # output pixels drawn


class _ZoomingDCN(torch.nn.Module):
    """A 3x3 deformable conv whose offsets and mask (``2 * sigmoid``) a 3x3 conv predicts
    from the image and two coordinate channels (so they can depend on where a pixel is,
    as a zoom's do). Its filter stays fixed; the offset branch starts at zero (the regular
    grid, mask 1)."""

    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.dcn = onn.DeformConv2d(channels, 4, 3, padding=dilation, dilation=dilation, bias=False)
        self.dcn.weight.requires_grad_(False)
        self.predict = torch.nn.Conv2d(channels + 2, 3 * 9, 3, padding=dilation, dilation=dilation)
        torch.nn.init.zeros_(self.predict.weight)
        torch.nn.init.zeros_(cast(torch.Tensor, self.predict.bias))

    def offset_mask(self, image: torch.Tensor, coords: torch.Tensor) -> tuple[Any, Any]:
        out = self.predict(torch.cat([image, coords], 1))
        return out[:, :18], 2 * torch.sigmoid(out[:, 18:])

    def forward(self, image: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        return self.dcn(image, *self.offset_mask(image, coords))


def _shading(columns: torch.Tensor, size: int) -> torch.Tensor:
    """The brightness the target applies at a column: ``2 * sigmoid``, 0.15 at the left
    edge, 1.85 at the right (what the mask must learn)."""
    return 2 * torch.sigmoid(2.5 * (2 * columns / (size - 1) - 1))


def _zoomed_target(img: torch.Tensor, zoom: float, weight: torch.Tensor) -> torch.Tensor:
    """The fixed filter's output on the pattern seen ``zoom`` times smaller about its
    centre (pixel ``p`` shows ``c + zoom * (p - c)``, bilinear, zero outside, the
    deformable conv's own sampling) and shaded from left to right."""
    size = img.shape[-1]
    centre = (size - 1) / 2
    axis = torch.arange(size, dtype=img.dtype)
    src = (centre + zoom * (axis - centre)) / (size - 1) * 2 - 1  # grid_sample's [-1, 1]
    grid = torch.stack(torch.meshgrid(src, src, indexing="xy"), -1)[None]
    seen = F.grid_sample(img, grid, align_corners=True) * _shading(axis, size)
    return F.conv2d(seen, weight, padding=PLOT_DILATION, dilation=PLOT_DILATION)


@dataclass
class SamplingDemo:
    """The trained layer and its offsets and mask on the image, how training went, and
    how far the learned sample points and mask lie from the exact solution (the zoom's
    points, the shading), over the output pixels whose zoomed kernel lies in the image."""

    image: torch.Tensor
    offset: torch.Tensor
    mask: torch.Tensor
    layer: onn.DeformConv2d
    steps: int
    seconds: float
    losses: tuple[float, float]  # on the final target: regular grid (untrained), trained
    position_error: tuple[float, float]  # median, max (pixels)
    mask_error: float  # max


def train_sampling_demo(seed: int = 0, steps: int = 600) -> SamplingDemo:
    """Train the offset/mask branch of a small deformable conv (Adam, ``steps`` steps, the
    zoom ramped up from 1 over the first half so the points move a little at a time)."""
    torch.manual_seed(seed)
    size = PLOT_SIZE
    img = torch.from_numpy(sample_image(size)).float()
    axis = torch.arange(size, dtype=torch.float32) / (size - 1) * 2 - 1
    coords = torch.stack(torch.meshgrid(axis, axis, indexing="ij"))[None]
    net = _ZoomingDCN(img.shape[1], PLOT_DILATION)
    opt = torch.optim.Adam(net.predict.parameters(), lr=0.05)
    t0 = time.perf_counter()
    for step in range(steps):
        zoom = 1 + (PLOT_ZOOM - 1) * min(1.0, 2 * (step + 1) / steps)
        target = _zoomed_target(img, zoom, net.dcn.weight)
        loss = F.mse_loss(net(img, coords), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - t0
    with torch.no_grad():
        offset, mask = net.offset_mask(img, coords)
        target = _zoomed_target(img, PLOT_ZOOM, net.dcn.weight)
        trained = F.mse_loss(net.dcn(img, offset, mask), target)
        untrained = F.mse_loss(
            net.dcn(img, torch.zeros_like(offset), torch.ones_like(mask)), target
        )
    # exact solution: tap k of pixel p, grid point q = p + (i, j) * dilation - dilation,
    # samples c + zoom * (q - c), with mask = the shading at q
    centre = (size - 1) / 2
    taps = torch.arange(9)
    rows = (torch.arange(size)[:, None] + (taps // 3 - 1)[:, None, None] * PLOT_DILATION).float()
    cols = (torch.arange(size)[None] + (taps % 3 - 1)[:, None, None] * PLOT_DILATION).float()
    rows, cols = rows.expand(9, size, size), cols.expand(9, size, size)
    want_r, want_c = centre + PLOT_ZOOM * (rows - centre), centre + PLOT_ZOOM * (cols - centre)
    err = torch.hypot(rows + offset[0, 0::2] - want_r, cols + offset[0, 1::2] - want_c)
    inside = ((want_r >= 0) & (want_r <= size - 1) & (want_c >= 0) & (want_c <= size - 1)).all(0)
    err = err[:, inside]
    mask_err = (mask[0] - _shading(cols, size)).abs()[:, inside]
    return SamplingDemo(
        img, offset, mask, net.dcn, steps, seconds, (float(untrained), float(trained)),
        (float(err.median()), float(err.max())), float(mask_err.max()),
    )  # fmt: skip


def plot_main(path: str, seed: int = 0, out: TextIO | None = None) -> int:
    """``omniconv demo --plot PATH``: train, draw, say where; 1 only when the file cannot
    be written (matplotlib missing: says how to get it, 0)."""
    out = out or sys.stdout
    try:
        from . import viz

        viz.require_matplotlib()
    except ImportError as exc:
        print(f"picture: not drawn: {exc}", file=out)
        return 0
    print(
        f"picture: training a deformable conv (3x3, dilation {PLOT_DILATION}) for a few "
        f"seconds to reproduce a fixed filter's output on the test pattern seen "
        f"{PLOT_ZOOM}x smaller and shaded left to right ...",
        file=out,
    )
    out.flush()
    with CompileNotice(out):
        demo = train_sampling_demo(seed)
    med, worst = demo.position_error
    print(
        f"  trained {demo.steps} steps in {demo.seconds:.1f} s, loss {demo.losses[0]:.3g} "
        f"(regular grid) -> {demo.losses[1]:.2g}; its sample points lie {med:.3f} px "
        f"(median; at most {worst:.2f} px) from where the zoom puts them, its mask within "
        f"{demo.mask_error:.2f} of the shading",
        file=out,
    )
    title = (
        f"offsets learned to see the test pattern {PLOT_ZOOM}x smaller: the kernel spreads\n"
        f"{PLOT_ZOOM}x; mask learned to shade it left to right (3x3, dilation {PLOT_DILATION})"
    )
    try:
        viz.plot_sampling(
            demo.image, demo.offset, demo.mask, PLOT_POINTS, layer=demo.layer, path=path,
            title=title, grey=True,
        )  # fmt: skip
    except OSError as exc:
        print(f"picture: could not write {path}: {exc}", file=out)
        return 1
    print(f"  wrote {os.path.abspath(path)}", file=out)
    return 0


# --------------------------------------------------------------------------- output


class CompileNotice:
    """Says so when numba starts compiling (the deformable-conv kernels, on their first use
    on this machine; later runs load them from numba's on-disk cache), and keeps the time
    compilation took. A no-op where numba does not load."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.seconds = 0.0
        self._depth = 0
        self._t0 = 0.0
        self._listener: Any = None

    def _start(self) -> None:
        if self._depth == 0:
            if not self.seconds:
                print("compiling the numba kernels (first run only, ~10 s) ...", file=self.out)
                self.out.flush()
            self._t0 = time.perf_counter()
        self._depth += 1

    def _end(self) -> None:
        self._depth -= 1
        if self._depth == 0:
            self.seconds += time.perf_counter() - self._t0

    def __enter__(self) -> CompileNotice:
        if backends.numba_available():
            from numba.core import event

            notice = self

            class Listener(event.Listener):
                def on_start(self, ev: Any) -> None:
                    notice._start()

                def on_end(self, ev: Any) -> None:
                    notice._end()

            self._listener = Listener()
            event.register("numba:compile", self._listener)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._listener is not None:
            from numba.core import event

            event.unregister("numba:compile", self._listener)
            self._listener = None


def _dims(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


HEADER = f"{'layer':<20} {'input':<11} {'output':<11} {'max |error|':>11} {'tolerance':>9}"


def format_check(c: Check) -> str:
    """Two lines: the numbers, then what ran."""
    verdict = "ok" if c.ok else "MISMATCH"
    return (
        f"{c.layer:<20} {_dims(c.input_shape):<11} {_dims(c.output_shape):<11} "
        f"{c.max_error:>11.1e} {c.tolerance:>9.0e}  {verdict}\n    {c.call}"
    )


def main(seed: int = 0, out: TextIO | None = None, plot: str | None = None) -> int:
    """``omniconv demo``: print each check as it finishes; 0 when all match, else 1. With
    ``plot`` (a path), then also the picture (:func:`plot_main`)."""
    out = out or sys.stdout
    t0 = time.perf_counter()
    print(
        f"omniconv demo (seed {seed}): each layer in float32 against an independent float64 "
        f"reference; tolerance = {RTOL:.0e} x max(1, max |reference|)",
        file=out,
    )
    print(
        "(nn = omniconv.nn, mge = omniconv.compat.megengine, M = omniconv.compat.megengine"
        ".module; image: a 3-channel 32x32 test pattern)",
        file=out,
    )
    print(HEADER, file=out)
    print("-" * len(HEADER), file=out)
    results = []
    with CompileNotice(out) as notice:
        for c in checks(seed):
            print(format_check(c), file=out)
            out.flush()
            results.append(c)
    bad = [c.layer for c in results if not c.ok]
    compiled = f", {notice.seconds:.1f} s of it compiling kernels" if notice.seconds else ""
    elapsed = f"{time.perf_counter() - t0:.1f} s{compiled}"
    if bad:
        print(f"FAILED: {', '.join(bad)} outside tolerance ({elapsed})", file=out)
    else:
        print(f"all {len(results)} layers match their float64 references ({elapsed})", file=out)
    status = 1 if bad else 0
    if plot is None:
        print(
            "omniconv demo --plot [PATH] also trains a deformable conv and draws where it "
            "samples (a PNG)",
            file=out,
        )
        return status
    return max(status, plot_main(plot, seed, out))
