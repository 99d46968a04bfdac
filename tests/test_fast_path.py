"""The numba CPU fast path of deform_conv2d against the float64 reference and the pure path;
dispatch, fallback and threads; ImgConvGroup's eval-mode BN folding."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from _helpers import (
    ASYM,
    CASES,
    F64,
    H_B,
    LAYOUTS,
    LAYOUTS_1D,
    TOL32,
    TOL64,
    W_B,
    border_offsets,
    compare,
    deform_impl,
    deform_inputs,
    deform_ref,
    distinct_layout,
    leaves,
    make_deform,
    out_size,
    rand,
    relayout,
)
from reference import ref_deform_conv2d, ref_deform_offset_grad_explicit

import omniconv.nn as onn
from omniconv import backends
from omniconv.functional import deform_conv2d
from omniconv.kernels import deform_cpu, deform_torch

pytestmark = [
    pytest.mark.skipif(not backends.numba_available(), reason="numba not installed"),
    # numba failing to load warns (RuntimeWarning): here that must fail the test
    pytest.mark.filterwarnings("error::RuntimeWarning"),
]

SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture(params=["fused", "chunked"])
def gemm(request):
    """Both forms of the fast path: the fused kernels (omniconv's tile GEMM per tile on the
    numba threads) and the chunked columns multiplied by ``torch.addmm``."""
    fused = request.param == "fused"
    with backends.fused_gemm(fused):
        assert deform_cpu._fused() == fused
        yield request.param


def _pure(fn):
    def run(*args):
        with backends.deform_backend("torch"):
            return fn(*args)

    return run


def _fast(fn):
    def run(*args):
        assert deform_cpu.runs(*[a for a in args if a is not None])
        return fn(*args)

    return run


def _value_grads(fn, inputs, seed=1234):
    ins = leaves(*inputs)
    out = fn(*ins)
    g = rand(*out.shape, seed=seed).to(out.dtype)
    return out, torch.autograd.grad(out, ins, g)


# ----------------------------------------------------------------------------- dispatch


def _record(monkeypatch):
    """Record which kernel each CPU call runs: ``(kernel, pass, thread id)``."""
    calls = []

    def spy(module, name, label):
        real = getattr(module, name)

        def run(*args):
            calls.append((label, name, threading.get_ident()))
            return real(*args)

        monkeypatch.setattr(module, name, run)

    for name in ("forward", "backward"):
        spy(deform_cpu, name, "numba")
        spy(deform_torch, name, "torch")
    return calls


def test_fast_path_is_selected_on_cpu(monkeypatch):
    calls = _record(monkeypatch)
    me = threading.get_ident()
    x, off, wt, b, mask = leaves(*make_deform(*ASYM), dtype=torch.float32)
    out = deform_conv2d(x, off, wt, b, (2, 1), (1, 0), (2, 1), mask)
    out.sum().backward()
    assert calls == [("numba", "forward", me), ("numba", "backward", me)]
    with backends.deform_backend("torch"):
        assert backends.get_deform_backend() == "torch"
        out = deform_conv2d(x, off, wt, b, (2, 1), (1, 0), (2, 1), mask)
        out.sum().backward()
    assert calls[2:] == [("torch", "forward", me), ("torch", "backward", me)]
    assert backends.get_deform_backend() == "auto"


def test_fast_path_not_applicable_elsewhere():
    x = torch.zeros(1, 2, 3, 3)
    assert deform_cpu.runs(x)
    assert not deform_cpu.runs(x.to(torch.int32))
    assert not deform_cpu.runs(torch.zeros(1, 2, 3, 3, device="meta"))
    assert not deform_cpu.runs(x.to(torch.complex64))
    with backends.deform_backend("torch"):
        assert not deform_cpu.runs(x)
    with backends.deform_backend("numba"):
        assert deform_cpu.runs(x)
    with pytest.raises(ValueError, match="backend"), backends.deform_backend("cuda"):
        pass


def test_backend_choice_is_thread_local(monkeypatch):
    """A thread's ``deform_backend("torch")`` / ``fused_gemm(False)`` block does not change
    what another thread runs at the same time."""
    calls = _record(monkeypatch)
    inside, done = threading.Event(), threading.Event()
    seen = {}
    x, off, wt, b, mask = make_deform(*ASYM, seed=2)

    def conv():
        return deform_conv2d(x, off, wt, b, (2, 1), (1, 0), (2, 1), mask)

    def other():
        with backends.deform_backend("torch"), backends.fused_gemm(False):
            seen["inside"] = (backends.get_deform_backend(), deform_cpu.FUSED_GEMM.get())
            seen["out"] = conv()
            inside.set()
            done.wait(60)  # hold the block open while the main thread runs
        seen["after"] = backends.get_deform_backend()

    thread = threading.Thread(target=other)
    thread.start()
    try:
        assert inside.wait(60)
        assert backends.get_deform_backend() == "auto" and deform_cpu.FUSED_GEMM.get()
        mine = conv()
    finally:
        done.set()
        thread.join(60)
    assert seen["inside"] == ("torch", False) and seen["after"] == "auto"
    assert calls == [
        ("torch", "forward", thread.ident),
        ("numba", "forward", threading.get_ident()),
    ]
    torch.testing.assert_close(mine, seen["out"], **TOL64)


@pytest.mark.parametrize(
    "error",
    [RuntimeError("broken JIT cache"), MemoryError("no memory"), torch.OutOfMemoryError("oom")],
    ids=["runtime", "memory", "torch-oom"],
)
@pytest.mark.parametrize("where", ["forward", "backward"])
def test_kernel_error_propagates(monkeypatch, error, where):
    """An error inside the numba path (out-of-memory included) reaches the caller; the
    fast path stays on for the next call."""
    from omniconv.kernels import _deform_numba

    def fail(*args):
        raise error

    kernels = {
        "forward": ("forward_fused", "sample_columns"),
        "backward": ("backward_fused", "backward_columns"),
    }
    x, off, wt, b, mask = leaves(*make_deform(*ASYM))
    with monkeypatch.context() as patch:
        for name in kernels[where]:
            patch.setattr(_deform_numba, name, fail)
        with pytest.raises(type(error), match=str(error)):
            deform_conv2d(x, off, wt, b, (2, 1), (1, 0), (2, 1), mask).sum().backward()
    assert backends.numba_available() and deform_cpu.runs(x)
    calls = _record(monkeypatch)
    deform_conv2d(x, off, wt, b, (2, 1), (1, 0), (2, 1), mask)
    assert [c[0] for c in calls] == ["numba"]


def test_numba_load_failure_warns_once(monkeypatch):
    """numba installed but unable to run (here: its self-test fails) is decided at first
    use and warned about once; calls then run the pure kernel."""

    def broken(kernels):
        raise RuntimeError("no threading layer")

    monkeypatch.setattr(deform_cpu, "_loaded", None)  # first use again (restored after)
    monkeypatch.setattr(deform_cpu, "_self_test", broken)
    calls = _record(monkeypatch)
    x, off, wt, b, mask = make_deform(*ASYM, seed=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outs = [deform_conv2d(x, off, wt, b, (2, 1), (1, 0), (2, 1), mask) for _ in range(3)]
        assert not backends.numba_available()
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1 and "no threading layer" in messages[0], messages
    assert [c[0] for c in calls] == ["torch"] * 3
    want = ref_deform_conv2d(x, off, wt, b, (2, 1), (1, 0), (2, 1), mask)
    for out in outs:
        torch.testing.assert_close(out, want, **TOL64)
    # asked for by name, the numba backend says it is not running
    with pytest.warns(RuntimeWarning, match="no threading layer"), backends.deform_backend("numba"):
        pass


def _bf16_bits(t: torch.Tensor) -> np.ndarray:
    return t.to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)


def _bf16_kernels():
    from omniconv.kernels import _tile_gemm

    if not _tile_gemm.bf16_supported():
        pytest.skip("this CPU has no AVX512-BF16")
    return _tile_gemm


def test_tile_gemm_bf16_against_float64_and_its_own_bits():
    """The bfloat16 GEMM: odd sizes (an odd k padded with a zero pair entry, more pairs
    than one k block), against float64 products of the same bfloat16 numbers; the same
    bits however the rows are cut into calls."""
    from numba import njit

    tg = _bf16_kernels()

    @njit
    def run(m, n, kp, a, sa_i, b, c, ldc):
        tg.gemm_tiles_bf16(m, n, kp, a, sa_i, b, c, ldc, False)

    g = torch.Generator().manual_seed(5)
    for m, n, k in [(1, 1, 1), (13, 33, 7), (29, 64, 601), (3, 17, 2)]:
        kp = -(-k // 2)
        mp, np_ = tg.padded(m, tg.MR) + tg.MR, tg.padded(n, 32)
        a = torch.zeros(mp, 2 * kp)
        a[:m, :k] = torch.randn(m, k, generator=g)
        b = torch.zeros(2 * kp, np_)
        b[:k, :n] = torch.randn(k, n, generator=g)
        want = a.bfloat16().double()[:m] @ b.bfloat16().double()[:, :n]
        ab = _bf16_bits(a)
        # pair p of column block j at (j, p): the 32 columns' pairs interleaved
        bp = np.ascontiguousarray(_bf16_bits(b).reshape(kp, 2, np_ // 32, 32).transpose(2, 0, 3, 1))
        c1 = np.full((mp, np_), np.nan, np.float32)
        run(m, n, kp, ab.ctypes.data, 2 * kp, bp.ctypes.data, c1.ctypes.data, np_)
        np.testing.assert_allclose(c1[:m, :n], want.numpy(), rtol=1e-5, atol=1e-5 * k)
        if m > 1:
            cut = m // 2
            c2 = np.full((mp, np_), np.nan, np.float32)
            run(cut, n, kp, ab.ctypes.data, 2 * kp, bp.ctypes.data, c2.ctypes.data, np_)
            run(m - cut, n, kp, ab[cut:].ctypes.data, 2 * kp, bp.ctypes.data,
                c2[cut:].ctypes.data, np_)  # fmt: skip
            assert np.array_equal(c1[:m, :n], c2[:m, :n])


def test_to_bf16_rounds_to_nearest_even():
    """The column tile's rounding: torch's bfloat16 conversion (nearest, ties to even; NaN
    and infinities kept), whole vectors and a masked tail (nothing past ``n`` written);
    float32 subnormals become zero (the instruction treats them so)."""
    from numba import njit

    from omniconv.kernels._channel_vectors import to_bf16

    _bf16_kernels()

    @njit
    def run(dst, src, n):
        to_bf16(dst.ctypes.data, src.ctypes.data, n)

    ties = [1 + 2.0**-8, 1 + 3 * 2.0**-8, -(1 + 2.0**-8), 1 + 2.0**-8 + 2.0**-20]
    special = [float("inf"), -float("inf"), 3.0e38, -0.0, 1e-30]
    x = torch.tensor(ties + special + torch.randn(28).tolist(), dtype=torch.float32)
    x = torch.cat([x, torch.tensor([float("nan")])])
    for n in (x.numel(), 37, 16, 5):
        dst = np.full(x.numel() + 3, 0xABCD, np.uint16)
        run(dst, x.numpy(), n)
        got = torch.from_numpy(dst[:n].view(np.int16)).view(torch.bfloat16)
        want = x[:n].bfloat16()
        assert torch.equal(got.isnan(), want.isnan())
        assert torch.equal(got[~want.isnan()], want[~want.isnan()])
        assert (dst[n:] == 0xABCD).all()
    tiny = np.array([1e-40, -1e-40], np.float32)
    dst = np.zeros(2, np.uint16)
    run(dst, tiny, 2)
    assert list(dst) == [0, 0x8000]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_store_transposed_writes_exactly_its_block(dtype):
    """The NCHW output write: a block of up to one vector's lanes of rows and columns,
    plus the bias per column, stored transposed; whole, partial in either direction;
    nothing around the block touched."""
    from numba import njit

    from omniconv.kernels._channel_vectors import store_transposed

    @njit
    def run(dst, ld_dst, src, ld_src, bias, nr, nc):
        store_transposed(dst.ctypes.data, ld_dst, src.ctypes.data, ld_src, bias.ctypes.data,
                         nr, nc, src[0, 0])  # fmt: skip

    lanes = 16 if dtype == np.float32 else 8
    rng = np.random.default_rng(4)
    for nr, nc in [(lanes, lanes), (5, lanes), (lanes, 3), (7, 2), (1, 1)]:
        src = rng.standard_normal((lanes, 40)).astype(dtype)
        bias = rng.standard_normal(lanes).astype(dtype)
        dst = np.full((lanes + 2, 50), -7.0, dtype)
        run(dst, 50, src, 40, bias, nr, nc)
        want = np.full_like(dst, -7.0)
        want[:nc, :nr] = (src[:nr, :nc] + bias[:nc]).T
        assert np.array_equal(dst, want), (nr, nc)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nchw_to_nhwc_copies_every_bit(dtype):
    """The NCHW -> NHWC copy (register-transposed blocks, no bias): every bit kept, -0 and
    signalling-NaN payloads included, whole and partial blocks, nothing else written."""
    kernels = deform_cpu.numba_kernels()
    rng = np.random.default_rng(6)
    uint = np.uint32 if dtype == np.float32 else np.uint64
    snan = 0x7FA00001 if dtype == np.float32 else 0x7FF4000000000001
    for shape in [(2, 17, 37), (1, 64, 130), (3, 5, 100), (1, 1, 1)]:
        src = rng.standard_normal(shape).astype(dtype)
        bits = src.view(uint).reshape(-1)
        bits[::5] = src.dtype.type(-0.0).view(uint)
        bits[3::17] = snan
        size = src.size
        buf = np.full(size + 7, 9.0, dtype)
        kernels.nchw_to_nhwc(src, buf[:size].reshape(shape[0], shape[2], shape[1]))
        want = np.ascontiguousarray(src.transpose(0, 2, 1))
        assert buf[:size].tobytes() == want.tobytes(), shape
        assert (buf[size:] == 9.0).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("c", "rows"), [(3, 37), (16, 16), (17, 5), (40, 70)])
def test_vector_sampler_is_the_scalar_sampler_bit_for_bit(dtype, c, rows):
    """The fused forward's sampler, vectorised across rows (``_tap_vectors.sample_tap``),
    against the scalar one of one row at a time: the same bits (NaN where NaN) at every
    border target, NaN / +-inf positions, infinite / NaN masks and input pixels, with whole
    vectors and tails of rows and of channels; nothing past the rows written."""
    from numba import njit

    from omniconv.kernels import _deform_numba as dn
    from omniconv.kernels._deform_structs import Geometry, Sampling

    deform_cpu.numba_kernels()
    n, kernel, stride, padding, dilation = 2, (3, 2), (1, 1), (1, 0), (2, 1)
    h, w = 9, 11
    ho, wo = out_size(h, w, kernel, stride, padding, dilation)
    dt = torch.float64 if dtype == np.float64 else torch.float32
    off = border_offsets(n, 1, kernel, ho, wo, stride, padding, dilation, 9, h, w).to(dt)
    k_all = kernel[0] * kernel[1]
    g = torch.Generator().manual_seed(2)
    mask = torch.rand(n, k_all, ho, wo, generator=g, dtype=dt)
    off[0, 0, 0, :3] = float("nan")
    off[0, 1, 1, 1] = float("inf")
    off[1, 2, 2, 2] = -float("inf")
    off[1, 3, 0, 4] = 1e30
    mask[0, 1, 2, 3], mask[1, 0, 1, 1], mask[1, 4, -1, 0] = float("inf"), float("nan"), -0.0
    x = torch.randn(n * h * w, c, generator=g, dtype=dt)
    x[0, 0], x[5, :2], x[w + 1, -1] = float("inf"), -float("inf"), float("nan")
    base_h, base_w = deform_cpu._base_positions(ho, wo, *kernel, stride, padding, dilation, dtype)

    @njit
    def both(x, geo, smp, rows, vec, scal):
        xf = x.ravel()
        zrow = dn._zero_row(x.shape[1], x.dtype)
        ones = dn._fill_row(max(x.shape[1], 16), x.dtype, 1)
        pos = np.empty(2 * rows, np.int32)
        per = smp.offset.shape[2] * smp.offset.shape[3]
        ncol = geo.taps * geo.channels
        for n in range(smp.offset.shape[0]):
            for l0 in range(0, per, rows):
                r_n = min(rows, per - l0)
                at = (n * per + l0) * ncol
                dn._sample_tile_plain(xf, zrow, ones, pos, vec[at:], ncol, n, l0, r_n, geo, smp)
                for r in range(r_n):
                    y = (l0 + r) // geo.out_width
                    dn._sample_row_plain(xf, zrow, scal[at:], r * ncol, n, y,
                                         l0 + r - y * geo.out_width, geo, smp)  # fmt: skip

    geo = Geometry(h, w, c, c, c, k_all, wo, c)
    for use_mask in (True, False):
        smp = Sampling(base_h, base_w, off.numpy(), mask.numpy(), use_mask)
        total = n * ho * wo * k_all * c
        vec = np.full(total + 7, -3.0, dtype)
        scal = np.full(total + 7, -3.0, dtype)
        both(x.numpy(), geo, smp, rows, vec, scal)
        assert np.array_equal(vec, scal, equal_nan=True), (use_mask, c, rows)
        assert (vec[total:] == -3.0).all()
        assert np.isnan(vec).any() and np.isinf(vec).any()  # the special cases were met


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nchw", [True, False], ids=["nchw", "nhwc"])
def test_merge_windows_adds_the_bands_in_band_order(dtype, nchw):
    """The one-image backward's merge of the bands' input-gradient windows: each entry
    ``((0 + w_0) + w_1) + ...`` over the windows covering its row, in band order (numpy
    doing the same additions gives the same bits), 0 where none covers it; NCHW written
    transposed (whole and partial 16 x 16 blocks); the same bits at any thread count."""
    kernels = deform_cpu.numba_kernels()
    rng = np.random.default_rng(3)
    for h, w, c in [(13, 7, 5), (40, 19, 64), (9, 33, 17)]:
        # overlaps of up to four windows, an empty one; row 2 in none
        spans = [(0, 2), (3, h - 3), (h - 2, 2), (2, 0), (4, h - 6), (3, h - 4)]
        starts = np.cumsum([0] + [rows * w * c for _, rows in spans])
        windows = np.array([(r0, rows, at) for (r0, rows), at in zip(spans, starts, strict=False)])
        size = int(starts[-1])
        gxw = (rng.standard_normal(size) * 10.0 ** rng.uniform(-4, 4, size)).astype(dtype)
        gxw[::7], gxw[::31], gxw[5::37] = -0.0, np.inf, np.nan
        want = np.zeros((h, w * c), dtype)
        for r0, rows, at in windows:
            for r in range(r0, r0 + rows):
                want[r] = want[r] + gxw[at + (r - r0) * w * c : at + (r - r0 + 1) * w * c]
        want = want.reshape(h * w, c)
        if nchw:
            want = np.ascontiguousarray(want.T)
        for threads in (1, 2, 3):
            got = np.full(want.shape, 7.0, dtype)
            kernels.merge_windows(gxw, windows, h, w, got, nchw, threads)
            assert got.tobytes() == want.tobytes(), (h, w, c, threads)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tile_gemm_against_float64_and_its_own_bits(dtype):
    """The fused kernels' GEMM: odd sizes, A read through both stride orders, overwrite and
    accumulate, against numpy in float64; and the same bits however the rows are cut
    into calls (each entry is one FMA chain over k, whatever the blocking)."""
    from numba import njit

    from omniconv.kernels._tile_gemm import MR, block_columns, gemm_tiles, padded

    @njit
    def run(m, n, k, a, sa_i, sa_k, b, ldb, c, ldc, acc, item):
        gemm_tiles(m, n, k, a, sa_i, sa_k, b, ldb, c, ldc, acc, item)

    rng = np.random.default_rng(3)
    item = np.dtype(dtype).itemsize
    nr = block_columns(item)
    for m, n, k in [(1, 1, 1), (13, 33, 7), (29, 64, 300), (3, 17, 1)]:
        mp, np_ = padded(m, MR), padded(n, nr)
        rows = mp + MR  # room for the second call of the cut below
        a = rng.standard_normal((rows, k)).astype(dtype)
        at = np.ascontiguousarray(a.T)  # A through sa_i = 1, sa_k = rows
        b = np.zeros((k, np_), dtype)
        b[:, :n] = rng.standard_normal((k, n))
        want = a[:m].astype(np.float64) @ b[:, :n].astype(np.float64)
        tol = 1e-5 if dtype == np.float32 else 1e-12
        c1 = np.full((mp, np_), np.nan, dtype)
        run(m, n, k, a.ctypes.data, k, 1, b.ctypes.data, np_, c1.ctypes.data, np_, False, item)
        np.testing.assert_allclose(c1[:m, :n], want, rtol=tol, atol=tol * k)
        c2 = np.zeros((mp, np_), dtype)
        run(m, n, k, at.ctypes.data, 1, rows, b.ctypes.data, np_, c2.ctypes.data, np_, False, item)
        assert np.array_equal(c1[:m, :n], c2[:m, :n])
        run(m, n, k, at.ctypes.data, 1, rows, b.ctypes.data, np_, c2.ctypes.data, np_, True, item)
        np.testing.assert_allclose(c2[:m, :n], 2 * want, rtol=tol, atol=2 * tol * k)
        if m > 1:  # rows cut into two calls: the same bits
            cut = m // 2
            c3 = np.zeros((mp + MR, np_), dtype)
            run(cut, n, k, a.ctypes.data, k, 1, b.ctypes.data, np_, c3.ctypes.data, np_, False,
                item)  # fmt: skip
            run(m - cut, n, k, a[cut:].ctypes.data, k, 1, b.ctypes.data, np_,
                c3[cut:].ctypes.data, np_, False, item)  # fmt: skip
            assert np.array_equal(c1[:m, :n], c3[:m, :n])


def test_numba_threads_follow_torch():
    import numba

    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        x, off, wt, b, mask = make_deform(*ASYM)
        deform_conv2d(x, off, wt, b, (2, 1), (1, 0), (2, 1), mask)
        assert numba.get_num_threads() == 1
    finally:
        torch.set_num_threads(old)


def test_numba_missing_falls_back_to_pure_path():
    """With numba unimportable the op still runs (pure path), quietly (no warning), and
    gives the same numbers."""
    code = textwrap.dedent(
        """
        import sys
        sys.modules["numba"] = None  # import numba -> ModuleNotFoundError
        import torch
        from omniconv import backends
        from omniconv.functional import deform_conv2d
        from omniconv.kernels import deform_cpu
        g = torch.Generator().manual_seed(0)
        x = torch.randn(2, 4, 5, 5, dtype=torch.float64, generator=g, requires_grad=True)
        off = torch.randn(2, 18, 5, 5, dtype=torch.float64, generator=g, requires_grad=True)
        w = torch.randn(3, 4, 3, 3, dtype=torch.float64, generator=g)
        out = deform_conv2d(x, off, w, None, 1, 1)
        out.sum().backward()
        assert not backends.numba_available() and not deform_cpu.runs(x)
        assert "not installed" in deform_cpu.numba_problem()
        torch.save((out.detach(), x.grad, off.grad), sys.argv[1])
        """
    )
    out_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"omniconv_nonumba_{os.getpid()}.pt"
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    subprocess.run(
        [sys.executable, "-W", "error::RuntimeWarning", "-c", code, str(out_path)],
        check=True,
        env=env,
    )
    try:
        out, gx, goff = torch.load(out_path)
    finally:
        out_path.unlink()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 5, 5, dtype=torch.float64, generator=g, requires_grad=True)
    off = torch.randn(2, 18, 5, 5, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(3, 4, 3, 3, dtype=torch.float64, generator=g)
    fast = deform_conv2d(x, off, w, None, 1, 1)
    fast.sum().backward()
    torch.testing.assert_close(out, fast.detach(), **TOL64)
    torch.testing.assert_close(gx, x.grad, **TOL64)
    torch.testing.assert_close(goff, off.grad, **TOL64)


# ----------------------------------------------------------------------------- exactness


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("use_mask", [True, False], ids=["v2", "v1"])
@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_fast_vs_reference_and_pure(case, use_mask, dtype, gemm):
    _, _, _, _, _, _, stride, padding, dilation, _, _ = case
    data = deform_inputs(use_mask, *make_deform(*case, seed=3))
    fn = deform_impl(stride, padding, dilation, use_mask)
    out, grads = compare(
        _fast(fn), deform_ref(stride, padding, dilation, use_mask), data, impl_dtype=dtype
    )
    p_out, p_grads = _value_grads(_pure(fn), [t.to(dtype) for t in data])
    tol = TOL64 if dtype == F64 else {"rtol": 1e-5, "atol": 1e-5}
    torch.testing.assert_close(out, p_out, **tol)
    for g, pg in zip(grads, p_grads, strict=True):
        torch.testing.assert_close(g, pg, **tol)


# (N, C, H, W, O, kernel, stride, padding, dilation, groups, dg): the usual DCN (fused forward
# and backward, plain sampler), a 1x1 one (a weight view can reshape to a strided view) and
# the asymmetric one (generic sampler, chunked backward)
LAYOUT_CASES = {
    "plain": (2, 8, 6, 5, 6, (3, 3), 1, 1, 1, 1, 1),
    "pointwise": (2, 8, 6, 5, 6, (1, 1), 1, 0, 1, 1, 1),
    "asym": ASYM,
}
ARGS = ("input", "offset", "weight", "bias", "mask")
ARG_LAYOUTS = [
    (case, arg, layout)
    for case in LAYOUT_CASES
    for arg, t in zip(ARGS, make_deform(*LAYOUT_CASES[case]), strict=True)
    for layout in (LAYOUTS_1D if arg == "bias" else LAYOUTS)
    if layout != "contiguous" and distinct_layout(t, layout)
]


@pytest.mark.parametrize(
    ("case", "arg", "layout"), ARG_LAYOUTS, ids=["-".join(p) for p in ARG_LAYOUTS]
)
def test_every_argument_in_any_layout(case, arg, layout, gemm):
    """Transposed, strided, sliced, expanded and channels_last views of each argument give
    the float64 reference's output and gradients (the kernels see only layouts that were
    checked or made contiguous for them)."""
    _, _, _, _, _, _, stride, padding, dilation, _, _ = LAYOUT_CASES[case]
    at = ARGS.index(arg)

    def view(args):
        return [relayout(t, layout) if i == at else t for i, t in enumerate(args)]

    fast, ref = (
        _fast(deform_impl(stride, padding, dilation, True)),
        deform_ref(stride, padding, dilation, True),
    )
    compare(
        lambda *a: fast(*view(a)),
        lambda *a: ref(*[t.contiguous() for t in view(a)]),
        list(make_deform(*LAYOUT_CASES[case], seed=15)),
        impl_dtype=torch.float32,
    )


def test_weight_views_from_the_bug_report():
    """The weights that made the fused forward read wrong memory (issue 8)."""
    cases = [
        (torch.full((1, 1, 3, 3), 1 / 9).expand(4, 1, 3, 3), 4, 9, 1),  # depthwise, shared
        (torch.randn(12, 4, 3, 3).contiguous(memory_format=torch.channels_last)[::2], 4, 9, 1),
        (torch.randn(8, 6).t()[:, :, None, None], 8, 1, 0),  # 1x1, transposed
    ]
    for w, c, k, pad in cases:
        x, off = torch.randn(2, c, 8, 8), torch.randn(2, 2 * k, 8, 8)
        got = deform_conv2d(x, off, w, padding=pad)
        want = ref_deform_conv2d(x.double(), off.double(), w.double(), None, 1, pad, 1, None)
        torch.testing.assert_close(got.double(), want, **TOL32)


def test_kernels_refuse_arrays_that_are_not_c_contiguous():
    """The kernels' own guard: a strided array is refused, not read as if it were flat."""
    import numpy as np

    from omniconv.kernels import _deform_numba as impl

    src = np.zeros((1, 4, 12), np.float32)
    impl.nchw_to_nhwc(src, np.zeros((1, 12, 4), np.float32))  # contiguous: fine
    with pytest.raises(ValueError, match="not C-contiguous"):
        impl.nchw_to_nhwc(src[:, :, ::2], np.zeros((1, 6, 4), np.float32))
    with pytest.raises(ValueError, match="not C-contiguous"):
        impl.nchw_to_nhwc(src, np.zeros((1, 4, 12), np.float32).transpose(0, 2, 1))


