"""
Documents to upload: local files or any Airflow object-storage path, with name and size known up front.

:func:`resolve_sources` expands what a DAG author writes (paths, globs, folders, ``s3://…`` URLs,
``ObjectStoragePath`` objects) into :class:`SourceFile` items, checking each against MinerU's limits
before any request is made: the type (by name, then by the file's first bytes:
:mod:`airflow_provider_mineru.inputs.file_types`), the size and, for local PDFs, the page count. The files a
folder or a glob held that are not documents MinerU takes are logged, never silently dropped.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from airflow_provider_mineru.connection.config import MinerULimits
from airflow_provider_mineru.exceptions import MinerUValidationError
from airflow_provider_mineru.inputs.file_types import HEAD_BYTES, check_head
from airflow_provider_mineru.inputs.validation import (
    allowed_extensions,
    count_pdf_pages,
    document_extension,
    validate_extension,
    validate_file_name,
    validate_file_size,
    validate_page_count,
)
from airflow_provider_mineru.utils.storage_paths import is_local_location, is_object_storage_path, local_path_text

log = logging.getLogger(__name__)

_GLOB_CHARS = frozenset("*?[")
#: Most skipped file names one log line lists (then "and N more").
SKIPPED_NAMES_SHOWN = 20


@dataclass(frozen=True)
class SourceFile:
    """
    One document to upload.

    :param location: a local path or an object-storage URL (``s3://bucket/key.pdf``).
    :param name: the file name MinerU sees (the last path component).
    :param size: size in bytes.
    :param mtime_ns: modification time of a local file when it was checked (None: not known); with
        ``size``, how :meth:`check_unchanged` notices a file that changed before or during its upload.
    """

    location: str
    name: str
    size: int
    mtime_ns: int | None = field(default=None, compare=False)

    @property
    def is_local(self) -> bool:
        """Whether the file is on local disk (see :mod:`airflow_provider_mineru.utils.storage_paths`)."""
        return is_local_location(self.location)

    @property
    def local_path(self) -> str | None:
        """The local path, or None for object storage."""
        return local_path_text(self.location) if self.is_local else None

    def open(self) -> IO[bytes]:
        """Open for streaming reads."""
        local = self.local_path
        if local is not None:
            return open(local, "rb")
        return _object_storage_path(self.location).open("rb")

    def check_unchanged(self, handle: IO[bytes], *, after_upload: bool = False) -> None:
        """
        Raise when the open local file is no longer the one checked: another size or modification time.

        :param handle: the file as opened by :meth:`open` (object-storage files are not checked here;
            their size is enforced while streaming).
        :param after_upload: the check after the upload (the error then says the upload is void).
        """
        if self.local_path is None or self.mtime_ns is None:
            return
        try:
            stat = os.fstat(handle.fileno())
        except (AttributeError, OSError, ValueError):
            return
        if stat.st_size == self.size and stat.st_mtime_ns == self.mtime_ns:
            return
        when = "while it was uploaded; the upload does not count" if after_upload else "after it was checked"
        raise MinerUValidationError(
            f"file {self.name} ({self.location})",
            f"{stat.st_size} bytes (checked: {self.size})",
            f"the file changed {when}; not reported uploaded",
        )

    def head(self, size: int = HEAD_BYTES) -> bytes:
        """
        The file's first ``size`` bytes (fewer when it is shorter): one bounded read, a ranged
        request on object storage.
        """
        local = self.local_path
        if local is not None:
            with open(local, "rb") as handle:
                return handle.read(size)
        return _read_object_head(_object_storage_path(self.location), size)

    def page_count(self) -> int | None:
        """Pages of a local PDF (bounded reads of its trailer and page tree), or None when unknown."""
        local = self.local_path
        if local is None or document_extension(self.name) != ".pdf":
            return None
        return count_pdf_pages(local)


def _object_storage_path(location: str) -> Any:
    # lazy: Airflow's ObjectStoragePath costs ~100 ms at DAG-parse time and is needed only for object storage
    from airflow_provider_mineru.version_compat import ObjectStoragePath

    return ObjectStoragePath(location)


def _read_object_head(path: Any, size: int) -> bytes:
    """The first ``size`` bytes of an object: ``fs.cat_file`` with a range, else a read of an open file."""
    fs, key = getattr(path, "fs", None), getattr(path, "path", None)
    if fs is not None and isinstance(key, str) and callable(getattr(fs, "cat_file", None)):
        try:
            return bytes(fs.cat_file(key, start=0, end=size))[:size]
        except (NotImplementedError, TypeError, ValueError, OSError):  # no ranged reads, or another key form
            pass
    with path.open("rb") as handle:
        return handle.read(size)


def _split_glob(path: Any) -> tuple[Any, str] | None:
    """``(folder, pattern)`` for an object-storage path with glob characters (``s3://b/in/**/*.pdf``), else None."""
    root, pattern = path, []
    while any(_GLOB_CHARS & set(part) for part in root.parts):
        pattern.insert(0, root.name)
        root = root.parent
    return (root, "/".join(pattern)) if pattern else None


def _stat_size(path: Any) -> int:
    try:
        return int(path.stat().st_size)
    except AttributeError:  # some fsspec stat results are dicts
        return int(path.stat()["size"])


def _local_source(path: Path, field: str) -> SourceFile:
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise MinerUValidationError(field, str(path), "no such file") from None
    except PermissionError:
        raise MinerUValidationError(field, str(path), "the file cannot be read (permission denied)") from None
    if not os.access(path, os.R_OK):
        raise MinerUValidationError(field, str(path), "the file cannot be read (permission denied)")
    return SourceFile(location=str(path), name=path.name, size=stat.st_size, mtime_ns=stat.st_mtime_ns)


def _inside(path: Path, root: Path, field: str, follow_symlinks: bool) -> Path:
    """
    ``path``, found under ``root``; refused when a symbolic link takes it outside ``root``.

    :param follow_symlinks: allow links that leave ``root`` (the operator's ``follow_symlinks``).
    """
    if follow_symlinks:
        return path
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if os.path.commonpath([real_root, real]) != real_root:
        raise MinerUValidationError(
            field,
            str(path),
            f"a symbolic link to {real}, outside {root}; not followed (pass follow_symlinks=True to allow it)",
        )
    return path


def _glob_root(pattern: str) -> Path:
    """The folder a glob pattern searches: its leading components without glob characters."""
    parts = Path(pattern).parts
    root: list[str] = []
    for part in parts:
        if _GLOB_CHARS & set(part):
            break
        root.append(part)
    return Path(*root) if root else Path(".")


def _is_document(name: str, model_version: str | None) -> bool:
    return document_extension(name) in allowed_extensions(model_version) and not name.startswith(".")


def _documents(files: list[Any], field: str, searched: str, model_version: str | None) -> list[Any]:
    """
    The files of a folder or a glob that MinerU takes; the others are logged (count and names), not dropped silently.

    :param files: every file found (``Path`` or ``ObjectStoragePath``), in order.
    :param searched: the folder or pattern, for the log line.
    """
    kept = [f for f in files if _is_document(f.name, model_version)]
    if len(kept) < len(files):
        skipped = [str(f.name) for f in files if not _is_document(f.name, model_version)]
        shown = ", ".join(skipped[:SKIPPED_NAMES_SHOWN])
        if len(skipped) > SKIPPED_NAMES_SHOWN:
            shown += f" and {len(skipped) - SKIPPED_NAMES_SHOWN} more"
        log.warning(
            "%s: skipped %d of %d files in %s, not documents MinerU takes (hidden, or not one of %s): %s",
            field,
            len(skipped),
            len(files),
            searched,
            " ".join(sorted(allowed_extensions(model_version))),
            shown,
        )
    return kept


def _expand_one(item: Any, field: str, model_version: str | None, follow_symlinks: bool = False) -> list[SourceFile]:
    if is_object_storage_path(item) or (isinstance(item, str) and not is_local_location(item)):
        path = item if is_object_storage_path(item) else _object_storage_path(item)
        # a fresh listing: fsspec keeps listings per process, and a second run in the same process
        # (dag.test, a long-lived worker) must see the objects added, changed or deleted since
        with contextlib.suppress(Exception):
            path.fs.invalidate_cache()
        split = _split_glob(path)
        if split is not None:
            root, pattern = split
            found = sorted((p for p in root.glob(pattern) if p.is_file()), key=str)
            matches = _documents(found, field, str(path), model_version)
            if not matches:
                raise MinerUValidationError(field, str(path), "the pattern matches no supported document")
            return [SourceFile(location=str(p), name=p.name, size=_stat_size(p)) for p in matches]
        if path.is_dir():
            children = sorted((p for p in path.rglob("*") if p.is_file()), key=str)
            return [
                SourceFile(location=str(p), name=p.name, size=_stat_size(p))
                for p in _documents(children, field, str(path), model_version)
            ]
        if not path.exists():
            raise MinerUValidationError(field, str(path), "no such object")
        return [SourceFile(location=str(path), name=path.name, size=_stat_size(path))]

    text = os.path.expanduser(local_path_text(os.fspath(item)))
    if _GLOB_CHARS & set(text):
        found = [Path(m) for m in sorted(glob.glob(text, recursive=True)) if Path(m).is_file()]
        files = _documents(found, field, text, model_version)
        if not files:
            raise MinerUValidationError(field, text, "the pattern matches no supported document")
        root = _glob_root(text)
        return [_local_source(_inside(p, root, field, follow_symlinks), field) for p in files]
    path = Path(text)
    if path.is_dir():
        children = [p for p in sorted(path.rglob("*")) if p.is_file()]
        return [
            _local_source(_inside(p, path, field, follow_symlinks), field)
            for p in _documents(children, field, str(path), model_version)
        ]
    return [_local_source(path, field)]


def resolve_sources(
    paths: Iterable[Any] | str | os.PathLike[str],
    limits: MinerULimits,
    *,
    model_version: str | None = None,
    field: str = "paths",
    page_ranges: str | None = None,
    follow_symlinks: bool = False,
    split_long_documents: bool = False,
) -> list[SourceFile]:
    """
    Expand ``paths`` into the documents to upload and check each one before anything is sent.

    Folders are searched recursively for supported documents and globs (``docs/**/*.pdf``) are
    expanded; the other files they hold are logged (a WARNING with their count and first names).
    Every document must have a supported extension, start with the bytes that extension promises
    (:mod:`airflow_provider_mineru.inputs.file_types`), be non-empty, within ``limits.max_file_bytes``
    and, for local PDFs, within ``limits.max_pages``.

    :param paths: one path or a list: local paths, globs, folders, URLs or ``ObjectStoragePath``.
    :param field: the argument name used in error messages; a list's items are named ``field[i]``.
    :param page_ranges: the pages that will be parsed; a long PDF passes if the selection is short.
    :param follow_symlinks: inside a folder or a glob's folder, use symbolic links that point
        outside it (by default they are refused). A file named explicitly is always used.
    :param split_long_documents: a local PDF over ``limits.max_pages`` is not refused (without
        ``page_ranges``): the operator splits it (:mod:`airflow_provider_mineru.long_documents.run`).
    :raises MinerUValidationError: naming the path and the rule it broke.
    """
    single = isinstance(paths, (str, os.PathLike)) or is_object_storage_path(paths)
    items = [paths] if single else list(paths)
    sources: list[SourceFile] = []
    for index, item in enumerate(items):
        item_field = field if single else f"{field}[{index}]"
        for source in _expand_one(item, item_field, model_version, follow_symlinks):
            where = f"{item_field} ({source.location})"
            validate_file_name(source.name, where)
            validate_extension(source.name, where, model_version)
            validate_file_size(source.size, limits, where)
            validate_file_type(source, where)
            if not split_long_documents or page_ranges:  # else a long PDF is split, not refused
                validate_page_count(source.page_count(), limits, where, page_ranges)
            sources.append(source)
    if not sources:
        raise MinerUValidationError(field, [str(p) for p in items], "no supported document found")
    return sources


def validate_file_type(source: SourceFile, field: str) -> None:
    """
    Refuse a file whose first bytes are not what its extension says (a ``.pdf`` that is HTML).

    One bounded read of :data:`~airflow_provider_mineru.inputs.file_types.HEAD_BYTES` bytes; the rules are
    in :mod:`airflow_provider_mineru.inputs.file_types`.
    """
    try:
        head = source.head()
    except OSError as error:
        raise MinerUValidationError(field, source.name, f"the file cannot be read: {error}") from None
    problem = check_head(document_extension(source.name), head)
    if problem:
        raise MinerUValidationError(field, source.name, problem)
