"""
The account stage of one submit operator's run: budget admission before any paid request, and
at the finish the budget's settlement, the rows of what was not sent, the metrics and the manifest.

The operator calls three things at clearly named points of its flow
(:class:`~airflow_provider_mineru.operators.base.MinerUBaseOperator`):

1. :meth:`AccountRun.admit` after ``prepare()`` and the resume, with the inputs that will really
   be sent: pages are estimated (:func:`estimate_source_pages`: our PDF page counter; anything else,
   and a URL, counts 1 page until MinerU reports its total), reserved in the connection's
   :class:`~airflow_provider_mineru.account.budget.DailyBudget` (per UTC day, per connection, one
   atomic update), and :func:`~airflow_provider_mineru.account.admission.decide_admission` says
   what is sent now. ``"fail"`` raises :class:`~airflow_provider_mineru.exceptions.MinerUBudgetExhaustedError`
   before any request; ``"defer"`` returns :attr:`Admitted.resume_at` (the task defers to a
   ``DateTimeTrigger`` until the next UTC midnight and runs admission again,
   :func:`budget_reset_trigger`); ``"skip"`` returns the inputs reported as ``deferred_budget``.
2. :meth:`AccountRun.release` when a submit raised before MinerU accepted it (not billed).
3. :meth:`AccountRun.finish` once the wait is finished (blocking, or in ``execute_complete`` on
   another worker): settles each reserved document with the pages MinerU reported, puts the rows
   of the inputs not sent back in input order (``counts["deferred_budget"]``), sends the metrics
   and writes the manifest (its location under the XCom key ``"manifest"``).

What must cross a deferral (which inputs were reserved on which UTC day with how many pages,
which were skipped) is kept in the account store itself under ``runs/<conn_id>/<task instance>``:
the worker that resumes reads it there, wherever it runs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_mineru.account import metrics
from airflow_provider_mineru.account.admission import (
    OUTCOME_DEFERRED_BUDGET,
    AdmissionAction,
    OnBudgetExhausted,
    decide_admission,
)
from airflow_provider_mineru.account.limits import AccountLimits
from airflow_provider_mineru.account.manifest import MANIFEST_KEY, ManifestRow, write_manifest
from airflow_provider_mineru.account.shared import Account, account_for
from airflow_provider_mineru.account.store import key_part
from airflow_provider_mineru.exceptions import MinerUAmbiguousSubmitError, MinerUBudgetExhaustedError
from airflow_provider_mineru.models import DocumentResult, MinerUState

if TYPE_CHECKING:
    from airflow_provider_mineru.hooks.mineru import MinerUHook
    from airflow_provider_mineru.inputs.sources import SourceFile
    from airflow_provider_mineru.submission.record import Submission
    from airflow_provider_mineru.waiting.finish import FinishedWait
    from airflow_provider_mineru.waiting.waits import WaitedDocuments

#: The outcome of an input with more pages than the whole daily budget (never sent).
OUTCOME_NEVER_FITS = "never_fits"
#: The XCom key (in the batch XCom and the single-task XCom) naming the manifest.
_RECORD_VERSION = 1


def estimate_source_pages(source: SourceFile) -> int:
    """
    Pages of one upload, as the budget counts them before MinerU says: a PDF's page count (our
    counter, bounded reads, local or object storage), 1 for anything else or a PDF we cannot read.
    """
    if not source.name.lower().endswith(".pdf"):
        return 1
    from airflow_provider_mineru.inputs.pdf_pages import count_pdf_pages_in  # the PDF reader, only for uploads

    try:
        with source.open() as handle:
            pages = count_pdf_pages_in(handle, source.size)
    except OSError:
        pages = None
    return max(1, pages or 1)


def budget_reset_trigger(moment: dt.datetime) -> Any:
    """Airflow's standard ``DateTimeTrigger`` firing at ``moment`` (the budget's reset), on 2.11 and 3.x."""
    try:
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger
    except ImportError:  # Airflow 2.11 without the standard provider
        from airflow.triggers.temporal import DateTimeTrigger  # type: ignore[no-redef]
    return DateTimeTrigger(moment=moment)


@dataclass(frozen=True)
class Admitted:
    """
    What the operator does with the inputs it was about to send.

    :param send: input indices to send now.
    :param unsent: input index → outcome (``deferred_budget``, ``never_fits``) of those never sent in this run.
    :param resume_at: ``"defer"`` with inputs left: defer until then, then run admission again.
    :param message: why not everything is sent, in words ("" when it is).
    """

    send: tuple[int, ...]
    unsent: Mapping[int, str]
    resume_at: dt.datetime | None = None
    message: str = ""


def _record_key(conn_id: str, context: Mapping[str, Any]) -> str:
    ti = context.get("ti") or context.get("task_instance")
    run_id = context.get("run_id") or getattr(ti, "run_id", "")
    map_index = getattr(ti, "map_index", -1)
    identity = (
        f"{getattr(ti, 'dag_id', '')}/{run_id}/{getattr(ti, 'task_id', '')}/{-1 if map_index is None else map_index}"
    )
    return f"runs/{key_part(conn_id)}/{hashlib.sha256(identity.encode()).hexdigest()[:40]}"


class DescribedInput(Protocol):
    """One input as the submission record describes it."""

    source: str
    name: str


class SubmitOperator(Protocol):
    """What :func:`account_run` reads of a submit operator."""

    mineru_conn_id: str
    on_budget_exhausted: str
    model_version: str | None
    output_path: Any
    log: logging.Logger

    @property
    def hook(self) -> MinerUHook: ...

    @property
    def wait(self) -> Any: ...


def account_run(operator: SubmitOperator) -> AccountRun:
    """
    The account stage of ``operator``'s run (checks ``on_budget_exhausted``, naming it).

    :param operator: a submit operator.
    """
    policy = OnBudgetExhausted.parse(operator.on_budget_exhausted)
    hook = operator.hook
    return AccountRun(
        operator.mineru_conn_id,
        hook.account_limits,
        policy,
        flavor=hook.config.api_flavor,
        model=operator.model_version,
        log=operator.log,
        wait_name=operator.wait.name,
        output_path=operator.output_path,
        token=lambda: hook.config.token,
    )


class AccountRun:
    """
    One operator run's dealings with its connection's account.

    :param conn_id: the connection.
    :param limits: its account limits (``MinerUHook.account_limits``).
    :param policy: the operator's ``on_budget_exhausted``.
    :param flavor: the connection's ``api_flavor`` (a metric tag).
    :param model: the operator's ``model_version`` (a metric tag; ``default`` when unset).
    :param log: the operator's logger.
    :param wait_name: ``"task"`` or ``"batch"`` (the XCom's shape when nothing was sent).
    :param output_path: the operator's ``output_path`` (None: no manifest).
    :param token: the connection's token, when asked (its expiry becomes a metric; never sent itself).
    """

    def __init__(
        self,
        conn_id: str,
        limits: AccountLimits,
        policy: OnBudgetExhausted,
        *,
        flavor: str,
        model: str | None,
        log: logging.Logger,
        wait_name: str = "batch",
        output_path: Any = None,
        token: Callable[[], str] = lambda: "",
    ) -> None:
        self.conn_id = conn_id
        self.limits = limits
        self.policy = policy
        self.flavor = flavor
        self.model = model or "default"
        self.log = log
        self.wait_name = wait_name
        self.output_path = output_path
        self._token = token

    @property
    def budgeted(self) -> bool:
        """Whether the connection has a daily page or file budget (unlimited: no store is touched)."""
        return self.limits.daily_page_budget is not None or self.limits.daily_file_budget is not None

    @property
    def account(self) -> Account:
        return account_for(self.conn_id, self.limits)

    # -- the record that crosses deferrals ----------------------------------------------------------

    def _read_record(self, context: Mapping[str, Any]) -> dict[str, Any]:
        if not self.budgeted:
            return {}
        return self.account.store.read(_record_key(self.conn_id, context)) or {}

    def _update_record(self, context: Mapping[str, Any], change: Callable[[dict[str, Any]], None]) -> None:
        def apply(doc: dict[str, Any] | None) -> tuple[dict[str, Any], None]:
            new = {"v": _RECORD_VERSION, "reserved": {}, "unsent": {}, "settled": [], **(doc or {})}
            new["reserved"], new["unsent"], new["settled"] = (
                dict(new["reserved"]),
                dict(new["unsent"]),
                list(new["settled"]),
            )
            change(new)
            return new, None

        self.account.store.update(_record_key(self.conn_id, context), apply)

    # -- 1. admission ----------------------------------------------------------------------------------

    def admit(
        self,
        context: Mapping[str, Any],
        indices: Sequence[int],
        estimate: Callable[[Sequence[int]], list[int]],
        inputs: Sequence[DescribedInput],
    ) -> Admitted:
        """
        Reserve the inputs at ``indices`` in today's budget and decide what is sent now.

        :param context: the Airflow task context (names the run's record).
        :param indices: the inputs that would be sent (not resumed, not reused).
        :param estimate: their estimated pages, in the same order.
        :param inputs: per input of the operator, its source and the name MinerU sees: kept for the rows
            of the inputs not sent, which the resumed task cannot resolve again.
        :raises MinerUBudgetExhaustedError: ``"fail"`` and not everything fits (nothing reserved, nothing sent).
        :raises AccountStoreUnavailable: the store cannot be reached (fail closed: nothing sent).
        """
        indices = list(indices)
        if not indices or not self.budgeted:
            return Admitted(tuple(indices), {})
        pages = [max(0, int(p)) for p in estimate(indices)]
        budget = self.account.budget
        reservation = budget.reserve_documents(pages)
        admission = decide_admission(pages, reservation, self.policy, self.limits.daily_page_budget)
        metrics.budget_remaining(self.conn_id, pages=reservation.pages_remaining, files=reservation.files_remaining)
        if admission.action is AdmissionAction.FAIL:
            if admission.release_reservation:
                budget.release(reservation)
            raise MinerUBudgetExhaustedError(
                f"on_budget_exhausted='fail': {admission.message} Nothing was sent.",
                resets_at=reservation.resets_at,
            )
        send = tuple(indices[p] for p in admission.send)
        unsent = {indices[p]: OUTCOME_DEFERRED_BUDGET for p in admission.skipped}
        unsent.update({indices[p]: OUTCOME_NEVER_FITS for p in admission.never_fits})
        reserved = {str(indices[p]): [reservation.day, pages[p]] for p in admission.send}

        def change(record: dict[str, Any]) -> None:
            record["reserved"].update(reserved)
            record["settled"] = [i for i in record["settled"] if str(i) not in reserved]  # a new reservation
            for index in indices:  # this admission decides again for every input it was asked about
                record["unsent"].pop(str(index), None)
            record["unsent"].update(
                {str(i): [outcome, inputs[i].source, inputs[i].name] for i, outcome in unsent.items()}
            )
            record["message"] = admission.message

        self._update_record(context, change)
        if admission.message:
            self.log.warning("MinerU daily budget: %s", admission.message)
        self.log.info(
            "MinerU daily budget: %d documents (%d pages) reserved for %s; %s pages left today",
            len(send),
            reservation.pages,
            reservation.day,
            "unlimited" if reservation.pages_remaining is None else reservation.pages_remaining,
        )
        return Admitted(send, unsent, admission.resume_at, admission.message)

    @staticmethod
    def reset_trigger(admitted: Admitted) -> Any:
        """The trigger a ``"defer"`` task waits on: Airflow's ``DateTimeTrigger`` at the budget's reset."""
        assert admitted.resume_at is not None
        return budget_reset_trigger(admitted.resume_at)

    @contextlib.contextmanager
    def releasing(self, context: Mapping[str, Any], submission: Submission) -> Iterator[None]:
        """
        Around the submits: when one raises, give back what was reserved for the inputs still unsent
        (MinerU refused them or never got them: not billed). A submit whose answer was lost keeps
        its reservation (MinerU may have billed it).
        """
        try:
            yield
        except MinerUAmbiguousSubmitError:
            raise
        except Exception:
            unanswered = set(submission.unanswered)
            self.release(context, [i for i in submission.unsent() if i not in unanswered])
            raise

    def release(self, context: Mapping[str, Any], indices: Sequence[int]) -> None:
        """Give back the reservations of inputs whose submit MinerU refused or never got (not billed)."""
        if not indices or not self.budgeted:
            return
        record = self._read_record(context)
        by_day: dict[str, int] = {}
        files: dict[str, int] = {}
        for index in indices:
            entry = record.get("reserved", {}).get(str(index))
            if entry:
                by_day[entry[0]] = by_day.get(entry[0], 0) + int(entry[1])
                files[entry[0]] = files.get(entry[0], 0) + 1
        if not by_day:
            return
        budget = self.account.budget
        for day, pages in by_day.items():
            budget.release_on(day, pages, files[day])

        def change(doc: dict[str, Any]) -> None:
            for index in indices:
                doc["reserved"].pop(str(index), None)

        self._update_record(context, change)

    # -- 3. the finish -------------------------------------------------------------------------------

    def unsent(self, context: Mapping[str, Any]) -> dict[int, str]:
        """Input index → outcome of the inputs this run did not send (from the record: any worker)."""
        return {int(i): str(o) for i, o in self._read_record(context).get("unsent", {}).items()}

    def finish(
        self,
        context: Mapping[str, Any],
        finished: FinishedWait | None,
        waited: WaitedDocuments | None,
    ) -> FinishedWait:
        """
        Settle, merge the unsent inputs' rows, send the metrics, write the manifest.

        :param finished: the finished wait (None when nothing was sent at all).
        :param waited: the documents waited on (sent inputs, in input order), or None.
        """
        from airflow_provider_mineru.waiting.finish import FinishedWait  # finishing loads the downloads

        record = self._read_record(context)
        unsent_rows = {int(i): entry for i, entry in record.get("unsent", {}).items()}
        unsent = {i: str(entry[0]) for i, entry in unsent_rows.items()}
        message = str(record.get("message") or "")
        documents: Sequence[DocumentResult] = waited.documents if waited is not None else ()
        sources = list(waited.sources) if waited is not None and waited.sources else [None] * len(documents)
        total = len(sources) + len(unsent)
        sent = [i for i in range(total) if i not in unsent]
        inputs: list[tuple[str | None, str | None]] = []
        position = 0
        for index in range(total):
            if index in unsent_rows:
                inputs.append((unsent_rows[index][1], unsent_rows[index][2]))
            else:
                document = documents[position] if position < len(documents) else None
                inputs.append((sources[position], document.file_name if document else None))
                position += 1
        by_input = dict(zip(sent, documents, strict=False))
        if finished is None:
            finished = FinishedWait(_empty_value(self.wait_name), {"documents": 0, "done": 0, "failed": 0, "pages": 0})
        value = _merge_unsent(dict(finished.value), unsent, inputs, message)
        results = value.get("results")
        rows = results if isinstance(results, list) else [value]
        row_of = {i: rows[i] for i in by_input if i < len(rows) and isinstance(rows[i], Mapping)}
        pages = {i: _reported_pages(d, row_of.get(i, {})) for i, d in by_input.items()}
        self._settle(context, record, by_input, pages)
        estimates = {int(i): int(entry[1]) for i, entry in record.get("reserved", {}).items()}
        counted = {i: pages[i] if pages[i] is not None else estimates.get(i) for i in pages}  # else our estimate
        self._metrics(by_input, counted, unsent, self._token())
        rows = self._manifest_rows(row_of, by_input, counted, unsent, inputs, message, waited)
        if self.output_path is not None:
            ti = context.get("ti") or context.get("task_instance")
            map_index = getattr(ti, "map_index", None)
            location = write_manifest(
                self.output_path,
                rows,
                dag_id=str(getattr(ti, "dag_id", "") or "dag"),
                run_id=str(context.get("run_id") or getattr(ti, "run_id", "") or "run"),
                task_id=str(getattr(ti, "task_id", "") or "task"),
                map_index=map_index if isinstance(map_index, int) else None,
            )
            value[MANIFEST_KEY] = location
            self.log.info("Run manifest (one JSON line per input): %s", location)
        summary = dict(finished.summary)
        if unsent:
            summary[OUTCOME_DEFERRED_BUDGET] = sum(1 for o in unsent.values() if o == OUTCOME_DEFERRED_BUDGET)
        return replace(finished, value=value, summary=summary)

    def _settle(
        self,
        context: Mapping[str, Any],
        record: Mapping[str, Any],
        by_input: Mapping[int, DocumentResult],
        pages_of: Mapping[int, int | None],
    ) -> None:
        """Count what MinerU reported instead of the estimate, once per reserved document."""
        reserved, settled = record.get("reserved", {}), set(record.get("settled", []))
        done: list[int] = []
        for index, document in by_input.items():
            entry = reserved.get(str(index))
            pages = pages_of.get(index)
            if not entry or index in settled or not document.is_terminal or pages is None:
                continue
            self.account.budget.settle(entry[0], int(entry[1]), int(pages))
            done.append(index)
        if done:
            self._update_record(context, lambda doc: doc.__setitem__("settled", sorted({*doc["settled"], *done})))
        if self.budgeted:
            usage = self.account.budget.usage()
            metrics.budget_remaining(self.conn_id, pages=usage.pages_remaining, files=usage.files_remaining)

    def _metrics(
        self,
        by_input: Mapping[int, DocumentResult],
        pages_of: Mapping[int, int | None],
        unsent: Mapping[int, str],
        token: str,
    ) -> None:
        tags = {"flavor": self.flavor, "model": self.model}
        pages = 0
        for index, document in by_input.items():
            if document.is_terminal:
                metrics.document_finished(self.conn_id, outcome=document.state.value, error_code=None, **tags)
            pages += pages_of.get(index) or 0
        for outcome in unsent.values():
            metrics.document_finished(self.conn_id, outcome=outcome, **tags)
        if by_input:
            metrics.pages_submitted(self.conn_id, pages, **tags)
        metrics.token_expiry_days(self.conn_id, token)

    def _manifest_rows(
        self,
        row_of: Mapping[int, Mapping[str, Any]],
        by_input: Mapping[int, DocumentResult],
        pages_of: Mapping[int, int | None],
        unsent: Mapping[int, str],
        inputs: Sequence[tuple[str | None, str | None]],
        message: str,
        waited: WaitedDocuments | None,
    ) -> list[ManifestRow]:
        batch_of = dict(zip(sorted(by_input), waited.batch_of, strict=False)) if waited is not None else {}
        lines = []
        for index, (source, name) in enumerate(inputs):
            row = row_of.get(index, {})
            shown = str(source or name or index)
            if index in unsent:
                lines.append(ManifestRow(input=shown, outcome=unsent[index], error=message or None))
                continue
            document = by_input.get(index)
            if document is None:
                continue
            state = document.state
            outcome = "done" if state is MinerUState.DONE else "failed" if state is MinerUState.FAILED else None
            if outcome is None:  # still running at a time-out: not a final outcome, not in the manifest
                continue
            lines.append(
                ManifestRow(
                    input=shown,
                    outcome=outcome,
                    pages=pages_of.get(index),
                    data_id=document.data_id,
                    task_id=document.task_id,
                    batch_id=None if document.task_id else batch_of.get(index),
                    error=document.err_msg or None,
                    output=row.get("output_path"),
                )
            )
        return lines


def _reported_pages(document: DocumentResult, row: Mapping[str, Any]) -> int | None:
    """
    The pages MinerU reported for a finished document: its ``total_pages`` when the state still
    carries it, else the pages of its landed result (``*_content_list.json``); None when unknown.
    """
    if document.progress is not None and document.progress.total_pages:
        return document.progress.total_pages
    output = row.get("output_path")
    if document.state is not MinerUState.DONE or not output:
        return None
    # the results' readers, only at the finish of a run that landed results
    from airflow_provider_mineru.results.downloads import count_pages, output_root
    from airflow_provider_mineru.results.rag_documents import find_content_list

    try:
        content_list = find_content_list(output_root(output))
    except OSError:
        return None
    return (count_pages(content_list) or None) if content_list is not None else None


def _empty_value(wait_name: str) -> dict[str, Any]:
    """The XCom of a run that sent nothing (every input was reported instead)."""
    if wait_name == "task":
        return {}
    return {"batch_ids": [], "results": []}


def _unsent_row(outcome: str, source: str | None, name: str | None, message: str, single: bool) -> dict[str, Any]:
    err = message or f"not sent: {outcome}"
    fields = {"data_id": None, "state": outcome, "full_zip_url": None, "err_msg": err, "output_path": None}
    if single:
        return {"task_id": None, **fields, "source": source}
    return {"file_name": name, **fields, "batch_id": None}


def _merge_unsent(
    value: dict[str, Any], unsent: Mapping[int, str], inputs: Sequence[tuple[str | None, str | None]], message: str
) -> dict[str, Any]:
    """Put the rows of the inputs not sent back in input order, and count them in ``counts``."""
    if not unsent:
        return value
    if "results" not in value and "batch_ids" not in value:  # the single-task XCom: its one input was not sent
        index, outcome = next(iter(unsent.items()))
        source, name = inputs[index]
        value = {**_unsent_row(outcome, source, name, message, single=True), **value}
    elif isinstance(value.get("results"), list):
        results = list(value["results"])
        for index in sorted(unsent):
            source, name = inputs[index]
            results.insert(index, _unsent_row(unsent[index], source, name, message, single=False))
        value["results"] = results
    counts = dict(value.get("counts") or {})
    counts[OUTCOME_DEFERRED_BUDGET] = sum(1 for o in unsent.values() if o == OUTCOME_DEFERRED_BUDGET)
    never = sum(1 for o in unsent.values() if o == OUTCOME_NEVER_FITS)
    if never:
        counts[OUTCOME_NEVER_FITS] = never
    value["counts"] = counts
    return value
