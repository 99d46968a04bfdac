"""Pictures of a deformable convolution: where it samples its input.

:func:`plot_sampling` draws the classic DCN figure: for chosen output pixels, the regular
grid of the kernel's taps and the points the deformable kernel actually samples (grid +
offset) over the input image, the mask as marker area and opacity.
:func:`sampling_locations` gives the same points as numbers, without matplotlib.

The coordinates are the op's own (:mod:`omniconv.functional.deform_conv`): output pixel
``(y, x)`` samples tap ``k = i*kw + j`` of deformable group ``g`` at row
``y*stride_h - pad_h + i*dilation_h + offset[2*(g*K + k)]`` and column
``x*stride_w - pad_w + j*dilation_w + offset[2*(g*K + k) + 1]`` (``K = kh*kw``), input
pixel ``(r, c)`` being centred on the point ``(r, c)``.

matplotlib is optional (``pip install 'omniconv[viz]'``): neither ``import omniconv`` nor
``import omniconv.viz`` imports it. :func:`plot_sampling` imports it when called and draws
on an Agg (file) canvas without pyplot, so it needs no display and leaves matplotlib's
global backend alone.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ._args import Pair, as_int, check_bool, check_positive_int, fail, to_pair, type_name
from ._shapes import conv_output_size, pad4

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["INSTALL_HINT", "Sampling", "plot_sampling", "require_matplotlib", "sampling_locations"]

#: how to get matplotlib, as the errors say it
INSTALL_HINT = "pip install 'omniconv[viz]'"


# --------------------------------------------------------------------------- the numbers


@dataclass(frozen=True)
class Sampling:
    """Where a deformable kernel samples, for ``P`` output pixels and its ``K = kh*kw``
    taps (row-major), in input-pixel coordinates ``(row, column)``, float64.

    ``grid[p, k]``: tap ``k``'s point on the regular (undeformed) grid of output pixel
    ``points[p]``; ``samples[p, k]``: that point plus the tap's offset, where the op
    samples; ``mask[p, k]``: the tap's modulation (None for DCNv1).
    """

    points: tuple[Pair, ...]
    grid: np.ndarray
    samples: np.ndarray
    mask: np.ndarray | None
    kernel_size: Pair
    stride: Pair
    padding: Pair
    dilation: Pair
    deformable_group: int


def _array(value: Any, name: str) -> np.ndarray:
    """A tensor or array-like as a float64 numpy array."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", torch.float64).numpy()
    if isinstance(value, np.ndarray | Sequence) and not isinstance(value, str):
        try:
            return np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            pass
    fail(name, "a tensor or an array of numbers", type_name(value), exc=TypeError)


def _unbatch(arr: np.ndarray, name: str, ndim: int, batch: int) -> np.ndarray:
    """``arr`` as ``ndim``-D: image ``batch`` of a leading batch dimension, if it has one."""
    if arr.ndim == ndim + 1:
        index = as_int(batch)
        if index is None:
            fail(
                "batch",
                f"an int index into the {arr.shape[0]} images of {name}",
                batch,
                exc=TypeError,
            )
        if not 0 <= index < arr.shape[0]:
            fail("batch", f"an index into the {arr.shape[0]} images of {name}", batch)
        arr = arr[batch]
    if arr.ndim != ndim:
        fail(f"{name}.shape", f"{ndim}-D, or {ndim + 1}-D with a batch dimension", arr.shape)
    return arr


