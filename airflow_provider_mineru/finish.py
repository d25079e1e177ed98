"""
Ending a wait the same way everywhere: download what is done, build the XCom, fail on failures.

Used by every operator and sensor, in blocking and deferrable mode alike, so the two modes cannot
decide differently (a known pitfall of other providers). What differs between a task and a batch
is asked of the :class:`~airflow_provider_mineru.waits.MinerUWait`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from airflow_provider_mineru.downloads import ResultDownloader
from airflow_provider_mineru.events import WaitOutcome, validate_wait_event
from airflow_provider_mineru.exceptions import MinerUTaskFailedError
from airflow_provider_mineru.models import DocumentResult, MinerUState
from airflow_provider_mineru.waits import MinerUWait, WaitedDocuments


def finish_documents(
    *,
    wait: MinerUWait,
    ids: Sequence[str],
    documents: Sequence[DocumentResult],
    batch_of: Sequence[str | None] = (),
    sources: Sequence[str | None] | None = None,
    hook: Any,
    output_path: Any,
    fail_on_file_error: bool,
    log: Any,
    push_xcom: Callable[[Any], None] | None = None,
    summary: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """
    Download what is done, build the XCom value, and raise if documents failed.

    :param wait: what was waited on (a task or batches).
    :param ids: the task id, or the batch ids.
    :param documents: final states, in input order.
    :param batch_of: per document, the batch it belongs to.
    :param sources: per document, the URL or path it came from (for folder names).
    :param push_xcom: ``callable(value)`` that stores the XCom before a failure is raised, so
        partial results are kept.
    :param summary: a dict to fill with counts for asset events: ``documents``, ``done``,
        ``failed``, ``pages`` and ``output_path``.
    :raises MinerUTaskFailedError: a document failed and ``fail_on_file_error`` is set (the
        default); the message names every failed document and its ``err_msg``.
    """
    downloader = ResultDownloader(hook, output_path, log)
    outputs = downloader.download_all(documents, sources)
    value = wait.xcom(WaitedDocuments(ids, documents, batch_of, sources or ()), outputs)
    failed = [doc for doc in documents if doc.state is MinerUState.FAILED]
    done = sum(1 for doc in documents if doc.state is MinerUState.DONE)
    value = wait.shrink(value, downloader.root, done=done, failed=len(failed), log=log)
    log.info(
        "MinerU %s finished: %d of %d documents done, %d failed%s",
        wait.name,
        done,
        len(documents),
        len(failed),
        "" if downloader.root is None else f"; results are in {downloader.root}",
    )
    if summary is not None:
        summary.update(
            documents=len(documents),
            done=done,
            failed=len(failed),
            pages=downloader.pages,
            output_path=None if downloader.root is None else str(downloader.root),
            **wait.ids_summary(ids),
        )
    if failed and fail_on_file_error:
        if push_xcom is not None:
            push_xcom(value)
        listed = "; ".join(f"{doc.name}: {doc.err_msg or 'no err_msg'}" for doc in failed)
        raise MinerUTaskFailedError(f"{wait.failure(ids, failed, len(documents))}: {listed}")
    return value


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


def finish_in_task(
    context: Any,
    outlets: Sequence[Any],
    *,
    wait: MinerUWait,
    event: WaitOutcome | Mapping[str, Any] | None,
    ids: Sequence[str],
    **kwargs: Any,
) -> dict[str, Any]:
    """
    End a wait inside an Airflow task, from its outcome (a trigger event or the blocking wait's).

    The event is checked first (:func:`~airflow_provider_mineru.events.validate_wait_event`).
    Documents that finished are downloaded and the XCom is pushed before any failure is raised
    (failed documents, or a time-out: the documents still running are listed with their state),
    and the task's outlets get an asset event whose ``extra`` summarises the run.

    :param wait: what was waited on.
    :param event: the outcome, typed or as the trigger event's payload.
    :param ids: the task or batch ids, when the payload does not carry them.
    :param kwargs: the rest of :func:`finish_documents`'s arguments.
    """
    outcome = validate_wait_event(event, ids)
    timed_out = outcome.timeout_error()

    def push(value: Any) -> None:
        context["ti"].xcom_push(key="return_value", value=value)

    summary: dict[str, Any] = {}
    try:
        if timed_out is not None:
            kwargs["fail_on_file_error"] = False
        value = finish_documents(
            wait=wait,
            ids=outcome.ids or ids,
            documents=outcome.documents,
            batch_of=outcome.batch_of,
            push_xcom=push,
            summary=summary,
            **kwargs,
        )
        if timed_out is not None:
            push(value)
            raise timed_out
        return value
    finally:
        emit_asset_events(context, outlets, summary)
