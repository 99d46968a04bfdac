"""``omniconv.viz``: the points drawn are where the float64 reference samples (asymmetric
stride / padding / dilation, deformable groups, the mask); the geometry from a layer; the
errors; matplotlib optional; and ``omniconv demo --plot``."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from reference import ref_deform_conv2d

import omniconv
from omniconv import demo, viz
from omniconv._shapes import conv_output_size, pad4
from omniconv.cli import main
from omniconv.compat.torchvision import ops as tv_ops
from omniconv.nn import DeformConv2d

matplotlib = pytest.importorskip("matplotlib")

F64 = torch.float64

# (kernel, stride, padding, dilation, deformable groups, group drawn)
GEOMETRIES = [
    ((3, 2), (2, 1), (1, 2), (2, 3), 2, 1),
    ((3, 3), (1, 3), (0, 1), (3, 1), 1, 0),
    ((2, 3), (3, 2), (2, 0), (1, 2), 3, 2),
]


def _coordinate_layer(kernel, dg, size):
    """An input whose channels are, per deformable group, (row, column, 1), and a weight
    that copies each tap's three sampled values to an output channel of their own: the
    reference's output then reads where each tap sampled (row, column) and its mask."""
    rows, cols = torch.meshgrid(
        torch.arange(size[0], dtype=F64), torch.arange(size[1], dtype=F64), indexing="ij"
    )
    x = torch.stack([rows, cols, torch.ones_like(rows)] * dg)[None]  # (1, 3*dg, H, W)
    taps = kernel[0] * kernel[1]
    w = torch.zeros(dg * taps * 3, dg * 3, *kernel, dtype=F64)
    for g in range(dg):
        for k in range(taps):
            for t in range(3):
                w[(g * taps + k) * 3 + t, g * 3 + t, k // kernel[1], k % kernel[1]] = 1
    return x, w


def _reference_points(x, w, offset, mask, geometry, points, group):
    """(row, column) sampled and mask of each tap of each output pixel, from the float64
    reference: ``(P*K, 2)`` and ``(P*K,)``."""
    kernel, stride, padding, dilation = geometry
    out = ref_deform_conv2d(x, offset, w, None, stride, padding, dilation, mask)[0]
    taps = kernel[0] * kernel[1]
    pos, masks = [], []
    for y, xx in points:
        for k in range(taps):
            row, col, one = out[(group * taps + k) * 3 : (group * taps + k) * 3 + 3, y, xx]
            pos.append((float(row / one), float(col / one)))
            masks.append(float(one))
    return np.array(pos), np.array(masks)


def _drawn(fig, gid):
    """The (row, column) of the markers with this gid (matplotlib stores (x, y))."""
    (collection,) = [c for c in fig.axes[0].collections if c.get_gid() == gid]
    return np.asarray(collection.get_offsets())[:, ::-1], collection


def _case(kernel, stride, padding, dilation, dg, seed=0):
    size = (17, 19)
    out_size = conv_output_size(size, kernel, stride, pad4(padding), dilation)
    taps = kernel[0] * kernel[1]
    g = torch.Generator().manual_seed(seed)
    # offsets in (-0.9, 0.9), masks in (0.2, 1.8): for output pixels whose grid lies in
    # [1, H-2] x [1, W-2], every sample has all four bilinear corners in the image, where
    # interpolating the row / column channels gives the sample position exactly
    offset = (torch.rand(1, 2 * dg * taps, *out_size, generator=g, dtype=F64) - 0.5) * 1.8
    mask = 0.2 + 1.6 * torch.rand(1, dg * taps, *out_size, generator=g, dtype=F64)
    inner = [
        (y, xx)
        for y in range(out_size[0])
        for xx in range(out_size[1])
        if y * stride[0] - padding[0] >= 1
        and y * stride[0] - padding[0] + (kernel[0] - 1) * dilation[0] <= size[0] - 2
        and xx * stride[1] - padding[1] >= 1
        and xx * stride[1] - padding[1] + (kernel[1] - 1) * dilation[1] <= size[1] - 2
    ]
    points = inner[:: max(1, len(inner) // 3)][:3]
    assert len(points) >= 2, "the case should draw more than one output pixel"
    return size, offset, mask, points


@pytest.mark.parametrize(("kernel", "stride", "padding", "dilation", "dg", "group"), GEOMETRIES)
def test_points_drawn_are_where_the_reference_samples(kernel, stride, padding, dilation, dg, group):
    size, offset, mask, points = _case(kernel, stride, padding, dilation, dg)
    x, w = _coordinate_layer(kernel, dg, size)
    geometry = (kernel, stride, padding, dilation)
    want, want_mask = _reference_points(x, w, offset, mask, geometry, points, group)
    grid, _ = _reference_points(
        x, w, torch.zeros_like(offset), None, geometry, points, group
    )  # zero offsets: the regular grid

    image = torch.rand(1, 3, *size)
    fig = viz.plot_sampling(
        image, offset, mask, points, kernel_size=kernel, stride=stride, padding=padding,
        dilation=dilation, deformable_group=group,
    )  # fmt: skip
    drawn, samples = _drawn(fig, "samples")
    np.testing.assert_allclose(drawn, want, rtol=0, atol=1e-9)
    np.testing.assert_allclose(_drawn(fig, "grid")[0], grid, rtol=0, atol=1e-9)
    # marker area and opacity follow the mask (relative to its largest value drawn, > 1)
    sizes = np.asarray(samples.get_sizes())
    np.testing.assert_allclose(sizes / sizes.max(), want_mask / want_mask.max(), rtol=1e-9)
    alpha = samples.get_facecolors()[:, 3]
    np.testing.assert_allclose(alpha, 0.25 + 0.75 * want_mask / want_mask.max(), rtol=1e-6)
    # the numbers without the picture
    where = viz.sampling_locations(
        offset, points, mask, kernel_size=kernel, stride=stride, padding=padding,
        dilation=dilation, deformable_group=group,
    )  # fmt: skip
    np.testing.assert_allclose(where.samples.reshape(-1, 2), want, rtol=0, atol=1e-9)
    np.testing.assert_allclose(where.grid.reshape(-1, 2), grid, rtol=0, atol=1e-12)
    np.testing.assert_allclose(where.mask.reshape(-1), want_mask, rtol=1e-12)
    assert where.points == tuple(points)


def test_without_a_mask_every_sample_has_the_full_size():
    kernel, stride, padding, dilation = (3, 3), (1, 1), (1, 1), (1, 1)
    size, offset, _, points = _case(kernel, stride, padding, dilation, 1)
    fig = viz.plot_sampling(torch.rand(*size), offset, None, points, kernel_size=3, padding=1)
    _, samples = _drawn(fig, "samples")
    assert len(set(np.asarray(samples.get_sizes()).tolist())) == 1
    assert np.all(samples.get_facecolors()[:, 3] == 1)


def test_a_layer_gives_the_geometry():
    layer = DeformConv2d(3, 4, (3, 2), stride=(2, 1), padding=(1, 2), dilation=(2, 1))
    tv_layer = tv_ops.DeformConv2d(3, 4, (3, 2), stride=(2, 1), padding=(1, 2), dilation=(2, 1))
    image = torch.rand(1, 3, 12, 13)
    out_size = conv_output_size((12, 13), (3, 2), (2, 1), (1, 1, 2, 2), (2, 1))
    offset = torch.randn(1, 12, *out_size)
    explicit = viz.plot_sampling(
        image, offset, None, [(1, 2), (3, 10)], kernel_size=(3, 2), stride=(2, 1),
        padding=(1, 2), dilation=(2, 1),
    )  # fmt: skip
    for module in (layer, tv_layer):
        fig = viz.plot_sampling(image, offset, None, [(1, 2), (3, 10)], layer=module)
        for gid in ("grid", "samples", "centres"):
            np.testing.assert_array_equal(_drawn(fig, gid)[0], _drawn(explicit, gid)[0])
    with pytest.raises(TypeError, match=r"`stride` must be left out when layer= gives"):
        viz.plot_sampling(image, offset, layer=layer, stride=2)
    with pytest.raises(TypeError, match=r"`layer` must be a deformable conv layer"):
        viz.plot_sampling(image, offset, layer=torch.nn.ReLU())
    with pytest.raises(TypeError, match=r"`kernel_size` must be given \(or layer=\)"):
        viz.plot_sampling(image, offset)


def test_defaults_centre_pixel_and_the_geometry_in_the_title():
    offset = torch.zeros(2 * 9, 7, 9)
    fig = viz.plot_sampling(torch.rand(3, 9, 11), offset, kernel_size=3)
    assert viz.sampling_locations(offset, kernel_size=3).points == ((3, 4),)
    centre, _ = _drawn(fig, "centres")
    np.testing.assert_array_equal(centre, [[4.0, 5.0]])  # (3, 4) + the 3x3 grid's middle
    assert fig.axes[0].get_title() == "deformable conv 3x3, stride 1, padding 0, dilation 1"
    one = viz.sampling_locations(offset, (2, 5), kernel_size=3)
    assert one.points == ((2, 5),) and one.mask is None


@pytest.mark.parametrize(
    ("kwargs", "exc", "message"),
    [
        ({"image": torch.rand(3, 10, 10)}, ValueError, r"`image.shape` must be the layer's "
         r"input: with this geometry a 10x10 input gives a 8x8 output, and the offset is 7x9"),
        ({"points": [(1, 1), (7, 0)]}, ValueError, r"`points` must be inside the 7x9 output"),
        ({"points": [(1.5, 2)]}, ValueError, r"`points` must be \(y, x\) or a sequence"),
        ({"points": []}, ValueError, r"`points` must be \(y, x\) or a non-empty sequence"),
        ({"deformable_group": 1}, ValueError, r"`deformable_group` must be an int in \[0, 1\)"),
        ({"offset": torch.zeros(1, 17, 7, 9)}, ValueError, r"`offset.shape` must be 2\*dg\*kh"),
        ({"mask": torch.ones(1, 18, 7, 9)}, ValueError, r"`mask.shape` must be \(9, 7, 9\)"),
        ({"offset": torch.full((18, 7, 9), float("nan"))}, ValueError, r"`offset` must be fin"),
        ({"offset": "zeros"}, TypeError, r"`offset` must be a tensor or an array"),
        ({"batch": 2}, ValueError, r"`batch` must be an index into the 1 images of offset"),
        ({"image": torch.rand(2, 1, 3, 9, 11)}, ValueError, r"`image.shape` must be \(C, H, W"),
    ],
)  # fmt: skip
def test_errors_name_the_argument_the_rule_and_the_value(kwargs, exc, message):
    args = {"image": torch.rand(1, 3, 9, 11), "offset": torch.zeros(1, 18, 7, 9)}
    args.update(kwargs)
    with pytest.raises(exc, match=message):
        viz.plot_sampling(args.pop("image"), args.pop("offset"), kernel_size=3, **args)


def test_writes_a_png_on_the_agg_canvas(tmp_path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.image import imread

    path = tmp_path / "dcn.png"
    offset = torch.randn(1, 2 * 2 * 9, 8, 8)
    mask = torch.rand(1, 2 * 9, 8, 8)
    fig = viz.plot_sampling(
        torch.rand(1, 4, 16, 16), offset, mask, [(2, 2), (5, 6)], kernel_size=3, stride=2,
        padding=1, deformable_group=1, path=path, dpi=50,
    )  # fmt: skip
    assert isinstance(fig.canvas, FigureCanvasAgg)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width = imread(path).shape[:2]
    assert (width, height) == tuple(round(v * 50) for v in fig.get_size_inches())


def test_draws_into_given_axes():
    from matplotlib.figure import Figure

    fig = Figure()
    ax1, ax2 = fig.subplots(1, 2)
    offset = torch.zeros(18, 5, 5)
    got = viz.plot_sampling(torch.rand(5, 5), offset, kernel_size=3, padding=1, ax=ax2)
    assert got is fig and len(ax2.collections) == 4 and not ax1.collections


BLOCK_MATPLOTLIB = (
    "import sys\n"
    "class Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name == 'matplotlib' or name.startswith('matplotlib.'):\n"
    "            raise ImportError('No module named ' + repr(name))\n"
    "sys.meta_path.insert(0, Block())\n"
)


def _python(code: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter that imports this omniconv from any directory."""
    src = str(Path(omniconv.__file__).resolve().parents[1])
    path = os.pathsep.join([src, *filter(None, [os.environ.get("PYTHONPATH")])])
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=cwd,
        env={**os.environ, "PYTHONPATH": path},
    )  # fmt: skip


def test_importing_omniconv_never_imports_matplotlib():
    proc = _python(
        "import sys\n"
        "import omniconv, omniconv.nn, omniconv.functional, omniconv.viz, omniconv.demo\n"
        "import omniconv.cli\n"
        "omniconv.cli._parser()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_plotting_on_the_agg_canvas_leaves_pyplot_alone(tmp_path):
    proc = _python(
        "import sys, torch\n"
        "from omniconv import viz\n"
        f"viz.plot_sampling(torch.rand(6, 6), torch.zeros(18, 4, 4), kernel_size=3, "
        f"path={str(tmp_path / 'a.png')!r})\n"
        "print('matplotlib.pyplot' in sys.modules)\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False" and (tmp_path / "a.png").exists()


def test_without_matplotlib_plotting_says_how_to_get_it(monkeypatch):
    for name in [m for m in sys.modules if m.split(".")[0] == "matplotlib"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    offset = torch.zeros(18, 4, 4)
    with pytest.raises(ImportError, match=r"pip install 'omniconv\[viz\]'"):
        viz.plot_sampling(torch.rand(6, 6), offset, kernel_size=3)
    with pytest.raises(ImportError, match=r"pip install 'omniconv\[viz\]'"):
        viz.require_matplotlib()
    # the numbers need no matplotlib
    assert viz.sampling_locations(offset, (1, 1), kernel_size=3).grid.shape == (1, 9, 2)


# --------------------------------------------------------------------------- the demo


@pytest.fixture(scope="module")
def trained():
    return demo.train_sampling_demo(seed=0)


def test_the_demo_dcn_learns_the_zoom_and_the_shading(trained):
    """The learned sample points are where a 1.5x zoom puts them, and the mask is the
    shading: the offsets the picture shows are real, not noise."""
    med, worst = trained.position_error
    assert med < 0.02 and worst < 0.5
    assert trained.mask_error < 0.2
    untrained, final = trained.losses
    assert final < 1e-3 * untrained
    # far from the regular grid: the corner pixels' samples moved by pixels
    where = viz.sampling_locations(
        trained.offset, demo.PLOT_POINTS, trained.mask, kernel_size=3,
        padding=demo.PLOT_DILATION, dilation=demo.PLOT_DILATION,
    )  # fmt: skip
    moved = np.hypot(*(where.samples - where.grid).transpose(2, 0, 1))
    assert moved.max() > 3 and where.mask.min() < 0.5 and where.mask.max() > 1.5


def test_demo_plot_writes_the_picture_and_says_where(tmp_path, capsys):
    path = tmp_path / "sampling.png"
    assert main(["demo", "--plot", str(path)]) == 0
    out = capsys.readouterr().out
    assert "all 7 layers match" in out
    assert f"wrote {path}" in out and "from where the zoom puts them" in out
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_plot_defaults_to_a_file_in_the_working_directory(tmp_path, monkeypatch, trained):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(demo, "train_sampling_demo", lambda seed=0: trained)
    args = ["demo", "--plot"]
    from omniconv.cli import _parser

    assert _parser().parse_args(args).plot == demo.PLOT_PATH
    out = io.StringIO()
    assert demo.plot_main(demo.PLOT_PATH, out=out) == 0
    assert (tmp_path / demo.PLOT_PATH).exists()
    assert f"wrote {tmp_path / demo.PLOT_PATH}" in out.getvalue()


def test_demo_plot_reports_a_path_it_cannot_write(tmp_path, monkeypatch, trained):
    monkeypatch.setattr(demo, "train_sampling_demo", lambda seed=0: trained)
    out = io.StringIO()
    bad = tmp_path / "missing-dir" / "x.png"
    assert demo.plot_main(str(bad), out=out) == 1
    assert f"picture: could not write {bad}" in out.getvalue()


def test_demo_without_plot_says_how_to_get_the_picture(capsys, monkeypatch):
    monkeypatch.setattr(demo, "EXAMPLES", demo.EXAMPLES[:1])
    assert main(["demo"]) == 0
    assert "omniconv demo --plot [PATH] also trains a deformable conv" in capsys.readouterr().out


def test_demo_plot_without_matplotlib_says_how_and_exits_0(tmp_path, monkeypatch, capsys):
    for name in [m for m in sys.modules if m.split(".")[0] == "matplotlib"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setattr(demo, "EXAMPLES", demo.EXAMPLES[:1])
    path = tmp_path / "x.png"
    assert main(["demo", "--plot", str(path)]) == 0
    out = capsys.readouterr().out
    assert "picture: not drawn" in out and "pip install 'omniconv[viz]'" in out
    assert not path.exists()


def test_demo_plot_without_matplotlib_in_a_fresh_interpreter(tmp_path):
    """The whole command, matplotlib unimportable from the start."""
    code = "from omniconv.cli import main\nraise SystemExit(main(['demo', '--plot', 'x.png']))"
    proc = _python(BLOCK_MATPLOTLIB + code, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "pip install 'omniconv[viz]'" in proc.stdout and "all 7 layers match" in proc.stdout
    assert not (tmp_path / "x.png").exists()
