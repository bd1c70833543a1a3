"""One live run at a time on the lab's topics: who holds them, and what stops a run.

A live run (the sensors of a ``LiveSimulation``, a live Flink job, a ``LivePipeline``, a fresh
``labkit run``, a reset of the topics) *claims* the topic it feeds (``input``, or a sandbox's
own) before it starts, and releases it when it stops. Two notebooks running live on the same
topics would corrupt each other (one resets the topics under the other's job, or its sensors
feed the other's job), so a claim from a second process is refused with a ``LabInUseError``
that names the holder and says what to do.

The claim is an exclusive ``flock`` on ``.lab/run/live-<topic>.lock``, held while the process
has runs on the topic (the file is removed when the last one ends). The operating system drops
the lock when the process ends, however it ends (a kernel restarted or killed, ``labkit down``),
so a stale lock never blocks anyone. The file says who holds it (pid, notebook, runs), for the
message and for ``labkit status``.

Within the process that holds it:

* a new run first stops the earlier runs it collides with (a cell run again would otherwise
  run its sensors or its job twice), and says so;
* in a Jupyter kernel, an interrupt (the stop button) stops every live run and says that what
  they wrote is partial, and a ``LiveRunError`` is shown in words, without a traceback;
* when the lab's servers are taken down under a run (``labkit down``), the run stops by itself
  and says so: its owner's next call raises ``LabDownError``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import psutil

from labkit import services
from labkit.config import Mode, Settings
from labkit.errors import LabkitError

log = logging.getLogger(__name__)

# How often a process with live runs checks that the lab's servers still run.
WATCH_EVERY_S = 2.0


class LiveRun(StrEnum):
    """What a claim is for, in the words a student reads."""

    SENSORS = "the sensors (a live simulation)"
    FLINK_JOB = "a live Flink job"
    PIPELINE = "the live pipeline (sensors, Flink job, HBase writers)"
    FRESH_RUN = "a fresh run of the pipeline"
    RESET = "a reset of the topics and tables"

    @property
    def whole(self) -> bool:
        """True for the runs that use every topic and table, and so collide with any run."""
        return self in (LiveRun.PIPELINE, LiveRun.FRESH_RUN, LiveRun.RESET)

    def collides_with(self, other: LiveRun) -> bool:
        return self is other or self.whole or other.whole


class LiveRunError(LabkitError):
    """A live run could not start, or had to stop; the message says what to do."""


class LabInUseError(LiveRunError):
    """Another process runs live on the same topics."""


class LabDownError(LiveRunError):
    """The lab's servers were stopped under a live run."""


@dataclass(frozen=True)
class Holder:
    """The process that holds a topic: what ``labkit status`` and ``LabInUseError`` name."""

    pid: int
    who: str
    runs: tuple[str, ...]
    since: str
    started: float = 0.0  # the process's start time: a pid used again is another process

    def describe(self) -> str:
        runs = ", ".join(self.runs) or "a live run"
        return f"{self.who} (pid {self.pid}), running {runs} since {self.since}"

    def as_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "who": self.who, "runs": list(self.runs), "since": self.since}


# Stops a run: with None after an interrupt or for a newer run, with the error when the lab
# went down (its owner raises it next).
Stop = Callable[[LiveRunError | None], None]


@dataclass(eq=False)
class Claim:
    """One live run's claim on a topic; ``release()`` it when the run has stopped."""

    settings: Settings
    topic: str
    kind: LiveRun
    stop: Stop | None = None
    watched: bool = False  # the lab's servers ran when it was made: watch that they still do
    released: bool = False
    _lingering: int = 0

    def release(self) -> None:
        """The run has stopped: drop the claim (once what it lingers on is done)."""
        with _mutex:
            self.released = True
            if not self._lingering:
                _drop(self)

    def linger(self, work: Callable[[], None], name: str) -> None:
        """Keep the claim, even once released, until ``work()`` (in a thread of its own) is done:
        the end of a run that cannot be cut short, such as a job submission."""

        def run() -> None:
            try:
                work()
            finally:
                with _mutex:
                    self._lingering -= 1
                    if self.released and not self._lingering:
                        _drop(self)

        with _mutex:
            self._lingering += 1
        threading.Thread(target=run, name=name, daemon=True).start()

    def halt(self, reason: LiveRunError | None = None) -> None:
        """Stop the run (``reason``: the error its owner raises next) and wait until it has."""
        if not self.released and self.stop is not None:
            try:
                self.stop(reason)
            except Exception as error:  # a run that fails to stop cleanly has stopped all the same
                log.warning("stopping %s failed: %s", self.kind, error)
                log.debug("how stopping %s failed", self.kind, exc_info=True)
        while self._lingering:
            time.sleep(0.1)
        self.release()


