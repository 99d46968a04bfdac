"""omniconv bench: time omniconv's deformable conv (DCNv2 3x3, padding 1, C_in = C_out,
float32) against torch's dense conv of the same shape, and omniconv's conv wrappers
against torch's modules.

Shapes (N,C,H=W): 2,64,56  4,128,28  8,256,14  1,256,64 (--quick: 2,32,20), in NCHW and
channels_last layout; one seeded draw of data per shape (offsets ~ N(0, 2^2), mask ~
U(0, 1)).

Method: each contender is timed against the dense conv in interleaved rounds of its own,
in this process, after warm-up runs (which also trigger any JIT compilation); the two
take turns to go first. A time is the median over the rounds; a ratio is the median over
the rounds of the two times of a round, so a noisy neighbour slows both alike. Before
any timing one 16 MiB buffer is allocated and freed, so glibc's malloc keeps large blocks
as a long-running process does (else the first shape pays fresh pages on every call).
Contenders: omniconv, and the baselines pure_torch (omniconv's pure-PyTorch kernel) and
grid_sample (the usual DCN written with F.grid_sample).

Peers (--peer NAME=PYTHON, or --peer NAME for this interpreter): another framework's
deformable conv, in a process of its own (so thread pools do not fight), on the same NCHW
data, timed the same way against that framework's dense conv; its output and gradients are
checked against omniconv's. paddle and mxnet time forward and forward+backward;
onnxruntime (DeformConv, opset 19) and openvino (opset-8 DeformableConvolution with mask)
are inference runtimes, forward only. The table shows each peer's median ms per call and
its ratio.

Peak memory: the highest sum of live CPU tensor allocations during one forward+backward
(torch.profiler's allocator records); memory that BLAS/oneDNN hold outside torch's
allocator is not counted, for either side.

Wrappers: Conv2d, ConvTranspose2d and NHWC Conv2d against torch's modules (the same op
inside: only microseconds differ, so 12x the DCN rows' rounds, 4x with --quick), and
ImgConvGroup in eval mode (BN folded into the conv) against its layers run one by one
(3x, 1x with --quick).

Autocast (--autocast): on the DCN rows' shapes, layouts and rounds, omniconv's DCN and
torch's dense conv under torch.autocast('cpu', dtype=torch.bfloat16), with x, offset and
mask in bfloat16 (weight and bias float32 parameters), each against itself in float32
without autocast, forward and forward+backward; ratio = autocast / float32 (< 1: autocast
is faster). Error: max |autocast - float64| / max |float64| of the output and of the input
gradient, float64 being the same op on the float32 data cast to float64. Under CPU
bfloat16 autocast omniconv's op casts input, weight and bias to bfloat16 (offset and mask
to float32) and returns bfloat16, as torch's conv does; on a CPU with AVX512-BF16 its
kernels multiply in bfloat16 (float32 sums).

Scale (--scale): forward+backward of omniconv's DCN and the dense conv on a growing map
(1,64,H,H for H = 128, 256, 512) and batch (B,128,28,28 for B = 16, 32, 64), in the layouts
asked, a third of the DCN rows' rounds (at least 3) after one warm-up: median ms, omniconv
ms per million output pixels (linear time: a constant), peak memory of both and the
excess beside the bytes of offset, mask and their gradients; then the largest shape of each
family at 1 and 2 threads (interleaved), speedup = median over rounds of t1 / t2. With
--quick, tiny versions of both families.
"""

from ._contenders import grid_sample_deform_conv2d
from ._data import QUICK_SCALE_FAMILIES, QUICK_SHAPES, SCALE_FAMILIES, SHAPES
from ._memory import peak_memory
from ._peers import available_peers, run_peer
from ._report import format_table
from ._run import LAYOUTS, run_bench

__all__ = [
    "LAYOUTS",
    "QUICK_SCALE_FAMILIES",
    "QUICK_SHAPES",
    "SCALE_FAMILIES",
    "SHAPES",
    "available_peers",
    "format_table",
    "grid_sample_deform_conv2d",
    "peak_memory",
    "run_bench",
    "run_peer",
]
