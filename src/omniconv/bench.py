"""``omniconv bench``: deformable conv (and the conv wrappers) against dense torch convs.

Every time is the median of ``repeats`` interleaved rounds (each contender runs once per
round, in an order that rotates from round to round, in the same process, after warm-up
runs that also trigger any JIT compilation); a ratio is the median over rounds of the two
times measured in the same round, so a noisy neighbour hits numerator and denominator
alike. Each deformable-conv contender is timed against the dense conv in rounds of its
own, so a slow peer's cache and thread footprint never lands on another's timings. The
conv-wrapper rows, where both sides run the very same torch op and only the wrapper's
microseconds differ, take 4x the rounds. Peers that live in other interpreters (Paddle,
MXNet) run the same data (same shapes, same seed, float32) in a subprocess and report
their ratio to their own dense conv.

Peak memory: the highest sum of live CPU tensor allocations made during one
forward+backward (``torch.profiler`` with ``profile_memory=True``: its ``[memory]`` events
are summed in time order). Memory held by BLAS/oneDNN internals outside torch's
allocator is not counted, for either contender; the numba kernels' buffers all come from
torch (they allocate only a few scalars a thread for BLAS arguments).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

import torch
import torch.nn.functional as TF
from torch import Tensor

__all__ = ["SHAPES", "format_table", "grid_sample_deform_conv2d", "peak_memory", "run_bench"]

#: (N, C, H=W) of the DCNv2 3x3 benchmark (C_in = C_out, padding 1)
SHAPES: tuple[tuple[int, int, int], ...] = ((2, 64, 56), (4, 128, 28), (8, 256, 14), (1, 256, 64))
QUICK_SHAPES: tuple[tuple[int, int, int], ...] = ((2, 32, 20),)
MIB = 1 << 20


# --------------------------------------------------------------------------- helpers


class Progress:
    """A plain-text progress bar on stderr (one line, redrawn)."""

    def __init__(self, total: int, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.t0 = time.perf_counter()

    def step(self, label: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        width = 28
        fill = int(width * self.done / self.total)
        elapsed = time.perf_counter() - self.t0
        self.stream.write(
            f"\r[{'#' * fill}{'.' * (width - fill)}] {self.done}/{self.total} "
            f"{elapsed:5.1f}s {label[:40]:<40}"
        )
        if self.done >= self.total:
            self.stream.write("\n")
        self.stream.flush()


def _interleaved(fns: dict[str, Callable[[], Any]], repeats: int, warmup: int) -> dict[str, Any]:
    """Median and min milliseconds of each function, run in turn ``repeats`` times; the
    order rotates from round to round, so no contender always runs right after the same
    other one (whose caches and idle threads it would inherit)."""
    for f in fns.values():
        for _ in range(warmup):
            f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    order = list(fns)
    for i in range(repeats):
        for k in order[i % len(order) :] + order[: i % len(order)]:
            t = time.perf_counter()
            fns[k]()
            times[k].append(1e3 * (time.perf_counter() - t))
    return {
        k: {"median_ms": statistics.median(v), "min_ms": min(v), "runs_ms": v}
        for k, v in times.items()
    }


def _ratio(num: dict[str, Any], den: dict[str, Any]) -> float:
    """Median over rounds of the ratio of two contenders timed back to back."""
    return statistics.median(a / b for a, b in zip(num["runs_ms"], den["runs_ms"], strict=True))


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Silence file descriptor 2 (the profiler library prints a line at every start and
    stop straight to it), restoring it afterwards; Python's ``sys.stderr`` is flushed
    first so nothing of ours is lost."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no usable fd 2: nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def peak_memory(fn: Callable[[], Any]) -> int:
    """Peak bytes of CPU tensor memory allocated (and still live) during ``fn()``.

    Frees of tensors allocated before the call count as negative, so ``fn`` must not
    release older tensors (e.g. last run's gradients) or the peak reads low."""
    from torch.profiler import ProfilerActivity, profile

    with (
        _native_stderr_silenced(),
        profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof,
    ):
        fn()
    # raw allocator records (every allocation and free, with its own timestamp)
    records = [
        (e.start_ns(), e.nbytes())
        for e in prof.profiler.kineto_results.events()
        if e.name() == "[memory]" and str(e.device_type()).endswith("CPU")
    ]
    records.sort()
    cur = peak = 0
    for _, nbytes in records:
        cur += nbytes
        peak = max(peak, cur)
    return peak


def grid_sample_deform_conv2d(
    x: Tensor, offset: Tensor, weight: Tensor, bias: Tensor | None, mask: Tensor | None, pad: int
) -> Tensor:
    """The usual ~30-line DCNv2 (stride 1, dilation 1, one deformable group) on
    ``grid_sample``: bilinear in normalised coordinates (inexact at integer points)."""
    n, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    ho, wo = offset.shape[2:]
    k = kh * kw
    dt, dev = x.dtype, x.device
    ys = torch.arange(ho, dtype=dt, device=dev) - pad
    xs = torch.arange(wo, dtype=dt, device=dev) - pad
    ti = torch.arange(kh, dtype=dt, device=dev).repeat_interleave(kw)
    tj = torch.arange(kw, dtype=dt, device=dev).repeat(kh)
    off = offset.view(n, k, 2, ho, wo)
    py = ti.view(1, k, 1, 1) + ys.view(1, 1, ho, 1) + off[:, :, 0]
    px = tj.view(1, k, 1, 1) + xs.view(1, 1, 1, wo) + off[:, :, 1]
    grid = torch.stack(((2 * px + 1) / w - 1, (2 * py + 1) / h - 1), dim=-1)
    col = TF.grid_sample(
        x, grid.view(n, k * ho, wo, 2), mode="bilinear", padding_mode="zeros", align_corners=False
    ).view(n, c, k, ho * wo)
    if mask is not None:
        col = col * mask.view(n, 1, k, ho * wo)
    out = torch.matmul(weight.reshape(o, c * k), col.view(n, c * k, ho * wo))
    out = out.view(n, o, ho, wo)
    return out if bias is None else out + bias.view(1, -1, 1, 1)


@dataclass
class _Data:
    x: Tensor
    weight: Tensor
    bias: Tensor
    offset: Tensor
    mask: Tensor
    grad: Tensor
    leaves: dict[str, Tensor] = field(default_factory=dict)


def _make(n: int, c: int, hw: int, seed: int, channels_last: bool) -> _Data:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, hw, hw, generator=g)
    weight = torch.randn(c, c, 3, 3, generator=g) / math.sqrt(9 * c)
    bias = torch.randn(c, generator=g)
    offset = 2 * torch.randn(n, 18, hw, hw, generator=g)
    mask = torch.rand(n, 9, hw, hw, generator=g)
    grad = torch.randn(n, c, hw, hw, generator=g)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
        grad = grad.contiguous(memory_format=torch.channels_last)
    return _Data(x, weight, bias, offset, mask, grad)


