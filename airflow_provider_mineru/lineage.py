"""
OpenLineage for the MinerU operators: documents in, one output folder per parsed document out.

Follows ``apache-airflow-providers-openlineage``'s conventions: the operators define
``get_openlineage_facets_on_start`` / ``get_openlineage_facets_on_complete`` returning an
``OperatorLineage``; datasets are named as the OpenLineage naming spec says (``s3://bucket`` +
key, ``file`` + absolute path, ``https://host`` + path for URLs, query strings dropped, so
presigned signatures never reach a lineage backend). Each output folder carries a ``mineru``
dataset facet (:class:`MinerUDocumentDatasetFacet`: state, pages, MinerU task/batch ids,
``data_id``, file name); the run carries a ``mineru`` run facet (:class:`MinerURunFacet`) with the
ids and counts, on ``COMPLETE`` and on ``FAIL`` alike (:func:`failure_lineage`). Inputs are one
dataset per document (files after folders and globs are expanded), at most :data:`MAX_DATASETS`
per event. The custom facets name this package as their ``_producer`` (:data:`PRODUCER`).

Nothing here is imported unless the OpenLineage provider is installed and calls the methods.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_mineru import __version__
from airflow_provider_mineru.models import MinerUState
from airflow_provider_mineru.results.xcom import read_results_jsonl
from airflow_provider_mineru.utils.storage_paths import is_local_location, local_path_text
from airflow_provider_mineru.waiting.events import validate_wait_event

log = logging.getLogger(__name__)

#: The ``_producer`` of the custom facets: this package and version, as a package URL (purl). Not
#: the OpenLineage provider's URL, which the client would put there by default: it did not make them.
PRODUCER = f"pkg:pypi/airflow-provider-mineru@{__version__}"
#: Most input datasets, and most output datasets, one event lists (a batch of 5,000 files would
#: otherwise make an event of megabytes); the run facet still counts every document.
MAX_DATASETS = 1000

#: Schema URIs of the custom facets (documented in ``docs/lineage.md``).
DOCUMENT_FACET_SCHEMA = "urn:airflow-provider-mineru:openlineage:MinerUDocumentDatasetFacet:1-0-0"
RUN_FACET_SCHEMA = "urn:airflow-provider-mineru:openlineage:MinerURunFacet:1-0-0"

_FACET_CLASSES: dict[str, type] = {}


def _facet_classes() -> dict[str, type]:
    """The custom facet classes, built on first use (``attrs`` + the OpenLineage client)."""
    if _FACET_CLASSES:
        return _FACET_CLASSES
    # optional: attrs (the facets' base) only when the OpenLineage listener builds facets
    import attrs
    from airflow.providers.common.compat.openlineage.facet import DatasetFacet, RunFacet

    @attrs.define
    class MinerUDocumentDatasetFacet(DatasetFacet):
        """
        What MinerU made of one document.

        :param state: MinerU's final state (``done``, ``failed``).
        :param pages: pages in the result (from ``*_content_list.json``), when it could be read.
        :param taskId: the MinerU task id (single-task operators).
        :param batchId: the MinerU batch id (batch and upload operators).
        :param dataId: the ``data_id`` given at submission.
        :param fileName: the file name MinerU saw.
        :param errMsg: MinerU's ``err_msg`` of a failed document.
        """

        state: str
        pages: int | None = None
        taskId: str | None = None  # OpenLineage facets spell fields in camelCase
        batchId: str | None = None
        dataId: str | None = None
        fileName: str | None = None
        errMsg: str | None = None

        @staticmethod
        def _get_schema() -> str:
            return DOCUMENT_FACET_SCHEMA

    @attrs.define
    class MinerURunFacet(RunFacet):
        """
        One MinerU operator run: how many documents, how they ended, which MinerU ids.

        :param kind: ``task`` or ``batch``.
        :param ids: the MinerU task id, or the batch ids.
        """

        kind: str
        ids: list[str] = attrs.field(factory=list)
        documents: int = 0
        done: int = 0
        failed: int = 0
        pages: int = 0

        @staticmethod
        def _get_schema() -> str:
            return RUN_FACET_SCHEMA

    _FACET_CLASSES.update(document=MinerUDocumentDatasetFacet, run=MinerURunFacet)
    return _FACET_CLASSES


def dataset_for(location: Any) -> Any:
    """
    The OpenLineage ``Dataset`` of a URL, a local path or an object-storage path.

    - ``s3://bucket/key`` (and ``gs://``, ``abfs://`` …): namespace ``s3://bucket``, name ``key``;
    - ``https://host:port/path?query``: namespace ``https://host:port``, name ``/path`` (no query);
    - a local path or ``file://`` URL: namespace ``file``, name the absolute path.

    :param location: a string, ``os.PathLike`` or ``ObjectStoragePath``.
    """
    # optional: the OpenLineage provider is imported only when it calls these methods
    from airflow.providers.common.compat.openlineage.facet import Dataset

    text = str(location) if not isinstance(location, os.PathLike) else os.fspath(location)
    if is_local_location(text):
        path = local_path_text(text)
        return Dataset(namespace="file", name=os.path.abspath(os.path.expanduser(path)))
    parts = urlsplit(text)
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    if parts.scheme in ("http", "https"):
        return Dataset(namespace=f"{parts.scheme}://{netloc}", name=parts.path or "/")
    key = parts.path.lstrip("/")
    return Dataset(namespace=f"{parts.scheme}://{netloc}", name=key or "/")


def _pages(folder: str) -> int | None:
    # lazy: the downloader is needed only when the listener asks for output facets
    """Pages of one extracted result, from its ``*_content_list.json`` (None when unreadable)."""
    from airflow_provider_mineru.results.downloads import count_pages, output_root

    try:
        root = output_root(folder)
        lists = sorted(root.glob("*_content_list.json"))
        return count_pages(lists[0]) if lists else None
    except Exception:  # lineage must never fail the task
        return None


def _entries(value: Any) -> list[dict[str, Any]]:
    """Every document entry of one or many MinerU XCom values (a task's dict or a batch's results)."""
    values = value if isinstance(value, list) else [value]
    entries: list[dict[str, Any]] = []
    for item in values:
        if not isinstance(item, dict):
            continue
        if "task_id" in item:
            entries.append(item)
        results = item.get("results")
        if results is None and item.get("results_path"):  # a large XCom, kept in a JSONL file
            try:
                results = read_results_jsonl(item["results_path"])
            except Exception:  # lineage must never fail the task
                results = None
        entries.extend(e for e in results or [] if isinstance(e, dict))
    return entries


def output_datasets(value: Any) -> tuple[list[Any], dict[str, int]]:
    """
    One output ``Dataset`` per extracted document (its output folder), with its ``mineru`` facet.

    :param value: the operator's XCom (``{"task_id", …}``, ``{"batch_ids", "results"}`` or a list).
    :return: the datasets and the counts (``documents``, ``done``, ``failed``, ``pages``).
    """
    document_facet = _facet_classes()["document"]
    outputs, counts = [], {"documents": 0, "done": 0, "failed": 0, "pages": 0}
    for entry in _entries(value):
        state = str(entry.get("state") or "")
        counts["documents"] += 1
        counts["done"] += state == "done"
        counts["failed"] += state == "failed"
        folder = entry.get("output_path")
        if not folder or len(outputs) >= MAX_DATASETS:
            continue
        pages = _pages(folder)
        counts["pages"] += pages or 0
        dataset = dataset_for(folder)
        dataset.facets["mineru"] = document_facet(
            state=state,
            pages=pages,
            taskId=entry.get("task_id"),
            batchId=entry.get("batch_id"),
            dataId=entry.get("data_id"),
            fileName=entry.get("file_name"),
            errMsg=entry.get("err_msg"),
            producer=PRODUCER,
        )
        outputs.append(dataset)
    _say_capped("output", len(outputs), counts["documents"])
    return outputs, counts


def _say_capped(kind: str, listed: int, total: int) -> None:
    if listed >= MAX_DATASETS and total > listed:
        log.info("OpenLineage: the event lists the first %d %s datasets of %d documents", listed, kind, total)


def input_datasets(locations: Iterable[Any]) -> list[Any]:
    """The input ``Dataset`` of every URL or path, in order, without repeats; the first :data:`MAX_DATASETS`."""
    seen, inputs, total = set(), [], 0
    for location in locations:
        if not location:
            continue
        total += 1
        if len(inputs) >= MAX_DATASETS:
            continue
        dataset = dataset_for(location)
        if (dataset.namespace, dataset.name) not in seen:
            seen.add((dataset.namespace, dataset.name))
            inputs.append(dataset)
    _say_capped("input", len(inputs), total)
    return inputs


def _run_facet(kind: str | None, ids: Sequence[str], counts: dict[str, int]) -> Any:
    return _facet_classes()["run"](
        kind=kind or "batch",
        ids=list(ids),
        documents=counts.get("documents", 0),
        done=counts.get("done", 0),
        failed=counts.get("failed", 0),
        pages=counts.get("pages", 0),
        producer=PRODUCER,
    )


def outcome_counts(event: Any, ids: Sequence[str]) -> dict[str, int] | None:
    """
    ``documents``, ``done``, ``failed`` of a wait's outcome (a trigger event or the blocking wait's),
    or None when there is none or it cannot be read.
    """
    if event is None:
        return None
    try:
        documents = validate_wait_event(event).documents
    except Exception:  # lineage must never fail the task (the event may be why it failed)
        return None
    return {
        "documents": len(documents),
        "done": sum(d.state is MinerUState.DONE for d in documents),
        "failed": sum(d.state is MinerUState.FAILED for d in documents),
    }


def failure_lineage(inputs: Sequence[Any], ids: Sequence[str], event: Any = None, *, kind: str | None = None) -> Any:
    """
    The ``OperatorLineage`` of a failed run: its inputs and a ``mineru`` run facet naming what was
    submitted (``ids``) and how the documents ended, as far as MinerU answered. No outputs.

    :param inputs: the URL or path of every document the run was given.
    :param ids: the MinerU task id or batch ids submitted (empty when the run failed before that).
    :param event: the wait's outcome, when the run got that far; without one, ``documents`` is the
        number of inputs once something was submitted (0 before), and ``done``/``failed`` are 0.
    """
    # optional: the OpenLineage provider is imported only when it calls these methods
    from airflow.providers.openlineage.extractors import OperatorLineage

    counts = outcome_counts(event, ids) or {"documents": len([i for i in inputs if i]) if ids else 0}
    return OperatorLineage(inputs=input_datasets(inputs), run_facets={"mineru": _run_facet(kind, ids, counts)})


def operator_lineage(inputs: Sequence[Any], value: Any = None, *, kind: str | None = None) -> Any:
    """
    An ``OperatorLineage`` from input locations and, once the task is done, its XCom value.

    :param inputs: URLs or paths of the documents parsed.
    :param value: the operator's return value; None on start (no outputs yet).
    :param kind: ``task`` or ``batch``, for the run facet.
    """
    # optional: the OpenLineage provider is imported only when it calls these methods
    from airflow.providers.openlineage.extractors import OperatorLineage

    datasets = input_datasets(inputs)
    if value is None:
        return OperatorLineage(inputs=datasets)
    outputs, counts = output_datasets(value)
    ids: list[str] = []
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, dict):
            ids.extend([item["task_id"]] if item.get("task_id") else list(item.get("batch_ids") or []))
    return OperatorLineage(inputs=datasets, outputs=outputs, run_facets={"mineru": _run_facet(kind, ids, counts)})


def start_locations(paths: Any) -> list[str]:
    """
    The upload operator's inputs before anything is resolved (no listing, no connection): each
    path as given, a glob cut back to the folder it searches.
    """
    items = paths if isinstance(paths, (list, tuple)) else [paths]
    locations = []
    for item in items:
        if isinstance(item, dict):
            item = item.get("path")
        if item is None:
            continue
        text = os.fspath(item) if isinstance(item, os.PathLike) else str(item)
        cut = min((text.find(c) for c in "*?[" if c in text), default=-1)
        if cut >= 0:
            text = text[:cut].rsplit("/", 1)[0] or "/"
        locations.append(text)
    return locations