def test_kernels_are_cached_across_processes():
    """The kernels take named tuples; numba's disk cache still serves them: a second
    process loads every kernel it runs from the cache and compiles none."""
    code = textwrap.dedent(
        """
        import json
        import torch
        from omniconv import backends
        from omniconv.functional import deform_conv2d
        from omniconv.kernels import _deform_numba as nb
        names = ["nchw_to_nhwc", "sample_columns", "forward_fused", "backward_columns",
                 "backward_fused"]
        for fused in (True, False):
            for fmt in (torch.contiguous_format, torch.channels_last):
                x = torch.randn(2, 8, 6, 5).contiguous(memory_format=fmt).requires_grad_()
                off = torch.randn(2, 18, 6, 5, requires_grad=True)
                w = torch.randn(6, 8, 3, 3, requires_grad=True)
                with backends.fused_gemm(fused):
                    deform_conv2d(x, off, w, None, 1, 1, 1, torch.rand(2, 9, 6, 5)).sum().backward()
        stats = {n: getattr(nb, n).stats for n in names}
        print(json.dumps({n: [sum(s.cache_hits.values()), sum(s.cache_misses.values())]
                          for n, s in stats.items()}))
        """
    )
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    runs = []
    for _ in range(2):  # the first run fills the cache where it is empty
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        runs.append(json.loads(done.stdout.splitlines()[-1]))
    used = {n for n, (hits, misses) in runs[0].items() if hits + misses}
    assert {"nchw_to_nhwc", "sample_columns", "backward_columns"} <= used
    assert all(runs[1][n][0] > 0 and runs[1][n][1] == 0 for n in used), runs[1]