@dataclass(eq=False)
class _Hold:
    """This process's flock on one topic's lock file, and its claims on the topic."""

    path: Path
    fd: int
    since: str
    claims: list[Claim] = field(default_factory=list)


_holds: dict[Path, _Hold] = {}
_mutex = threading.RLock()
_watcher: threading.Thread | None = None
_hooked_shell: Any = None


def lock_path(settings: Settings, topic: str | None = None) -> Path:
    return settings.run_dir / f"live-{topic or settings.topics.input}.lock"


def claim(
    settings: Settings, kind: LiveRun, stop: Stop | None = None, topic: str | None = None
) -> Claim:
    """Claim ``topic`` (default: the settings' ``input``) for a live run of this process.

    Refused with ``LabInUseError`` while another process holds it. Earlier runs of this
    process that the new one collides with are stopped first, with a note.
    """
    _hook_kernel()
    topic = topic or settings.topics.input
    path = lock_path(settings, topic)
    with _mutex:
        hold = _holds.get(path) or _take(path)
        _holds[path] = hold
        earlier = [held for held in hold.claims if kind.collides_with(held.kind)]
        new = Claim(settings, topic, kind, stop)
        hold.claims.append(new)
        _write(hold)
    for old in earlier:
        if old.stop is not None and not old.released:
            print(f"Stopping {old.kind}, which this {_process_noun()} started earlier, first.")
        old.halt()
    _watch(new)
    return new


@contextlib.contextmanager
def claimed(settings: Settings, kind: LiveRun, topic: str | None = None) -> Iterator[Claim]:
    """``claim`` for the length of a ``with`` block."""
    held = claim(settings, kind, topic=topic)
    try:
        yield held
    finally:
        held.release()


def holder(settings: Settings, topic: str | None = None) -> Holder | None:
    """Who holds the topic (default: ``input``) now; None when nobody does (a lock file left by
    a process that has ended holds nothing)."""
    path = lock_path(settings, topic)
    with _mutex:
        if path in _holds:
            return _holder_of(_holds[path])
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        for _attempt in range(20):
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                found = _read(path)
                if found is not None:
                    return found
                time.sleep(0.05)  # its holder is writing it
            else:
                return None
        return Holder(0, "another process", (), "?")
    finally:
        os.close(fd)  # and with it the shared lock, if it got one


def lab_down(settings: Settings) -> bool:
    """True when none of the lab's servers runs: ``labkit down`` (or all of them crashed)."""
    return settings.mode is Mode.EMBEDDED and not any(
        services.running_pid(service, settings) for service in services.STACK
    )


def lab_down_error(kind: LiveRun) -> LabDownError:
    """What a run stopped by ``labkit down`` says."""
    return LabDownError(
        f"The lab's servers were stopped (`labkit down`) while {kind} ran, so it has stopped, "
        "and what it sent and wrote until then is partial. Start the lab again (`labkit up`), "
        "then run its cell again."
    )


# --------------------------------------------------------------------------------------
# The lock file
# --------------------------------------------------------------------------------------


def _take(path: Path) -> _Hold:
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + 2.0
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            found = _read(path)
            if (found is not None and _alive(found)) or time.monotonic() > deadline:
                raise LabInUseError(_in_use(found, path)) from None
            time.sleep(0.05)  # `labkit status` looks at it for an instant
            continue
        if _same_file(fd, path):
            return _Hold(path, fd, datetime.now().strftime("%H:%M:%S"))
        os.close(fd)  # its holder removed it as it let go: lock the one at the path now


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == path.stat().st_ino
    except FileNotFoundError:
        return False


def _in_use(found: Holder | None, path: Path) -> str:
    topic = path.stem.removeprefix("live-")
    who = found.describe() if found else "another process"
    return (
        f"The lab's live topics ({topic} and the topics and tables after it) are in use by "
        f"{who}. Two live runs on the same topics would corrupt each other, so this one did not "
        "start. Stop the other one first (in its notebook: the cell that stops it, such as "
        "`live.stop()` or `job.cancel()`, the stop button, or Kernel > Shut Down Kernel; for a "
        "command: Ctrl-C), then run this again."
    )


def _holder_of(hold: _Hold) -> Holder:
    runs = tuple(dict.fromkeys(str(held.kind) for held in hold.claims))
    return Holder(os.getpid(), _who(), runs, hold.since, psutil.Process().create_time())


def _write(hold: _Hold) -> None:
    data = json.dumps({**_holder_of(hold).as_dict(), "started": psutil.Process().create_time()})
    os.ftruncate(hold.fd, 0)
    os.pwrite(hold.fd, data.encode(), 0)


