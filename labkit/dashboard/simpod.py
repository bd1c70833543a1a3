"""The simPod JSON datasource's query, as a type the Grafana Foundation SDK can build with.

The SDK ships query types for Grafana's core datasources only; a plugin's query is added by
implementing its ``Dataquery`` variant and a builder for it (the SDK's documented extension
point). A simPod target names a metric of ``labkit.api`` and carries a payload, which the
plugin's code editor keeps as the JSON text the user typed (``editorMode: code``).

Annotations are the same query under the annotation's ``target``. The SDK types that field for
Grafana's built-in annotations only (its own comment says it should be a regular query), so
``AnnotationTarget`` here is a subclass of its model that serialises the simPod query instead.
"""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard

PLUGIN = "simpod-json-datasource"
# The datasource provisioned in grafana/provisioning/datasources/iotlab-api.yaml.
DATASOURCE_UID = "iotlab-api"
DATASOURCE = dashboard.DataSourceRef(type_val=PLUGIN, uid=DATASOURCE_UID)
ANNOTATION_REF_ID = "Anno"  # what Grafana names an annotation's query


def payload_text(payload: dict[str, Any] | None) -> str:
    """A payload as the plugin's code editor stores it: JSON text, empty for none."""
    return json.dumps(payload) if payload else ""


class Query(cogvariants.Dataquery):
    """One simPod target: a metric of the API and its payload."""

    def __init__(self, target: str, ref_id: str, payload: dict[str, Any] | None = None) -> None:
        self.target = target
        self.ref_id = ref_id
        self.payload = payload_text(payload)

    def to_json(self) -> dict[str, object]:
        return {
            "datasource": DATASOURCE.to_json(),
            "refId": self.ref_id,
            "editorMode": "code",
            "target": self.target,
            "payload": self.payload,
        }


class Target(cogbuilder.Builder[cogvariants.Dataquery]):
    """Builds a panel's simPod ``Query``."""

    def __init__(self, target: str, ref_id: str = "A") -> None:
        self._query = Query(target, ref_id)

    def payload(self, payload: dict[str, Any]) -> Target:
        self._query.payload = payload_text(payload)
        return self

    def build(self) -> Query:
        return self._query


class AnnotationTarget(dashboard.AnnotationTarget):
    """An annotation's query: the simPod target, under the refId Grafana gives it."""

    def __init__(self, target: str, payload: dict[str, Any]) -> None:
        super().__init__()
        self.query = Query(target, ANNOTATION_REF_ID, payload)

    def to_json(self) -> dict[str, object]:
        query = self.query.to_json()
        return {key: query[key] for key in ("refId", "target", "payload")}


class Annotation(cogbuilder.Builder[dashboard.AnnotationTarget]):
    """Builds an ``AnnotationTarget``, for the SDK's ``AnnotationQuery.target``."""

    def __init__(self, target: str, payload: dict[str, Any]) -> None:
        self._target = AnnotationTarget(target, payload)

    def build(self) -> AnnotationTarget:
        return self._target
