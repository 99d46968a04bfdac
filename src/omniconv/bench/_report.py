"""What ``omniconv bench`` prints: a progress bar on stderr while it runs, then the tables."""

from __future__ import annotations

from typing import Any

__all__ = ["format_table"]

MIB = 1 << 20
PASS_LABELS = {"forward": "fwd", "forward_backward": "fwd+bwd"}


def _grid(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in rows]


def _shape(shape: list[int]) -> str:
    return ",".join(map(str, shape))


def _peer_cells(row: dict[str, Any] | None, key: str, layout: str) -> list[str]:
    """A peer's time (ms per call of its deformable conv) and ratio to its own dense conv."""
    if layout != "NCHW" or row is None:
        return ["-", "-"]
    if "error" in row:
        return ["error", "error"]
    if key + "_ratio" not in row:
        return ["n/a", "n/a"]
    flag = "" if row["agreement"]["ok"] else " (differs!)"
    return [f"{row[key]['deform']['median_ms']:.2f}", f"{row[key + '_ratio']:.2f}x{flag}"]


def _dcn_table(result: dict[str, Any]) -> list[str]:
    dcn = result["dcn"]
    peer_rows = {
        name: {tuple(r["shape"]): r for r in p.get("rows", [])}
        for name, p in result.get("peers", {}).items()
    }
    extra = [k for k in dcn[0]["forward_ratio"] if k != "omniconv"] if dcn else []
    head = ["N,C,H=W", "layout", "pass", "dense ms", "omniconv ms", "ratio"]
    head += [f"{k} ratio" for k in extra]
    head += [f"{k} {col}" for k in peer_rows for col in ("ms", "ratio")]
    rows = [head]
    for r in dcn:
        for key, label in PASS_LABELS.items():
            cells = [_shape(r["shape"]), r["layout"], label]
            cells += [
                f"{r[key]['dense']['median_ms']:.2f}",
                f"{r[key]['omniconv']['median_ms']:.2f}",
            ]
            cells += [f"{r[key + '_ratio'][k]:.2f}x" for k in ["omniconv", *extra]]
            for p in peer_rows.values():
                cells += _peer_cells(p.get(tuple(r["shape"])), key, r["layout"])
            rows.append(cells)
    rounds = dcn[0]["rounds"] if dcn else 0
    return [
        f"DCNv2 3x3, padding 1, C_in = C_out, float32, {result['threads']} threads "
        f"(fast path: {'numba' if result['fast_path'] else 'off'}); times: median ms of "
        f"{rounds} rounds; ratio: median over rounds of time / dense conv2d of the same shape "
        "in the same round",
        *_grid(rows),
    ]


def _memory_lines(result: dict[str, Any]) -> list[str]:
    lines = ["peak memory of one forward+backward (torch.profiler, live CPU tensors):"]
    for r in result["dcn"]:
        mem = r["peak_memory_bytes"]
        lines.append(
            f"  {_shape(r['shape'])} {r['layout']:<13} dense {mem['dense'] / MIB:7.1f} MiB  "
            f"omniconv {mem['omniconv'] / MIB:7.1f} MiB"
        )
    return lines


def _agreement_text(rows: list[dict[str, Any]]) -> str:
    checked = [r for r in rows if "agreement" in r]
    if not checked:
        return "no output to check"
    diffs = [v for r in checked for v in r["agreement"]["rel_diff"].values() if v is not None]
    worst = max(diffs, default=float("nan"))
    rtol = checked[0]["agreement"]["rtol"]
    bad = [_shape(r["shape"]) for r in checked if not r["agreement"]["ok"]]
    verdict = f"DIFFERS from omniconv at {' '.join(bad)}" if bad else "agrees with omniconv"
    return f"{verdict} (max |theirs - ours| / max |ours|: {worst:.1e}, tolerance {rtol:g})"


def _peer_lines(result: dict[str, Any]) -> list[str]:
    peers = result.get("peers", {})
    if not peers:
        return []
    lines = [
        "peers (own interpreter, NCHW data of the rows above; ms = median ms per call of their "
        "deformable conv over their own rounds; ratio = their deformable conv / their dense "
        "conv; outputs and gradients checked against omniconv's; n/a: an inference runtime, "
        "forward only):"
    ]
    for name, p in peers.items():
        if "error" in p:
            lines.append(f"  {name}: failed: {p['error'].strip().splitlines()[-1:]}")
            continue
        ops = sorted({r["op"] for r in p["rows"] if "op" in r})
        if any(r.get("border") == "clamp" for r in p["rows"]):
            ops.append("clamped border: compared away from it")
        lines.append(
            f"  {name} ({', '.join([p['framework'], *ops])}): {_agreement_text(p['rows'])}"
        )
        lines += [f"  {name} {_shape(r['shape'])}: {r['error']}" for r in p["rows"] if "error" in r]
        for key, label in PASS_LABELS.items():
            dense = [
                f"{_shape(r['shape'])} {r[key]['dense']['median_ms']:.2f}"
                for r in p["rows"]
                if key in r
            ]
            if dense:
                lines.append(f"    its own dense conv, {label}, median ms: {'  '.join(dense)}")
    return lines