def _fwd_bwd(fn: Callable[..., Tensor], tensors: list[Tensor], grad: Tensor) -> Callable[[], Any]:
    leaves = [
        t.detach().clone(memory_format=torch.preserve_format).requires_grad_() for t in tensors
    ]

    def run() -> Any:
        clear()
        out = fn(*leaves)
        out.backward(grad)
        return out

    def clear() -> None:
        for t in leaves:
            t.grad = None

    run.clear = clear  # type: ignore[attr-defined]
    return run


def _fwd(fn: Callable[..., Tensor], tensors: list[Tensor]) -> Callable[[], Any]:
    def run() -> Any:
        with torch.no_grad():
            return fn(*tensors)

    return run


# --------------------------------------------------------------------------- DCN rows


def _dcn_contenders(d: _Data, with_pure: bool, with_grid: bool) -> dict[str, Any]:
    from . import backends
    from .functional import deform_conv2d

    def dense(x: Tensor, w: Tensor, b: Tensor, off: Tensor, m: Tensor) -> Tensor:
        return TF.conv2d(x, w, b, 1, 1)

    def ours(x: Tensor, w: Tensor, b: Tensor, off: Tensor, m: Tensor) -> Tensor:
        return deform_conv2d(x, off, w, b, 1, 1, 1, m)

    def pure(x: Tensor, w: Tensor, b: Tensor, off: Tensor, m: Tensor) -> Tensor:
        with backends.deform_backend("torch"):
            return deform_conv2d(x, off, w, b, 1, 1, 1, m)

    def grid(x: Tensor, w: Tensor, b: Tensor, off: Tensor, m: Tensor) -> Tensor:
        return grid_sample_deform_conv2d(x, off, w, b, m, 1)

    fns = {"dense": dense, "omniconv": ours}
    if with_pure:
        fns["pure_torch"] = pure
    if with_grid:
        fns["grid_sample"] = grid
    return fns


