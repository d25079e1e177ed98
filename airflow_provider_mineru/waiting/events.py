"""
How a wait on MinerU ends, as one typed object: :class:`WaitOutcome`.

The blocking wait returns one, the triggers send one as their event's payload (plain JSON, see
:meth:`WaitOutcome.to_payload`), and the resumed task reads it back with
:func:`validate_wait_event`, which refuses anything that is not a MinerU wait outcome (as the dbt
Cloud provider's ``validate_execute_complete_event`` does) and raises the typed error a poll ended
with. It is the one reference that crosses a deferral: it carries the ids and each input's
source, so ``execute_complete`` needs nothing else (no defer kwargs, no record, no input resolved
again).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from airflow_provider_mineru.exceptions import MinerUError, MinerUWaitTimeoutError, error_from_dict
from airflow_provider_mineru.models import DocumentResult
from airflow_provider_mineru.waiting.waits import WAITS, WaitedDocuments

#: Every document is terminal (``done`` or ``failed``).
DONE = "done"
#: The deadline passed first; the documents that finished are kept.
TIMEOUT = "timeout"
#: A poll failed with an error that must not be retried.
ERROR = "error"

Status = Literal["done", "timeout", "error"]
STATUSES: tuple[str, ...] = (DONE, TIMEOUT, ERROR)


@dataclass(frozen=True)
class WaitOutcome:
    """
    The end of a wait: its status and every input document as MinerU last listed it.

    :param status: ``done``, ``timeout`` or ``error``.
    :param kind: what was waited on: ``task`` or ``batch`` (see :mod:`airflow_provider_mineru.waiting.waits`).
    :param ids: the MinerU task id, or the batch ids in submission order.
    :param documents: per input document, in input order, its latest state.
    :param batch_of: per document, the task or batch id it belongs to.
    :param message: why the wait ended when it is not ``done`` (a time-out lists what still runs).
    :param error: for ``error``, the typed error as :meth:`~airflow_provider_mineru.exceptions.MinerUError.to_dict`.
    :param sources: per input document, the URL or path it was submitted from (names its output
        folder); empty when not known (a sensor waits on ids submitted elsewhere).
    """

    status: Status
    kind: str
    ids: tuple[str, ...]
    documents: tuple[DocumentResult, ...] = ()
    batch_of: tuple[str | None, ...] = ()
    message: str = ""
    error: Mapping[str, Any] | None = field(default=None, compare=False)
    sources: tuple[str | None, ...] = ()

    @classmethod
    def of(
        cls,
        status: Status,
        kind: str,
        ids: Sequence[str],
        located: Sequence[tuple[str | None, DocumentResult]] = (),
        message: str = "",
        error: MinerUError | Mapping[str, Any] | None = None,
        sources: Sequence[str | None] = (),
    ) -> WaitOutcome:
        """Build one from ``(task or batch id, document)`` pairs in input order."""
        return cls(
            status=status,
            kind=kind,
            ids=tuple(ids),
            documents=tuple(document for _, document in located),
            batch_of=tuple(item_id for item_id, _ in located),
            message=message,
            error=error.to_dict() if isinstance(error, MinerUError) else error,
            sources=tuple(sources),
        )

    def to_payload(self) -> dict[str, Any]:
        """Plain JSON: what a trigger event carries (read back by :func:`validate_wait_event`)."""
        payload: dict[str, Any] = {
            "status": self.status,
            "kind": self.kind,
            "ids": list(self.ids),
            "results": [d.to_dict() for d in self.documents],
            "batch_of": list(self.batch_of),
            "message": self.message,
            "sources": list(self.sources),
        }
        if self.error is not None:
            payload["error"] = dict(self.error)
        return payload

    def waited(self) -> WaitedDocuments:
        """The documents this wait was on, for finishing it (:mod:`airflow_provider_mineru.waiting.finish`)."""
        return WaitedDocuments(self.ids, self.documents, self.batch_of, self.sources)

    def timeout_error(self) -> MinerUWaitTimeoutError | None:
        """The error to raise once the documents that did finish are saved, when the wait timed out."""
        return MinerUWaitTimeoutError(self.message) if self.status == TIMEOUT else None

    def raise_for_error(self) -> None:
        """Raise the typed error a poll ended with (``error`` outcomes only)."""
        if self.status == ERROR:
            raise error_from_dict(dict(self.error or {"message": self.message}))


def validate_wait_event(event: WaitOutcome | Mapping[str, Any] | None) -> WaitOutcome:
    """
    The :class:`WaitOutcome` of a trigger event (or of the blocking wait), checked.

    :param event: the event payload ``execute_complete`` received, or an outcome already typed.
    :raises MinerUError: the payload is not a MinerU wait outcome (missing, another trigger's, a
        status or kind we do not know, fields of the wrong type); or, for an ``error`` outcome,
        the typed error the poll failed with.
    """
    outcome = event if isinstance(event, WaitOutcome) else _outcome_of_payload(event)
    outcome.raise_for_error()
    return outcome


def _outcome_of_payload(event: Any) -> WaitOutcome:
    """The outcome :meth:`WaitOutcome.to_payload` wrote, or :class:`MinerUError` naming what is wrong."""
    if not isinstance(event, Mapping) or event.get("status") not in STATUSES:
        raise MinerUError(f"unexpected event from the MinerU trigger: {event!r}")

    def listed(name: str, ok: Any) -> list[Any]:
        value = event.get(name)
        if not isinstance(value, list) or not all(ok(item) for item in value):
            raise MinerUError(f"unexpected event from the MinerU trigger: {name} must be a list: {value!r}")
        return value

    results = listed("results", lambda r: isinstance(r, Mapping))
    ids = listed("ids", lambda i: isinstance(i, str))
    batch_of = listed("batch_of", lambda i: i is None or isinstance(i, str))
    sources = listed("sources", lambda s: s is None or isinstance(s, str))
    if event.get("kind") not in WAITS or len(batch_of) != len(results):
        raise MinerUError(f"unexpected event from the MinerU trigger: {describe_outcome(dict(event))}")
    return WaitOutcome(
        status=event["status"],
        kind=event["kind"],
        ids=tuple(ids),
        documents=tuple(DocumentResult.from_dict(dict(r)) for r in results),
        batch_of=tuple(batch_of),
        message=str(event.get("message") or ""),
        error=event.get("error"),
        sources=tuple(sources),
    )


def describe_outcome(payload: Any) -> str:
    """
    One short line for an outcome payload (a trigger event), instead of the whole payload.

    ``MinerU batch wait done: 4 documents, 3 done, 1 failed (batch 5047…)``; no result URLs.
    """
    if not isinstance(payload, dict):
        return f"MinerU outcome: {str(payload)[:200]}"
    results = [r for r in payload.get("results") or [] if isinstance(r, dict)]
    counts: dict[str, int] = {}
    for result in results:
        state = str(result.get("state") or "?")
        counts[state] = counts.get(state, 0) + 1
    kind = payload.get("kind") or "MinerU"
    ids = [str(i) for i in payload.get("ids") or []]
    shown = ", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")
    states = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    noun = "document" if len(results) == 1 else "documents"
    text = f"MinerU {kind} wait {payload.get('status')}: {len(results)} {noun}"
    text += f", {states}" if states else ""
    text += f" ({kind} {shown})" if shown else ""
    if payload.get("status") != "done" and payload.get("message"):
        text += f"; {str(payload['message'])[:300]}"
    return text


def _outcome_event_class() -> type:
    # not at DAG-parse time: the operators import this module, and airflow.triggers.base loads every core trigger
    from airflow.triggers.base import TriggerEvent

    class OutcomeEvent(TriggerEvent):
        """A trigger event whose log line is :func:`describe_outcome`, not every result URL."""

        def __repr__(self) -> str:
            return f"TriggerEvent<{describe_outcome(self.payload)}>"

        __str__ = __repr__

    return OutcomeEvent


_OUTCOME_EVENT: type | None = None


def outcome_event(outcome: WaitOutcome) -> Any:
    """The ``TriggerEvent`` carrying ``outcome``'s payload; the triggerer logs it as one short line."""
    global _OUTCOME_EVENT
    if _OUTCOME_EVENT is None:
        _OUTCOME_EVENT = _outcome_event_class()
    return _OUTCOME_EVENT(outcome.to_payload())
