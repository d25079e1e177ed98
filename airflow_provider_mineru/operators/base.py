"""
:class:`MinerUBaseOperator`: the flow every submit operator shares.

``execute()`` checks every input (:meth:`~MinerUBaseOperator.prepare`), resumes what an earlier try
sent (:mod:`airflow_provider_mineru.submission.resume`), records and sends the rest, waits (blocking with
:mod:`airflow_provider_mineru.waiting.polling`, or deferred to :mod:`airflow_provider_mineru.triggers.mineru`),
then finishes (:mod:`airflow_provider_mineru.waiting.finish`: downloads, XCom, failures). Subclass it to
submit another kind of input; the concrete operators are in :mod:`airflow_provider_mineru.operators.mineru`.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_mineru.connection.form import DEFAULT_CONN_ID
from airflow_provider_mineru.exceptions import (
    MinerUAmbiguousSubmitError,
    MinerUInvalidRequestError,
    MinerUValidationError,
)
from airflow_provider_mineru.mixins import MinerUHookMixin, MinerUWaitMixin
from airflow_provider_mineru.version_compat import AirflowFailException, BaseOperator, conf
from airflow_provider_mineru.waiting.events import WaitOutcome, validate_wait_event
from airflow_provider_mineru.waiting.polling import MinerUPoller, min_defer_default, poll_once, wait_blocking
from airflow_provider_mineru.waiting.waits import BATCH_WAIT, MinerUWait

if TYPE_CHECKING:
    from airflow_provider_mineru.account.run import AccountRun
    from airflow_provider_mineru.submission.record import SentBatch, Submission, SubmittedInput
    from airflow_provider_mineru.submission.store import SubmissionStore
    from airflow_provider_mineru.version_compat import Context
    from airflow_provider_mineru.waiting.finish import FinishedWait
    from airflow_provider_mineru.waiting.waits import WaitedDocuments

__all__ = ["DEFAULT_POLL_INTERVAL", "DEFAULT_TIMEOUT", "MinerUBaseOperator", "MinerUHookMixin"]

# Every import inside a method below is made when a task runs, not at DAG-parse time: the operators
# module costs ~13 ms over ``import airflow.sdk``; the hook and the clients alone (requests, aiohttp)
# cost ~35 ms more, and the submission, resume, store, finishing and lineage modules add to it.

#: Default wait before giving up on MinerU (a large batch can take hours).
DEFAULT_TIMEOUT = timedelta(hours=6)
DEFAULT_POLL_INTERVAL = 10.0


def _seconds(value: float | timedelta | None) -> float:
    if value is None:
        return DEFAULT_TIMEOUT.total_seconds()
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    """``items`` cut into runs of at most ``size`` (one MinerU batch each)."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def shift_index(error: MinerUValidationError, offset: int, argument: str) -> MinerUValidationError:
    """Re-word a per-chunk validation error so it names the user's argument and index."""

    def shift(match: re.Match[str]) -> str:
        return f"{argument}[{int(match.group(1)) + offset}]"

    field = re.sub(r"files\[(\d+)\]", shift, error.field).replace(".url", "").replace(".name", "")
    if field == "files":
        field = argument
    return MinerUValidationError(field, error.value, error.limit)


def _releases_claims_on_failure(method: Callable[..., Any]) -> Callable[..., Any]:
    """
    The ledger's claims of a try that raises are released at once (``ledger.run.release_after_failure``).

    :param method: ``execute`` or ``execute_complete``.
    """

    @functools.wraps(method)
    def run(self: Any, context: Context, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, context, *args, **kwargs)
        except Exception as error:  # TaskDeferred is a BaseException: a deferral keeps the claims
            from airflow_provider_mineru.ledger.run import release_after_failure  # lazy, as in execute()

            release_after_failure(self, context, error)
            raise

    return run


