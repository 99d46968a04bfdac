"""examples/: the digits script trains both nets end to end (a few steps on a subset), in
one process and under torchrun with two processes on gloo, and reports test accuracies."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import omniconv

pytest.importorskip("sklearn")

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "train_digits.py"
QUICK = ["--steps", "12", "--limit", "400", "--batch", "32", "--json"]


@pytest.fixture(scope="module")
def example():
    """examples/train_digits.py, imported as a module (its dataclass needs it registered)."""
    spec = importlib.util.spec_from_file_location("train_digits", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def _check(results: dict, processes: int) -> None:
    assert results["processes"] == processes
    assert results["train_images"] + results["test_images"] == 400
    assert results["test_images"] == 80 and results["steps"] == 12
    for name in ("Conv2d", "DeformConv2dPack"):
        assert 0.0 <= results[name]["test_accuracy"] <= 1.0
        assert results[name]["train_seconds"] > 0


def test_the_example_trains_both_nets_and_reports_their_accuracy(example, capsys):
    results = example.main(QUICK)
    out, err = capsys.readouterr()
    assert json.loads(out) == json.loads(json.dumps(results))
    _check(results, 1)
    assert "12/12" in err and "DeformConv2dPack: loss" in err  # the progress bar


def test_the_example_prints_a_line_per_net(example, capsys):
    example.main(QUICK[:-1])
    out = capsys.readouterr().out
    assert "320 training and 80 test images" in out and "1 process" in out
    assert out.count("test accuracy") == 2


def test_the_nets_differ_only_in_their_inner_convolutions(example):
    plain, deformable = example.make_net(False), example.make_net(True)
    kinds = [type(m).__name__ for m in plain], [type(m).__name__ for m in deformable]
    swapped = [i for i, (a, b) in enumerate(zip(*kinds, strict=True)) if a != b]
    assert [kinds[1][i] for i in swapped] == ["DeformConv2dPack", "DeformConv2dPack"]
    assert all(kinds[0][i] == "Conv2d" for i in swapped)
    x = torch.rand(2, 1, 32, 32)
    assert plain(x).shape == deformable(x).shape == (2, 10)


def test_warps_move_the_digits_and_keep_them_in_range(example):
    images, labels = example.load_digits()
    assert images.shape == (1797, 1, 32, 32) and labels.shape == (1797,)
    warped = example.warp(images[:64], torch.Generator().manual_seed(0))
    assert warped.shape == (64, 1, 32, 32)
    assert warped.min() >= 0 and warped.max() <= 1.0 + 1e-6
    assert (warped - images[:64]).abs().mean() > 0.05  # they did move


@pytest.mark.skipif(shutil.which("torchrun") is None and not (
    Path(sys.executable).parent / "torchrun").exists(), reason="no torchrun")  # fmt: skip
def test_the_example_runs_under_torchrun_with_ddp_on_gloo():
    torchrun = Path(sys.executable).parent / "torchrun"
    command = [str(torchrun) if torchrun.exists() else "torchrun"]
    src = str(Path(omniconv.__file__).resolve().parents[1])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([src, *filter(None, [os.environ.get("PYTHONPATH")])]),
        "OMP_NUM_THREADS": "1",
    }
    proc = subprocess.run(
        [*command, "--standalone", "--nproc_per_node=2", str(SCRIPT), *QUICK],
        capture_output=True, text=True, timeout=300, env=env, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, proc.stdout  # rank 0 reports, rank 1 does not
    _check(json.loads(lines[0]), 2)
