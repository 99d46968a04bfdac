"""``omniconv bench``: runs, prints its table / JSON, measures memory, reports peer failures."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from omniconv import bench
from omniconv.cli import main


@pytest.fixture(autouse=True)
def _keep_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def test_quick_json(capsys):
    assert main(["bench", "--quick", "--json", "--repeats", "2"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["threads"] == 2
    assert "#" in captured.err  # the progress bar goes to stderr
    assert {r["layout"] for r in result["dcn"]} == {"NCHW", "channels_last"}
    for row in result["dcn"]:
        assert row["shape"] == list(bench.QUICK_SHAPES[0])
        for key in ("forward", "forward_backward"):
            assert set(row[key]) == {"dense", "omniconv", "pure_torch", "grid_sample"}
            assert all(v["median_ms"] > 0 for v in row[key].values())
            assert row[key + "_ratio"]["omniconv"] > 0
        assert row["peak_memory_bytes"]["omniconv"] > 0
        assert row["peak_memory_bytes"]["dense"] > 0
    names = [w["name"] for w in result["wrappers"]]
    assert names == ["Conv2d", "ConvTranspose2d", "Conv2d NHWC", "ImgConvGroup eval (BN folded)"]
    assert result["wrappers"][-1]["max_abs_diff"] < 1e-4


def test_quick_table(capsys):
    assert main(["bench", "--quick", "--no-progress", "--no-peers", "--repeats", "1",
                 "--layout", "channels_last"]) == 0  # fmt: skip
    captured = capsys.readouterr()
    out = captured.out
    assert "dense ms" in out and "omniconv ms" in out and "ratio" in out
    assert "channels_last" in out and "fwd+bwd" in out and "peak memory" in out
    assert "pure_torch" not in out and "#" not in captured.err


def test_peak_memory_counts_live_tensors():
    def alloc():
        a = torch.empty(1 << 20, dtype=torch.uint8)  # 1 MiB
        b = torch.empty(2 << 20, dtype=torch.uint8)  # 2 MiB, both live
        del a, b
        return torch.empty(512 << 10, dtype=torch.uint8)

    peak = bench.peak_memory(alloc)
    assert 3 << 20 <= peak < (3 << 20) + (64 << 10)


def test_grid_sample_peer_matches_at_fractional_positions():
    from omniconv.functional import deform_conv2d

    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 6, 5, dtype=torch.float64, generator=g)
    w = torch.randn(3, 4, 3, 3, dtype=torch.float64, generator=g)
    off = torch.rand(2, 18, 6, 5, dtype=torch.float64, generator=g) * 0.8 + 0.1
    mask = torch.rand(2, 9, 6, 5, dtype=torch.float64, generator=g)
    got = bench.grid_sample_deform_conv2d(x, off, w, None, mask, 1)
    torch.testing.assert_close(got, deform_conv2d(x, off, w, None, 1, 1, 1, mask))


def test_peer_failure_is_reported_not_raised():
    # this interpreter has neither paddle nor mxnet: the peer reports an error
    res = bench._run_peer("paddle", sys.executable, [(1, 4, 6)], 1, 0)
    assert "error" in res or all("error" in r for r in res["rows"])
    res = bench._run_peer("paddle", "/nonexistent/python", [(1, 4, 6)], 1, 0)
    assert "error" in res