def test_expanded_weight_is_not_read_past_its_buffer():
    """A (65536, 64, 3, 3) weight expanded from one channels_last filter: the fused forward
    used to hand its 576 floats to BLAS as 37.7 M and crash. In a child process, so a
    regression fails this test instead of killing the run."""
    code = textwrap.dedent(
        """
        import torch
        from omniconv.functional import deform_conv2d
        torch.manual_seed(0)
        x = torch.randn(1, 64, 8, 8); off = torch.randn(1, 18, 8, 8)
        w1 = torch.randn(1, 64, 3, 3).contiguous(memory_format=torch.channels_last)
        out = deform_conv2d(x, off, w1.expand(65536, 64, 3, 3), padding=1)
        one = deform_conv2d(x, off, w1.contiguous(), padding=1)
        assert out.shape == (1, 65536, 8, 8)
        torch.testing.assert_close(out, one.expand_as(out), rtol=1e-5, atol=1e-4)
        """
    )
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize("how", ["env", "call"])
def test_first_call_leaves_torchs_thread_count(how):
    """numba's OpenMP pool shares libgomp with torch and its start set every core as the
    process's OpenMP thread count: after one deformable conv a process asked to run on 1
    thread (OMP_NUM_THREADS=1, as torchrun sets it, or torch.set_num_threads(1)) ran torch
    on 2, and two such processes on 2 cores trained 30x slower. In a fresh process, since
    the pool starts once per process."""
    code = textwrap.dedent(
        """
        import torch
        if not {env}:
            torch.set_num_threads(1)
        from omniconv.functional import deform_conv2d
        from omniconv.kernels import deform_cpu
        x = torch.randn(1, 4, 6, 6); off = torch.randn(1, 18, 6, 6)
        deform_conv2d(x, off, torch.randn(4, 4, 3, 3), padding=1)
        assert deform_cpu.numba_kernels() is not None, deform_cpu.numba_problem()
        print(torch.get_num_threads())
        """
    ).format(env=how == "env")
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env["OMP_NUM_THREADS"] = "1" if how == "env" else "2"
    env["NUMBA_NUM_THREADS"] = "2"  # the pool numba starts: more threads than torch's
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["1"]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("use_mask", [True, False], ids=["v2", "v1"])
def test_integer_and_border_positions(use_mask, dtype, gemm):
    """Samples exactly at integers, at -1 / H / W, half-way outside, far outside."""
    n, c, o, kernel, stride, padding, dilation, groups, dg = (
        2,
        6,
        4,
        (3, 2),
        (2, 1),
        (1, 0),
        (
            2,
            1,
        ),
        2,
        3,
    )
    x, _, wt, b, mask = make_deform(
        n, c, H_B, W_B, o, kernel, stride, padding, dilation, groups, dg
    )
    ho, wo = out_size(H_B, W_B, kernel, stride, padding, dilation)
    off = border_offsets(n, dg, kernel, ho, wo, stride, padding, dilation, seed=5)
    data = deform_inputs(use_mask, x, off, wt, b, mask)
    _, grads = compare(
        _fast(deform_impl(stride, padding, dilation, use_mask)),
        deform_ref(stride, padding, dilation, use_mask),
        data,
        impl_dtype=dtype,
    )
    out = ref_deform_conv2d(x, off, wt, b, stride, padding, dilation, mask if use_mask else None)
    explicit = ref_deform_offset_grad_explicit(
        x, off, wt, rand(*out.shape, seed=1234), stride, padding, dilation,
        mask if use_mask else None,
    )  # fmt: skip
    tol = TOL64 if dtype == F64 else TOL32
    torch.testing.assert_close(grads[1].double(), explicit, **tol)
    # and bit-for-bit the same sample decisions as the pure path in float64
    if dtype == F64:
        _, p_grads = _value_grads(_pure(deform_impl(stride, padding, dilation, use_mask)), data)
        torch.testing.assert_close(grads[1], p_grads[1], **TOL64)


