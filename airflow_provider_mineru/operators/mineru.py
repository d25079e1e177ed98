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
    from airflow_provider_mineru.submission import Submission, SubmittedInput
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

    def send_batch(self, indices: Sequence[int]) -> Iterator[tuple[str, Sequence[int], dict[str, str] | None]]:
        """
        Send the input documents at ``indices`` (at most one MinerU batch) to MinerU.

        Yields ``(batch_id, the indices it holds in order, {file name: error} for files that never
        reached MinerU)``; usually once, twice when expired upload URLs had to be requested again.
        An upload batch is also yielded with ``None`` as soon as its upload URLs are granted, before
        the first byte is sent, so it is recorded before anything can be parsed (and billed).
        """
        raise NotImplementedError

    def sources(self) -> list[str | None]:
        """Per document, the URL or path it came from (for output folder names)."""
        return []

    def describe_inputs(self) -> list[SubmittedInput]:
        """Per input document: its source, name, output folder name and fingerprint (not yet sent)."""
        raise NotImplementedError

    # -- the flow --------------------------------------------------------------------------------

    def _fetch(self, item_id: str) -> Any:
        return self.hook.get_task(item_id) if self.kind == "task" else self.hook.get_batch(item_id)

    @property
    def _record_key(self) -> str | None:
        """What seals the submission record: the connection's API token (never stored itself)."""
        return self.hook.config.token

    def _current_submission(self, context: Context) -> Submission:
        from airflow_provider_mineru.submission import Identity, Submission, options_fingerprint

        return Submission(
            kind=self.kind,
            identity=Identity.from_context(context),
            options_fingerprint=options_fingerprint(type(self).__name__, self.options()),
            inputs=self.describe_inputs(),
        )

    def _submit_inputs(self, store: Any, submission: Submission, indices: Sequence[int]) -> None:
        """
        Send the inputs at ``indices`` (in batches of ``max_batch_files``); the record is saved as
        each batch is made (for uploads: when its URLs are granted, before the first PUT).
        """
        from airflow_provider_mineru.exceptions import MinerUAmbiguousSubmitError

        if not indices:
            return
        key = self._record_key
        if self.kind == "task":
            try:
                task_id = self.submit_task()
            except MinerUAmbiguousSubmitError:
                submission.unanswered = [0]
                store.save_submission(submission, key)
                raise
            submission.add_batch(task_id, [0])
            store.save_submission(submission, key)
            return
        for chunk in _chunks(list(indices), self.hook.config.limits.max_batch_files):
            try:
                for batch_id, held, failures in self.send_batch(chunk):
                    if not submission.ids or submission.ids[-1] != batch_id:
                        submission.add_batch(batch_id, held)
                        self.log.info("MinerU batch %s holds %d documents", batch_id, len(held))
                    if failures:
                        submission.add_failures(batch_id, failures)
                    store.save_submission(submission, key)
            except MinerUAmbiguousSubmitError:
                submission.unanswered = sorted({*submission.unanswered, *chunk})
                store.save_submission(submission, key)
                raise

    def _resume(self, store: Any, earlier: Submission | None, current: Submission) -> Submission:
        """
        Carry over from ``earlier`` (an earlier try's record) what provably describes the current
        inputs; the rest of ``current`` is left unsent. Per input: unchanged (same fingerprint) and
        still in progress or done at MinerU resumes; changed, failed, never sent or never uploaded
        is sent anew; the log says which and why. Nothing resumes when the record is missing, the
        parsing options changed, or MinerU no longer knows an id (``-60012``). Any other error while
        checking is raised: the next retry checks again rather than paying twice.
        """
        if earlier is None:
            return current
        if earlier.unanswered:
            names = [earlier.inputs[i].output_name for i in earlier.unanswered if i < len(earlier.inputs)]
            self.log.warning(
                "The earlier try's submit of %d documents got no answer; MinerU may have accepted it, so "
                "sending them again may create one duplicate task each: %s",
                len(names),
                ", ".join(names[:10]),
            )
        if earlier.kind != current.kind or earlier.options_fingerprint != current.options_fingerprint:
            self.log.warning("The parsing options changed since the earlier try; submitting every input anew.")
            return current
        if not earlier.ids:
            return current
        poller = self._poller(earlier)
        for item_id in poller.ids:
            try:
                poller.record(item_id, self._fetch(item_id))
            except MinerUNotFoundError as error:  # MinerU lost it: only then is paying again right
                self.log.warning("Cannot resume the earlier submission (%s); submitting again.", error)
                return current
        unmatched: dict[str, list[int]] = {}
        for index, item in enumerate(earlier.inputs):
            unmatched.setdefault(item.fingerprint, []).append(index)
        kept: dict[int, list[int]] = {}  # current index -> slot in the earlier submission
        again: dict[str, list[str]] = {"changed": [], "failed": [], "not sent": [], "not uploaded": []}
        for index, item in enumerate(current.inputs):
            candidates = unmatched.get(item.fingerprint)
            if not candidates:
                again["changed"].append(item.name)
                continue
            old = earlier.inputs[candidates.pop(0)]
            if old.slot is None:
                again["not sent"].append(item.name)
                continue
            document = _listed(poller, old.slot)
            if document is not None and document.state is MinerUState.FAILED:
                again["failed"].append(item.name)
            elif document is not None and document.state is MinerUState.WAITING_FILE:
                again["not uploaded"].append(item.name)
            elif document is not None and _foreign(document, item, isinstance(self, MinerUUploadFilesOperator)):
                again["changed"].append(item.name)
            else:
                kept[index] = old.slot
        if not kept:
            if self.kind == "task" and again["failed"]:
                self.log.info("The earlier try's MinerU task failed; submitting again.")
            elif any(again.values()):
                self.log.warning("Nothing of the earlier submission resumes (%s); submitting again.", _why(again))
            return current
        self._carry_over(earlier, current, kept, poller)
        if any(again.values()):
            self.log.info(
                "Sending again %d of %d documents (%s); the rest resume.",
                len(current.unsent()),
                len(current.inputs),
                _why(again),
            )
        return current

    def _carry_over(
        self, earlier: Submission, current: Submission, kept: dict[int, list[int]], poller: MinerUPoller
    ) -> None:
        """Give ``current`` the earlier batches its kept inputs live in, and their slots."""
        used = sorted({slot[0] for slot in kept.values()})
        renumber = {old: new for new, old in enumerate(used)}
        current.ids = [earlier.ids[b] for b in used]
        current.expected_files = [earlier.expected_files[b] for b in used]
        current.failed_files = {i: dict(earlier.failed_files[i]) for i in current.ids if i in earlier.failed_files}
        for index, slot in kept.items():
            current.inputs[index].slot = [renumber[slot[0]], slot[1]]
        kept_slots = {tuple(slot) for slot in kept.values()}
        for batch_index in used:  # documents of a kept batch no input waits for: never wait on an upload
            batch_id = earlier.ids[batch_index]
            for position, document in enumerate(poller.results.get(batch_id, [])):
                if (batch_index, position) in kept_slots or document.state is not MinerUState.WAITING_FILE:
                    continue
                if document.file_name:
                    current.failed_files.setdefault(batch_id, {})[document.file_name] = (
                        "not uploaded before the earlier try ended; sent again in a new batch"
                    )

    def execute(self, context: Context) -> Any:
        from airflow_provider_mineru.resume import SubmissionStore

        self.prepare()  # every validation error is raised here, before any request
        store = SubmissionStore(context)
        current = self._current_submission(context)
        submission = self._resume(store, store.load_submission(current.identity, self._record_key), current)
        if submission.ids:
            self.log.info(
                "Resuming the MinerU %s submitted by an earlier try (%s): waiting for its documents, not paying again",
                self.kind,
                ", ".join(submission.ids),
            )
        store.save_submission(submission, self._record_key)  # before the first byte is paid for
        self._submit_inputs(store, submission, submission.unsent())
        self.log.info(
            "Submitted to MinerU as %s %s. If this Airflow task is retried, the retry waits for these "
            "documents instead of submitting (and paying for) them again (the ids are kept in the %s).",
            self.kind,
            ", ".join(submission.ids),
            store.backend,
        )
        context["ti"].xcom_push(key=f"mineru_{self.kind}_ids", value=submission.ids)

        poller = self._poller(submission)
        end_time = time.time() + _seconds(self.timeout)
        if not self.wait_for_completion:
            snapshot = self._snapshot(poller)
            store.clear()
            return snapshot
        if self.deferrable:
            from airflow_provider_mineru.polling import poll_once

            outcome = poll_once(poller, self._fetch, end_time=end_time, log=self.log)
            if outcome is None:
                self.defer(
                    trigger=self._trigger(submission, end_time),
                    method_name="execute_complete",
                    kwargs={"submission": submission.compact()},
                )
        else:
            from airflow_provider_mineru.polling import wait_blocking

            outcome = wait_blocking(
                poller, self._fetch, poll_interval=self.poll_interval, end_time=end_time, log=self.log
            )
        return self._finish(context, outcome, submission.ids, submission.sources())

    def execute_complete(
        self, context: Context, event: dict[str, Any] | None = None, submission: dict[str, Any] | None = None
    ) -> Any:
        """
        Resume after the trigger fired: same checks and results as the blocking path.

        :param submission: the compact submission saved when deferring; the inputs are never
            resolved again (files may have been moved or deleted since they were uploaded).
        """
        ids = (event or {}).get("ids") or (submission or {}).get("ids") or []
        sources = (submission or {}).get("sources")
        if sources is None:  # not handed over (``dag.test()`` drops it): the record kept for retries has them
            from airflow_provider_mineru.resume import SubmissionStore
            from airflow_provider_mineru.submission import Identity

            record = SubmissionStore(context).load_submission(Identity.from_context(context), self._record_key)
            sources = record.sources() if record is not None else None
        if sources is None:  # deferred by an older version of the provider
            sources = self.sources()
        return self._finish(context, event, ids, sources)

    def _poller(self, submission: Submission) -> MinerUPoller:
        from airflow_provider_mineru.polling import MinerUPoller

        if self.kind == "task":
            return MinerUPoller(kind="task", ids=submission.ids)
        return MinerUPoller(
            kind="batch",
            ids=submission.ids,
            expected_files=submission.expected_files,
            failed_files=submission.failed_files or None,
            slots=submission.slots(),
        )

    def _trigger(self, submission: Submission, end_time: float) -> Any:
        from airflow_provider_mineru.triggers.mineru import MinerUBatchTrigger, MinerUTaskTrigger

        if self.kind == "task":
            return MinerUTaskTrigger(
                mineru_task_id=submission.ids[0],
                end_time=end_time,
                mineru_conn_id=self.mineru_conn_id,
                poll_interval=self.poll_interval,
                first_poll_delay=self.poll_interval,
                not_before=time.time() + self.min_defer_seconds,
            )
        return MinerUBatchTrigger(
            batch_ids=submission.ids,
            expected_files=submission.expected_files,
            failed_files=submission.failed_files or None,
            slots=submission.slots(),
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

    def _finish(
        self, context: Context, event: dict[str, Any] | None, ids: Sequence[str], sources: Sequence[str | None]
    ) -> Any:
        """
        Download, push and check the results; then forget the submission record.

        The record is kept while a retry can still help (a download or a document failed and
        retries remain), so that retry resumes instead of paying again; it is cleared on success
        and on the last try.

        :param sources: per input, its URL or path, as recorded when it was sent.
        """
        from airflow_provider_mineru.outcome import finish_in_task
        from airflow_provider_mineru.resume import SubmissionStore

        store = SubmissionStore(context)
        try:
            value = finish_in_task(
                context,
                self.outlets,
                event=event,
                ids=list(ids),
                kind=self.kind,
                sources=list(sources),
                hook=self.hook,
                output_path=self.output_path,
                fail_on_file_error=self.fail_on_file_error,
                log=self.log,
            )
            self._lineage_value = value  # for get_openlineage_facets_on_complete (no XCom read there)
        except Exception as error:
            ti = context.get("ti")
            last_try = ti is None or getattr(ti, "try_number", 1) > (self.retries or 0)
            if last_try or isinstance(error, AirflowFailException):  # no retry will read the record
                store.clear()
            raise
        store.clear()
        return value

    # -- OpenLineage (apache-airflow-providers-openlineage calls these) --------------------------

    def _lineage_start_inputs(self) -> list[Any]:
        """The documents known before the task runs (no request, no listing)."""
        return list(self.sources())

    def get_openlineage_facets_on_start(self) -> Any:
        """Inputs: the URLs, files or object-storage objects to parse; outputs come on completion."""
        from airflow_provider_mineru.lineage import operator_lineage

        return operator_lineage(self._lineage_start_inputs(), kind=self.kind)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Inputs, plus each parsed document's output folder with its ``mineru`` facet (state, pages, ids)."""
        from airflow_provider_mineru.lineage import operator_lineage

        return operator_lineage(self.sources(), getattr(self, "_lineage_value", None) or [], kind=self.kind)


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

    def describe_inputs(self) -> list[SubmittedInput]:
        from airflow_provider_mineru.submission import SubmittedInput, output_stem, url_fingerprint

        name = _url_name(self.url)
        per_file = {"data_id": self.data_id, "page_ranges": self.page_ranges}
        return [SubmittedInput(self.url, name, output_stem(name, self.data_id), url_fingerprint(self.url, per_file))]


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

    def send_batch(self, indices: Sequence[int]) -> Iterator[tuple[str, Sequence[int], dict[str, str] | None]]:
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

    def describe_inputs(self) -> list[SubmittedInput]:
        from airflow_provider_mineru.submission import SubmittedInput, output_stem, url_fingerprint

        described = []
        for entry in self._files():
            url = entry if isinstance(entry, str) else str(entry.get("url"))
            per_file = {} if isinstance(entry, str) else {k: v for k, v in entry.items() if k != "url"}
            name = _url_name(url)
            described.append(
                SubmittedInput(url, name, output_stem(name, per_file.get("data_id")), url_fingerprint(url, per_file))
            )
        return described


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

    def send_batch(self, indices: Sequence[int]) -> Iterator[tuple[str, Sequence[int], dict[str, str] | None]]:
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
        yield grant.batch_id, indices, None  # recorded before the first PUT
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
            yield again.batch_id, expired, None
            retried = self._upload_all([self._sources[i][0] for i in expired], again.file_urls)
            yield again.batch_id, expired, {name: str(error) for name, error in retried.items()}

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
        return [source.location for source, _ in self._sources]

    def _lineage_start_inputs(self) -> list[Any]:
        from airflow_provider_mineru.lineage import start_locations

        return list(start_locations(self.paths))

    def describe_inputs(self) -> list[SubmittedInput]:
        from airflow_provider_mineru.submission import SubmittedInput, file_fingerprint, output_stem

        return [
            SubmittedInput(
                source.location,
                source.name,
                output_stem(source.name, options.get("data_id")),
                file_fingerprint(source.location, source.name, source.size, options),
            )
            for source, options in self._sources
        ]


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
        self._lineage_value = shaped  # for get_openlineage_facets_on_complete
        return shaped[0] if single else shaped

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Outputs: each downloaded document's folder with its ``mineru`` facet (state, pages, ids)."""
        from airflow_provider_mineru.lineage import operator_lineage

        return operator_lineage([], getattr(self, "_lineage_value", None) or [])


def _listed(poller: MinerUPoller, slot: Sequence[int]) -> DocumentResult | None:
    """The document at ``[batch index, position]`` as MinerU listed it, or None when not listed (yet)."""
    if not 0 <= slot[0] < len(poller.ids):
        return None
    listed = poller.results.get(poller.ids[slot[0]], [])
    return listed[slot[1]] if 0 <= slot[1] < len(listed) else None


def _foreign(document: DocumentResult, item: SubmittedInput, uploads: bool) -> bool:
    """Whether MinerU's document is visibly not ``item``'s (another ``data_id`` or, for uploads, file name)."""
    from airflow_provider_mineru.submission import output_stem

    if document.data_id and output_stem(item.name, document.data_id) != item.output_name:
        return True
    return uploads and bool(document.file_name) and document.file_name != item.name


def _why(again: dict[str, list[str]]) -> str:
    """``"changed: b.pdf; failed: c.pdf"`` for the log of a resume."""
    parts = []
    for reason, names in again.items():
        if names:
            more = f" and {len(names) - 10} more" if len(names) > 10 else ""
            parts.append(f"{reason}: {', '.join(names[:10])}{more}")
    return "; ".join(parts)


def _url_name(url: str) -> str:
    """The last path component of a URL (what MinerU names the document), else the URL itself."""
    from urllib.parse import urlparse

    return urlparse(url).path.rstrip("/").rsplit("/", 1)[-1] or url


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
