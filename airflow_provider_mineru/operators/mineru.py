"""
Operators that send documents to MinerU, wait (blocking or deferred), and land the results.

- :class:`MinerUSubmitTaskOperator`: one document URL.
- :class:`MinerUSubmitBatchOperator`: many URLs, split into batches of at most 200.
- :class:`MinerUUploadFilesOperator`: local or object-storage files, uploaded with bounded concurrency.
- :class:`MinerUDownloadResultsOperator`: refresh and download the results of any of the above.

Every submit records what it sent (see :mod:`airflow_provider_mineru.resume`) so a retry of the
Airflow task resumes waiting on the same MinerU task or batch instead of spending quota again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_mineru.connection_fields import DEFAULT_CONN_ID
from airflow_provider_mineru.exceptions import (
    MinerUError,
    MinerUNotFoundError,
    MinerUUploadURLExpiredError,
    MinerUValidationError,
)
from airflow_provider_mineru.models import MinerUState
from airflow_provider_mineru.polling import min_defer_default
from airflow_provider_mineru.version_compat import AirflowFailException, BaseOperator, conf

if TYPE_CHECKING:
    from airflow_provider_mineru.hooks.mineru import MinerUHook
    from airflow_provider_mineru.models import DocumentResult
    from airflow_provider_mineru.polling import MinerUPoller
    from airflow_provider_mineru.version_compat import Context

#: Default wait before giving up on MinerU (a large batch can take hours).
DEFAULT_TIMEOUT = timedelta(hours=6)
DEFAULT_POLL_INTERVAL = 10.0
OPTION_NAMES = (
    "is_ocr",
    "enable_formula",
    "enable_table",
    "language",
    "callback",
    "seed",
    "extra_formats",
    "model_version",
    "no_cache",
    "cache_tolerance",
    "tier",
)


def _seconds(value: float | timedelta | None) -> float:
    if value is None:
        return DEFAULT_TIMEOUT.total_seconds()
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class _MinerUParseOperator(BaseOperator):
    """
    Shared by the submit operators: parsing options, waiting, resuming, results.

    :param mineru_conn_id: the ``mineru`` Airflow connection (base URL + token).
    :param wait_for_completion: wait until every document is ``done`` or ``failed``; when False,
        return right after submitting (use a sensor or :class:`MinerUDownloadResultsOperator` later).
    :param deferrable: wait in the triggerer instead of holding a worker slot (default:
        ``[operators] default_deferrable``).
    :param poll_interval: seconds between state checks.
    :param min_defer_seconds: in deferrable mode, the least time between deferring and resuming
        (default ``[mineru] min_defer_seconds``, 10 s), even when MinerU finishes sooner: Airflow 3
        can fail a task resumed within seconds of its deferral (apache/airflow#66374, #71580,
        #72716).
    :param timeout: how long to wait (seconds or ``timedelta``, default 6 h); the error then says how
        far each document got.
    :param output_path: folder (local path, ``s3://…`` or ``ObjectStoragePath``) where each ``done``
        document's result zip is extracted into ``<output_path>/<data_id or file stem>/``.
    :param fail_on_file_error: fail the Airflow task when any document failed (after saving and
        pushing the others' results); False succeeds with the partial result (the XCom lists each
        failed document with its ``err_msg``).
    :param is_ocr: force OCR (default false).
    :param enable_formula: recognise formulas (default true).
    :param enable_table: recognise tables (default true).
    :param language: document language, a PaddleOCR code (default ``ch``).
    :param callback: URL MinerU POSTs each result to (needs ``seed``).
    :param seed: 1-64 of ``[A-Za-z0-9_]``, signs callbacks.
    :param extra_formats: also export ``docx``, ``html`` and/or ``latex``.
    :param model_version: ``pipeline`` (default), ``vlm`` or ``MinerU-HTML``.
    :param no_cache: bypass MinerU's cache of fetched URLs.
    :param cache_tolerance: seconds a cached fetch stays valid (default 900).
    :param tier: ``flash``, ``basic``, ``standard`` or ``advanced``: the quality tier of a self-hosted
        ``mineru-api`` server (connection ``api_flavor="mineru-api"``; an error on the cloud).
    """

    template_fields: Sequence[str] = ("output_path", "language", "callback", "seed", "model_version", "tier")
    ui_color = "#e8f0fe"
    kind = "batch"

    def __init__(
        self,
        *,
        mineru_conn_id: str = DEFAULT_CONN_ID,
        wait_for_completion: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        min_defer_seconds: float | None = None,
        timeout: float | timedelta | None = DEFAULT_TIMEOUT,
        output_path: Any = None,
        fail_on_file_error: bool = True,
        is_ocr: bool | None = None,
        enable_formula: bool | None = None,
        enable_table: bool | None = None,
        language: str | None = None,
        callback: str | None = None,
        seed: str | None = None,
        extra_formats: Sequence[str] | None = None,
        model_version: str | None = None,
        no_cache: bool | None = None,
        cache_tolerance: int | None = None,
        tier: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.mineru_conn_id = mineru_conn_id
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.min_defer_seconds = min_defer_default() if min_defer_seconds is None else float(min_defer_seconds)
        self.timeout = timeout
        self.output_path = output_path
        self.fail_on_file_error = fail_on_file_error
        self.is_ocr = is_ocr
        self.enable_formula = enable_formula
        self.enable_table = enable_table
        self.language = language
        self.callback = callback
        self.seed = seed
        self.extra_formats = extra_formats
        self.model_version = model_version
        self.no_cache = no_cache
        self.cache_tolerance = cache_tolerance
        self.tier = tier

    @cached_property
    def hook(self) -> MinerUHook:
        from airflow_provider_mineru.hooks.mineru import MinerUHook

        return MinerUHook(mineru_conn_id=self.mineru_conn_id)

    def options(self) -> dict[str, Any]:
        """The parsing options that are set, as hook keyword arguments."""
        return {name: getattr(self, name) for name in OPTION_NAMES if getattr(self, name) is not None}

    # -- to implement per operator ---------------------------------------------------------------

    def prepare(self) -> None:
        """Validate every input and build request bodies; raise before any request is sent."""

    def input_count(self) -> int:
        """How many documents the operator was given (after expanding folders and globs)."""
        return 1

    def submit_task(self) -> str:
        """Send the one document of a task operator; return the MinerU task id."""
        raise NotImplementedError

    def send_batch(self, indices: Sequence[int]) -> Iterator[tuple[str, Sequence[int], dict[str, str]]]:
        """
        Send the input documents at ``indices`` (at most one MinerU batch) to MinerU.

        Yields ``(batch_id, the indices it holds in order, {file name: error} for files that never
        reached MinerU)``; usually once, twice when expired upload URLs had to be requested again.
        """
        raise NotImplementedError

    def sources(self) -> list[str | None]:
        """Per document, the URL or path it came from (for output folder names)."""
        return []

    # -- the flow --------------------------------------------------------------------------------

    def _fetch(self, item_id: str) -> Any:
        return self.hook.get_task(item_id) if self.kind == "task" else self.hook.get_batch(item_id)

    def _submit_inputs(self, store: Any, record: dict[str, Any], indices: Sequence[int]) -> None:
        """Send the inputs at ``indices`` in batches of ``max_batch_files``; record each batch as it is made."""
        for chunk in _chunks(list(indices), self.hook.config.limits.max_batch_files):
            for batch_id, held, failures in self.send_batch(chunk):
                position = len(record["ids"])
                record["ids"].append(batch_id)
                record["expected_files"].append(len(held))
                for offset, index in enumerate(held):
                    record["slots"][index] = [position, offset]
                if failures:
                    record["failed_files"][batch_id] = failures
                store.save(record)
                self.log.info("MinerU batch %s holds %d documents", batch_id, len(held))

    def _submit(self, store: Any) -> dict[str, Any]:
        """A fresh submission of every input; the record is saved after each MinerU batch."""
        if self.kind == "task":
            return {"ids": [self.submit_task()]}
        record: dict[str, Any] = {"ids": [], "expected_files": [], "failed_files": {}}
        record["slots"] = [None] * self.input_count()
        self._submit_inputs(store, record, range(self.input_count()))
        return record

    def _resume(self, store: Any, record: dict[str, Any] | None) -> dict[str, Any] | None:
        """
        Continue an earlier try's submission: resume waiting on what MinerU still has, and send
        again only the documents that failed or were never sent. None: submit everything anew
        (no record, changed inputs, or MinerU no longer knows an id). Any other error while
        checking is raised: the next retry checks again rather than paying twice.
        """
        if not record or not record.get("ids"):
            return None
        poller = self._poller(record)
        for item_id in poller.ids:
            try:
                poller.record(item_id, self._fetch(item_id))
            except MinerUNotFoundError as error:  # MinerU lost it: only then is paying again right
                self.log.warning("Cannot resume the earlier submission (%s); submitting again.", error)
                return None
        if self.kind == "task":
            if poller.documents() and poller.documents()[0].state is MinerUState.FAILED:
                self.log.info("The earlier try's MinerU task failed; submitting again.")
                return None
            return record
        slots = record.get("slots") or []
        if len(slots) != self.input_count():
            self.log.warning("The inputs changed since the earlier try; submitting again.")
            return None
        again = [
            index
            for index, slot in enumerate(slots)
            if slot is None or _document_at(poller, slot) is MinerUState.FAILED
        ]
        if again:
            self.log.info(
                "Sending again %d of %d documents (failed or never sent); the rest resume.", len(again), len(slots)
            )
            self._submit_inputs(store, record, again)
        return record

    def execute(self, context: Context) -> Any:
        from airflow_provider_mineru.resume import SubmissionStore

        self.prepare()  # every validation error is raised here, before any request
        store = SubmissionStore(context)
        record = self._resume(store, store.load())
        if record is not None:
            self.log.info("Resuming the MinerU %s submitted by an earlier try: %s", self.kind, record["ids"])
        else:
            record = self._submit(store)
            store.save(record)
            self.log.info(
                "Recorded MinerU %s ids %s in the %s: a retry resumes them", self.kind, record["ids"], store.backend
            )
        context["ti"].xcom_push(key=f"mineru_{self.kind}_ids", value=record["ids"])

        poller = self._poller(record)
        end_time = time.time() + _seconds(self.timeout)
        if not self.wait_for_completion:
            snapshot = self._snapshot(poller)
            store.clear()
            return snapshot
        if self.deferrable:
            from airflow_provider_mineru.polling import poll_once

            outcome = poll_once(poller, self._fetch, end_time=end_time, log=self.log)
            if outcome is None:
                self.defer(trigger=self._trigger(record, end_time), method_name="execute_complete")
        else:
            from airflow_provider_mineru.polling import wait_blocking

            outcome = wait_blocking(
                poller, self._fetch, poll_interval=self.poll_interval, end_time=end_time, log=self.log
            )
        return self._finish(context, outcome, record)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Resume after the trigger fired: same checks and results as the blocking path."""
        return self._finish(context, event, {"ids": (event or {}).get("ids") or []})

    def _poller(self, record: dict[str, Any]) -> MinerUPoller:
        from airflow_provider_mineru.polling import MinerUPoller

        return MinerUPoller(
            kind=self.kind,
            ids=record["ids"],
            expected_files=record.get("expected_files"),
            failed_files=record.get("failed_files"),
            slots=record.get("slots"),
        )

    def _trigger(self, record: dict[str, Any], end_time: float) -> Any:
        from airflow_provider_mineru.triggers.mineru import MinerUBatchTrigger, MinerUTaskTrigger

        if self.kind == "task":
            return MinerUTaskTrigger(
                mineru_task_id=record["ids"][0],
                end_time=end_time,
                mineru_conn_id=self.mineru_conn_id,
                poll_interval=self.poll_interval,
                first_poll_delay=self.poll_interval,
                not_before=time.time() + self.min_defer_seconds,
            )
        return MinerUBatchTrigger(
            batch_ids=record["ids"],
            expected_files=record.get("expected_files"),
            failed_files=record.get("failed_files"),
            slots=record.get("slots"),
            end_time=end_time,
            mineru_conn_id=self.mineru_conn_id,
            poll_interval=self.poll_interval,
            first_poll_delay=self.poll_interval,
            not_before=time.time() + self.min_defer_seconds,
        )

    def _snapshot(self, poller: MinerUPoller) -> dict[str, Any]:
        """The XCom of a submit that does not wait: ids and each document's state right after submitting."""
        from airflow_provider_mineru.outcome import batch_entry, task_xcom

        for item_id in poller.ids:
            poller.record(item_id, self._fetch(item_id))
        if self.kind == "task":
            return task_xcom(poller.documents()[0], None, self.sources()[0])
        results = [batch_entry(document, None, batch_id) for batch_id, document in poller.located()]
        return {"batch_ids": list(poller.ids), "results": results}

    def _finish(self, context: Context, event: dict[str, Any] | None, record: dict[str, Any]) -> Any:
        """
        Download, push and check the results; then forget the submission record.

        The record is kept while a retry can still help (a download or a document failed and
        retries remain), so that retry resumes instead of paying again; it is cleared on success
        and on the last try.
        """
        from airflow_provider_mineru.outcome import finish_in_task
        from airflow_provider_mineru.resume import SubmissionStore

        store = SubmissionStore(context)
        try:
            value = finish_in_task(
                context,
                self.outlets,
                event=event,
                ids=record["ids"],
                kind=self.kind,
                sources=self.sources(),
                hook=self.hook,
                output_path=self.output_path,
                fail_on_file_error=self.fail_on_file_error,
                log=self.log,
            )
        except Exception as error:
            ti = context.get("ti")
            last_try = ti is None or getattr(ti, "try_number", 1) > (self.retries or 0)
            if last_try or isinstance(error, AirflowFailException):  # no retry will read the record
                store.clear()
            raise
        store.clear()
        return value


class MinerUSubmitTaskOperator(_MinerUParseOperator):
    """
    Parse one document URL with MinerU (``POST /extract/task``) and optionally wait and download it.

    Returns ``{"task_id", "data_id", "state", "full_zip_url", "err_msg", "output_path"}``.

    :param url: http(s) URL of the document (.pdf, .doc(x), .ppt(x), .png, .jp(e)g). Templated.
    :param data_id: your id for the document (1-128 of ``[A-Za-z0-9_.-]``); names the output folder.
    :param page_ranges: pages to parse: ``"2,4-6"``, ``"2--2"`` (2nd to next-to-last), ``"15-"``.

    Every parameter of the base class applies (``wait_for_completion``, ``deferrable``,
    ``output_path``, ``timeout``, parsing options…).
    """

    template_fields: Sequence[str] = (*_MinerUParseOperator.template_fields, "url", "data_id", "page_ranges")
    kind = "task"

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

    def submit_task(self) -> str:
        task_id = self.hook.submit_task(self.url, data_id=self.data_id, page_ranges=self.page_ranges, **self.options())
        self.log.info("Submitted %s to MinerU as task %s", self.url, task_id)
        return task_id

    def sources(self) -> list[str | None]:
        return [self.url]


class MinerUSubmitBatchOperator(_MinerUParseOperator):
    """
    Parse many document URLs with MinerU (``POST /extract/task/batch``), 200 per API batch.

    Returns ``{"batch_ids": [...], "results": [...]}`` with one result per URL, in input order.

    :param urls: URLs, or dicts ``{"url", "is_ocr", "data_id", "page_ranges"}`` for per-file options.
        Templated; more than the connection's ``max_batch_files`` (200) are split into several batches.
    """

    template_fields: Sequence[str] = (*_MinerUParseOperator.template_fields, "urls")
    kind = "batch"

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
        for offset, chunk in enumerate(_chunks(files, limits.max_batch_files)):
            try:
                self.hook.client.batch_body(chunk, options, key="url", limits=limits)
            except MinerUValidationError as error:
                raise _shift_index(error, offset * limits.max_batch_files, "urls") from None

    def input_count(self) -> int:
        return len(self._files())

    def send_batch(self, indices: Sequence[int]) -> Iterator[tuple[str, Sequence[int], dict[str, str]]]:
        files = self._files()
        if self.hook.client.owns_transport:  # api_flavor mineru-api: one V1 task per ocr_mode, 100 files each
            from airflow_provider_mineru.hooks.mineru import parse_options

            chosen = [files[i] for i in indices]
            for task_id, held in self.hook.client.submit_url_batch(self.hook, chosen, parse_options(self.options())):
                self.log.info("Submitted %d URLs to mineru-api as task %s", len(held), task_id)
                yield task_id, [indices[i] for i in held], {}
            return
        batch_id = self.hook.submit_batch([files[i] for i in indices], **self.options())
        self.log.info("Submitted %d URLs to MinerU as batch %s", len(indices), batch_id)
        yield batch_id, indices, {}

    def sources(self) -> list[str | None]:
        return [f if isinstance(f, str) else f.get("url") for f in self._files()]


class MinerUUploadFilesOperator(_MinerUParseOperator):
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
    """

    template_fields: Sequence[str] = (*_MinerUParseOperator.template_fields, "paths")
    kind = "batch"

    def __init__(
        self, *, paths: Any, upload_concurrency: int = 8, follow_symlinks: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.paths = paths
        self.upload_concurrency = upload_concurrency
        self.follow_symlinks = follow_symlinks

    @cached_property
    def _sources(self) -> list[tuple[Any, dict[str, Any]]]:
        """Every input file, resolved and checked once per task instance (also after a deferral)."""
        return self._resolved()

    def _resolved(self) -> list[tuple[Any, dict[str, Any]]]:
        """(source file, per-file options) for every document, in input order."""
        from airflow_provider_mineru.sources import resolve_sources

        items = self.paths if isinstance(self.paths, (list, tuple)) else [self.paths]
        limits = self.hook.config.limits
        resolved = []
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
            )
            resolved.extend((source, options) for source in found)
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
        for offset, chunk in enumerate(_chunks(self._file_entries(self._sources), limits.max_batch_files)):
            try:
                self.hook.client.batch_body(chunk, options, key="name", limits=limits)
            except MinerUValidationError as error:
                raise _shift_index(error, offset * limits.max_batch_files, "paths") from None

    def input_count(self) -> int:
        return len(self._sources)

    def send_batch(self, indices: Sequence[int]) -> Iterator[tuple[str, Sequence[int], dict[str, str]]]:
        """
        Request upload URLs for these files and upload them; files whose URL had expired before the
        upload are sent once more in a new batch (their entry in the first batch counts as failed).
        With ``api_flavor="mineru-api"`` the files are streamed in multipart ``POST /v1/tasks``
        requests instead (one V1 task per ``is_ocr``/``page_ranges`` combination, 100 files each).
        """
        if self.hook.client.owns_transport:
            from airflow_provider_mineru.hooks.mineru import parse_options

            chosen = [self._sources[i] for i in indices]
            submitted = self.hook.client.submit_uploads(
                self.hook, self._file_entries(chosen), [source for source, _ in chosen], parse_options(self.options())
            )
            for task_id, held in submitted:
                self.log.info("Uploaded %d files to mineru-api as task %s", len(held), task_id)
                yield task_id, [indices[i] for i in held], {}
            return
        grant = self.hook.request_upload_urls(self._file_entries([self._sources[i] for i in indices]), **self.options())
        self.log.info("MinerU batch %s: uploading %d files", grant.batch_id, len(indices))
        failures = self._upload_all([self._sources[i][0] for i in indices], grant.file_urls)
        expired = [
            i for i in indices if isinstance(failures.get(self._sources[i][0].name), MinerUUploadURLExpiredError)
        ]
        for i in expired:
            failures[self._sources[i][0].name] = "the upload URL had expired; sent again in a new batch"
        yield grant.batch_id, indices, {name: str(error) for name, error in failures.items()}
        if expired:
            self.log.warning("%d upload URLs had expired; requesting new ones", len(expired))
            again = self.hook.request_upload_urls(
                self._file_entries([self._sources[i] for i in expired]), **self.options()
            )
            retried = self._upload_all([self._sources[i][0] for i in expired], again.file_urls)
            yield again.batch_id, expired, {name: str(error) for name, error in retried.items()}

    def _upload_all(self, sources: Sequence[Any], urls: Sequence[str]) -> dict[str, Any]:
        """Upload ``upload_concurrency`` files at a time; return ``{file name: error}`` for those that failed."""
        started = time.monotonic()
        failures: dict[str, Any] = {}
        with ThreadPoolExecutor(max_workers=min(self.upload_concurrency, len(sources))) as pool:
            pairs = zip(sources, urls, strict=True)
            futures = [pool.submit(self.hook.upload_file, url, source) for source, url in pairs]
            for source, future in zip(sources, futures, strict=True):
                try:
                    future.result()
                except MinerUError as error:
                    self.log.error("Upload of %s failed: %s", source.name, error)
                    failures[source.name] = error
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
        return [source.location for source, _ in self._sources]


class MinerUDownloadResultsOperator(BaseOperator):
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

    @cached_property
    def hook(self) -> MinerUHook:
        from airflow_provider_mineru.hooks.mineru import MinerUHook

        return MinerUHook(mineru_conn_id=self.mineru_conn_id)

    def _refresh(
        self, value: Any
    ) -> tuple[str, list[str], list[DocumentResult], list[str | None], list[str | None] | None]:
        """
        Ask MinerU for the current state of every document of one XCom value; return the kind, ids,
        documents, the batch of each document and (for a task) the URL it was submitted from.
        """
        if not isinstance(value, dict) or not ("task_id" in value or "batch_ids" in value):
            raise MinerUValidationError("results", value, "must be the XCom of a MinerU operator or sensor")
        if "task_id" in value:
            task_id = value["task_id"]
            return "task", [task_id], [self.hook.get_task(task_id)], [None], [value.get("source")]
        documents: list[DocumentResult] = []
        batch_of: list[str | None] = []
        for batch_id in value["batch_ids"]:
            batch = self.hook.get_batch(batch_id)
            documents.extend(batch.files)
            batch_of.extend([batch_id] * len(batch.files))
        return "batch", list(value["batch_ids"]), documents, batch_of, None

    def execute(self, context: Context) -> Any:
        from airflow_provider_mineru.outcome import (
            emit_asset_events,
            finish_documents,
            parse_rendered_xcom,
            xcom_values,
        )

        values = xcom_values(self.results)
        single = isinstance(parse_rendered_xcom(self.results), dict)
        shaped, totals = [], {"documents": 0, "done": 0, "failed": 0, "pages": 0}
        try:
            for value in values:
                kind, ids, documents, batch_of, sources = self._refresh(value)
                unfinished = [d for d in documents if not d.is_terminal]
                if unfinished and self.fail_on_file_error:
                    raise MinerUError(
                        f"{len(unfinished)} documents are not finished yet: "
                        + "; ".join(d.describe() for d in unfinished[:10])
                    )
                summary: dict[str, Any] = {}
                shaped.append(
                    finish_documents(
                        kind=kind,
                        ids=ids,
                        documents=documents,
                        batch_of=batch_of,
                        sources=sources,
                        hook=self.hook,
                        output_path=self.output_path,
                        fail_on_file_error=self.fail_on_file_error,
                        log=self.log,
                        push_xcom=lambda v: context["ti"].xcom_push(key="return_value", value=v),
                        summary=summary,
                    )
                )
                for key in totals:
                    totals[key] += summary.get(key, 0)
                totals["output_path"] = summary.get("output_path")
        finally:
            emit_asset_events(context, self.outlets, totals)
        return shaped[0] if single else shaped


def _document_at(poller: MinerUPoller, slot: Sequence[int]) -> MinerUState | None:
    """The state of the document at ``[batch index, position]``, or None when MinerU has not listed it."""
    listed = poller.results.get(poller.ids[slot[0]], [])
    return listed[slot[1]].state if slot[1] < len(listed) else None


def _shift_index(error: MinerUValidationError, offset: int, argument: str) -> MinerUValidationError:
    """Re-word a per-chunk validation error so it names the user's argument and index."""
    import re

    def shift(match: re.Match[str]) -> str:
        return f"{argument}[{int(match.group(1)) + offset}]"

    field = re.sub(r"files\[(\d+)\]", shift, error.field).replace(".url", "").replace(".name", "")
    if field == "files":
        field = argument
    return MinerUValidationError(field, error.value, error.limit)


class MinerUDocumentsOperator(BaseOperator):
    """
    Turn downloaded MinerU results into per-page documents for embedding and RAG pipelines.

    Reads each result's ``*_content_list.json`` (reading-order blocks) and writes
    ``documents.jsonl`` beside its ``full.md``: one JSON line per page,
    ``{"text", "metadata": {"file_name", "data_id", "page_number", "block_types", "output_path",
    "source"}}`` — the shape ``DocumentLoaderOperator`` of apache-airflow-providers-common-ai returns.

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
        import json

        from airflow_provider_mineru.documents import (
            find_content_list,
            iter_result_entries,
            page_documents,
            write_jsonl,
        )
        from airflow_provider_mineru.outcome import output_root

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
            target = folder / "documents.jsonl"
            write_jsonl(target, pages)
            paths.append(str(target))
            documents.extend(pages)
        self.log.info("Wrote %d page documents into %d documents.jsonl files", len(documents), len(paths))
        if len(documents) <= self.max_xcom_documents:
            return documents
        return {"documents_paths": paths, "count": len(documents)}
