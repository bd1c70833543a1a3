"""What the notebooks show: figures, tables, sliders and live views, one module per notebook.

``display`` puts them on screen (figures as PNG images, live views that end by themselves);
``lab`` (00), ``sensors`` (01), ``kafka`` (02), ``stream`` (03, 06), ``storage`` (04),
``grafana_api`` (05), ``end_to_end`` (06) hold each notebook's own helpers. Each returns an
object, so that it can be tested without a browser. The exercises' checks are
``labkit.exercises``.
"""

from labkit.notebook import end_to_end, grafana_api, kafka, lab, sensors, storage, stream
from labkit.notebook.display import _show_figures_as_png, show, watch

_show_figures_as_png()

__all__ = [
    "end_to_end", "grafana_api", "kafka", "lab", "sensors", "show", "storage", "stream", "watch",
]  # fmt: skip
