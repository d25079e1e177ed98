"""
Ending a wait the same way everywhere: download what is done, build the XCom, fail on failures.

Used by every operator and sensor, in blocking and deferrable mode alike, so the two modes cannot
decide differently (a known pitfall of other providers). :func:`finish_wait` returns a
:class:`FinishedWait` (the XCom value, the asset events' summary, the error to raise once both are
saved); :meth:`FinishedWait.deliver` does that inside the Airflow task. What differs between a
task and a batch is asked of the :class:`~airflow_provider_mineru.waiting.waits.MinerUWait`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from airflow_provider_mineru.exceptions import MinerUError, MinerUTaskFailedError
from airflow_provider_mineru.long_documents.run import land_and_stitch
from airflow_provider_mineru.models import MinerUState
from airflow_provider_mineru.results.downloads import ResultDownloader
from airflow_provider_mineru.waiting.events import WaitOutcome
from airflow_provider_mineru.waiting.waits import MinerUWait, WaitedDocuments


@dataclass(frozen=True)
class FinishedWait:
    """
    A finished wait: what the task returns, what its asset events say, and what it raises.

    :param value: the XCom value (see :mod:`airflow_provider_mineru.results.xcom`).
    :param summary: the ``extra`` of the task's asset events: ``documents``, ``done``, ``failed``,
        ``pages``, ``output_path`` and the task or batch ids.
    :param error: raised once ``value`` is pushed and the asset events are attached: documents
        failed (and ``fail_on_file_error`` is set), or the wait timed out. None: success.
    """

    value: dict[str, Any]
    summary: dict[str, Any] = field(default_factory=dict)
    error: MinerUError | None = None

    def deliver(self, context: Any, outlets: Sequence[Any]) -> dict[str, Any]:
        """
        End the Airflow task with this result: the outlets get their asset events; on an error the
        XCom is pushed first (partial results are kept), then the error is raised.
        """
        try:
            if self.error is not None:
                context["ti"].xcom_push(key="return_value", value=self.value)
                raise self.error
            return self.value
        finally:
            emit_asset_events(context, outlets, self.summary)


def finish_wait(
    wait: MinerUWait, waited: WaitedDocuments, downloader: ResultDownloader, *, fail_on_file_error: bool
) -> FinishedWait:
    """
    Download what is done and build the XCom value; name the failed documents in the error.

    :param wait: what was waited on (a task or batches).
    :param waited: the documents, in input order, with their batch and source.
    :param downloader: where ``done`` documents land (and the log progress goes to).
    :param fail_on_file_error: a failed document makes :attr:`FinishedWait.error` a
        :class:`~airflow_provider_mineru.exceptions.MinerUTaskFailedError` naming every failed
        document and its ``err_msg``.
    """
    # long documents: slices land under their input's parts/ and are stitched; one document per input from here
    stitched = land_and_stitch(waited, downloader)
    waited, outputs = stitched.waited, stitched.outputs
    documents = waited.documents
    value = stitched.with_parts(wait.xcom(waited, outputs))
    failed = [doc for doc in documents if doc.state is MinerUState.FAILED]
    done = sum(1 for doc in documents if doc.state is MinerUState.DONE)
    log = downloader.log
    value = wait.shrink(value, downloader.root, done=done, failed=len(failed), log=log)
    log.info(
        "MinerU %s finished: %d of %d documents done, %d failed%s",
        wait.name,
        done,
        len(documents),
        len(failed),
        "" if downloader.root is None else f"; results are in {downloader.root}",
    )
    summary = {
        "documents": len(documents),
        "done": done,
        "failed": len(failed),
        "pages": downloader.pages,
        "output_path": None if downloader.root is None else str(downloader.root),
        **wait.ids_summary(waited.ids),
    }
    error = None
    if failed and fail_on_file_error:
        listed = "; ".join(f"{doc.name}: {doc.err_msg or 'no err_msg'}" for doc in failed)
        error = MinerUTaskFailedError(f"{wait.failure(waited.ids, failed, len(documents))}: {listed}")
    return FinishedWait(value, summary, error)


def finish_outcome(
    wait: MinerUWait, outcome: WaitOutcome, downloader: ResultDownloader, *, fail_on_file_error: bool
) -> FinishedWait:
    """
    :func:`finish_wait` for a checked :class:`~airflow_provider_mineru.waiting.events.WaitOutcome`: after a
    time-out, the documents that finished are kept and the error is the time-out (it lists the
    documents still running with their state).
    """
    timed_out = outcome.timeout_error()
    finished = finish_wait(
        wait, outcome.waited(), downloader, fail_on_file_error=fail_on_file_error and timed_out is None
    )
    return finished if timed_out is None else replace(finished, error=timed_out)


def emit_asset_events(context: Any, outlets: Sequence[Any], summary: Mapping[str, Any]) -> None:
    """Attach ``summary`` as the ``extra`` of the asset (dataset) event of every outlet of the task."""
    if not outlets or not summary:
        return
    events = context.get("outlet_events")
    if events is None:
        return
    for outlet in outlets:
        try:
            events[outlet].extra.update(summary)
        except (KeyError, TypeError, AttributeError):  # not an asset (e.g. a lineage-only outlet)
            continue