def _bench_dcn(
    shape: tuple[int, int, int],
    channels_last: bool,
    repeats: int,
    warmup: int,
    with_pure: bool,
    with_grid: bool,
) -> dict[str, Any]:
    n, c, hw = shape
    d = _make(n, c, hw, seed=0, channels_last=channels_last)
    tensors = [d.x, d.weight, d.bias, d.offset, d.mask]
    fns = _dcn_contenders(d, with_pure, with_grid)
    row: dict[str, Any] = {
        "shape": list(shape),
        "layout": "channels_last" if channels_last else "NCHW",
        "forward": {},
        "forward_backward": {},
        "forward_ratio": {},
        "forward_backward_ratio": {},
    }
    # each contender against dense in rounds of its own: a slow, memory-hungry peer must
    # not change the caches and threads another contender is measured in (so omniconv's
    # ratio is the same with or without --no-peers); the dense times shown are from
    # omniconv's rounds
    for name in (k for k in fns if k != "dense"):
        pair = {"dense": fns["dense"], name: fns[name]}
        for key, make in (
            ("forward", lambda f: _fwd(f, tensors)),
            ("forward_backward", lambda f: _fwd_bwd(f, tensors, d.grad)),
        ):
            res = _interleaved({k: make(f) for k, f in pair.items()}, repeats, warmup)
            row[key].setdefault("dense", res["dense"])
            row[key][name] = res[name]
            row[key + "_ratio"][name] = _ratio(res[name], res["dense"])
    mem = {}
    for k in ("dense", "omniconv"):
        run = _fwd_bwd(fns[k], tensors, d.grad)
        run()  # warm-up (JIT); then free its gradients *before* measuring, or their
        run.clear()  # type: ignore[attr-defined]  # release would count against the peak
        mem[k] = peak_memory(run)
    row["peak_memory_bytes"] = mem
    return row


# --------------------------------------------------------------------------- peer interpreters