class MinerUBaseOperator(MinerUWaitMixin, BaseOperator):
    """
    The submit operators' base: parsing options, submitting, resuming, waiting, results.

    A subclass says what it waits on (:attr:`wait`: a task or batches) and how its inputs are
    checked, described and sent (:meth:`prepare`, :meth:`describe_inputs`, :meth:`send_batch`);
    the flow here never branches on the kind.

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
    :param incremental: never pay twice across runs: an input whose content and options already
        have a complete result under ``output_path`` (the ledger, ``<output_path>/.mineru-ledger/``)
        sends no request and no upload; its row says ``"reused": true``. In effect whenever
        ``output_path`` is set (and the operator waits for completion).
    :param force: parse every input again, whatever the ledger says (also starts the failure count again).
    :param max_attempts_per_document: a document that failed this many times (1 to 5) is skipped by
        later runs until ``force=True``.
    :param sync: ``"off"`` or ``"scoped"`` (only for files listed from a folder, prefix or glob:
        ``MinerUUploadFilesOperator``): outputs whose source is gone from this run's complete listing
        are moved to ``<output_path>/.mineru-tombstones/<date>/`` and their ledger entries marked deleted.
    :param max_delete_fraction: with ``sync="scoped"``, the largest share of a folder's outputs one run
        may tombstone (default 0.2); more is refused (nothing is moved) unless ``allow_mass_delete``.
    :param allow_mass_delete: let one scoped sync tombstone more than ``max_delete_fraction``.
    :param on_budget_exhausted: when the connection's ``daily_page_budget`` / ``daily_file_budget``
        cannot hold every document: ``"defer"`` (default) sends what fits and defers, holding no
        worker slot, until the budget resets at the next UTC midnight; ``"skip"`` sends what fits
        and reports the rest with state ``"deferred_budget"`` (and ``counts``); ``"fail"`` fails
        before any request.
    """

    template_fields: Sequence[str] = ("output_path", "language", "callback", "seed", "model_version", "tier")
    ui_color = "#e8f0fe"
    #: What the operator waits on: a task or batches.
    wait: ClassVar[MinerUWait] = BATCH_WAIT
    #: MinerU names this operator's documents by file name (uploads): resume compares names too.
    names_by_file: ClassVar[bool] = False

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
        incremental: bool = True,
        force: bool = False,
        max_attempts_per_document: int = 3,
        sync: str = "off",
        max_delete_fraction: float = 0.2,
        allow_mass_delete: bool = False,
        on_budget_exhausted: str = "defer",
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
        self.incremental = incremental
        self.force = force
        self.max_attempts_per_document = max_attempts_per_document
        self.sync = sync
        self.max_delete_fraction = max_delete_fraction
        self.allow_mass_delete = allow_mass_delete
        self.on_budget_exhausted = on_budget_exhausted

    def options(self) -> dict[str, Any]:
        """The parsing options that are set, as hook keyword arguments."""
        from airflow_provider_mineru.clients.v4_wire import OPTION_NAMES  # it loads the clients (see above)

        return {name: getattr(self, name) for name in OPTION_NAMES if getattr(self, name) is not None}

    # -- to implement per operator ---------------------------------------------------------------

    def prepare(self) -> None:
        """Validate every input and build request bodies; raise before any request is sent."""

    def input_count(self) -> int:
        """How many documents the operator was given (after expanding folders and globs)."""
        return 1

    def send_batch(self, indices: Sequence[int]) -> Iterator[SentBatch]:
        """
        Send the input documents at ``indices`` (at most one MinerU batch, or the one task) to MinerU.

        Yields a :class:`~airflow_provider_mineru.submission.record.SentBatch` per task or batch made
        (usually one; two when expired upload URLs had to be requested again). An upload batch is
        also yielded with ``failures`` None as soon as its upload URLs are granted, before the first
        byte is sent, so it is recorded before anything can be parsed (and billed).
        """
        raise NotImplementedError

    def sources(self) -> list[str | None]:
        """Per document, the URL or path it came from (for output folder names)."""
        return []

    def page_estimates(self, indices: Sequence[int]) -> list[int]:
        """Pages the daily budget reserves for the inputs at ``indices`` before MinerU says (URLs: 1 each)."""
        return [1] * len(indices)

    def describe_inputs(self) -> list[SubmittedInput]:
        """Per input document: its source, name, output folder name and fingerprint (not yet sent)."""
        raise NotImplementedError

    def _replan_refused(self, context: Context, outcome: WaitOutcome, store: SubmissionStore) -> Submission | None:
        """
        What to send again after a wait, when MinerU refused documents for their page count at a
        lower limit than the connection's ``max_pages``: the submission with the smaller slices
        unsent (None: nothing to send again; the default). Called only for a finished wait that
        holds such a refusal (:func:`airflow_provider_mineru.long_documents.adapt.any_page_refusal`).

        :param context: the Airflow task context.
        :param outcome: the finished wait.
        :param store: the submission store of this try (holds what the wait was on).
        """
        return None

    # -- the flow --------------------------------------------------------------------------------

    def _fetch(self, item_id: str) -> Any:
        return self.wait.fetch(self.hook, item_id)

    @property
    def _record_key(self) -> str | None:
        """What seals the submission record: the connection's API token (never stored itself)."""
        return self.hook.config.token

    def _current_submission(self, context: Context) -> Submission:
        from airflow_provider_mineru.submission.record import Identity, Submission, options_fingerprint

        return Submission(
            kind=self.wait.name,
            identity=Identity.from_context(context),
            options_fingerprint=options_fingerprint(type(self).__name__, self.options()),
            inputs=self.describe_inputs(),
        )

    def _submit_inputs(self, store: SubmissionStore, submission: Submission, indices: Sequence[int]) -> None:
        """
        Send the inputs at ``indices`` (in batches of ``max_batch_files``); the record is saved as
        each batch (or the task) is made (for uploads: when its URLs are granted, before the first
        PUT). A submit whose answer was lost is recorded as unanswered, then raised.
        """
        if not indices:
            return
        from airflow_provider_mineru.long_documents.run import fewer_files_per_request  # loads the long-document stage

        key = self._record_key
        pending, size = list(indices), self.hook.config.limits.max_batch_files
        while pending:
            chunk, pending = pending[:size], pending[size:]
            try:
                for sent in self.send_batch(chunk):
                    if submission.record_sent(sent):
                        self.log.info("MinerU %s %s holds %d documents", self.wait.name, sent.id, len(sent.indices))
                    store.save_submission(submission, key)
            except MinerUAmbiguousSubmitError:
                submission.unanswered = sorted({*submission.unanswered, *chunk})
                store.save_submission(submission, key)
                raise
            except MinerUInvalidRequestError as error:  # long documents: MinerU's own lower file limit is learned
                smaller = fewer_files_per_request(error, len(chunk))
                if smaller is None:
                    raise
                pending, size = chunk + pending, smaller

    def _account_run(self) -> AccountRun:
        """The account stage of this run (budget admission, settlement, metrics, manifest)."""
        from airflow_provider_mineru.account.run import account_run

        return account_run(self)

    @_releases_claims_on_failure
    def execute(self, context: Context) -> Any:
        from airflow_provider_mineru.submission.resume import resume_submission
        from airflow_provider_mineru.submission.store import SubmissionStore

        account = self._account_run()  # checks on_budget_exhausted
        self.prepare()  # every validation error is raised here, before any request
        from airflow_provider_mineru.ledger.run import LedgerRun

        self._ledger_run = LedgerRun.start(self, context)  # ledger: what can be reused is not sent
        if self._ledger_run is not None and not self._ledger_run.sends:  # nothing to pay for
            return self._completed(context, None, None).deliver(context, self.outlets)
        store = SubmissionStore(context)  # the one store of this try
        current = self._current_submission(context)
        submission = resume_submission(
            store.load_submission(current.identity, self._record_key),
            current,
            wait=self.wait,
            fetch=self._fetch,
            names_by_file=self.names_by_file,
            log=self.log,
        )
        return self._send_and_wait(context, account, store, submission)

    def _send_and_wait(
        self, context: Context, account: AccountRun, store: SubmissionStore, submission: Submission
    ) -> Any:
        """
        Send what ``submission`` has not sent yet (within the budget), wait, finish.

        :param context: the Airflow task context.
        :param account: the account stage of this run.
        :param store: the submission store of this try.
        :param submission: what an earlier try (or an earlier round of this one) sent, and the rest.
        """
        from airflow_provider_mineru.long_documents.run import input_locations

        # lineage, also on failure (a split input's slices are one input)
        self._lineage_ids, self._lineage_sources = submission.ids, input_locations(submission.sources())
        if submission.ids:
            self.log.info(
                "Resuming the MinerU %s submitted by an earlier try (%s): waiting for its documents, not paying again",
                self.wait.name,
                ", ".join(submission.ids),
            )
        store.save_submission(submission, self._record_key)  # before the first byte is paid for
        admitted = account.admit(context, submission.unsent(), self.page_estimates, submission.inputs)  # budget
        submitted_at = None if submission.ids else time.time()  # queue times only from a fresh submit
        with account.releasing(context, submission):
            self._submit_inputs(store, submission, admitted.send)
        if admitted.resume_at is not None:  # on_budget_exhausted="defer": the rest waits for the budget's reset
            self.defer(trigger=account.reset_trigger(admitted), method_name="execute_after_budget_reset")
        if not submission.ids:  # the budget let nothing through: nothing to wait for
            value = self._completed(context, None, None).deliver(context, self.outlets)
            store.clear()
            return value
        self.log.info(
            "Submitted to MinerU as %s %s. If this Airflow task is retried, the retry waits for these "
            "documents instead of submitting (and paying for) them again (the ids are kept in the %s).",
            self.wait.name,
            ", ".join(submission.ids),
            store.backend,
        )
        context["ti"].xcom_push(key=self.wait.ids_xcom_key, value=submission.ids)

        poller = submission.poller(self.wait)
        poller.watcher = watcher = self.hook.state_watcher(submitted_at=submitted_at, model=self.model_version)
        end_time = time.time() + _seconds(self.timeout)
        if not self.wait_for_completion:
            snapshot = self._snapshot(poller)
            store.clear()
            return snapshot
        if self.deferrable:
            outcome = poll_once(poller, self._fetch, end_time=end_time, log=self.log)
            if outcome is None:  # the trigger's event carries the ids and sources back: no defer kwargs
                self.defer(
                    trigger=self._trigger(
                        poller,
                        end_time=end_time,
                        poll_interval=self.poll_interval,
                        submitted_at=watcher.handover(),  # queue times seen by the trigger (account)
                        model_version=self.model_version,
                    ),
                    method_name="execute_complete",
                )
        else:
            outcome = wait_blocking(
                poller, self._fetch, poll_interval=self.poll_interval, end_time=end_time, log=self.log
            )
        return self._finish(context, outcome, store)

    def execute_after_budget_reset(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """
        Resume after the daily budget reset (``on_budget_exhausted="defer"``): run again from the start;
        what was sent before the deferral is resumed from the submission record, the rest is admitted.

        :param event: the ``DateTimeTrigger``'s event (unused).
        """
        return self.execute(context)

    @_releases_claims_on_failure
    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """
        Resume after the trigger fired: same checks and results as the blocking path.

        :param event: the trigger's :class:`~airflow_provider_mineru.waiting.events.WaitOutcome` payload:
            it names the ids and each input's source, so no input is resolved again (files may
            have been moved or deleted since they were uploaded).
        """
        from airflow_provider_mineru.submission.store import SubmissionStore

        return self._finish(context, event, SubmissionStore(context))

    def _completed(
        self, context: Context, finished: FinishedWait | None, waited: WaitedDocuments | None
    ) -> FinishedWait:
        """
        The run's last stages on a finished wait (or on nothing sent): the account's (settle the
        budget, the rows of inputs it did not send, metrics, manifest), then the ledger's (the rows
        of reused inputs merged back in input order, every parsed input recorded).

        :param finished: the finished wait of the inputs sent (None when none was sent).
        :param waited: the documents waited on, or None.
        """
        from airflow_provider_mineru.ledger.run import complete_run

        return complete_run(self, context, self._account_run().finish(context, finished, waited))

    def _snapshot(self, poller: MinerUPoller) -> dict[str, Any]:
        """The XCom of a submit that does not wait: ids and each document's state right after submitting."""
        for item_id in poller.ids:
            poller.record(item_id, self._fetch(item_id))
        waited = poller.waited()
        return self.wait.xcom(waited, [None] * len(waited.documents))

    def _finish(self, context: Context, event: WaitOutcome | Mapping[str, Any] | None, store: SubmissionStore) -> Any:
        """
        Check the outcome, download, push and check the results; then forget the submission record.

        The record is kept while a retry can still help (a download or a document failed and
        retries remain), so that retry resumes instead of paying again; it is cleared on success
        and on the last try.

        :param event: the blocking wait's outcome, or the trigger event's payload.
        :param store: the submission store of this try.
        """
        from airflow_provider_mineru.long_documents.adapt import any_page_refusal

        self._lineage_event = event  # for get_openlineage_facets_on_failure
        try:
            outcome = validate_wait_event(event)
            again = None
            if outcome.status == "done" and any_page_refusal(outcome.waited()):  # MinerU's lower page limit
                again = self._replan_refused(context, outcome, store)
            if again is not None:
                return self._send_and_wait(context, self._account_run(), store, again)
            # for the lineage methods (no XCom read, no input resolved again there)
            from airflow_provider_mineru.long_documents.run import input_locations  # slices: their input

            self._lineage_ids, self._lineage_sources = list(outcome.ids), input_locations(outcome.sources)
            value = self._completed(context, self._finished(outcome), outcome.waited()).deliver(context, self.outlets)
            self._lineage_value = value
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

        return operator_lineage(self._lineage_start_inputs(), kind=self.wait.name)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Inputs, plus each parsed document's output folder with its ``mineru`` facet (state, pages, ids)."""
        from airflow_provider_mineru.lineage import operator_lineage

        inputs = getattr(self, "_lineage_sources", None) or self._lineage_start_inputs()
        return operator_lineage(inputs, getattr(self, "_lineage_value", None) or [], kind=self.wait.name)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> Any:
        """Inputs (one per document), and the ``mineru`` run facet with the ids sent and how the documents ended."""
        from airflow_provider_mineru.lineage import failure_lineage

        inputs = getattr(self, "_lineage_sources", None) or self._lineage_start_inputs()
        ids, event = getattr(self, "_lineage_ids", None) or [], getattr(self, "_lineage_event", None)
        return failure_lineage(inputs, ids, event, kind=self.wait.name)
