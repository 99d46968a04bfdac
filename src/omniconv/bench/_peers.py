"""The bench's side of the peers (see ``peers/_protocol.py`` for theirs): write each shape's
data once, run each peer in its own interpreter on it, read the timings back and check the
peer's outputs against omniconv's on the same data."""

from __future__ import annotations

import contextlib
import json
import os
import pkgutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from ..functional import deform_conv2d
from . import peers
from ._data import Data, make_data

__all__ = [
    "AGREEMENT_RTOL",
    "PeerInput",
    "agreement",
    "available_peers",
    "comparable",
    "peer_inputs",
    "run_peer",
]

#: the directory that holds the ``peers`` package: the peer interpreters import it from here
PEERS_ROOT = Path(peers.__file__).resolve().parent.parent

#: a peer agrees when, for its output and each gradient, max |peer - omniconv| is at most
#: this fraction of max |omniconv| (float32 sums of up to 9 * 256 terms, in other orders)
AGREEMENT_RTOL = 1e-4


def available_peers() -> list[str]:
    """The peers this bench knows (one module each in ``omniconv/bench/peers``)."""
    return sorted(m.name for m in pkgutil.iter_modules(peers.__path__) if m.name[0] != "_")


@dataclass
class PeerInput:
    """One shape's data, saved for the peers, and omniconv's results on it (computed on
    first use, per op)."""

    shape: tuple[int, int, int]
    path: str
    data: Data
    _ours: dict[str, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)

    def ours(self, op: str) -> dict[str, np.ndarray]:
        """omniconv's output and gradients for ``op`` (``"DCNv2"``, or ``"DCNv1"``: no mask),
        named as the peers name theirs."""
        if op not in self._ours:
            names = ("x", "weight", "bias", "offset") + (("mask",) if op == "DCNv2" else ())
            t = {k: getattr(self.data, k).detach().clone().requires_grad_() for k in names}
            out = deform_conv2d(t["x"], t["offset"], t["weight"], t["bias"], 1, 1, 1, t.get("mask"))
            out.backward(self.data.grad)
            grads = {f"grad_{k}": v.grad.numpy() for k, v in t.items() if v.grad is not None}
            self._ours[op] = {"output": out.detach().numpy(), **grads}
        return self._ours[op]


@contextlib.contextmanager
def peer_inputs(shapes: list[tuple[int, int, int]]) -> Iterator[list[PeerInput]]:
    """The data of each shape (seed 0, NCHW: what the bench's NCHW rows run on), in
    ``.npz`` files that live as long as the block."""
    with tempfile.TemporaryDirectory(prefix="omniconv-bench-") as tmp:
        inputs = []
        for i, shape in enumerate(shapes):
            data = make_data(shape, seed=0)
            path = os.path.join(tmp, f"data{i}.npz")
            np.savez(path, **cast(dict[str, Any], data.arrays()))
            inputs.append(PeerInput(shape, path, data))
        yield inputs


def comparable(data: Data, border: str) -> dict[str, np.ndarray | None]:
    """Where a peer's results can be held to omniconv's: everywhere (``None``) for the
    output and each gradient when the peer samples the border as omniconv does; for a
    ``"clamp"`` border, the output pixels all of whose samples lie inside
    [0, H - 1) x [0, W - 1), the offset gradient of the samples that do, and the bias
    gradient (the input and weight gradients gather from every sample: not compared)."""
    names = ("output", "grad_x", "grad_weight", "grad_bias", "grad_offset", "grad_mask")
    if border == "zeros":
        return dict.fromkeys(names)
    if border != "clamp":
        raise ValueError(f"a peer's border is 'zeros' or 'clamp', got {border!r}")
    off = data.offset.numpy()  # (N, 2*9, H, W): 3x3, stride 1, padding 1, one group
    h, w = off.shape[2:]
    i, j = np.divmod(np.arange(9), 3)
    ys = np.arange(h)[:, None] - 1 + i[:, None, None] + off[:, 0::2]  # (N, 9, H, W)
    xs = np.arange(w) - 1 + j[:, None, None] + off[:, 1::2]
    inside = (ys >= 0) & (ys < h - 1) & (xs >= 0) & (xs < w - 1)
    return {
        "output": inside.all(axis=1, keepdims=True),
        "grad_offset": np.repeat(inside, 2, axis=1),
        "grad_bias": None,
    }


