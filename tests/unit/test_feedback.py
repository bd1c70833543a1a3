"""labkit.exercises.feedback: checks turn every outcome of a student's code into words."""

from __future__ import annotations

from labkit.exercises import Checker, Status, check_answer


def skeleton(days: int) -> list[float]:
    """As a notebook's skeleton cell leaves it."""
    ...


def not_implemented(days: int) -> list[float]:
    raise NotImplementedError


def broken(days: int) -> list[float]:
    return [1.0] * days[0]  # type: ignore[index]


def right(days: int) -> list[float]:
    return [float(day) for day in range(days)]


def wrong(days: int) -> list[float]:
    return [float(day) for day in range(days + 1)]


def length_check(function) -> Checker:
    with Checker("t.length", hint="one value per day") as check:
        values = check.run(function, 3)
        check.require(isinstance(values, list), "a list", f"a {type(values).__name__}")
        check.expect(len(values) == 3, "three values", f"{len(values)} values, expected 3")
        check.expect(values[0] == 0.0, "starts at 0", f"starts at {values[0]}")
    return check


def test_an_untouched_skeleton_is_not_yet_and_says_what_to_write():
    for function in (skeleton, not_implemented):
        verdict = length_check(function).verdict
        assert verdict.status is Status.NOT_YET, function
        assert "write its body" in verdict.text() and "Hint: one value per day" in verdict.text()


def test_an_exception_in_the_students_code_is_a_wrong_verdict_not_a_traceback():
    verdict = length_check(broken).verdict
    assert verdict.status is Status.WRONG
    assert "raised TypeError" in verdict.text()


def test_a_wrong_result_says_what_is_right_and_what_is_off():
    verdict = length_check(wrong).verdict
    assert verdict.status is Status.WRONG
    assert verdict.right == ["a list", "starts at 0"]
    assert verdict.wrong == ["4 values, expected 3"]


def test_a_right_result_passes_without_a_hint():
    verdict = length_check(right).verdict
    assert verdict.passed and "Hint" not in verdict.text()


def test_a_failure_inside_the_check_itself_is_reported_not_raised():
    with Checker("t.inside") as check:
        check.expect(True, "fine", "")
        {}["missing"]
    assert check.verdict.status is Status.WRONG
    assert "KeyError" in check.verdict.text()


def test_answers_are_not_yet_when_missing_and_right_only_when_equal():
    assert check_answer("t.a", None, 4, "ticks").status is Status.NOT_YET
    assert check_answer("t.a", 3, 4, "ticks").status is Status.WRONG
    assert check_answer("t.a", 4, 4, "ticks").passed
    assert check_answer("t.a", " 2024-01-03 ", "2024-01-03", "day").passed


def test_the_verdict_reaches_the_notebook_with_its_status_in_the_metadata():
    verdict = check_answer("01.hourly", 4, 4, "ticks")
    text, metadata = verdict._repr_markdown_()
    assert "01.hourly: right!" in text
    assert metadata == {"labkit": {"exercise": "01.hourly", "status": "passed"}}
