"""The DCN rows: every contender against the dense conv, forward and forward+backward,
and the peak memory of dense and omniconv."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..backends import cached_workspace_bytes, release_workspace
from ._contenders import Contender, ForwardBackward, contenders, forward
from ._data import Data, make_data
from ._memory import peak_memory
from .peers._timing import interleaved, ratio

__all__ = ["PASSES", "bench_dcn", "forward_backward_peak_memory"]

PASSES: dict[str, Callable[[Contender, Data], Callable[[], Any]]] = {
    "forward": forward,
    "forward_backward": ForwardBackward,
}


def bench_dcn(
    shape: tuple[int, int, int], layout: str, rounds: int, warmup: int, baselines: bool = True
) -> dict[str, Any]:
    """One shape in one layout (``"NCHW"`` or ``"channels_last"``, the input's and the
    upstream gradient's memory format).

    Each contender is timed against ``dense`` in rounds of its own, so that a slow,
    memory-hungry baseline never changes the caches and threads another contender is
    measured in (omniconv's ratio is the same with or without the baselines); the dense
    times shown are those of omniconv's rounds."""
    data = make_data(shape, seed=0, channels_last=layout == "channels_last")
    fns = contenders(baselines)
    row: dict[str, Any] = {"shape": list(shape), "layout": layout, "rounds": rounds}
    row.update({k: {} for key in PASSES for k in (key, key + "_ratio")})
    for name in (k for k in fns if k != "dense"):
        for key, make in PASSES.items():
            pair = {k: make(fns[k], data) for k in ("dense", name)}
            res = interleaved(pair, rounds, warmup)
            row[key].setdefault("dense", res["dense"])
            row[key][name] = res[name]
            row[key + "_ratio"][name] = ratio(res[name], res["dense"])
    row["peak_memory_bytes"] = {
        k: forward_backward_peak_memory(fns[k], data) for k in ("dense", "omniconv")
    }
    return row


def forward_backward_peak_memory(fn: Contender, data: Data) -> int:
    """Peak memory of one forward+backward of ``fn`` on ``data``, after a warm-up one,
    plus the workspace omniconv's CPU kernels keep between calls (made before the
    measured call, so the profiler does not see it; 0 unless ``fn`` ran them)."""
    release_workspace()
    run = ForwardBackward(fn, data)
    run()  # warm-up (JIT); then free its gradients *before* measuring, or their
    run.clear()  # release would count against the peak
    return peak_memory(run) + cached_workspace_bytes()
