"""
Waiting for MinerU documents, shared by the blocking operators and the deferrable triggers.

A :class:`MinerUPoller` knows what is being waited on (one task, or several batches), remembers
what each poll returned, decides when the wait is over and builds the one outcome payload both
paths hand to the operator. Only fetching differs: :func:`wait_blocking` calls the sync hook,
the triggers call the async one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from airflow_provider_mineru.exceptions import MinerUError, MinerUWaitTimeoutError, error_from_dict
from airflow_provider_mineru.models import BatchResult, DocumentResult

#: Outcome statuses carried in trigger events and returned by :func:`wait_blocking`.
DONE = "done"
TIMEOUT = "timeout"
ERROR = "error"

Kind = Literal["task", "batch"]

#: The least time between deferring and resuming, unless ``[mineru] min_defer_seconds`` says otherwise.
MIN_DEFER_SECONDS = 10.0


def min_defer_default() -> float:
    """
    ``[mineru] min_defer_seconds`` (``AIRFLOW__MINERU__MIN_DEFER_SECONDS``), else 10 s.

    A trigger that fires within seconds of its deferral can meet the executor's late "success" of
    the deferring try, and Airflow 3 then fails the resumed task (apache/airflow#66374, #71580,
    #72716). The operators and sensors therefore hold a trigger's event until this long after they
    deferred; with the default ``poll_interval`` (10 s) that costs nothing.
    """
    from airflow_provider_mineru.version_compat import conf

    return conf.getfloat("mineru", "min_defer_seconds", fallback=MIN_DEFER_SECONDS)


@dataclass
class MinerUPoller:
    """
    What is being waited on, and what MinerU said about it so far.

    :param kind: ``"task"`` (``ids`` holds one task id) or ``"batch"`` (``ids`` holds batch ids).
    :param ids: the MinerU task id, or the batch ids in submission order.
    :param expected_files: per batch, how many files it holds (a fresh batch may list fewer).
    :param failed_files: per batch, files that failed before MinerU saw them (an upload that could
        not be completed) and their error: they count as ``failed`` instead of waiting forever in
        ``waiting-file``.
    :param slots: per input document, ``[batch index, position in that batch]``: where its latest
        submission lives when a retry resubmitted some documents into a new batch. None: the inputs
        are the batches' files in order.
    """

    kind: Kind
    ids: Sequence[str]
    expected_files: Sequence[int] | None = None
    failed_files: dict[str, dict[str, str]] | None = None
    slots: Sequence[Sequence[int]] | None = None
    results: dict[str, list[DocumentResult]] = field(default_factory=dict)
    _last_lines: dict[str, str] = field(default_factory=dict)

    def pending_ids(self) -> list[str]:
        """The ids still worth a request: every id not yet seen complete (one request each per poll)."""
        return [i for i in self.ids if not self._is_complete(i)]

    def _is_complete(self, item_id: str) -> bool:
        documents = self.results.get(item_id)
        if not documents:
            return False
        if self.kind == "batch" and self.expected_files is not None:
            expected = self.expected_files[list(self.ids).index(item_id)]
            if len(documents) < expected:
                return False
        return all(d.is_terminal for d in documents)

    def record(self, item_id: str, answer: DocumentResult | BatchResult) -> list[str]:
        """Store one poll's answer; return log lines for documents whose state changed."""
        documents = list(answer.files) if isinstance(answer, BatchResult) else [answer]
        local_failures = (self.failed_files or {}).get(item_id)
        if local_failures:
            documents = _apply_local_failures(documents, local_failures)
        self.results[item_id] = documents
        changes = []
        for index, document in enumerate(documents):
            key = f"{item_id}/{index}"
            line = document.describe()
            if self._last_lines.get(key) != line:
                self._last_lines[key] = line
                changes.append(line)
        return changes

    @property
    def complete(self) -> bool:
        return all(self._is_complete(i) for i in self.ids)

    def absorb(
        self, item_id: str, answer: DocumentResult | BatchResult | MinerUError, log: Any
    ) -> dict[str, Any] | None:
        """
        Take one poll's answer (or the error it raised); return an ``error`` outcome if the wait must end.

        Transient errors left after the hook's own retries are logged, and polling goes on.
        """
        if isinstance(answer, MinerUError):
            if not answer.retryable:
                details = answer.to_dict()
                details["message"] = f"polling MinerU {self.kind} {item_id}: {answer.message}"
                return self.outcome(ERROR, f"MinerU {self.kind} {item_id}: {answer}", details)
            log.warning("Polling MinerU %s %s failed, will poll again: %s", self.kind, item_id, answer)
            return None
        for line in self.record(item_id, answer):
            if line.startswith(f"{item_id}: "):  # a task without data_id is named by its id: say it once
                line = line[len(item_id) + 2 :]
            log.info("MinerU %s %s: %s", self.kind, item_id, line)
        return None

    def finished(self, now: float, end_time: float) -> dict[str, Any] | None:
        """The ``done`` or ``timeout`` outcome once the wait is over, else None."""
        if self.complete:
            return self.outcome(DONE)
        if now >= end_time:
            return self.outcome(TIMEOUT, f"MinerU {self.kind} wait timed out: {self.progress()}")
        return None

    def located(self) -> list[tuple[str, DocumentResult]]:
        """(batch or task id, document) for every input document seen so far, in input order."""
        if self.slots is None:
            return [(i, d) for i in self.ids for d in self.results.get(i, [])]
        located = []
        for batch_index, position in self.slots:
            item_id = self.ids[batch_index]
            listed = self.results.get(item_id, [])
            if position < len(listed):
                located.append((item_id, listed[position]))
        return located

    def documents(self) -> list[DocumentResult]:
        """Every input document seen, in input order (the latest submission of each)."""
        return [d for _, d in self.located()]

    def progress(self) -> str:
        """Where the wait stands, for a time-out message."""
        documents = self.documents()
        if not documents:
            return "MinerU has not listed any document yet"
        unfinished = [d for d in documents if not d.is_terminal]
        shown = "; ".join(d.describe() for d in unfinished[:5])
        more = f" and {len(unfinished) - 5} more" if len(unfinished) > 5 else ""
        return (
            f"{len(documents) - len(unfinished)} of {len(documents)} documents finished; still waiting: {shown}{more}"
        )

    def outcome(
        self, status: str, message: str = "", error: MinerUError | dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The JSON payload ending a wait (a trigger event's payload, or :func:`wait_blocking`'s result)."""
        payload: dict[str, Any] = {
            "status": status,
            "kind": self.kind,
            "ids": list(self.ids),
            "results": [d.to_dict() for d in self.documents()],
            "batch_of": [item_id for item_id, _ in self.located()],
            "message": message,
        }
        if error is not None:
            payload["error"] = error.to_dict() if isinstance(error, MinerUError) else error
        return payload


def _apply_local_failures(documents: list[DocumentResult], failures: dict[str, str]) -> list[DocumentResult]:
    """Mark files that never reached MinerU as failed with their error (listed or not by MinerU)."""
    from dataclasses import replace

    from airflow_provider_mineru.models import MinerUState

    listed = {d.file_name for d in documents}
    marked = [
        replace(d, state=MinerUState.FAILED, raw_state="failed", err_msg=f"upload failed: {failures[d.file_name]}")
        if d.file_name in failures
        else d
        for d in documents
    ]
    for name, error in failures.items():
        if name not in listed:
            marked.append(
                DocumentResult(
                    state=MinerUState.FAILED, raw_state="failed", file_name=name, err_msg=f"upload failed: {error}"
                )
            )
    return marked


def outcome_documents(event: dict[str, Any] | None) -> tuple[list[DocumentResult], MinerUWaitTimeoutError | None]:
    """
    Validate an outcome payload; return its documents and, when the wait timed out, the error to
    raise once the documents that did finish are saved.

    :raises MinerUError: the typed error a poll failed with, or an unexpected payload.
    """
    if not isinstance(event, dict) or event.get("status") not in (DONE, TIMEOUT, ERROR):
        raise MinerUError(f"unexpected event from the MinerU trigger: {event!r}")
    if event["status"] == ERROR:
        raise error_from_dict(event.get("error") or {"message": event.get("message")})
    documents = [DocumentResult.from_dict(d) for d in event.get("results", [])]
    timeout = MinerUWaitTimeoutError(str(event.get("message"))) if event["status"] == TIMEOUT else None
    return documents, timeout


def batch_of_documents(event: dict[str, Any] | None) -> list[str | None] | None:
    """Per document of an outcome payload, the batch (or task) id it belongs to, in order."""
    return (event or {}).get("batch_of") or None


def poll_once(
    poller: MinerUPoller, fetch: Callable[[str], DocumentResult | BatchResult], *, end_time: float, log: Any
) -> dict[str, Any] | None:
    """One round of requests with the sync hook; the outcome payload if the wait is over, else None."""
    for item_id in poller.pending_ids():
        try:
            answer: DocumentResult | BatchResult | MinerUError = fetch(item_id)
        except MinerUError as error:
            answer = error
        if (failed := poller.absorb(item_id, answer, log)) is not None:
            return failed
    return poller.finished(time.time(), end_time)


def wait_blocking(
    poller: MinerUPoller,
    fetch: Callable[[str], DocumentResult | BatchResult],
    *,
    poll_interval: float,
    end_time: float,
    log: Any,
) -> dict[str, Any]:
    """
    Poll with the sync hook until every document is terminal, the deadline passes, or an error that
    must not be retried; return the outcome payload (the same one the triggers send).
    """
    while (outcome := poll_once(poller, fetch, end_time=end_time, log=log)) is None:
        time.sleep(max(0.0, min(poll_interval, end_time - time.time())))
    return outcome
