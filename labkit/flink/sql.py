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


def double(value: float) -> str:
    """A DOUBLE literal: in exponent form (``85.0E0``), for ``85.0`` is a DECIMAL."""
    if not math.isfinite(value):
        raise ValueError(f"SQL has no literal for {value}")
    text = repr(float(value))
    return text if "e" in text else text + "E0"


def seconds_between(start: str, end: str) -> str:
    """``end - start`` in whole seconds, truncated, as a BIGINT (an expression).

    TIMESTAMPDIFF counts in 32 bits, which wrap past 68 years: the whole days between the
    two fit, and so do the seconds left over after them.
    """
    days = f"TIMESTAMPDIFF(DAY, {start}, {end})"
    return (
        f"CAST({days} AS BIGINT) * 86400\n"
        f"  + TIMESTAMPDIFF(SECOND, TIMESTAMPADD(DAY, {days}, {start}), {end})"
    )