def _bf16_values(c: torch.Tensor) -> torch.Tensor:
    """``c`` rounded to bfloat16 (kept float64), its gradient passed through exactly (a
    ``.bfloat16()`` in the graph would round the gradient too)."""
    return c + (c.bfloat16().double() - c).detach()


@pytest.mark.parametrize("half", [torch.bfloat16, torch.float16])
def test_half_inputs_accumulate_in_float32(half, gemm):
    """Half-precision tensors: computed in float32 and rounded once at the end, except the
    fused forward of bfloat16 on a CPU with AVX512-BF16, which multiplies in bfloat16:
    there the sampled columns are rounded to bfloat16 too (float32 sums), i.e. within one
    bfloat16 step of the float64 reference that rounds its columns so."""
    _, _, _, _, _, _, stride, padding, dilation, _, _ = ASYM
    data = [t.to(half) for t in make_deform(*ASYM, seed=7)]
    fn = _fast(deform_impl(stride, padding, dilation, True))
    out, grads = _value_grads(fn, data)
    assert out.dtype == half and all(g.dtype == half for g in grads)
    # the float32 computation on the same (rounded) numbers, rounded once at the end
    ref_out, ref_grads = _value_grads(
        deform_impl(stride, padding, dilation, True), [t.float() for t in data]
    )
    if half == torch.bfloat16 and gemm == "fused" and deform_cpu._bf16_cpu():
        x, off, w, b, mask = (t.double() for t in data)
        want = ref_deform_conv2d(x, off, w, b, stride, padding, dilation, mask, column=_bf16_values)
        step = 2.0**-8 * want.abs()  # one bfloat16 step (at most) of each value
        assert ((out.double() - want).abs() <= step + 1e-3 * want.abs().max()).all()
        assert not torch.equal(out, ref_out.to(half))  # not the float32 products
    else:
        torch.testing.assert_close(out, ref_out.to(half), rtol=0, atol=0)
    for g, rg in zip(grads, ref_grads, strict=True):
        # the upstream gradient itself is rounded to `half`: compare loosely
        torch.testing.assert_close(g.float(), rg, rtol=2e-2, atol=2e-2)


