"""omniconv's own GEMM for the fused numba kernels: a register-tile micro-kernel emitted
as LLVM IR, and the loop over tiles around it (imported lazily; needs numba).

Why our own: every product of the fused kernels is one small, cache-resident GEMM per
thread and tile, and its sums must come out bit for bit the same whatever the thread
count and tile size (issue 12's determinism). Here each entry of ``C`` is one chain of
fused multiply-adds over ``k = 0, 1, ..., kc - 1`` in that order, starting from 0 (or
from ``C``'s entry when accumulating): no blocking of ``k``, no split sums, so the bits
depend on the data only, not on threads, tiles, alignment or the machine (``llvm.fma`` is
the exactly rounded fused multiply-add on every target). The register tile (``MR`` rows
by two vectors) compiles to AVX-512 where the CPU has it (numba compiles for the host),
and to narrower vectors elsewhere; on this project's machine it runs at oneDNN's speed
(~500 GFLOP/s on 2 cores, float32), 2.5x torch's MKL ``sgemm`` there (AVX2 path).

Layout contract of :func:`gemm_tiles`: raw addresses and strides in elements (the caller
checked the arrays they come from); ``A[i, p]`` is at ``a + (i*sa_i + p*sa_k)``, ``B[p, j]``
at ``b + (p*ldb + j)``, ``C[i, j]`` at ``c + (i*ldc + j)``. It reads and writes whole
register tiles: ``m`` rounded up to ``MR`` rows of ``A`` / ``C`` and ``n`` rounded up to
:func:`block_columns` columns of ``B`` / ``C`` must be inside the caller's buffers (the
extra rows and columns are scratch the caller ignores); ``k >= 1`` is exact.
"""

from __future__ import annotations

from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

__all__ = [
    "MR",
    "BFloat",
    "bf16_supported",
    "block_columns",
    "gemm_tiles",
    "gemm_tiles_bf16",
    "padded",
]

#: rows of the register tile
MR = 14
#: the k extent of one pass over the tiles
KB = 256
#: vectors per row of the register tile (32 float32 / 16 float64 columns with AVX-512's
#: 16 / 8 lanes); 2 * MR accumulators + 2 B vectors + 1 broadcast fit 32 registers
_VECTORS = 2
_LANES = {4: 16, 8: 8}  # itemsize -> lanes of one vector
_NR32 = _LANES[4] * _VECTORS  # columns of the register tile, float32
_NR64 = _LANES[8] * _VECTORS  # and float64


@njit(cache=True)
def block_columns(itemsize: int) -> int:
    """Columns of the register tile for float32 (itemsize 4) or float64 (8)."""
    return _NR32 if itemsize == 4 else _NR64


@njit(cache=True)
def padded(count: int, block: int) -> int:
    """``count`` rounded up to a multiple of ``block``."""
    return -(-count // block) * block


class BFloat(ir.Type):
    """LLVM's ``bfloat`` (llvmlite has no class for it; the IR is text)."""

    def _to_string(self) -> str:
        return "bfloat"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BFloat)

    def __hash__(self) -> int:
        return hash("bfloat")


def bf16_supported() -> bool:
    """Whether numba compiles for a CPU with AVX512-BF16 (``vdpbf16ps``, ``vcvtneps2bf16``):
    the host CPU, unless ``NUMBA_CPU_NAME`` names another target."""
    import llvmlite.binding as llvm
    from numba.core import config

    if getattr(config, "CPU_NAME", None) not in (None, "host"):
        return False
    return bool(llvm.get_host_cpu_features().get("avx512bf16", False))


