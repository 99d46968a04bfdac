"""The numerics of deform_conv2d (docs/numerics.md): the NaN / Inf rule on both CPU paths,
half precision against float64, and bit-identical results for any thread count."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from reference import ref_deform_conv2d

from omniconv import backends
from omniconv.functional import deform_conv2d

pytestmark = pytest.mark.skipif(not backends.numba_available(), reason="numba not installed")

SRC = str(Path(__file__).resolve().parents[1] / "src")
PATHS = ["auto", "torch"]


def _grads(backend, x, off, w, b, mask, dtype=None, stride=1, padding=1):
    ts = [t.detach().to(dtype or t.dtype).requires_grad_() for t in (x, off, w, b, mask)]
    with backends.deform_backend(backend):
        out = deform_conv2d(*ts[:4], stride, padding, 1, ts[4] if mask is not None else None)
        go = torch.linspace(-1, 1, out.numel(), dtype=torch.float64).view_as(out).to(out.dtype)
        grads = torch.autograd.grad(out, ts, go, allow_unused=True)
    return out.detach(), grads


def _case(dtype=torch.float64):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, 2, 4, 4, generator=g, dtype=dtype)
    off = torch.zeros(1, 18, 4, 4, dtype=dtype)
    w = torch.randn(3, 2, 3, 3, generator=g, dtype=dtype)
    b = torch.randn(3, generator=g, dtype=dtype)
    mask = torch.rand(1, 9, 4, 4, generator=g, dtype=dtype)
    return x, off, w, b, mask


@pytest.mark.parametrize("backend", PATHS)
def test_nan_mask_makes_its_tap_nan_even_off_the_image(backend):
    x, off, w, b, mask = _case()
    off[0, 0, 1, 1] = -50.0  # tap 0 of pixel (1, 1) samples far off the image ...
    mask[0, 0, 1, 1] = math.nan  # ... and its mask is NaN: the tap is NaN * 0 = NaN
    mask[0, 4, 2, 2] = math.nan  # the centre tap of pixel (2, 2), on the image
    out, (gx, goff, gw, gb, gm) = _grads(backend, x, off, w, b, mask)
    nan = torch.isnan(out[0, 0])
    assert nan[1, 1] and nan[2, 2] and int(nan.sum()) == 2
    assert torch.isnan(out[0, :, 1, 1]).all()  # every output channel reads the tap
    # gradients: the off-image tap's position derivative is exactly 0 whatever its mask;
    # the on-image tap's is NaN (mask * d bilinear / d position); the input gradient is
    # NaN only at the four pixels the on-image tap reads (its corners, at weights 1, 0, 0,
    # 0: read all the same); the mask's own gradient stays finite
    assert goff[0, 0, 1, 1] == 0 and goff[0, 1, 1, 1] == 0
    assert torch.isnan(goff[0, 8:10, 2, 2]).all()
    assert int(torch.isnan(goff).sum()) == 2
    assert torch.isnan(gx[0, :, 2:4, 2:4]).all() and int(torch.isnan(gx).sum()) == 8
    assert torch.isfinite(gm).all() and torch.isfinite(gb).all()
    assert torch.isnan(gw[:, :, 0, 0]).all() and torch.isnan(gw[:, :, 1, 1]).all()


@pytest.mark.parametrize("backend", PATHS)
def test_nan_pixel_reaches_only_the_taps_that_read_it(backend):
    x, off, w, b, mask = _case()
    x[0, 1, 0, 0] = math.nan
    # every tap of pixel (0, 0) that would read (0, 0) at weight 0 or more ...
    off.zero_()
    # ... except: tap 0 of pixel (3, 3) sampled at (-1, -1) exactly (outside: reads
    # nothing, though (0, 0) is a neighbour), tap 1 of pixel (3, 3) at (-0.5, 0)
    # (reads (0, 0) with weight 1/2), tap 2 of pixel (3, 2) at (0, 0.25) + ...
    off[0, 0, 3, 3], off[0, 1, 3, 3] = -3.0, -3.0  # tap 0 (base (2, 2)) -> (-1, -1)
    off[0, 2, 3, 3], off[0, 3, 3, 3] = -2.5, -3.0  # tap 1 (base (2, 3)) -> (-0.5, 0)
    out, _ = _grads(backend, x, off, w, b, mask, padding=1)
    nan = torch.isnan(out[0, 0])
    # zero offsets: (0, 0) is read by pixels (0, 0), (0, 1), (1, 0), (1, 1) (the taps
    # over it), and pixel (3, 3)'s tap 1 reads it at -0.5; tap 0 at (-1, -1) does not
    expect = torch.zeros(4, 4, dtype=torch.bool)
    expect[:2, :2] = True
    expect[3, 3] = True
    assert torch.equal(nan, expect)


@pytest.mark.parametrize("backend", PATHS)
def test_nan_pixel_next_to_a_sample_off_the_image_does_not_leak(backend):
    x, off, w, b, mask = _case()
    x[:, :, 0, :] = math.nan  # the whole top row
    off.zero_()
    off[0, 0::2] = -10.0  # every sample 10 rows up: off the image, next to nothing
    out, (gx, goff, *_) = _grads(backend, x, off, w, b, mask)
    assert torch.equal(out, b.view(1, 3, 1, 1).expand_as(out))  # only the bias
    assert torch.equal(gx, torch.zeros_like(gx)) and torch.equal(goff, torch.zeros_like(goff))


@pytest.mark.parametrize("backend", PATHS)
def test_nan_offset_is_a_nan_tap_and_inf_offset_a_zero_one(backend):
    x, off, w, b, mask = _case()
    off[0, 4 * 2, 1, 1] = math.nan  # centre tap's dy at pixel (1, 1)
    off[0, 4 * 2 + 1, 2, 2] = math.inf  # centre tap's dx at pixel (2, 2)
    out, (gx, goff, _, _, gm) = _grads(backend, x, off, w, b, mask)
    assert torch.isnan(out[0, :, 1, 1]).all() and int(torch.isnan(out).sum()) == 3
    assert torch.isnan(goff[0, 8:10, 1, 1]).all() and int(torch.isnan(goff).sum()) == 2
    assert torch.isnan(gm[0, 4, 1, 1]) and int(torch.isnan(gm).sum()) == 1
    assert torch.isfinite(gx).all()  # a NaN position reads no pixel
    # +inf: the tap is 0 (as any sample off the image), its gradients 0
    x2, off2 = x.clone(), off.clone()
    off2[0, 4 * 2, 1, 1] = 0.0
    off2[0, 4 * 2 + 1, 2, 2] = 100.0
    out2, (_, goff2, *_) = _grads(backend, x2, off2, w, b, mask)
    assert torch.equal(out[0, :, 2, 2], out2[0, :, 2, 2])
    assert goff[0, 9, 2, 2] == 0 and goff2[0, 9, 2, 2] == 0


# ----------------------------------------------------------------------------- precision

#: max |result - float64| / max |float64| per tensor (docs/numerics.md)
HALF_TOLERANCE = {torch.float16: 2e-3, torch.bfloat16: 1.6e-2}


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "chunked"])
@pytest.mark.parametrize("backend", PATHS)
@pytest.mark.parametrize("half", [torch.float16, torch.bfloat16])
def test_half_precision_against_float64(half, backend, fused):
    g = torch.Generator().manual_seed(11)
    x = torch.randn(2, 16, 9, 9, generator=g).to(half)
    off = (torch.randn(2, 36, 9, 9, generator=g) * 2).to(half)
    w = (torch.randn(8, 16, 3, 3, generator=g) * 0.2).to(half)
    b = torch.randn(8, generator=g).to(half)
    mask = torch.rand(2, 18, 9, 9, generator=g).to(half)
    with backends.fused_gemm(fused):
        out, grads = _grads(backend, x, off, w, b, mask)
    ref, ref_grads = _reference(x, off, w, b, mask)
    assert out.dtype == half and all(gr.dtype == half for gr in grads)
    for name, got, want in zip(("out", "x", "offset", "w", "b", "mask"), (out, *grads),
                               (ref, *ref_grads), strict=True):  # fmt: skip
        err = (got.double() - want).abs().max() / want.abs().max()
        assert err <= HALF_TOLERANCE[half], (name, float(err))


def _reference(x, off, w, b, mask):
    ts = [t.double().requires_grad_() for t in (x, off, w, b, mask)]
    out = ref_deform_conv2d(ts[0], ts[1], ts[2], ts[3], 1, 1, 1, ts[4])
    go = torch.linspace(-1, 1, out.numel(), dtype=torch.float64).view_as(out)
    go = go.to(x.dtype).double()  # the upstream gradient the half-precision run gets
    return out.detach(), torch.autograd.grad(out, ts, go)


# ----------------------------------------------------------------------------- determinism

_DETERMINISM = textwrap.dedent(
    """
    import hashlib, json, sys, torch
    from omniconv import backends
    from omniconv.functional import deform_conv2d

    def digest(t):
        return hashlib.sha256(t.detach().double().numpy().tobytes()).hexdigest()[:16]

    CASES = [  # n, c, h, c_out, dg, groups, channels_last, mask, dtype
        (2, 64, 12, 32, 1, 1, False, True, torch.float32),
        (2, 64, 12, 32, 1, 1, True, True, torch.float32),
        (1, 96, 9, 48, 3, 1, False, True, torch.float32),
        (3, 48, 7, 32, 2, 2, False, True, torch.float32),
        (1, 40, 10, 1, 1, 1, True, False, torch.float64),
        (2, 32, 8, 16, 1, 1, False, True, torch.bfloat16),
        (1, 1, 200, 1, 1, 1, False, True, torch.float32),
        (1, 16, 128, 16, 1, 1, False, True, torch.float32),  # one image: bands
        (1, 16, 128, 16, 2, 1, True, True, torch.float32),
        (2, 24, 9, 17, 1, 1, True, True, torch.bfloat16),  # bfloat16 products (if the CPU
        (1, 16, 64, 15, 1, 1, False, True, torch.bfloat16),  # has them): images, bands
    ]

    def run(case, backend, fused):
        n, c, h, o, dg, groups, cl, use_mask, dtype = case
        g = torch.Generator().manual_seed(0)
        x = torch.randn(n, c, h, h, generator=g).to(dtype)
        if cl:
            x = x.contiguous(memory_format=torch.channels_last)
        off = (torch.randn(n, 18 * dg, h, h, generator=g) * 2).to(dtype)
        mask = torch.rand(n, 9 * dg, h, h, generator=g).to(dtype)
        w = (torch.randn(o, c // groups, 3, 3, generator=g) * 0.1).to(dtype)
        b = torch.randn(o, generator=g).to(dtype)
        ts = [t.requires_grad_() for t in (x, off, w, b, mask)]
        with backends.deform_backend(backend), backends.fused_gemm(fused):
            out = deform_conv2d(*ts[:4], 1, 1, 1, ts[4] if use_mask else None)
            out.backward(torch.randn(out.shape, generator=g).to(dtype))
        return [digest(out)] + [digest(t.grad) if t.grad is not None else "-" for t in ts]

    result = {}
    for threads in map(int, sys.argv[1:]):
        torch.set_num_threads(threads)
        for rep in range(2):
            for backend, fused in (("auto", True), ("auto", False), ("torch", True)):
                for i, case in enumerate(CASES):
                    key = f"{backend}-{fused}-{i}"
                    result.setdefault(key, []).append(run(case, backend, fused))
    torch.use_deterministic_algorithms(True)  # also fills torch.empty with NaN
    for backend, fused in (("auto", True), ("auto", False), ("torch", True)):
        for i, case in enumerate(CASES):
            result[f"{backend}-{fused}-{i}"].append(run(case, backend, fused))
    print(json.dumps(result))
    """
)


def test_bit_identical_for_1_2_3_threads_and_deterministic_mode():
    """Outputs and all five gradients, fast (fused and chunked) and pure paths: the same
    bits at 1, 2 and 3 threads, run after run, and under
    ``torch.use_deterministic_algorithms(True)`` (which must not raise)."""
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env["NUMBA_NUM_THREADS"] = "3"  # numba's pool defaults to the core count (2 here)
    env["OMP_NUM_THREADS"] = "3"
    done = subprocess.run(
        [sys.executable, "-c", _DETERMINISM, "1", "2", "3"],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    for key, runs in result.items():
        assert len(runs) == 7
        for r in runs[1:]:
            assert r == runs[0], (key, runs)
    # the fast path's fused and chunked forms and the pure path compute the same float32
    # sums in other orders (the fused backward of a batch sums all channels of a tap in
    # one reduction): their bits may differ, their values agree (test_fast_path.py)