_PEER_SCRIPT = r"""
import json, sys, time, statistics, os
import numpy as np
spec = json.loads(sys.argv[1])
kind = spec["kind"]
out = []
def interleaved(fns, repeats, warmup):
    for f in fns.values():
        for _ in range(warmup):
            f()
    t = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            s = time.perf_counter(); f(); t[k].append(time.perf_counter() - s)
    med = {k: 1e3 * statistics.median(v) for k, v in t.items()}
    med["ratio"] = statistics.median(a / b for a, b in zip(t["deform"], t["dense"]))
    return med
for item in spec["shapes"]:
    data = np.load(item["path"])
    x, w, b, off, m, g = (data[k] for k in ("x", "weight", "bias", "offset", "mask", "grad"))
    if kind == "paddle":
        import paddle
        paddle.set_device("cpu")
        from paddle.vision.ops import deform_conv2d
        import paddle.nn.functional as F
        T = lambda a, grad=False: paddle.to_tensor(a, stop_gradient=not grad)
        xs, ws, bs, offs, ms, gs = T(x), T(w), T(b), T(off), T(m), T(g)
        def dense_f():
            with paddle.no_grad():
                F.conv2d(xs, ws, bs, 1, 1).numpy()
        def deform_f():
            with paddle.no_grad():
                deform_conv2d(xs, offs, ws, bs, 1, 1, 1, mask=ms).numpy()
        L = [T(a, True) for a in (x, w, b, off, m)]
        def dense_fb():
            for t in L: t.clear_gradient()
            o = F.conv2d(L[0], L[1], L[2], 1, 1); o.backward(gs); L[0].grad.numpy()
        def deform_fb():
            for t in L: t.clear_gradient()
            o = deform_conv2d(L[0], L[3], L[1], L[2], 1, 1, 1, mask=L[4]); o.backward(gs)
            L[0].grad.numpy()
    else:
        import mxnet as mx
        from mxnet import autograd
        nd = mx.nd
        A = lambda a: nd.array(a, dtype="float32")
        xs, ws, bs, offs, ms, gs = A(x), A(w), A(b), A(off), A(m), A(g)
        c_out, kh = w.shape[0], w.shape[2]
        def conv(x_, w_, b_):
            return nd.Convolution(x_, w_, b_, kernel=(kh, kh), pad=(1, 1), num_filter=c_out)
        def dcn(x_, off_, m_, w_, b_):
            # ModulatedDeformableConvolution (v2) is GPU-only in MXNet 1.x: v1 on CPU
            return nd.contrib.DeformableConvolution(
                x_, off_, w_, b_, kernel=(kh, kh), pad=(1, 1), num_filter=c_out)
        def dense_f():
            conv(xs, ws, bs).wait_to_read()
        def deform_f():
            dcn(xs, offs, ms, ws, bs).wait_to_read()
        L = [A(a) for a in (x, w, b, off, m)]
        for t in L: t.attach_grad()
        def dense_fb():
            with autograd.record():
                o = conv(L[0], L[1], L[2])
            o.backward(gs); nd.waitall()
        def deform_fb():
            with autograd.record():
                o = dcn(L[0], L[3], L[4], L[1], L[2])
            o.backward(gs); nd.waitall()
    r = {"shape": item["shape"]}
    try:
        f = interleaved({"dense": dense_f, "deform": deform_f}, spec["repeats"], spec["warmup"])
        fb = interleaved({"dense": dense_fb, "deform": deform_fb}, spec["repeats"], spec["warmup"])
        r.update(forward=f, forward_backward=fb,
                 forward_ratio=f["ratio"], forward_backward_ratio=fb["ratio"])
    except Exception as e:
        r["error"] = repr(e)[:300]
    out.append(r)
print("@@RESULT@@" + json.dumps(out))
"""


