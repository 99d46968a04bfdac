"""``omniconv bench``: the timing method its docstring states, the JSON it prints, the table,
the memory measure, and the peer protocol (on fake peers; on onnxruntime in this
interpreter, or in OMNICONV_ONNXRUNTIME_PYTHON; on Paddle, MXNet and OpenVINO when
OMNICONV_PADDLE_PYTHON / OMNICONV_MXNET_PYTHON / OMNICONV_OPENVINO_PYTHON name their
interpreters). No assertion here is about speed."""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys

import numpy as np
import pytest
import torch

from omniconv import bench
from omniconv.bench import _dcn, _peers
from omniconv.bench._data import make_data
from omniconv.bench._dcn import PASSES
from omniconv.bench.peers._timing import interleaved, ratio, schedule
from omniconv.cli import main

TINY = (1, 4, 6)


@pytest.fixture(autouse=True)
def _keep_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


# --------------------------------------------------------------------------- timing


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_schedule_is_balanced(n):
    names = [chr(ord("a") + i) for i in range(n)]
    block = n if n % 2 == 0 else 2 * n
    orders = schedule(names, 3 * block)
    assert orders[block : 2 * block] == orders[:block]
    assert all(sorted(o) == names for o in orders)
    firsts = [o[0] for o in orders[:block]]
    assert all(firsts.count(k) == block // n for k in names)
    follows = [(o[i - 1], o[i]) for o in orders[:block] for i in range(1, n)]
    pairs = [(a, b) for a in names for b in names if a != b]
    assert sorted(follows) == sorted(pairs * (len(follows) // max(len(pairs), 1)))


def test_schedule_alternates_two_contenders():
    assert schedule(["dense", "x"], 4) == [["dense", "x"], ["x", "dense"]] * 2


def test_interleaved_warms_up_then_runs_each_once_per_round_in_schedule_order():
    log: list[str] = []
    fns = {k: (lambda k=k: log.append(k)) for k in ("a", "b", "c")}
    res = interleaved(fns, rounds=4, warmup=2)
    assert log[:6] == ["a", "a", "b", "b", "c", "c"]
    assert log[6:] == [k for order in schedule(["a", "b", "c"], 4) for k in order]
    assert log[6:9] == ["a", "b", "c"] and log[9:12] != log[6:9]
    for t in res.values():
        assert set(t) == {"median_ms", "min_ms", "runs_ms"} and len(t["runs_ms"]) == 4
        assert t["min_ms"] <= t["median_ms"] and t["min_ms"] == min(t["runs_ms"])


def test_ratio_is_the_median_of_the_rounds_ratios():
    num = {"median_ms": 0.0, "min_ms": 0.0, "runs_ms": [2.0, 30.0, 4.0]}
    den = {"median_ms": 0.0, "min_ms": 0.0, "runs_ms": [1.0, 10.0, 4.0]}
    assert ratio(num, den) == 2.0  # per round 2, 3, 1; the ratio of the medians would be 1


def test_each_contender_is_timed_against_dense_in_rounds_of_its_own(monkeypatch):
    calls: list[tuple[str, ...]] = []

    def spy(fns, rounds, warmup):
        calls.append(tuple(fns))
        return interleaved(fns, rounds, warmup)

    monkeypatch.setattr(_dcn, "interleaved", spy)
    row = _dcn.bench_dcn(TINY, "channels_last", rounds=2, warmup=0)
    contenders = ["omniconv", "pure_torch", "grid_sample"]
    assert calls == [("dense", name) for name in contenders for _ in ("fwd", "fwd+bwd")]
    assert row["rounds"] == 2 and row["layout"] == "channels_last"
    assert set(row["forward_ratio"]) == set(row["forward_backward_ratio"]) == set(contenders)


# --------------------------------------------------------------------------- the command

DCN_KEYS = {
    "shape",
    "layout",
    "rounds",
    "forward",
    "forward_backward",
    "forward_ratio",
    "forward_backward_ratio",
    "peak_memory_bytes",
}


def test_quick_json(capsys):
    assert main(["bench", "--quick", "--json", "--rounds", "2"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert "#" in captured.err  # the progress bar goes to stderr
    assert set(result) == {"threads", "torch", "fast_path", "rounds", "dcn", "peers", "wrappers"}
    assert result["threads"] == 2 and result["rounds"] == 2 and result["peers"] == {}
    assert [r["layout"] for r in result["dcn"]] == ["NCHW", "channels_last"]
    for row in result["dcn"]:
        assert set(row) == DCN_KEYS
        assert row["shape"] == list(bench.QUICK_SHAPES[0])
        for key in ("forward", "forward_backward"):
            assert set(row[key]) == {"dense", "omniconv", "pure_torch", "grid_sample"}
            assert all(len(v["runs_ms"]) == 2 and v["median_ms"] > 0 for v in row[key].values())
            assert set(row[key + "_ratio"]) == {"omniconv", "pure_torch", "grid_sample"}
        assert row["peak_memory_bytes"]["omniconv"] > 0
        assert row["peak_memory_bytes"]["dense"] > 0
    names = [w["name"] for w in result["wrappers"]]
    assert names == ["Conv2d", "ConvTranspose2d", "Conv2d NHWC", "ImgConvGroup eval (BN folded)"]
    assert [w["rounds"] for w in result["wrappers"]] == [8, 8, 8, 2]  # 4x for the thin wrappers
    assert result["wrappers"][-1]["max_abs_diff"] < 1e-4


def test_quick_table(capsys):
    assert (
        main(
            [
                "bench",
                "--quick",
                "--no-progress",
                "--no-baselines",
                "--rounds",
                "1",
                "--layout",
                "channels_last",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[1].split() == [
        "N,C,H=W",
        "layout",
        "pass",
        "dense",
        "ms",
        "omniconv",
        "ms",
        "ratio",
    ]
    assert [line.split()[:3] for line in lines[2:4]] == [
        ["2,32,20", "channels_last", "fwd"],
        ["2,32,20", "channels_last", "fwd+bwd"],
    ]
    assert "peak memory" in captured.out and "wrappers" in captured.out
    assert "pure_torch" not in captured.out and "#" not in captured.err


def _peer_result(rows):
    return {"threads": 2, "fast_path": True, "dcn": [], "peers": {"fake": rows}, "wrappers": []}


def test_table_shows_each_peers_ms_and_ratio_and_n_a_for_a_forward_only_peer():
    timing = {"median_ms": 0.0, "min_ms": 0.0, "runs_ms": []}
    dcn = {
        "shape": [1, 4, 6],
        "layout": "NCHW",
        "rounds": 3,
        **{k: {"dense": dict(timing, median_ms=1.0), "omniconv": timing} for k in PASSES},
        **{k + "_ratio": {"omniconv": 2.0} for k in PASSES},
        "peak_memory_bytes": {"dense": 0, "omniconv": 0},
    }
    ok = {"rel_diff": {"output": 1e-7}, "rtol": 1e-4, "ok": True}
    row = {"shape": [1, 4, 6], "op": "DCNv2", "agreement": ok, "forward_ratio": 1.5}
    row["forward"] = {"dense": timing, "deform": dict(timing, median_ms=12.345)}
    result = _peer_result({"framework": "fake 1.0", "rows": [row]})
    result["dcn"] = [dcn, dict(dcn, layout="channels_last")]
    lines = bench.format_table(result).splitlines()
    assert lines[1].split()[-4:] == ["fake", "ms", "fake", "ratio"]
    assert lines[2].split()[-2:] == ["12.35", "1.50x"]  # NCHW fwd: time per call and ratio
    assert lines[3].split()[-2:] == ["n/a", "n/a"]  # NCHW fwd+bwd: the peer has none
    assert lines[4].split()[-2:] == ["-", "-"]  # channels_last: peers run NCHW only
    assert "    its own dense conv, fwd, median ms: 1,4,6 0.00" in lines
    assert not any("dense conv, fwd+bwd" in line for line in lines)


def test_table_flags_a_peer_that_differs_and_one_that_failed():
    ok = {"rel_diff": {"output": 1e-7}, "rtol": 1e-4, "ok": True}
    bad = {"rel_diff": {"output": 0.5, "grad_x": None}, "rtol": 1e-4, "ok": False}
    rows = [
        {"shape": [1, 4, 6], "op": "DCNv2", "agreement": ok},
        {"shape": [1, 5, 6], "op": "DCNv2", "agreement": bad},
        {"shape": [1, 6, 6], "error": "MemoryError: too big"},
    ]
    text = bench.format_table(_peer_result({"framework": "fake 1.0", "rows": rows}))
    assert "fake (fake 1.0, DCNv2): DIFFERS from omniconv at 1,5,6" in text
    assert "5.0e-01" in text and "fake 1,6,6: MemoryError: too big" in text
    text = bench.format_table(_peer_result({"python": "/x", "error": "a\nNo module named b"}))
    assert "fake: failed" in text and "No module named b" in text


# --------------------------------------------------------------------------- memory, baselines


def test_peak_memory_counts_live_tensors():
    def alloc():
        a = torch.empty(1 << 20, dtype=torch.uint8)  # 1 MiB
        b = torch.empty(2 << 20, dtype=torch.uint8)  # 2 MiB, both live
        del a, b
        return torch.empty(512 << 10, dtype=torch.uint8)

    peak = bench.peak_memory(alloc)
    assert 3 << 20 <= peak < (3 << 20) + (64 << 10)


def test_grid_sample_baseline_matches_at_fractional_positions():
    from omniconv.functional import deform_conv2d

    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 6, 5, dtype=torch.float64, generator=g)
    w = torch.randn(3, 4, 3, 3, dtype=torch.float64, generator=g)
    off = torch.rand(2, 18, 6, 5, dtype=torch.float64, generator=g) * 0.8 + 0.1
    mask = torch.rand(2, 9, 6, 5, dtype=torch.float64, generator=g)
    got = bench.grid_sample_deform_conv2d(x, off, w, None, mask, 1)
    torch.testing.assert_close(got, deform_conv2d(x, off, w, None, 1, 1, 1, mask))


def test_data_is_the_same_in_both_layouts():
    a, b = make_data(TINY), make_data(TINY, channels_last=True)
    assert b.x.is_contiguous(memory_format=torch.channels_last)
    for k, v in a.arrays().items():
        np.testing.assert_array_equal(v, b.arrays()[k])
        assert v.dtype == np.float32 and v.flags.c_contiguous


# --------------------------------------------------------------------------- peers


def test_available_peers_are_the_modules_of_the_peers_package():
    assert bench.available_peers() == ["mxnet", "onnxruntime", "openvino", "paddle"]


def test_peers_package_imports_without_torch_or_omniconv():
    code = (
        "import sys; sys.modules['torch'] = sys.modules['omniconv'] = None; "
        "import peers._protocol, peers._timing, peers.paddle, peers.mxnet, peers.onnxruntime, "
        "peers.openvino"
    )
    env = dict(os.environ, PYTHONPATH=str(_peers.PEERS_ROOT))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


FAKE_PEER = """
import numpy as np

from peers._protocol import Case

ANSWERS = {answers!r}
SHIFT = {shift!r}
BACKWARD = {backward!r}


def build(data):
    answers = np.load(ANSWERS[data["x"].shape[1]])
    for k, v in data.items():  # the bench's very data
        if not np.array_equal(v, answers["data_" + k]):
            raise ValueError("not the bench's " + k)
    if data["x"].shape[1] == 5:
        raise MemoryError("too big")
    return Case(
        framework="fake 1.0",
        op="DCNv2",
        dense=lambda t: t["x"].sum(),
        deform=lambda t: answers["output"] + SHIFT,
        forward=lambda op: lambda: op(data),
        to_numpy=np.asarray,
        forward_backward=(lambda op: lambda: op(data)) if BACKWARD else None,
        grads=lambda: {{k: answers["grad_" + k] + SHIFT for k in ("x", "offset")}},
    )
"""


def _fake_peer(tmp_path, shapes, shift, backward=True):
    answers = {}
    for shape in shapes:
        inp = _peers.PeerInput(shape, "", make_data(shape))
        path = tmp_path / f"answers{shape[1]}.npz"
        arrays = {f"data_{k}": v for k, v in inp.data.arrays().items()}
        np.savez(path, **arrays, **inp.ours("DCNv2"))
        answers[shape[1]] = str(path)
    peer = tmp_path / "fake_peer.py"
    peer.write_text(FAKE_PEER.format(answers=answers, shift=shift, backward=backward))
    return str(peer)


def test_peer_protocol_on_a_fake_peer(tmp_path):
    shapes = [TINY, (1, 5, 6)]
    peer = _fake_peer(tmp_path, shapes, shift=0.0)
    with _peers.peer_inputs(shapes) as inputs:
        res = _peers.run_peer(peer, sys.executable, inputs, rounds=3, warmup=1)
    assert res["python"] == sys.executable and res["framework"] == "fake 1.0"
    good, failed = res["rows"]
    assert good["shape"] == list(TINY) and good["op"] == "DCNv2" and good["border"] == "zeros"
    for key in ("forward", "forward_backward"):
        assert set(good[key]) == {"dense", "deform"}
        assert len(good[key]["deform"]["runs_ms"]) == 3 and good[key + "_ratio"] > 0
    assert good["agreement"]["ok"]
    assert set(good["agreement"]["rel_diff"]) == {"output", "grad_x", "grad_offset"}
    assert failed == {"shape": [1, 5, 6], "error": "MemoryError: too big"}


def test_a_forward_only_peer_is_timed_and_checked_forward_only(tmp_path):
    peer = _fake_peer(tmp_path, [TINY], shift=0.0, backward=False)
    with _peers.peer_inputs([TINY]) as inputs:
        (row,) = _peers.run_peer(peer, sys.executable, inputs, rounds=1, warmup=0)["rows"]
    assert "forward_ratio" in row and "forward_backward" not in row
    assert row["agreement"]["ok"] and set(row["agreement"]["rel_diff"]) == {"output"}


def test_a_peer_whose_outputs_differ_fails_the_check(tmp_path):
    peer = _fake_peer(tmp_path, [TINY], shift=1e-2)
    with _peers.peer_inputs([TINY]) as inputs:
        (row,) = _peers.run_peer(peer, sys.executable, inputs, rounds=1, warmup=0)["rows"]
    assert not row["agreement"]["ok"]
    assert all(r > _peers.AGREEMENT_RTOL for r in row["agreement"]["rel_diff"].values())


def test_peer_failures_are_reported_not_raised():
    with _peers.peer_inputs([TINY]) as inputs:
        # this interpreter has no paddle: the peer runs, and each row reports the error
        res = _peers.run_peer("paddle", sys.executable, inputs, 1, 0)
        assert "ModuleNotFoundError" in res["rows"][0]["error"]
        res = _peers.run_peer("paddle", "/nonexistent/python", inputs, 1, 0)
        assert set(res) == {"python", "error"}


def test_agreement_compares_only_where_asked():
    ours = {"output": np.ones((1, 2, 3, 3)), "grad_x": np.ones((1, 2, 3, 3))}
    theirs = {"output": ours["output"].copy(), "grad_x": np.ones((1, 2, 3, 4))}
    theirs["output"][0, :, 0, 0] = 5.0
    corner = np.zeros((1, 1, 3, 3), bool)
    corner[..., 0, 0] = True
    assert not _peers.agreement(theirs, ours, {"output": None})["ok"]
    res = _peers.agreement(theirs, ours, {"output": ~corner})
    assert res["ok"] and res["rel_diff"] == {"output": 0.0}
    res = _peers.agreement(theirs, ours, {"output": ~corner, "grad_x": None})
    assert not res["ok"] and res["rel_diff"]["grad_x"] is None  # shapes differ
    assert not _peers.agreement(theirs, ours, {"grad_bias": None})["ok"]  # no output compared


def test_clamped_border_is_compared_where_all_samples_are_inside():
    data = make_data((1, 4, 5))
    data.offset.zero_()
    where = _peers.comparable(data, "clamp")
    assert set(where) == {"output", "grad_offset", "grad_bias"} and where["grad_bias"] is None
    # zero offsets: taps y-1..y+1 must lie in [0, 5 - 1): y in {1, 2}
    expected = np.zeros((1, 1, 5, 5), bool)
    expected[..., 1:3, 1:3] = True
    np.testing.assert_array_equal(where["output"], expected)
    assert where["grad_offset"].shape == (1, 18, 5, 5)
    np.testing.assert_array_equal(where["grad_offset"][0, 0], where["grad_offset"][0, 1])
    # at pixel (0, 1), tap (0, 0) samples row -1, tap (2, 2) (channels 16, 17) row 1
    assert not where["grad_offset"][0, 0, 0, 1] and where["grad_offset"][0, 16, 0, 1]
    assert all(v is None for v in _peers.comparable(data, "zeros").values())


@pytest.mark.parametrize("name", ["paddle", "mxnet"])
def test_real_peer_agrees_with_omniconv(name):
    python = os.environ.get(f"OMNICONV_{name.upper()}_PYTHON")
    if not python:
        pytest.skip(f"set OMNICONV_{name.upper()}_PYTHON to an interpreter with {name}")
    with _peers.peer_inputs([TINY]) as inputs:
        res = _peers.run_peer(name, python, inputs, rounds=1, warmup=0)
    (row,) = res["rows"]
    assert res["framework"].startswith(name) and "error" not in row
    assert row["forward_ratio"] > 0 and row["forward_backward_ratio"] > 0
    assert row["agreement"]["ok"], row["agreement"]
    assert (
        "output" in row["agreement"]["rel_diff"] and "grad_offset" in row["agreement"]["rel_diff"]
    )


def _forward_only_runtime_python(name):
    python = os.environ.get(f"OMNICONV_{name.upper()}_PYTHON")
    if python:
        return python
    if name == "onnxruntime":  # in the test extra: this interpreter has it
        pytest.importorskip("onnxruntime")
        pytest.importorskip("onnx")
        return sys.executable
    pytest.skip(f"set OMNICONV_{name.upper()}_PYTHON to an interpreter with {name}")


@pytest.mark.parametrize("name", ["onnxruntime", "openvino"])
def test_inference_runtime_peer_agrees_with_omniconv_forward_only(name):
    python = _forward_only_runtime_python(name)
    # offsets ~ N(0, 2^2) on a 6x6 image: many samples fall near or past the border, where a
    # different border rule (e.g. OpenVINO's bilinear_interpolation_pad=False) differs by ~0.4
    shapes = [TINY, (2, 8, 9)]
    with _peers.peer_inputs(shapes) as inputs:
        res = _peers.run_peer(name, python, inputs, rounds=2, warmup=1)
    assert res["framework"].startswith(name), res
    for row in res["rows"]:
        assert "error" not in row and row["op"] == "DCNv2" and row["border"] == "zeros"
        assert set(row["forward"]) == {"dense", "deform"} and row["forward_ratio"] > 0
        assert "forward_backward" not in row and "forward_backward_ratio" not in row
        assert set(row["agreement"]["rel_diff"]) == {"output"}
        assert row["agreement"]["ok"], row["agreement"]


# each runtime, set up in the peer's interpreter with the bench's environment, uses the
# bench's thread count: onnxruntime's sessions share one global pool of that size, OpenVINO's
# compiled model reports it (and float32 precision, not the CPU plugin's bfloat16 default)
RUNTIME_SETTINGS = {
    "onnxruntime": (
        "import onnxruntime as ort\n"
        "sizes = []\n"
        "ort.set_global_thread_pool_sizes = lambda *a, f=ort.set_global_thread_pool_sizes: "
        "(sizes.append(a), f(*a))\n"
        "from peers.onnxruntime import _session\n"
        "s = [_session(op, data) for op in ('DeformConv', 'Conv')]\n"
        "o = [x.get_session_options().use_per_session_threads for x in s]\n"
        "print(sizes, o, s[0].get_providers()[0])\n"
    ),
    "openvino": (
        "from peers.openvino import _compile\n"
        "m = _compile('deform', data).get_property\n"
        "print(m('INFERENCE_NUM_THREADS'), m('INFERENCE_PRECISION_HINT'))\n"
    ),
}
RUNTIME_EXPECTED = {
    "onnxruntime": "[(1, 1)] [False, False] CPUExecutionProvider",
    "openvino": "1 <Type: 'float32'>",
}


@pytest.mark.parametrize("name", ["onnxruntime", "openvino"])
def test_inference_runtime_peer_uses_the_bench_thread_count(name):
    python = _forward_only_runtime_python(name)
    torch.set_num_threads(1)  # not the runtimes' default (the core count; OpenVINO caps there)
    with _peers.peer_inputs([TINY]) as (inp,):
        code = f"import numpy as np\ndata = dict(np.load({inp.path!r}))\n" + RUNTIME_SETTINGS[name]
        proc = subprocess.run(
            [python, "-c", code], env=_peers._env(), capture_output=True, text=True, check=False
        )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == RUNTIME_EXPECTED[name]


# --------------------------------------------------------------------------- autocast, scale


def _paired_ratio(num, den):
    """The median over rounds of num's time / den's time in the same round."""
    return statistics.median(a / b for a, b in zip(num["runs_ms"], den["runs_ms"], strict=True))


@pytest.fixture(scope="module")
def sections():
    """One quick run with both opt-in sections, NCHW only (tiny shapes)."""
    n = torch.get_num_threads()
    try:
        return bench.run_bench(
            quick=True,
            rounds=2,
            layouts=("NCHW",),
            baselines=False,
            progress=False,
            autocast=True,
            scale=True,
        )
    finally:
        torch.set_num_threads(n)


def test_autocast_rows(sections):
    result = json.loads(json.dumps(sections))  # what --json prints
    (row,) = result["autocast"]
    assert row["shape"] == list(bench.QUICK_SHAPES[0]) and row["layout"] == "NCHW"
    assert row["rounds"] == 2 and row["dtype"] == "bfloat16"
    assert row["output_dtype"]["dense"] == "bfloat16"  # torch's conv2d computes in bf16
    assert row["output_dtype"]["omniconv"] in ("float32", "bfloat16")
    for key in ("forward", "forward_backward"):
        assert set(row[key]) == set(row[key + "_ratio"]) == {"dense", "omniconv"}
        for name, t in row[key].items():
            assert set(t) == {"float32", "autocast"}
            assert all(len(v["runs_ms"]) == 2 and v["median_ms"] > 0 for v in t.values())
            r = row[key + "_ratio"][name]
            assert r > 0 and r == pytest.approx(_paired_ratio(t["autocast"], t["float32"]))
    for name in ("dense", "omniconv"):
        errors = row["accuracy"][name]
        assert set(errors) == {"output", "grad_input"}
        # bfloat16 inputs: an error of bfloat16's order, not float32's, and not a blunder
        assert all(1e-5 < e < 5e-2 and math.isfinite(e) for e in errors.values()), errors


def test_autocast_contenders_see_bfloat16_inputs_under_autocast(monkeypatch):
    from omniconv.bench import _autocast
    from omniconv.bench._contenders import contenders

    seen = set()

    def spy(fn):
        def run(x, w, b, off, m):
            dtypes = tuple(str(t.dtype).removeprefix("torch.") for t in (x, w, b, off, m))
            seen.add((torch.is_autocast_enabled("cpu"), dtypes))
            return fn(x, w, b, off, m)

        return run

    fns = {k: spy(v) for k, v in contenders(baselines=False).items()}
    monkeypatch.setattr(_autocast, "contenders", lambda baselines: fns)
    row = _autocast.bench_autocast(TINY, "channels_last", rounds=1, warmup=0)
    low = ("bfloat16", "float32", "float32", "bfloat16", "bfloat16")
    assert seen == {(False, ("float32",) * 5), (True, low), (False, ("float64",) * 5)}
    assert row["layout"] == "channels_last"


def test_scale_rows(sections):
    scale = json.loads(json.dumps(sections))["scale"]
    assert scale["rounds"] == 3  # a third of the rounds, at least 3
    families = bench.QUICK_SCALE_FAMILIES
    expected = [(f, list(s)) for f, shapes in families.items() for s in shapes]
    assert [(r["family"], r["shape"]) for r in scale["rows"]] == expected
    for r in scale["rows"]:
        n, _, hw = r["shape"]
        t = r["forward_backward"]
        assert set(t) == {"dense", "omniconv"} and all(len(v["runs_ms"]) == 3 for v in t.values())
        assert r["ratio"] > 0
        assert r["ratio"] == pytest.approx(_paired_ratio(t["omniconv"], t["dense"]))
        assert r["megapixels"] == pytest.approx(n * hw * hw / 1e6)  # 3x3, padding 1: H_out = H
        per_mpix = t["omniconv"]["median_ms"] / r["megapixels"]
        assert r["omniconv_ms_per_megapixel"] == pytest.approx(per_mpix)
        mem = r["peak_memory_bytes"]
        assert mem["dense"] > 0 and mem["omniconv"] > 0
        assert r["excess_bytes"] == mem["omniconv"] - mem["dense"]
        assert r["offset_mask_bytes"] == 2 * n * (18 + 9) * hw * hw * 4  # float32, with grads


def test_thread_scaling_rows(sections):
    scale = json.loads(json.dumps(sections))["scale"]
    largest = [(f, list(shapes[-1])) for f, shapes in bench.QUICK_SCALE_FAMILIES.items()]
    assert [(r["family"], r["shape"]) for r in scale["threads"]] == largest
    for r in scale["threads"]:
        assert r["threads"] == [1, 2] and r["rounds"] == 3 and r["layout"] == "NCHW"
        for name in ("dense", "omniconv"):
            t = r["forward_backward"][name]
            assert set(t) == {"1", "2"} and all(len(v["runs_ms"]) == 3 for v in t.values())
            speedup = r["speedup"][name]
            assert speedup > 0 and speedup == pytest.approx(_paired_ratio(t["1"], t["2"]))


def test_thread_scaling_times_each_count_and_restores_the_threads(monkeypatch):
    from omniconv.bench import _scale

    counts = []
    real = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (counts.append(n), real(n)))
    real(3)
    _scale.bench_threads("batch", TINY, "NCHW", rounds=2, warmup=0)
    assert torch.get_num_threads() == 3 and counts[-1] == 3
    assert counts[:-1] == [1, 2, 2, 1] * 2  # two contenders, alternating order


def test_sections_in_the_table_only_when_asked(sections):
    text = bench.format_table(sections)
    assert "autocast: DCNv2 (omniconv) and dense conv2d under torch.autocast" in text
    assert "scale: DCNv2 3x3" in text and "thread scaling:" in text
    lines = text.splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith("autocast:"))
    assert lines[i + 1].split()[:6] == ["N,C,H=W", "layout", "pass", "float32", "ms", "autocast"]
    assert [line.split()[:3] for line in lines[i + 2 : i + 4]] == [
        ["2,32,20", "NCHW", "fwd"],
        ["2,32,20", "NCHW", "fwd+bwd"],
    ]
    i = next(i for i, line in enumerate(lines) if line.startswith("scale:"))
    assert lines[i + 1].split()[:3] == ["family", "N,C,H=W", "layout"]
    assert len([line for line in lines if line.split()[:1] in (["map"], ["batch"])]) == 6
    plain = {k: v for k, v in sections.items() if k not in ("autocast", "scale")}
    text = bench.format_table(plain)
    assert "autocast" not in text and "scale" not in text


@pytest.mark.parametrize("flags", [[], ["--autocast"], ["--scale"], ["--autocast", "--scale"]])
def test_cli_passes_the_section_flags(monkeypatch, capsys, flags):
    calls = []

    def run_bench(**kwargs):
        calls.append(kwargs)
        return {"threads": 2, "fast_path": True, "dcn": [], "peers": {}, "wrappers": []}

    monkeypatch.setattr(bench, "run_bench", run_bench)
    assert main(["bench", "--quick", "--no-progress", *flags]) == 0
    (kwargs,) = calls
    assert kwargs["autocast"] == ("--autocast" in flags)
    assert kwargs["scale"] == ("--scale" in flags)
