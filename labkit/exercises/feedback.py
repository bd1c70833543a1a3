"""Checks that teach: run a student's code, and answer in words.

A check runs the student's code (against the real services where the layer needs them) and
returns a ``Verdict``: what is right, what is off (what it expected, what it got), and a hint
that points the way without giving the answer. A check never ends in a traceback: an exception
raised by the student's code, or an untouched skeleton, is a verdict too.

In a notebook, the verdict is the last expression of the check cell: Jupyter shows it as text,
and keeps its outcome in the cell's output metadata (``{"labkit": {"exercise", "status"}}``),
which the lab's tests read to know what every check said.

    with Checker("01.meter", hint="...") as check:
        readings = check.run(student_function, scenario)   # NOT_YET for a skeleton
        check.expect(len(readings) == 30, "one reading a day", f"{len(readings)} readings")
    return check.verdict
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")
# Where the student writes code, the skeleton says `...` (or `pass`, or raises
# NotImplementedError): running it gives Ellipsis or None.
UNTOUCHED = (Ellipsis, None)


class Status(StrEnum):
    PASSED = "passed"
    NOT_YET = "not yet"  # nothing to check yet: the skeleton is untouched, no answer given
    WRONG = "wrong"  # an answer that is off, or code that failed


@dataclass
class Verdict:
    """What a check found, in words."""

    exercise: str
    status: Status = Status.PASSED
    right: list[str] = field(default_factory=list)  # what is right
    wrong: list[str] = field(default_factory=list)  # what is off: expected, got
    hint: str = ""

    @property
    def passed(self) -> bool:
        return self.status is Status.PASSED

    def text(self) -> str:
        lines = {
            Status.PASSED: [f"✓ {self.exercise}: right!"],
            Status.NOT_YET: [f"… {self.exercise}: not yet."],
            Status.WRONG: [f"✗ {self.exercise}: not quite."],
        }[self.status]
        lines += [f"  ✓ {line}" for line in self.right]
        lines += [f"  ✗ {line}" for line in self.wrong]
        if self.hint and not self.passed:
            lines.append(f"  Hint: {self.hint}")
        return "\n".join(lines)

    def metadata(self) -> dict[str, Any]:
        return {"labkit": {"exercise": self.exercise, "status": str(self.status)}}

    def _repr_markdown_(self) -> tuple[str, dict[str, Any]]:
        return "```text\n" + self.text() + "\n```", self.metadata()

    def __repr__(self) -> str:
        return self.text()


class _Stop(Exception):
    """Ends a check early: what follows cannot be checked."""


class Checker:
    """Collects what a check finds; as a context manager, turns any failure into a verdict."""

    def __init__(self, exercise: str, hint: str = "") -> None:
        self.verdict = Verdict(exercise, hint=hint)

    def __enter__(self) -> Checker:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> bool:
        if error is None or isinstance(error, _Stop):
            return True
        if isinstance(error, Exception):  # the check itself failed on the student's output
            self.verdict.wrong.append(f"checking your result raised {_describe(error)}")
            self.verdict.status = Status.WRONG
            return True
        return False  # KeyboardInterrupt and friends go on

    def run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call the student's code: an untouched skeleton ends the check as NOT_YET, an
        exception as WRONG, with the line of their code that raised it."""
        try:
            result = function(*args, **kwargs)
        except NotImplementedError:
            self.not_yet(f"`{_name(function)}` is still the skeleton: write its body")
        except Exception as error:  # noqa: BLE001 - whatever the student's code raises
            where = _student_line(error)
            self.fail(f"`{_name(function)}` raised {_describe(error)}{where}")
        if any(result is marker for marker in UNTOUCHED):
            self.not_yet(f"`{_name(function)}` returns {result!r}: write its body")
        return result

    def expect(self, condition: bool, right: str, wrong: str) -> bool:
        """Note ``right`` when the condition holds, else ``wrong`` (and mark the verdict)."""
        if condition:
            self.verdict.right.append(right)
        else:
            self.verdict.wrong.append(wrong)
            self.verdict.status = Status.WRONG
        return condition

    def require(self, condition: bool, right: str, wrong: str) -> None:
        """Like ``expect``, but nothing after it can be checked when it fails."""
        if not self.expect(condition, right, wrong):
            raise _Stop

    def fail(self, wrong: str) -> None:
        self.verdict.wrong.append(wrong)
        self.verdict.status = Status.WRONG
        raise _Stop

    def not_yet(self, what: str) -> None:
        self.verdict.wrong.append(what)
        self.verdict.status = Status.NOT_YET
        raise _Stop


def check_answer(exercise: str, answer: object, expected: object, hint: str) -> Verdict:
    """The check of a value the student works out (a number, a key, a day): right or not."""
    with Checker(exercise, hint) as check:
        if any(answer is marker for marker in UNTOUCHED):
            check.not_yet("no answer yet: set `answer` above")
        same = answer == expected or str(answer).strip() == str(expected)
        check.expect(same, f"{answer!r} is the answer", f"{answer!r} is not the answer")
    return check.verdict


def _name(function: Callable[..., Any]) -> str:
    return getattr(function, "__qualname__", None) or repr(function)


def _describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:300]}" if text else type(error).__name__


def _student_line(error: BaseException) -> str:
    """Where in the student's own code (a notebook cell) the exception was raised."""
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if frame.filename.startswith("<ipython-input") or "ipykernel" in frame.filename:
            return f" at `{(frame.line or '').strip()}`"
    return ""