def _run_peer(
    kind: str, python: str, shapes: list[tuple[int, int, int]], repeats: int, warmup: int
) -> dict[str, Any]:
    """Paddle / MXNet DCNv2 on the same data in another interpreter (2 threads)."""
    with tempfile.TemporaryDirectory() as tmp:
        items = []
        for i, shape in enumerate(shapes):
            d = _make(*shape, seed=0, channels_last=False)
            path = os.path.join(tmp, f"shape{i}.npz")
            import numpy as np

            np.savez(
                path, x=d.x.numpy(), weight=d.weight.numpy(), bias=d.bias.numpy(),
                offset=d.offset.numpy(), mask=d.mask.numpy(), grad=d.grad.numpy(),
            )  # fmt: skip
            items.append({"shape": list(shape), "path": path})
        spec = {"kind": kind, "shapes": items, "repeats": repeats, "warmup": warmup}
        threads = str(torch.get_num_threads())
        env = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
        env.update(CUDA_VISIBLE_DEVICES="", MXNET_CPU_WORKER_NTHREADS="1")
        try:
            proc = subprocess.run(
                [python, "-c", _PEER_SCRIPT, json.dumps(spec)],
                capture_output=True, text=True, env=env, timeout=1800, check=False,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as exc:
            return {"error": repr(exc)}
    for line in proc.stdout.splitlines():
        if line.startswith("@@RESULT@@"):
            return {"rows": json.loads(line[len("@@RESULT@@") :])}
    return {"error": (proc.stderr or proc.stdout)[-600:]}


# --------------------------------------------------------------------------- wrapper rows


def _bench_wrappers(repeats: int, warmup: int, quick: bool) -> list[dict[str, Any]]:
    from . import nn as onn

    n, c, hw = (2, 16, 16) if quick else (4, 64, 56)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, c, hw, hw, generator=g)
    rows = []

    def row(name: str, ours: Callable[[], Any], native: Callable[[], Any]) -> None:
        # a wrapper's cost is microseconds on milliseconds: 4x the rounds to see it through
        # the run-to-run noise
        with torch.no_grad():
            t = _interleaved({"torch": native, "omniconv": ours}, 4 * repeats, warmup)
        rows.append(
            {
                "name": name,
                "shape": [n, c, hw],
                "torch_ms": t["torch"]["median_ms"],
                "omniconv_ms": t["omniconv"]["median_ms"],
                "ratio": _ratio(t["omniconv"], t["torch"]),
            }
        )

    ours = onn.Conv2d(c, c, 3, padding=1)
    ref = torch.nn.Conv2d(c, c, 3, padding=1)
    ref.load_state_dict(ours.state_dict())
    row("Conv2d", lambda: ours(x), lambda: ref(x))

    ours_t = onn.ConvTranspose2d(c, c, 3, stride=2, padding=1, output_padding=1)
    ref_t = torch.nn.ConvTranspose2d(c, c, 3, stride=2, padding=1, output_padding=1)
    ref_t.load_state_dict(ours_t.state_dict())
    row("ConvTranspose2d", lambda: ours_t(x), lambda: ref_t(x))

    ours_n = onn.Conv2d(c, c, 3, padding=1, layout="NHWC")
    ours_n.load_state_dict(ours.state_dict())
    x_nhwc = x.permute(0, 2, 3, 1).contiguous()
    x_cl = x.contiguous(memory_format=torch.channels_last)
    row("Conv2d NHWC", lambda: ours_n(x_nhwc), lambda: ref(x_cl).permute(0, 2, 3, 1))

    # ImgConvGroup in eval mode: BN folded vs the same layers run one by one
    gn, gc, ghw = (4, 8, 16) if quick else (16, 32, 64)
    group = onn.ImgConvGroup(
        gc, [gc, gc], pool_size=2, pool_stride=2, conv_act="relu", conv_with_batchnorm=True
    ).eval()
    gen = torch.Generator().manual_seed(1)
    for mod in group.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            assert mod.running_mean is not None and mod.running_var is not None
            with torch.no_grad():
                mod.running_mean.copy_(torch.randn(gc, generator=gen))
                mod.running_var.copy_(torch.rand(gc, generator=gen) + 0.5)
    layers = list(group)
    xg = torch.randn(gn, gc, ghw, ghw, generator=gen)

    def unfused() -> Tensor:
        y = xg
        for layer in layers:
            y = layer(y)
        return y

    with torch.no_grad():
        t = _interleaved({"unfused": unfused, "fused": lambda: group(xg)}, repeats, warmup)
        err = (group(xg) - unfused()).abs().max().item()
    rows.append(
        {
            "name": "ImgConvGroup eval (BN folded)",
            "shape": [gn, gc, ghw],
            "torch_ms": t["unfused"]["median_ms"],
            "omniconv_ms": t["fused"]["median_ms"],
            "ratio": _ratio(t["fused"], t["unfused"]),
            "speedup": _ratio(t["unfused"], t["fused"]),
            "max_abs_diff": err,
        }
    )
    return rows


# --------------------------------------------------------------------------- driver


