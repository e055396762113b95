"""What a registry name may be: model, version, alias, schema, metric and tag names.

Names become folder names on the stage and values in SQL, so they are checked before
anything is written, with an error that says what to use instead.
"""

from __future__ import annotations

import difflib
import math
import numbers
import re
from typing import Any

from neve.errors import InvalidNameError, NeveInputError

__all__ = ["case_collision", "check_key", "check_metric", "check_name", "suggest", "tag_value"]

# Names become folder names on the stage and values in SQL: letters, digits, '_', '-', '.'.
# Quotes, semicolons, slashes and whitespace are refused outright; values are also bound.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")
_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-/:@]{0,127}")


# Names Windows reserves for devices, with or without an extension: a folder called "CON"
# or "nul.v1" cannot be created there, so a stage on such a filesystem could not hold them.
_DEVICES = frozenset(
    {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
)


def check_name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value) or ".." in value:
        raise InvalidNameError(
            f"invalid {what} {value!r}: use 1-128 letters, digits, '_', '-' or '.', starting "
            f"with a letter or digit (no quotes, spaces, slashes or SQL)"
        )
    if value.split(".", 1)[0].upper() in _DEVICES:
        raise InvalidNameError(
            f"invalid {what} {value!r}: {value.split('.', 1)[0]!r} is a device name on Windows, "
            f"where a stage folder of that name cannot exist; pick another"
        )
    if value.endswith("."):
        raise InvalidNameError(f"invalid {what} {value!r}: Windows drops a trailing '.', so it would collide")
    return value


def case_collision(name: str, existing: Any, what: str) -> None:
    """Refuse ``name`` when one of ``existing`` differs from it only by case: on a
    case-insensitive filesystem (macOS, Windows) both would share one stage folder."""
    clash = sorted({e for e in existing if e != name and e.lower() == name.lower()})
    if clash:
        raise InvalidNameError(
            f"{what} {name!r} differs from the existing {clash[0]!r} only by case; on a "
            f"case-insensitive filesystem they would share one stage folder. Use {clash[0]!r} or another name"
        )


def check_key(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _KEY.fullmatch(value):
        raise InvalidNameError(
            f"invalid {what} {value!r}: use 1-128 letters, digits or '_ . - / : @' "
            f"(no quotes, spaces or SQL)"
        )
    return value


def suggest(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.5)
    return f"; did you mean {', '.join(map(repr, close))}?" if close else ""


def check_metric(key: str, value: Any) -> float:
    check_key(key, "metric name")
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise NeveInputError(f"metric {key!r} must be a finite number, got {value!r}")
    return float(value)


def tag_value(key: str, value: Any) -> str:
    if not isinstance(value, (str, int, float, bool)):
        raise NeveInputError(f"tag {key!r} must be a string or number, got {type(value).__name__}")
    return str(value)
