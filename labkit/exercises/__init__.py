"""The notebooks' exercises: checks that run the student's code and answer in words.

``feedback`` holds the machinery (``Checker``, ``Verdict``); one module per notebook layer
holds that layer's checks. The reference solutions live in ``notebooks/solutions/``.
"""

from labkit.exercises.feedback import Checker, Status, Verdict, check_answer

__all__ = ["Checker", "Status", "Verdict", "check_answer"]
