"""The peer side of ``omniconv bench``'s peer protocol (standard library and numpy only).

The bench writes, for each shape, the float32 arrays ``x, weight, bias, offset, mask,
grad`` (NCHW, the very data its own contenders run on) to an ``.npz`` file, and a JSON
spec naming the peer, the rounds and, per shape, that data file and where to put the
peer's outputs. It then runs ``python -m peers SPEC`` in the peer's interpreter with
``omniconv/bench`` first on ``PYTHONPATH``; this module reads the spec, imports the peer
(``peers.<name>``, or a ``.py`` file given by path) and, per shape, calls the peer's

    def build(data: dict[str, numpy.ndarray]) -> Case

times ``Case.forward`` (and ``Case.forward_backward`` if the peer has one) with
:func:`._timing.interleaved`, saves ``Case.outputs()`` for the bench to check against
omniconv's, and writes the result JSON the spec names. An error at one shape is recorded
in that shape's row; the other shapes still run.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from ._timing import interleaved, ratio

__all__ = ["Case", "Op", "main", "run", "threads"]


Op = Callable[[dict[str, Any]], Any]


@dataclass
class Case:
    """One shape, set up in the peer's framework: its two convs and how to run them.

    ``dense`` and ``deform`` take a dict of the framework's tensors (``x``, ``weight``,
    ``bias``, ``offset``, ``mask``) and apply the framework's dense conv and deformable conv
    (3x3, stride 1, padding 1, bias). ``forward(op)`` and ``forward_backward(op)`` (None:
    the peer times the forward only) return the timed call: ``op`` on the framework's
    tensors, waiting for the result; the backward takes the upstream gradient ``grad`` and
    leaves the gradients that ``grads()`` returns (keys as the tensors', numpy arrays).
    ``to_numpy`` turns what ``forward(deform)()`` returns into a numpy array.

    ``op`` is ``"DCNv2"`` when the deformable conv uses ``mask``, ``"DCNv1"`` when it
    ignores it (the bench then checks it against omniconv's DCNv1). ``border`` is how it
    samples near the image border: ``"zeros"`` as omniconv (and torchvision, Paddle, mmcv):
    bilinear over the four corners, off-image corners zero, so a sample in (-1, 0) still
    weighs row 0; ``"clamp"`` as the MSRA DCNv1 code: a sample outside [0, H) x [0, W)
    reads zero and one past the last row or column reads that row or column; the bench
    then compares only where the two agree by definition (see ``_peers.comparable``)."""

    framework: str
    op: str
    dense: Op
    deform: Op
    forward: Callable[[Op], Callable[[], Any]]
    to_numpy: Callable[[Any], np.ndarray]
    forward_backward: Callable[[Op], Callable[[], Any]] | None = None
    grads: Callable[[], dict[str, np.ndarray]] | None = None
    border: str = "zeros"

    def outputs(self) -> dict[str, np.ndarray]:
        """The deformable conv's output and gradients, as the bench compares them."""
        out = {"output": self.to_numpy(self.forward(self.deform)())}
        if self.forward_backward is not None and self.grads is not None:
            self.forward_backward(self.deform)()
            out.update({f"grad_{k}": v for k, v in self.grads().items()})
        return out


def threads() -> int:
    """The bench's thread count, for peers that size their thread pool explicitly (the bench
    sets ``OMP_NUM_THREADS`` to torch's thread count in the peer's environment)."""
    return int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)


def _load(peer: str) -> ModuleType:
    if not peer.endswith(".py"):
        return importlib.import_module(f"{__package__}.{peer}")
    spec = importlib.util.spec_from_file_location("omniconv_bench_peer", peer)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load a peer from {peer!r}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_case(build: Callable[..., Case], item: dict[str, Any], spec: dict[str, Any]) -> dict:
    row: dict[str, Any] = {"shape": item["shape"]}
    try:
        with np.load(item["data"]) as f:
            data = {k: f[k] for k in f.files}
        case = build(data)
        timing = spec["rounds"], spec["warmup"]
        row.update(framework=case.framework, op=case.op, border=case.border)
        for key, run in (("forward", case.forward), ("forward_backward", case.forward_backward)):
            if run is None:
                continue
            t = interleaved({"dense": run(case.dense), "deform": run(case.deform)}, *timing)
            row[key] = t
            row[key + "_ratio"] = ratio(t["deform"], t["dense"])
        outputs: dict[str, Any] = case.outputs()
        np.savez(item["outputs"], **outputs)
    except Exception as exc:  # one shape's failure (e.g. out of memory) is that row's result
        row["error"] = f"{type(exc).__name__}: {exc}"[:300]
    return row


def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Run every shape of ``spec``; the result is what the bench reads back."""
    build = _load(spec["peer"]).build
    rows = [_run_case(build, item, spec) for item in spec["cases"]]
    framework = next((r["framework"] for r in rows if "framework" in r), None)
    return {"framework": framework, "rows": rows}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m peers SPEC.json", file=sys.stderr)
        return 2
    with open(argv[0]) as f:
        spec = json.load(f)
    result = run(spec)
    with open(spec["result"], "w") as f:
        json.dump(result, f)
    return 0
