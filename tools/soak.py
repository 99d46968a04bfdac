"""Soak: many forward + backward calls from several Python threads at once.

    python tools/soak.py [--calls 10000] [--threads 4] [--max-growth-mib 64]

Cases (mixed shapes): omniconv's deformable conv (DCNv2 and DCNv1, float32 and float64,
channels_last, batch 0, groups and deformable groups, stride / padding / dilation),
``Conv2d``, ``ConvTranspose2d`` and two front-end layers (Paddle ``Conv2D``,
torchvision ``DeformConv2d``). Each case's output and gradients (input, offset, mask,
weight, bias: ``torch.autograd.grad``, so the shared modules are never written to) are
computed serially first (at ``--reference-threads`` torch threads: by default the
current count); then ``--calls`` calls cycle through the cases from ``--threads`` Python
threads and every result is compared with the serial one, bit for bit (``--rtol`` to
allow a relative difference instead).

Checks, each a failure (exit status 1) when it does not hold:

* no call raises;
* no result differs from the serial one (beyond ``--rtol``);
* the resident set size (RSS, sampled every 20 ms during the run) at the end exceeds
  the RSS after warm-up (one threaded pass over every case, after the serial pass) by
  at most ``--max-growth-mib`` MiB.

Prints a summary: calls, seconds, RSS at start / after warm-up / peak / end, mismatches.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import omniconv.nn as onn
from omniconv.compat.paddle import nn as paddle_nn
from omniconv.compat.torchvision import ops as tv_ops


def rss_bytes() -> int:
    """The process's resident set size now (Linux: /proc/self/statm), or its peak where
    /proc is missing."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # pragma: no cover - not Linux
        import resource

        scale = 1 if sys.platform == "darwin" else 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


@dataclass
class Case:
    """One layer and its inputs; ``run()`` returns the output and the gradients."""

    name: str
    module: torch.nn.Module
    inputs: dict[str, torch.Tensor]  # leaf tensors the call differentiates
    call: Callable[[torch.nn.Module, dict[str, torch.Tensor]], torch.Tensor]

    def run(self) -> list[torch.Tensor]:
        inputs = {  # fresh leaves, in each input's layout (channels_last stays)
            k: v.detach().clone(memory_format=torch.preserve_format).requires_grad_(True)
            for k, v in self.inputs.items()
        }
        out = self.call(self.module, inputs)
        params = [p for p in self.module.parameters() if p.requires_grad]
        wrt = [*inputs.values(), *params]
        g = torch.Generator().manual_seed(7)
        grad_out = torch.randn(out.shape, generator=g, dtype=out.dtype).to(
            memory_format=torch.contiguous_format
        )
        grads = torch.autograd.grad(out, wrt, grad_out, allow_unused=True)
        return [out.detach()] + [
            torch.zeros_like(w) if d is None else d.detach()
            for w, d in zip(wrt, grads, strict=True)
        ]


