"""
Downloading results: every ``done`` document's zip, ``download_concurrency`` at a time, landed
atomically into ``<output_path>/<data_id or file stem>/`` (see :mod:`airflow_provider_mineru.results.landing`).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlparse

from airflow_provider_mineru.connection.form import DEFAULT_DOWNLOAD_CONCURRENCY
from airflow_provider_mineru.exceptions import MinerUError, MinerUResultError
from airflow_provider_mineru.models import DocumentResult, MinerUState
from airflow_provider_mineru.results.landing import read_marker
from airflow_provider_mineru.utils.storage_paths import safe_name, storage_path


def output_root(output_path: Any) -> Any:
    """A local ``Path`` for a plain path, an ``ObjectStoragePath`` for ``s3://…`` and the like."""
    return storage_path(output_path)


def document_stem(document: DocumentResult, source: str | None = None) -> str:
    """The folder name for a document: its ``data_id``, else the stem of its file name or URL, else its id."""
    candidates = [document.data_id]
    for name in (document.file_name, source):
        if name:
            path = urlparse(name).path if "://" in name else name
            candidates.append(os.path.splitext(os.path.basename(path.rstrip("/")))[0])
    candidates.append(document.task_id)
    for candidate in candidates:
        cleaned = safe_name(candidate or "", len(candidate or "")).strip("._")
        if cleaned:
            return cleaned[:120]
    return "document"