def _micro_kernel(kind: str):
    """The intrinsic ``kernel(a, sa_i, sa_k, b, ldb, c, ldc, kc, accumulate)``:
    ``C[0:MR, 0:NR] (+)= A[0:MR, 0:kc] @ B[0:kc, 0:NR]`` (``kc >= 1``), accumulators in
    registers, one FMA chain per entry in ``k`` order. ``kind``: ``"f32"``, ``"f64"``, or
    ``"bf16"``: ``A`` and ``B`` bfloat16 (raw ``uint16``), ``C`` float32, ``k`` counted in
    pairs (``vdpbf16ps``: each step adds the products of one pair ``2p, 2p + 1`` to the
    float32 sums): ``A[i, 2p:2p+2]`` at ``a + i*sa_i + p*sa_k`` (two adjacent entries),
    and pair ``p`` of ``B`` is one row of ``NR`` interleaved pairs at ``b + p*ldb``
    (``B[2p + h, j]`` at ``2j + h``)."""
    bf16 = kind == "bf16"
    lanes = _LANES[8 if kind == "f64" else 4]

    @intrinsic
    def kernel(typingctx, a, sa_i, sa_k, b, ldb, c, ldc, kc, accumulate):
        sig = types.void(a, sa_i, sa_k, b, ldb, c, ldc, kc, accumulate)

        def codegen(context, builder, signature, args):  # pragma: no cover - compile time
            a, sa_i, sa_k, b, ldb, c, ldc, kc, accumulate = args
            i64 = ir.IntType(64)
            i32 = ir.IntType(32)
            ft = ir.DoubleType() if kind == "f64" else ir.FloatType()
            vty = ir.VectorType(ft, lanes)
            # the operands' element (A, B) and the B vector / A broadcast types
            et = ir.IntType(16) if bf16 else ft
            bty = ir.VectorType(BFloat(), 2 * lanes) if bf16 else vty
            aty = i32 if bf16 else ft
            A = builder.inttoptr(a, et.as_pointer())
            B = builder.inttoptr(b, et.as_pointer())
            C = builder.inttoptr(c, ft.as_pointer())
            mod = builder.module
            if bf16:
                name = "llvm.x86.avx512bf16.dpbf16ps.512"
                fty = ir.FunctionType(vty, [vty, bty, bty])
            else:
                name = f"llvm.fma.v{lanes}f{64 if kind == 'f64' else 32}"
                fty = ir.FunctionType(vty, [vty, vty, vty])
            fma = mod.globals.get(name) or ir.Function(mod, fty, name=name)

            def const(v: int) -> ir.Value:
                return ir.Constant(i64, v)

            def c_vec(i: int, v: int) -> ir.Value:
                at = builder.add(builder.mul(const(i), ldc), const(lanes * v))
                return builder.bitcast(builder.gep(C, [at]), vty.as_pointer())

            acc = builder.icmp_signed("!=", accumulate, ir.Constant(accumulate.type, 0))
            zero = ir.Constant(vty, None)
            start = [
                [builder.select(acc, builder.load(c_vec(i, v), align=4), zero)
                 for v in range(_VECTORS)]
                for i in range(MR)
            ]  # fmt: skip
            entry = builder.block
            loop = builder.function.append_basic_block("tile_gemm_loop")
            done = builder.function.append_basic_block("tile_gemm_done")
            builder.branch(loop)
            builder.position_at_end(loop)
            k = builder.phi(i64)
            pa = builder.phi(i64)  # k * sa_k
            pb = builder.phi(i64)  # k * ldb
            for phi in (k, pa, pb):
                phi.add_incoming(const(0), entry)
            accs = [[builder.phi(vty) for _ in range(_VECTORS)] for _ in range(MR)]
            for i in range(MR):
                for v in range(_VECTORS):
                    accs[i][v].add_incoming(start[i][v], entry)
            step = 2 * lanes if bf16 else lanes  # B entries per vector
            bv = [
                builder.load(builder.bitcast(builder.gep(B, [builder.add(pb, const(step * v))]),
                                             bty.as_pointer()), align=4)
                for v in range(_VECTORS)
            ]  # fmt: skip
            undef = ir.Constant(ir.VectorType(aty, lanes), ir.Undefined)
            splat = ir.Constant(ir.VectorType(i32, lanes), [0] * lanes)
            new = []
            for i in range(MR):
                ap = builder.gep(A, [builder.add(builder.mul(const(i), sa_i), pa)])
                av = builder.load(builder.bitcast(ap, aty.as_pointer()), align=2 if bf16 else 4)
                bc = builder.shuffle_vector(
                    builder.insert_element(undef, av, ir.Constant(i32, 0)), undef, splat
                )
                if bf16:  # one pair of A, in every lane
                    bc = builder.bitcast(bc, bty)
                    new.append([builder.call(fma, [accs[i][v], bc, bv[v]])
                                for v in range(_VECTORS)])  # fmt: skip
                else:
                    new.append([builder.call(fma, [bc, bv[v], accs[i][v]])
                                for v in range(_VECTORS)])  # fmt: skip
            k1 = builder.add(k, const(1))
            tail = builder.block
            k.add_incoming(k1, tail)
            pa.add_incoming(builder.add(pa, sa_k), tail)
            pb.add_incoming(builder.add(pb, ldb), tail)
            for i in range(MR):
                for v in range(_VECTORS):
                    accs[i][v].add_incoming(new[i][v], tail)
            builder.cbranch(builder.icmp_signed("<", k1, kc), loop, done)
            builder.position_at_end(done)
            for i in range(MR):
                for v in range(_VECTORS):
                    builder.store(new[i][v], c_vec(i, v), align=4)
            return context.get_dummy_value()

        return sig, codegen

    return kernel


