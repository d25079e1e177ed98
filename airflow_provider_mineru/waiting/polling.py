"""
Waiting for MinerU documents, shared by the blocking operators and the deferrable triggers.

A :class:`MinerUPoller` knows what is being waited on (a :class:`~airflow_provider_mineru.waiting.waits.MinerUWait`
and its ids), remembers what each poll returned, decides when the wait is over and builds the one
:class:`~airflow_provider_mineru.waiting.events.WaitOutcome` both paths hand to the operator. Only
fetching differs: :func:`wait_blocking` calls the sync hook, the triggers call the async one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from airflow_provider_mineru.exceptions import MinerUError
from airflow_provider_mineru.models import BatchResult, DocumentResult, MinerUState
from airflow_provider_mineru.version_compat import conf
from airflow_provider_mineru.waiting.events import DONE, ERROR, TIMEOUT, Status, WaitOutcome
from airflow_provider_mineru.waiting.waits import MinerUWait, WaitedDocuments

#: Up to this many documents that changed state in one answer are logged a line each (INFO); more
#: are summed up in one line, each at DEBUG, except failed ones: a failure always gets its INFO line
#: with its ``err_msg``. A 10,000-document day logged 10,000 lines in the
#: triggerer otherwise, which cost it 14.5 CPU seconds and blocked its event loop 23 s.
CHANGES_LOGGED_ONE_BY_ONE = 20

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
    return conf.getfloat("mineru", "min_defer_seconds", fallback=MIN_DEFER_SECONDS)


class StateWatcher(Protocol):
    """Told of every document state change a poller sees (the account's queue and parse times)."""

    def saw(self, key: str, document: DocumentResult) -> None:
        """``document`` (``key``: ``<id>/<position>``) changed state now."""
        ...


@dataclass
class MinerUPoller:
    """
    What is being waited on, and what MinerU said about it so far.

    :param wait: what is waited on: a task (``ids`` holds one task id) or batches.
    :param ids: the MinerU task id, or the batch ids in submission order.
    :param expected_files: per batch, how many files it holds (a fresh batch may list fewer).
    :param failed_files: per batch, files that failed before MinerU saw them (an upload that could
        not be completed) and their error: they count as ``failed`` instead of waiting forever in
        ``waiting-file``.
    :param slots: per input document, ``[batch index, position in that batch]``: where its latest
        submission lives when a retry resubmitted some documents into a new batch. None: the inputs
        are the batches' files in order.
    :param sources: per input document, the URL or path it was submitted from (empty: not known);
        handed on in the outcome, so the task that finishes the wait names its folders by them.
    """

    wait: MinerUWait
    ids: Sequence[str]
    expected_files: Sequence[int] | None = None
    failed_files: dict[str, dict[str, str]] | None = None
    slots: Sequence[Sequence[int]] | None = None
    sources: Sequence[str | None] = ()
    results: dict[str, list[DocumentResult]] = field(default_factory=dict)
    _last_lines: dict[str, str] = field(default_factory=dict)
    #: told of each state change (not part of what crosses a deferral)
    watcher: StateWatcher | None = field(default=None, repr=False, compare=False)

    def pending_ids(self) -> list[str]:
        """The ids still worth a request: every id not yet seen complete (one request each per poll)."""
        return [i for i in self.ids if not self._is_complete(i)]

    def _is_complete(self, item_id: str) -> bool:
        documents = self.results.get(item_id)
        if not documents:
            return False
        if self.expected_files is not None:
            expected = self.expected_files[list(self.ids).index(item_id)]
            if len(documents) < expected:
                return False
        return all(d.is_terminal for d in documents)

    def record(self, item_id: str, answer: DocumentResult | BatchResult) -> list[tuple[str, DocumentResult]]:
        """Store one poll's answer; return ``(log line, document)`` for each document whose state changed."""
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
                changes.append((line, document))
                if self.watcher is not None:
                    self.watcher.saw(key, document)
        return changes

    @property
    def complete(self) -> bool:
        return all(self._is_complete(i) for i in self.ids)

    def absorb(self, item_id: str, answer: DocumentResult | BatchResult | MinerUError, log: Any) -> WaitOutcome | None:
        """
        Take one poll's answer (or the error it raised); return an ``error`` outcome if the wait must end.

        Transient errors left after the hook's own retries are logged, and polling goes on.
        """
        if isinstance(answer, MinerUError):
            if not answer.retryable:
                details = answer.to_dict()
                details["message"] = f"polling MinerU {self.wait.name} {item_id}: {answer.message}"
                return self.outcome(ERROR, f"MinerU {self.wait.name} {item_id}: {answer}", details)
            log.warning("Polling MinerU %s %s failed, will poll again: %s", self.wait.name, item_id, answer)
            return None
        changes = self.record(item_id, answer)
        one_by_one = len(changes) <= CHANGES_LOGGED_ONE_BY_ONE
        for line, document in changes:
            if line.startswith(f"{item_id}: "):  # a task without data_id is named by its id: say it once
                line = line[len(item_id) + 2 :]
            # a failure always gets its own line, with its err_msg
            detail = log.info if one_by_one or document.state is MinerUState.FAILED else log.debug
            detail("MinerU %s %s: %s", self.wait.name, item_id, line)
        if not one_by_one:
            log.info(
                "MinerU %s %s: %d documents changed state; now %s",
                self.wait.name,
                item_id,
                len(changes),
                _counts(self.results[item_id]),
            )
        return None

    def finished(self, now: float, end_time: float) -> WaitOutcome | None:
        """The ``done`` or ``timeout`` outcome once the wait is over, else None."""
        if self.complete:
            return self.outcome(DONE)
        if now >= end_time:
            return self.outcome(TIMEOUT, f"MinerU {self.wait.name} wait timed out: {self.progress()}")
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

    def waited(self) -> WaitedDocuments:
        """Every input document seen so far, in input order, with its batch and source."""
        located = self.located()
        return WaitedDocuments(self.ids, [d for _, d in located], [i for i, _ in located], self.sources)

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
        self, status: Status, message: str = "", error: MinerUError | dict[str, Any] | None = None
    ) -> WaitOutcome:
        """How the wait ends (a trigger event's payload, or :func:`wait_blocking`'s result)."""
        return WaitOutcome.of(status, self.wait.name, self.ids, self.located(), message, error, self.sources)


def _counts(documents: Sequence[DocumentResult]) -> str:
    """``"180 done, 20 running"``: how many documents are in each state."""
    counts: dict[str, int] = {}
    for document in documents:
        counts[document.state.value] = counts.get(document.state.value, 0) + 1
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))


def _apply_local_failures(documents: list[DocumentResult], failures: dict[str, str]) -> list[DocumentResult]:
    """Mark files that never reached MinerU as failed with their error (listed or not by MinerU)."""
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


def poll_once(
    poller: MinerUPoller, fetch: Callable[[str], DocumentResult | BatchResult], *, end_time: float, log: Any
) -> WaitOutcome | None:
    """One round of requests with the sync hook; the outcome if the wait is over, else None."""
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
) -> WaitOutcome:
    """
    Poll with the sync hook until every document is terminal, the deadline passes, or an error that
    must not be retried; return the outcome (the same one the triggers send).
    """
    while (outcome := poll_once(poller, fetch, end_time=end_time, log=log)) is None:
        time.sleep(max(0.0, min(poll_interval, end_time - time.time())))
    return outcome