def test_bfloat16_without_avx512_bf16_computes_in_float32(monkeypatch):
    """On a CPU without AVX512-BF16 (simulated), bfloat16 tensors take the float32
    kernels: the float32 computation on the same numbers, rounded once at the end."""
    monkeypatch.setattr(deform_cpu, "_bf16_cpu", lambda: False)
    case = (2, 6, 7, 8, 5, (3, 2), (2, 1), (1, 0), (2, 1), 1, 3)
    _, _, _, _, _, _, stride, padding, dilation, _, _ = case
    data = [t.bfloat16() for t in make_deform(*case, seed=22)]
    out, grads = _value_grads(_fast(deform_impl(stride, padding, dilation, True)), data)
    ref_out, _ = _value_grads(deform_impl(stride, padding, dilation, True),
                              [t.float() for t in data])  # fmt: skip
    assert out.dtype == torch.bfloat16 and all(g.dtype == torch.bfloat16 for g in grads)
    torch.testing.assert_close(out, ref_out.bfloat16(), rtol=0, atol=0)


@pytest.mark.parametrize("n", [3, 1, 0], ids=["images", "bands", "channel-split"])
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_bfloat16_products_backward(monkeypatch, band_calls, n, layout):
    """The fused backward of bfloat16 tensors on a CPU with AVX512-BF16 (by images, by
    bands of one image, and one image split by channels): ``gcol = grad_out @ W'`` and
    ``gW += grad_out^T @ col`` in bfloat16 products, float32 sums, the columns rounded
    to bfloat16 - every gradient within one bfloat16 step of the float64 autograd of the
    reference that rounds its columns so (odd output channels and an odd pixel count:
    the padded pairs)."""
    if not deform_cpu._bf16_cpu():
        pytest.skip("this CPU has no AVX512-BF16")
    # one image: bands even when the windows are large, or never (the channel split)
    monkeypatch.setattr(deform_cpu, "BAND_WINDOW_COPIES", 100 if n else 0)
    case = (max(n, 1), 6, 7, 8, 5, (3, 2), (2, 1), (1, 0), (2, 1), 1, 3)
    _, _, _, _, _, _, stride, padding, dilation, _, _ = case
    data = [t.bfloat16() for t in make_deform(*case, seed=21)]
    fmt = LAYOUTS["channels_last"] if layout == "channels_last" else None
    out, grads = _value_grads(_fast(deform_impl(stride, padding, dilation, True, fmt=fmt)), data)
    ins = leaves(*(t.double() for t in data))
    x, off, w, b, m = ins
    want = ref_deform_conv2d(x, off, w, b, stride, padding, dilation, m, column=_bf16_values)
    g = rand(*out.shape, seed=1234).to(out.dtype)  # the upstream gradient _value_grads gave
    want_grads = torch.autograd.grad(want, ins, g.double())
    f32_grads = _value_grads(deform_impl(stride, padding, dilation, True),
                             [t.float() for t in data])[1]  # fmt: skip
    names = ("x", "offset", "weight", "bias", "mask")
    for name, g, wg in zip(names, grads, want_grads, strict=True):
        assert g.dtype == torch.bfloat16, name
        bound = 2.0**-8 * wg.abs() + 1e-3 * wg.abs().max()
        assert ((g.double() - wg).abs() <= bound).all(), name
    # the weight gradient's products took the rounded columns, not the float32 ones
    assert not torch.equal(grads[2], f32_grads[2].bfloat16())
    assert bool(band_calls) == (n == 1)