_kernel_f32 = _micro_kernel("f32")
_kernel_f64 = _micro_kernel("f64")
_kernel_bf16 = _micro_kernel("bf16")


@njit(inline="always")
def gemm_tiles(m, n, k, a, sa_i, sa_k, b, ldb, c, ldc, accumulate, itemsize):  # pragma: no cover
    """``C[:m, :n] = A[:m, :k] @ B[:k, :n]`` (``+=`` when ``accumulate``), float32 when
    ``itemsize`` is 4, else float64; addresses and strides as in the module docstring
    (whole register tiles: see there). Single-threaded: callers run it on their own
    threads' tiles. ``k >= 1``."""
    nr = block_columns(itemsize)
    # k in blocks (the B block stays in L2, its panels in L1): each block continues the
    # entries' FMA chains from C, so the blocking never changes a bit
    for k0 in range(0, k, KB):
        kc = min(KB, k - k0)
        acc = accumulate or k0 > 0
        for j0 in range(0, n, nr):
            for i0 in range(0, m, MR):
                pa = a + (i0 * sa_i + k0 * sa_k) * itemsize
                pb = b + (k0 * ldb + j0) * itemsize
                pc = c + (i0 * ldc + j0) * itemsize
                if itemsize == 4:
                    _kernel_f32(pa, sa_i, sa_k, pb, ldb, pc, ldc, kc, acc)
                else:
                    _kernel_f64(pa, sa_i, sa_k, pb, ldb, pc, ldc, kc, acc)


@njit(inline="always")
def gemm_tiles_bf16(m, n, kp, a, sa_i, b, c, ldc, accumulate):  # pragma: no cover
    """``C[:m, :n] = A[:m, :2*kp] @ B[:2*kp, :n]``, ``A`` and ``B`` bfloat16 (raw
    ``uint16``), sums and ``C`` float32 (:func:`bf16_supported` CPUs only); ``+=`` when
    ``accumulate``. ``A[i, k]`` at ``a + (i*sa_i + k)`` (pairs adjacent); ``B`` in column
    blocks of interleaved pairs: pair ``p`` of block ``j`` (columns ``32j : 32j + 32``) at
    ``b + (j*kp + p)*64``, the pair of column ``32j + t`` at ``2t``. ``C`` as in
    :func:`gemm_tiles` (whole register tiles). Each entry is one chain of pair steps in
    ``p`` order: bits depend on the data only."""
    nr = _NR32
    for k0 in range(0, kp, KB):
        kc = min(KB, kp - k0)
        acc = accumulate or k0 > 0
        for j0 in range(0, n, nr):
            for i0 in range(0, m, MR):
                pa = a + (i0 * sa_i + 2 * k0) * 2
                pb = b + ((j0 // nr) * kp + k0) * 2 * nr * 2
                pc = c + (i0 * ldc + j0) * 4
                _kernel_bf16(pa, sa_i, 2, pb, 2 * nr, pc, ldc, kc, acc)
