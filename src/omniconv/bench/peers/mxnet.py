"""MXNet 1.x's ``nd.contrib.DeformableConvolution`` against ``nd.Convolution``.

That is DCNv1: the modulated op (v2) is GPU-only in MXNet 1.x, so ``mask`` is not used
and the bench checks the outputs against omniconv's DCNv1. It samples with the MSRA DCNv1
code's ``"clamp"`` border (see ``Case``; measured: a sample at row -0.5 reads 0, at row
H - 0.7 reads row H - 1 in full), so the check covers the samples away from the border.

MXNet's engine runs one worker thread here (its operators still use ``OMP_NUM_THREADS``
threads each); each timed call ends by waiting for the engine."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from ._protocol import Case, Op

INPUTS = ("x", "weight", "bias", "offset")


def build(data: dict[str, np.ndarray]) -> Case:
    os.environ.setdefault("MXNET_CPU_WORKER_NTHREADS", "1")  # before mxnet starts its engine
    import mxnet as mx
    from mxnet import autograd

    nd = mx.nd
    c_out, _, kh, kw = data["weight"].shape
    args = {"kernel": (kh, kw), "pad": (1, 1), "num_filter": c_out}
    consts = {k: nd.array(data[k], dtype="float32") for k in INPUTS}
    leaves = {k: nd.array(data[k], dtype="float32") for k in INPUTS}
    for t in leaves.values():
        t.attach_grad()
    grad = nd.array(data["grad"], dtype="float32")

    def forward(op: Op) -> Callable[[], Any]:
        def run() -> Any:
            out = op(consts)
            out.wait_to_read()
            return out

        return run

    def forward_backward(op: Op) -> Callable[[], Any]:
        def run() -> Any:
            with autograd.record():
                out = op(leaves)
            out.backward(grad)
            nd.waitall()

        return run

    return Case(
        framework=f"mxnet {mx.__version__}",
        op="DCNv1",
        dense=lambda t: nd.Convolution(t["x"], t["weight"], t["bias"], **args),
        deform=lambda t: nd.contrib.DeformableConvolution(
            t["x"], t["offset"], t["weight"], t["bias"], **args
        ),
        forward=forward,
        to_numpy=lambda out: out.asnumpy(),
        forward_backward=forward_backward,
        grads=lambda: {k: t.grad.asnumpy() for k, t in leaves.items()},
        border="clamp",
    )
