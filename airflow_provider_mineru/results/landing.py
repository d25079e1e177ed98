"""
Landing one document's result so that its folder holds exactly that result, complete, or what it held before.

On a local disk: extract into a temporary folder beside the target, write the completion marker
(:data:`MARKER_NAME`) after the last file, rename into place. On object storage (no folder
rename): remove the old marker, write in place, delete files of an older result, marker last. A
retry reads the marker (:func:`read_marker`) and skips a result that is already complete. The
extraction itself is :mod:`airflow_provider_mineru.utils.safe_zip`.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from airflow_provider_mineru.exceptions import MinerUResultError
from airflow_provider_mineru.utils.safe_zip import (
    DEFAULT_LIMITS,
    ExtractedResult,
    ZipLimits,
    extract_result_zip,
    remove_quietly,
    safe_member_path,
)
from airflow_provider_mineru.utils.storage_paths import is_local_path, join_relative, relative_key, storage_path

__all__ = ["MARKER_NAME", "completion_marker", "land_result", "land_result_zip", "read_marker"]

#: Written into a document's folder after its last file: the folder holds one complete result.
MARKER_NAME = ".mineru-complete.json"
_MARKER_VERSION = 1


def completion_marker(
    files: Sequence[str],
    identity: dict[str, Any],
    *,
    skipped: Sequence[Sequence[str]] = (),
    total_bytes: int = 0,
) -> dict[str, Any]:
    """
    The completion marker's content, as :func:`read_marker` reads it (for a folder written by another step,
    such as a split document's stitched result; callers may add keys of their own).

    :param files: every file of the result, relative POSIX paths.
    :param identity: what the result is of (compared by :func:`read_marker`).
    :param skipped: ``(member, reason)`` for zip members left out.
    :param total_bytes: the files' total size.
    """
    return {
        "version": _MARKER_VERSION,
        "identity": identity,
        "files": list(files),
        "skipped": [list(item) for item in skipped],
        "total_bytes": total_bytes,
    }


def _marker_dict(extracted: ExtractedResult, identity: dict[str, Any]) -> dict[str, Any]:
    return completion_marker(extracted.files, identity, skipped=extracted.skipped, total_bytes=extracted.total_bytes)


def _from_marker(data: Any, root: Any) -> ExtractedResult | None:
    if not isinstance(data, dict) or data.get("version") != _MARKER_VERSION:
        return None
    files = data.get("files")
    if not isinstance(files, list) or not all(isinstance(f, str) and safe_member_path(f) == f for f in files):
        return None
    skipped = tuple(
        (str(item[0]), str(item[1])) for item in data.get("skipped") or () if isinstance(item, list) and len(item) == 2
    )
    total = data.get("total_bytes")
    return ExtractedResult.of(str(root), tuple(files), skipped, total if isinstance(total, int) else 0)


def read_marker(target: Any, identity: dict[str, Any] | None = None) -> ExtractedResult | None:
    """
    The result already complete in ``target``, or None.

    Complete means: the folder has the marker :func:`land_result_zip` writes after the last file,
    the marker names the same ``identity`` (when one is given), and every file it lists exists.

    :param target: a document's folder (local or object storage).
    :param identity: what the result must be of, e.g. ``{"task_id": ..., "url": ...}``.
    """
    root = storage_path(target, "target")
    marker = root / MARKER_NAME
    try:
        with marker.open("rb") as handle:
            data = json.loads(handle.read(16 * 1024 * 1024))
    except (OSError, ValueError):
        return None
    except Exception:  # object-storage backends raise their own errors for a missing key
        return None
    if identity is not None and (not isinstance(data, dict) or data.get("identity") != identity):
        return None
    extracted = _from_marker(data, root)
    if extracted is None:
        return None
    try:
        if not all(join_relative(root, name).exists() for name in extracted.files):
            return None
    except Exception:
        return None
    return extracted


def _write_marker(root: Any, extracted: ExtractedResult, identity: dict[str, Any]) -> None:
    payload = json.dumps(_marker_dict(extracted, identity), separators=(",", ":")).encode()
    try:
        with (root / MARKER_NAME).open("wb") as handle:
            handle.write(payload)
    except OSError as exc:
        raise MinerUResultError(f"cannot write the completion marker in {root}: {exc}") from exc


def _land_local(
    extract: Callable[[Any], ExtractedResult], root: pathlib.Path, identity: dict[str, Any]
) -> ExtractedResult:
    parent = root.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MinerUResultError(f"cannot create folder {parent}: {exc}") from exc
    if root.exists() and not root.is_dir():
        raise MinerUResultError(f"target {root} exists and is not a directory")
    token = uuid.uuid4().hex[:12]
    staging = parent / f".{root.name}.partial-{token}"
    try:
        extracted = extract(staging)
        _write_marker(staging, extracted, identity)
        old = parent / f".{root.name}.old-{token}"
        try:
            if root.exists():
                os.rename(root, old)
            os.rename(staging, root)
        except OSError as exc:
            if old.exists() and not root.exists():
                os.rename(old, root)  # put the earlier result back
            raise MinerUResultError(f"cannot move the result into {root}: {exc}") from exc
        if old.exists():
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return replace(extracted, target=str(root))


def _land_object_storage(
    extract: Callable[[Any], ExtractedResult], root: Any, identity: dict[str, Any]
) -> ExtractedResult:
    marker = root / MARKER_NAME
    try:
        if marker.exists():
            marker.unlink()  # the folder is incomplete from here until the new marker
    except FileNotFoundError:
        pass
    extracted = extract(root)
    kept = set(extracted.files)
    try:
        stale = [p for p in root.rglob("*") if p.is_file() and relative_key(p, root) not in kept]
    except Exception:  # a backend without rglob: nothing to compare with
        stale = []
    for path in stale:
        if path.name != MARKER_NAME:
            remove_quietly(path)
    _write_marker(root, extracted, identity)
    return extracted


def land_result_zip(
    zip_file: Any, target: Any, *, limits: ZipLimits = DEFAULT_LIMITS, identity: dict[str, Any] | None = None
) -> ExtractedResult:
    """
    Extract a result zip so that ``target`` holds exactly that result, complete, or what it held before.

    On a local disk the zip is extracted into a temporary folder beside ``target``, the
    completion marker (:data:`MARKER_NAME`) is written after the last file, and the folder is
    renamed into place (an earlier ``target`` is moved aside first, then removed): a reader never
    sees half a result and no file of an older result stays mixed in. Object storage has no
    rename of folders: the old marker is removed first, the members are written in place, files
    of an older result that the new one does not have are deleted, and the marker comes last, so
    a folder with a marker is complete.

    :param zip_file: a local path or a seekable binary file object.
    :param target: the document's folder (local path, URL string or path object); replaced.
    :param limits: size and count limits; see :class:`ZipLimits`.
    :param identity: written into the marker, compared by :func:`read_marker` on a retry.
    """
    return land_result(lambda dest: extract_result_zip(zip_file, dest, limits=limits), target, identity=identity)


def land_result(
    extract: Callable[[Any], ExtractedResult], target: Any, *, identity: dict[str, Any] | None = None
) -> ExtractedResult:
    """
    :func:`land_result_zip` for any extraction: ``extract(folder)`` fills ``folder`` and returns what it wrote.

    Used when the result is not one zip to extract as it is (a self-hosted server's zip, re-laid
    into the cloud's layout by its client).

    :param extract: called with the temporary folder (local) or ``target`` itself (object storage).
    :param target: the document's folder; replaced.
    :param identity: written into the marker.
    """
    root = storage_path(target, "target")
    identity = dict(identity or {})
    if is_local_path(root):
        return _land_local(extract, root, identity)
    return _land_object_storage(extract, root, identity)
