"""
Ending a wait the same way everywhere: download what is done, build the XCom, fail on failures.

Used by every operator and sensor, in blocking and deferrable mode alike, so the two modes cannot
decide differently (a known pitfall of other providers).

XCom shapes (plain JSON):

- one task: ``{"task_id", "data_id", "state", "full_zip_url", "err_msg", "output_path"}``
- batches: ``{"batch_ids": [...], "results": [{"file_name", "data_id", "state", "full_zip_url",
  "err_msg", "output_path", "batch_id"}, ...]}`` in input order.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlparse

from airflow_provider_mineru.exceptions import MinerUTaskFailedError
from airflow_provider_mineru.models import DocumentResult, MinerUState

_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.\-]+")


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
    from airflow.triggers.base import TriggerEvent

    class OutcomeEvent(TriggerEvent):
        """A trigger event whose log line is :func:`describe_outcome`, not every result URL."""

        def __repr__(self) -> str:
            return f"TriggerEvent<{describe_outcome(self.payload)}>"

        __str__ = __repr__

    return OutcomeEvent


def outcome_event(payload: dict[str, Any]) -> Any:
    """
    The ``TriggerEvent`` carrying an outcome payload; the triggerer logs it as one short line.

    :param payload: the outcome (see :meth:`~airflow_provider_mineru.polling.MinerUPoller.outcome`).
    """
    global _OUTCOME_EVENT
    if _OUTCOME_EVENT is None:
        _OUTCOME_EVENT = _outcome_event_class()
    return _OUTCOME_EVENT(payload)


_OUTCOME_EVENT: type | None = None


def parse_rendered_xcom(value: Any) -> Any:
    """
    An XCom value that reached an operator as text, parsed back.

    A Jinja template such as ``"{{ ti.xcom_pull('parse') }}"`` renders a dict or list as its
    Python ``repr`` unless the DAG renders native objects; accept that form too.
    """
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        import ast
        import json

        try:
            return json.loads(value)
        except ValueError:
            return ast.literal_eval(value.strip())
    return value


def xcom_values(results: Any) -> list[Any]:
    """One or many XCom values as a list: a dict, a list, or a mapped task's lazy sequence."""
    results = parse_rendered_xcom(results)
    if isinstance(results, (dict, str)) or results is None:
        return [results]
    return list(results)


def output_root(output_path: Any) -> Any:
    """A local ``Path`` for a plain path, an ``ObjectStoragePath`` for ``s3://…`` and the like."""
    if output_path is None:
        return None
    if not isinstance(output_path, (str, os.PathLike)):
        return output_path  # already an ObjectStoragePath (or alike)
    text = os.fspath(output_path)
    if "://" in text and not text.startswith("file://"):
        from airflow_provider_mineru.version_compat import ObjectStoragePath

        return ObjectStoragePath(text)
    from pathlib import Path

    return Path(text.removeprefix("file://")).expanduser()


def document_stem(document: DocumentResult, source: str | None = None) -> str:
    """The folder name for a document: its ``data_id``, else the stem of its file name or URL, else its id."""
    candidates = [document.data_id]
    for name in (document.file_name, source):
        if name:
            path = urlparse(name).path if "://" in name else name
            candidates.append(os.path.splitext(os.path.basename(path.rstrip("/")))[0])
    candidates.append(document.task_id)
    for candidate in candidates:
        cleaned = _UNSAFE_NAME_CHARS.sub("_", candidate or "").strip("._")
        if cleaned:
            return cleaned[:120]
    return "document"


class ResultDownloader:
    """
    Download and safely extract ``done`` documents into ``output_path/<name>/``, names made unique.

    :param hook: a :class:`~airflow_provider_mineru.hooks.mineru.MinerUHook`.
    :param output_path: a local folder or any object-storage path.
    """

    def __init__(self, hook: Any, output_path: Any, log: Any) -> None:
        self.hook = hook
        self.root = output_root(output_path)
        self.log = log
        self._used: set[str] = set()
        #: Pages parsed, counted from each downloaded ``*_content_list.json``.
        self.pages = 0

    def _unique(self, stem: str) -> str:
        name, counter = stem, 2
        while name in self._used:
            name = f"{stem}-{counter}"
            counter += 1
        self._used.add(name)
        return name

    def download(self, document: DocumentResult, source: str | None = None) -> str | None:
        """Extract one document's zip; return where it landed (None if the document is not ``done``)."""
        if self.root is None or document.state is not MinerUState.DONE or not document.full_zip_url:
            return None
        target = self.root / self._unique(document_stem(document, source))
        if hasattr(target, "mkdir"):
            target.mkdir(parents=True, exist_ok=True)
        extracted = self.hook.download_and_extract(document.full_zip_url, target)
        if extracted.content_list:
            self.pages += count_pages(target / extracted.content_list)
        self.log.info(
            "Saved the result of %s in %s (%d files; Markdown: %s)",
            document.name,
            target,
            len(extracted.files),
            extracted.markdown or "none",
        )
        return str(target)


