"""Notebook 00: the lab at a glance: its layers and the health of its services."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from labkit import services
from labkit.config import Settings

LAYERS = [
    ("sensors", "labkit.sensors\n10 simulated sensors"),
    ("Kafka", "topic input\n(broker)"),
    ("Flink SQL", "validate, late,\ndaily windows"),
    ("Kafka", "output_raw, output_aggr,\ninput_late, input_invalid,\noutput_rollup"),
    ("HBase", "iot_raw, iot_daily,\niot_late, iot_invalid,\niot_rollup"),
    ("API", "labkit.api\n(Grafana JSON)"),
    ("Grafana", "dashboards\n& notebooks"),
]


def architecture() -> Figure:
    """The lab's layers, left to right, as a picture."""
    figure = Figure(figsize=(13, 2.6))
    axes = figure.add_subplot()
    axes.set_xlim(0, len(LAYERS) * 2)  # a diagram, not a plot: it has no axes to label
    axes.set_ylim(0, 2)
    axes.axis("off")
    for index, (title, text) in enumerate(LAYERS):
        x = index * 2 + 0.15
        axes.add_patch(
            FancyBboxPatch((x, 0.35), 1.7, 1.3, boxstyle="round,pad=0.05", facecolor="#e8f0fe")
        )
        axes.text(x + 0.85, 1.35, title, ha="center", va="center", weight="bold", fontsize=11)
        axes.text(x + 0.85, 0.8, text, ha="center", va="center", fontsize=8)
        if index:
            axes.add_patch(
                FancyArrowPatch(
                    (x - 0.3, 1.0), (x + 0.05, 1.0), arrowstyle="-|>", mutation_scale=15
                )
            )
    figure.tight_layout()
    return figure


def health(settings: Settings) -> pd.DataFrame:
    """The lab's services: state (ready, starting, stopped), pid and ports. A service that
    does not run has no pid: "-", as ``labkit status`` writes it (pandas would turn the
    column into floats around a missing value)."""
    rows = [
        {
            "service": row.service,
            "state": row.state,
            "pid": row.pid or "-",
            "ports": ", ".join(f"{role} {port}" for role, port in row.ports.items()),
        }
        for row in services.status(settings)
    ]
    return pd.DataFrame(rows).set_index("service")
