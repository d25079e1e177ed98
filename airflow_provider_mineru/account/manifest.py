"""
The run manifest: one JSON line per input with its final outcome, written beside the outputs.

Where: ``<output_path>/.mineru-manifests/<dag_id>/<run_id>/<task_id>[-<map_index>].jsonl``, on
local disk or object storage (the one rule of :mod:`airflow_provider_mineru.utils.storage_paths`).
Each name is kept when it is made of ``[A-Za-z0-9_.-]``; otherwise the unsafe characters become
``_`` and a short hash of the original keeps two names apart. A later try of the same task instance
replaces the file: the manifest says how the task ended, as its XCom does.

A line (keys sorted, ``null`` where unknown)::

    {"v": 1, "input": "s3://in/a.pdf", "outcome": "done", "pages": 12, "data_id": "a_pdf-3f2a",
     "task_id": "…", "batch_id": "…", "error_code": null, "error": null, "output": "s3://out/a"}

``outcome`` is one of ``done``, ``failed``, ``refused`` (MinerU refused the request: not billed),
``deferred_budget`` (``on_budget_exhausted="skip"``), ``never_fits`` (more pages than the whole
daily budget), ``invalid`` (refused by our checks before sending).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from airflow_provider_mineru.utils.storage_paths import is_local_path, storage_path

MANIFEST_FOLDER = ".mineru-manifests"
#: The XCom key that says where a run's manifest is.
MANIFEST_KEY = "manifest"
MANIFEST_VERSION = 1
#: ``reused``: the ledger reused (or copied) an earlier result, 0 pages; ``skipped_attempts``: past
#: ``max_attempts_per_document``.
OUTCOMES = ("done", "failed", "refused", "deferred_budget", "never_fits", "invalid", "reused", "skipped_attempts")


@dataclass(frozen=True)
class ManifestRow:
    """
    One input's line.

    :param input: the input as the DAG author wrote it (a path or URL).
    :param outcome: one of :data:`OUTCOMES`.
    :param pages: pages MinerU reported (else our estimate; None when unknown).
    :param data_id: the ``data_id`` sent with the input.
    :param task_id: MinerU's task id (single-URL submits).
    :param batch_id: MinerU's batch id (batch submits and uploads).
    :param error_code: MinerU's error code, or ours.
    :param error: the error in words.
    :param output: where the result was saved.
    """

    input: str
    outcome: str
    pages: int | None = None
    data_id: str | None = None
    task_id: str | None = None
    batch_id: str | None = None
    error_code: str | None = None
    error: str | None = None
    output: str | None = None

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"manifest outcome {self.outcome!r} is not one of {list(OUTCOMES)}")

    def to_line(self) -> str:
        return json.dumps({"v": MANIFEST_VERSION, **asdict(self)}, sort_keys=True, ensure_ascii=False)


def _name(text: str) -> str:
    if re.match(r"^[A-Za-z0-9_.-]{1,120}$", text) and text not in (".", ".."):
        return text
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:80].strip(".")
    return f"{readable}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"


def manifest_path(output_path: Any, *, dag_id: str, run_id: str, task_id: str, map_index: int | None = None) -> Any:
    """The manifest's path (a ``pathlib.Path`` or an ``ObjectStoragePath``) for one task instance."""
    root = storage_path(output_path, "output_path")
    leaf = _name(task_id if map_index is None or map_index < 0 else f"{task_id}-{map_index}") + ".jsonl"
    return root / MANIFEST_FOLDER / _name(dag_id) / _name(run_id) / leaf


def write_manifest(
    output_path: Any,
    rows: Iterable[ManifestRow],
    *,
    dag_id: str,
    run_id: str,
    task_id: str,
    map_index: int | None = None,
) -> str:
    """
    Write the manifest whole (local: temporary file and atomic rename; object storage: one PUT).

    :returns: its location as text, for the XCom.
    """
    path = manifest_path(output_path, dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index)
    _write(path, "".join(row.to_line() + "\n" for row in rows).encode("utf-8"))
    return str(path)


def _write(path: Any, data: bytes) -> None:
    """Write ``data`` whole (local: temporary file and atomic rename; object storage: one PUT)."""
    if is_local_path(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            handle.write(data)


def append_manifest(location: Any, rows: Iterable[ManifestRow]) -> str:
    """
    Add ``rows`` to the manifest at ``location`` (written whole again, as :func:`write_manifest` does).

    :param location: a manifest :func:`write_manifest` wrote.
    :param rows: the lines to add.
    :returns: ``location`` as text.
    """
    path = storage_path(location, "manifest")
    with path.open("rb") as handle:
        before = handle.read()
    data = before + "".join(row.to_line() + "\n" for row in rows).encode("utf-8")
    _write(path, data)
    return str(path)


def read_manifest(location: Any) -> list[dict[str, Any]]:
    """The lines of a manifest, parsed (for tests, and users reading one back)."""
    path = storage_path(location, "manifest")
    with path.open("rb") as handle:
        return [json.loads(line) for line in handle.read().decode("utf-8").splitlines() if line.strip()]
