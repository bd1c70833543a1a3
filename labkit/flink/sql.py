"""Small helpers that write SQL literals and lay out statements for reading."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable


def statement(text: str) -> str:
    """A statement written in an indented triple-quoted string, dedented and stripped."""
    return textwrap.dedent(text).strip()


def indented(lines: Iterable[str], by: str) -> str:
    """Lines joined into one block whose lines after the first are indented ``by``; for a
    block placed at that indent inside a statement."""
    return ("\n" + by).join(line for block in lines for line in block.splitlines())


def quote(text: str) -> str:
    """A string literal."""
    return "'" + text.replace("'", "''") + "'"


def quoted_list(names: Iterable[str]) -> str:
    """String literals for an ``IN (...)`` list."""
    return ", ".join(quote(name) for name in names)


def number(value: float) -> str:
    """A finite DOUBLE literal."""
    if not math.isfinite(value):
        raise ValueError(f"SQL has no literal for {value}")
    return repr(float(value))
