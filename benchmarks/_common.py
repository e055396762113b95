"""Helpers every benchmark shares: timing, peak memory, a run header, and
rewriting one ``## section`` of BENCHMARKS.md in place.

Benchmarks measure; they never assert timings. Each benchmark owns one
section of BENCHMARKS.md and rewrites only that section, so the registry,
environment and scoring benchmarks can run at different times on different
machines without clobbering each other.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import resource
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "BENCHMARKS_MD",
    "Measurement",
    "fmt_ratio",
    "fmt_seconds",
    "machine_line",
    "markdown_table",
    "measure",
    "peak_rss_mb",
    "reset_peak_rss",
    "run_header",
    "write_section",
]

BENCHMARKS_MD = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
_TITLE = "# Benchmarks\n\nSide-by-side measurements; each section is rewritten by the benchmark named in it.\n"


# --- timing and memory ---------------------------------------------------


def reset_peak_rss() -> bool:
    """Reset the kernel's high-water mark of this process's resident memory.

    Linux only (writing 5 to clear_refs); returns False where that is not
    possible, in which case :func:`peak_rss_mb` is the peak since start.
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB (since the last reset, where supported)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class Measurement:
    seconds: float  # the best of the repeats
    peak_rss_mb: float  # the peak over all repeats
    result: Any = None  # the last repeat's return value


def measure(fn: Callable[[], Any], repeat: int = 1) -> Measurement:
    """Run ``fn`` ``repeat`` times; keep the fastest wall time and the peak memory."""
    best = float("inf")
    result = None
    reset_peak_rss()
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return Measurement(best, peak_rss_mb(), result)


# --- the run header --------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib() -> float | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return None


def machine_line() -> str:
    ram = _ram_gib()
    parts = [f"{os.cpu_count()} cores", f"{ram:.0f} GiB RAM" if ram else None, _cpu_model()]
    parts.append(f"{platform.system()} {platform.release()}")
    return ", ".join(p for p in parts if p)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def run_header(packages: Iterable[str], command: str | None = None) -> str:
    """Date, machine and package versions, as the first lines of a section."""
    versions = ", ".join(
        [f"Python {platform.python_version()}", *(f"{p} {_version(p)}" for p in packages)]
    )
    lines = [
        f"Run {_dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}"
        + (f" with `{command}`" if command else "")
        + ".",
        f"Machine: {machine_line()}.",
        f"Versions: {versions}.",
    ]
    return "  \n".join(lines) + "\n"


# --- markdown ---------------------------------------------------------------


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    if seconds < 0.1:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.2f} s"


def fmt_ratio(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.2f}x"


def markdown_table(header: list[str], rows: Iterable[Iterable[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_section(title: str, markdown: str, path: Path | str = BENCHMARKS_MD) -> Path:
    """Replace the ``## title`` section of ``path`` with ``markdown``, or append it.

    A section runs from its heading to the next level-2 heading (or the end).
    Other sections are left byte for byte as they were.
    """
    path = Path(path)
    text = path.read_text() if path.exists() else _TITLE
    section = f"## {title}\n\n{markdown.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}[ \t]*\n.*?(?=^## |\Z)", re.M | re.S)
    match = pattern.search(text)
    if match:
        following = text[match.end() :]
        text = text[: match.start()] + section + ("\n" if following else "") + following
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)
    return path


def publish(title: str, markdown: str, *, dry_run: bool, path: Path | str = BENCHMARKS_MD) -> None:
    """Print the section (``--no-write``) or write it into ``path`` and say where."""
    if dry_run:
        print(markdown)
    else:
        print(f"wrote ## {title} to {write_section(title, markdown, path)}")
