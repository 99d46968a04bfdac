"""The driver of ``omniconv bench``: the DCN rows, the peers, the wrapper rows, and on
request the autocast rows and the scale rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .. import backends
from .._progress import Progress
from ._autocast import bench_autocast
from ._data import QUICK_SCALE_FAMILIES, QUICK_SHAPES, SCALE_FAMILIES, SHAPES
from ._dcn import bench_dcn
from ._peers import peer_inputs, run_peer
from ._scale import bench_scale, bench_threads
from ._wrappers import bench_wrappers

__all__ = ["LAYOUTS", "run_bench"]

LAYOUTS = ("NCHW", "channels_last")


def run_bench(
    quick: bool = False,
    rounds: int | None = None,
    layouts: Sequence[str] = LAYOUTS,
    peers: Sequence[tuple[str, str]] = (),
    baselines: bool = True,
    progress: bool = True,
    threads: int = 2,
    autocast: bool = False,
    scale: bool = False,
) -> dict[str, Any]:
    """Run the benchmark and return its result (the JSON ``omniconv bench --json`` prints).

    ``rounds``: of each DCN row (default 15, 3 with ``quick``); the peers take half as many
    (at least 3) after one warm-up, the wrapper rows more (see ``_wrappers``). ``peers``:
    ``(name, python)`` pairs, each run in the interpreter ``python``. ``baselines``: time
    the in-process ``pure_torch`` and ``grid_sample`` DCNs too. ``autocast``: add the
    autocast rows (key ``"autocast"``), on the DCN rows' shapes, layouts and rounds.
    ``scale``: add the scale rows (key ``"scale"``): the map and batch families (tiny ones
    with ``quick``) in ``layouts``, a third of the rounds (at least 3) after one warm-up."""
    torch.set_num_threads(threads)
    _settle_allocator()
    shapes = list(QUICK_SHAPES if quick else SHAPES)
    families = QUICK_SCALE_FAMILIES if quick else SCALE_FAMILIES
    rounds = rounds or (3 if quick else 15)
    warmup = 1 if quick else 3
    steps = len(shapes) * len(layouts) * (1 + autocast) + len(peers) + 1
    steps += (sum(map(len, families.values())) + len(families)) * len(layouts) if scale else 0
    bar = Progress(steps, enabled=progress)
    result: dict[str, Any] = {
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "fast_path": backends.numba_available() and backends.get_deform_backend() != "torch",
        "rounds": rounds,
        "dcn": [],
        "peers": {},
    }
    for shape in shapes:
        for layout in layouts:
            result["dcn"].append(bench_dcn(shape, layout, rounds, warmup, baselines))
            bar.step(f"DCNv2 {shape} {layout}")
    with peer_inputs(shapes if peers else []) as inputs:
        for name, python in peers:
            result["peers"][name] = run_peer(name, python, inputs, max(3, rounds // 2), 1)
            bar.step(f"{name} peer")
    # the ImgConvGroup row takes 3x the DCN rows' rounds (1x with quick), the conv wrapper
    # rows 4x that: their differences are microseconds on milliseconds
    result["wrappers"] = bench_wrappers(rounds if quick else 3 * rounds, warmup, quick)
    bar.step("wrappers")
    if autocast:
        result["autocast"] = []
        for shape in shapes:
            for layout in layouts:
                result["autocast"].append(bench_autocast(shape, layout, rounds, warmup))
                bar.step(f"autocast {shape} {layout}")
    if scale:
        result["scale"] = _scale(families, layouts, max(3, rounds // 3), bar)
    return result


def _settle_allocator() -> None:
    """Allocate and free one 16 MiB buffer before any timing, as a long-running process
    has long done. glibc's malloc serves large blocks by ``mmap`` until a freed one raises
    that threshold, and trims its heap back to the kernel above twice the threshold: in a
    fresh process the first shape's calls would pay fresh pages each time (torch's dense
    NCHW conv at 2,64,56: ~1,100 page faults and 2.0-2.3 ms a call, against 66 and
    1.05-1.08 ms after this), and only that row, for both contenders."""
    torch.empty(16 << 20, dtype=torch.uint8).fill_(0)


def _scale(
    families: dict[str, tuple[tuple[int, int, int], ...]],
    layouts: Sequence[str],
    rounds: int,
    bar: Progress,
) -> dict[str, Any]:
    """The scale rows of each family's shapes, then the thread-scaling rows of each
    family's largest shape, in each layout; one warm-up each."""
    res: dict[str, Any] = {"rounds": rounds, "rows": [], "threads": []}
    for layout in layouts:
        for family, shapes in families.items():
            for shape in shapes:
                res["rows"].append(bench_scale(family, shape, layout, rounds, 1))
                bar.step(f"scale {shape} {layout}")
            res["threads"].append(bench_threads(family, shapes[-1], layout, rounds, 1))
            bar.step(f"threads {shapes[-1]} {layout}")
    return res