def test_channels_last_in_channels_last_out(gemm):
    case = (2, 32, 7, 6, 32, (3, 3), 1, 1, 1, 1, 1)
    x, off, wt, b, mask = make_deform(*case, seed=8)
    x, off, wt, b, mask = (t.float() for t in (x, off, wt, b, mask))
    xc = x.contiguous(memory_format=torch.channels_last).requires_grad_()
    out = deform_conv2d(xc, off, wt, b, 1, 1, 1, mask)
    assert out.is_contiguous(memory_format=torch.channels_last) and not out.is_contiguous()
    (gx,) = torch.autograd.grad(out, xc, torch.ones_like(out))
    assert gx.is_contiguous(memory_format=torch.channels_last)
    xn = x.clone().requires_grad_()
    plain = deform_conv2d(xn, off, wt, b, 1, 1, 1, mask)
    assert plain.is_contiguous()
    (gxn,) = torch.autograd.grad(plain, xn, torch.ones_like(plain))
    torch.testing.assert_close(out, plain, rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(gx, gxn, rtol=1e-6, atol=1e-5)
    # the pure path gives the same memory formats (fake/real strides agree on every path)
    with backends.deform_backend("torch"):
        assert deform_conv2d(xc, off, wt, b, 1, 1, 1, mask).is_contiguous(
            memory_format=torch.channels_last
        )


@pytest.mark.parametrize("n", [0, 33])
def test_batch_sizes(n, gemm):
    case = (n, 6, 7, 6, 4, (3, 2), (2, 1), (1, 0), (2, 1), 2, 3)
    _, _, _, _, _, _, stride, padding, dilation, _, _ = case
    data = make_deform(*case, seed=9)
    fn = deform_impl(stride, padding, dilation, True, step=5)
    if n == 0:
        out, grads = _value_grads(_fast(fn), list(data))
        assert out.shape[0] == 0 and all(
            g.shape == t.shape for g, t in zip(grads, data, strict=True)
        )
        return
    compare(_fast(fn), deform_ref(stride, padding, dilation, True), list(data))


def test_chunking_does_not_change_the_result(monkeypatch, gemm):
    """im2col_step, the chunk budget (whole images or parts of one) and the tile size only
    bound memory."""
    case = (5, 6, 7, 6, 4, (3, 2), (2, 1), (1, 0), (2, 1), 2, 3)
    _, _, _, _, _, _, stride, padding, dilation, _, _ = case
    data = list(make_deform(*case, seed=10))
    base = _value_grads(deform_impl(stride, padding, dilation, True, step=64), data)
    for budget, step in [(1 << 30, 1), (1 << 30, 2), (200, 64), (1000, 3), (8 * 24, 64)]:
        monkeypatch.setattr(deform_cpu, "CHUNK_BYTES", budget)
        monkeypatch.setattr(deform_cpu, "TILE_BYTES", budget)  # tiles of 1 row .. whole images
        out, grads = _value_grads(deform_impl(stride, padding, dilation, True, step=step), data)
        torch.testing.assert_close(out, base[0], rtol=1e-12, atol=1e-12)
        for g, g0 in zip(grads, base[1], strict=True):
            torch.testing.assert_close(g, g0, rtol=1e-12, atol=1e-12)


@pytest.fixture
def band_calls(monkeypatch):
    """The calls of the band-split backward of one image (a list, one entry a call)."""
    calls = []
    real = deform_cpu._backward_bands
    monkeypatch.setattr(deform_cpu, "_backward_bands", lambda *a: calls.append(1) or real(*a))
    return calls


@pytest.mark.parametrize("layout", ["NCHW", "channels_last"])
@pytest.mark.parametrize("dg", [1, 3])
def test_backward_of_one_image_by_bands(monkeypatch, band_calls, layout, dg):
    """One image: the output pixels in bands, each scattering its input gradient into a
    window of its own (added in band order); against the float64 reference, with offsets
    large enough that windows overlap, and the fallback to the channel split when the
    windows would hold too many copies of the input."""
    case = (1, 12, 14, 15, 8, (3, 2), (2, 1), (1, 0), (2, 1), 1, dg)
    _, _, _, _, _, _, stride, padding, dilation, _, _ = case
    data = list(make_deform(*case, seed=21))
    data[1] = data[1] * 4  # far samples: the bands' windows overlap
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    data[0] = data[0].contiguous(memory_format=fmt)
    fn = _fast(deform_impl(stride, padding, dilation, True))
    ref = _value_grads(deform_ref(stride, padding, dilation, True), data)
    for copies, used in ((100, True), (0, False)):
        monkeypatch.setattr(deform_cpu, "BAND_WINDOW_COPIES", copies)
        band_calls.clear()
        out, grads = _value_grads(fn, data)
        assert bool(band_calls) == used
        torch.testing.assert_close(out, ref[0], **TOL64)
        for g, rg in zip(grads, ref[1], strict=True):
            torch.testing.assert_close(g, rg, **TOL64)
        assert grads[0].is_contiguous(memory_format=fmt)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_backward_by_bands_keeps_the_nan_rule(monkeypatch, band_calls, dtype):
    """NaN / Inf in the input, offsets and mask of one image: the band-split backward puts
    NaN and Inf where the pure path does, and agrees elsewhere (docs/numerics.md)."""
    monkeypatch.setattr(deform_cpu, "BAND_WINDOW_COPIES", 100)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, 8, 12, 13, generator=g, dtype=dtype)
    off = torch.randn(1, 18, 12, 13, generator=g, dtype=dtype) * 3
    mask = torch.rand(1, 9, 12, 13, generator=g, dtype=dtype)
    w = torch.randn(6, 8, 3, 3, generator=g, dtype=dtype)
    b = torch.randn(6, generator=g, dtype=dtype)
    x[0, 2, 5, 5], x[0, 1, 0, 0] = float("nan"), float("inf")
    off[0, 3, 4, 4], off[0, 7, 1, 2], mask[0, 1, 6, 6] = float("nan"), float("inf"), float("nan")
    results = []
    for backend in ("auto", "torch"):
        ts = [t.clone().requires_grad_() for t in (x, off, w, b, mask)]
        with backends.deform_backend(backend):
            out = deform_conv2d(ts[0], ts[1], ts[2], ts[3], 1, 1, 1, ts[4])
            out.backward(torch.ones_like(out))
        results.append([out.detach()] + [t.grad for t in ts])
    assert band_calls == [1]
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    for fast, pure in zip(*results, strict=True):
        assert torch.equal(fast.isnan(), pure.isnan()) and torch.equal(fast.isinf(), pure.isinf())
        both = fast.isfinite() & pure.isfinite()
        torch.testing.assert_close(fast[both], pure[both], rtol=tol, atol=tol)


