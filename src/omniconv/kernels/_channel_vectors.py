"""Explicit-vector channel loops of the numba kernels, emitted as LLVM IR (imported
lazily; needs numba).

The deformable kernels spend their sampling time in short loops over a run of channels
(one bilinear corner's channels at one tap: 16 to a few hundred floats). LLVM's loop
vectoriser handles such loops poorly: its 4x-interleaved AVX-512 body takes 64 floats
at a time, so a 32- or 64-channel run falls into the scalar remainder, behind runtime
alias checks. Here each loop is written with whole vectors (16 float32 / 8 float64
lanes) and one masked vector for the tail: no remainder loop, no alias checks (the
callers' arrays never overlap: sources are the input, destinations the column tile or
the input gradient), and a fixed order of sums (lane-wise, then the lanes added pairwise
in a fixed tree), so results never depend on threads.

Every function takes raw element addresses (``int64``) of arrays the caller checked, a
count ``n >= 0`` and scalars of the data dtype; ``double`` picks float64.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ._tile_gemm import BFloat

__all__ = [
    "blend",
    "counted_loop",
    "emit_blend",
    "pack_pairs_bf16",
    "store_transposed",
    "sweep",
    "to_bf16",
]

_LANES = {False: 16, True: 8}


class _Vec:
    """IR helpers for one function body: vector type, masks, loads and stores."""

    def __init__(self, builder: ir.IRBuilder, double: bool) -> None:
        self.b = builder
        self.lanes = _LANES[double]
        self.ft = ir.DoubleType() if double else ir.FloatType()
        self.vty = ir.VectorType(self.ft, self.lanes)
        self.i64 = ir.IntType(64)
        self.i32 = ir.IntType(32)
        self.mty = ir.VectorType(ir.IntType(1), self.lanes)
        self.suffix = f"v{self.lanes}f{64 if double else 32}"
        mod = builder.module
        ptr = ir.PointerType()  # opaque pointers (LLVM >= 15)
        self.ptr = ptr
        self.masked_load = self._declare(
            f"llvm.masked.load.{self.suffix}.p0", self.vty, [ptr, self.i32, self.mty, self.vty]
        )
        self.masked_store = self._declare(
            f"llvm.masked.store.{self.suffix}.p0",
            ir.VoidType(),
            [self.vty, ptr, self.i32, self.mty],
        )
        self.fma = self._declare(f"llvm.fma.{self.suffix}", self.vty, [self.vty] * 3)
        self.mod = mod

    def _declare(self, name: str, ret: ir.Type, args: list[ir.Type]) -> ir.Function:
        mod = self.b.module
        fn = mod.globals.get(name)
        if fn is None:
            fn = ir.Function(mod, ir.FunctionType(ret, args), name=name)
        return fn

    def const(self, v: int) -> ir.Constant:
        return ir.Constant(self.i64, v)

    def addr(self, base: ir.Value, index: ir.Value) -> ir.Value:
        """``base`` (an element address, int64) + ``index`` elements, as a pointer."""
        size = 8 if self.ft == ir.DoubleType() else 4
        at = self.b.add(base, self.b.mul(index, self.const(size)))
        return self.b.inttoptr(at, self.ptr)

    def load(self, base: ir.Value, index: ir.Value, mask: ir.Value | None) -> ir.Value:
        p = self.addr(base, index)
        if mask is None:
            return self.b.load(p, align=4, typ=self.vty)
        zero = ir.Constant(self.vty, None)
        return self.b.call(self.masked_load, [p, ir.Constant(self.i32, 4), mask, zero])

    def store(
        self, value: ir.Value, base: ir.Value, index: ir.Value, mask: ir.Value | None
    ) -> None:
        p = self.addr(base, index)
        if mask is None:
            self.b.store(value, p, align=4)
        else:
            self.b.call(self.masked_store, [value, p, ir.Constant(self.i32, 4), mask])

    def splat(self, x: ir.Value) -> ir.Value:
        undef = ir.Constant(self.vty, ir.Undefined)
        one = self.b.insert_element(undef, x, ir.Constant(self.i32, 0))
        return self.b.shuffle_vector(
            one, undef, ir.Constant(ir.VectorType(self.i32, self.lanes), [0] * self.lanes)
        )

    def tail_mask(self, remaining: ir.Value) -> ir.Value:
        """Lanes ``i < remaining`` (``remaining`` < lanes)."""
        lanes = ir.Constant(ir.VectorType(self.i64, self.lanes), list(range(self.lanes)))
        rem = self.b.insert_element(
            ir.Constant(ir.VectorType(self.i64, self.lanes), ir.Undefined),
            remaining,
            ir.Constant(self.i32, 0),
        )
        rem = self.b.shuffle_vector(
            rem, rem, ir.Constant(ir.VectorType(self.i32, self.lanes), [0] * self.lanes)
        )
        return self.b.icmp_unsigned("<", lanes, rem)

    def hsum(self, v: ir.Value) -> ir.Value:
        """The lanes added pairwise: halves, then quarters, ... (a fixed tree)."""
        width = self.lanes
        while width > 1:
            half = width // 2
            lo = self.b.shuffle_vector(
                v, v, ir.Constant(ir.VectorType(self.i32, half), list(range(half)))
            )
            hi = self.b.shuffle_vector(
                v, v, ir.Constant(ir.VectorType(self.i32, half), list(range(half, width)))
            )
            v = self.b.fadd(lo, hi)
            width = half
        return self.b.extract_element(v, ir.Constant(self.i32, 0))


def counted_loop(vec: _Vec, end: ir.Value, step: ir.Value, carried: list[ir.Value], body):
    """Emit ``for i in range(0, end, step)``: ``body(i, carried) -> carried``; leaves the
    builder in the block after the loop and returns the carried values there."""
    b = vec.b
    entry = b.block
    fn = b.function
    head = fn.append_basic_block("cv_head")
    body_bb = fn.append_basic_block("cv_body")
    after = fn.append_basic_block("cv_after")
    b.branch(head)
    b.position_at_end(head)
    i = b.phi(vec.i64)
    i.add_incoming(vec.const(0), entry)
    phis = []
    for c in carried:
        phi = b.phi(c.type)
        phi.add_incoming(c, entry)
        phis.append(phi)
    b.cbranch(b.icmp_unsigned("<", i, end), body_bb, after)
    b.position_at_end(body_bb)
    new = body(i, phis)
    i.add_incoming(b.add(i, step), b.block)
    for phi, v in zip(phis, new, strict=True):
        phi.add_incoming(v, b.block)
    b.branch(head)
    b.position_at_end(after)
    return phis


def _loop(vec: _Vec, n: ir.Value, carried: list[ir.Value], body):
    """Emit ``for i in range(0, n, lanes)``: ``body(i, mask, carried) -> carried``, the
    last, partial vector with a mask (``None`` for whole vectors); returns the final
    carried values. Whole vectors in a loop, then at most one masked vector."""
    b = vec.b
    lanes = vec.const(vec.lanes)
    whole = b.mul(b.udiv(n, lanes), lanes)
    phis = counted_loop(vec, whole, lanes, carried, lambda i, c: body(i, None, c))
    tail = b.block
    fn = b.function
    rest = fn.append_basic_block("cv_rest")
    done = fn.append_basic_block("cv_done")
    remaining = b.sub(n, whole)
    b.cbranch(b.icmp_unsigned(">", remaining, vec.const(0)), rest, done)
    b.position_at_end(rest)
    last = body(whole, vec.tail_mask(remaining), phis)
    rest_end = b.block
    b.branch(done)
    b.position_at_end(done)
    out = []
    for phi, v in zip(phis, last, strict=True):
        merged = b.phi(phi.type)
        merged.add_incoming(phi, tail)
        merged.add_incoming(v, rest_end)
        out.append(merged)
    return out


def _is_double(scalar: types.Type) -> bool:
    return scalar == types.float64


def emit_blend(vec: _Vec, dst: ir.Value, n: ir.Value, coef: list, src: list) -> None:
    """The IR of :func:`blend`: ``dst[i] = sum_q coef[q] * src[q][i]`` for ``i < n``
    (scalars ``coef``, element addresses ``dst``, ``src``), products added in order."""
    b = vec.b
    cs = [vec.splat(c) for c in coef]

    def body(i, mask, carried):
        acc = b.fmul(cs[0], vec.load(src[0], i, mask))
        for c, s in zip(cs[1:], src[1:], strict=True):
            acc = b.call(vec.fma, [c, vec.load(s, i, mask), acc])
        vec.store(acc, dst, i, mask)
        return []

    _loop(vec, n, [], body)


@intrinsic
def blend(typingctx, dst, n, a00, a01, a10, a11, x00, x01, x10, x11):
    """``dst[i] = a00*x00[i] + a01*x01[i] + a10*x10[i] + a11*x11[i]`` for ``i < n``
    (float64 when the coefficients are, else float32)."""
    sig = types.void(dst, n, a00, a01, a10, a11, x00, x01, x10, x11)
    double = _is_double(a00)

    def codegen(context, builder, signature, args):  # pragma: no cover
        dst, n, *rest = args
        emit_blend(_Vec(builder, double), dst, n, rest[:4], rest[4:])
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def sweep(typingctx, g, col, n, x00, x01, x10, x11, d00, d01, d10, d11, b00, b01, b10, b11, on):
    """The backward's pass over one run of channels, each source loaded once:
    ``col[i] = b00*x00[i] + ... + b11*x11[i]``, ``d??[i] += b?? * g[i]`` for the corners
    whose bit is set in ``on`` (1: 00, 2: 01, 4: 10, 8: 11), and returns the four sums
    ``sum_i g[i]*x??[i]`` (lane-wise FMA chains, then each vector's lanes added in a fixed tree)."""
    sig = types.UniTuple(b00, 4)(
        g, col, n, x00, x01, x10, x11, d00, d01, d10, d11, b00, b01, b10, b11, on
    )
    double = _is_double(b00)

    def codegen(context, builder, signature, args):  # pragma: no cover
        g, col, n = args[:3]
        src, dsts, coef, on = args[3:7], args[7:11], args[11:15], args[15]
        vec = _Vec(builder, double)
        cs = [vec.splat(c) for c in coef]
        flags = [builder.icmp_unsigned("!=", builder.and_(on, ir.Constant(on.type, 1 << k)),
                                       ir.Constant(on.type, 0)) for k in range(4)]  # fmt: skip
        start = ir.Constant(vec.vty, None)

        def body(i, mask, carried):
            gv = vec.load(g, i, mask)
            xs = [vec.load(s, i, mask) for s in src]
            acc = builder.fmul(cs[0], xs[0])
            for c, xv in zip(cs[1:], xs[1:], strict=True):
                acc = builder.call(vec.fma, [c, xv, acc])
            vec.store(acc, col, i, mask)
            for d, c, f in zip(dsts, cs, flags, strict=True):
                with builder.if_then(f):
                    vec.store(builder.call(vec.fma, [c, gv, vec.load(d, i, mask)]), d, i, mask)
            return [builder.call(vec.fma, [gv, xv, s]) for xv, s in zip(xs, carried, strict=True)]

        sums = _loop(vec, n, [start] * 4, body)
        return context.make_tuple(builder, signature.return_type, [vec.hsum(v) for v in sums])

    return sig, codegen


@intrinsic
def to_bf16(typingctx, dst, src, n):
    """``dst[i] = bfloat16(src[i])`` for ``i < n``: float32 ``src``, ``dst`` raw bfloat16
    (``uint16``), rounded to nearest even (NaN stays NaN, infinities stay infinite).
    Needs AVX512-BF16 or LLVM's emulation of it."""
    sig = types.void(dst, src, n)

    def codegen(context, builder, signature, args):  # pragma: no cover
        dst, src, n = args
        vec = _Vec(builder, False)
        bty = ir.VectorType(BFloat(), vec.lanes)
        store = vec._declare(
            f"llvm.masked.store.v{vec.lanes}bf16.p0",
            ir.VoidType(),
            [bty, vec.ptr, vec.i32, vec.mty],
        )

        def body(i, mask, carried):
            half = builder.fptrunc(vec.load(src, i, mask), bty)
            at = builder.add(dst, builder.mul(i, vec.const(2)))
            p = builder.inttoptr(at, vec.ptr)
            if mask is None:
                builder.store(half, p, align=2)
            else:
                builder.call(store, [half, p, ir.Constant(vec.i32, 2), mask])
            return []

        _loop(vec, n, [], body)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def pack_pairs_bf16(typingctx, dst, a, b, n, stride):
    """Two float32 rows ``a``, ``b`` (``n`` entries, ``n % 32 == 0``) rounded to bfloat16
    (as :func:`to_bf16`) and interleaved into the ``B`` blocks of
    :func:`._tile_gemm.gemm_tiles_bf16`: columns ``32j : 32j + 32`` go to ``dst + j*stride``
    (``uint16`` elements) as ``a[32j], b[32j], a[32j + 1], b[32j + 1], ...``."""
    sig = types.void(dst, a, b, n, stride)

    def codegen(context, builder, signature, args):  # pragma: no cover
        dst, a, b, n, stride = args
        vec = _Vec(builder, False)
        lanes = vec.lanes
        hty = ir.VectorType(BFloat(), lanes)
        order = ir.Constant(
            ir.VectorType(vec.i32, 2 * lanes), [v for i in range(lanes) for v in (i, lanes + i)]
        )

        def body(i, mask, carried):
            if mask is not None:  # never: n is a multiple of 32
                return []
            pa = builder.fptrunc(vec.load(a, i, None), hty)
            pb = builder.fptrunc(vec.load(b, i, None), hty)
            both = builder.shuffle_vector(pa, pb, order)
            v = builder.udiv(i, vec.const(lanes))
            block = builder.lshr(v, vec.const(1))
            half = builder.and_(v, vec.const(1))
            at = builder.add(builder.mul(block, stride), builder.mul(half, vec.const(2 * lanes)))
            p = builder.inttoptr(builder.add(dst, builder.mul(at, vec.const(2))), vec.ptr)
            builder.store(both, p, align=2)
            return []

        _loop(vec, n, [], body)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def store_transposed(typingctx, dst, ld_dst, src, ld_src, bias, nr, nc, like):
    """A block of ``nr`` rows by ``nc`` columns (both at most the vector width ``L``: 16
    float32 / 8 float64, by the dtype of the scalar ``like``) of ``src`` (row ``i`` at
    ``src + i*ld_src``), plus ``bias[j]`` on column ``j``, stored transposed:
    ``dst[j*ld_dst + i] = src[i*ld_src + j] + bias[j]``; a ``bias`` of ``None``: a plain
    transposed copy (every bit kept). Rows are loaded as vectors (masked to ``nc``),
    transposed in registers (``log2 L`` rounds of two-source shuffles), and written as
    ``nc`` runs of ``nr`` (masked); nothing outside the block is read or written."""
    if not isinstance(like, types.Float):
        return None
    sig = types.void(dst, ld_dst, src, ld_src, bias, nr, nc, like)
    double = _is_double(like)
    add_bias = not isinstance(bias, types.NoneType)

    def codegen(context, builder, signature, args):  # pragma: no cover
        dst, ld_dst, src, ld_src, bias, nr, nc, _ = args
        vec = _Vec(builder, double)
        lanes = vec.lanes
        cols = vec.tail_mask(nc)
        none = ir.Constant(vec.mty, [0] * lanes)
        bv = vec.load(bias, vec.const(0), cols) if add_bias else None
        rows = []
        for i in range(lanes):
            on = builder.icmp_unsigned("<", vec.const(i), nr)
            mask = builder.select(on, cols, none)
            row = vec.load(src, builder.mul(vec.const(i), ld_src), mask)
            rows.append(row if bv is None else builder.fadd(row, bv))
        k = 1
        while k < lanes:  # swap bit k of the row index with bit k of the column index
            lo = [c if not c & k else lanes + c - k for c in range(lanes)]
            hi = [c + k if not c & k else lanes + c for c in range(lanes)]
            lo_m = ir.Constant(ir.VectorType(vec.i32, lanes), lo)
            hi_m = ir.Constant(ir.VectorType(vec.i32, lanes), hi)
            for i in range(lanes):
                if i & k:
                    continue
                a, b = rows[i], rows[i + k]
                rows[i] = builder.shuffle_vector(a, b, lo_m)
                rows[i + k] = builder.shuffle_vector(a, b, hi_m)
            k *= 2
        lane = vec.tail_mask(nr)
        for j in range(lanes):
            on = builder.icmp_unsigned("<", vec.const(j), nc)
            vec.store(rows[j], dst, builder.mul(vec.const(j), ld_dst),
                      builder.select(on, lane, none))  # fmt: skip
        return context.get_dummy_value()

    return sig, codegen