def _points(points: Any, out_size: Pair) -> tuple[Pair, ...]:
    """One output pixel ``(y, x)`` or a sequence of them; None: the centre one."""
    if points is None:
        return ((out_size[0] // 2, out_size[1] // 2),)
    if isinstance(points, np.ndarray | torch.Tensor):
        points = points.tolist()
    if not isinstance(points, Sequence) or isinstance(points, str) or not points:
        fail("points", "(y, x) or a non-empty sequence of (y, x) output pixels", points)
    single = len(points) == 2 and as_int(points[0]) is not None
    result = []
    for item in [points] if single else points:
        pair = [as_int(v) for v in item] if isinstance(item, Iterable) else []
        y, x = pair if len(pair) == 2 else (None, None)
        if y is None or x is None:
            fail("points", "(y, x) or a sequence of (y, x) integer output pixels", points)
        if not (0 <= y < out_size[0] and 0 <= x < out_size[1]):
            fail("points", f"inside the {out_size[0]}x{out_size[1]} output", points)
        result.append((y, x))
    return tuple(result)


def sampling_locations(
    offset: Any,
    points: Any = None,
    mask: Any = None,
    *,
    kernel_size: Any,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    deformable_group: int = 0,
    batch: int = 0,
) -> Sampling:
    """Where a deformable conv with this geometry samples, for the given output pixels.

    Args:
        offset: ``(2*dg*kh*kw, H_out, W_out)``, or with a batch dimension first (then
            image ``batch`` is read); ``(dy, dx)`` interleaved per tap, as the op takes it.
        points: an output pixel ``(y, x)`` or a sequence of them; None: the centre one.
        mask: ``(dg*kh*kw, H_out, W_out)`` (or batched), or None (DCNv1).
        kernel_size, stride, padding, dilation: the layer's, each an int or a pair
            ``(h, w)`` (padding symmetric, as the op's).
        deformable_group: the offset group to read, ``0 <= g < dg``.
    """
    kh, kw = to_pair(kernel_size, "kernel_size")
    stride_ = to_pair(stride, "stride")
    padding_ = to_pair(padding, "padding", minimum=0)
    dilation_ = to_pair(dilation, "dilation")
    off = _unbatch(_array(offset, "offset"), "offset", 3, batch)
    taps = kh * kw
    if off.shape[0] % (2 * taps) or off.shape[0] == 0:
        rule = f"2*dg*kh*kw channels, a multiple of {2 * taps} for a {kh}x{kw} kernel"
        fail("offset.shape", rule, off.shape)
    groups = off.shape[0] // (2 * taps)
    g = as_int(deformable_group)
    if g is None or not 0 <= g < groups:
        rule = f"an int in [0, {groups}) (the offset has {groups} deformable groups)"
        fail("deformable_group", rule, deformable_group, exc=TypeError if g is None else ValueError)
    out_size = (off.shape[1], off.shape[2])
    chosen = _points(points, out_size)
    ys = np.array([p[0] for p in chosen])
    xs = np.array([p[1] for p in chosen])
    # this group's (dy, dx) per tap at each chosen pixel: (P, K, 2)
    delta = off[2 * g * taps : 2 * (g + 1) * taps][:, ys, xs].T.reshape(len(chosen), taps, 2)
    if not np.isfinite(delta).all():
        fail("offset", "finite at the output pixels drawn", "<non-finite values>")
    picked_mask = None
    if mask is not None:
        m = _unbatch(_array(mask, "mask"), "mask", 3, batch)
        if m.shape != (groups * taps, *out_size):
            rule = f"{(groups * taps, *out_size)} (dg*kh*kw channels, the offset's size)"
            fail("mask.shape", rule, m.shape)
        picked_mask = m[g * taps : (g + 1) * taps][:, ys, xs].T  # (P, K)
    ii, jj = np.divmod(np.arange(taps), kw)  # tap k = i*kw + j
    grid = np.stack(
        [
            ys[:, None] * stride_[0] - padding_[0] + ii * dilation_[0],
            xs[:, None] * stride_[1] - padding_[1] + jj * dilation_[1],
        ],
        axis=-1,
    ).astype(np.float64)
    return Sampling(
        chosen, grid, grid + delta, picked_mask, (kh, kw), stride_, padding_, dilation_, g
    )


# --------------------------------------------------------------------------- the picture


def require_matplotlib() -> None:
    """Raise the ``ImportError`` :func:`plot_sampling` raises when matplotlib is not
    installed (its message names ``pip install 'omniconv[viz]'``)."""
    _matplotlib()


def _matplotlib() -> SimpleNamespace:
    try:
        from matplotlib.axes import Axes
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.collections import LineCollection
        from matplotlib.colors import to_rgba_array
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
    except ImportError as exc:
        raise ImportError(
            f"omniconv.viz draws with matplotlib, which is not installed: {INSTALL_HINT}"
        ) from exc
    return SimpleNamespace(
        Axes=Axes,
        FigureCanvasAgg=FigureCanvasAgg,
        LineCollection=LineCollection,
        to_rgba_array=to_rgba_array,
        Figure=Figure,
        Line2D=Line2D,
    )


def _display_image(image: np.ndarray, grey: bool) -> tuple[np.ndarray, str | None]:
    """``(C, H, W)`` or ``(H, W)`` as ``imshow`` shows it: 3 channels as RGB (scaled to
    [0, 1] together) unless ``grey``, else grey (the channels' mean)."""
    if image.ndim == 3:
        if image.shape[0] == 3 and not grey:
            lo, hi = float(image.min()), float(image.max())
            rgb = (image - lo) / (hi - lo) if hi > lo else np.zeros_like(image)
            return np.transpose(rgb, (1, 2, 0)), None
        image = image.mean(axis=0)
    return image, "gray"


_GEOMETRY_DEFAULTS = {"kernel_size": None, "stride": 1, "padding": 0, "dilation": 1}


def _geometry(layer: Any, given: dict[str, Any]) -> dict[str, Any]:
    """The geometry arguments, or ``layer``'s attributes when a layer is given."""
    if layer is None:
        if given["kernel_size"] is None:
            fail("kernel_size", "given (or layer=)", None, exc=TypeError)
        return {k: _GEOMETRY_DEFAULTS[k] if v is None else v for k, v in given.items()}
    clash = [k for k, v in given.items() if v is not None]
    if clash:
        fail(clash[0], "left out when layer= gives the geometry", given[clash[0]], exc=TypeError)
    if not all(hasattr(layer, k) for k in given):
        rule = "a deformable conv layer (with kernel_size, stride, padding, dilation)"
        fail("layer", rule, type_name(layer), exc=TypeError)
    return {k: getattr(layer, k) for k in given}


def _check_image_fits(where: Sampling, size: Pair, offset_size: Pair) -> None:
    """The geometry must give the offset's output size from the image's size."""
    expect = conv_output_size(
        size, where.kernel_size, where.stride, pad4(where.padding), where.dilation
    )
    if expect != offset_size:
        rule = (
            f"the layer's input: with this geometry a {size[0]}x{size[1]} input gives a "
            f"{expect[0]}x{expect[1]} output, and the offset is "
            f"{offset_size[0]}x{offset_size[1]}"
        )
        fail("image.shape", rule, size)


def _title(where: Sampling) -> str:
    def text(pair: Pair) -> str:
        return str(pair[0]) if pair[0] == pair[1] else str(pair)

    kh, kw = where.kernel_size
    group = f", deformable group {where.deformable_group}" if where.deformable_group else ""
    return (
        f"deformable conv {kh}x{kw}, stride {text(where.stride)}, padding "
        f"{text(where.padding)}, dilation {text(where.dilation)}{group}"
    )


def plot_sampling(
    image: Any,
    offset: Any,
    mask: Any = None,
    points: Any = None,
    *,
    kernel_size: Any = None,
    stride: Any = None,
    padding: Any = None,
    dilation: Any = None,
    deformable_group: int = 0,
    layer: Any = None,
    batch: int = 0,
    path: str | os.PathLike[str] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    grey: bool = False,
    dpi: int = 150,
) -> Figure:
    """Draw where a deformable conv samples ``image`` for the chosen output pixels.

    For each output pixel (a colour each): hollow squares on its regular kernel grid, a
    ``+`` at the grid's centre, and filled dots where the kernel samples (grid + offset),
    a line from each tap's grid point to its sample. With a mask, a dot's area and
    opacity scale with the tap's mask value (relative to the largest value drawn, or to
    1 if that is larger); without one (DCNv1) every dot has the full size.

    Args:
        image: the layer's input, ``(C, H, W)``, ``(H, W)`` or ``(N, C, H, W)`` (image
            ``batch`` is drawn); 3 channels show as RGB, any other number in grey.
        offset, mask: the layer's offset and mask for that input, as the op takes them
            (see :func:`sampling_locations`).
        points: an output pixel ``(y, x)`` or a sequence of them; None: the centre one.
        kernel_size, stride, padding, dilation: the layer's geometry, each an int or a
            pair (default stride 1, padding 0, dilation 1); or leave them out and give
            ``layer=``, a deformable conv module to read them from (omniconv's,
            torchvision's, mmcv's).
        deformable_group: the offset group to draw.
        path: also write the figure there, a PNG at ``dpi``.
        ax: draw into these matplotlib axes instead of a new figure.
        title: the title (default: the geometry).
        grey: show a 3-channel image in grey too, so that the markers stand out.

    Returns:
        The matplotlib ``Figure``. Raises ``ImportError`` naming
        ``pip install 'omniconv[viz]'`` when matplotlib is not installed.

    The image must be the layer's input: the output size the geometry gives for its
    size must be the offset's ``(H_out, W_out)``.
    """
    grey = check_bool(grey, "grey")
    dpi = check_positive_int(dpi, "dpi")
    if title is not None and not isinstance(title, str):
        fail("title", "None or a str", type_name(title), exc=TypeError)
    if path is not None and not isinstance(path, str | os.PathLike):
        fail("path", "None, a str or an os.PathLike", type_name(path), exc=TypeError)
    mpl = _matplotlib()
    if ax is not None and not isinstance(ax, mpl.Axes):
        fail("ax", "None or matplotlib Axes", type_name(ax), exc=TypeError)
    geometry = _geometry(
        layer,
        {"kernel_size": kernel_size, "stride": stride, "padding": padding, "dilation": dilation},
    )
    where = sampling_locations(
        offset, points, mask, **geometry, deformable_group=deformable_group, batch=batch
    )
    img = _array(image, "image")
    img = _unbatch(img, "image", 3, batch) if img.ndim == 4 else img
    if img.ndim not in (2, 3):
        fail("image.shape", "(C, H, W), (H, W) or (N, C, H, W)", img.shape)
    height, width = img.shape[-2:]
    off_shape = np.shape(offset)
    _check_image_fits(where, (height, width), (off_shape[-2], off_shape[-1]))

    grid, samples = where.grid, where.samples
    n_points, taps = grid.shape[:2]
    every = np.concatenate([grid.reshape(-1, 2), samples.reshape(-1, 2)])
    lo = np.minimum(every.min(axis=0), 0) - 1.0  # the image and every point, with a margin
    hi = np.maximum(every.max(axis=0), (height - 1, width - 1)) + 1.0
    if ax is None:
        aspect = float(np.clip((hi[1] - lo[1]) / (hi[0] - lo[0]), 0.5, 2.0))
        fig = mpl.Figure(figsize=(5.0 * aspect + 2.4, 5.6), layout="constrained")
        mpl.FigureCanvasAgg(fig)
        ax = fig.add_subplot()
    else:
        fig = ax.figure

    shown, cmap = _display_image(img, grey)
    ax.imshow(shown, cmap=cmap, interpolation="nearest", alpha=0.6 if grey else 0.85, zorder=0)
    rel = (
        np.ones((n_points, taps))
        if where.mask is None
        else np.clip(where.mask, 0, None) / max(1.0, float(where.mask.max()))
    )
    colours = [f"C{i % 10}" for i in range(n_points)]
    per_tap = np.repeat(colours, taps)
    # plot coordinates are (x, y) = (column, row)
    ends = np.stack([grid[..., ::-1], samples[..., ::-1]], axis=2).reshape(-1, 2, 2)
    ax.add_collection(mpl.LineCollection(ends, colors=per_tap, linewidths=0.9, alpha=0.7))
    grid_xy = grid.reshape(-1, 2)[:, ::-1]
    ax.scatter(
        grid_xy[:, 0], grid_xy[:, 1], s=28, marker="s", facecolors="none",
        edgecolors="white", linewidths=1.1, zorder=3, gid="grid",
    )  # fmt: skip
    dots = mpl.to_rgba_array(per_tap)
    dots[:, 3] = 0.25 + 0.75 * rel.reshape(-1)
    sample_xy = samples.reshape(-1, 2)[:, ::-1]
    ax.scatter(
        sample_xy[:, 0], sample_xy[:, 1], s=70.0 * np.maximum(rel.reshape(-1), 0.05),
        c=dots, edgecolors="black", linewidths=0.6, zorder=4, gid="samples",
    )  # fmt: skip
    centres = grid.mean(axis=1)[:, ::-1]
    ax.scatter(
        centres[:, 0], centres[:, 1], s=120, marker="+", c=colours, linewidths=2.2,
        zorder=5, gid="centres",
    )  # fmt: skip

    sampled = "sampled: grid + offset" + ("" if where.mask is None else "\n(area, opacity ∝ mask)")
    handles = [
        mpl.Line2D([], [], ls="none", marker="o", markersize=7, markerfacecolor=colour,
                   markeredgecolor="black", label=f"output pixel {point}")
        for colour, point in zip(colours, where.points, strict=True)
    ] + [
        mpl.Line2D([], [], ls="none", marker="s", markerfacecolor="none",
                   markeredgecolor="dimgrey", label="regular grid, + its centre"),
        mpl.Line2D([], [], ls="none", marker="o", markerfacecolor="grey",
                   markeredgecolor="black", label=sampled),
    ]  # fmt: skip
    ax.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8,
        frameon=False, borderaxespad=0,
    )  # fmt: skip
    ax.set_xlim(lo[1], hi[1])
    ax.set_ylim(hi[0], lo[0])  # rows grow downwards, as in the image
    ax.set_aspect("equal")
    ax.set_xlabel("input column")
    ax.set_ylabel("input row")
    ax.set_title(_title(where) if title is None else title, fontsize=10)
    if path is not None:
        fig.savefig(os.fspath(path), format="png", dpi=dpi)
    return fig