@pytest.mark.parametrize("layout", ["NCHW", "channels_last"])
def test_fused_backward_channel_blocks_and_tiles(monkeypatch, layout):
    """80 channels: the fused backward of NCHW input works in blocks of 64 channels (the
    second block cuts a deformable group), split between threads; tiles of 1 row up to
    whole images; all give the reference's numbers."""
    case = (2, 80, 5, 6, 8, (3, 2), (2, 1), (1, 0), (2, 1), 1, 2)
    _, _, _, _, _, _, stride, padding, dilation, _, _ = case
    data = list(make_deform(*case, seed=12))
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    data[0] = data[0].contiguous(memory_format=fmt)
    fn = _fast(deform_impl(stride, padding, dilation, True))
    ref = _value_grads(deform_ref(stride, padding, dilation, True), data)
    monkeypatch.setattr(deform_cpu, "ROUND_BYTES", 1)  # the smallest blocks
    for tile_bytes in (1, 4096, 1 << 30):
        monkeypatch.setattr(deform_cpu, "BACKWARD_TILE_BYTES", tile_bytes)
        out, grads = _value_grads(fn, data)
        torch.testing.assert_close(out, ref[0], **TOL64)
        for g, rg in zip(grads, ref[1], strict=True):
            torch.testing.assert_close(g, rg, **TOL64)
        assert grads[0].is_contiguous(memory_format=fmt)