def run_bench(
    quick: bool = False,
    repeats: int | None = None,
    layouts: tuple[str, ...] = ("NCHW", "channels_last"),
    paddle_python: str | None = None,
    mxnet_python: str | None = None,
    with_pure: bool = True,
    with_grid: bool = True,
    progress: bool = True,
    threads: int = 2,
) -> dict[str, Any]:
    torch.set_num_threads(threads)
    shapes = list(QUICK_SHAPES if quick else SHAPES)
    repeats = repeats or (3 if quick else 15)
    warmup = 1 if quick else 3
    peers = [(k, p) for k, p in (("paddle", paddle_python), ("mxnet", mxnet_python)) if p]
    bar = Progress(len(shapes) * len(layouts) + len(peers) + 1, enabled=progress)
    from . import backends

    result: dict[str, Any] = {
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "fast_path": backends.numba_available() and backends.get_deform_backend() != "torch",
        "repeats": repeats,
        "dcn": [],
        "peers": {},
    }
    for shape in shapes:
        for layout in layouts:
            row = _bench_dcn(
                shape, layout == "channels_last", repeats, warmup, with_pure, with_grid
            )
            result["dcn"].append(row)
            bar.step(f"DCNv2 {shape} {layout}")
    for kind, python in peers:
        result["peers"][kind] = _run_peer(kind, python, shapes, max(3, repeats // 2), 1)
        bar.step(f"{kind} peer")
    result["wrappers"] = _bench_wrappers(repeats if quick else 3 * repeats, warmup, quick)
    bar.step("wrappers")
    return result


def format_table(result: dict[str, Any]) -> str:
    peers = result.get("peers", {})
    peer_rows = {
        kind: {tuple(r["shape"]): r for r in p.get("rows", [])} for kind, p in peers.items()
    }
    lines = [
        f"DCNv2 3x3, padding 1, C_in = C_out, float32, {result['threads']} threads "
        f"(fast path: {'numba' if result['fast_path'] else 'off'}); "
        "median ms; ratio = median over rounds of time / dense conv2d of the same shape, run "
        "back to back",
    ]
    extra = [
        k
        for k in ("pure_torch", "grid_sample")
        if result["dcn"] and k in result["dcn"][0]["forward"]
    ]
    head = ["N,C,H=W", "layout", "pass", "dense ms", "omniconv ms", "ratio"]
    head += [f"{k} ratio" for k in extra] + [f"{k} ratio" for k in peer_rows]
    rows = [head]
    for r in result["dcn"]:
        for key, label in (("forward", "fwd"), ("forward_backward", "fwd+bwd")):
            cells = [
                "{},{},{}".format(*r["shape"]),
                r["layout"],
                label,
                f"{r[key]['dense']['median_ms']:.2f}",
                f"{r[key]['omniconv']['median_ms']:.2f}",
                f"{r[key + '_ratio']['omniconv']:.2f}x",
            ]
            cells += [f"{r[key + '_ratio'][k]:.2f}x" for k in extra]
            for kind in peer_rows:
                pr = peer_rows[kind].get(tuple(r["shape"]))
                if r["layout"] != "NCHW" or pr is None:
                    cells.append("-")
                elif "error" in pr:
                    cells.append("error")
                else:
                    cells.append(f"{pr[key + '_ratio']:.2f}x")
            rows.append(cells)
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    for row in rows:
        lines.append("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
    lines.append("")
    lines.append("peak memory of one forward+backward (torch.profiler, live CPU tensors):")
    for r in result["dcn"]:
        mem = r["peak_memory_bytes"]
        lines.append(
            "  {},{},{} {:<13} dense {:7.1f} MiB  omniconv {:7.1f} MiB".format(
                *r["shape"], r["layout"], mem["dense"] / MIB, mem["omniconv"] / MIB
            )
        )
    for kind, p in peers.items():
        if "error" in p:
            lines.append(f"{kind} peer failed: {p['error'].strip().splitlines()[-1:]}")
        for pr in p.get("rows", []):
            if "error" in pr:
                lines.append(f"{kind} {pr['shape']}: {pr['error']}")
    lines.append("")
    lines.append("wrappers (forward, no_grad) vs torch native; ratio = omniconv / torch:")
    for w in result.get("wrappers", []):
        s = "  {:<30} {:<12} torch {:7.2f} ms  omniconv {:7.2f} ms  ratio {:.3f}".format(
            w["name"], ",".join(map(str, w["shape"])), w["torch_ms"], w["omniconv_ms"], w["ratio"]
        )
        if "speedup" in w:
            s += f"  (speedup {w['speedup']:.2f}x, max |diff| {w['max_abs_diff']:.1e})"
        lines.append(s)
    return "\n".join(lines)
