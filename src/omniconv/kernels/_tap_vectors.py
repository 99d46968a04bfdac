"""The forward's sampling of one tap for a run of output pixels, vectorised across the
pixels, emitted as LLVM IR (imported lazily; needs numba).

Per pixel and tap the scalar set-up (sample position, inside test, floor, fractions,
four bilinear weights, four corner addresses) costs as much as blending 64 channels;
here it runs on whole vectors of ``L`` pixels (16 float32 / 8 float64 lanes), then each
pixel's channels are blended as in :func:`._channel_vectors.blend`. The arithmetic is
the scalar kernels' (:func:`._deform_numba._tap`, ``_bilinear``, ``_corner_pixels``)
operation for operation, so the columns are bit for bit the same:

* ``h = base_h[k, y] + offset_h``, ``w = base_w[k, x] + offset_w``; the tap samples the
  image when ``-1 < h < H`` and ``-1 < w < W`` (false for NaN and ``±inf``);
* inside: fractions of the floor, weights ``(1 - lh)(1 - lw)``, ... each times the mask,
  zero for a corner off the image, whose channels are then read from a row of zeros;
* outside: the value ``fill * mask`` (``fill`` NaN at a NaN position, else 0), written
  as a blend of a row of ones by ``fill * mask`` plus three zero rows by 0.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._channel_vectors import _is_double, _Vec, counted_loop, emit_blend

__all__ = ["sample_tap"]


@intrinsic
def sample_tap(
    typingctx, dst, ld, count, nc, oh, ow, om, bh, bw, ys, xs, height, width, img, zrow, ones, like
):
    """Column entries of one tap for ``count`` (``1 <= count <= L``) consecutive rows:
    ``dst[j*ld + c]`` for ``j < count``, ``c < nc``, of the ``mask * bilinear(x)`` of
    output pixel ``(ys[j], xs[j])``.

    Addresses (int64) of C-contiguous arrays the caller checked, in the dtype of the
    scalar ``like`` unless stated: ``oh``, ``ow``, ``om``: the rows' offset rows and mask
    (``count`` entries each; ``om`` a row of ones of at least ``L`` when there is no
    mask); ``bh``, ``bw``: ``base_h[k]``, ``base_w[k]``; ``ys``, ``xs``: ``int32``
    output row and column of each row; ``img``: pixel 0 of the image in the NHWC rows
    (pixel ``i`` at ``img + i*nc`` elements); ``zrow``: ``nc`` zeros; ``ones``:
    ``max(nc, L)`` ones. ``height``, ``width``: the image's."""
    if not isinstance(like, types.Float):
        return None
    sig = types.void(
        dst, ld, count, nc, oh, ow, om, bh, bw, ys, xs, height, width, img, zrow, ones, like
    )
    double = _is_double(like)

    def codegen(context, builder, signature, args):  # pragma: no cover
        dst, ld, count, nc, oh, ow, om, bh, bw, ys, xs, height, width, img, zrow, ones, _ = args
        b = builder
        vec = _Vec(b, double)
        lanes = vec.lanes
        size = 8 if double else 4
        i32v = ir.VectorType(vec.i32, lanes)
        i64v = ir.VectorType(vec.i64, lanes)
        ptrv = ir.VectorType(vec.ptr, lanes)
        first = vec.tail_mask(count)
        zero_i = vec.const(0)

        def splat_i(x: ir.Value) -> ir.Value:
            undef = ir.Constant(i64v, ir.Undefined)
            one = b.insert_element(undef, x, ir.Constant(vec.i32, 0))
            return b.shuffle_vector(one, undef, ir.Constant(i32v, [0] * lanes))

        def fconst(v: float) -> ir.Value:
            return ir.Constant(vec.vty, [v] * lanes)

        def iconst(v: int) -> ir.Value:
            return ir.Constant(i64v, [v] * lanes)

        # the positions: offsets and mask are runs of the rows; base rows are gathered
        load_i = vec._declare(f"llvm.masked.load.v{lanes}i32.p0", i32v,
                          [vec.ptr, vec.i32, vec.mty, i32v])  # fmt: skip
        gather = vec._declare(f"llvm.masked.gather.{vec.suffix}.v{lanes}p0", vec.vty,
                          [ptrv, vec.i32, vec.mty, vec.vty])  # fmt: skip
        floor = vec._declare(f"llvm.floor.{vec.suffix}", vec.vty, [vec.vty])
        zero_f = fconst(0.0)

        def rows_of(base: ir.Value) -> ir.Value:
            p = b.inttoptr(base, vec.ptr)
            return b.call(load_i, [p, ir.Constant(vec.i32, 4), first, ir.Constant(i32v, None)])

        def gathered(base: ir.Value, index: ir.Value) -> ir.Value:
            at = b.add(splat_i(base), b.mul(b.sext(index, i64v), iconst(size)))
            p = b.inttoptr(at, ptrv)
            return b.call(gather, [p, ir.Constant(vec.i32, size), first, zero_f])

        yv = rows_of(ys)
        xv = rows_of(xs)
        h = b.fadd(gathered(bh, yv), vec.load(oh, zero_i, first))
        w = b.fadd(gathered(bw, xv), vec.load(ow, zero_i, first))
        m = vec.load(om, zero_i, first)
        hf = b.sitofp(height, vec.ft)
        wf = b.sitofp(width, vec.ft)
        inside = b.and_(
            b.and_(b.fcmp_ordered(">", h, fconst(-1.0)), b.fcmp_ordered("<", h, vec.splat(hf))),
            b.and_(b.fcmp_ordered(">", w, fconst(-1.0)), b.fcmp_ordered("<", w, vec.splat(wf))),
        )
        nan_at = b.or_(b.fcmp_unordered("uno", h, h), b.fcmp_unordered("uno", w, w))
        fill = b.select(nan_at, fconst(float("nan")), zero_f)
        hz = b.select(inside, h, zero_f)
        wz = b.select(inside, w, zero_f)
        h0 = b.call(floor, [hz])
        w0 = b.call(floor, [wz])
        lh = b.fsub(hz, h0)
        lw = b.fsub(wz, w0)
        hi = b.fptosi(h0, i64v)
        wi = b.fptosi(w0, i64v)
        hv = splat_i(height)
        wv = splat_i(width)
        hi1 = b.add(hi, iconst(1))
        wi1 = b.add(wi, iconst(1))
        top = b.icmp_signed(">=", hi, iconst(0))
        bot = b.icmp_signed("<=", hi1, b.sub(hv, iconst(1)))
        lef = b.icmp_signed(">=", wi, iconst(0))
        rig = b.icmp_signed("<=", wi1, b.sub(wv, iconst(1)))
        hh = b.fsub(fconst(1.0), lh)
        hw = b.fsub(fconst(1.0), lw)
        ons = [b.and_(top, lef), b.and_(top, rig), b.and_(bot, lef), b.and_(bot, rig)]
        prods = [b.fmul(hh, hw), b.fmul(hh, lw), b.fmul(lh, hw), b.fmul(lh, lw)]
        coef = [b.fmul(b.select(on, p, zero_f), m) for on, p in zip(ons, prods, strict=True)]
        coef[0] = b.select(inside, coef[0], b.fmul(fill, m))
        coef[1:] = [b.select(inside, c, zero_f) for c in coef[1:]]

        def smax(a: ir.Value, c: ir.Value) -> ir.Value:
            return b.select(b.icmp_signed(">", a, c), a, c)

        def smin(a: ir.Value, c: ir.Value) -> ir.Value:
            return b.select(b.icmp_signed("<", a, c), a, c)

        ht = b.mul(smax(hi, iconst(0)), wv)
        hb = b.mul(smin(hi1, b.sub(hv, iconst(1))), wv)
        wl = smax(wi, iconst(0))
        wr = smin(wi1, b.sub(wv, iconst(1)))
        pixels = [b.add(ht, wl), b.add(ht, wr), b.add(hb, wl), b.add(hb, wr)]
        step = b.mul(splat_i(nc), iconst(size))
        zv, onev = splat_i(zrow), splat_i(ones)
        srcs = []
        for j, (on, pix) in enumerate(zip(ons, pixels, strict=True)):
            at = b.add(splat_i(img), b.mul(pix, step))
            off = onev if j == 0 else zv
            srcs.append(b.select(inside, b.select(on, at, zv), off))

        # each row's channels: the blend of its four sources, read back as scalars from
        # stack slots (an extractelement at a variable lane would spill every vector on
        # every row)
        coef_slot = cgutils.alloca_once(b, ir.ArrayType(ir.ArrayType(vec.ft, lanes), 4))
        src_slot = cgutils.alloca_once(b, ir.ArrayType(ir.ArrayType(vec.i64, lanes), 4))
        for q in range(4):
            at = [ir.Constant(vec.i32, 0), ir.Constant(vec.i32, q)]
            b.store(coef[q], b.bitcast(b.gep(coef_slot, at), vec.vty.as_pointer()), align=8)
            b.store(srcs[q], b.bitcast(b.gep(src_slot, at), i64v.as_pointer()), align=8)
        zero32 = ir.Constant(vec.i32, 0)

        def row(j, carried):
            cs = [b.load(b.gep(coef_slot, [zero32, ir.Constant(vec.i32, q), j]), typ=vec.ft)
                  for q in range(4)]  # fmt: skip
            src = [b.load(b.gep(src_slot, [zero32, ir.Constant(vec.i32, q), j]), typ=vec.i64)
                   for q in range(4)]  # fmt: skip
            emit_blend(vec, b.add(dst, b.mul(b.mul(j, ld), vec.const(size))), nc, cs, src)
            return []

        counted_loop(vec, count, vec.const(1), [], row)
        return context.get_dummy_value()

    return sig, codegen
