"""What the API answers when it cannot serve a request: JSON ``{"message", "status", ...}``.

Bad requests are 400 with a message that says what to change, bodies over the limit 413, an
HBase that cannot answer 503. Falcon turns an ``ApiError`` raised anywhere in a resource into
its status and JSON body (``serialize_error``).
"""

from __future__ import annotations

import logging
from typing import Any

import falcon

from labkit.errors import LabkitError

log = logging.getLogger(__name__)


class ApiError(falcon.HTTPError, LabkitError):
    """An error answered as JSON: ``{"message": ..., "status": ..., **extra}``."""

    def __init__(
        self, status: str, message: str, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(status, title=status, description=message, headers=headers)
        self.extra = extra


def bad_request(message: str, **extra: Any) -> ApiError:
    return ApiError(falcon.HTTP_400, message, **extra)


def serialize_error(req: falcon.Request, resp: falcon.Response, error: falcon.HTTPError) -> None:
    resp.content_type = falcon.MEDIA_JSON
    resp.media = {
        "message": error.description or error.title,
        "status": error.status_code,
        **getattr(error, "extra", {}),
    }


def first_line(error: Exception) -> str:
    """The first line of an HBase error (a Thrift IOError carries a Java stack trace)."""
    detail = getattr(error, "message", None) or str(error)
    if isinstance(detail, bytes):
        detail = detail.decode("utf-8", errors="replace")
    lines = str(detail).strip().splitlines()
    return lines[0][:300] if lines else type(error).__name__


def hbase_failed(
    req: falcon.Request, resp: falcon.Response, error: Exception, params: dict
) -> None:
    """Falcon's handler for Thrift and connection errors: 503, with HBase's own first line."""
    log.warning("HBase request failed: %r", error)
    raise ApiError(falcon.HTTP_503, f"HBase could not answer: {first_line(error)}")
