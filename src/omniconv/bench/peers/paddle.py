"""Paddle's DCNv2, ``paddle.vision.ops.deform_conv2d`` (Paddle 2.x / 3.x, CPU), against
``paddle.nn.functional.conv2d``. Eager mode; each timed call ends in ``.numpy()``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ._protocol import Case, Op

INPUTS = ("x", "weight", "bias", "offset", "mask")


def build(data: dict[str, np.ndarray]) -> Case:
    import paddle
    import paddle.nn.functional as F
    from paddle.vision.ops import deform_conv2d

    paddle.set_device("cpu")
    consts = {k: paddle.to_tensor(data[k]) for k in INPUTS}
    leaves = {k: paddle.to_tensor(data[k], stop_gradient=False) for k in INPUTS}
    grad = paddle.to_tensor(data["grad"])

    def forward(op: Op) -> Callable[[], Any]:
        def run() -> Any:
            with paddle.no_grad():
                return op(consts).numpy()

        return run

    def forward_backward(op: Op) -> Callable[[], Any]:
        def run() -> Any:
            for t in leaves.values():
                t.clear_gradient()
            op(leaves).backward(grad)
            return leaves["x"].grad.numpy()

        return run

    return Case(
        framework=f"paddle {paddle.__version__}",
        op="DCNv2",
        dense=lambda t: F.conv2d(t["x"], t["weight"], t["bias"], 1, 1),
        deform=lambda t: deform_conv2d(
            t["x"], t["offset"], t["weight"], t["bias"], 1, 1, 1, mask=t["mask"]
        ),
        forward=forward,
        to_numpy=np.asarray,
        forward_backward=forward_backward,
        grads=lambda: {k: t.grad.numpy() for k, t in leaves.items()},
    )
