"""Run every benchmark (`make bench`; `make bench-quick` passes --quick).

Each benchmark rewrites only its own section of BENCHMARKS.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import preprocessing

BENCHMARKS = [preprocessing.main]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    quick = ["--quick"] if "--quick" in args else []
    return max(bench(quick) for bench in BENCHMARKS)


if __name__ == "__main__":
    sys.exit(main())
