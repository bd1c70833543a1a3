"""Jupyter kernels driven the way JupyterLab drives them (``jupyter_client``): start one for a
notebook, execute code or a notebook's cells in it, interrupt, restart, shut down, and read
back what a student would see."""

from __future__ import annotations

import ast
import os
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import psutil
from jupyter_client import BlockingKernelClient, KernelManager

from labkit import config
from labkit.config import PROJECT_ROOT, Settings

NOTEBOOKS = PROJECT_ROOT / "notebooks"


@dataclass
class Reply:
    """What one execution showed: its status (ok, error, aborted), its text and its error."""

    status: str = ""
    stdout: str = ""
    stderr: str = ""
    error: dict[str, Any] | None = None  # ename, evalue, traceback
    done: bool = False
    _idle: bool = field(default=False, repr=False)

    @property
    def ename(self) -> str | None:
        return self.error["ename"] if self.error else None

    @property
    def shown(self) -> str:
        """Everything the cell printed and its error, as a student reads it."""
        traceback = "\n".join(self.error["traceback"]) if self.error else ""
        return "\n".join((self.stdout, self.stderr, traceback))


def code_cells(name: str, parameters: dict[str, Any]) -> list[str]:
    """A notebook's code cells, with ``parameters`` injected after its parameters cell (as
    papermill does)."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    sources = [cell.source for cell in cells]
    tagged = [i for i, cell in enumerate(cells) if "parameters" in cell.metadata.get("tags", [])]
    injected = "\n".join(f"{key} = {value!r}" for key, value in parameters.items())
    sources.insert(tagged[0] + 1 if tagged else 0, injected)
    return sources


class Kernel:
    """An IPython kernel for a notebook, on the lab of ``settings``, in ``notebooks/``."""

    def __init__(self, settings: Settings | None, notebook: str | None = None) -> None:
        self.manager: KernelManager | None = None
        env = {**os.environ}
        if settings is not None:
            env.update(config.to_environment(settings))
        if notebook is not None:
            env["JPY_SESSION_NAME"] = str(NOTEBOOKS / notebook)  # as Jupyter Server sets it
        self.manager = KernelManager(kernel_name="python3")
        self.manager.start_kernel(env=env, cwd=str(NOTEBOOKS))
        self.client = self.manager.blocking_client()
        self._start_channels()

    @classmethod
    def attach(cls, connection_file: Path) -> Kernel:
        """A kernel someone else started (JupyterLab), through its connection file."""
        kernel = cls.__new__(cls)
        kernel.manager = None
        kernel.client = BlockingKernelClient(connection_file=str(connection_file))
        kernel.client.load_connection_file()
        kernel._start_channels()
        kernel._pid = int(kernel.value("__import__('os').getpid()"))
        return kernel

    def _start_channels(self) -> None:
        self.client.start_channels()
        self.client.wait_for_ready(timeout=180)
        self.replies: dict[str, Reply] = {}

    @property
    def pid(self) -> int:
        if self.manager is not None:
            return int(self.manager.provisioner.pid)  # type: ignore[union-attr]
        return self._pid

    def jvms(self) -> list[psutil.Process]:
        """The JVMs this kernel started: PyFlink's gateway, which hosts Flink's mini-cluster."""
        found = psutil.Process(self.pid).children(recursive=True)
        return [process for process in found if "java" in process.name()]

    def submit(self, code: str) -> str:
        msg_id = self.client.execute(code, stop_on_error=True)
        self.replies[msg_id] = Reply()
        return msg_id

    def collect(self, msg_id: str, timeout: float = 600.0) -> Reply:
        """Wait until the execution ``msg_id`` has finished; what it showed."""
        deadline = time.monotonic() + timeout
        reply = self.replies[msg_id]
        while not reply.done:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the kernel did not finish within {timeout:.0f} s: {reply}")
            self._pump()
        return reply

    def run(self, code: str, timeout: float = 600.0) -> Reply:
        return self.collect(self.submit(code), timeout)

    def value(self, expression: str, timeout: float = 120.0) -> Any:
        """The value of a Python expression in the kernel: numbers, text, lists, dicts."""
        reply = self.run(f"print(repr({expression}))", timeout)
        assert reply.status == "ok", reply.shown
        return ast.literal_eval(reply.stdout.strip().splitlines()[-1])

    def run_cells(self, cells: list[str], timeout: float = 900.0) -> list[Reply]:
        """Run cells one after the other, as "Run All" does: up to the first error."""
        replies = []
        for cell in cells:
            replies.append(self.run(cell, timeout))
            if replies[-1].status != "ok":
                break
        return replies

    def _pump(self) -> None:
        for channel, handle in (
            (self.client.get_iopub_msg, self._on_iopub),
            (self.client.get_shell_msg, self._on_shell),
        ):
            try:
                message = channel(timeout=0.1)
            except queue.Empty:
                continue
            reply = self.replies.get(message["parent_header"].get("msg_id", ""))
            if reply is not None:
                handle(reply, message)

    @staticmethod
    def _on_iopub(reply: Reply, message: dict) -> None:
        kind, content = message["msg_type"], message["content"]
        if kind == "stream":
            if content["name"] == "stdout":
                reply.stdout += content["text"]
            else:
                reply.stderr += content["text"]
        elif kind == "error":
            reply.error = content
        elif kind == "status" and content["execution_state"] == "idle":
            reply._idle = True
            reply.done = bool(reply.status)

    @staticmethod
    def _on_shell(reply: Reply, message: dict) -> None:
        if message["msg_type"] == "execute_reply":
            reply.status = message["content"]["status"]
            if reply.status == "error" and reply.error is None:
                reply.error = message["content"]
            # An execution aborted after an earlier error gets no idle status of its own.
            reply.done = reply._idle or reply.status == "aborted"

    def interrupt(self) -> None:
        """The stop button: SIGINT to the kernel's process group, as JupyterLab sends it."""
        assert self.manager is not None
        self.manager.interrupt_kernel()

    def restart(self) -> None:
        """Kernel > Restart: a shutdown request, then a new kernel process."""
        assert self.manager is not None
        self.manager.restart_kernel(now=False)
        self.client.stop_channels()
        self.client = self.manager.blocking_client()
        self._start_channels()

    def shutdown(self) -> None:
        self.client.stop_channels()
        if self.manager is not None and self.manager.is_alive():
            self.manager.shutdown_kernel(now=False)


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 300.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.5)