def _read(path: Path) -> Holder | None:
    try:
        data = json.loads(path.read_text())
        return Holder(
            int(data["pid"]), str(data["who"]), tuple(data["runs"]), str(data["since"]),
            float(data["started"]),
        )  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError):
        return None  # empty (released) or being written


def _alive(found: Holder) -> bool:
    try:
        return abs(psutil.Process(found.pid).create_time() - found.started) < 1.0
    except psutil.Error:
        return False


def _drop(done: Claim) -> None:
    """Forget a claim; the last one of a topic unlocks its file."""
    with _mutex:
        path = lock_path(done.settings, done.topic)
        hold = _holds.get(path)
        if hold is None or done not in hold.claims:
            return
        hold.claims.remove(done)
        if hold.claims:
            _write(hold)
            return
        del _holds[path]
        # Removed while still locked: whoever opened it meanwhile sees it is gone (_same_file).
        # (`labkit reset` may have removed it already, and another process made a new one.)
        if _same_file(hold.fd, path):
            path.unlink()
        os.close(hold.fd)


def _who() -> str:
    """This process as a student knows it: its notebook, or its command."""
    notebook = os.environ.get("JPY_SESSION_NAME")  # Jupyter Server names each kernel's notebook
    if notebook:
        return f"notebook {Path(notebook).name}"
    if _kernel_shell() is not None:
        return "a notebook's kernel"
    command = [Path(sys.argv[0]).name, *sys.argv[1:]] if sys.argv and sys.argv[0] else ["python"]
    return f"`{' '.join(command)}`"


def _process_noun() -> str:
    return "notebook" if _kernel_shell() is not None else "process"


# --------------------------------------------------------------------------------------
# Runs that stop by themselves: an interrupted kernel, the lab taken down
# --------------------------------------------------------------------------------------


def _running() -> list[Claim]:
    with _mutex:
        return [
            held
            for hold in _holds.values()
            for held in hold.claims
            if held.stop is not None and not held.released
        ]


def _halt_all(claims: list[Claim], reason: LiveRunError | None = None) -> None:
    """Halt the claims in a thread of their own: a second interrupt cannot cut a stop in two."""

    def halt() -> None:
        for held in claims:
            held.halt(reason)

    worker = threading.Thread(target=halt, name="labkit-stop", daemon=True)
    worker.start()
    try:
        worker.join()
    except KeyboardInterrupt:
        print("Still stopping, in the background.")


def _kernel_shell() -> Any:
    """The IPython shell of a Jupyter kernel, when this process is one."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return shell if shell is not None and getattr(shell, "kernel", None) is not None else None


def _hook_kernel() -> None:
    """In a Jupyter kernel: an interrupt stops the live runs, and their errors read as words."""
    global _hooked_shell
    shell = _kernel_shell()
    if shell is None or shell is _hooked_shell:
        return
    shell.events.register("post_run_cell", _after_cell)
    shell.set_custom_exc((LiveRunError,), _in_words)
    _hooked_shell = shell


def _after_cell(result: Any) -> None:
    """After a cell: if it was interrupted, stop the live runs of this kernel."""
    if not isinstance(result.error_in_exec, KeyboardInterrupt):
        return
    running = _running()
    if not running:
        return
    what = ", ".join(dict.fromkeys(str(held.kind) for held in running))
    print(f"Interrupted: stopping {what}...")
    _halt_all(running)
    print(
        "Stopped. What it sent and wrote until now stays in Kafka and HBase and is partial: run "
        "the cell that starts it again for a complete run."
    )


def _in_words(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: Any = None):
    """A ``LiveRunError`` in a notebook: its message, without the traceback."""
    shell.showtraceback((etype, value, tb), exception_only=True)


def _watch(new: Claim) -> None:
    global _watcher
    if new.settings.mode is not Mode.EMBEDDED or lab_down(new.settings):
        return
    new.watched = True
    with _mutex:
        if _watcher is None:
            _watcher = threading.Thread(target=_watch_the_lab, name="labkit-watch", daemon=True)
            _watcher.start()


def _watch_the_lab() -> None:
    """While this process has live runs: stop them, in words, once their lab is down."""
    global _watcher
    while True:
        time.sleep(WATCH_EVERY_S)
        with _mutex:
            watched = [held for held in _running() if held.watched]
            if not watched:
                _watcher = None
                return
        down = {settings for settings in {held.settings for held in watched} if lab_down(settings)}
        for held in watched:
            if held.settings in down:
                error = lab_down_error(held.kind)
                print(f"labkit: {error}", file=sys.stderr)
                held.halt(error)
