"""The autocast rows (``--autocast``): omniconv's DCNv2 (the ``omniconv`` contender of the
DCN rows: the functional ``deform_conv2d`` through the fast path) and torch's dense conv
under ``torch.autocast('cpu', dtype=torch.bfloat16)``, each against itself in float32
without autocast, forward and forward+backward, with the accuracy of the autocast results.

Under autocast the tensor inputs x, offset and mask are bfloat16 (what upstream autocast
layers hand on); weight and bias stay float32 parameters, cast by autocast where the op
asks for it. The upstream gradient has the dtype of the contender's output.

What omniconv's op does under autocast: ``kernels/deform_op.py``'s CPU autocast kernel
casts input, weight and bias to bfloat16 and offset and mask to float32, and the output is
bfloat16; on a CPU with AVX512-BF16 the kernels multiply in bfloat16 with float32 sums
(forward and the backward's two products), elsewhere they compute the bfloat16 values in
float32. torch's conv2d computes in bfloat16 (oneDNN) and returns bfloat16.

Accuracy: max |autocast result - float64 result| / max |float64 result|, for the output
and for the input gradient; the float64 result is the same contender in float64 (for the
DCN: omniconv's ``deform_conv2d``) on the float32 data cast to float64.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

import torch
from torch import Tensor

from ._contenders import Contender, ForwardBackward, contenders, forward
from ._data import Data, make_data
from ._dcn import PASSES
from .peers._timing import interleaved, ratio

__all__ = ["AUTOCAST_DTYPE", "bench_autocast"]

#: the reduced precision timed (the CPU's bfloat16 instructions)
AUTOCAST_DTYPE = torch.bfloat16


def _cast(data: Data, dtype: torch.dtype, names: tuple[str, ...]) -> Data:
    """``data`` with the tensors ``names`` in ``dtype`` (memory format preserved)."""
    return replace(data, **{k: getattr(data, k).to(dtype) for k in names})


def _under_autocast(fn: Contender) -> Contender:
    def run(*args: Tensor) -> Tensor:
        with torch.autocast("cpu", dtype=AUTOCAST_DTYPE):
            return fn(*args)

    return run


def _relative_error(got: Tensor, ref: Tensor) -> float:
    ref = ref.detach().double()
    return ((got.detach().double() - ref).abs().max() / ref.abs().max()).item()


def _accuracy(fn: Contender, amp: Contender, low: Data, f64: Data) -> dict[str, float]:
    """Output and input-gradient error of one autocast forward+backward against float64."""
    ref, got = ForwardBackward(fn, f64), ForwardBackward(amp, low)
    out_ref, out = ref(), got()
    # backward ran, so the input leaves hold their gradients
    grad_ref, grad = (cast(Tensor, run.leaves[0].grad) for run in (ref, got))
    return {"output": _relative_error(out, out_ref), "grad_input": _relative_error(grad, grad_ref)}


def bench_autocast(
    shape: tuple[int, int, int], layout: str, rounds: int, warmup: int
) -> dict[str, Any]:
    """One shape in one layout: ``dense`` and ``omniconv`` under autocast against float32,
    each pair in interleaved rounds of its own; the ratio is autocast / float32 (< 1:
    autocast is faster)."""
    f32 = make_data(shape, seed=0, channels_last=layout == "channels_last")
    low = _cast(f32, AUTOCAST_DTYPE, ("x", "offset", "mask"))
    f64 = _cast(f32, torch.float64, ("x", "weight", "bias", "offset", "mask", "grad"))
    row: dict[str, Any] = {
        "shape": list(shape),
        "layout": layout,
        "rounds": rounds,
        "dtype": str(AUTOCAST_DTYPE).removeprefix("torch."),
        "output_dtype": {},
        "accuracy": {},
    }
    row.update({k: {} for key in PASSES for k in (key, key + "_ratio")})
    for name, fn in contenders(baselines=False).items():
        amp = _under_autocast(fn)
        out_dtype = forward(amp, low)().dtype
        row["output_dtype"][name] = str(out_dtype).removeprefix("torch.")
        low_out = _cast(low, out_dtype, ("grad",))
        for key, make in PASSES.items():
            pair = {"float32": make(fn, f32), "autocast": make(amp, low_out)}
            res = interleaved(pair, rounds, warmup)
            row[key][name] = res
            row[key + "_ratio"][name] = ratio(res["autocast"], res["float32"])
        row["accuracy"][name] = _accuracy(fn, amp, low_out, f64)
    return row
