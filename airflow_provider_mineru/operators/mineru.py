"""
Operators that send documents to MinerU, wait (blocking or deferred), and land the results.

- :class:`MinerUSubmitTaskOperator`: one document URL.
- :class:`MinerUSubmitBatchOperator`: many URLs, split into batches of at most 200.
- :class:`MinerUUploadFilesOperator`: local or object-storage files, uploaded with bounded concurrency.
- :class:`MinerUDownloadResultsOperator`: refresh and download the results of any of the above.

Every submit records what it sent (see :mod:`airflow_provider_mineru.submission.store`) so a retry of the
Airflow task resumes waiting on the same MinerU task or batch instead of spending quota again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from airflow_provider_mineru.connection.form import DEFAULT_CONN_ID
from airflow_provider_mineru.exceptions import MinerUError, MinerUValidationError
from airflow_provider_mineru.operators.base import (
    DEFAULT_POLL_INTERVAL,
    DEFAULT_TIMEOUT,
    MinerUBaseOperator,
    MinerUHookMixin,
    chunks,
    shift_index,
)
from airflow_provider_mineru.results.xcom import parse_rendered_xcom, xcom_values
from airflow_provider_mineru.version_compat import BaseOperator
from airflow_provider_mineru.waiting.waits import TASK_WAIT, wait_of_xcom

if TYPE_CHECKING:
    from airflow_provider_mineru.ledger.run import LedgerInput
    from airflow_provider_mineru.ledger.sync import Listing
    from airflow_provider_mineru.submission.record import SentBatch, Submission, SubmittedInput
    from airflow_provider_mineru.version_compat import Context

# Every import inside a method below is made when a task runs, not at DAG-parse time: this module
# costs ~13 ms over ``import airflow.sdk``; the hook and the clients alone (requests, aiohttp) cost
# ~35 ms more, and the submission, inputs, finishing and lineage modules add to it.

__all__ = [
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_TIMEOUT",
    "MinerUBaseOperator",
    "MinerUDocumentsOperator",
    "MinerUDownloadResultsOperator",
    "MinerUSubmitBatchOperator",
    "MinerUSubmitTaskOperator",
    "MinerUUploadFilesOperator",
]


class MinerUSubmitTaskOperator(MinerUBaseOperator):
    """
    Parse one document URL with MinerU (``POST /extract/task``) and optionally wait and download it.

    Returns ``{"task_id", "data_id", "state", "full_zip_url", "err_msg", "output_path"}``.

    :param url: http(s) URL of the document (.pdf, .doc(x), .ppt(x), .png, .jp(e)g). Templated.
    :param data_id: your id for the document (1-128 of ``[A-Za-z0-9_.-]``); names the output folder.
    :param page_ranges: pages to parse: ``"2,4-6"``, ``"2--2"`` (2nd to next-to-last), ``"15-"``.

    Every parameter of the base class applies (``wait_for_completion``, ``deferrable``,
    ``output_path``, ``timeout``, parsing options…).
    """

    template_fields: Sequence[str] = (*MinerUBaseOperator.template_fields, "url", "data_id", "page_ranges")
    wait = TASK_WAIT

    def __init__(self, *, url: str, data_id: str | None = None, page_ranges: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.url = url
        self.data_id = data_id
        self.page_ranges = page_ranges

    def prepare(self) -> None:
        from airflow_provider_mineru.hooks.mineru import parse_options

        self.hook.client.task_body(
            self.url, parse_options(self.options()), data_id=self.data_id, page_ranges=self.page_ranges
        )

    def send_batch(self, indices: Sequence[int]) -> Iterator[SentBatch]:
        """Submit the one URL as a MinerU task (``indices`` is ``[0]``)."""
        from airflow_provider_mineru.submission.record import SentBatch

        task_id = self.hook.submit_task(self.url, data_id=self.data_id, page_ranges=self.page_ranges, **self.options())
        self.log.info("Submitted %s to MinerU as task %s", self.url, task_id)
        yield SentBatch(task_id, tuple(indices), {})

    def sources(self) -> list[str | None]:
        return [self.url]

    def describe_inputs(self) -> list[SubmittedInput]:
        from airflow_provider_mineru.submission.record import SubmittedInput, output_stem, url_fingerprint

        name = _url_name(self.url)
        per_file = {"data_id": self.data_id, "page_ranges": self.page_ranges}
        return [SubmittedInput(self.url, name, output_stem(name, self.data_id), url_fingerprint(self.url, per_file))]

    def ledger_inputs(self) -> list[LedgerInput]:
        """The one URL, as the ledger keys it (its validators come from a HEAD request)."""
        from airflow_provider_mineru.ledger.run import LedgerInput

        per_file = {"data_id": self.data_id, "page_ranges": self.page_ranges}
        return [LedgerInput(i.name, i.source, i.output_name, per_file) for i in self.describe_inputs()]

    def keep_inputs(self, indices: Sequence[int]) -> None:
        """The one URL is sent (the ledger calls this only when it is)."""


class MinerUSubmitBatchOperator(MinerUBaseOperator):
    """
    Parse many document URLs with MinerU (``POST /extract/task/batch``), 200 per API batch.

    Returns ``{"batch_ids": [...], "results": [...]}`` with one result per URL, in input order.

    :param urls: URLs, or dicts ``{"url", "is_ocr", "data_id", "page_ranges"}`` for per-file options.
        Templated; more than the connection's ``max_batch_files`` (200) are split into several batches.
    """

    template_fields: Sequence[str] = (*MinerUBaseOperator.template_fields, "urls")

    def __init__(self, *, urls: Sequence[str | dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.urls = urls

    def _files(self) -> list[Any]:
        if isinstance(self.urls, (str, dict)):
            return [self.urls]
        return list(self.urls)

    def prepare(self) -> None:
        from airflow_provider_mineru.hooks.mineru import parse_options

        files = self._files()
        if not files:
            raise MinerUValidationError("urls", self.urls, "needs at least one URL")
        limits = self.hook.config.limits
        options = parse_options(self.options())
        for offset, chunk in enumerate(chunks(files, limits.max_batch_files)):
            try:
                self.hook.client.batch_body(chunk, options, key="url", limits=limits)
            except MinerUValidationError as error:
                raise shift_index(error, offset * limits.max_batch_files, "urls") from None

    def input_count(self) -> int:
        return len(self._files())

    def send_batch(self, indices: Sequence[int]) -> Iterator[SentBatch]:
        """Send these URLs the way the connection's server batches them (one or more server-side batches)."""
        from airflow_provider_mineru.hooks.mineru import parse_options
        from airflow_provider_mineru.submission.record import SentBatch

        files = self._files()
        hook = self.hook
        sent = hook.client.send_url_batch(hook.transport, [files[i] for i in indices], parse_options(self.options()))
        for batch_id, held, failures in sent:
            self.log.info("Submitted %d URLs to MinerU as %s", len(held), batch_id)
            yield SentBatch(batch_id, tuple(indices[i] for i in held), failures)

    def sources(self) -> list[str | None]:
        sliced = self.__dict__.get("_sliced", {})  # long documents: a slice's source names its pages
        return [sliced.get(i) or (f if isinstance(f, str) else f.get("url")) for i, f in enumerate(self._files())]

    def describe_inputs(self) -> list[SubmittedInput]:
        from airflow_provider_mineru.submission.record import SubmittedInput, output_stem, url_fingerprint

        described = []
        sliced = self.__dict__.get("_sliced", {})
        for index, entry in enumerate(self._files()):
            url = entry if isinstance(entry, str) else str(entry.get("url"))
            per_file = {} if isinstance(entry, str) else {k: v for k, v in entry.items() if k != "url"}
            name = _url_name(url)
            described.append(
                SubmittedInput(
                    sliced.get(index, url),
                    name,
                    output_stem(name, per_file.get("data_id")),
                    url_fingerprint(url, per_file),
                )
            )
        return described

    def _replan_refused(self, context: Context, outcome: Any, store: Any) -> Submission | None:
        """URLs MinerU refused for their page count: sent again as ``page_ranges`` slices (``adapt``)."""
        from airflow_provider_mineru.long_documents.adapt import (
            carry_sent,
            replan_refused,
            slice_url_entries,
            url_page_count,
        )
        from airflow_provider_mineru.long_documents.plan import LearnedLimits
        from airflow_provider_mineru.submission.record import Identity

        limits = self.hook.config.limits  # what is learned is kept for the rest of the task
        learned = self.__dict__.setdefault("_learned", LearnedLimits(limits.max_pages, limits.max_batch_files))
        chosen = {f if isinstance(f, str) else f.get("url") for f in self._files()}
        chosen -= {f.get("url") for f in self._files() if isinstance(f, dict) and f.get("page_ranges")}

        def pages(url: str) -> int | None:
            return url_page_count(self.hook.transport, url, limits.max_file_bytes) if url in chosen else None

        replan = replan_refused(outcome.waited(), learned, pages)
        earlier = store.load_submission(Identity.from_context(context), self._record_key) if replan else None
        if replan is None or earlier is None:
            return None
        self.urls, self._sliced = slice_url_entries(self._files(), replan.plans)
        return carry_sent(earlier, self._current_submission(context), replan.refused)

    def ledger_inputs(self) -> list[LedgerInput]:
        """Every URL, as the ledger keys it (its validators come from a HEAD request)."""
        from airflow_provider_mineru.ledger.run import LedgerInput

        return [
            LedgerInput(i.name, i.source, i.output_name, {} if isinstance(f, str) else dict(f))
            for i, f in zip(self.describe_inputs(), self._files(), strict=True)
        ]

    def keep_inputs(self, indices: Sequence[int]) -> None:
        """Send only the URLs at ``indices`` (the ledger reuses the others' results)."""
        files = self._files()
        self.urls = [files[i] for i in indices]


