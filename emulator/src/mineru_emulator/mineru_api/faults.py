"""
Scripted faults of the emulated ``mineru-api``: :class:`Fault` and the endpoint names it targets.

Faults are kept and taken by the shared :class:`~mineru_emulator.faults.FaultBook`;
their transport half (delay, ``Retry-After``, reset, literal body) is applied by the shared
:func:`~mineru_emulator.http.answer_transport_fault`, the rest by
:meth:`.responses.MinerUApiResponses.answer_fault` (a V1 error body, a restart).
"""

from __future__ import annotations

from dataclasses import dataclass

from mineru_emulator.faults import check_endpoint, transport_label

#: The endpoint names of the route table (``routes.py``), what faults and the request log use.
ENDPOINTS = ("health", "tiers", "submit", "get_task", "cancel", "result", "file_content", "other")


@dataclass
class Fault:
    """
    The next ``times`` requests to ``endpoint`` (``"*"``: any but health) get this answer instead.

    :param http_status: status of the error answer (with ``code``/``message`` in the V1 error body).
    :param retry_after: a ``Retry-After`` header, in seconds.
    :param reset: close the connection without an answer.
    :param body: a raw body (e.g. a proxy's HTML page) instead of the V1 error body.
    :param restart: the server restarts first (every task forgotten), as a crash under load would.
    :param delay: seconds to wait before answering.
    :param content_type: the Content-Type of ``body``.
    :param truncated: the normal answer instead of an error, cut off halfway.
    :param name: what :attr:`RecordedRequest.fault` shows (default: a description such as ``http_503``).
    """

    endpoint: str = "*"
    http_status: int = 503
    code: str | None = "service_unavailable"
    message: str = "emulated fault"
    error_type: str = "api_error"
    retry_after: float | None = None
    reset: bool = False
    body: bytes | None = None
    restart: bool = False
    times: int = 1
    fired: int = 0
    delay: float = 0.0
    content_type: str | None = "text/html"
    truncated: bool = False
    name: str | None = None

    def __post_init__(self) -> None:
        check_endpoint(self.endpoint, ENDPOINTS)

    @property
    def label(self) -> str:
        """The fault's name, or a short description such as ``reset`` or ``http_503``."""
        return transport_label(self) or ("truncated" if self.truncated else f"http_{self.http_status}")

    def matches(self, endpoint: str, path: str) -> bool:
        """Whether the fault applies to a request to ``endpoint`` (``path`` is not used)."""
        return self.fired < self.times and (
            self.endpoint == endpoint or (self.endpoint == "*" and endpoint != "health")
        )
