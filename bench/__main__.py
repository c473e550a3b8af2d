"""``python -m bench [NAME ...]``: run the named benchmarks, or all of them without a name."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from bench.harness import RESULTS_DIR, load_benchmarks, report, run


def build_parser(known: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"one of: {', '.join(known)}")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="where NAME.json goes")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    registry = load_benchmarks()
    parser = build_parser(sorted(registry))
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(registry))
        return 0
    unknown = [name for name in args.names if name not in registry]
    if unknown:
        parser.error(f"no benchmark {', '.join(unknown)} (known: {', '.join(registry)})")
    failed = []
    for name in args.names or list(registry):
        try:
            report(run(name, registry), args.out)
        except Exception:  # noqa: BLE001 - one broken benchmark must not hide the others' results
            traceback.print_exc()
            failed.append(name)
    if failed:
        print(f"bench: failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
