"""The ``omniconv`` command line: ``omniconv demo``."""

from __future__ import annotations

import argparse
import sys
import time

__all__ = ["main"]

DEMO_TOLERANCE = 1e-4  # float32 layers vs float64 references on O(1) data


def _demo(args: argparse.Namespace) -> int:
    from .demo import format_table, run_demo

    t0 = time.perf_counter()
    rows = run_demo(seed=args.seed)
    print(format_table(rows))
    bad = [r.layer for r in rows if not r.max_error <= DEMO_TOLERANCE]
    elapsed = time.perf_counter() - t0
    if bad:
        print(f"FAILED (error > {DEMO_TOLERANCE:g}): {', '.join(bad)}", file=sys.stderr)
        return 1
    print(f"all {len(rows)} layers match their float64 references ({elapsed:.1f} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="omniconv", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run every layer on a sample image, check it, print a table")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