class MinerUUploadFilesOperator(MinerUBaseOperator):
    """
    Upload local or object-storage files to MinerU and parse them (``POST /file-urls/batch`` + PUTs).

    Files are checked (type, size, page count of local PDFs, unique names) before anything is sent,
    then uploaded ``upload_concurrency`` at a time, each streamed in bounded memory. More files than
    the connection's ``max_batch_files`` (200) become several MinerU batches.

    Returns ``{"batch_ids": [...], "results": [...]}`` with one result per file, in input order.

    :param paths: local files, folders (searched recursively), globs (``docs/**/*.pdf``),
        ``s3://…`` URLs or ``ObjectStoragePath`` objects; or dicts ``{"path", "is_ocr", "data_id",
        "page_ranges"}`` for per-file options. Templated.
    :param upload_concurrency: files uploaded at once.
    :param follow_symlinks: upload files reached through a symbolic link that points outside the
        folder (or glob folder) being searched; by default such a link is refused before any request.
    :param split_long_documents: a local PDF over the connection's ``max_pages`` is split into
        ⌈pages / max_pages⌉ slices sent in the same batch(es) as the other files, and their results
        are stitched into one folder and one XCom row (with ``parts``) per file; False refuses such a
        file before any request. A PDF that cannot be split safely fails before any request.
    """

    template_fields: Sequence[str] = (*MinerUBaseOperator.template_fields, "paths")
    names_by_file = True

    def __init__(
        self,
        *,
        paths: Any,
        upload_concurrency: int = 8,
        follow_symlinks: bool = False,
        split_long_documents: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.paths = paths
        self.upload_concurrency = upload_concurrency
        self.follow_symlinks = follow_symlinks
        self.split_long_documents = split_long_documents

    @cached_property
    def _inputs(self) -> list[tuple[Any, dict[str, Any]]]:
        """Every input file, resolved and checked once per task instance (also after a deferral)."""
        return self._resolved()

    @cached_property
    def _documents(self) -> Any:
        """The inputs, with each long PDF split into slices (``long_documents.run``)."""
        from airflow_provider_mineru.long_documents.run import expand_long_documents

        return expand_long_documents(
            self._inputs, self.hook.config.limits.max_pages, split=self.split_long_documents, owner=self
        )

    @property
    def _sources(self) -> list[tuple[Any, dict[str, Any]]]:
        """Every document to send (a long PDF's slices in its place), once per task instance."""
        return self._documents.items

    def _resolved(self) -> list[tuple[Any, dict[str, Any]]]:
        """(source file, per-file options) for every document, in input order."""
        from airflow_provider_mineru.inputs.sources import resolve_sources

        items = self.paths if isinstance(self.paths, (list, tuple)) else [self.paths]
        limits = self.hook.config.limits
        resolved = []
        self._listed: list[tuple[Any, list[str]]] = []  # per item, what it listed (scoped sync)
        for index, item in enumerate(items):
            options: dict[str, Any] = {}
            if isinstance(item, dict):
                options = {k: v for k, v in item.items() if k != "path"}
                if "path" not in item:
                    raise MinerUValidationError(f"paths[{index}]", item, "a dict needs 'path'")
                item = item["path"]
            field = f"paths[{index}]" if isinstance(self.paths, (list, tuple)) else "paths"
            found = resolve_sources(
                item,
                limits,
                model_version=self.hook.client.extension_profile(self.model_version),
                field=field,
                page_ranges=options.get("page_ranges"),
                follow_symlinks=self.follow_symlinks,
                split_long_documents=self.split_long_documents,
            )
            resolved.extend((source, options) for source in found)
            self._listed.append((item, [source.location for source in found]))
        if not resolved:
            raise MinerUValidationError("paths", self.paths, "no supported document found")
        return resolved

    def _file_entries(self, resolved: Sequence[tuple[Any, dict[str, Any]]]) -> list[dict[str, Any]]:
        return [{"name": source.name, **options} for source, options in resolved]

    def prepare(self) -> None:
        from airflow_provider_mineru.hooks.mineru import parse_options

        if self.upload_concurrency < 1:
            raise MinerUValidationError("upload_concurrency", self.upload_concurrency, "must be 1 or more")
        seen: dict[str, str] = {}
        for source, _ in self._sources:  # MinerU reports results by file name: names must differ
            if source.name in seen:
                raise MinerUValidationError(
                    "paths", source.location, f"same file name as {seen[source.name]}; rename one of them"
                )
            seen[source.name] = source.location
        limits = self.hook.config.limits
        options = parse_options(self.options())
        for offset, chunk in enumerate(chunks(self._file_entries(self._sources), limits.max_batch_files)):
            try:
                self.hook.client.batch_body(chunk, options, key="name", limits=limits)
            except MinerUValidationError as error:
                raise shift_index(error, offset * limits.max_batch_files, "paths") from None

    def input_count(self) -> int:
        return len(self._sources)

    def send_batch(self, indices: Sequence[int]) -> Iterator[SentBatch]:
        """
        Send these files the connection's API client's way: on the cloud, upload URLs then PUTs
        (files whose URL had expired are sent once more in a new batch); with
        ``api_flavor="mineru-api"``, streamed multipart ``POST /v1/tasks`` requests.
        """
        from airflow_provider_mineru.clients.base import UploadFiles
        from airflow_provider_mineru.hooks.mineru import parse_options
        from airflow_provider_mineru.submission.record import SentBatch

        chosen = [self._sources[i] for i in indices]
        files = UploadFiles(self._file_entries(chosen), [source for source, _ in chosen], parse_options(self.options()))
        sent = self.hook.client.send_uploads(self.hook.transport, files, self._upload_all, self.log)
        for batch_id, held, failures in sent:
            yield SentBatch(batch_id, tuple(indices[i] for i in held), failures)

    def _upload_all(self, sources: Sequence[Any], urls: Sequence[str]) -> dict[str, Any]:
        """
        Upload ``upload_concurrency`` files at a time; return ``{file name: error}`` for those that failed.

        A file that cannot be read (vanished, ``PermissionError``: any ``OSError``) is a failure of
        that file only. Any other error stops the uploads not yet started and is raised: the batch
        is already recorded, so a retry uploads only what had not reached MinerU.
        """
        started = time.monotonic()
        failures: dict[str, Any] = {}
        with ThreadPoolExecutor(max_workers=min(self.upload_concurrency, len(sources))) as pool:
            pairs = zip(sources, urls, strict=True)
            futures = [pool.submit(self.hook.upload_file, url, source) for source, url in pairs]
            try:
                for source, future in zip(sources, futures, strict=True):
                    try:
                        future.result()
                    except MinerUError as error:
                        self.log.error("Upload of %s failed: %s", source.name, error)
                        failures[source.name] = error
                    except OSError as error:
                        self.log.error("Upload of %s failed: cannot read %s: %s", source.name, source.location, error)
                        failures[source.name] = MinerUError(f"cannot read {source.location}: {error}")
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        total = sum(s.size for s in sources)
        self.log.info(
            "Uploaded %d of %d files (%.1f MB) in %.1fs",
            len(sources) - len(failures),
            len(sources),
            total / 1e6,
            time.monotonic() - started,
        )
        return failures

    def sources(self) -> list[str | None]:
        return [self._documents.source_of(index) for index in range(len(self._sources))]

    def page_estimates(self, indices: Sequence[int]) -> list[int]:
        """Pages of each file for the daily budget: a PDF's page count, 1 for anything else."""
        from airflow_provider_mineru.account.run import estimate_source_pages

        return [estimate_source_pages(self._sources[i][0]) for i in indices]

    def _replan_refused(self, context: Context, outcome: Any, store: Any) -> Submission | None:
        """PDFs MinerU refused at a lower page limit than ``max_pages``: split smaller, sent again (``adapt``)."""
        from airflow_provider_mineru.long_documents.adapt import carry_sent, replan_refused
        from airflow_provider_mineru.long_documents.plan import LearnedLimits
        from airflow_provider_mineru.long_documents.run import count_source_pages, expand_long_documents
        from airflow_provider_mineru.submission.record import Identity

        if not self.split_long_documents:
            return None
        limits = self.hook.config.limits  # what is learned is kept for the rest of the task
        learned = self.__dict__.setdefault("_learned", LearnedLimits(limits.max_pages, limits.max_batch_files))
        inputs = {source.location: source for source, options in self._inputs if not options.get("page_ranges")}
        replan = replan_refused(
            outcome.waited(), learned, lambda at: count_source_pages(inputs[at]) if at in inputs else None
        )
        earlier = store.load_submission(Identity.from_context(context), self._record_key) if replan else None
        if replan is None or earlier is None:
            return None
        self._inputs = [(source, options) for source, options in self._inputs if source.location in replan.plans]
        self._documents = expand_long_documents(
            self._inputs, replan.pages_per_file, split=True, owner=self, plans=replan.plans
        )
        return carry_sent(earlier, self._current_submission(context), replan.refused)

    def _lineage_start_inputs(self) -> list[Any]:
        from airflow_provider_mineru.lineage import start_locations

        return list(start_locations(self.paths))

    def describe_inputs(self) -> list[SubmittedInput]:
        from airflow_provider_mineru.long_documents.run import describe_document

        return [describe_document(self._documents, index) for index in range(len(self._sources))]

    def ledger_inputs(self) -> list[LedgerInput]:
        """Every file, as the ledger keys it (by the sha256 of its bytes)."""
        from airflow_provider_mineru.ledger.run import LedgerInput
        from airflow_provider_mineru.submission.record import output_stem

        return [
            LedgerInput(source.name, source.location, output_stem(source.name, options.get("data_id")), options, source)
            for source, options in self._inputs
        ]

    def keep_inputs(self, indices: Sequence[int]) -> None:
        """Upload only the files at ``indices`` (the ledger reuses the others' results), with their slices."""
        kept = [self._inputs[i] for i in indices]
        self._documents = self._documents.keep({source.location for source, _ in kept})
        self._inputs = kept

    def ledger_listings(self) -> list[Listing]:
        """What each folder, prefix or glob of ``paths`` listed this run (a single file lists nothing)."""
        from airflow_provider_mineru.ledger.run import listings

        self._inputs  # noqa: B018 - resolving the paths records what each one listed
        return listings(self._listed)


class MinerUDownloadResultsOperator(MinerUHookMixin, BaseOperator):
    """
    Download and extract the results of earlier MinerU tasks or batches.

    Takes the XCom of any MinerU operator or sensor (also of a submit that did not wait, or a list
    of them from mapped tasks), asks MinerU for each document's current state, and extracts every
    ``done`` document into ``<output_path>/<data_id or file stem>/``. Returns the same shape with
    ``state`` refreshed and ``output_path`` filled in.

    :param results: the XCom value(s) to download: an ``XComArg`` (also of a mapped task), a list of
        them, or a template rendering one.
    :param output_path: local folder, ``s3://…`` URL or ``ObjectStoragePath``. Templated.
    :param fail_on_file_error: fail when a document is ``failed`` or not finished yet (after
        downloading the others).
    :param mineru_conn_id: the ``mineru`` connection.
    """

    template_fields: Sequence[str] = ("results", "output_path")

    def __init__(
        self,
        *,
        results: Any,
        output_path: Any,
        fail_on_file_error: bool = True,
        mineru_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.results = results
        self.output_path = output_path
        self.fail_on_file_error = fail_on_file_error
        self.mineru_conn_id = mineru_conn_id

    def execute(self, context: Context) -> Any:
        from airflow_provider_mineru.results.downloads import ResultDownloader
        from airflow_provider_mineru.waiting.finish import emit_asset_events, finish_wait

        values = xcom_values(self.results)
        single = isinstance(parse_rendered_xcom(self.results), dict)
        shaped, totals = [], {"documents": 0, "done": 0, "failed": 0, "pages": 0}
        try:
            for value in values:
                if not isinstance(value, dict) or not ("task_id" in value or "batch_ids" in value):
                    raise MinerUValidationError("results", value, "must be the XCom of a MinerU operator or sensor")
                wait = wait_of_xcom(value)
                waited = wait.refresh(self.hook, value)
                unfinished = [d for d in waited.documents if not d.is_terminal]
                if unfinished and self.fail_on_file_error:
                    raise MinerUError(
                        f"{len(unfinished)} documents are not finished yet: "
                        + "; ".join(d.describe() for d in unfinished[:10])
                    )
                downloader = ResultDownloader(self.hook, self.output_path, self.log)
                finished = finish_wait(wait, waited, downloader, fail_on_file_error=self.fail_on_file_error)
                if finished.error is not None:
                    context["ti"].xcom_push(key="return_value", value=finished.value)
                    raise finished.error
                shaped.append(finished.value)
                for key in totals:
                    totals[key] += finished.summary.get(key, 0)
                totals["output_path"] = finished.summary.get("output_path")
        finally:
            emit_asset_events(context, self.outlets, totals)
        self._lineage_value = shaped  # for get_openlineage_facets_on_complete
        return shaped[0] if single else shaped

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Outputs: each downloaded document's folder with its ``mineru`` facet (state, pages, ids)."""
        from airflow_provider_mineru.lineage import operator_lineage

        return operator_lineage([], getattr(self, "_lineage_value", None) or [])


def _url_name(url: str) -> str:
    """The last path component of a URL (what MinerU names the document), else the URL itself."""
    return urlparse(url).path.rstrip("/").rsplit("/", 1)[-1] or url


class MinerUDocumentsOperator(BaseOperator):
    """
    Turn downloaded MinerU results into per-page documents for embedding and RAG pipelines.

    Reads each result's ``*_content_list.json`` (reading-order blocks) and writes
    ``documents.jsonl`` beside its ``full.md``: one JSON line per page,
    ``{"text", "metadata": {"file_name", "data_id", "page_number", "block_types", "output_path",
    "source", "document_id"}}`` — the shape ``DocumentLoaderOperator`` of apache-airflow-providers-common-ai
    returns. ``document_id`` is stable across runs (a hash of the result's ledger key and the page:
    the same content and options give the same ids), so downstream upserts and deletes are exact;
    it is None for a result parsed with ``incremental=False`` or without ``output_path``.

    Returns the documents themselves when there are at most ``max_xcom_documents`` of them, else
    ``{"documents_paths": [...], "count": N}`` so large outputs stay out of XCom.

    :param results: the XCom of a MinerU operator, sensor or :class:`MinerUDownloadResultsOperator`
        that downloaded results (entries need ``output_path``). Templated.
    :param max_xcom_documents: most documents returned inline.
    """

    template_fields: Sequence[str] = ("results",)

    def __init__(self, *, results: Any, max_xcom_documents: int = 100, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.results = results
        self.max_xcom_documents = max_xcom_documents

    def execute(self, context: Context) -> Any:
        from airflow_provider_mineru.ledger.documents import document_id
        from airflow_provider_mineru.results.downloads import output_root
        from airflow_provider_mineru.results.rag_documents import (
            find_content_list,
            iter_result_entries,
            page_documents,
            write_jsonl,
        )

        documents: list[dict[str, Any]] = []
        paths: list[str] = []
        for entry in iter_result_entries(self.results):
            if not entry.get("output_path"):
                continue
            folder = output_root(entry["output_path"])
            content_list = find_content_list(folder)
            if content_list is None:
                self.log.warning("No *_content_list.json in %s; skipped", folder)
                continue
            with content_list.open("rb") as handle:
                blocks = json.load(handle)
            pages = page_documents(
                blocks, file_name=entry.get("file_name"), data_id=entry.get("data_id"), output_path=str(folder)
            )
            for page in pages:  # stable across runs: the ledger key of the result, and the page
                key = entry.get("ledger_key")
                page["metadata"]["document_id"] = document_id(key, page["metadata"]["page_number"]) if key else None
            target = folder / "documents.jsonl"
            write_jsonl(target, pages)
            paths.append(str(target))
            documents.extend(pages)
        self.log.info("Wrote %d page documents into %d documents.jsonl files", len(documents), len(paths))
        if len(documents) <= self.max_xcom_documents:
            return documents
        return {"documents_paths": paths, "count": len(documents)}