def _deform(
    name: str,
    *,
    n: int = 2,
    cin: int = 8,
    cout: int = 8,
    size: int = 12,
    k: int = 3,
    stride: int = 1,
    padding: int = 1,
    dilation: int = 1,
    groups: int = 1,
    dg: int = 1,
    modulated: bool = True,
    dtype: torch.dtype = torch.float32,
    channels_last: bool = False,
    seed: int = 0,
) -> Case:
    torch.manual_seed(seed)
    m = onn.DeformConv2d(
        cin, cout, k, stride, padding, dilation, groups=groups, deformable_groups=dg,
        modulated=modulated, dtype=dtype,
    )  # fmt: skip
    ho = (size + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    x = torch.randn(n, cin, size, size, dtype=dtype)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    inputs = {"input": x, "offset": torch.randn(n, 2 * dg * k * k, ho, ho, dtype=dtype) * 2}
    if modulated:
        inputs["mask"] = torch.rand(n, dg * k * k, ho, ho, dtype=dtype)
    return Case(name, m, inputs, lambda mod, i: mod(i["input"], i["offset"], i.get("mask")))


def _plain(name: str, module: torch.nn.Module, shape: tuple[int, ...], **kw: Any) -> Case:
    x = torch.randn(shape, dtype=kw.get("dtype", torch.float32))
    if kw.get("channels_last"):
        x = x.to(memory_format=torch.channels_last)
    return Case(name, module, {"input": x}, lambda mod, i: mod(i["input"]))


def build_cases() -> list[Case]:
    torch.manual_seed(0)
    cases = [
        _deform("deform v2 f32"),
        _deform("deform v1 f32", modulated=False, seed=1),
        _deform("deform v2 f64", dtype=torch.float64, seed=2),
        _deform("deform v2 channels_last", channels_last=True, seed=3),
        _deform("deform v2 batch 0", n=0, seed=4),
        _deform("deform v2 groups 2 dg 2 stride 2", groups=2, dg=2, stride=2, seed=5),
        _deform(
            "deform v1 f64 dilation 2",
            modulated=False,
            dilation=2,
            padding=2,
            dtype=torch.float64,
            seed=6,
        ),
        _deform("deform v2 k1 wide", cin=4, cout=16, size=17, k=1, padding=0, seed=7),
    ]
    torch.manual_seed(10)
    cases += [
        _plain("Conv2d f32", onn.Conv2d(8, 8, 3, padding=1), (2, 8, 12, 12)),
        _plain(
            "Conv2d f64 channels_last",
            onn.Conv2d(8, 4, 3, stride=2, dtype=torch.float64),
            (2, 8, 13, 13),
            dtype=torch.float64,
            channels_last=True,
        ),
        _plain(
            "ConvTranspose2d f32", onn.ConvTranspose2d(8, 4, 3, stride=2, padding=1), (2, 8, 7, 7)
        ),
        _plain("ConvTranspose2d batch 0", onn.ConvTranspose2d(4, 4, 2, stride=2), (0, 4, 5, 5)),
        _plain("paddle Conv2D", paddle_nn.Conv2D(8, 8, 3, padding="SAME"), (2, 8, 12, 12)),
    ]
    tv = tv_ops.DeformConv2d(8, 8, 3, padding=1)
    x = torch.randn(2, 8, 12, 12)
    tv_in = {"input": x, "offset": torch.randn(2, 18, 12, 12), "mask": torch.rand(2, 9, 12, 12)}
    cases.append(
        Case(
            "torchvision DeformConv2d",
            tv,
            tv_in,
            lambda m, i: m(i["input"], i["offset"], i["mask"]),
        )
    )
    return cases


def _differs(a: torch.Tensor, b: torch.Tensor, rtol: float) -> float | None:
    """None when ``a`` matches ``b`` (bit for bit, or within ``rtol`` of the largest
    magnitude); else the largest relative difference."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return float("inf")
    if torch.equal(a, b) or a.numel() == 0:
        return None
    scale = b.abs().max().item() or 1.0
    rel = ((a - b).abs().max() / scale).item()
    return None if rel <= rtol else rel


@dataclass
class Outcome:
    calls: int = 0
    mismatches: int = 0
    errors: int = 0
    worst: float = 0.0


def soak(cases: list[Case], refs: list[list[torch.Tensor]], calls: int, threads: int,
         rtol: float, first_error: list[str]) -> Outcome:  # fmt: skip
    counter = itertools.count()
    outcome = Outcome()
    lock = threading.Lock()
    where: dict[str, int] = {}

    def worker() -> None:
        while True:
            i = next(counter)
            if i >= calls:
                return
            case_index = i % len(cases)
            try:
                got = cases[case_index].run()
                bad = [
                    d
                    for d in (
                        _differs(a, b, rtol) for a, b in zip(got, refs[case_index], strict=True)
                    )
                    if d is not None
                ]
            except Exception as err:
                with lock:
                    outcome.calls += 1
                    outcome.errors += 1
                    if not first_error:
                        first_error.append(f"{cases[case_index].name}: {type(err).__name__}: {err}")
                continue
            with lock:
                outcome.calls += 1
                if bad:
                    outcome.mismatches += 1
                    outcome.worst = max(outcome.worst, *bad)
                    where[cases[case_index].name] = where.get(cases[case_index].name, 0) + 1

    pool = [threading.Thread(target=worker, name=f"soak-{t}") for t in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if where:
        print("  mismatching cases:", ", ".join(f"{k} ({v})" for k, v in sorted(where.items())))
    return outcome


class Sampler:
    """RSS sampled every ``period`` seconds on a thread of its own."""

    def __init__(self, period: float = 0.02) -> None:
        self.period, self.peak, self._stop = period, rss_bytes(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.peak = max(self.peak, rss_bytes())

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=10_000, help="threaded calls (10000)")
    p.add_argument("--threads", type=int, default=4, help="Python threads (4)")
    p.add_argument(
        "--rtol", type=float, default=0.0, help="allowed relative difference (0: bit for bit)"
    )
    p.add_argument(
        "--reference-threads",
        type=int,
        default=None,
        help="torch threads for the serial reference (default: the current count); another "
        "count compares results across thread counts",
    )
    p.add_argument("--max-growth-mib", type=float, default=64.0,
                   help="allowed RSS growth from after warm-up to the end, MiB (64)")  # fmt: skip
    args = p.parse_args(argv)
    if args.calls < 1 or args.threads < 1 or (args.reference_threads or 1) < 1:
        p.error("--calls, --threads and --reference-threads must be at least 1")

    mib = 1024 * 1024
    start = rss_bytes()
    t0 = time.perf_counter()
    cases = build_cases()
    threads_now = torch.get_num_threads()
    torch.set_num_threads(args.reference_threads or threads_now)
    refs = [c.run() for c in cases]  # serial
    again = [c.run() for c in cases]  # serial, again: run-to-run determinism
    torch.set_num_threads(threads_now)
    serial_diffs = sum(
        any(_differs(a, b, 0.0) is not None for a, b in zip(x, y, strict=True))
        for x, y in zip(refs, again, strict=True)
    )
    first_error: list[str] = []
    warm = soak(cases, refs, len(cases) * args.threads, args.threads, args.rtol, first_error)
    after_warmup = rss_bytes()
    with Sampler() as sampler:
        t1 = time.perf_counter()
        out = soak(cases, refs, args.calls, args.threads, args.rtol, first_error)
        seconds = time.perf_counter() - t1
    end = rss_bytes()
    growth = (end - after_warmup) / mib

    print(
        f"soak: {out.calls} calls of {len(cases)} cases from {args.threads} threads in "
        f"{seconds:.1f} s ({out.calls / seconds:.0f} calls/s; torch threads "
        f"{torch.get_num_threads()}; total with setup {time.perf_counter() - t0:.1f} s)"
    )
    print(
        f"  RSS MiB: start {start / mib:.0f}, after warm-up {after_warmup / mib:.0f}, "
        f"peak {sampler.peak / mib:.0f}, end {end / mib:.0f} "
        f"(growth {growth:+.1f}, allowed {args.max_growth_mib:.0f})"
    )
    tol = "bit for bit" if args.rtol == 0 else f"rtol {args.rtol:g}"
    ref_threads = args.reference_threads or threads_now
    print(
        f"  vs serial at {ref_threads} torch threads ({tol}): {out.mismatches} mismatching "
        f"calls (worst relative {out.worst:.3g}); warm-up {warm.mismatches}; "
        f"errors {out.errors + warm.errors}; serial run-to-run differences: {serial_diffs} cases"
    )
    if first_error:
        print(f"  first error: {first_error[0]}")
    failed = (
        out.errors + warm.errors > 0
        or out.mismatches + warm.mismatches > 0
        or serial_diffs > 0
        or growth > args.max_growth_mib
        or out.calls != args.calls
    )
    print("soak: FAILED" if failed else "soak: OK")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