def agreement(
    theirs: Mapping[str, np.ndarray],
    ours: Mapping[str, np.ndarray],
    where: Mapping[str, np.ndarray | None],
) -> dict[str, Any]:
    """Per array both have and ``where`` names: max |theirs - ours| over the entries
    ``where`` selects (all for None) / max |ours| (None where the shapes differ); ``ok``
    when the output is among them and each is within :data:`AGREEMENT_RTOL`."""
    rel: dict[str, float | None] = {}
    for k, region in where.items():
        if k not in theirs or k not in ours:
            continue
        t, v = np.asarray(theirs[k], dtype=np.float64), ours[k]
        if t.shape != v.shape:
            rel[k] = None
            continue
        diff = np.abs(t - v) if region is None else np.abs(t - v)[np.broadcast_to(region, t.shape)]
        scale = max(float(np.abs(v).max(initial=0.0)), float(np.finfo(np.float32).tiny))
        rel[k] = float(diff.max(initial=0.0)) / scale
    ok = "output" in rel and all(r is not None and r <= AGREEMENT_RTOL for r in rel.values())
    return {"rel_diff": rel, "rtol": AGREEMENT_RTOL, "ok": ok}


def _env() -> dict[str, str]:
    """The peer's environment: torch's thread count, no GPU, and only the peers package on
    ``PYTHONPATH`` (this interpreter's path means nothing to the peer's)."""
    threads = str(torch.get_num_threads())
    env = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    env.update(CUDA_VISIBLE_DEVICES="", PYTHONPATH=str(PEERS_ROOT))
    return env


def run_peer(
    peer: str,
    python: str,
    inputs: list[PeerInput],
    rounds: int,
    warmup: int,
    timeout: float = 1800,
) -> dict[str, Any]:
    """Run ``peer`` (a name from :func:`available_peers`, or the path of a ``.py`` file
    defining ``build``) in the interpreter ``python`` on ``inputs``.

    Returns ``{"python", "framework", "rows"}``, each row with the peer's timings and its
    ``agreement`` with omniconv, or ``{"python", "error"}`` when the peer did not run."""
    with tempfile.TemporaryDirectory(prefix="omniconv-peer-") as tmp:
        cases: list[dict[str, Any]] = [
            {"shape": list(i.shape), "data": i.path, "outputs": os.path.join(tmp, f"out{k}.npz")}
            for k, i in enumerate(inputs)
        ]
        result_path = os.path.join(tmp, "result.json")
        spec = {"peer": peer, "rounds": rounds, "warmup": warmup, "cases": cases}
        spec["result"] = result_path
        spec_path = os.path.join(tmp, "spec.json")
        with open(spec_path, "w") as f:
            json.dump(spec, f)
        try:
            proc = subprocess.run(
                [python, "-m", "peers", spec_path],
                capture_output=True,
                text=True,
                env=_env(),
                cwd=tmp,
                timeout=timeout,
                check=False,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return {"python": python, "error": repr(exc)}
        if not os.path.exists(result_path):
            tail = (proc.stderr or proc.stdout or f"exit status {proc.returncode}")[-600:]
            return {"python": python, "error": tail}
        try:
            with open(result_path) as f:
                result = json.load(f)
            if not isinstance(result, dict) or not isinstance(result.get("rows"), list):
                raise ValueError("not an object with a list of rows")
        except (ValueError, RecursionError) as exc:  # a peer that died while writing it
            return {"python": python, "error": f"{result_path}: unreadable result ({exc})"}
        for row, case, inp in zip(result["rows"], cases, inputs, strict=True):
            if "error" not in row:
                where = comparable(inp.data, row["border"])
                with np.load(case["outputs"]) as theirs:
                    row["agreement"] = agreement(theirs, inp.ours(row["op"]), where)
    return {"python": python, **result}