@pytest.mark.parametrize("x_layout", ["NCHW", "channels_last"])
@pytest.mark.parametrize("grad_layout", ["NCHW", "channels_last", "strided"])
def test_output_gradient_in_any_layout(gemm, x_layout, grad_layout):
    """The incoming gradient need not have the output's memory format."""
    case = (2, 8, 6, 5, 6, (3, 3), 1, 1, 1, 1, 2)
    x, off, wt, b, mask = (t.float() for t in make_deform(*case, seed=13))
    if x_layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    ins = leaves(x, off, wt, b, mask)
    out = deform_conv2d(ins[0], ins[1], ins[2], ins[3], 1, 1, 1, ins[4])
    g = rand(*out.shape, seed=14).float()
    if grad_layout == "channels_last":
        g = g.contiguous(memory_format=torch.channels_last)
    elif grad_layout == "strided":
        g = rand(out.shape[0], out.shape[1], out.shape[2], 2 * out.shape[3], seed=14).float()
        g = g[..., ::2]
    grads = torch.autograd.grad(out, ins, g)
    ins2 = leaves(x, off, wt, b, mask)
    ref = torch.autograd.grad(_pure(deform_impl(1, 1, 1, True))(*ins2), ins2, g)
    for a, r in zip(grads, ref, strict=True):
        torch.testing.assert_close(a, r, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("use_mask", [True, False], ids=["v2", "v1"])
def test_gradcheck_fast(use_mask, gemm):
    case = (1, 6, 5, 4, 4, (3, 2), (2, 1), (1, 0), (2, 1), 2, 3)
    _, _, _, _, _, _, stride, padding, dilation, _, _ = case
    inputs = leaves(*deform_inputs(use_mask, *make_deform(*case, seed=21, scale=1.5)))
    assert torch.autograd.gradcheck(
        _fast(deform_impl(stride, padding, dilation, use_mask)), tuple(inputs), eps=1e-6, atol=1e-6,
        rtol=1e-5,
    )  # fmt: skip


def test_pure_path_is_device_agnostic_code():
    """The pure path (what runs on CUDA) forced on CPU equals the fast path."""
    _, _, _, _, _, _, stride, padding, dilation, _, _ = ASYM
    data = list(make_deform(*ASYM, seed=11))
    fn = deform_impl(stride, padding, dilation, True)
    a = _value_grads(_pure(fn), data)
    b = _value_grads(fn, data)
    torch.testing.assert_close(a[0], b[0], **TOL64)
    for ga, gb in zip(a[1], b[1], strict=True):
        torch.testing.assert_close(ga, gb, **TOL64)


# ----------------------------------------------------------------------------- BN folding


def _group(**kw):
    torch.manual_seed(0)
    g = onn.ImgConvGroup(3, [4, 5], pool_size=2, conv_act="relu", conv_with_batchnorm=True, **kw)
    gen = torch.Generator().manual_seed(1)
    for mod in g.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            with torch.no_grad():
                mod.weight.copy_(torch.rand(mod.num_features, generator=gen) + 0.5)
                mod.bias.copy_(torch.randn(mod.num_features, generator=gen))
                if mod.running_mean is not None:
                    mod.running_mean.copy_(torch.randn(mod.num_features, generator=gen))
                    mod.running_var.copy_(torch.rand(mod.num_features, generator=gen) + 0.5)
    return g.eval()


def _unfused(g, x):
    for layer in g:
        x = layer(x)
    return x


def test_bn_folded_in_eval_no_grad(monkeypatch):
    g = _group()
    x = torch.randn(2, 3, 9, 9)
    calls = []
    for name in ("bn0", "bn1"):
        bn = getattr(g, name)
        monkeypatch.setattr(
            bn, "forward", lambda t, bn=bn: calls.append(1) or type(bn).forward(bn, t)
        )
    with torch.no_grad():
        want = _unfused(g, x)
        calls.clear()
        got = g(x)
        assert calls == []  # BN skipped: folded into the convs
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
        # cached: a second call folds nothing new, an update invalidates the cache
        cache = dict(g._fold_cache)
        g(x)
        assert all(g._fold_cache[k][1][0] is cache[k][1][0] for k in cache)
        g.bn0.running_mean.add_(1.0)
        got2 = g(x)
        assert not torch.allclose(got2, got)
        torch.testing.assert_close(got2, _unfused(g, x), rtol=1e-5, atol=1e-5)
        g.conv1.weight.mul_(2)
        torch.testing.assert_close(g(x), _unfused(g, x), rtol=1e-5, atol=1e-5)


def test_eval_no_grad_keeps_the_input_memory_format():
    g = _group()
    x = torch.randn(2, 3, 9, 9)
    with torch.no_grad():
        assert g(x).is_contiguous()
        xc = x.contiguous(memory_format=torch.channels_last)
        out = g(xc)
        assert out.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(out, _unfused(g, x), rtol=1e-5, atol=1e-5)


def test_bn_not_folded_with_grad_or_in_training():
    g = _group()
    x = torch.randn(2, 3, 9, 9)
    # autograd on: the layers run one by one, bit-exactly
    assert torch.equal(g(x), _unfused(g, x))
    g.train()
    torch.manual_seed(3)
    a = g(x)
    g.eval()
    assert not torch.equal(a, _unfused(g, x))  # training used batch statistics


def test_bn_with_custom_forward_or_no_running_stats_not_folded():
    class MyBN(torch.nn.BatchNorm2d):
        def forward(self, t):
            return super().forward(t) + 1

    g = _group(norm_layer=MyBN)
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():  # the custom forward (+1) is honoured, not folded away
        torch.testing.assert_close(g(x), _unfused(g, x), rtol=1e-5, atol=1e-5)
    g2 = _group(norm_layer=lambda n, **kw: torch.nn.BatchNorm2d(n, track_running_stats=False, **kw))
    with torch.no_grad():
        torch.testing.assert_close(g2(x), _unfused(g2, x), rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- workspace


def _workspace_case(n=2, c=16, h=12, channels_last=False):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(n, c, h, h, generator=g)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    off = torch.randn(n, 18, h, h, generator=g) * 2
    mask = torch.rand(n, 9, h, h, generator=g)
    w = torch.randn(c, c, 3, 3, generator=g) * 0.1
    return x, off, w, torch.randn(c, generator=g), mask


def _workspace_run(data):
    ins = leaves(*data)
    out = deform_conv2d(ins[0], ins[1], ins[2], ins[3], 1, 1, 1, ins[4])
    grads = torch.autograd.grad(out, ins, torch.ones_like(out))
    return out, grads


def test_workspace_is_kept_reused_and_never_escapes():
    """A thread's second call takes its temporaries from the workspace the first left
    (no new buffer), computes the same bits as with none, and no result shares its
    memory; release_workspace frees it."""
    backends.release_workspace()
    assert backends.cached_workspace_bytes() == 0
    data = _workspace_case()
    first = _workspace_run(data)  # no workspace yet: fresh temporaries, sizes noted
    second = _workspace_run(data)  # the workspace is made at the start of each pass
    kept = deform_cpu._workspace_state.buffer
    assert kept is not None and backends.cached_workspace_bytes() > 0
    third = _workspace_run(data)
    assert deform_cpu._workspace_state.buffer is kept  # reused, not reallocated
    lo = kept.data_ptr()
    hi = lo + kept.numel()
    for out, grads in (first, second, third):
        for t in (out, *grads):
            assert not lo <= t.data_ptr() < hi  # results never live in the workspace
    for out, grads in (second, third):
        assert torch.equal(out, first[0])
        for g, g0 in zip(grads, first[1], strict=True):
            assert torch.equal(g, g0)
    backends.release_workspace()
    assert backends.cached_workspace_bytes() == 0


def test_workspace_beyond_the_cap_is_not_kept(monkeypatch):
    """Calls whose temporaries exceed WORKSPACE_CACHE_BYTES leave no workspace behind,
    and compute the same."""
    backends.release_workspace()
    data = _workspace_case()
    want = _workspace_run(data)
    monkeypatch.setattr(deform_cpu, "WORKSPACE_CACHE_BYTES", 1024)
    backends.release_workspace()
    for _ in range(2):
        out, grads = _workspace_run(data)
        assert backends.cached_workspace_bytes() == 0
        assert torch.equal(out, want[0])
        for g, g0 in zip(grads, want[1], strict=True):
            assert torch.equal(g, g0)


def test_workspace_is_per_thread():
    """Another thread's calls make and keep their own workspace; this thread's stays."""
    backends.release_workspace()
    data = _workspace_case(channels_last=True)
    _workspace_run(data)
    _workspace_run(data)
    mine = deform_cpu._workspace_state.buffer
    theirs = []

    def other():
        _workspace_run(data)
        _workspace_run(data)
        theirs.append(deform_cpu._workspace_state.buffer)

    worker = threading.Thread(target=other)
    worker.start()
    worker.join()
    assert theirs[0] is not None and mine is not None and theirs[0] is not mine
    assert deform_cpu._workspace_state.buffer is mine
    backends.release_workspace()