class ResultDownloader:
    """
    Download and safely extract ``done`` documents into ``output_path/<name>/``, names made unique.

    :meth:`download_all` runs up to ``concurrency`` downloads at once (default: the connection's
    ``download_concurrency``, 16). Each document lands atomically (see
    :func:`~airflow_provider_mineru.results.landing.land_result_zip`) with a completion marker, and a
    folder that already holds the complete result of the same MinerU task is not downloaded again
    (a retry after a partly finished download fetches only what is missing).

    :param hook: a :class:`~airflow_provider_mineru.hooks.mineru.MinerUHook`.
    :param output_path: a local folder or any object-storage path.
    :param log: where progress is logged.
    :param concurrency: downloads at once; None for the connection's ``download_concurrency``.
    """

    def __init__(self, hook: Any, output_path: Any, log: Any, *, concurrency: int | None = None) -> None:
        self.hook = hook
        self.root = output_root(output_path)
        self.log = log
        self.concurrency = concurrency
        self._used: set[str] = set()
        self._lock = threading.Lock()
        #: Pages parsed, counted from each downloaded ``*_content_list.json``.
        self.pages = 0
        #: Documents found complete from an earlier try and not downloaded again.
        self.resumed = 0

    def unique_folder(self, stem: str) -> Any:
        """``<output_path>/<stem>``, unique among this downloader's folders (``stem-2``…); None without output_path."""
        return None if self.root is None else self.root / self._unique(stem)

    def _unique(self, stem: str) -> str:
        name, counter = stem, 2
        while name in self._used:
            name = f"{stem}-{counter}"
            counter += 1
        self._used.add(name)
        return name

    def target_for(self, document: DocumentResult, source: str | None) -> Any:
        """The folder a ``done`` document lands in (its name made unique), or None when it is not downloaded."""
        if self.root is None or document.state is not MinerUState.DONE or not document.full_zip_url:
            return None
        return self.root / self._unique(document_stem(document, source))

    def download_all(
        self, documents: Sequence[DocumentResult], sources: Sequence[str | None] | None = None
    ) -> list[str | None]:
        """
        Download every ``done`` document, ``concurrency`` at a time; return where each landed, in order.

        Every download is let finish before an error is raised, so that a retry finds all the
        others complete. One failure is raised as it is; several as one
        :class:`~airflow_provider_mineru.exceptions.MinerUResultError` naming each document.
        """
        targets = [
            self.target_for(doc, sources[i] if sources and i < len(sources) else None)
            for i, doc in enumerate(documents)
        ]
        return self.land_all(documents, targets)

    def land_all(self, documents: Sequence[DocumentResult], targets: Sequence[Any]) -> list[str | None]:
        """
        :meth:`download_all` into folders chosen by the caller: ``targets[i]`` (None: not downloaded).

        :param documents: the documents, in order.
        :param targets: per document, its folder (a split input's slices land under its ``parts/``).
        """
        jobs = [i for i, target in enumerate(targets) if target is not None]
        outputs: list[str | None] = [None] * len(documents)
        if not jobs:
            return outputs
        workers = self.concurrency or _download_concurrency(self.hook)
        errors: list[tuple[DocumentResult, BaseException]] = []
        if workers <= 1 or len(jobs) == 1:
            for i in jobs:
                try:
                    outputs[i] = self._land(documents[i], targets[i])
                except Exception as exc:
                    errors.append((documents[i], exc))
        else:
            with ThreadPoolExecutor(max_workers=min(workers, len(jobs)), thread_name_prefix="mineru-download") as pool:
                futures = {i: pool.submit(self._land, documents[i], targets[i]) for i in jobs}
                for i, future in futures.items():
                    try:
                        outputs[i] = future.result()
                    except Exception as exc:
                        errors.append((documents[i], exc))
        if self.resumed:
            self.log.info("%d of %d results were already complete from an earlier try", self.resumed, len(jobs))
        if len(errors) == 1:
            raise errors[0][1]
        if errors:
            listed = "; ".join(f"{doc.name}: {exc}" for doc, exc in errors[:20])
            more = f" (and {len(errors) - 20} more)" if len(errors) > 20 else ""
            raise MinerUResultError(
                f"{len(errors)} of {len(jobs)} results could not be downloaded: {listed}{more}"
            ) from errors[0][1]
        return outputs

    def _land(self, document: DocumentResult, target: Any) -> str:
        identity = {"task_id": document.task_id, "url": document.full_zip_url.split("?", 1)[0]}
        extracted = read_marker(target, identity)
        if extracted is not None:
            with self._lock:
                self.resumed += 1
            self.log.info("MinerU result of %s is already complete in %s; not downloaded again", document.name, target)
        else:
            extracted = self._fetch(document, target, identity)
            self.log.info(
                "Saved the result of %s in %s (%d files; Markdown: %s)",
                document.name,
                target,
                len(extracted.files),
                extracted.markdown or "none",
            )
        if extracted.content_list:
            pages = count_pages(target / extracted.content_list)
            with self._lock:
                self.pages += pages
        return str(target)

    def _fetch(self, document: DocumentResult, target: Any, identity: dict[str, Any]) -> Any:
        """Download and land one result the connection's API client's way; every error names the document."""
        try:
            return self.hook.client.land_download(self.hook.transport, document.full_zip_url or "", target, identity)
        except MinerUError as exc:
            raise _named(exc, document) from exc.__cause__
        except Exception as exc:  # OSError, NotADirectoryError, an object-storage backend's own errors
            raise MinerUResultError(
                f"result of {document.name} could not be saved to {target}: {type(exc).__name__}: {exc}"
            ) from exc


def _download_concurrency(hook: Any) -> int:
    try:
        return int(hook.config.limits.download_concurrency)
    except (AttributeError, TypeError, ValueError):
        return DEFAULT_DOWNLOAD_CONCURRENCY


def _named(error: MinerUError, document: DocumentResult) -> MinerUError:
    """``error`` with the document's name in front of its message (same class, same fields)."""
    prefix = f"result of {document.name}: "
    if not error.message.startswith(prefix):
        error.message = prefix + error.message
        error.args = (error._format(),)
    return error


def count_pages(content_list_path: Any) -> int:
    """Distinct ``page_idx`` values in a ``*_content_list.json`` (0 when it cannot be read)."""
    try:
        with content_list_path.open("rb") as handle:
            blocks = json.load(handle)
        return len({b.get("page_idx") for b in blocks if isinstance(b, dict) and b.get("page_idx") is not None})
    except (OSError, ValueError, TypeError):
        return 0
