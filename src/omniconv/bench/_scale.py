"""The scale rows (``--scale``): forward+backward time and peak memory of omniconv's DCNv2
and the dense conv as the map grows (one segmentation-size image) and as the batch grows,
and the speedup from 1 to 2 threads at each family's largest shape.

Time per megapixel of output (N * H_out * W_out / 1e6) shows whether the DCN's time grows
linearly with the pixels. Peak memory is measured as the DCN rows measure it; the DCN's
excess over the dense conv is set beside the bytes of the tensors the DCN has and the dense
conv has not (offset, mask and their gradients; the inputs exist before the measured call,
so only the gradients, half of those bytes, can count in its peak)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ._contenders import ForwardBackward, contenders
from ._data import make_data
from ._dcn import forward_backward_peak_memory
from .peers._timing import interleaved, ratio

__all__ = ["SCALE_THREADS", "bench_scale", "bench_threads"]

#: the thread counts of the thread-scaling rows: the speedup is the first's time / the last's
SCALE_THREADS = (1, 2)


def bench_scale(
    family: str, shape: tuple[int, int, int], layout: str, rounds: int, warmup: int
) -> dict[str, Any]:
    """One shape of a family in one layout: dense and omniconv forward+backward in
    interleaved rounds, then the peak memory of one forward+backward of each."""
    data = make_data(shape, seed=0, channels_last=layout == "channels_last")
    fns = contenders(baselines=False)
    res = interleaved({k: ForwardBackward(fn, data) for k, fn in fns.items()}, rounds, warmup)
    n, _, ho, wo = data.offset.shape  # the offset has the output's size
    megapixels = n * ho * wo / 1e6
    peak = {k: forward_backward_peak_memory(fns[k], data) for k in ("dense", "omniconv")}
    own = (data.offset, data.mask)  # and their gradients, of the same size
    return {
        "family": family,
        "shape": list(shape),
        "layout": layout,
        "rounds": rounds,
        "forward_backward": res,
        "ratio": ratio(res["omniconv"], res["dense"]),
        "megapixels": megapixels,
        "omniconv_ms_per_megapixel": res["omniconv"]["median_ms"] / megapixels,
        "peak_memory_bytes": peak,
        "excess_bytes": peak["omniconv"] - peak["dense"],
        "offset_mask_bytes": 2 * sum(t.numel() * t.element_size() for t in own),
    }


def _at_threads(run: Callable[[], Any], threads: int) -> Callable[[], Any]:
    """``run`` at ``threads`` threads (setting the count takes microseconds)."""

    def call() -> Any:
        torch.set_num_threads(threads)
        return run()

    return call


def bench_threads(
    family: str, shape: tuple[int, int, int], layout: str, rounds: int, warmup: int
) -> dict[str, Any]:
    """Dense and omniconv forward+backward at each of :data:`SCALE_THREADS` threads, each
    contender's counts in interleaved rounds of their own; the speedup is the median over
    rounds of the time at the fewest threads / the time at the most. Restores the thread
    count it found."""
    data = make_data(shape, seed=0, channels_last=layout == "channels_last")
    row: dict[str, Any] = {
        "family": family,
        "shape": list(shape),
        "layout": layout,
        "rounds": rounds,
        "threads": list(SCALE_THREADS),
        "forward_backward": {},
        "speedup": {},
    }
    before = torch.get_num_threads()
    try:
        for name, fn in contenders(baselines=False).items():
            runs = {str(t): _at_threads(ForwardBackward(fn, data), t) for t in SCALE_THREADS}
            res = interleaved(runs, rounds, warmup)
            row["forward_backward"][name] = res
            lo, hi = (str(t) for t in (SCALE_THREADS[0], SCALE_THREADS[-1]))
            row["speedup"][name] = ratio(res[lo], res[hi])
    finally:
        torch.set_num_threads(before)
    return row
