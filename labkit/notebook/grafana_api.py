"""Notebook 05: the API's answers as tables and beside what HBase holds; a WSGI app of the
student's own served from the notebook; the dashboard preview's differences explained."""

from __future__ import annotations

import errno
import io
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import matplotlib.dates as mdates
import pandas as pd
from matplotlib.figure import Figure

from labkit import api
from labkit.dashboard import compare, draw
from labkit.errors import LabkitError

WSGIApp = Callable[..., Iterable[bytes]]


def datapoints_frame(answer: list[dict]) -> pd.DataFrame:
    """The time series of a ``/query`` answer as one DataFrame: a column per target."""
    series = {
        item["target"]: pd.Series(
            [value for value, _ in item["datapoints"]],
            index=pd.to_datetime([ms for _, ms in item["datapoints"]], unit="ms"),
            dtype=float,
        )
        for item in answer
        if "datapoints" in item
    }
    frame = pd.DataFrame(series)
    frame.index.name = "time"
    return frame


def table_frame(item: dict) -> pd.DataFrame:
    """A table of a ``/query`` answer (``columns`` and ``rows``) as a DataFrame."""
    frame = pd.DataFrame(item["rows"], columns=[column["text"] for column in item["columns"]])
    for column in item["columns"]:
        if column.get("type") == "time":
            frame[column["text"]] = pd.to_datetime(frame[column["text"]], unit="ms")
    return frame


def comparison_figure(stored: pd.Series, served: pd.Series, title: str, unit: str) -> Figure:
    """What HBase holds beside what the API served a panel, on the same axes scale."""
    figure = Figure(figsize=(13, 3.6))
    left, right = figure.subplots(1, 2, sharey=True)
    left.plot(stored.index, stored.values, ".-", color="#4c72b0")
    left.set_title(f"{title} in HBase: {len(stored)} readings", fontsize=10)
    right.plot(served.index, served.values, "o-", color="#dd8452")
    right.set_title(f"{title} as the panel gets it: {len(served)} points", fontsize=10)
    left.set_ylabel(f"{title} ({unit})")
    for axes in (left, right):
        axes.set_xlabel("time (UTC)")
        axes.tick_params(labelsize=8)
        axes.grid(alpha=0.3)
    figure.autofmt_xdate()
    figure.tight_layout()
    return figure


# --------------------------------------------------------------------------------------
# A WSGI app of one's own, served from a thread of the notebook
# --------------------------------------------------------------------------------------


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a request still running never keeps the notebook's kernel alive


class _Handler(WSGIRequestHandler):
    """Keeps the notebook quiet: no line per request; the app's errors go to ``ServedApp``."""

    errors: io.StringIO

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def get_stderr(self) -> io.StringIO:
        return self.errors  # the app's wsgi.errors: falcon logs an exception's traceback there


@dataclass
class ServedApp:
    """A WSGI app served from a background thread: ``.url``, ``.stop()``, ``.errors()``."""

    url: str
    server: WSGIServer
    thread: threading.Thread
    log: io.StringIO = field(default_factory=io.StringIO)

    def errors(self) -> str:
        """What the app wrote to ``wsgi.errors`` so far (tracebacks of its exceptions)."""
        return self.log.getvalue()

    def stop(self) -> None:
        """Stop serving and free the port; idempotent."""
        if self.thread.is_alive():
            self.server.shutdown()
            self.thread.join(10)
        self.server.server_close()

    def __enter__(self) -> ServedApp:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def serve(app: WSGIApp, port: int = 0, host: str = "127.0.0.1") -> ServedApp:
    """Serve any WSGI app (falcon's, flask's, a function) from a background thread of this
    process; ``port=0`` picks a free port (see ``.url``). ``.stop()`` frees the port."""
    log = io.StringIO()
    handler = type("Handler", (_Handler,), {"errors": log})
    try:
        server = make_server(host, port, app, server_class=_ThreadingServer, handler_class=handler)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise LabkitError(
                f"Port {port} is taken (by an earlier run of this cell?): stop that server "
                "with .stop(), or pick another port (port=0 picks a free one)"
            ) from None
        raise
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="wsgi-app", daemon=True
    )
    thread.start()
    shown_host = "127.0.0.1" if host in ("", "0.0.0.0") else host
    return ServedApp(f"http://{shown_host}:{server.server_port}", server, thread, log)


# --------------------------------------------------------------------------------------
# The preview beside the notebook: the differences, in words
# --------------------------------------------------------------------------------------


def differences_table(comparisons: list[compare.PanelComparison]) -> pd.DataFrame:
    """One row per panel, as ``compare.comparison_table``, without the cause (to guess it)."""
    return compare.comparison_table(comparisons).drop(columns="cause")


def explain(comparisons: list[compare.PanelComparison]) -> str:
    """The largest difference of each panel that differs, and what each cause means."""
    lines, causes = [], []
    for item in comparisons:
        if item.cause is compare.Cause.NONE:
            continue
        worst = item.worst
        where = f" at {worst.at:%Y-%m-%d %H:%M}" if worst and worst.at else ""
        metric = f" ({worst.metric})" if worst else ""
        lines.append(
            f"{item.title}{metric}: {draw.format_value(item.largest, item.unit)}"
            f"{where}: {item.cause}"
        )
        if item.cause not in causes:
            causes.append(item.cause)
    same = len(comparisons) - len(lines)
    lines.append(f"{same} of {len(comparisons)} panels draw exactly what the notebook computes.")
    lines += ["", *(compare.EXPLANATIONS[cause] for cause in causes)]
    return "\n".join(lines)


def panel_over_readings(compared: compare.PanelComparison, hours: int = 12) -> Figure:
    """The first metric of a panel: the points the panel draws over every reading the notebook
    computed, in the first ``hours`` of the range (zoomed, so that single readings show)."""
    series = compared.series[0]
    start = compared.preview.span.start
    end = start + pd.Timedelta(hours=hours)
    readings = series.computed[start:end]
    drawn = series.drawn[start:end]
    figure = Figure(figsize=(13, 3.8))
    axes = figure.add_subplot()
    axes.plot(readings.index, readings.to_numpy(), ".-", color="#8e8e9b", linewidth=0.8,
              label=f"every reading the notebook computed ({len(readings)})")  # fmt: skip
    axes.plot(drawn.index, drawn.to_numpy(), "o", color="#dd8452", markersize=7,
              label=f"the points the panel draws ({len(drawn)})")  # fmt: skip
    axes.set_title(f"{compared.title}: {series.metric}, the first {hours} hours", fontsize=10)
    axes.set_xlabel("time (UTC)")
    axes.set_ylabel(f"{series.metric} ({api.CATALOGUE[series.metric].unit})")
    axes.legend(fontsize=8, loc="upper right")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def beside(compared: compare.PanelComparison) -> Figure:
    """The preview's panel beside the notebook's plot of its data (``compared.figure()``), the
    notebook's axes labelled."""
    figure = compared.figure()
    axes = figure.axes[-1]
    locator = mdates.AutoDateLocator()
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    axes.set_xlabel("time (UTC)")
    worst = compared.worst
    if compared.data.kind == "table":
        axes.set_ylabel("events at that time")
    elif worst is not None:
        axes.set_ylabel(api.CATALOGUE[worst.metric].unit)
    return figure
