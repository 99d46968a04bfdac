"""Interleaved timing: the one timing routine of ``omniconv bench``, for this interpreter's
contenders and for the peers' (standard library only: peers import it in interpreters
that have neither torch nor omniconv)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any, TypedDict

__all__ = ["Timing", "interleaved", "ratio", "schedule"]


class Timing(TypedDict):
    """One contender's times in milliseconds: the median and minimum over the rounds, and
    each round's time in round order."""

    median_ms: float
    min_ms: float
    runs_ms: list[float]


def schedule(names: list[str], rounds: int) -> list[list[str]]:
    """The running order of each round: the rows of a balanced Latin square (Williams
    1949), repeated. Over each block of ``n`` rounds (``2n`` for an odd ``n``) every
    contender runs first equally often and right after each other contender equally often,
    so none always inherits the caches and idle threads of the same other one. For two
    contenders the order simply alternates: a b, b a, a b, ..."""
    n = len(names)
    first, lo, hi = [0], 1, n - 1
    while len(first) < n:  # 0, 1, n-1, 2, n-2, ...
        first.append(lo)
        lo += 1
        if len(first) < n:
            first.append(hi)
            hi -= 1
    square = [[names[(f + r) % n] for f in first] for r in range(n)]
    if n % 2:
        square += [row[::-1] for row in square]
    return [square[i % len(square)] for i in range(rounds)] if n else []


def interleaved(
    fns: Mapping[str, Callable[[], Any]], rounds: int, warmup: int
) -> dict[str, Timing]:
    """Time each function once per round, in the order :func:`schedule` gives, after
    ``warmup`` untimed calls of each (which also trigger any JIT compilation)."""
    for f in fns.values():
        for _ in range(warmup):
            f()
    runs: dict[str, list[float]] = {k: [] for k in fns}
    for order in schedule(list(fns), rounds):
        for k in order:
            t = time.perf_counter()
            fns[k]()
            runs[k].append(1e3 * (time.perf_counter() - t))
    return {
        k: {"median_ms": statistics.median(v), "min_ms": min(v), "runs_ms": v}
        for k, v in runs.items()
    }


def ratio(num: Timing, den: Timing) -> float:
    """The median over rounds of ``num``'s time over ``den``'s time in the same round, so a
    noisy neighbour slows numerator and denominator alike."""
    return statistics.median(a / b for a, b in zip(num["runs_ms"], den["runs_ms"], strict=True))
