"""
Scripted misbehaviour: :class:`Fault` (answer the next requests wrongly), the task rules of
``fail_next_tasks``/``stick``, and the :class:`FaultBook` holding both.

:func:`~.http.answer_transport_fault` applies the parts of a fault that need no knowledge of the API
(a delay, ``Retry-After``, a connection reset, a literal body); a flavor answers the rest (an
error code, an HTTP status, malformed JSON) in its own envelope. :class:`Fault` is the cloud
flavor's; another flavor may bring its own fault class with the :class:`ScriptedFault` shape.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Generic, Protocol, TypeVar

#: The endpoint names a :class:`Fault` may target (the routes of ``cloud/routes.py``).
ENDPOINTS = (
    "submit_task",
    "get_task",
    "file_urls",
    "submit_batch",
    "get_batch",
    "upload",
    "download",
    "sample",
    "admin",
    "other",
)
#: Endpoints a ``Fault(endpoint="*")`` applies to (not the admin API, not the sample files).
WILDCARD_ENDPOINTS = frozenset(
    {"submit_task", "get_task", "file_urls", "submit_batch", "get_batch", "upload", "download", "other"}
)


class ScriptedFault(Protocol):
    """What the plumbing and :func:`~.http.answer_transport_fault` read of a fault, whatever its flavor."""

    times: int
    fired: int
    retry_after: float | None
    reset: bool
    delay: float
    truncated: bool
    content_type: str | None
    name: str | None

    @property
    def http_status(self) -> int | None: ...

    @property
    def body(self) -> bytes | str | None: ...

    @property
    def label(self) -> str:
        """What :attr:`RecordedRequest.fault` shows."""
        ...

    def matches(self, endpoint: str, path: str) -> bool:
        """Whether the fault applies to a request (``fired`` not counted yet)."""
        ...


F = TypeVar("F", bound=ScriptedFault)


def check_endpoint(endpoint: str, endpoints: Iterable[str]) -> None:
    """
    Refuse a fault's unknown ``endpoint`` by name.

    :param endpoint: the endpoint given (``"*"``: any).
    :param endpoints: the flavor's endpoint names.
    """
    known = tuple(endpoints)
    if endpoint != "*" and endpoint not in known:
        raise ValueError(f"unknown endpoint {endpoint!r}; one of {', '.join(known)} or '*'")


def transport_label(fault: ScriptedFault) -> str | None:
    """A fault's name, or ``reset`` / ``body_<status>`` for its transport half; None otherwise."""
    if fault.name:
        return fault.name
    if fault.reset:
        return "reset"
    if fault.body is not None:
        return f"body_{fault.http_status or 200}"
    return None


@dataclass
class Fault:
    """
    A scripted misbehaviour: the next ``times`` requests matching ``endpoint`` (and ``match``)
    get this answer instead of (or, for ``delay``/``truncated``, in addition to) the normal one.

    See ``docs/emulator.md`` for each field. ``name`` (optional) is what
    :attr:`RecordedRequest.fault` shows; it defaults to a description of the fault.
    """

    endpoint: str = "*"
    times: int = 1
    http_status: int | None = None
    retry_after: float | None = None
    code: str | int | None = None
    msg: str | dict[str, Any] | None = None
    code_as_string: bool = False
    body: bytes | str | None = None
    content_type: str | None = None
    malformed_json: bool = False
    truncated: bool = False
    reset: bool = False
    delay: float = 0.0
    match: str | None = None
    fired: int = 0
    name: str | None = None

    def __post_init__(self) -> None:
        check_endpoint(self.endpoint, ENDPOINTS)
        if self.times < 1:
            raise ValueError("times must be at least 1")

    @property
    def label(self) -> str:
        """The fault's name, or a short description such as ``http_503`` or ``code_-60009``."""
        transport = transport_label(self)
        if transport is not None:
            return transport
        if self.malformed_json:
            return "malformed_json"
        if self.code is not None:
            return f"code_{self.code}"
        if self.http_status is not None:
            return f"http_{self.http_status}"
        if self.truncated:
            return "truncated"
        return "delay" if self.delay else "fault"

    def to_dict(self) -> dict[str, Any]:
        """The fault as JSON-able data (``body`` decoded as UTF-8 with replacement)."""
        data = asdict(self)
        if isinstance(self.body, bytes):
            data["body"] = self.body.decode("utf-8", errors="replace")
        data["label"] = self.label
        return data

    def matches(self, endpoint: str, path: str) -> bool:
        if self.fired >= self.times:
            return False
        if self.endpoint == "*":
            if endpoint not in WILDCARD_ENDPOINTS:
                return False
        elif self.endpoint != endpoint:
            return False
        return self.match is None or self.match in path


@dataclass
class Rule:
    """A pending ``fail_next_tasks`` or ``stick`` instruction."""

    value: str
    remaining: int
    match: str | None

    def applies(self, haystacks: Iterable[str]) -> bool:
        return self.remaining > 0 and (self.match is None or any(self.match in text for text in haystacks))


class FaultBook(Generic[F]):
    """
    The injected faults (checked in order of injection) and the pending task rules.

    :param lock: the lock guarding them (the emulator's).
    """

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self.faults: list[F] = []
        self.fail_rules: list[Rule] = []
        self.stick_rules: list[Rule] = []

    def clear(self) -> None:
        """Forget every fault and rule."""
        with self._lock:
            self.faults.clear()
            self.fail_rules.clear()
            self.stick_rules.clear()

    def take(self, endpoint: str, path: str) -> F | None:
        """The first fault that matches a request (its ``fired`` counted), or None."""
        with self._lock:
            for fault in self.faults:
                if fault.matches(endpoint, path):
                    fault.fired += 1
                    return fault
        return None

    def rules_for(self, haystacks: list[str]) -> tuple[str | None, str | None]:
        """
        Consume the first matching ``stick`` and ``fail_next`` rules of a new task (caller holds the lock).

        :param haystacks: the task's URL and file name.
        :return: the state it sticks in, and the ``err_msg`` it fails with (None: no rule).
        """
        return self._consume(self.stick_rules, haystacks), self._consume(self.fail_rules, haystacks)

    @staticmethod
    def _consume(rules: list[Rule], haystacks: list[str]) -> str | None:
        for rule in rules:
            if rule.applies(haystacks):
                rule.remaining -= 1
                return rule.value
        return None
