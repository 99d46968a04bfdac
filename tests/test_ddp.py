"""DistributedDataParallel on the gloo backend with omniconv's deformable conv: two
processes, each with half of a batch, end up with the gradient of the whole batch (as one
process computes it) and, after an optimiser step, with identical parameters."""

from __future__ import annotations

import os
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn

from omniconv.nn import DeformConv2dPack

pytestmark = pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(), reason="no gloo backend"
)

WORLD = 2
BATCH = 8  # split evenly: rank r takes rows [r*4, r*4 + 4)
TIMEOUT = 120  # seconds for the whole two-process run (it takes a few)
LR = 0.5


def _net() -> nn.Module:
    """The same net in every process: a DeformConv2dPack between dense layers, its offset
    predictor given weights so that the offsets (and their gradients) are not zero."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
        DeformConv2dPack(8, 8, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4),
    )  # fmt: skip
    with torch.no_grad():
        net[2].conv_offset.weight.normal_(0, 0.2)
    return net.double()


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(BATCH, 3, 10, 11, generator=g, dtype=torch.float64)
    return x, torch.randint(4, (BATCH,), generator=g)


def _step(model: nn.Module, net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict:
    """One SGD step on the mean loss of (x, y): the gradients, then the parameters."""
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in net.named_parameters()}
    torch.optim.SGD(model.parameters(), lr=LR).step()
    return {"grads": grads, "params": {n: p.detach().clone() for n, p in net.named_parameters()}}


def _worker(rank: int, store: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD,
        timeout=timedelta(seconds=TIMEOUT),
    )  # fmt: skip
    try:
        net = _net()
        model = nn.parallel.DistributedDataParallel(net)
        x, y = _batch()
        share = BATCH // WORLD
        mine = slice(rank * share, (rank + 1) * share)
        torch.save(_step(model, net, x[mine], y[mine]), Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()
    # The result is saved. Leave without the interpreter's finalization: a thread of
    # torch's gloo backend can still be exiting then and call std::terminate (SIGABRT in
    # ~5 % of runs here, with or without omniconv's kernels; seen in a core dump).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _run_two_processes(tmp_path: Path) -> list[dict]:
    ctx = mp.start_processes(
        _worker, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=WORLD, join=False,
        start_method="spawn",
    )  # fmt: skip
    deadline = time.monotonic() + TIMEOUT
    try:
        while not ctx.join(timeout=max(0.1, deadline - time.monotonic())):
            if time.monotonic() > deadline:
                pytest.fail(f"the {WORLD} DDP processes did not finish in {TIMEOUT} s")
    finally:
        for proc in ctx.processes:
            if proc.is_alive():
                proc.kill()
    return [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]


def test_ddp_on_gloo_averages_gradients_and_keeps_ranks_identical(tmp_path):
    x, y = _batch()
    net = _net()
    whole = _step(net, net, x, y)  # one process, the concatenated batch (compiles first)
    half_net = _net()
    half = _step(half_net, half_net, x[: BATCH // WORLD], y[: BATCH // WORLD])

    ranks = _run_two_processes(tmp_path)

    offset_grad = whole["grads"]["2.conv_offset.weight"]
    assert offset_grad.abs().max() > 1e-3  # the offsets take part in the gradient
    for name, want in whole["grads"].items():
        # the half batch alone gives another gradient: the ranks' agree with the whole
        # batch's only because DDP averaged them
        assert not torch.allclose(half["grads"][name], want, rtol=1e-3, atol=1e-6), name
        for r, got in enumerate(ranks):
            torch.testing.assert_close(
                got["grads"][name], want, rtol=1e-9, atol=1e-12,
                msg=lambda m, name=name, r=r: f"rank {r}, gradient of {name}: {m}",
            )  # fmt: skip
    for name, want in whole["params"].items():
        assert torch.equal(ranks[0]["params"][name], ranks[1]["params"][name]), name
        torch.testing.assert_close(ranks[0]["params"][name], want, rtol=1e-9, atol=1e-12)
        assert not torch.equal(want, dict(_net().named_parameters())[name]), name  # it moved
