"""
OpenLineage for the MinerU operators: documents in, one output folder per parsed document out.

Follows ``apache-airflow-providers-openlineage``'s conventions: the operators define
``get_openlineage_facets_on_start`` / ``get_openlineage_facets_on_complete`` returning an
``OperatorLineage``; datasets are named as the OpenLineage naming spec says (``s3://bucket`` +
key, ``file`` + absolute path, ``https://host`` + path for URLs, query strings dropped, so
presigned signatures never reach a lineage backend). Each output folder carries a ``mineru``
dataset facet (:class:`MinerUDocumentDatasetFacet`: state, pages, MinerU task/batch ids,
``data_id``, file name); the run carries a ``mineru`` run facet (:class:`MinerURunFacet`) with the
counts.

Nothing here is imported unless the OpenLineage provider is installed and calls the methods.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_mineru.utils.storage_paths import is_local_location, local_path_text

#: Schema URIs of the custom facets (documented in ``docs/lineage.md``).
DOCUMENT_FACET_SCHEMA = "urn:airflow-provider-mineru:openlineage:MinerUDocumentDatasetFacet:1-0-0"
RUN_FACET_SCHEMA = "urn:airflow-provider-mineru:openlineage:MinerURunFacet:1-0-0"

_FACET_CLASSES: dict[str, type] = {}


def _facet_classes() -> dict[str, type]:
    """The custom facet classes, built on first use (``attrs`` + the OpenLineage client)."""
    if _FACET_CLASSES:
        return _FACET_CLASSES
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
    """Pages of one extracted result, from its ``*_content_list.json`` (None when unreadable)."""
    from airflow_provider_mineru.downloads import count_pages, output_root

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
        entries.extend(e for e in item.get("results") or [] if isinstance(e, dict))
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
        if not folder:
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
        )
        outputs.append(dataset)
    return outputs, counts


def input_datasets(locations: Iterable[Any]) -> list[Any]:
    """The input ``Dataset`` of every URL or path, in order, without repeats."""
    seen, inputs = set(), []
    for location in locations:
        if not location:
            continue
        dataset = dataset_for(location)
        if (dataset.namespace, dataset.name) not in seen:
            seen.add((dataset.namespace, dataset.name))
            inputs.append(dataset)
    return inputs


def operator_lineage(inputs: Sequence[Any], value: Any = None, *, kind: str | None = None) -> Any:
    """
    An ``OperatorLineage`` from input locations and, once the task is done, its XCom value.

    :param inputs: URLs or paths of the documents parsed.
    :param value: the operator's return value; None on start (no outputs yet).
    :param kind: ``task`` or ``batch``, for the run facet.
    """
    from airflow.providers.openlineage.extractors import OperatorLineage

    datasets = input_datasets(inputs)
    if value is None:
        return OperatorLineage(inputs=datasets)
    outputs, counts = output_datasets(value)
    ids: list[str] = []
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, dict):
            ids.extend([item["task_id"]] if item.get("task_id") else list(item.get("batch_ids") or []))
    run_facet = _facet_classes()["run"](kind=kind or "batch")
    run_facet.ids = ids
    run_facet.documents, run_facet.done = counts["documents"], counts["done"]
    run_facet.failed, run_facet.pages = counts["failed"], counts["pages"]
    return OperatorLineage(inputs=datasets, outputs=outputs, run_facets={"mineru": run_facet})


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
