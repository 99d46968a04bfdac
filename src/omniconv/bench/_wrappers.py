"""The wrapper rows: omniconv's conv modules against torch's, forward under ``no_grad``.

Conv2d, ConvTranspose2d and NHWC Conv2d run the very same torch op as torch's modules,
and only the wrapper's microseconds differ: they take ``WRAPPER_ROUNDS`` times the rounds
given. ImgConvGroup in eval mode (BN folded into the conv) against the same layers run
one by one does real work on both sides and takes the rounds given."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import torch
from torch import Tensor

from .. import nn as onn
from .peers._timing import interleaved, ratio

__all__ = ["WRAPPER_ROUNDS", "bench_wrappers"]

WRAPPER_ROUNDS = 4


def _row(
    name: str,
    shape: list[int],
    ours: Callable[[], Any],
    native: Callable[[], Any],
    rounds: int,
    warmup: int,
    speedup: bool = False,
) -> dict[str, Any]:
    with torch.no_grad():
        t = interleaved({"torch": native, "omniconv": ours}, rounds, warmup)
    row: dict[str, Any] = {
        "name": name,
        "shape": shape,
        "rounds": rounds,
        "torch_ms": t["torch"]["median_ms"],
        "omniconv_ms": t["omniconv"]["median_ms"],
        "ratio": ratio(t["omniconv"], t["torch"]),
    }
    if speedup:
        row["speedup"] = ratio(t["torch"], t["omniconv"])
    return row


def _conv_rows(rounds: int, warmup: int, quick: bool) -> list[dict[str, Any]]:
    n, c, hw = (2, 16, 16) if quick else (4, 64, 56)
    x = torch.randn(n, c, hw, hw, generator=torch.Generator().manual_seed(0))
    ours = onn.Conv2d(c, c, 3, padding=1)
    ref = torch.nn.Conv2d(c, c, 3, padding=1)
    ref.load_state_dict(ours.state_dict())
    ours_t = onn.ConvTranspose2d(c, c, 3, stride=2, padding=1, output_padding=1)
    ref_t = torch.nn.ConvTranspose2d(c, c, 3, stride=2, padding=1, output_padding=1)
    ref_t.load_state_dict(ours_t.state_dict())
    ours_n = onn.Conv2d(c, c, 3, padding=1, layout="NHWC")
    ours_n.load_state_dict(ours.state_dict())
    x_nhwc = x.permute(0, 2, 3, 1).contiguous()
    x_cl = x.contiguous(memory_format=torch.channels_last)
    cases: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = [
        ("Conv2d", lambda: ours(x), lambda: ref(x)),
        ("ConvTranspose2d", lambda: ours_t(x), lambda: ref_t(x)),
        ("Conv2d NHWC", lambda: ours_n(x_nhwc), lambda: ref(x_cl).permute(0, 2, 3, 1)),
    ]
    rounds *= WRAPPER_ROUNDS
    return [_row(name, [n, c, hw], a, b, rounds, warmup) for name, a, b in cases]


def _img_conv_group_row(rounds: int, warmup: int, quick: bool) -> dict[str, Any]:
    n, c, hw = (4, 8, 16) if quick else (16, 32, 64)
    group = onn.ImgConvGroup(
        c, [c, c], pool_size=2, pool_stride=2, conv_act="relu", conv_with_batchnorm=True
    ).eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for mod in group.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                cast(Tensor, mod.running_mean).copy_(torch.randn(c, generator=gen))
                cast(Tensor, mod.running_var).copy_(torch.rand(c, generator=gen) + 0.5)
    layers = list(group)
    x = torch.randn(n, c, hw, hw, generator=gen)

    def unfused() -> Tensor:
        y = x
        for layer in layers:
            y = layer(y)
        return y

    name = "ImgConvGroup eval (BN folded)"
    row = _row(name, [n, c, hw], lambda: group(x), unfused, rounds, warmup, speedup=True)
    with torch.no_grad():
        row["max_abs_diff"] = (group(x) - unfused()).abs().max().item()
    return row


def bench_wrappers(rounds: int, warmup: int, quick: bool) -> list[dict[str, Any]]:
    """Conv2d, ConvTranspose2d, Conv2d NHWC and ImgConvGroup in eval mode."""
    return [*_conv_rows(rounds, warmup, quick), _img_conv_group_row(rounds, warmup, quick)]