def count_pages(content_list_path: Any) -> int:
    """Distinct ``page_idx`` values in a ``*_content_list.json`` (0 when it cannot be read)."""
    import json

    try:
        with content_list_path.open("rb") as handle:
            blocks = json.load(handle)
        return len({b.get("page_idx") for b in blocks if isinstance(b, dict) and b.get("page_idx") is not None})
    except (OSError, ValueError, TypeError):
        return 0


def _document_fields(document: DocumentResult, output_path: str | None) -> dict[str, Any]:
    return {
        "data_id": document.data_id,
        "state": document.raw_state or document.state.value,
        "full_zip_url": document.full_zip_url,
        "err_msg": document.err_msg,
        "output_path": output_path,
    }


def task_xcom(document: DocumentResult, output_path: str | None, source: str | None = None) -> dict[str, Any]:
    """
    The XCom of one task: ``task_id``, ``data_id``, ``state``, ``full_zip_url``, ``err_msg``,
    ``output_path`` and ``source`` (the URL submitted, when known), so a later download names the
    output folder as the waiting operator does.
    """
    return {"task_id": document.task_id, **_document_fields(document, output_path), "source": source}


def batch_entry(document: DocumentResult, output_path: str | None, batch_id: str | None) -> dict[str, Any]:
    """One file of a batch XCom: ``file_name`` + the task fields (without ``task_id``) + ``batch_id``."""
    return {"file_name": document.file_name, **_document_fields(document, output_path), "batch_id": batch_id}


def finish_documents(
    *,
    kind: str,
    ids: Sequence[str],
    documents: Sequence[DocumentResult],
    batch_of: Sequence[str | None] | None = None,
    sources: Sequence[str | None] | None = None,
    hook: Any,
    output_path: Any,
    fail_on_file_error: bool,
    log: Any,
    push_xcom: Any = None,
    summary: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """
    Download what is done, build the XCom value, and raise if documents failed.

    :param kind: ``"task"`` or ``"batch"``.
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
    outputs = [
        downloader.download(doc, sources[i] if sources and i < len(sources) else None)
        for i, doc in enumerate(documents)
    ]
    if kind == "task":
        value = task_xcom(documents[0], outputs[0], sources[0] if sources else None)
    else:
        value = {
            "batch_ids": list(ids),
            "results": [
                batch_entry(doc, outputs[i], batch_of[i] if batch_of and i < len(batch_of) else None)
                for i, doc in enumerate(documents)
            ],
        }
    failed = [doc for doc in documents if doc.state is MinerUState.FAILED]
    done = sum(1 for doc in documents if doc.state is MinerUState.DONE)
    log.info(
        "MinerU %s finished: %d of %d documents done, %d failed%s",
        kind,
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
            **({"task_id": ids[0]} if kind == "task" else {"batch_ids": list(ids)}),
        )
    if failed and fail_on_file_error:
        if push_xcom is not None:
            push_xcom(value)
        listed = "; ".join(f"{doc.name}: {doc.err_msg or 'no err_msg'}" for doc in failed)
        what = f"MinerU task {ids[0]} failed" if kind == "task" else f"{len(failed)} of {len(documents)} files failed"
        raise MinerUTaskFailedError(f"{what}: {listed}")
    return value


def emit_asset_events(context: Any, outlets: Sequence[Any], summary: dict[str, Any]) -> None:
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
    context: Any, outlets: Sequence[Any], *, event: dict[str, Any] | None, ids: Sequence[str], **kwargs: Any
) -> dict[str, Any]:
    """
    End a wait inside an Airflow task, from the outcome payload (a trigger event or the blocking wait's).

    Documents that finished are downloaded and the XCom is pushed before any failure is raised
    (failed documents, or a time-out: the documents still running are listed with their state),
    and the task's outlets get an asset event whose ``extra`` summarises the run.

    :param event: the outcome payload (see :class:`~airflow_provider_mineru.polling.MinerUPoller`).
    :param ids: the task or batch ids, when the payload does not carry them.
    :param kwargs: the rest of :func:`finish_documents`'s arguments.
    """
    from airflow_provider_mineru.polling import batch_of_documents, outcome_documents

    documents, timed_out = outcome_documents(event)

    def push(value: Any) -> None:
        context["ti"].xcom_push(key="return_value", value=value)

    summary: dict[str, Any] = {}
    try:
        if timed_out is not None:
            kwargs["fail_on_file_error"] = False
        value = finish_documents(
            ids=(event or {}).get("ids") or ids,
            documents=documents,
            batch_of=batch_of_documents(event),
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
