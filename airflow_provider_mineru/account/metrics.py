"""
The provider's metrics, one typed function each, through Airflow's ``Stats``.

``Stats`` is whatever the deployment configured in ``[metrics]``: StatsD (``statsd_on``; tags reach
StatsD with ``statsd_influxdb_enabled``, as ``name,tag=value``, or with ``statsd_datadog_enabled``
as DogStatsD tags), or OpenTelemetry (``otel_on``; tags become attributes). On Airflow 3 it is the
Task SDK's ``Stats`` (``airflow.sdk.observability.stats``, configured from the same ``[metrics]``
section in workers and the triggerer); on 2.11 ``airflow.stats.Stats``. The common-compat
provider picks the right one.

Tags are low-cardinality only: ``conn_id``, ``flavor``, ``model``, ``outcome``, ``error_code``,
``status``, ``kind``. Every value goes through :func:`tag_value`, which turns anything that could be
a path, a URL or a file name into ``"other"``: a metric never names a document.

| name | type | tags |
|---|---|---|
| ``mineru.documents`` | counter | conn_id, flavor, model, outcome, error_code |
| ``mineru.pages_submitted`` | counter | conn_id, flavor, model |
| ``mineru.queue_time`` | timer (ms) | conn_id, flavor, model |
| ``mineru.parse_time`` | timer (ms) | conn_id, flavor, model |
| ``mineru.http_retries`` | counter | conn_id, flavor, status |
| ``mineru.budget_remaining`` | gauge | conn_id, kind (``pages`` / ``files``) |
| ``mineru.rate_limited`` | counter | conn_id, kind (``submit`` / ``query``) |
| ``mineru.token_expiry_days`` | gauge | conn_id |
"""

from __future__ import annotations

import datetime as dt
import re
import time

from airflow.providers.common.compat.sdk import Stats

from airflow_provider_mineru.connection.config import token_expiry

PREFIX = "mineru"
OTHER = "other"

#: Words, ids and codes: letters, digits, ``_`` and ``-``; conn ids may hold dots.
_WORD_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_CONN_RE = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_CODE_RE = re.compile(r"^-?[A-Za-z0-9]{1,16}$")
#: A dotted value ending like a document or archive is a file name, not a conn id.
_FILE_SUFFIX_RE = re.compile(r"\.(pdf|docx?|pptx?|png|jpe?g|html?|zip|md|json|jsonl|txt|xlsx?|csv|tex)$", re.IGNORECASE)


def tag_value(value: object, kind: str = "word") -> str:
    """
    ``value`` as a tag value when it is one of a few known shapes, else ``"other"``.

    :param kind: ``"word"`` (outcome, flavor, model, kind), ``"conn"`` (a conn id, dots allowed),
        ``"code"`` (an error code or HTTP status).
    """
    text = "" if value is None else str(value).strip()
    if not text:
        return "none"
    if kind == "conn":
        return text if _CONN_RE.match(text) and not _FILE_SUFFIX_RE.search(text) and ".." not in text else OTHER
    if kind == "code":
        return text if _CODE_RE.match(text) else OTHER
    return text if _WORD_RE.match(text) else OTHER


def _tags(conn_id: str, flavor: str | None = None, model: str | None = None, **words: object) -> dict[str, str]:
    tags = {"conn_id": tag_value(conn_id, "conn")}
    if flavor is not None:
        tags["flavor"] = tag_value(flavor)
    if model is not None:
        tags["model"] = tag_value(model)
    for name, value in words.items():
        tags[name] = tag_value(value, "code" if name in ("error_code", "status") else "word")
    return tags


def document_finished(
    conn_id: str, *, flavor: str, model: str, outcome: str, error_code: str | int | None = None
) -> None:
    """One document reached its final outcome (``done``, ``failed``, ``deferred_budget``, ``refused``…)."""
    Stats.incr(
        f"{PREFIX}.documents",
        tags=_tags(conn_id, flavor, model, outcome=outcome, error_code=error_code),
    )


def pages_submitted(conn_id: str, pages: int, *, flavor: str, model: str) -> None:
    """Pages sent to MinerU (estimated at submit time; settled counts go to the budget, not here)."""
    Stats.incr(f"{PREFIX}.pages_submitted", count=max(0, int(pages)), tags=_tags(conn_id, flavor, model))


def queue_time(conn_id: str, seconds: float, *, flavor: str, model: str) -> None:
    """Seconds from submit to the first ``running`` state (time queued at MinerU)."""
    Stats.timing(f"{PREFIX}.queue_time", dt.timedelta(seconds=max(0.0, seconds)), tags=_tags(conn_id, flavor, model))


def parse_time(conn_id: str, seconds: float, *, flavor: str, model: str) -> None:
    """Seconds from ``running`` to ``done`` (parsing at MinerU)."""
    Stats.timing(f"{PREFIX}.parse_time", dt.timedelta(seconds=max(0.0, seconds)), tags=_tags(conn_id, flavor, model))


def http_retry(conn_id: str, *, flavor: str, status: int | str | None) -> None:
    """One HTTP retry; ``status`` is the HTTP status or MinerU's code (``None``: no answer, a reset)."""
    Stats.incr(f"{PREFIX}.http_retries", tags=_tags(conn_id, flavor, status="none" if status is None else status))


def rate_limited(conn_id: str, *, kind: str) -> None:
    """A request waited for the deployment's ``submit`` or ``query`` limiter."""
    Stats.incr(f"{PREFIX}.rate_limited", tags=_tags(conn_id, kind=kind))


def budget_remaining(conn_id: str, *, pages: int | None, files: int | None) -> None:
    """What is left of today's budget (an unlimited budget sends nothing)."""
    for kind, value in (("pages", pages), ("files", files)):
        if value is not None:
            Stats.gauge(f"{PREFIX}.budget_remaining", int(value), tags=_tags(conn_id, kind=kind))


def token_expiry_days(conn_id: str, token: str, *, now: float | None = None) -> float | None:
    """
    Days until the token expires (negative: expired), from a JWT token's ``exp``; tokens that are
    not JWTs send nothing.

    :returns: the days sent, or None.
    """
    expires = token_expiry(token)
    if expires is None:
        return None
    days = (expires - (time.time() if now is None else now)) / 86400.0
    Stats.gauge(f"{PREFIX}.token_expiry_days", round(days, 2), tags=_tags(conn_id))
    return days
