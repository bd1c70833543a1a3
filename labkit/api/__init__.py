"""The serving layer: an HTTP API that serves the lab's HBase tables to Grafana.

It speaks the protocol of Grafana's JSON datasources (the simPod plugin, and the legacy
SimpleJSON), answers from HBase with one range scan per metric, and downsamples long series to
the panel's ``maxDataPoints``, reading the pipeline's roll-ups where whole periods fit.

==============  =========================================================================
module          concern
==============  =========================================================================
``catalogue``   the metrics (``Metric``, ``CATALOGUE``), ``Format``, ``Source``; how a
                target names metrics (``resolve``, ``matching``)
``parse``       reading request bodies: size, JSON, ``Window``, ``maxDataPoints``, targets
                (not ``request``: ``api.request`` is the client's call)
``store``       the Thrift connection pool and the range scans (through ``hbase.layout``)
``series``      downsampling: buckets, roll-up periods, means (pure arithmetic)
``answers``     what each selection is answered with, from the store and ``series``
``grafana``     the JSON shapes: series, tables, annotations, editor lists
``errors``      ``ApiError`` and the JSON of an error (400, 413, 503)
``app``         the falcon resources, one per endpoint; ``make_app``
``server``      waitress in the foreground (``serve``) or a thread (``start_in_thread``)
``client``      the request a Grafana panel sends, and ``call`` / ``request`` to send it
==============  =========================================================================

Bad requests (malformed JSON, wrong types, unknown metrics, reversed ranges) are answered
with 400 and ``{"message": ...}``, bodies over 1 MiB with 413, a missing or wrong token with
401, an unreachable HBase with 503.
"""

from labkit.api.answers import MAX_EVENTS
from labkit.api.app import make_app
from labkit.api.catalogue import CATALOGUE, Format, Metric, Source, matching, resolve
from labkit.api.client import ApiCallError, call, iso, panel_request, request
from labkit.api.errors import ApiError
from labkit.api.parse import MAX_BODY_BYTES, MAX_DATA_POINTS, MAX_METRICS_PER_QUERY, Window
from labkit.api.server import RunningApi, is_loopback, serve, start_in_thread

__all__ = [
    "CATALOGUE", "MAX_BODY_BYTES", "MAX_DATA_POINTS", "MAX_EVENTS", "MAX_METRICS_PER_QUERY",
    "ApiCallError", "ApiError", "Format", "Metric", "RunningApi", "Source", "Window", "call",
    "is_loopback", "iso", "make_app", "matching", "panel_request", "request", "resolve",
    "serve", "start_in_thread",
]  # fmt: skip
