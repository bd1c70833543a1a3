"""The HTTP resources (falcon): one class per endpoint of the two JSON datasource protocols.

* the maintained **simPod JSON datasource** (``simpod-json-datasource``): ``GET /`` (health),
  ``POST /metrics``, ``/metric-payload-options``, ``/query``, ``/variable``, ``/tag-keys``,
  ``/tag-values``; it sends annotation queries to ``/query`` too;
* the legacy **SimpleJSON** plugin (``grafana-simple-json-datasource``): ``GET /``,
  ``POST /search``, ``/query`` (targets of type ``timeserie`` or ``table``), ``/annotations``,
  ``/tag-keys``, ``/tag-values``.

With a token, every request must carry ``Authorization: Bearer <token>`` (401 otherwise).
"""

from __future__ import annotations

import hmac

import falcon
from thriftpy2.thrift import TException

from labkit.api import grafana, parse, shedding
from labkit.api.answers import Answers
from labkit.api.catalogue import CATALOGUE, Format, is_pattern, matching, names_a_variable, resolve
from labkit.api.errors import bad_request, hbase_failed, serialize_error
from labkit.api.parse import optional_str, read_object
from labkit.api.shedding import Shedding
from labkit.api.store import Store
from labkit.config import Settings, SettingsError
from labkit.hbase import layout
from labkit.hbase.layout import TableKind

# Waitress's worker threads; the HBase connection pool keeps as many idle connections.
THREADS = 8


class Health:
    """``GET /``: any 200 tells Grafana the datasource works."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok", "service": "labkit.api", "metrics": len(CATALOGUE)}

    def on_head(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.status = falcon.HTTP_200


class Search:
    """``POST /search`` (SimpleJSON, simPod <= 0.5): metric names containing ``target``."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = read_object(req)
        resp.media = matching(optional_str(body, "target", "body"))


class Metrics:
    """``POST /metrics`` (simPod 0.6): every metric, with its ``format`` payload."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = read_object(req)
        optional_str(body, "metric", "body")
        if body.get("payload") is not None:
            parse.as_object(body["payload"], "payload")
        resp.media = grafana.metric_list()


class PayloadOptions:
    """``POST /metric-payload-options``: the choices of one payload field of a metric.

    The plugin's builder sends the metric as the user typed it, a variable uninterpolated
    (``$metric``): then every choice is offered; for a variable's "All" (``*``), the choices
    every metric it names has.
    """

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = read_object(req)
        name = optional_str(body, "name", "body")
        metric_name = optional_str(body, "metric", "body")
        known = bool(metric_name) and not names_a_variable(metric_name or "")
        metrics = resolve(metric_name or "") if known else []
        if name == "format":
            resp.media = grafana.format_options(
                f for f in Format if all(f in metric.formats for metric in metrics)
            )
        elif name == "source" and all(metric.kind is TableKind.RAW for metric in metrics):
            resp.media = grafana.SOURCE_PAYLOAD["options"]
        else:
            resp.media = []


class Variable:
    """``POST /variable`` (simPod >= 0.4): metric names for a query-type variable."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = read_object(req)
        payload = body.get("payload") or {}
        if isinstance(payload, str):  # a string query, not wrapped by the plugin
            payload = {"target": payload}
        target = optional_str(parse.as_object(payload, "payload"), "target", "payload")
        resp.media = [{"__text": name, "__value": name} for name in matching(target)]


class Tags:
    """``POST /tag-keys`` and ``/tag-values``: the API offers no ad hoc filters."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        read_object(req)
        resp.media = []


class Query:
    """``POST /query``: series, tables and (simPod) annotations for the request's targets."""

    def __init__(self, answers: Answers) -> None:
        self.answers = answers

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = read_object(req)
        window = parse.window(body)
        max_points = parse.max_points(body)
        selections = parse.selections(body)
        # Answers a moment old are good enough only while the API is busy: idle, it is fresh.
        reuse = shedding.busy()
        resp.media = [self.answers.answer(s, window, max_points, reuse) for s in selections]


class Annotations:
    """``POST /annotations`` (SimpleJSON): late readings or invalid messages as annotations.

    ``annotation.query`` names the metric(s): ``W1_late``, ``invalid``, ``{TH1_late,W1_late}``.
    """

    def __init__(self, answers: Answers) -> None:
        self.answers = answers

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = read_object(req)
        window = parse.window(body)
        annotation = parse.as_object(body.get("annotation"), "annotation")
        query = optional_str(annotation, "query", "annotation")
        if not query:
            raise bad_request("annotation.query must name a late metric or invalid")
        metrics = resolve(query)
        if is_pattern(query):  # a variable's "All": the metrics that have annotations
            metrics = [metric for metric in metrics if metric.has_events]
        for metric in metrics:
            if not metric.has_events:
                raise bad_request(f"{metric.name} has no annotations: use a late metric or invalid")
        # A list has no place for a notice: over MAX_EVENTS, the newest events, silently.
        resp.media = [
            event
            for metric in metrics
            for event in grafana.simplejson_annotations(
                annotation, self.answers.events(metric, window)[0]
            )
        ]


class BearerToken:
    """Middleware: with a token, every request needs ``Authorization: Bearer <token>``."""

    def __init__(self, token: str) -> None:
        self.expected = f"Bearer {token}".encode()

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        given = (req.get_header("Authorization") or "").encode()
        if not hmac.compare_digest(given, self.expected):
            raise falcon.HTTPUnauthorized(
                title="401 Unauthorized",
                description="This API needs the header 'Authorization: Bearer <token>'",
                challenges=["Bearer"],
            )


def build(settings: Settings, token: str | None) -> tuple[falcon.App, Store]:
    """The application and the store it reads through (whose pool the server closes)."""
    if token is not None and not token.strip():
        raise SettingsError("The API token must not be empty")
    store = Store(settings, connections=THREADS)
    answers = Answers(store)
    # Shedding first: a request shed is answered before any other work.
    middleware: list[Shedding | BearerToken] = [Shedding()]
    if token:
        middleware.append(BearerToken(token))
    app = falcon.App(middleware=middleware)
    app.req_options.strip_url_path_trailing_slash = True
    app.set_error_serializer(serialize_error)
    app.add_error_handler(TException, hbase_failed)
    app.add_error_handler(layout.TRANSIENT, hbase_failed)
    app.add_route("/", Health())
    app.add_route("/search", Search())
    app.add_route("/metrics", Metrics())
    app.add_route("/metric-payload-options", PayloadOptions())
    app.add_route("/variable", Variable())
    app.add_route("/tag-keys", Tags())
    app.add_route("/tag-values", Tags())
    app.add_route("/query", Query(answers))
    app.add_route("/annotations", Annotations(answers))
    return app, store


def make_app(settings: Settings, token: str | None = None) -> falcon.App:
    """The WSGI application; with a ``token``, requests need ``Authorization: Bearer <token>``."""
    return build(settings, token)[0]