def _wrapper_lines(result: dict[str, Any]) -> list[str]:
    lines = ["wrappers (forward, no_grad) vs torch native; ratio = omniconv / torch:"]
    for w in result.get("wrappers", []):
        s = (
            f"  {w['name']:<30} {_shape(w['shape']):<12} torch {w['torch_ms']:7.2f} ms  "
            f"omniconv {w['omniconv_ms']:7.2f} ms  ratio {w['ratio']:.3f}"
        )
        if "speedup" in w:
            s += f"  (speedup {w['speedup']:.2f}x, max |diff| {w['max_abs_diff']:.1e})"
        lines.append(s)
    return lines


def _autocast_table(result: dict[str, Any]) -> list[str]:
    rows = result.get("autocast")
    if not rows:
        return []
    cols = ("float32 ms", "autocast ms", "ratio", "error")
    table = [["N,C,H=W", "layout", "pass", *cols, *(f"dense {c}" for c in cols)]]
    for r in rows:
        for (key, label), err in zip(PASS_LABELS.items(), ("output", "grad_input"), strict=True):
            cells = [_shape(r["shape"]), r["layout"], label]
            for name in ("omniconv", "dense"):
                t = r[key][name]
                cells += [f"{t['float32']['median_ms']:.2f}", f"{t['autocast']['median_ms']:.2f}"]
                cells += [f"{r[key + '_ratio'][name]:.2f}x", f"{r['accuracy'][name][err]:.1e}"]
            table.append(cells)
    out = rows[0]["output_dtype"]
    return [
        f"autocast: DCNv2 (omniconv) and dense conv2d under torch.autocast('cpu', "
        f"{rows[0]['dtype']}) on {rows[0]['dtype']} x, offset, mask (float32 weight, bias) "
        f"vs float32 without autocast, {result['threads']} threads; times: median ms of "
        f"{rows[0]['rounds']} rounds; ratio: median over rounds of autocast / float32 in the "
        "same round (< 1: autocast faster); error: max |autocast - float64| / max |float64| "
        "of the output (fwd) and of the input gradient (fwd+bwd); output dtype under "
        f"autocast: omniconv {out['omniconv']}, dense {out['dense']}",
        *_grid(table),
    ]


def _scale_lines(result: dict[str, Any]) -> list[str]:
    scale = result.get("scale")
    if not scale:
        return []
    head = ["family", "N,C,H=W", "layout", "dense ms", "omniconv ms", "ratio", "ms/Mpix"]
    head += ["dense MiB", "omniconv MiB", "excess MiB", "offset+mask MiB"]
    table = [head]
    for r in scale["rows"]:
        t, mem = r["forward_backward"], r["peak_memory_bytes"]
        cells = [r["family"], _shape(r["shape"]), r["layout"]]
        cells += [f"{t[k]['median_ms']:.2f}" for k in ("dense", "omniconv")]
        cells += [f"{r['ratio']:.2f}x", f"{r['omniconv_ms_per_megapixel']:.1f}"]
        cells += [f"{mem['dense'] / MIB:.1f}", f"{mem['omniconv'] / MIB:.1f}"]
        cells += [f"{r['excess_bytes'] / MIB:.1f}", f"{r['offset_mask_bytes'] / MIB:.1f}"]
        table.append(cells)
    return [
        f"scale: DCNv2 3x3 (omniconv) and dense conv2d, forward+backward, {result['threads']} "
        f"threads; times: median ms of {scale['rounds']} rounds after 1 warm-up; ratio: median "
        "over rounds of omniconv / dense; ms/Mpix: omniconv ms per million output pixels "
        "(N*H_out*W_out); peak memory of one forward+backward (torch.profiler, live CPU "
        "tensors); excess: omniconv - dense; offset+mask: bytes of offset, mask and their "
        "gradients (the inputs exist before the call: only the gradients, half, count in "
        "the peak)",
        *_grid(table),
        *_thread_lines(scale),
    ]


def _thread_lines(scale: dict[str, Any]) -> list[str]:
    if not scale["threads"]:
        return []
    lo, hi = (scale["threads"][0]["threads"][i] for i in (0, -1))
    head = ["family", "N,C,H=W", "layout"]
    for name in ("omniconv", "dense"):
        head += [f"{name} {lo}t ms", f"{name} {hi}t ms", f"{name} speedup"]
    rows = [head]
    for r in scale["threads"]:
        cells = [r["family"], _shape(r["shape"]), r["layout"]]
        for name in ("omniconv", "dense"):
            t = r["forward_backward"][name]
            cells += [f"{t[str(n)]['median_ms']:.2f}" for n in (lo, hi)]
            cells.append(f"{r['speedup'][name]:.2f}x")
        rows.append(cells)
    return [
        "",
        f"thread scaling: forward+backward median ms at {lo} and {hi} threads (interleaved, "
        f"{scale['rounds']} rounds after 1 warm-up); speedup: median over rounds of time at "
        f"{lo} / time at {hi} threads",
        *_grid(rows),
    ]


def format_table(result: dict[str, Any]) -> str:
    """The result of :func:`run_bench` as text."""
    sections = [_dcn_table(result), _memory_lines(result), _peer_lines(result)]
    sections += [_wrapper_lines(result), _autocast_table(result), _scale_lines(result)]
    return "\n\n".join("\n".join(s) for s in sections if s)
