"""How the notebooks show things: figures as images, live views that end, counted outputs.

The notebooks' helpers return objects (a matplotlib Figure, a DataFrame, a widget); these
functions put them on screen. ``show`` also records what it showed and how many rows or
points it had (in the output's metadata), so that the lab's tests can assert that every table
and plot a notebook talks about has something in it.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle


def _show_figures_as_png() -> None:
    """In a Jupyter kernel, render the Figure objects the notebooks' helpers return as PNG.

    pyplot does this when ``%matplotlib inline`` is on; these figures do not go through
    pyplot (so that a cell never shows the same figure twice), so the formatter is set here.
    """
    try:
        from IPython import get_ipython
    except ImportError:  # not in IPython: nothing to render
        return
    shell = get_ipython()
    if shell is not None and getattr(shell, "kernel", None) is not None:
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats("png")


def size(content: object) -> int:
    """How much a table or figure shows: rows of a table, data points of a figure."""
    if isinstance(content, pd.DataFrame | pd.Series):
        return len(content)
    if isinstance(content, Figure):
        points = 0
        for axes in content.axes:
            points += sum(int(np.size(line.get_xdata())) for line in axes.lines)
            points += sum(int(np.shape(c.get_offsets())[0]) for c in axes.collections)
            # Bars and histogram bins count when they have some height (or width, lying down);
            # other shapes (a diagram's boxes and arrows) always count.
            points += sum(
                1
                for patch in axes.patches
                if not isinstance(patch, Rectangle) or patch.get_height() or patch.get_width()
            )
            points += len(axes.images)
        return points
    return len(content) if hasattr(content, "__len__") else 1


def show(content: Any, what: str, display: Callable[..., Any] | None = None) -> Any:
    """Display ``content`` (a table or a figure), noting in the output's metadata that it is
    ``what`` the text talks about and how many rows or points it has."""
    if display is None:
        from IPython.display import display as display_in_jupyter

        display = display_in_jupyter
    metadata = {"labkit": {"shown": what, "size": size(content)}}
    return display(content, metadata=metadata)


def watch(
    draw: Callable[[], object],
    seconds: float,
    every: float = 1.0,
    display: Callable[..., Any] | None = None,
) -> int:
    """Redraw ``draw()`` in place every ``every`` seconds for ``seconds``; return the frames.

    It always ends: a live view in a notebook must not run forever.
    """
    if display is None:
        from IPython.display import display as show
    else:
        show = display
    handle = show(draw(), display_id=True)
    frames = 1
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(min(every, max(0.0, deadline - time.monotonic())))
        content = draw()
        if handle is not None:
            handle.update(content)
        frames += 1
    return frames


def png(figure: Figure, dpi: int = 80) -> bytes:
    """A figure as PNG bytes, for an image widget that a thread updates."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def redrawn(
    draw: Callable[[], Figure],
    running: Callable[[], bool],
    every: float = 1.0,
    tick: Callable[[], None] | None = None,
) -> widgets.Image:
    """An image of ``draw()``, redrawn every ``every`` seconds by a background thread while
    ``running()``, and once after: a live view that leaves the kernel free for widgets.
    ``tick()``, if given, is called more often (every 50 ms), e.g. to move a slider on time."""
    image = widgets.Image(value=png(draw()), format="png")

    def redraw() -> None:
        drawn = time.monotonic()
        while True:
            if tick is not None:
                tick()
            still = running()  # read first: the last frame must show the final state
            if time.monotonic() - drawn >= every or not still:
                drawn = time.monotonic()
                image.value = png(draw())
                if not still:
                    return
            time.sleep(0.05)

    threading.Thread(target=redraw, name="live-view", daemon=True).start()
    return image
