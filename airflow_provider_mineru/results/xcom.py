"""
What the operators and sensors return: the XCom shapes, in plain JSON.

- one task: ``{"task_id", "data_id", "state", "full_zip_url", "err_msg", "output_path", "source"}``
- batches: ``{"batch_ids": [...], "results": [{"file_name", "data_id", "state", "full_zip_url",
  "err_msg", "output_path", "batch_id"}, ...]}`` in input order.
- batches whose XCom would exceed :data:`XCOM_MAX_BYTES` (about 3,000 documents) and that have an
  ``output_path``: the entries go to ``<output_path>/mineru-results-<first batch id>.jsonl``, one
  JSON line each, and the XCom is ``{"batch_ids", "results_path", "count", "done", "failed"}``.

Also how an XCom value that reached an operator as text is read back (:func:`parse_rendered_xcom`).
"""

from __future__ import annotations

import ast
import json
from typing import Any

from airflow_provider_mineru.exceptions import MinerUResultError
from airflow_provider_mineru.models import DocumentResult
from airflow_provider_mineru.utils.storage_paths import safe_name, storage_path

#: Largest XCom value a batch keeps inline (JSON bytes); larger results go to a JSONL file.
XCOM_MAX_BYTES = 1_000_000


def parse_rendered_xcom(value: Any) -> Any:
    """
    An XCom value that reached an operator as text, parsed back.

    A Jinja template such as ``"{{ ti.xcom_pull('parse') }}"`` renders a dict or list as its
    Python ``repr`` unless the DAG renders native objects; accept that form too.
    """
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
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


def spill_large_xcom(value: dict[str, Any], root: Any, *, done: int, failed: int, log: Any) -> dict[str, Any]:
    """
    A batch XCom over :data:`XCOM_MAX_BYTES` as a JSONL file beside the output, with its path in XCom.

    Under the limit, or without an ``output_path`` to write beside (then a warning says so), the
    value is returned unchanged.
    """
    encoded = len(json.dumps(value, separators=(",", ":")))
    if encoded <= XCOM_MAX_BYTES:
        return value
    if root is None:
        log.warning(
            "The XCom of %d documents is %d bytes, over %d; set output_path to keep it in a JSONL file instead",
            len(value["results"]),
            encoded,
            XCOM_MAX_BYTES,
        )
        return value
    first = safe_name(str(value["batch_ids"][0] if value["batch_ids"] else "batch"), 80)
    path = root / f"mineru-results-{first}.jsonl"
    try:
        if hasattr(root, "mkdir"):
            root.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            for entry in value["results"]:
                handle.write(json.dumps(entry, ensure_ascii=False).encode("utf-8") + b"\n")
    except OSError as exc:
        raise MinerUResultError(
            f"cannot write the results of {len(value['results'])} documents to {path}: {exc}"
        ) from exc
    log.info(
        "XCom of %d documents (%d bytes) written to %s; the XCom holds its path", len(value["results"]), encoded, path
    )
    return {
        "batch_ids": value["batch_ids"],
        "results_path": str(path),
        "count": len(value["results"]),
        "done": done,
        "failed": failed,
    }


def read_results_jsonl(path: Any) -> list[dict[str, Any]]:
    """The entries a spilled batch XCom (``results_path``) points to, in input order."""
    with storage_path(path).open("rb") as handle:
        return [json.loads(line) for line in handle if line.strip()]
