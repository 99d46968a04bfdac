# ruff: noqa: E501
# (tables of pinned one-line error messages)
"""Error tables of every public surface (issue 12, point 1): each row is a call, the exact
exception class raised (a ValueError / TypeError, a MemoryError for sizes that cannot be
allocated, or a front-end's class that is both its framework's type and one of these), and
the whole message, pinned (exactly, or by a regex that must match all of it where the
message holds this machine's memory size).

The core tables of ``tests/test_errors.py`` (functional and nn: ranks, dtypes, devices,
channels, offsets, masks, padding) are not repeated here; ``CORE`` adds what they lack
(flags that must be bools, sizes that cannot be allocated, devices of every tensor).
docs/errors.md lists the tables.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import omniconv.compat.gluon as G
import omniconv.compat.megengine as M
import omniconv.compat.mmcv.ops as MM
import omniconv.compat.paddle as P
import omniconv.compat.paddle.nn.functional as PF
import omniconv.compat.paddle.vision.ops as PV
import omniconv.compat.torchvision.ops as TV
from omniconv import backends, viz
from omniconv import functional as F
from omniconv import io as oio
from omniconv import nn as onn
from omniconv.compat.gluon import GluonAssertionError, MXNetTypeError, MXNetValueError
from omniconv.compat.megengine import MegEngineAssertionError, MegEngineRuntimeError
from omniconv.compat.mmcv._errors import MMCVAssertionError, MMCVRuntimeError
from omniconv.compat.paddle import PaddleAssertionError, PaddleZeroDivisionError, fluid
from omniconv.compat.torchvision import TorchvisionTypeError, TorchvisionValueError

HUGE = 2**40  # a channel count or size no machine allocates (2**40 * 4 * 9 * 4 bytes: 144 TiB)
#: this machine's memory as the MemoryError messages show it
MACHINE = r"\d+ bytes \(\d+\.\d [KMGTPE]iB\), this machine's memory \(RAM \+ swap\)"

X = torch.randn(2, 4, 8, 8)
W = torch.randn(6, 4, 3, 3)
WT = torch.randn(4, 6, 3, 3)  # transposed: C_in 4, C_out 6
B = torch.zeros(6)
DX = torch.randn(2, 4, 7, 7)  # deformable: 3x3 kernel, dg 1 -> offset 18, mask 9 channels, 5x5 out
OFF = torch.zeros(2, 18, 5, 5)
MASK = torch.ones(2, 9, 5, 5)
DW = torch.randn(6, 4, 3, 3)


def meta(*shape):
    return torch.empty(*shape, device="meta")


def check(exc: type[Exception], message: str | re.Pattern[str], fn) -> None:
    """``fn()`` raises exactly ``exc``, a ValueError / TypeError / MemoryError, whose whole
    message is ``message`` (a str: exactly; a pattern: a full match)."""
    with pytest.raises(Exception) as info:
        fn()
    err = info.value
    assert type(err) is exc, f"{type(err).__name__} is not exactly {exc.__name__}: {err}"
    assert isinstance(err, ValueError | TypeError | MemoryError), type(err).__mro__
    text = str(err)
    if isinstance(message, re.Pattern):
        assert message.fullmatch(text), text
    else:
        assert text == message


def _case(exc, message, fn, id):
    return pytest.param(exc, message, fn, id=id)


FIXTURES = Path(__file__).parent / "fixtures"
CKPT = FIXTURES / "ckpt_mmdet_dcn.pth"


def _gluon_conv():
    layer = G.nn.Conv2D(6, 3, in_channels=4)
    layer.initialize()
    return layer


def _plot(image=None, **kwargs):
    """``viz.plot_sampling`` of a 7x7 image with a 3x3 kernel and ``kwargs``."""
    kwargs.setdefault("kernel_size", 3)
    image = torch.rand(3, 7, 7) if image is None else image
    return viz.plot_sampling(image, OFF, **kwargs)


# --------------------------------------------------------------------------- core
CORE_CASES = [
    _case(
        TypeError,
        "`bias` must be True or False; received bias='no'",
        lambda: onn.Conv2d(4, 6, 3, bias="no"),
        "conv-bias-str",
    ),
    _case(
        TypeError,
        "`bias` must be True or False; received bias=1",
        lambda: onn.Conv2d(4, 6, 3, bias=1),
        "conv-bias-int",
    ),
    _case(
        TypeError,
        "`bias` must be True or False; received bias=None",
        lambda: onn.Conv2d(4, 6, 3, bias=None),
        "conv-bias-none",
    ),
    _case(
        TypeError,
        "`bias` must be True or False; received bias='no'",
        lambda: onn.ConvTranspose2d(4, 6, 3, bias="no"),
        "convT-bias-str",
    ),
    _case(
        TypeError,
        "`bias` must be True or False; received bias=0",
        lambda: onn.LazyConv2d(6, 3, bias=0),
        "lazy-bias-int",
    ),
    _case(
        TypeError,
        "`bias` must be True or False; received bias='no'",
        lambda: onn.DeformConv2d(4, 6, 3, bias="no"),
        "deform-bias-str",
    ),
    _case(
        TypeError,
        "`modulated` must be True, False or None; received modulated='no'",
        lambda: onn.DeformConv2d(4, 6, 3, modulated="no"),
        "deform-modulated-str",
    ),
    _case(
        TypeError,
        "`modulated` must be True, False or None; received modulated=0",
        lambda: onn.DeformConv2d(4, 6, 3, modulated=0),
        "deform-modulated-int",
    ),
    _case(
        TypeError,
        "`modulated` must be True, False or None; received modulated='yes'",
        lambda: onn.DeformConv2dPack(4, 6, 3, modulated="yes"),
        "pack-modulated-str",
    ),
    _case(
        TypeError,
        "`conv_with_batchnorm` must be True or False; received conv_with_batchnorm='yes'",
        lambda: onn.ImgConvGroup(4, [4], 2, conv_with_batchnorm="yes"),
        "group-bn-str",
    ),
    _case(
        TypeError,
        "`conv_with_batchnorm[1]` must be True or False; received conv_with_batchnorm[1]=1",
        lambda: onn.ImgConvGroup(4, [4, 4], 2, conv_with_batchnorm=[True, 1]),
        "group-bn-list-int",
    ),
    _case(
        ValueError,
        "`pool_stride` must be at most 2147483647 (torch's pooling takes 32-bit ints); received pool_stride=2147483648",
        lambda: onn.ImgConvGroup(4, [4], 2, pool_stride=2**31),
        "group-pool-stride-int32",
    ),
    _case(
        ValueError,
        "`pool_size` must be at most 2147483647 (torch's pooling takes 32-bit ints); received pool_size=(2, 2147483648)",
        lambda: onn.ImgConvGroup(4, [4], (2, 2**31)),
        "group-pool-size-int32",
    ),
    _case(
        ValueError,
        "`conv_filter_size` must be small enough for the weight (4, 4, 1099511627776, 1099511627776) to be allocated: 77371252455336267181195264 bytes (67108864.0 EiB) > 9223372036854775807 bytes (8.0 EiB), what a process can address; received conv_filter_size=(1099511627776, 1099511627776)",
        lambda: onn.ImgConvGroup(4, [4], 2, conv_filter_size=HUGE),
        "group-filter-huge",
    ),
    _case(
        MemoryError,
        re.compile(
            "`conv_num_filter` must be small enough for the weight \\(1099511627776, 4, 3, 3\\) to be allocated: 158329674399744 bytes \\(144\\.0 TiB\\) > "
            + MACHINE
            + "; received conv_num_filter=1099511627776"
        ),
        lambda: onn.ImgConvGroup(4, [HUGE], 2),
        "group-num-filter-huge",
    ),
    _case(
        MemoryError,
        re.compile(
            "`in_channels` must be small enough for the weight \\(6, 1099511627776, 3, 3\\) to be allocated: 237494511599616 bytes \\(216\\.0 TiB\\) > "
            + MACHINE
            + "; received in_channels=1099511627776"
        ),
        lambda: onn.Conv2d(HUGE, 6, 3),
        "conv-in-huge",
    ),
    _case(
        MemoryError,
        re.compile(
            "`out_channels` must be small enough for the weight \\(1099511627776, 4, 3, 3\\) to be allocated: 158329674399744 bytes \\(144\\.0 TiB\\) > "
            + MACHINE
            + "; received out_channels=1099511627776"
        ),
        lambda: onn.Conv2d(4, HUGE, 3),
        "conv-out-huge",
    ),
    _case(
        MemoryError,
        re.compile(
            "`out_channels` must be small enough for the weight \\(1099511627776, 4, 3, 3\\) to be allocated: 316659348799488 bytes \\(288\\.0 TiB\\) > "
            + MACHINE
            + "; received out_channels=1099511627776"
        ),
        lambda: onn.Conv2d(4, HUGE, 3, dtype=torch.float64),
        "conv-out-huge-f64",
    ),
    _case(
        ValueError,
        "`kernel_size` must be small enough for the weight (6, 4, 1099511627776, 1099511627776) to be allocated: 116056878683004400771792896 bytes (100663296.0 EiB) > 9223372036854775807 bytes (8.0 EiB), what a process can address; received kernel_size=1099511627776",
        lambda: onn.Conv2d(4, 6, HUGE),
        "conv-kernel-huge",
    ),
    _case(
        ValueError,
        "`in_channels` must be small enough for the weight (1099511627776, 1099511627776, 3, 3) to be allocated: 43521329506126650289422336 bytes (37748736.0 EiB) > 9223372036854775807 bytes (8.0 EiB), what a process can address; received in_channels=1099511627776",
        lambda: onn.Conv2d(HUGE, HUGE, 3, device="meta"),
        "conv-meta-in-out-huge",
    ),
    _case(
        MemoryError,
        re.compile(
            "`in_channels` must be small enough for the weight \\(1099511627776, 6, 3, 3\\) to be allocated: 237494511599616 bytes \\(216\\.0 TiB\\) > "
            + MACHINE
            + "; received in_channels=1099511627776"
        ),
        lambda: onn.ConvTranspose2d(HUGE, 6, 3),
        "convT-in-huge",
    ),
    _case(
        MemoryError,
        re.compile(
            "`out_channels` must be small enough for the weight \\(4, 549755813888, 3, 3\\) to be allocated: 79164837199872 bytes \\(72\\.0 TiB\\) > "
            + MACHINE
            + "; received out_channels=1099511627776"
        ),
        lambda: onn.ConvTranspose2d(4, HUGE, 3, groups=2),
        "convT-out-huge-groups",
    ),
    _case(
        MemoryError,
        re.compile(
            "`out_channels` must be small enough for the weight \\(1099511627776, 4, 3, 3\\) to be allocated: 158329674399744 bytes \\(144\\.0 TiB\\) > "
            + MACHINE
            + "; received out_channels=1099511627776"
        ),
        lambda: onn.DeformConv2d(4, HUGE, 3),
        "deform-out-huge",
    ),
    _case(
        MemoryError,
        re.compile(
            "`kernel_size` must be small enough for the weight \\(6, 4, 3, 1099511627776\\) to be allocated: 316659348799488 bytes \\(288\\.0 TiB\\) > "
            + MACHINE
            + "; received kernel_size=\\(3, 1099511627776\\)"
        ),
        lambda: onn.DeformConv2d(4, 6, (3, HUGE)),
        "deform-kernel-huge",
    ),
    _case(
        MemoryError,
        re.compile(
            "`in_channels` must be small enough for the weight \\(6, 1099511627776, 3, 3\\) to be allocated: 237494511599616 bytes \\(216\\.0 TiB\\) > "
            + MACHINE
            + "; received in_channels=1099511627776"
        ),
        lambda: onn.DeformConv2dPack(HUGE, 6, 3),
        "pack-in-huge",
    ),
    _case(
        ValueError,
        "`padding` must be small enough for the padded input (2, 4, 2199023255560, 2199023255560) to be allocated: 154742504911798434269235200 bytes (134217728.0 EiB) > 9223372036854775807 bytes (8.0 EiB), what a process can address; received padding=(1099511627776, 1099511627776, 1099511627776, 1099511627776)",
        lambda: F.conv2d(X, W, padding=HUGE),
        "F-conv-padding-huge",
    ),
    _case(
        ValueError,
        "`padding` must be small enough for the padded input (2, 4, 2199023255560, 2199023255560) to be allocated: 154742504911798434269235200 bytes (134217728.0 EiB) > 9223372036854775807 bytes (8.0 EiB), what a process can address; received padding=(1099511627776, 1099511627776, 1099511627776, 1099511627776)",
        lambda: F.conv2d(meta(2, 4, 8, 8), meta(6, 4, 3, 3), padding=HUGE),
        "F-conv-padding-huge-meta",
    ),
    _case(
        ValueError,
        "`weight.shape` must be small enough for the output (1, 16, 1073741824, 1073741824) to be allocated: 73786976294838206464 bytes (64.0 EiB) > 9223372036854775807 bytes (8.0 EiB), what a process can address; received weight.shape=(16, 1, 1, 1)",
        lambda: F.conv2d(meta(1, 1, 2**30, 2**30), meta(2**4, 1, 1, 1)),
        "F-conv-out-huge-meta",
    ),
    _case(
        MemoryError,
        re.compile(
            "`input\\.shape` must be small enough for the input \\(1048576, 4, 100, 100\\) to be allocated: 167772160000 bytes \\(156\\.2 GiB\\) > "
            + MACHINE
            + "; received input\\.shape=\\(1048576, 4, 100, 100\\)"
        ),
        lambda: F.conv2d(torch.zeros(1, 1, 1, 1).expand(2**20, 4, 100, 100), W),
        "F-conv-input-expanded",
    ),
    _case(
        MemoryError,
        re.compile(
            "`offset\\.shape` must be small enough for the output \\(1048576, 64, 98, 98\\) to be allocated: 2578054119424 bytes \\(2\\.3 TiB\\) > "
            + MACHINE
            + "; received offset\\.shape=\\(1048576, 18, 98, 98\\)"
        ),
        lambda: F.deform_conv2d(
            torch.zeros(1, 1, 1, 1).expand(2**20, 4, 100, 100),
            torch.zeros(1, 18, 1, 1).expand(2**20, 18, 98, 98),
            torch.randn(64, 4, 3, 3),
        ),
        "F-deform-output-expanded",
    ),
    _case(
        MemoryError,
        re.compile(
            "`input\\.shape\\[1\\]` must be small enough for the weight \\(6, 68719476736, 3, 3\\) to be allocated: 14843406974976 bytes \\(13\\.5 TiB\\) > "
            + MACHINE
            + "; received input\\.shape\\[1\\]=68719476736"
        ),
        lambda: onn.LazyConv2d(6, 3)(torch.zeros(1, 1, 8, 8).expand(1, 2**36, 8, 8)),
        "lazy-input-channels-huge",
    ),
    _case(
        MemoryError,
        re.compile(
            "`input\\.shape\\[1\\]` must be small enough for the weight \\(68719476736, 6, 3, 3\\) to be allocated: 14843406974976 bytes \\(13\\.5 TiB\\) > "
            + MACHINE
            + "; received input\\.shape\\[1\\]=68719476736"
        ),
        lambda: onn.LazyConvTranspose2d(6, 3)(torch.zeros(1, 1, 8, 8).expand(1, 2**36, 8, 8)),
        "lazyT-input-channels-huge",
    ),
    _case(
        ValueError,
        "`stride` must be small enough for the output (2, 6, 7696581394435, 7696581394435) to be allocated: 2843393527735824434350522800 bytes (2466250752.0 EiB) > 9223372036854775807 bytes (8.0 EiB), what a process can address; received stride=(1099511627776, 1099511627776)",
        lambda: F.conv_transpose2d(X, WT, stride=HUGE),
        "F-convT-stride-huge",
    ),
    _case(
        ValueError,
        "`dilation` must be small enough for the output (2, 6, 2199023255560, 2199023255560) to be allocated: 232113757367697651403852800 bytes (201326592.0 EiB) > 9223372036854775807 bytes (8.0 EiB), what a process can address; received dilation=(1099511627776, 1099511627776)",
        lambda: F.conv_transpose2d(X, WT, dilation=HUGE),
        "F-convT-dilation-huge",
    ),
    _case(
        MemoryError,
        re.compile(
            "`stride` must be small enough for the output \\(2, 6, 7340035, 7340035\\) to be allocated: 2586053462458800 bytes \\(2\\.3 PiB\\) > "
            + MACHINE
            + "; received stride=\\(1048576, 1048576\\)"
        ),
        lambda: F.conv_transpose2d(X, WT, stride=2**20),
        "F-convT-stride-memory",
    ),
    _case(
        ValueError,
        "`bias.device` must be cpu (the device of input); received bias.device=device(type='meta')",
        lambda: F.conv2d(X, W, meta(6)),
        "F-conv-bias-meta",
    ),
    _case(
        ValueError,
        "`weight.device` must be cpu (the device of input); received weight.device=device(type='meta')",
        lambda: F.conv_transpose2d(X, meta(4, 6, 3, 3)),
        "F-convT-weight-meta",
    ),
    _case(
        ValueError,
        "`weight.device` must be meta (the device of input); received weight.device=device(type='cpu')",
        lambda: F.conv_transpose2d(meta(2, 4, 8, 8), WT),
        "F-convT-input-meta",
    ),
    _case(
        ValueError,
        "`offset.device` must be cpu (the device of input); received offset.device=device(type='meta')",
        lambda: F.deform_conv2d(DX, meta(2, 18, 5, 5), DW),
        "F-deform-offset-meta",
    ),
    _case(
        ValueError,
        "`mask.device` must be cpu (the device of input); received mask.device=device(type='meta')",
        lambda: F.deform_conv2d(DX, OFF, DW, mask=meta(2, 9, 5, 5)),
        "F-deform-mask-meta",
    ),
    _case(
        ValueError,
        "`bias.device` must be cpu (the device of input); received bias.device=device(type='meta')",
        lambda: F.deform_conv2d(DX, OFF, DW, meta(6)),
        "F-deform-bias-meta",
    ),
    _case(
        ValueError,
        "`weight.device` must be cpu (the device of input); received weight.device=device(type='meta')",
        lambda: F.deform_conv2d(DX, OFF, meta(6, 4, 3, 3)),
        "F-deform-weight-meta",
    ),
    _case(
        TypeError,
        "`offset.dtype` must be torch.float32 (the dtype of input); received offset.dtype=torch.float64",
        lambda: F.deform_conv2d(DX, OFF.double(), DW),
        "F-deform-offset-f64",
    ),
    _case(
        TypeError,
        "`mask.dtype` must be torch.float32 (the dtype of input); received mask.dtype=torch.float16",
        lambda: F.deform_conv2d(DX, OFF, DW, mask=MASK.half()),
        "F-deform-mask-f16",
    ),
    _case(
        TypeError,
        "`mask.dtype` must be a floating-point dtype; received mask.dtype=torch.int64",
        lambda: F.deform_conv2d(DX, OFF, DW, mask=MASK.long()),
        "F-deform-mask-int",
    ),
    _case(
        TypeError,
        "`offset.dtype` must be a floating-point dtype; received offset.dtype=torch.int64",
        lambda: F.deform_conv2d(DX, OFF.long(), DW),
        "F-deform-offset-int",
    ),
    _case(
        ValueError,
        "`input.shape` must be large enough for a 9x9 kernel with stride=(1, 1), padding=(0, 0), dilation=(1, 1) (output would be -1x-1); received input.shape=(2, 4, 7, 7)",
        lambda: F.deform_conv2d(DX, OFF, torch.randn(6, 4, 9, 9)),
        "F-deform-kernel-too-big",
    ),
    _case(
        ValueError,
        "`input.shape` must be large enough for a 12x3 kernel with stride=(1, 1), padding=(2, 2), dilation=(1, 1) (output would be 0x9); received input.shape=(2, 4, 7, 7)",
        lambda: F.deform_conv2d(DX, OFF, torch.randn(6, 4, 12, 3), padding=2),
        "F-deform-kernel-too-big-padded",
    ),
    _case(
        TypeError,
        "`stride` must be an int or a pair of ints; received stride=True",
        lambda: F.deform_conv2d(DX, OFF, DW, stride=True),
        "F-deform-stride-bool",
    ),
    _case(
        TypeError,
        "`im2col_step` must be a positive integer; received im2col_step=2.0",
        lambda: F.deform_conv2d(DX, OFF, DW, im2col_step=2.0),
        "F-deform-step-float",
    ),
    _case(
        TypeError,
        "`deformable_groups` must be a positive integer; received deformable_groups='1'",
        lambda: F.deform_conv2d(DX, OFF, DW, deformable_groups="1"),
        "F-deform-dg-str",
    ),
    _case(
        ValueError,
        "`groups` must be a positive integer; received groups=0",
        lambda: F.deform_conv2d(DX, OFF, DW, groups=0),
        "F-deform-groups-0",
    ),
    _case(
        TypeError,
        "`groups` must be a positive integer; received groups=True",
        lambda: F.conv2d(X, W, groups=True),
        "F-conv-groups-bool",
    ),
    _case(
        ValueError,
        "`layout` must be one of 'NCHW', 'NHWC'; received layout='nchw'",
        lambda: F.conv2d(X, W, layout="nchw"),
        "F-conv-layout-lower",
    ),
    _case(
        TypeError,
        "`padding_mode` must be one of 'zeros', 'reflect', 'replicate', 'circular'; received padding_mode=None",
        lambda: F.conv2d(X, W, padding_mode=None),
        "F-conv-padding-mode-none",
    ),
    _case(
        TypeError,
        "`output_size` must be an int, (size,), (H_out, W_out) or a whole shape (N, C_out, H_out, W_out), of integers; received output_size=True",
        lambda: F.conv_transpose2d(X, WT, output_size=True),
        "F-convT-output-size-bool",
    ),
    _case(
        ValueError,
        "`weight.device` must be meta (the device of input); received weight.device=device(type='cpu')",
        lambda: onn.Conv2d(4, 6, 3)(meta(2, 4, 8, 8)),
        "nn-conv-forward-meta",
    ),
    _case(
        ValueError,
        "`offset.device` must be cpu (the device of input); received offset.device=device(type='meta')",
        lambda: onn.DeformConv2d(4, 6, 3)(DX, meta(2, 18, 5, 5), MASK),
        "nn-deform-forward-offset-meta",
    ),
]


@pytest.mark.parametrize(("exc", "message", "fn"), CORE_CASES)
def test_core_errors(exc, message, fn):
    check(exc, message, fn)


# --------------------------------------------------------------------------- paddle
PADDLE_CASES = [
    _case(
        ValueError,
        "`filter_size` must be positive integers; received filter_size=(-1, -1)",
        lambda: fluid.layers.deformable_conv(DX, OFF, MASK, 6, filter_size=-1),
        "fluid-deformable-filter-size-neg",
    ),
    _case(
        ValueError,
        "`filter_size` must be positive integers; received filter_size=(0, 0)",
        lambda: fluid.layers.deformable_conv(DX, OFF, MASK, 6, 0),
        "fluid-deformable-filter-size-0",
    ),
    _case(
        TypeError,
        "`filter_size` must be an int or a list/tuple of 2 ints; received filter_size=True",
        lambda: fluid.layers.deformable_conv(DX, OFF, MASK, 6, True),
        "fluid-deformable-filter-size-bool",
    ),
    _case(
        ValueError,
        "The filter_size's type must be list or tuple. Received: 2.5",
        lambda: fluid.layers.deformable_conv(DX, OFF, MASK, 6, 2.5),
        "fluid-deformable-filter-size-float",
    ),
    _case(
        ValueError,
        "`num_filters` must be a positive integer; received num_filters=0",
        lambda: fluid.layers.deformable_conv(DX, OFF, MASK, 0, 3),
        "fluid-deformable-num-filters-0",
    ),
    _case(
        MemoryError,
        re.compile(
            "`num_filters` must be small enough for the weight \\(1099511627776, 4, 3, 3\\) to be allocated: 158329674399744 bytes \\(144\\.0 TiB\\) > "
            + MACHINE
            + "; received num_filters=1099511627776"
        ),
        lambda: fluid.layers.deformable_conv(DX, OFF, MASK, HUGE, 3),
        "fluid-deformable-num-filters-huge",
    ),
    _case(
        TypeError,
        "`modulated` must be True or False; received modulated='no'",
        lambda: fluid.layers.deformable_conv(DX, OFF, MASK, 6, 3, modulated="no"),
        "fluid-deformable-modulated-str",
    ),
    _case(
        TypeError,
        "`padding` must be an int or a list/tuple of 2 ints; received padding=True",
        lambda: fluid.layers.deformable_conv(DX, OFF, MASK, 6, 3, padding=True),
        "fluid-deformable-padding-bool",
    ),
    _case(
        ValueError,
        "The stride's type must be a list or tuple of 2 <class 'int'> . Received: [1, 1.5] including element 1.5 of type <class 'float'>",
        lambda: fluid.layers.deformable_conv(DX, OFF, MASK, 6, 3, stride=[1, 1.5]),
        "fluid-deformable-stride-list-float",
    ),
    _case(
        ValueError,
        "`offset.shape[1]` must be 2*deformable_groups*kh*kw = 18; received offset.shape[1]=16",
        lambda: fluid.layers.deformable_conv(DX, torch.zeros(2, 16, 5, 5), MASK, 6, 3),
        "fluid-deformable-offset-channels",
    ),
    _case(
        ValueError,
        "`mask.shape` must be (2, 9, 5, 5) (N, dg*kh*kw, H_out, W_out); received mask.shape=(2, 9, 5, 4)",
        lambda: fluid.layers.deformable_conv(DX, OFF, torch.ones(2, 9, 5, 4), 6, 3),
        "fluid-deformable-mask-hw",
    ),
    _case(
        ValueError,
        "`offset.device` must be cpu (the device of input); received offset.device=device(type='meta')",
        lambda: fluid.layers.deformable_conv(DX, meta(2, 18, 5, 5), MASK, 6, 3),
        "fluid-deformable-offset-meta",
    ),
    _case(
        TypeError,
        "`offset.dtype` must be torch.float32 (the dtype of input); received offset.dtype=torch.float64",
        lambda: fluid.layers.deformable_conv(DX, OFF.double(), MASK, 6, 3),
        "fluid-deformable-offset-f64",
    ),
    _case(
        TypeError,
        "`mask` must be a tensor when modulated=True (DCNv2; Paddle fails with 'Input Mask not found'); pass modulated=False for DCNv1; received mask=None",
        lambda: fluid.layers.deformable_conv(DX, OFF, None, 6, 3),
        "fluid-deformable-mask-missing",
    ),
    _case(
        PaddleAssertionError,
        "param_attr should not be False here.",
        lambda: fluid.layers.deformable_conv(DX, OFF, MASK, 6, 3, param_attr=False),
        "fluid-deformable-param-attr-false",
    ),
    _case(
        ValueError,
        "`filter_size` must be positive integers; received filter_size=(-1, -1)",
        lambda: fluid.layers.conv2d(X, 6, -1),
        "fluid-conv2d-filter-size-neg",
    ),
    _case(
        TypeError,
        "`num_filters` must be a positive integer; received num_filters='6'",
        lambda: fluid.layers.conv2d(X, "6", 3),
        "fluid-conv2d-num-filters-str",
    ),
    _case(
        ValueError,
        "`filter_size` must be small enough for the weight (6, 4, 1099511627776, 1099511627776) to be allocated: 116056878683004400771792896 bytes (100663296.0 EiB) > 9223372036854775807 bytes (8.0 EiB), what a process can address; received filter_size=(1099511627776, 1099511627776)",
        lambda: fluid.layers.conv2d(X, 6, HUGE),
        "fluid-conv2d-filter-size-huge",
    ),
    _case(
        ValueError,
        "`padding` must be small enough for the padded input (2, 4, 2199023255560, 2199023255560) to be allocated: 154742504911798434269235200 bytes (134217728.0 EiB) > 9223372036854775807 bytes (8.0 EiB), what a process can address; received padding=(1099511627776, 1099511627776, 1099511627776, 1099511627776)",
        lambda: fluid.layers.conv2d(X, 6, 3, padding=HUGE),
        "fluid-conv2d-padding-huge",
    ),
    _case(
        ValueError,
        "`groups` must be a positive integer; received groups=-1",
        lambda: fluid.layers.conv2d(X, 6, 3, groups=-1),
        "fluid-conv2d-groups-neg",
    ),
    _case(
        PaddleZeroDivisionError,
        "integer modulo by zero; received groups=0",
        lambda: fluid.layers.conv2d(X, 6, 3, groups=0),
        "fluid-conv2d-groups-0",
    ),
    _case(
        ValueError,
        "`input.shape` must be large enough for a 9x9 kernel with stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1) (output would be 0x0); received input.shape=(2, 4, 8, 8)",
        lambda: fluid.layers.conv2d(X, 6, 9),
        "fluid-conv2d-kernel-too-big",
    ),
    _case(
        ValueError,
        "`act` must be None or a Paddle activation (relu, sigmoid, tanh, softmax, leaky_relu, relu6, elu, gelu, swish, hard_swish, hard_sigmoid, brelu, soft_relu, stanh, thresholded_relu, softplus, softsign, logsigmoid, tanh_shrink, softshrink, hard_shrink, exp, abs, square, sqrt, rsqrt, log, reciprocal, ceil, floor, cos, sin); received act='bogus'",
        lambda: fluid.layers.conv2d(X, 6, 3, act="bogus"),
        "fluid-conv2d-act-unknown",
    ),
    _case(
        ValueError,
        "Attr(data_format) should be 'NCHW' or 'NHWC'. Received Attr(data_format): NCWH.; received data_format='NCWH'",
        lambda: fluid.layers.conv2d(X, 6, 3, data_format="NCWH"),
        "fluid-conv2d-format-unknown",
    ),
    _case(
        TypeError,
        "`conv2d_transpose.filter_size` must be an int or a list/tuple of 2 ints; received conv2d_transpose.filter_size=True",
        lambda: fluid.layers.conv2d_transpose(X, 6, filter_size=True),
        "fluid-conv2dT-filter-size-bool",
    ),
    _case(
        TypeError,
        "`conv_filter_size` must be an int or a list/tuple of 2 ints; received conv_filter_size=True",
        lambda: fluid.nets.img_conv_group(X, [4], 2, conv_filter_size=True),
        "fluid-group-filter-size-bool",
    ),
    _case(
        ValueError,
        "`conv_filter_size` must be small enough for the weight (4, 4, 1099511627776, 1099511627776) to be allocated: 77371252455336267181195264 bytes (67108864.0 EiB) > 9223372036854775807 bytes (8.0 EiB), what a process can address; received conv_filter_size=(1099511627776, 1099511627776)",
        lambda: fluid.nets.img_conv_group(X, [4], 2, conv_filter_size=HUGE),
        "fluid-group-filter-size-huge",
    ),
    _case(
        ValueError,
        "Unknown padding: '3'. It can only be 'SAME' or 'VALID'.; received conv_padding='3'",
        lambda: fluid.nets.img_conv_group(X, [4], 2, conv_padding="3"),
        "fluid-group-padding-str",
    ),
    _case(
        ValueError,
        "`conv_padding` must be small enough for the padded input (2, 4, 2199023255560, 2199023255560) to be allocated: 154742504911798434269235200 bytes (134217728.0 EiB) > 9223372036854775807 bytes (8.0 EiB), what a process can address; received conv_padding=(1099511627776, 1099511627776, 1099511627776, 1099511627776)",
        lambda: fluid.nets.img_conv_group(X, [4], 2, conv_padding=HUGE),
        "fluid-group-padding-huge",
    ),
    _case(
        ValueError,
        "`conv_with_batchnorm` must be one value for all layers or a list of len(conv_num_filter)=1 values (Paddle's rule: anything with __len__, a tuple or str too, is per layer); received conv_with_batchnorm='yes'",
        lambda: fluid.nets.img_conv_group(X, [4], 2, conv_with_batchnorm="yes"),
        "fluid-group-bn-str",
    ),
    _case(
        ValueError,
        "`conv_batchnorm_drop_rate` must be one value for all layers or a list of len(conv_num_filter)=1 values (Paddle's rule: anything with __len__, a tuple or str too, is per layer); received conv_batchnorm_drop_rate='0.5'",
        lambda: fluid.nets.img_conv_group(X, [4], 2, conv_batchnorm_drop_rate="0.5"),
        "fluid-group-drop-rate-str",
    ),
    _case(
        ValueError,
        "Unknown Attr(pool_type): 'min'. It can only be 'max' or 'avg'.; received pool_type='min'",
        lambda: fluid.nets.img_conv_group(X, [4], 2, pool_type="min"),
        "fluid-group-pool-type",
    ),
    _case(
        ValueError,
        "`pool_stride` must be at most 2147483647 (torch's pooling takes 32-bit ints); received pool_stride=(2147483648, 2147483648)",
        lambda: fluid.nets.img_conv_group(X, [4], 2, pool_stride=2**31),
        "fluid-group-pool-stride-int32",
    ),
    _case(
        ValueError,
        "`filter_size` must be positive integers; received filter_size=(-1, -1)",
        lambda: fluid.dygraph.Conv2D(4, 6, -1),
        "dygraph-filter-size-neg",
    ),
    _case(
        ValueError,
        "`num_filters` must be a positive integer; received num_filters=0",
        lambda: fluid.dygraph.Conv2D(4, 0, 3),
        "dygraph-num-filters-0",
    ),
    _case(
        MemoryError,
        re.compile(
            "`num_channels` must be small enough for the weight \\(6, 1099511627776, 3, 3\\) to be allocated: 237494511599616 bytes \\(216\\.0 TiB\\) > "
            + MACHINE
            + "; received num_channels=1099511627776"
        ),
        lambda: fluid.dygraph.Conv2D(HUGE, 6, 3),
        "dygraph-num-channels-huge",
    ),
    _case(
        MemoryError,
        re.compile(
            "`num_filters` must be small enough for the weight \\(1099511627776, 4, 3, 3\\) to be allocated: 158329674399744 bytes \\(144\\.0 TiB\\) > "
            + MACHINE
            + "; received num_filters=1099511627776"
        ),
        lambda: fluid.dygraph.Conv2D(4, HUGE, 3),
        "dygraph-num-filters-huge",
    ),
    _case(
        TypeError,
        "`stride` must be an int or a list/tuple of 2 ints; received stride=True",
        lambda: fluid.dygraph.Conv2D(4, 6, 3, stride=True),
        "dygraph-stride-bool",
    ),
    _case(
        ValueError,
        "The stride's type must be a list or tuple of 2 <class 'int'> . Received: [1, 2.5] including element 2.5 of type <class 'float'>",
        lambda: fluid.dygraph.Conv2D(4, 6, 3, stride=[1, 2.5]),
        "dygraph-stride-float",
    ),
    _case(
        TypeError,
        "`groups` must be an int; received groups='2'",
        lambda: fluid.dygraph.Conv2D(4, 6, 3, groups="2"),
        "dygraph-groups-str",
    ),
    _case(
        ValueError,
        "`dtype` must be 'float32' or 'float64'; received dtype='int8'",
        lambda: fluid.dygraph.Conv2D(4, 6, 3, dtype="int8"),
        "dygraph-dtype",
    ),
    _case(
        TypeError,
        "`num_filters` must be a positive integer; received num_filters=True",
        lambda: fluid.dygraph.Conv2DTranspose(4, True, 3),
        "dygraph-convT-num-filters-bool",
    ),
    _case(
        ValueError,
        "`weight.device` must be meta (the device of input); received weight.device=device(type='cpu')",
        lambda: fluid.dygraph.Conv2D(4, 6, 3)(meta(2, 4, 8, 8)),
        "dygraph-forward-meta",
    ),
    _case(
        ValueError,
        "`input.shape` must be 4-D; received input.shape=(4, 8, 8)",
        lambda: fluid.dygraph.Conv2D(4, 6, 3)(X[0]),
        "dygraph-forward-3d",
    ),
    _case(
        TypeError,
        "`in_channels` must be a positive integer; received in_channels='4'",
        lambda: P.nn.Conv2D("4", 6, 3),
        "nn-in-channels-str",
    ),
    _case(
        ValueError,
        "`kernel_size` must be positive integers; received kernel_size=[-1, -1]",
        lambda: P.nn.Conv2D(4, 6, -1),
        "nn-kernel-size-neg",
    ),
    _case(
        ValueError,
        "`kernel_size` must be small enough for the weight (6, 4, 1099511627776, 1099511627776) to be allocated: 116056878683004400771792896 bytes (100663296.0 EiB) > 9223372036854775807 bytes (8.0 EiB), what a process can address; received kernel_size=(1099511627776, 1099511627776)",
        lambda: P.nn.Conv2D(4, 6, HUGE),
        "nn-kernel-size-huge",
    ),
    _case(
        MemoryError,
        re.compile(
            "`out_channels` must be small enough for the weight \\(1099511627776, 4, 3, 3\\) to be allocated: 158329674399744 bytes \\(144\\.0 TiB\\) > "
            + MACHINE
            + "; received out_channels=1099511627776"
        ),
        lambda: P.nn.Conv2D(4, HUGE, 3),
        "nn-out-channels-huge",
    ),
    _case(
        ValueError,
        "`groups` must be a positive integer; received groups=-2",
        lambda: P.nn.Conv2D(4, 6, 3, groups=-2),
        "nn-groups-neg",
    ),
    _case(
        PaddleZeroDivisionError,
        "integer modulo by zero; received groups=0",
        lambda: P.nn.Conv2D(4, 6, 3, groups=0),
        "nn-groups-0",
    ),
    _case(
        TypeError,
        "`bias` must be True or False; received bias='no'",
        lambda: P.nn.Conv2D(4, 6, 3, bias="no"),
        "nn-bias-str",
    ),
    _case(
        ValueError,
        "padding_mode must be one of {'zeros', 'reflect', 'replicate', 'circular'}, but got padding_mode='wrap'",
        lambda: P.nn.Conv2D(4, 6, 3, padding_mode="wrap"),
        "nn-padding-mode",
    ),
    _case(
        ValueError,
        "data_format must be one of {'NCHW', 'NHWC'}, but got data_format='NHCW'",
        lambda: P.nn.Conv2D(4, 6, 3, data_format="NHCW"),
        "nn-data-format",
    ),
    _case(
        PaddleAssertionError,
        "weight_attr should not be False in Conv.",
        lambda: P.nn.Conv2D(4, 6, 3, weight_attr=False),
        "nn-weight-attr-false",
    ),
    _case(
        ValueError,
        "`weight.device` must be meta (the device of x); received weight.device=device(type='cpu')",
        lambda: P.nn.Conv2D(4, 6, 3)(meta(2, 4, 8, 8)),
        "nn-forward-meta",
    ),
    _case(
        TypeError,
        "`weight.dtype` must be torch.float64 (the dtype of x); received weight.dtype=torch.float32",
        lambda: P.nn.Conv2D(4, 6, 3)(X.double()),
        "nn-forward-f64",
    ),
    _case(
        ValueError,
        "`x.shape` must be large enough for a 3x3 kernel with stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1) (output would be 0x0); received x.shape=(1, 4, 2, 2)",
        lambda: P.nn.Conv2D(4, 6, 3)(torch.randn(1, 4, 2, 2)),
        "nn-forward-small",
    ),
    _case(
        TypeError,
        "`output_padding` must be an int or a list/tuple of 2 ints; received output_padding=True",
        lambda: P.nn.Conv2DTranspose(4, 6, 3, output_padding=True),
        "nn-convT-output-padding-bool",
    ),
    _case(
        TypeError,
        "`groups` must be an int; received groups='1'",
        lambda: PF.conv2d(X, W, groups="1"),
        "F-conv2d-groups-str",
    ),
    _case(
        ValueError,
        "`groups` must be a positive integer; received groups=-1",
        lambda: PF.conv2d(X, W, groups=-1),
        "F-conv2d-groups-neg",
    ),
    _case(
        TypeError,
        "`stride` must be an int or a list/tuple of 2 ints; received stride=True",
        lambda: PF.conv2d(X, W, stride=True),
        "F-conv2d-stride-bool",
    ),
    _case(
        ValueError,
        "`weight.device` must be cpu (the device of x); received weight.device=device(type='meta')",
        lambda: PF.conv2d(X, meta(6, 4, 3, 3)),
        "F-conv2d-weight-meta",
    ),
    _case(
        ValueError,
        "`padding` must be small enough for the padded input (2, 4, 2199023255560, 2199023255560) to be allocated: 154742504911798434269235200 bytes (134217728.0 EiB) > 9223372036854775807 bytes (8.0 EiB), what a process can address; received padding=(1099511627776, 1099511627776, 1099511627776, 1099511627776)",
        lambda: PF.conv2d(X, W, padding=HUGE),
        "F-conv2d-padding-huge",
    ),
    _case(
        ValueError,
        "`x.shape[1]` must be 4, the weight's input channels (4 per group, groups=1); received x.shape[1]=5",
        lambda: PF.conv2d(torch.randn(2, 5, 8, 8), W),
        "F-conv2d-channels",
    ),
    _case(
        ValueError,
        "`groups` must be a positive integer; received groups=-1",
        lambda: PF.conv2d_transpose(X, WT, groups=-1),
        "F-conv2dT-groups-neg",
    ),
    _case(
        ValueError,
        "`stride` must be small enough for the output (2, 6, 7696581394435, 7696581394435) to be allocated: 2843393527735824434350522800 bytes (2466250752.0 EiB) > 9223372036854775807 bytes (8.0 EiB), what a process can address; received stride=(1099511627776, 1099511627776)",
        lambda: PF.conv2d_transpose(X, WT, stride=HUGE),
        "F-conv2dT-stride-huge",
    ),
    _case(
        TypeError,
        "`learning_rate` must be a number; received learning_rate='x'",
        lambda: P.ParamAttr(learning_rate="x"),
        "ParamAttr-learning-rate-str",
    ),
    _case(
        TypeError,
        "`trainable` must be True or False; received trainable='no'",
        lambda: P.ParamAttr(trainable="no"),
        "ParamAttr-trainable-str",
    ),
    _case(
        TypeError,
        "`initializer` must be None or an Initializer; received initializer=<str>",
        lambda: P.ParamAttr(initializer="normal"),
        "ParamAttr-initializer-str",
    ),
    _case(
        TypeError,
        "`name` must be None or a str; received name=<int>",
        lambda: P.ParamAttr(name=3),
        "ParamAttr-name-int",
    ),
    _case(
        TypeError,
        "`weight_attr` must be None, False, a str, an Initializer or a ParamAttr; received weight_attr=<int>",
        lambda: P.nn.Conv2D(4, 6, 3, weight_attr=3),
        "weight-attr-int",
    ),
    _case(
        ValueError,
        "`scale` must be a non-negative number (the standard deviation); received scale=-1.0",
        lambda: P.Normal(0.0, -1.0),
        "Normal-scale-neg",
    ),
    _case(
        TypeError,
        "`scale` must be a number; received scale='1'",
        lambda: P.Normal(0.0, "1"),
        "Normal-scale-str",
    ),
    _case(
        PaddleAssertionError,
        "high must be >= low; received low=1.0, high=0.0",
        lambda: P.Uniform(1.0, 0.0),
        "Uniform-high-below-low",
    ),
    _case(
        TypeError,
        "`value` must be a number; received value='x'",
        lambda: P.Constant("x"),
        "Constant-value-str",
    ),
    _case(
        TypeError,
        "`uniform` must be True or False; received uniform='no'",
        lambda: P.Xavier(uniform="no"),
        "Xavier-uniform-str",
    ),
    _case(
        ValueError,
        "`fan_in` must be None or a positive number; received fan_in=0",
        lambda: P.Xavier(fan_in=0),
        "Xavier-fan-in-0",
    ),
    _case(
        TypeError,
        "`seed` must be an int (0: the global RNG); received seed=1.5",
        lambda: P.MSRA(seed=1.5),
        "MSRA-seed-float",
    ),
    _case(
        TypeError,
        "`loc` must be a number; received loc=True",
        lambda: P.TruncatedNormal(True),
        "TruncatedNormal-loc-bool",
    ),
    _case(
        TypeError,
        "`value` must be a numpy array; received value=<list>",
        lambda: P.NumpyArrayInitializer([1.0]),
        "Assign-list",
    ),
    _case(
        ValueError,
        "`num_features` must be a positive integer; received num_features=0",
        lambda: P.BatchNorm(0),
        "BatchNorm-0",
    ),
    _case(
        ValueError,
        "`momentum` must be in [0, 1]; received momentum=1.5",
        lambda: P.BatchNorm(4, momentum=1.5),
        "BatchNorm-momentum",
    ),
    _case(
        TypeError,
        "`epsilon` must be a number; received epsilon='1e-5'",
        lambda: P.BatchNorm(4, epsilon="1e-5"),
        "BatchNorm-epsilon-str",
    ),
    _case(
        ValueError,
        "'dropout_prob' must be between 0.0 and 1.0.; received dropout_prob=1.5",
        lambda: P.Dropout(1.5),
        "Dropout-p",
    ),
    _case(
        ValueError,
        "`dtype` must be 'float32' or 'float64'; received dtype='int8'",
        lambda: P.data("x", [3, 8, 8], dtype="int8"),
        "data-dtype",
    ),
    _case(
        TypeError,
        "`shape` must be a list of ints; received shape='3x8x8'",
        lambda: P.data("x", "3x8x8"),
        "data-shape-str",
    ),
    _case(
        TypeError, "`fn` must be a callable; received fn=<int>", lambda: P.Program(3), "Program-fn"
    ),
    _case(
        ValueError,
        "`kernel_size` must be positive integers; received kernel_size=(-1, -1)",
        lambda: PV.DeformConv2D(4, 6, -1),
        "vision-kernel-size-neg",
    ),
    _case(
        TypeError,
        "`kernel_size` must be an int or a list/tuple of 2 ints; received kernel_size=True",
        lambda: PV.DeformConv2D(4, 6, True),
        "vision-kernel-size-bool",
    ),
    _case(
        MemoryError,
        re.compile(
            "`out_channels` must be small enough for the weight \\(1099511627776, 4, 3, 3\\) to be allocated: 158329674399744 bytes \\(144\\.0 TiB\\) > "
            + MACHINE
            + "; received out_channels=1099511627776"
        ),
        lambda: PV.DeformConv2D(4, HUGE, 3),
        "vision-out-channels-huge",
    ),
    _case(
        ValueError,
        "`deformable_groups` must be a positive integer; received deformable_groups=0",
        lambda: PV.DeformConv2D(4, 6, 3, deformable_groups=0),
        "vision-dg-0",
    ),
    _case(
        ValueError,
        "`offset.device` must be cpu (the device of x); received offset.device=device(type='meta')",
        lambda: PV.DeformConv2D(4, 6, 3)(DX, meta(2, 18, 5, 5), MASK),
        "vision-forward-offset-meta",
    ),
    _case(
        ValueError,
        "`offset.shape` must be (2, 18, 5, 5) (N, 2*dg*kh*kw, H_out, W_out); received offset.shape=(2, 18, 4, 5)",
        lambda: PV.DeformConv2D(4, 6, 3)(DX, torch.zeros(2, 18, 4, 5), MASK),
        "vision-forward-offset-hw",
    ),
    _case(
        TypeError,
        "`padding` must be an int or a list/tuple of 2 ints; received padding=True",
        lambda: PV.deform_conv2d(DX, OFF, DW, padding=True),
        "vision-F-padding-bool",
    ),
    _case(
        ValueError,
        "`mask.shape` must be (2, 9, 5, 5) (N, dg*kh*kw, H_out, W_out); received mask.shape=(2, 9, 5, 4)",
        lambda: PV.deform_conv2d(DX, OFF, DW, mask=torch.ones(2, 9, 5, 4)),
        "vision-F-mask-hw",
    ),
    _case(
        ValueError,
        "`x.shape` must be large enough for a 3x3 kernel with stride=(1, 1), padding=(0, 0), dilation=(1, 1) (output would be 0x0); received x.shape=(2, 4, 2, 2)",
        lambda: PV.deform_conv2d(torch.randn(2, 4, 2, 2), OFF, DW),
        "vision-F-x-small",
    ),
]


@pytest.mark.parametrize(("exc", "message", "fn"), PADDLE_CASES)
def test_paddle_errors(exc, message, fn):
    check(exc, message, fn)


# --------------------------------------------------------------------------- gluon
GLUON_CASES = [
    _case(
        MXNetValueError,
        "value 0 for Parameter num_filter should be greater equal to 1; received channels=0",
        lambda: G.nn.Conv2D(0, 3, in_channels=4),
        "conv-channels-0",
    ),
    _case(
        MXNetTypeError,
        "Invalid Parameter format for num_filter expect int (non-negative) but value='True'; received channels=True",
        lambda: G.nn.Conv2D(True, 3, in_channels=4),
        "conv-channels-bool",
    ),
    _case(
        MemoryError,
        re.compile(
            "`channels` must be small enough for the weight \\(1099511627776, 4, 3, 3\\) to be allocated: 158329674399744 bytes \\(144\\.0 TiB\\) > "
            + MACHINE
            + "; received channels=1099511627776"
        ),
        lambda: G.nn.Conv2D(HUGE, 3, in_channels=4),
        "conv-channels-huge",
    ),
    _case(
        MXNetValueError,
        "`kernel_size` must be positive integers; received kernel_size=(-1, -1)",
        lambda: G.nn.Conv2D(6, -1, in_channels=4),
        "conv-kernel-neg",
    ),
    _case(
        MXNetTypeError,
        "Invalid Parameter format for kernel expect Shape(tuple) but value='(2.5, 2.5)'; received kernel_size=(2.5, 2.5)",
        lambda: G.nn.Conv2D(6, 2.5, in_channels=4),
        "conv-kernel-float",
    ),
    _case(
        MXNetValueError,
        "`kernel_size` must be small enough for the weight (6, 4, 1099511627776, 1099511627776) to be allocated: 116056878683004400771792896 bytes (100663296.0 EiB) > 9223372036854775807 bytes (8.0 EiB), what a process can address; received kernel_size=(1099511627776, 1099511627776)",
        lambda: G.nn.Conv2D(6, HUGE, in_channels=4),
        "conv-kernel-huge",
    ),
    _case(
        MXNetValueError,
        "`strides` must be positive integers; received strides=(-1, -1)",
        lambda: G.nn.Conv2D(6, 3, strides=-1, in_channels=4),
        "conv-strides-neg",
    ),
    _case(
        MXNetValueError,
        "Check failed: param_.stride.Size() > 0U (0 vs. 0) : incorrect stride size: [0,0]; received strides=(0, 0)",
        lambda: G.nn.Conv2D(6, 3, strides=0, in_channels=4),
        "conv-strides-0",
    ),
    _case(
        MXNetValueError,
        "`padding` must be non-negative integers; received padding=(-1, -1)",
        lambda: G.nn.Conv2D(6, 3, padding=-1, in_channels=4),
        "conv-padding-neg",
    ),
    _case(
        MXNetValueError,
        "`groups` must be a positive integer; received groups=0",
        lambda: G.nn.Conv2D(6, 3, groups=0, in_channels=4),
        "conv-groups-0",
    ),
    _case(
        MXNetTypeError,
        "`in_channels` must be a non-negative integer (0: inferred at the first forward); received in_channels='4'",
        lambda: G.nn.Conv2D(6, 3, in_channels="4"),
        "conv-in-channels-str",
    ),
    _case(
        MemoryError,
        re.compile(
            "`in_channels` must be small enough for the weight \\(6, 1099511627776, 3, 3\\) to be allocated: 237494511599616 bytes \\(216\\.0 TiB\\) > "
            + MACHINE
            + "; received in_channels=1099511627776"
        ),
        lambda: G.nn.Conv2D(6, 3, in_channels=HUGE),
        "conv-in-channels-huge",
    ),
    _case(
        MXNetTypeError,
        "`use_bias` must be True or False; received use_bias='no'",
        lambda: G.nn.Conv2D(6, 3, in_channels=4, use_bias="no"),
        "conv-use-bias-str",
    ),
    _case(
        MXNetTypeError,
        "`use_bias` must be True or False; received use_bias=0",
        lambda: G.nn.Conv2D(6, 3, in_channels=4, use_bias=0),
        "conv-use-bias-int",
    ),
    _case(
        GluonAssertionError,
        "Only supports 'NCHW' and 'NHWC' layout for now; received layout='NCWH'",
        lambda: G.nn.Conv2D(6, 3, in_channels=4, layout="NCWH"),
        "conv-layout",
    ),
    _case(
        MXNetValueError,
        "Invalid Input: 'gelu', valid values are: {'relu', 'sigmoid', 'softrelu', 'softsign', 'tanh'}, in operator Activation(name=\"\", act_type=\"gelu\"); received activation='gelu'",
        lambda: G.nn.Conv2D(6, 3, in_channels=4, activation="gelu"),
        "conv-activation",
    ),
    _case(
        MXNetValueError,
        "`weight_initializer` must be None, an Initializer or one of 'bilinear', 'constant', 'msraprelu', 'normal', 'one', 'ones', 'orthogonal', 'uniform', 'xavier', 'zero', 'zeros'; received weight_initializer='bogus'",
        lambda: G.nn.Conv2D(6, 3, in_channels=4, weight_initializer="bogus"),
        "conv-weight-initializer-name",
    ),
    _case(
        MXNetTypeError,
        "`bias_initializer` must be None, an Initializer or one of 'bilinear', 'constant', 'msraprelu', 'normal', 'one', 'ones', 'orthogonal', 'uniform', 'xavier', 'zero', 'zeros'; received bias_initializer=<int>",
        lambda: G.nn.Conv2D(6, 3, in_channels=4, bias_initializer=3),
        "conv-bias-initializer-type",
    ),
    _case(
        MXNetValueError,
        "`strides` must be positive integers; received strides=(-1, -1)",
        lambda: G.nn.Conv2DTranspose(6, 3, strides=-1, in_channels=4),
        "convT-strides-neg",
    ),
    _case(
        MXNetValueError,
        "`output_padding` must be non-negative integers; received output_padding=(-1, -1)",
        lambda: G.nn.Conv2DTranspose(6, 3, output_padding=-1, in_channels=4),
        "convT-output-padding-neg",
    ),
    _case(
        MXNetTypeError,
        "`use_bias` must be True or False; received use_bias='yes'",
        lambda: G.nn.Conv2DTranspose(6, 3, in_channels=4, use_bias="yes"),
        "convT-use-bias-str",
    ),
    _case(
        MXNetValueError,
        "Check failed: param_.kernel.Size() > 0U (0 vs. 0) : incorrect kernel size: [0,0]; received kernel_size=(0, 0)",
        lambda: G.contrib.cnn.DeformableConvolution(6, 0, in_channels=4),
        "deform-kernel-0",
    ),
    _case(
        MXNetValueError,
        "`kernel_size` must be positive integers; received kernel_size=(-1, -1)",
        lambda: G.contrib.cnn.DeformableConvolution(6, -1, in_channels=4),
        "deform-kernel-neg",
    ),
    _case(
        MXNetValueError,
        "`strides` must be positive integers; received strides=(-1, -1)",
        lambda: G.contrib.cnn.DeformableConvolution(6, 3, strides=-1, in_channels=4),
        "deform-strides-neg",
    ),
    _case(
        MXNetValueError,
        "`padding` must be non-negative integers; received padding=(-1, -1)",
        lambda: G.contrib.cnn.DeformableConvolution(6, 3, padding=-1, in_channels=4),
        "deform-padding-neg",
    ),
    _case(
        MXNetValueError,
        "`dilation` must be positive integers; received dilation=(-1, -1)",
        lambda: G.contrib.cnn.DeformableConvolution(6, 3, dilation=-1, in_channels=4),
        "deform-dilation-neg",
    ),
    _case(
        MXNetValueError,
        "`groups` must be a positive integer; received groups=0",
        lambda: G.contrib.cnn.DeformableConvolution(6, 3, groups=0, in_channels=4),
        "deform-groups-0",
    ),
    _case(
        MXNetTypeError,
        "`in_channels` must be a non-negative integer (0: inferred at the first forward); received in_channels='4'",
        lambda: G.contrib.cnn.DeformableConvolution(6, 3, in_channels="4"),
        "deform-in-channels-str",
    ),
    _case(
        MXNetTypeError,
        "`in_channels` must be a non-negative integer (0: inferred at the first forward); received in_channels=True",
        lambda: G.contrib.cnn.DeformableConvolution(6, 3, in_channels=True),
        "deform-in-channels-bool",
    ),
    _case(
        MXNetValueError,
        "`in_channels` must be a non-negative integer (0: inferred at the first forward); received in_channels=-1",
        lambda: G.contrib.cnn.DeformableConvolution(6, 3, in_channels=-1),
        "deform-in-channels-neg",
    ),
    _case(
        MemoryError,
        re.compile(
            "`channels` must be small enough for the weight \\(1099511627776, 4, 3, 3\\) to be allocated: 158329674399744 bytes \\(144\\.0 TiB\\) > "
            + MACHINE
            + "; received channels=1099511627776"
        ),
        lambda: G.contrib.cnn.DeformableConvolution(HUGE, 3, in_channels=4),
        "deform-channels-huge",
    ),
    _case(
        MemoryError,
        re.compile(
            "`num_deformable_group` must be small enough for the weight \\(19791209299968, 1, 3, 3\\) to be allocated: 712483534798848 bytes \\(648\\.0 TiB\\) > "
            + MACHINE
            + "; received num_deformable_group=1099511627776"
        ),
        lambda: G.contrib.cnn.DeformableConvolution(6, 3, num_deformable_group=HUGE),
        "deform-dg-huge",
    ),
    _case(
        MXNetTypeError,
        "`use_bias` must be True or False; received use_bias='no'",
        lambda: G.contrib.cnn.DeformableConvolution(6, 3, in_channels=4, use_bias="no"),
        "deform-use-bias-str",
    ),
    _case(
        MXNetTypeError,
        "`offset_use_bias` must be True or False; received offset_use_bias=1",
        lambda: G.contrib.cnn.DeformableConvolution(6, 3, in_channels=4, offset_use_bias=1),
        "deform-offset-use-bias-int",
    ),
    _case(
        MXNetValueError,
        "`offset_weight_initializer` must be None, an Initializer or one of 'bilinear', 'constant', 'msraprelu', 'normal', 'one', 'ones', 'orthogonal', 'uniform', 'xavier', 'zero', 'zeros'; received offset_weight_initializer='bogus'",
        lambda: G.contrib.cnn.DeformableConvolution(
            6, 3, in_channels=4, offset_weight_initializer="bogus"
        ),
        "deform-offset-initializer",
    ),
    _case(
        MXNetValueError,
        "value 0 for Parameter num_filter should be greater equal to 1; received num_deformable_group=0",
        lambda: G.contrib.cnn.DeformableConvolution(6, 3, in_channels=4, num_deformable_group=0),
        "deform-dg-0",
    ),
    _case(
        MXNetValueError,
        "Check failed: param_.kernel.Size() > 0U (0 vs. 0) : incorrect kernel size: [0,0]; received kernel_size=(0, 0)",
        lambda: G.contrib.cnn.ModulatedDeformableConvolution(6, 0, in_channels=4),
        "moddeform-kernel-0",
    ),
    _case(
        MXNetTypeError,
        "`use_bias` must be True or False; received use_bias='no'",
        lambda: G.contrib.cnn.ModulatedDeformableConvolution(6, 3, in_channels=4, use_bias="no"),
        "moddeform-use-bias-str",
    ),
    _case(
        MXNetTypeError,
        "`scale` must be a number; received scale='x'",
        lambda: G.Uniform("x"),
        "init-Uniform-scale-str",
    ),
    _case(
        MXNetValueError,
        "`sigma` must be a non-negative number (the standard deviation); received sigma=-1.0",
        lambda: G.Normal(-1.0),
        "init-Normal-sigma-neg",
    ),
    _case(
        MXNetTypeError,
        "`value` must be a number or an array; received value='x'",
        lambda: G.Constant("x"),
        "init-Constant-str",
    ),
    _case(
        MXNetValueError,
        "`rnd_type` must be one of 'uniform', 'gaussian'; received rnd_type='normal'",
        lambda: G.Xavier(rnd_type="normal"),
        "init-Xavier-rnd-type",
    ),
    _case(
        MXNetTypeError,
        "`factor_type` must be one of 'avg', 'in', 'out'; received factor_type=3",
        lambda: G.Xavier(factor_type=3),
        "init-Xavier-factor-type",
    ),
    _case(
        MXNetValueError,
        "`magnitude` must be a non-negative number; received magnitude=-3",
        lambda: G.Xavier(magnitude=-3),
        "init-Xavier-magnitude-neg",
    ),
    _case(
        MXNetValueError,
        "`factor_type` must be one of 'avg', 'in', 'out'; received factor_type='fan_in'",
        lambda: G.MSRAPrelu(factor_type="fan_in"),
        "init-MSRAPrelu-factor-type",
    ),
    _case(
        MXNetValueError,
        "`rand_type` must be one of 'uniform', 'normal'; received rand_type='gaussian'",
        lambda: G.Orthogonal(rand_type="gaussian"),
        "init-Orthogonal-rand-type",
    ),
    _case(
        MXNetValueError,
        "`rnd_type` must be one of 'uniform', 'gaussian'; received rnd_type='bogus'",
        lambda: G.init.create('["xavier", {"rnd_type": "bogus"}]'),
        "init-create-json",
    ),
    _case(
        ValueError,
        "Cannot find initializer 'kaiming'. Valid names are: bilinear, constant, msraprelu, normal, one, ones, orthogonal, uniform, xavier, zero, zeros; received init='kaiming'",
        lambda: G.init.create("kaiming"),
        "init-create-name",
    ),
    _case(
        MXNetValueError,
        "Invalid Input: 'gelu', valid values are: {'relu', 'sigmoid', 'softrelu', 'softsign', 'tanh'}, in operator Activation(name=\"\", act_type=\"gelu\"); received activation='gelu'",
        lambda: G.nn.Activation("gelu"),
        "Activation-name",
    ),
    _case(
        TypeError,
        "`x.dtype` must be a floating-point dtype; received x.dtype=torch.int64",
        lambda: _gluon_conv()(X.long()),
        "conv-forward-int",
    ),
    _case(
        TypeError,
        "`weight.dtype` must be torch.float64 (the dtype of x); received weight.dtype=torch.float32",
        lambda: _gluon_conv()(X.double()),
        "conv-forward-f64",
    ),
    _case(
        ValueError,
        "`weight.device` must be meta (the device of x); received weight.device=device(type='cpu')",
        lambda: _gluon_conv()(meta(2, 4, 8, 8)),
        "conv-forward-meta",
    ),
    _case(
        MXNetValueError,
        "Check failed: dshp.ndim() == 4U (3 vs. 4) : Input data should be 4D in batch-num_filter-y-x",
        lambda: _gluon_conv()(X[0]),
        "conv-forward-3d",
    ),
    _case(
        MXNetValueError,
        "Check failed: dilated_ksize_y <= AddPad(dshape[2], param_.pad[0]) (3 vs. 2) : kernel size exceed input",
        lambda: _gluon_conv()(torch.randn(1, 4, 2, 2)),
        "conv-forward-small",
    ),
    _case(
        MXNetValueError,
        "Shape inconsistent, Provided = [6,4,3,3], inferred shape=(6,5,3,3)",
        lambda: _gluon_conv()(torch.randn(1, 5, 8, 8)),
        "conv-forward-channels",
    ),
]


@pytest.mark.parametrize(("exc", "message", "fn"), GLUON_CASES)
def test_gluon_errors(exc, message, fn):
    check(exc, message, fn)


# --------------------------------------------------------------------------- megengine
MEGENGINE_CASES = [
    _case(
        TypeError,
        "`kernel_size` must be an int or a sequence of 2 ints; received kernel_size=2.5",
        lambda: M.Conv2d(4, 6, 2.5),
        "conv-kernel-float",
    ),
    _case(
        TypeError,
        "`kernel_size` must be an int or a sequence of 2 ints; received kernel_size=True",
        lambda: M.Conv2d(4, 6, True),
        "conv-kernel-bool",
    ),
    _case(
        MegEngineAssertionError,
        "tuple len is not equal to n: 3; received kernel_size='3'",
        lambda: M.Conv2d(4, 6, "3"),
        "conv-kernel-str",
    ),
    _case(
        MegEngineAssertionError,
        "invalid value: (0, 0); received kernel_size=0",
        lambda: M.Conv2d(4, 6, 0),
        "conv-kernel-0",
    ),
    _case(
        ValueError,
        "`kernel_size` must be small enough for the weight (6, 4, 1099511627776, 1099511627776) to be allocated: 116056878683004400771792896 bytes (100663296.0 EiB) > 9223372036854775807 bytes (8.0 EiB), what a process can address; received kernel_size=(1099511627776, 1099511627776)",
        lambda: M.Conv2d(4, 6, HUGE),
        "conv-kernel-huge",
    ),
    _case(
        TypeError,
        "`stride` must be an int or a sequence of 2 ints; received stride=(1, 1.5)",
        lambda: M.Conv2d(4, 6, 3, stride=(1, 1.5)),
        "conv-stride-float-pair",
    ),
    _case(
        MegEngineAssertionError,
        "invalid value: (-1, -1); received padding=-1",
        lambda: M.Conv2d(4, 6, 3, padding=-1),
        "conv-padding-neg",
    ),
    _case(
        MemoryError,
        re.compile(
            "`in_channels` must be small enough for the weight \\(6, 1099511627776, 3, 3\\) to be allocated: 237494511599616 bytes \\(216\\.0 TiB\\) > "
            + MACHINE
            + "; received in_channels=1099511627776"
        ),
        lambda: M.Conv2d(HUGE, 6, 3),
        "conv-in-huge",
    ),
    _case(
        TypeError,
        "`out_channels` must be a positive integer; received out_channels=True",
        lambda: M.Conv2d(4, True, 3),
        "conv-out-bool",
    ),
    _case(
        ValueError,
        "`groups` must be a positive integer; received groups=0",
        lambda: M.Conv2d(4, 6, 3, groups=0),
        "conv-groups-0",
    ),
    _case(
        ValueError,
        "out_channels must be divisible by groups; received out_channels=6, groups=4",
        lambda: M.Conv2d(4, 6, 3, groups=4),
        "conv-groups-divide",
    ),
    _case(
        TypeError,
        "`bias` must be True or False; received bias='no'",
        lambda: M.Conv2d(4, 6, 3, bias="no"),
        "conv-bias-str",
    ),
    _case(
        TypeError,
        "`bias` must be True or False; received bias=1",
        lambda: M.Conv2d(4, 6, 3, bias=1),
        "conv-bias-int",
    ),
    _case(
        ValueError,
        "`conv_mode` must be one of 'cross_correlation', 'convolution' (any case); received conv_mode='bogus'",
        lambda: M.Conv2d(4, 6, 3, conv_mode="bogus"),
        "conv-conv-mode",
    ),
    _case(
        TypeError,
        "`conv_mode` must be one of 'cross_correlation', 'convolution' (any case); received conv_mode=None",
        lambda: M.Conv2d(4, 6, 3, conv_mode=None),
        "conv-conv-mode-type",
    ),
    _case(
        ValueError,
        "`compute_mode` must be one of 'default', 'float32' (any case); received compute_mode='float16'",
        lambda: M.Conv2d(4, 6, 3, compute_mode="float16"),
        "conv-compute-mode",
    ),
    _case(
        MegEngineAssertionError,
        "padding_mode must be one of 'zeros', 'reflect', 'replicate'; received padding_mode='circular'",
        lambda: M.Conv2d(4, 6, 3, padding_mode="circular"),
        "conv-padding-mode",
    ),
    _case(
        TypeError,
        "`output_padding` must be an int or a sequence of 2 ints; received output_padding=0.5",
        lambda: M.ConvTranspose2d(4, 6, 3, output_padding=0.5),
        "convT-output-padding-float",
    ),
    _case(
        TypeError,
        "`bias` must be True or False; received bias='no'",
        lambda: M.ConvTranspose2d(4, 6, 3, bias="no"),
        "convT-bias-str",
    ),
    _case(
        TypeError,
        "`bias` must be True or False; received bias='no'",
        lambda: M.DeformableConv2d(4, 6, 3, bias="no"),
        "deform-bias-str",
    ),
    _case(
        MemoryError,
        re.compile(
            "`out_channels` must be small enough for the weight \\(1099511627776, 4, 3, 3\\) to be allocated: 158329674399744 bytes \\(144\\.0 TiB\\) > "
            + MACHINE
            + "; received out_channels=1099511627776"
        ),
        lambda: M.DeformableConv2d(4, HUGE, 3),
        "deform-out-huge",
    ),
    _case(
        ValueError,
        "`inp.shape` must be 4-D; received inp.shape=(4, 8, 8)",
        lambda: M.Conv2d(4, 6, 3)(X[0]),
        "conv-forward-3d",
    ),
    _case(
        TypeError,
        "`inp.dtype` must be a floating-point dtype; received inp.dtype=torch.int64",
        lambda: M.Conv2d(4, 6, 3)(X.long()),
        "conv-forward-int",
    ),
    _case(
        TypeError,
        "`weight.dtype` must be torch.float64 (the dtype of inp); received weight.dtype=torch.float32",
        lambda: M.Conv2d(4, 6, 3)(X.double()),
        "conv-forward-f64",
    ),
    _case(
        ValueError,
        "`weight.device` must be meta (the device of inp); received weight.device=device(type='cpu')",
        lambda: M.Conv2d(4, 6, 3)(meta(2, 4, 8, 8)),
        "conv-forward-meta",
    ),
    _case(
        ValueError,
        "`inp.shape` must be large enough for a 3x3 kernel with stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1) (output would be 0x0); received inp.shape=(1, 4, 2, 2)",
        lambda: M.Conv2d(4, 6, 3)(torch.randn(1, 4, 2, 2)),
        "conv-forward-small",
    ),
    _case(
        ValueError,
        "`inp.shape[1]` must be 4, the weight's input channels (4 per group, groups=1); received inp.shape[1]=5",
        lambda: M.Conv2d(4, 6, 3)(torch.randn(1, 5, 8, 8)),
        "conv-forward-channels",
    ),
    _case(
        TypeError,
        "`stride` must be an int or a sequence of at least 2 ints (the first two are used); received stride='3'",
        lambda: M.functional.conv2d(X, W, stride="3"),
        "F-conv-stride-str",
    ),
    _case(
        TypeError,
        "`stride` must be an int or a sequence of at least 2 ints (the first two are used); received stride=2.5",
        lambda: M.functional.conv2d(X, W, stride=2.5),
        "F-conv-stride-float",
    ),
    _case(
        TypeError,
        "`padding` must be an int or a sequence of at least 2 ints (the first two are used); received padding=True",
        lambda: M.functional.conv2d(X, W, padding=True),
        "F-conv-padding-bool",
    ),
    _case(
        TypeError,
        "`groups` must be a positive integer; received groups=True",
        lambda: M.functional.conv2d(X, W, groups=True),
        "F-conv-groups-bool",
    ),
    _case(
        ValueError,
        "`groups` must be a positive integer; received groups=0",
        lambda: M.functional.conv2d(X, W, groups=0),
        "F-conv-groups-0",
    ),
    _case(
        ValueError,
        "`padding` must be small enough for the padded input (2, 4, 2199023255560, 2199023255560) to be allocated: 154742504911798434269235200 bytes (134217728.0 EiB) > 9223372036854775807 bytes (8.0 EiB), what a process can address; received padding=(1099511627776, 1099511627776, 1099511627776, 1099511627776)",
        lambda: M.functional.conv2d(X, W, padding=HUGE),
        "F-conv-padding-huge",
    ),
    _case(
        ValueError,
        "`weight.shape` must be 5-D (groups, O/groups, I/groups, kh, kw) when groups != 1; received weight.shape=(6, 4, 3, 3)",
        lambda: M.functional.conv2d(X, W, groups=2),
        "F-conv-weight-5d",
    ),
    _case(
        TypeError,
        "`inp` must be a torch.Tensor; received inp=<list>",
        lambda: M.functional.conv2d([1.0], W),
        "F-conv-list",
    ),
    _case(
        ValueError,
        "`stride` must be small enough for the output (2, 6, 7696581394435, 7696581394435) to be allocated: 2843393527735824434350522800 bytes (2466250752.0 EiB) > 9223372036854775807 bytes (8.0 EiB), what a process can address; received stride=(1099511627776, 1099511627776)",
        lambda: M.functional.conv_transpose2d(X, WT, stride=HUGE),
        "F-convT-stride-huge",
    ),
    _case(
        TypeError,
        "`output_padding` must be an int or a sequence of at least 2 ints (the first two are used); received output_padding='1'",
        lambda: M.functional.conv_transpose2d(X, WT, stride=2, output_padding="1"),
        "F-convT-output-padding-str",
    ),
    _case(
        TypeError,
        "`dilation` must be an int or a sequence of at least 2 ints (the first two are used); received dilation=1.5",
        lambda: M.functional.deformable_conv2d(DX, DW, OFF, MASK, dilation=1.5),
        "F-deform-dilation-float",
    ),
    _case(
        TypeError,
        "`mask` must be a Tensor (MegEngine's deformable convolution always takes a mask); received mask=<NoneType>",
        lambda: M.functional.deformable_conv2d(DX, DW, OFF, None),
        "F-deform-mask-none",
    ),
    _case(
        ValueError,
        "`offset.device` must be cpu (the device of inp); received offset.device=device(type='meta')",
        lambda: M.functional.deformable_conv2d(DX, DW, meta(2, 18, 5, 5), MASK),
        "F-deform-offset-meta",
    ),
    _case(
        ValueError,
        "`offset.shape[1]` must be a positive multiple of 2*kh*kw=18; received offset.shape[1]=16",
        lambda: M.functional.deformable_conv2d(DX, DW, torch.zeros(2, 16, 5, 5), MASK),
        "F-deform-offset-channels",
    ),
    _case(
        ValueError,
        "`mask.shape` must be (2, 9, 5, 5) (N, dg*kh*kw, H_out, W_out); received mask.shape=(2, 8, 5, 5)",
        lambda: M.functional.deformable_conv2d(DX, DW, OFF, torch.ones(2, 8, 5, 5)),
        "F-deform-mask-channels",
    ),
    _case(
        MegEngineRuntimeError,
        "oc % deformable_group != 0; received weight.shape=(6, 4, 3, 3), deformable_group=4",
        lambda: M.functional.deformable_conv2d(
            DX, DW, torch.zeros(2, 72, 5, 5), torch.ones(2, 36, 5, 5)
        ),
        "F-deform-dg-divides-out",
    ),
    _case(
        MegEngineAssertionError,
        "only support CROSS_CORRELATION mode; received conv_mode='convolution'",
        lambda: M.functional.deformable_conv2d(DX, DW, OFF, MASK, conv_mode="convolution"),
        "F-deform-conv-mode",
    ),
    _case(
        ValueError,
        "`inp.shape` must be large enough for a 3x3 kernel with stride=(1, 1), padding=(0, 0), dilation=(1, 1) (output would be 0x0); received inp.shape=(2, 4, 2, 2)",
        lambda: M.functional.deformable_conv2d(torch.randn(2, 4, 2, 2), DW, OFF, MASK),
        "F-deform-x-small",
    ),
]


@pytest.mark.parametrize(("exc", "message", "fn"), MEGENGINE_CASES)
def test_megengine_errors(exc, message, fn):
    check(exc, message, fn)


# --------------------------------------------------------------------------- torchvision
TORCHVISION_CASES = [
    _case(
        TypeError,
        "`bias` must be True or False; received bias='no'",
        lambda: TV.DeformConv2d(4, 6, 3, bias="no"),
        "module-bias-str",
    ),
    _case(
        TypeError,
        "`bias` must be True or False; received bias=1",
        lambda: TV.DeformConv2d(4, 6, 3, bias=1),
        "module-bias-int",
    ),
    _case(
        MemoryError,
        re.compile(
            "`in_channels` must be small enough for the weight \\(6, 1099511627776, 3, 3\\) to be allocated: 237494511599616 bytes \\(216\\.0 TiB\\) > "
            + MACHINE
            + "; received in_channels=1099511627776"
        ),
        lambda: TV.DeformConv2d(HUGE, 6, 3),
        "module-in-huge",
    ),
    _case(
        ValueError,
        "`kernel_size` must be small enough for the weight (6, 4, 1099511627776, 1099511627776) to be allocated: 116056878683004400771792896 bytes (100663296.0 EiB) > 9223372036854775807 bytes (8.0 EiB), what a process can address; received kernel_size=1099511627776",
        lambda: TV.DeformConv2d(4, 6, HUGE),
        "module-kernel-huge",
    ),
    _case(
        ValueError,
        "`kernel_size` must be positive integers; received kernel_size=0",
        lambda: TV.DeformConv2d(4, 6, 0),
        "module-kernel-0",
    ),
    _case(
        TypeError,
        "`stride` must be an int or a pair of ints; received stride=True",
        lambda: TV.DeformConv2d(4, 6, 3, stride=True),
        "module-stride-bool",
    ),
    _case(
        TypeError,
        "`stride` must be an int or a pair of ints; received stride=1.0",
        lambda: TV.DeformConv2d(4, 6, 3, stride=1.0),
        "module-stride-float",
    ),
    _case(
        ValueError,
        "`groups` must be a positive integer; received groups=0",
        lambda: TV.DeformConv2d(4, 6, 3, groups=0),
        "module-groups-0",
    ),
    _case(
        ValueError,
        "out_channels must be divisible by groups; received out_channels=6, groups=4",
        lambda: TV.DeformConv2d(4, 6, 3, groups=4),
        "module-groups-divide",
    ),
    _case(
        TorchvisionValueError,
        "offset must be on the input's device (cpu); received offset.device=meta",
        lambda: TV.DeformConv2d(4, 6, 3)(DX, meta(2, 18, 5, 5)),
        "module-forward-offset-meta",
    ),
    _case(
        TorchvisionValueError,
        "the shape of the offset tensor at dimension 1 is not valid. It should be a multiple of 2 * weight.size[2] * weight.size[3].\nGot offset.shape[1]=16, while 2 * weight.size[2] * weight.size[3]=18",
        lambda: TV.DeformConv2d(4, 6, 3)(DX, torch.zeros(2, 16, 5, 5)),
        "module-forward-offset-channels",
    ),
    _case(
        TorchvisionValueError,
        "mask output dims: (5, 4) - computed output dims: (5, 5)",
        lambda: TV.DeformConv2d(4, 6, 3)(DX, OFF, torch.ones(2, 9, 5, 4)),
        "module-forward-mask-hw",
    ),
    _case(
        TorchvisionValueError,
        "offset output dims: (5, 5) - computed output dims: (1, 1)",
        lambda: TV.deform_conv2d(DX, OFF, DW, stride=HUGE),
        "F-stride-huge",
    ),
    _case(
        TorchvisionValueError,
        "offset output dims: (4, 5) - computed output dims: (5, 5)",
        lambda: TV.deform_conv2d(DX, torch.zeros(2, 18, 4, 5), DW),
        "F-offset-hw",
    ),
    _case(
        TorchvisionValueError,
        "the shape of the offset tensor at dimension 1 is not valid. It should be a multiple of 2 * weight.size[2] * weight.size[3].\nGot offset.shape[1]=16, while 2 * weight.size[2] * weight.size[3]=18",
        lambda: TV.deform_conv2d(DX, torch.zeros(2, 16, 5, 5), DW),
        "F-offset-channels",
    ),
    _case(
        TorchvisionValueError,
        "mask.shape[1] is not valid: got: 8 expected: 9",
        lambda: TV.deform_conv2d(DX, OFF, DW, mask=torch.ones(2, 8, 5, 5)),
        "F-mask-channels",
    ),
    _case(
        TorchvisionValueError,
        "offset must be on the input's device (cpu); received offset.device=meta",
        lambda: TV.deform_conv2d(DX, meta(2, 18, 5, 5), DW),
        "F-offset-meta",
    ),
    _case(
        TorchvisionValueError,
        "mask must be on the input's device (cpu); received mask.device=meta",
        lambda: TV.deform_conv2d(DX, OFF, DW, mask=meta(2, 9, 5, 5)),
        "F-mask-meta",
    ),
    _case(
        TorchvisionTypeError,
        "weight must have the input's dtype (torch.float32) outside autocast; received weight.dtype=torch.float64",
        lambda: TV.deform_conv2d(DX, OFF, DW.double()),
        "F-weight-f64",
    ),
    _case(
        TorchvisionValueError,
        "input must be a 4-D tensor; received input.shape=[4, 7, 7]",
        lambda: TV.deform_conv2d(DX[0], OFF, DW),
        "F-input-3d",
    ),
    _case(
        TorchvisionTypeError,
        "input must be a floating-point tensor; received input.dtype=torch.int64",
        lambda: TV.deform_conv2d(DX.long(), OFF, DW),
        "F-input-int",
    ),
    _case(
        TorchvisionValueError,
        "offset output dims: (5, 5) - computed output dims: (-1, -1)",
        lambda: TV.deform_conv2d(DX, torch.zeros(2, 162, 5, 5), torch.randn(6, 4, 9, 9)),
        "F-kernel-too-big",
    ),
    _case(
        TorchvisionValueError,
        "input.shape[1] must be a positive multiple of weight.shape[1] (the convolution groups are input.shape[1] // weight.shape[1]); received input.shape[1]=5, weight.shape[1]=4",
        lambda: TV.deform_conv2d(torch.randn(2, 5, 7, 7), OFF, DW),
        "F-channels",
    ),
    _case(
        TorchvisionTypeError,
        "`offset` must be a torch.Tensor; received offset=<list>",
        lambda: TV.deform_conv2d(DX, [0.0], DW),
        "F-offset-list",
    ),
]


@pytest.mark.parametrize(("exc", "message", "fn"), TORCHVISION_CASES)
def test_torchvision_errors(exc, message, fn):
    check(exc, message, fn)


# --------------------------------------------------------------------------- mmcv
MMCV_CASES = [
    _case(
        MMCVAssertionError,
        "bias=True is not supported in DeformConv2d.",
        lambda: MM.DeformConv2d(4, 6, 3, bias=True),
        "dcn-bias-true",
    ),
    _case(
        TypeError,
        "`bias` must be False (mmcv's DCNv1 has no bias); received bias=0",
        lambda: MM.DeformConv2d(4, 6, 3, bias=0),
        "dcn-bias-int",
    ),
    _case(
        TypeError,
        "`bias` must be False (mmcv's DCNv1 has no bias); received bias='no'",
        lambda: MM.DeformConv2d(4, 6, 3, bias="no"),
        "dcn-bias-str",
    ),
    _case(
        TypeError,
        "`bias` must be False (mmcv's DCNv1 has no bias); received bias=0",
        lambda: MM.DeformConv2dPack(4, 6, 3, bias=0),
        "pack-bias-int",
    ),
    _case(
        TypeError,
        "`bias` must be True, False or 'auto'; received bias='no'",
        lambda: MM.ModulatedDeformConv2d(4, 6, 3, bias="no"),
        "mdcn-bias-str",
    ),
    _case(
        TypeError,
        "`bias` must be True, False or 'auto'; received bias=1",
        lambda: MM.ModulatedDeformConv2d(4, 6, 3, bias=1),
        "mdcn-bias-int",
    ),
    _case(
        TypeError,
        "`bias` must be True, False or 'auto'; received bias='yes'",
        lambda: MM.ModulatedDeformConv2dPack(4, 6, 3, bias="yes"),
        "mdcn-pack-bias-str",
    ),
    _case(
        MemoryError,
        re.compile(
            "`in_channels` must be small enough for the weight \\(6, 1099511627776, 3, 3\\) to be allocated: 237494511599616 bytes \\(216\\.0 TiB\\) > "
            + MACHINE
            + "; received in_channels=1099511627776"
        ),
        lambda: MM.DeformConv2d(HUGE, 6, 3),
        "dcn-in-huge",
    ),
    _case(
        ValueError,
        "`kernel_size` must be small enough for the weight (6, 4, 1099511627776, 1099511627776) to be allocated: 116056878683004400771792896 bytes (100663296.0 EiB) > 9223372036854775807 bytes (8.0 EiB), what a process can address; received kernel_size=1099511627776",
        lambda: MM.DeformConv2d(4, 6, HUGE),
        "dcn-kernel-huge",
    ),
    _case(
        ValueError,
        "`deform_groups` must be a positive integer; received deform_groups=0",
        lambda: MM.DeformConv2d(4, 6, 3, deform_groups=0),
        "dcn-deform-groups-0",
    ),
    _case(
        MMCVAssertionError,
        "input channels must divide deformable group size; received in_channels=4, deform_groups=3",
        lambda: MM.DeformConv2d(4, 6, 3, deform_groups=3),
        "dcn-deform-groups-divide",
    ),
    _case(
        ValueError,
        "`deform_groups` must be a positive integer; received deform_groups=0",
        lambda: MM.DeformConv2d(4, 6, 3, deformable_groups=0),
        "dcn-deformable-groups-old-name",
    ),
    _case(
        MMCVAssertionError,
        "in_channels 4 cannot be divisible by groups 3",
        lambda: MM.DeformConv2d(4, 6, 3, groups=3),
        "dcn-groups-divide",
    ),
    _case(
        ValueError,
        "`kernel_size` must be positive integers; received kernel_size=0",
        lambda: MM.DeformConv2d(4, 6, 0),
        "dcn-kernel-0",
    ),
    _case(
        TypeError,
        "`stride` must be an int or a pair of ints; received stride=1.5",
        lambda: MM.DeformConv2d(4, 6, 3, stride=1.5),
        "dcn-stride-float",
    ),
    _case(
        ValueError,
        "`im2col_step` must be a positive integer; received im2col_step=0",
        lambda: MM.DeformConv2d(4, 6, 3, im2col_step=0),
        "dcn-im2col-step-0",
    ),
    _case(
        MMCVAssertionError,
        "Only support bias is False.; received bias=True",
        lambda: MM.deform_conv2d(DX, OFF, DW, bias=True),
        "F-dcn-bias-true",
    ),
    _case(
        MMCVRuntimeError,
        "invalid spatial size of offset, expected height: 5 width: 5, but got height: 4 width: 5",
        lambda: MM.deform_conv2d(DX, torch.zeros(2, 18, 4, 5), DW),
        "F-dcn-offset-hw",
    ),
    _case(
        MMCVRuntimeError,
        "invalid number of channels of offset; received offset.shape[1]=16, deform_groups*2*kH*kW=18",
        lambda: MM.deform_conv2d(DX, torch.zeros(2, 16, 5, 5), DW),
        "F-dcn-offset-channels",
    ),
    _case(
        ValueError,
        "Expected 4D tensor as input, got 3D tensor instead.",
        lambda: MM.deform_conv2d(DX[0], OFF, DW),
        "F-dcn-input-3d",
    ),
    _case(
        ValueError,
        "convolution input is too small (output would be 2x6x-1x-1); received input.shape=(2, 4, 7, 7), weight.shape=(6, 4, 9, 9), stride=(1, 1), padding=(0, 0), dilation=(1, 1)",
        lambda: MM.deform_conv2d(DX, OFF, torch.randn(6, 4, 9, 9)),
        "F-dcn-kernel-too-big",
    ),
    _case(
        MMCVRuntimeError,
        "invalid number of input planes, expected: 4, but got: 5; received weight.shape[1]=4, groups=1",
        lambda: MM.deform_conv2d(torch.randn(2, 5, 7, 7), OFF, DW),
        "F-dcn-channels",
    ),
    _case(
        MMCVAssertionError,
        "batch size must be divisible by im2col_step; received batch_size=3, im2col_step=2",
        lambda: MM.deform_conv2d(
            torch.randn(3, 4, 7, 7), torch.zeros(3, 18, 5, 5), DW, im2col_step=2
        ),
        "F-dcn-step",
    ),
    _case(
        TypeError,
        "`offset` must be a torch.Tensor; received offset=<list>",
        lambda: MM.deform_conv2d(DX, [0.0], DW),
        "F-dcn-offset-list",
    ),
    _case(
        TypeError,
        "`stride` must be an int or a pair of ints; received stride=True",
        lambda: MM.deform_conv2d(DX, OFF, DW, stride=True),
        "F-dcn-stride-bool",
    ),
    _case(
        ValueError,
        "`mask.shape` must be (2, 9, 5, 5) (N, dg*kh*kw, H_out, W_out); received mask.shape=(2, 8, 5, 5)",
        lambda: MM.modulated_deform_conv2d(DX, OFF, torch.ones(2, 8, 5, 5), DW),
        "F-mdcn-mask-channels",
    ),
    _case(
        TypeError,
        "`mask` must be a torch.Tensor; received mask=<NoneType>",
        lambda: MM.modulated_deform_conv2d(DX, OFF, None, DW),
        "F-mdcn-mask-none",
    ),
    _case(
        ValueError,
        "`deform_groups` must be a positive integer; received deform_groups=0",
        lambda: MM.modulated_deform_conv2d(DX, OFF, MASK, DW, deform_groups=0),
        "F-mdcn-deform-groups-0",
    ),
]


@pytest.mark.filterwarnings("ignore:.deformable_groups. is deprecated")
@pytest.mark.parametrize(("exc", "message", "fn"), MMCV_CASES)
def test_mmcv_errors(exc, message, fn):
    check(exc, message, fn)


# --------------------------------------------------------------------------- io
IO_CASES = [
    _case(
        TypeError,
        "`path` must be a str or os.PathLike; received path=<int>",
        lambda: oio.read_checkpoint(3),
        "read-path-int",
    ),
    _case(
        TypeError,
        "`path` must be a str or os.PathLike; received path=<bytes>",
        lambda: oio.read_checkpoint(b"x.pt"),
        "read-path-bytes",
    ),
    _case(
        ValueError,
        "`framework` must be None or one of mxnet, paddle, megengine, torch, safetensors, gluon, pytorch, mmcv, mmdet; received framework='tensorflow'",
        lambda: oio.read_checkpoint(CKPT, "tensorflow"),
        "read-framework-unknown",
    ),
    _case(
        TypeError,
        "`framework` must be None or one of mxnet, paddle, megengine, torch, safetensors, gluon, pytorch, mmcv, mmdet; received framework=3",
        lambda: oio.read_checkpoint(CKPT, 3),
        "read-framework-int",
    ),
    _case(
        TypeError,
        "`progress` must be True or False; received progress='yes'",
        lambda: oio.load_checkpoint(CKPT, progress="yes"),
        "load-progress-str",
    ),
    _case(
        TypeError,
        "`progress` must be True or False; received progress=1",
        lambda: oio.load_checkpoint(CKPT, progress=1),
        "load-progress-int",
    ),
    _case(
        TypeError,
        "`path` must be a str or os.PathLike; received path=<NoneType>",
        lambda: oio.detect_format(None),
        "detect-path-none",
    ),
    _case(
        TypeError,
        "`path` must be a str or os.PathLike; received path=<int>",
        lambda: oio.write_checkpoint({"w": B}, 3),
        "write-path-int",
    ),
    _case(
        ValueError,
        "`path` must end in .safetensors, .pt, .pth; received path='out.npz'",
        lambda: oio.write_checkpoint({"w": B}, "out.npz"),
        "write-extension",
    ),
    _case(
        TypeError,
        "`progress` must be True or False; received progress='yes'",
        lambda: oio.write_checkpoint({"w": B}, "out.pt", progress="yes"),
        "write-progress-str",
    ),
    _case(
        TypeError,
        "`tensors` must be a mapping of names to tensors; received tensors=<list>",
        lambda: oio.write_checkpoint([B], "out.pt"),
        "write-tensors-list",
    ),
    _case(
        TypeError,
        "`tensors['w']` must be a torch.Tensor; received <float>",
        lambda: oio.write_checkpoint({"w": 1.0}, "out.pt"),
        "write-tensor-not-tensor",
    ),
    _case(
        ValueError,
        "`tensors` keys must be non-empty strings other than '__metadata__'; received key ''",
        lambda: oio.write_checkpoint({"": B}, "out.pt"),
        "write-key-empty",
    ),
    _case(
        TypeError,
        "`metadata` must be a mapping of str to str; received metadata={'a': 1}",
        lambda: oio.write_checkpoint({"w": B}, "out.safetensors", metadata={"a": 1}),
        "write-metadata-values",
    ),
    _case(
        ValueError,
        "`tensors['w']` must be a dense tensor; received layout torch.sparse_coo",
        lambda: oio.write_checkpoint({"w": B.to_sparse()}, "out.pt"),
        "write-sparse",
    ),
    _case(
        ValueError,
        "`mapping` must be one of gluon, megengine, mmcv, paddle; received mapping='tensorflow'",
        lambda: oio.map_checkpoint({"w": B}, "tensorflow"),
        "map-name-unknown",
    ),
    _case(
        TypeError,
        "`mapping` must be one of gluon, megengine, mmcv, paddle; received mapping=None",
        lambda: oio.map_checkpoint({"w": B}, None),
        "map-name-none",
    ),
    _case(
        TypeError,
        "`state_dict` must be a mapping of names to tensors; received state_dict=<list>",
        lambda: oio.map_checkpoint([B], "paddle"),
        "map-state-list",
    ),
    _case(
        ValueError,
        "`layout` must be 'NCHW' or 'NHWC'; received layout='NCWH'",
        lambda: oio.map_checkpoint({"w": B}, "gluon", layout="NCWH"),
        "map-gluon-layout",
    ),
]


@pytest.mark.parametrize(("exc", "message", "fn"), IO_CASES)
def test_io_errors(exc, message, fn):
    check(exc, message, fn)


# --------------------------------------------------------------------------- viz_backends
VIZ_BACKENDS_CASES = [
    _case(
        TypeError,
        "`kernel_size` must be an int or a pair of ints; received kernel_size=True",
        lambda: viz.sampling_locations(OFF, kernel_size=True),
        "sampling-kernel-bool",
    ),
    _case(
        ValueError,
        "`kernel_size` must be positive integers; received kernel_size=0",
        lambda: viz.sampling_locations(OFF, kernel_size=0),
        "sampling-kernel-0",
    ),
    _case(
        TypeError,
        "`stride` must be an int or a pair of ints; received stride=1.5",
        lambda: viz.sampling_locations(OFF, kernel_size=3, stride=1.5),
        "sampling-stride-float",
    ),
    _case(
        ValueError,
        "`padding` must be non-negative integers; received padding=-1",
        lambda: viz.sampling_locations(OFF, kernel_size=3, padding=-1),
        "sampling-padding-neg",
    ),
    _case(
        TypeError,
        "`dilation` must be an int or a pair of ints; received dilation='1'",
        lambda: viz.sampling_locations(OFF, kernel_size=3, dilation="1"),
        "sampling-dilation-str",
    ),
    _case(
        ValueError,
        "`offset.shape` must be 2*dg*kh*kw channels, a multiple of 18 for a 3x3 kernel; received offset.shape=(17, 5, 5)",
        lambda: viz.sampling_locations(torch.zeros(1, 17, 5, 5), kernel_size=3),
        "sampling-offset-channels",
    ),
    _case(
        ValueError,
        "`offset.shape` must be 3-D, or 4-D with a batch dimension; received offset.shape=(5, 5)",
        lambda: viz.sampling_locations(torch.zeros(5, 5), kernel_size=3),
        "sampling-offset-ndim",
    ),
    _case(
        TypeError,
        "`offset` must be a tensor or an array of numbers; received offset=<str>",
        lambda: viz.sampling_locations("offset", kernel_size=3),
        "sampling-offset-type",
    ),
    _case(
        ValueError,
        "`mask.shape` must be (9, 5, 5) (dg*kh*kw channels, the offset's size); received mask.shape=(9, 4, 5)",
        lambda: viz.sampling_locations(OFF, mask=torch.ones(2, 9, 4, 5), kernel_size=3),
        "sampling-mask-hw",
    ),
    _case(
        ValueError,
        "`offset` must be finite at the output pixels drawn; received offset='<non-finite values>'",
        lambda: viz.sampling_locations(torch.full((1, 18, 5, 5), float("nan")), kernel_size=3),
        "sampling-offset-nan",
    ),
    _case(
        TypeError,
        "`deformable_group` must be an int in [0, 1) (the offset has 1 deformable groups); received deformable_group=True",
        lambda: viz.sampling_locations(OFF, kernel_size=3, deformable_group=True),
        "sampling-group-bool",
    ),
    _case(
        ValueError,
        "`deformable_group` must be an int in [0, 1) (the offset has 1 deformable groups); received deformable_group=1",
        lambda: viz.sampling_locations(OFF, kernel_size=3, deformable_group=1),
        "sampling-group-range",
    ),
    _case(
        TypeError,
        "`batch` must be an int index into the 2 images of offset; received batch='0'",
        lambda: viz.sampling_locations(OFF, kernel_size=3, batch="0"),
        "sampling-batch-str",
    ),
    _case(
        ValueError,
        "`batch` must be an index into the 2 images of offset; received batch=2",
        lambda: viz.sampling_locations(OFF, kernel_size=3, batch=2),
        "sampling-batch-range",
    ),
    _case(
        ValueError,
        "`points` must be inside the 5x5 output; received points=(9, 9)",
        lambda: viz.sampling_locations(OFF, (9, 9), kernel_size=3),
        "sampling-points-outside",
    ),
    _case(
        ValueError,
        "`points` must be (y, x) or a sequence of (y, x) integer output pixels; received points=(1.5, 2)",
        lambda: viz.sampling_locations(OFF, (1.5, 2), kernel_size=3),
        "sampling-points-float",
    ),
    _case(
        TypeError,
        "`grey` must be True or False; received grey='yes'",
        lambda: _plot(grey="yes"),
        "plot-grey-str",
    ),
    _case(
        ValueError,
        "`dpi` must be a positive integer; received dpi=0",
        lambda: _plot(dpi=0),
        "plot-dpi-0",
    ),
    _case(
        TypeError,
        "`dpi` must be a positive integer; received dpi=72.0",
        lambda: _plot(dpi=72.0),
        "plot-dpi-float",
    ),
    _case(
        TypeError,
        "`title` must be None or a str; received title=<int>",
        lambda: _plot(title=3),
        "plot-title-int",
    ),
    _case(
        TypeError,
        "`path` must be None, a str or an os.PathLike; received path=<int>",
        lambda: _plot(path=3),
        "plot-path-int",
    ),
    _case(
        TypeError,
        "`ax` must be None or matplotlib Axes; received ax=<int>",
        lambda: _plot(ax=3),
        "plot-ax-int",
    ),
    _case(
        ValueError,
        "`image.shape` must be (C, H, W), (H, W) or (N, C, H, W); received image.shape=(1, 1, 3, 7, 7)",
        lambda: _plot(image=torch.rand(1, 1, 3, 7, 7)),
        "plot-image-5d",
    ),
    _case(
        ValueError,
        "`image.shape` must be the layer's input: with this geometry a 2x2 input gives a 0x0 output, and the offset is 5x5; received image.shape=(2, 2)",
        lambda: _plot(image=torch.rand(3, 2, 2)),
        "plot-image-small",
    ),
    _case(
        TypeError,
        "`kernel_size` must be left out when layer= gives the geometry; received kernel_size=3",
        lambda: _plot(layer=onn.DeformConv2d(4, 6, 3)),
        "plot-kernel-and-layer",
    ),
    _case(
        TypeError,
        "`layer` must be a deformable conv layer (with kernel_size, stride, padding, dilation); received layer=<int>",
        lambda: viz.plot_sampling(torch.rand(3, 7, 7), OFF, layer=3),
        "plot-layer-type",
    ),
    _case(
        TypeError,
        "`kernel_size` must be given (or layer=); received kernel_size=None",
        lambda: viz.plot_sampling(torch.rand(3, 7, 7), OFF),
        "plot-no-geometry",
    ),
    _case(
        ValueError,
        "`name` must be a backend, one of ('auto', 'numba', 'torch'); received name='cuda'",
        lambda: backends.deform_backend("cuda"),
        "backend-unknown",
    ),
    _case(
        ValueError,
        "`name` must be a backend, one of ('auto', 'numba', 'torch'); received name='TORCH'",
        lambda: backends.deform_backend("TORCH"),
        "backend-case",
    ),
    _case(
        TypeError,
        "`name` must be a backend, one of ('auto', 'numba', 'torch'); received name=None",
        lambda: backends.deform_backend(None),
        "backend-type",
    ),
    _case(
        TypeError,
        "`enabled` must be True or False; received enabled='no'",
        lambda: backends.fused_gemm("no"),
        "fused-gemm-str",
    ),
    _case(
        TypeError,
        "`enabled` must be True or False; received enabled=0",
        lambda: backends.fused_gemm(0),
        "fused-gemm-int",
    ),
]


@pytest.mark.parametrize(("exc", "message", "fn"), VIZ_BACKENDS_CASES)
def test_viz_backends_errors(exc, message, fn):
    check(exc, message, fn)


# --------------------------------------------------------------------------- command line
#: (argv, exit status, the one line on stderr): 2 for a usage error (argparse's status),
#: 1 for a file that cannot be read or written; nothing on stdout, nothing written.
#: ``{ckpt}`` is a torch checkpoint; argparse's own "invalid choice" lists are matched with
#: or without quotes (Python versions differ).
CLI_CASES = [
    pytest.param(
        ["demo", "--seed", "x"],
        2,
        "omniconv demo: error: argument --seed: must be an integer in [-2**63, 2**64 - 1] (torch.manual_seed's range); received 'x' (see 'omniconv demo -h')",
        id="demo-seed-str",
    ),
    pytest.param(
        ["demo", "--seed", "1.5"],
        2,
        "omniconv demo: error: argument --seed: must be an integer in [-2**63, 2**64 - 1] (torch.manual_seed's range); received '1.5' (see 'omniconv demo -h')",
        id="demo-seed-float",
    ),
    pytest.param(
        ["demo", "--seed", "18446744073709551616"],
        2,
        "omniconv demo: error: argument --seed: must be an integer in [-2**63, 2**64 - 1] (torch.manual_seed's range); received 18446744073709551616 (see 'omniconv demo -h')",
        id="demo-seed-range",
    ),
    pytest.param(
        ["demo", "--bogus"],
        2,
        "omniconv: error: unrecognized arguments: --bogus (see 'omniconv -h')",
        id="demo-unknown-option",
    ),
    pytest.param(
        ["bench", "--rounds", "0"],
        2,
        "omniconv bench: error: argument --rounds/--repeats: must be a positive integer; received 0 (see 'omniconv bench -h')",
        id="bench-rounds-0",
    ),
    pytest.param(
        ["bench", "--repeats", "-3"],
        2,
        "omniconv bench: error: argument --rounds/--repeats: must be a positive integer; received -3 (see 'omniconv bench -h')",
        id="bench-repeats-neg",
    ),
    pytest.param(
        ["bench", "--threads", "0"],
        2,
        "omniconv bench: error: argument --threads: must be a positive integer; received 0 (see 'omniconv bench -h')",
        id="bench-threads-0",
    ),
    pytest.param(
        ["bench", "--threads", "two"],
        2,
        "omniconv bench: error: argument --threads: must be a positive integer; received 'two' (see 'omniconv bench -h')",
        id="bench-threads-str",
    ),
    pytest.param(
        ["bench", "--layout", "NHWC"],
        2,
        re.compile(
            "omniconv\\ bench:\\ error:\\ argument\\ \\-\\-layout:\\ invalid\\ choice:\\ 'NHWC'\\ \\(choose from '?NCHW'?, '?channels_last'?\\)\\ \\(see\\ 'omniconv\\ bench\\ \\-h'\\)"
        ),
        id="bench-layout",
    ),
    pytest.param(
        ["bench", "--peer", "tensorflow"],
        2,
        "omniconv bench: error: argument --peer: unknown peer 'tensorflow' (known: mxnet, onnxruntime, openvino, paddle, or a .py file) (see 'omniconv bench -h')",
        id="bench-peer",
    ),
    pytest.param(
        ["convert", "{ckpt}"],
        2,
        "omniconv convert: error: the following arguments are required: DST (see 'omniconv convert -h')",
        id="convert-no-dst",
    ),
    pytest.param(
        ["convert", "{ckpt}", "out.npz"],
        1,
        "omniconv convert: error: `DST` must end in .safetensors, .pt, .pth; received DST='out.npz'",
        id="convert-dst-extension",
    ),
    pytest.param(
        ["convert", "{ckpt}", "missing-dir/out.pt"],
        1,
        "omniconv convert: error: `DST` must be in an existing directory; received DST='missing-dir/out.pt'",
        id="convert-dst-directory",
    ),
    pytest.param(
        ["convert", "{ckpt}", "out.pt", "--framework", "tensorflow"],
        2,
        re.compile(
            "omniconv\\ convert:\\ error:\\ argument\\ \\-\\-framework:\\ invalid\\ choice:\\ 'tensorflow'\\ \\(choose from '?mxnet'?, '?paddle'?, '?megengine'?, '?torch'?, '?safetensors'?, '?gluon'?, '?pytorch'?, '?mmcv'?, '?mmdet'?\\)\\ \\(see\\ 'omniconv\\ convert\\ \\-h'\\)"
        ),
        id="convert-framework-unknown",
    ),
    pytest.param(
        ["convert", "{ckpt}", "out.pt", "--framework", "paddle"],
        1,
        "omniconv convert: error: {ckpt}: framework='paddle' was asked for, but the file is a torch zip archive (read as torch)",
        id="convert-framework-mismatch",
    ),
    pytest.param(
        ["convert", "{ckpt}", "out.pt", "--map", "tensorflow"],
        2,
        re.compile(
            "omniconv\\ convert:\\ error:\\ argument\\ \\-\\-map:\\ invalid\\ choice:\\ 'tensorflow'\\ \\(choose from '?gluon'?, '?megengine'?, '?mmcv'?, '?paddle'?\\)\\ \\(see\\ 'omniconv\\ convert\\ \\-h'\\)"
        ),
        id="convert-map-unknown",
    ),
    pytest.param(
        ["convert", "{ckpt}", "out.pt", "--layout", "NCWH"],
        2,
        re.compile(
            "omniconv\\ convert:\\ error:\\ argument\\ \\-\\-layout:\\ invalid\\ choice:\\ 'NCWH'\\ \\(choose from '?NCHW'?, '?NHWC'?\\)\\ \\(see\\ 'omniconv\\ convert\\ \\-h'\\)"
        ),
        id="convert-layout-unknown",
    ),
    pytest.param(
        ["convert", "{ckpt}", "out.pt", "--layout", "NHWC"],
        1,
        "omniconv convert: error: `--layout` must be used with `--map gluon`; received --layout NHWC",
        id="convert-layout-without-map",
    ),
    pytest.param(
        ["convert", "{ckpt}", "out.pt", "--progress", "--no-progress"],
        2,
        "omniconv convert: error: argument --no-progress: not allowed with argument --progress (see 'omniconv convert -h')",
        id="convert-progress-both",
    ),
    pytest.param(
        ["convert", "missing.pt", "out.pt"],
        1,
        "omniconv convert: error: [Errno 2] No such file or directory: 'missing.pt'",
        id="convert-src-missing",
    ),
    pytest.param(
        ["inspect"],
        2,
        "omniconv inspect: error: the following arguments are required: SRC (see 'omniconv inspect -h')",
        id="inspect-no-src",
    ),
    pytest.param(
        ["inspect", "missing.pt"],
        1,
        "omniconv inspect: error: [Errno 2] No such file or directory: 'missing.pt'",
        id="inspect-src-missing",
    ),
    pytest.param(
        ["inspect", "."],
        1,
        "omniconv inspect: error: .: a directory: a checkpoint is a regular file",
        id="inspect-src-directory",
    ),
    pytest.param(
        ["inspect", "{ckpt}", "--framework", "tensorflow"],
        2,
        re.compile(
            "omniconv\\ inspect:\\ error:\\ argument\\ \\-\\-framework:\\ invalid\\ choice:\\ 'tensorflow'\\ \\(choose from '?mxnet'?, '?paddle'?, '?megengine'?, '?torch'?, '?safetensors'?, '?gluon'?, '?pytorch'?, '?mmcv'?, '?mmdet'?\\)\\ \\(see\\ 'omniconv\\ inspect\\ \\-h'\\)"
        ),
        id="inspect-framework-unknown",
    ),
    pytest.param(
        ["bogus"],
        2,
        re.compile(
            "omniconv:\\ error:\\ argument\\ command:\\ invalid\\ choice:\\ 'bogus'\\ \\(choose from '?demo'?, '?bench'?, '?convert'?, '?inspect'?\\)\\ \\(see\\ 'omniconv\\ \\-h'\\)"
        ),
        id="command-unknown",
    ),
    pytest.param(
        [],
        2,
        "omniconv: error: the following arguments are required: command (see 'omniconv -h')",
        id="command-missing",
    ),
]


@pytest.mark.parametrize(("argv", "status", "line"), CLI_CASES)
def test_cli_errors(argv, status, line, capsys, tmp_path, monkeypatch):
    from omniconv import cli

    monkeypatch.chdir(tmp_path)
    try:
        code = cli.main([a.format(ckpt=CKPT) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    assert code == status and out.out == ""
    assert out.err.endswith("\n") and out.err.count("\n") == 1, out.err
    text = out.err[:-1]
    if isinstance(line, re.Pattern):
        assert line.fullmatch(text), text
    else:
        assert text == line.format(ckpt=CKPT)
    assert list(tmp_path.iterdir()) == []  # nothing written
