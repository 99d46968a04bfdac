"""Paddle's batch norm and ``downgrade_in_infer`` dropout as small torch modules (the
``norm_layer`` / ``dropout_layer`` factories of :class:`omniconv.nn.ImgConvGroup`)."""

from __future__ import annotations

import numbers
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..._args import check_positive_int, fail
from .._errors import received

__all__ = ["BatchNorm", "Dropout"]


class BatchNorm(nn.BatchNorm2d):
    """``fluid.layers.batch_norm`` (NCHW, ``momentum=0.9``, ``epsilon=1e-5``).

    Paddle's ``momentum`` is the weight of the **old** running value
    (``running = running*0.9 + batch*0.1``, i.e. torch momentum 0.1), and the running
    variance is updated with the **biased** batch variance (torch uses the unbiased one).
    Training normalises with the batch mean and biased variance; eval with the running
    statistics. Parameters ``weight`` (scale, 1), ``bias`` (0); buffers ``running_mean``
    (0), ``running_var`` (1); no ``num_batches_tracked``.
    """

    def __init__(
        self,
        num_features: int,
        momentum: float = 0.9,
        epsilon: float = 1e-5,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        num_features = check_positive_int(num_features, "num_features")
        for arg, value in (("momentum", momentum), ("epsilon", epsilon)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                fail(arg, "a number", value, exc=TypeError)
        if not 0.0 <= float(momentum) <= 1.0:
            fail("momentum", "in [0, 1]", momentum)
        if not float(epsilon) > 0:
            fail("epsilon", "positive", epsilon)
        # Paddle's op attributes are float32: momentum 0.9 is 0.89999997615814...
        momentum, epsilon = float(np.float32(momentum)), float(np.float32(epsilon))
        super().__init__(
            num_features, eps=epsilon, momentum=1.0 - momentum, device=device, dtype=dtype
        )
        self.num_batches_tracked = None
        self.paddle_momentum = momentum

    def _load_from_state_dict(
        self, state_dict: Any, prefix: str, local_metadata: Any, *args: Any
    ) -> None:
        # version 2: torch must not add a num_batches_tracked entry (there is none)
        local_metadata = {**local_metadata, "version": 2}
        super()._load_from_state_dict(state_dict, prefix, local_metadata, *args)

    def forward(self, input: Tensor) -> Tensor:
        # always tracked (the constructor keeps track_running_stats)
        running_mean, running_var = cast(Tensor, self.running_mean), cast(Tensor, self.running_var)
        if not self.training:
            return F.batch_norm(
                input, running_mean, running_var, self.weight, self.bias, False, 0.0, self.eps
            )
        out = F.batch_norm(input, None, None, self.weight, self.bias, True, 0.0, self.eps)
        with torch.no_grad():
            x = input.detach()
            mean = x.mean(dim=(0, 2, 3))
            var = x.var(dim=(0, 2, 3), unbiased=False)
            m = self.paddle_momentum
            running_mean.mul_(m).add_(mean.to(running_mean.dtype), alpha=1.0 - m)
            running_var.mul_(m).add_(var.to(running_var.dtype), alpha=1.0 - m)
        return out

    def extra_repr(self) -> str:
        return f"{self.num_features}, momentum={self.paddle_momentum}, epsilon={self.eps}"


class Dropout(nn.Module):
    """``fluid.layers.dropout`` with ``dropout_implementation='downgrade_in_infer'``:
    training ``x * mask`` with ``mask ~ Bernoulli(1 - p)`` and **no** rescaling;
    eval ``x * (1 - p)`` (``1 - p`` in float32, as Paddle's float attribute). PyTorch's
    and Paddle 2.x's default is upscale_in_train instead."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
            raise ValueError(
                received("'dropout_prob' must be between 0.0 and 1.0.", dropout_prob=p)
            )
        self.p = float(p)
        # the dropout_prob attribute is float32; eval scales by (1.0f - p)
        self.keep = float(np.float32(1.0) - np.float32(p))

    def sample_mask(self, input: Tensor) -> Tensor:
        """The keep mask (1 keeps, 0 drops); one Bernoulli(1 - p) draw per element."""
        return torch.bernoulli(torch.full_like(input, 1.0 - self.p))

    def forward(self, input: Tensor) -> Tensor:
        if self.training:
            return input * self.sample_mask(input)
        return input * self.keep

    def extra_repr(self) -> str:
        return f"p={self.p}, dropout_implementation='downgrade_in_infer'"
