"""
The ledger in an operator's run: plan before anything is sent, merge and record after the results land.

Two calls from the shared flow (:mod:`airflow_provider_mineru.operators.base`), nothing else:

1. :meth:`LedgerRun.start`, right after ``prepare()``: every input's :class:`~.key.LedgerKey`
   (files: their sha256 through the :class:`~.content_index.ContentIndex`, so an unchanged input is
   not read again; URLs: the ``ETag`` / ``Last-Modified`` of one HEAD request), then
   :func:`~.plan.plan`, one log line per input in a DAG author's words, and the operator narrowed to
   the inputs that pay (:meth:`LedgerOperator.keep_inputs`). Inputs it reuses, copies or skips send
   no request and no upload. A new key is claimed first (:meth:`~.store.LedgerStore.claim`): of two
   task instances meeting the same new content, the loser waits (bounded by the claim's lease)
   for the winner's entry and reuses it, or parses itself when the claim expires.
2. :func:`complete_run`, when the wait has finished (blocking, or in ``execute_complete`` on a new
   operator instance: the plan is kept in ``.mineru-ledger/runs/`` between the two): copies of
   results already landed, the reused rows merged back in input order (``"reused": true``), each
   final row recorded (:meth:`~.store.LedgerStore.record_done` after the completion marker,
   :meth:`~.store.LedgerStore.record_failure`), the batch XCom's ``"counts"``.

The ledger saves money; it never fails a task whose results are landed: a record that cannot be
written is logged, and that document is paid once more by a later run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pathlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_mineru.account.manifest import MANIFEST_KEY, ManifestRow, append_manifest
from airflow_provider_mineru.exceptions import MinerUValidationError
from airflow_provider_mineru.ledger.attempts import validate_max_attempts
from airflow_provider_mineru.ledger.content_index import ContentIndex, local_validator, object_validator
from airflow_provider_mineru.ledger.entry import EntryState
from airflow_provider_mineru.ledger.events import PendingTombstones, TombstoneEvent, emit_tombstone_events
from airflow_provider_mineru.ledger.key import LedgerKey
from airflow_provider_mineru.ledger.plan import PlanInput, PlanItem, plan
from airflow_provider_mineru.ledger.reasons import Action, Reason
from airflow_provider_mineru.ledger.store import LEDGER_DIR, LedgerStore
from airflow_provider_mineru.ledger.sync import Listing, apply_sync, plan_sync
from airflow_provider_mineru.results.downloads import count_pages
from airflow_provider_mineru.results.landing import read_marker
from airflow_provider_mineru.results.xcom import read_results_jsonl
from airflow_provider_mineru.submission.record import Identity
from airflow_provider_mineru.utils.storage_paths import (
    is_local_location,
    is_object_storage_path,
    join_relative,
    local_path_text,
    storage_path,
)
from airflow_provider_mineru.waiting.finish import FinishedWait

if TYPE_CHECKING:
    from airflow_provider_mineru.inputs.sources import SourceFile

__all__ = ["COUNT_NAMES", "LedgerInput", "LedgerOperator", "LedgerRun", "complete_run", "release_after_failure"]

log = logging.getLogger(__name__)

_RUNS = f"{LEDGER_DIR}/runs"
#: The keys of the batch XCom's ``"counts"``.
COUNT_NAMES = ("parsed", "reused", "failed", "skipped_attempts", "tombstoned")
#: Seconds between looks at another task instance's claimed key.
CLAIM_POLL_SECONDS = 1.0


@dataclass(frozen=True)
class LedgerInput:
    """
    One input of an operator, as the ledger needs it.

    :param name: the file name MinerU sees, or the URL's last path component.
    :param source: the file's location or the URL (what sync compares).
    :param folder: its output folder, relative to ``output_path``.
    :param per_file: its own options (``is_ocr``, ``page_ranges``, ``data_id``).
    :param file: the file to hash; None for a URL.
    """

    name: str
    source: str
    folder: str
    per_file: Mapping[str, Any]
    file: SourceFile | None = None


class LedgerOperator(Protocol):
    """What the ledger reads of a submit operator (``MinerUBaseOperator`` and its subclasses)."""

    output_path: Any
    incremental: bool
    force: bool
    max_attempts_per_document: int
    sync: str
    max_delete_fraction: float
    allow_mass_delete: bool
    wait_for_completion: bool
    retries: Any
    #: what it waits on (``wait.name`` "task": the one-task XCom)
    wait: Any
    log: Any
    outlets: Any

    @property
    def hook(self) -> Any: ...

    def options(self) -> dict[str, Any]: ...

    def ledger_inputs(self) -> list[LedgerInput]: ...

    def keep_inputs(self, indices: Sequence[int]) -> None: ...


def _enabled(operator: LedgerOperator) -> bool:
    return bool(operator.incremental) and operator.output_path not in (None, "") and operator.wait_for_completion


def validate_ledger_params(operator: LedgerOperator) -> None:
    """The ledger's parameters, checked before any request (each error names its field)."""
    for name in ("incremental", "force", "allow_mass_delete"):
        if not isinstance(getattr(operator, name), bool):
            raise MinerUValidationError(name, getattr(operator, name), "must be True or False")
    validate_max_attempts(operator.max_attempts_per_document)
    fraction = operator.max_delete_fraction
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction <= 1:
        raise MinerUValidationError("max_delete_fraction", fraction, "must be a number from 0 to 1")
    if operator.sync not in ("off", "scoped"):
        raise MinerUValidationError("sync", operator.sync, 'must be "off" or "scoped"')
    if operator.sync == "scoped":
        if not callable(getattr(operator, "ledger_listings", None)):
            raise MinerUValidationError(
                "sync",
                operator.sync,
                "needs inputs listed from a folder, prefix or glob (MinerUUploadFilesOperator); a list of URLs "
                "has no listing to tell a deleted source from one left out",
            )
        if not _enabled(operator):
            raise MinerUValidationError(
                "sync", operator.sync, "needs the ledger: output_path set, incremental=True, wait_for_completion=True"
            )


def listings(listed: Sequence[tuple[Any, Sequence[str]]]) -> list[Listing]:
    """
    The :class:`~.sync.Listing` of each folder, prefix or glob an operator resolved (a single file
    lists nothing). A glob's scope is the folder it searches (its part before the first wildcard).

    :param listed: per ``paths`` item, the item and the locations it resolved to (complete: resolving
        raises on any error, before this is called).
    """
    found = []
    for item, locations in listed:
        scope = _scope(item)
        if scope is not None:
            found.append(Listing.of(scope, locations))
    return found


def _scope(item: Any) -> str | None:
    wild = frozenset("*?[")
    if is_object_storage_path(item) or (isinstance(item, str) and not is_local_location(item)):
        path = storage_path(item)
        if wild & set(str(path)):
            while wild & set(str(path)):
                path = path.parent
            return str(path)
        return str(path) if path.is_dir() else None
    text = os.path.expanduser(local_path_text(os.fspath(item)))
    if wild & set(text):
        parts = []
        for part in pathlib.Path(text).parts:
            if wild & set(part):
                break
            parts.append(part)
        return str(pathlib.Path(*parts)) if parts else "."
    return str(pathlib.Path(text)) if os.path.isdir(text) else None


def _owner(context: Mapping[str, Any]) -> str:
    identity = Identity.from_context(context)
    return f"{identity.dag_id}/{identity.run_id}/{identity.task_id}/{identity.map_index}"


class LedgerRun:
    """
    The ledger's plan of one task instance, and what it does with the results.

    :param store: the ledger of ``output_path``.
    :param items: the plan, one item per input in input order.
    :param owner: the task instance (``dag/run/task/map_index``): the claims' owner.
    """

    def __init__(
        self, store: LedgerStore, items: Sequence[PlanItem], owner: str, data_ids: Sequence[str | None] = ()
    ) -> None:
        self.store = store
        self.items = list(items)
        self.owner = owner
        self.data_ids = list(data_ids) or [None] * len(self.items)
        #: what a scoped sync moved to the tombstones in this task instance (earlier failed tries included)
        self.tombstones: list[TombstoneEvent] = []
        #: the rows of the inputs that sent nothing (reused, copied, skipped), set by :meth:`complete`
        self.unpaid: list[tuple[PlanItem, dict[str, Any]]] = []
        #: how long an input another task instance is parsing is waited for (its claim's lease)
        self.claim_ttl = 6 * 3600.0 + 600.0

    # -- before sending -----------------------------------------------------------------------------

    @classmethod
    def start(cls, operator: LedgerOperator, context: Mapping[str, Any]) -> LedgerRun | None:
        """
        Plan the run and narrow ``operator`` to the inputs that pay; None when the ledger is off
        (``incremental=False``, no ``output_path``, or ``wait_for_completion=False``).
        """
        validate_ledger_params(operator)
        if not _enabled(operator):
            return None
        hook = operator.hook
        store = LedgerStore(operator.output_path, hook.config.token)
        inputs = operator.ledger_inputs()
        plan_inputs = _keys(store, inputs, operator.options(), hook, hook.config.api_flavor)
        items = plan(
            plan_inputs,
            store,
            force=operator.force,
            max_attempts=operator.max_attempts_per_document,
            # object storage: every marker's fingerprint from one listing; local disk: a stat per reused
            # folder is cheaper than walking every file of every result (measured: 1.7 s of 11 s per 1,000)
            markers=None if store.files.local else store.marker_fingerprints(),
        )
        run = cls(store, items, _owner(context), [item.per_file.get("data_id") for item in inputs])
        run.claim_ttl = _claim_ttl(operator)
        run._claim_or_wait(operator)
        run._copy_landed(operator)
        if operator.sync == "scoped":
            run.tombstones = PendingTombstones(store, run.owner).load()  # an earlier failed try's, to announce
            run._sync(operator)
        for item in run.items:
            operator.log.info("MinerU ledger: %s", item.describe())
        operator.log.info("MinerU ledger: %s", run.summary())
        if run.sends:
            run._save_plan(context)
            operator.keep_inputs(run.sends)
        return run

    @property
    def sends(self) -> list[int]:
        """The indices of the inputs sent to MinerU this run."""
        return [i for i, item in enumerate(self.items) if item.pays]

    def summary(self) -> str:
        counted = {action: sum(1 for item in self.items if item.action is action) for action in Action}
        return (
            f"{counted[Action.PARSE]} of {len(self.items)} inputs are sent to MinerU; "
            f"{counted[Action.REUSE]} reused, {counted[Action.COPY]} copied from another folder (0 pages), "
            f"{counted[Action.SKIP]} skipped after too many failures"
        )

    def _claim_or_wait(self, operator: LedgerOperator) -> None:
        """
        Claim every key this run pays for. After winning, the entry is read again (the previous
        claimer may have just finished: then it is reused). A key another task instance holds is
        not sent: it becomes an :attr:`Action.AWAIT`, whose result is taken after this run's own
        inputs have landed (:meth:`_awaited`). Waiting only then means two instances that each hold
        a key the other needs never wait for each other.
        """
        ttl = _claim_ttl(operator)
        force = bool(operator.force)
        for index, item in enumerate(self.items):
            if not item.pays:
                continue
            if not self.store.claim(item.input.key, self.owner, ttl):
                self.items[index] = PlanItem(item.input, Action.AWAIT, Reason.CLAIMED_ELSEWHERE, item.entry)
                continue
            settled = None if force or item.reason is Reason.UNVERIFIABLE else self._settled(item)
            if settled is not None:
                self.items[index] = settled
                self.store.release(item.input.key, self.owner)
        awaited = sum(1 for item in self.items if item.action is Action.AWAIT)
        if awaited:
            operator.log.info(
                "MinerU ledger: %d inputs are being parsed by another task instance right now; their results are "
                "taken when they land, instead of paying twice",
                awaited,
            )

    def _awaited(self, item: PlanItem, ttl: float) -> PlanItem:
        """
        ``item`` (held by another task instance) as a reuse or a copy once that instance's entry is
        done. Bounded by the claim's lease: when the claim ends without a result, the input fails
        and is parsed by a retry or the next run.
        """
        deadline = time.monotonic() + ttl
        while True:
            settled = self._settled(item)
            if settled is not None:
                return settled
            if self.store.claim(item.input.key, self.owner, ttl):  # its claim ended: a result, or none
                # the other task instance may have recorded and released between the look and the claim
                settled = self._settled(item)
                self.store.release(item.input.key, self.owner)
                if settled is not None:
                    return settled
                raise RuntimeError("the task instance that was parsing it stopped without a result")
            if time.monotonic() > deadline:
                raise RuntimeError("the task instance that was parsing it did not finish within the claim's lease")
            time.sleep(CLAIM_POLL_SECONDS)

    def _settled(self, item: PlanItem) -> PlanItem | None:
        """``item`` as a reuse or a copy when its key has a done entry whose folder verifies now, else None."""
        entry = self.store.get(item.input.key)
        if entry is None or entry.state is not EntryState.DONE:
            return None
        folder = item.input.folder
        if entry.output_for(folder) is not None and self.store.verify(entry, folder):
            return PlanItem(item.input, Action.REUSE, Reason.UNCHANGED, entry, folder)
        origin = next((o.folder for o in entry.outputs if self.store.verify(entry, o.folder)), None)
        return None if origin is None else PlanItem(item.input, Action.COPY, Reason.SAME_CONTENT, entry, origin)

    def _copy_landed(self, operator: LedgerOperator) -> None:
        """
        Copy results already landed in another folder (a copy or a rename) into their inputs' own
        folders now, before a scoped sync may move the other folder away; such an input becomes
        a reuse. A copy that fails is parsed instead.
        """
        for index, item in enumerate(self.items):
            if item.action is not Action.COPY or item.after is not None or item.entry is None or not item.copy_from:
                continue
            try:
                entry = self.store.copy_result(
                    item.entry, item.copy_from, item.input.folder, source=item.input.source, name=item.input.name
                )
            except Exception as exc:
                operator.log.warning("MinerU ledger: copying %s failed (%s); it is parsed", item.input.name, exc)
                self.items[index] = PlanItem(item.input, Action.PARSE, Reason.RESULT_GONE, item.entry)
                continue
            self.items[index] = PlanItem(item.input, Action.REUSE, Reason.SAME_CONTENT, entry, item.copy_from)

    def _sync(self, operator: LedgerOperator) -> None:
        """Scoped sync: tombstone the outputs whose source is gone from this run's listings (the safety valve first)."""
        snapshot = self.store.snapshot()
        for listing in operator.ledger_listings():  # type: ignore[attr-defined]
            planned = plan_sync(
                listing,
                snapshot,
                max_delete_fraction=operator.max_delete_fraction,
                allow_mass_delete=operator.allow_mass_delete,
            )
            if planned.refused:
                operator.log.warning("MinerU ledger sync: %s", planned.refused)
                continue
            for done in apply_sync(self.store, planned):
                self.tombstones.append(
                    TombstoneEvent(done.folder, done.moved_to, done.sources, done.ledger_keys, done.pages)
                )
                try:  # announced when a try succeeds; until then a failed try leaves them to the next
                    PendingTombstones(self.store, self.owner).save(self.tombstones)
                except Exception as exc:
                    log.warning("MinerU ledger sync: could not keep the tombstones for a retry's events (%s)", exc)
                operator.log.info(
                    "MinerU ledger sync: %s is gone from %s; its output %s moved to %s",
                    ", ".join(done.sources),
                    listing.scope,
                    done.folder,
                    done.moved_to or "(already gone)",
                )
            snapshot = self.store.snapshot() if planned.tombstones else snapshot

    def _run_file(self, context: Mapping[str, Any]) -> str:
        return f"{_RUNS}/{hashlib.sha256(_owner(context).encode('utf-8')).hexdigest()}.json"

    def _save_plan(self, context: Mapping[str, Any]) -> None:
        """Keep the plan for ``execute_complete`` (a new operator instance, after the triggerer)."""
        body = {
            "owner": self.owner,
            "items": [
                {
                    "name": item.input.name,
                    "source": item.input.source,
                    "folder": item.input.folder,
                    "key": item.input.key.to_dict(),
                    "action": item.action.value,
                    "reason": item.reason.value,
                    "copy_from": item.copy_from,
                    "after": item.after,
                    "data_id": data_id,
                }
                for item, data_id in zip(self.items, self.data_ids, strict=True)
            ],
        }
        self.store.write_sealed(self._run_file(context), body, "mineru-ledger/run")

    @classmethod
    def load(cls, operator: LedgerOperator, context: Mapping[str, Any], *, warn: bool = True) -> LedgerRun | None:
        """
        The plan :meth:`start` kept for this task instance, or None (none, unreadable, or another's).

        :param warn: log a warning when there is none (False: a failed try looking for claims to release).
        """
        if not _enabled(operator):
            return None
        store = LedgerStore(operator.output_path, operator.hook.config.token)
        owner = _owner(context)
        run = cls(store, [], owner)
        run.claim_ttl = _claim_ttl(operator)
        where = run._run_file(context)
        body, why = store.read_sealed(where, "mineru-ledger/run")
        if body is None or body.get("owner") != owner:
            if not warn:
                return None
            log.warning("No usable MinerU ledger plan in %s (%s); this run's results are not recorded", where, why)
            return None
        run.tombstones = PendingTombstones(store, owner).load() if operator.sync == "scoped" else []
        for raw in body.get("items") or ():
            key = LedgerKey.from_dict(raw.get("key"))
            if key is None:
                return None
            entry = store.get(key)
            run.data_ids.append(raw.get("data_id"))
            run.items.append(
                PlanItem(
                    PlanInput(raw["name"], raw["source"], key, raw["folder"]),
                    Action(raw["action"]),
                    Reason(raw["reason"]),
                    entry,
                    raw.get("copy_from"),
                    raw.get("after"),
                )
            )
        return run

    # -- after the results landed ---------------------------------------------------------------------

    def complete(self, value: dict[str, Any], *, single: bool, force: bool) -> dict[str, Any]:
        """
        The XCom of the whole run: the rows of the parsed inputs (``value``, in the order sent)
        merged with the reused, copied and skipped ones in input order; each parsed row recorded.

        :param value: the finished wait's XCom (a task's, or a batch's; a spilled batch is read back).
        :param single: the one-task XCom (``MinerUSubmitTaskOperator``): no ``counts``.
        :param force: the run was forced: a failure starts the attempts count again.
        """
        parsed_rows = [value] if single and value else list(_batch_rows(value))
        sent = self.sends
        rows: list[dict[str, Any] | None] = [None] * len(self.items)
        for position, index in enumerate(sent):
            row = dict(parsed_rows[position]) if position < len(parsed_rows) else None
            if row is not None:
                row["reused"] = False
                row["ledger_key"] = self.items[index].input.key.id
                self._record(self.items[index], row, force=force)
            rows[index] = row
        landed = {self.items[i].input.name: rows[i] for i in sent}
        counts = dict.fromkeys(COUNT_NAMES, 0)
        counts["tombstoned"] = len(self.tombstones)
        for index, item in enumerate(self.items):
            if item.pays:
                state = (rows[index] or {}).get("state")
                if state in ("done", "failed"):
                    counts["parsed" if state == "done" else "failed"] += 1
                continue
            rows[index] = self._row_without_paying(index, landed, single=single)
            self.unpaid.append((item, rows[index]))
            if item.action is Action.SKIP:
                counts["skipped_attempts"] += 1
            elif rows[index].get("state") == "done":
                counts["reused"] += 1
            else:
                counts["failed"] += 1
        if single:
            return rows[0] or value
        # the counts an earlier stage added (the account's ``deferred_budget``) are kept after the ledger's
        counts.update({k: v for k, v in (value.get("counts") or {}).items() if k not in counts})
        merged = [row for row in rows if row is not None]
        if "results" in value:
            return {**value, "results": merged, "counts": counts}
        _rewrite_spilled(value, merged)
        return {**value, "count": len(merged), "counts": counts}

    def _row_without_paying(
        self, index: int, landed: Mapping[str, dict[str, Any] | None], *, single: bool
    ) -> dict[str, Any]:
        item = self.items[index]
        folder = item.input.folder
        state, error = "done", None
        try:
            if item.action is Action.AWAIT:
                item = self.items[index] = self._awaited(item, self.claim_ttl)
            entry = item.entry
            if item.action is Action.COPY:
                origin_folder = item.copy_from
                if item.after is not None:  # the same content as another input of this run
                    first = landed.get(item.after) or {}
                    entry = self.store.get(item.input.key)
                    origin_folder = _relative(self.store.files.given, first.get("output_path"))
                if entry is None or origin_folder is None or entry.state is not EntryState.DONE:
                    raise RuntimeError(f"{item.after or item.copy_from} has no result to copy")
                entry = self.store.copy_result(
                    entry, origin_folder, folder, source=item.input.source, name=item.input.name
                )
        except Exception as exc:
            entry = item.entry
            log.warning("MinerU ledger: %s has no result to take (%s); a later run parses it", item.input.name, exc)
            if item.action is Action.AWAIT:
                error = f"being parsed by another task instance, which gave no result: {exc}; a retry parses it"
            else:
                error = f"same content as another input, whose result could not be copied: {exc}"
            state = "failed"
        if item.action is Action.SKIP:
            tries = entry.attempts if entry else "?"
            state = "failed"
            error = (
                f"skipped: it failed {tries} times (max_attempts_per_document); last error: "
                f"{(entry.last_error_message if entry else None) or 'none'}; force=True parses it again"
            )
        output = str(join_relative(self.store.files.given, folder)) if state == "done" else None
        common = {
            "data_id": self.data_ids[index],
            "state": state,
            "full_zip_url": None,
            "err_msg": error,
            "output_path": output,
        }
        mark = {"reused": state == "done", "ledger_key": item.input.key.id}
        if single:
            return {"task_id": entry.task_id if entry else None, **common, "source": item.input.source, **mark}
        row = {"file_name": item.input.name, **common, "batch_id": entry.batch_id if entry else None, **mark}
        if item.action is Action.SKIP:
            row["skipped"] = "max_attempts_per_document"
        return row

    def _record(self, item: PlanItem, row: Mapping[str, Any], *, force: bool) -> None:
        """Record one parsed input's final row (never fails the task: the result is landed)."""
        key, source, name = item.input.key, item.input.source, item.input.name
        try:
            if row.get("state") == "done" and row.get("output_path"):
                folder = _relative(self.store.files.given, row["output_path"])
                if folder is None:
                    return
                self.store.record_done(
                    key,
                    folder,
                    source=source,
                    name=name,
                    task_id=row.get("task_id"),
                    batch_id=row.get("batch_id"),
                    pages=_pages(join_relative(self.store.root, folder)),
                )
            elif row.get("state") == "failed":
                self.store.record_failure(
                    key,
                    source=source,
                    name=name,
                    code=None,
                    message=row.get("err_msg"),
                    task_id=row.get("task_id"),
                    folder=item.input.folder,
                    reset=force,
                )
        except Exception as exc:
            log.warning(
                "MinerU ledger: could not record %s (%s); a later run parses it again instead of reusing it", name, exc
            )
        finally:
            self.store.release(key, self.owner)

    def forget(self, context: Mapping[str, Any]) -> None:
        """Remove the kept plan (the run is recorded)."""
        try:
            self.store.files.delete(self._run_file(context))
        except Exception as exc:
            log.debug("Could not remove the MinerU ledger plan: %s", exc)


def _claim_ttl(operator: LedgerOperator) -> float:
    """A claim's lease: the operator's time-out (how long its wait may take) plus 10 minutes to land."""
    timeout = getattr(operator, "timeout", None)
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout or 6 * 3600)
    return seconds + 600.0


def _batch_rows(value: Mapping[str, Any]) -> list[dict[str, Any]]:
    if "results" in value:
        return list(value["results"])
    if value.get("results_path"):
        return read_results_jsonl(value["results_path"])
    return []


def _rewrite_spilled(value: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> None:
    """A spilled batch XCom's JSONL file, written again with every input's row."""
    with storage_path(value["results_path"]).open("wb") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False).encode("utf-8") + b"\n")


def _relative(root: Any, output_path: Any) -> str | None:
    """``output_path`` (a landed folder) relative to the ledger's root, or None when it is elsewhere."""
    if not output_path:
        return None
    base, text = str(root).rstrip("/"), str(output_path).rstrip("/")
    return text[len(base) + 1 :] if text.startswith(base + "/") else None


def _pages(folder: Any) -> int | None:
    extracted = read_marker(folder)
    if extracted is None or not extracted.content_list:
        return None
    return count_pages(folder / extracted.content_list)


def _keys(
    store: LedgerStore, inputs: Sequence[LedgerInput], options: Mapping[str, Any], hook: Any, flavor: str
) -> list[PlanInput]:
    """Every input's key: files by sha256 (from the content index when unchanged), URLs by a HEAD's validators."""
    index = ContentIndex(store.files, hook.config.token)
    index.prefetch(item.source for item in inputs if item.file is not None)
    keyed = []
    for item in inputs:
        if item.file is None:
            key = LedgerKey.for_url(item.source, hook.transport.head(item.source), options, flavor, item.per_file)
        else:
            source = item.file
            try:
                digest = index.sha256(source.location, _validator(source), source.open)
            except OSError as exc:
                # no content to key it by: keyed like a URL without validators, so it is always sent
                # (its upload then fails alone, as without the ledger) and never reused
                log.warning("MinerU ledger: cannot read %s to hash it (%s); it is sent as it is", source.location, exc)
                keyed.append(
                    PlanInput(
                        item.name, item.source, LedgerKey.for_url(item.source, None, options, flavor), item.folder
                    )
                )
                continue
            key = LedgerKey.for_file(digest, options, flavor, item.per_file)
        keyed.append(PlanInput(item.name, item.source, key, item.folder))
    try:
        index.flush()
    except Exception as exc:
        log.warning("Could not save the MinerU content index (%s); unchanged inputs are hashed again next run", exc)
    return keyed


def _validator(source: SourceFile) -> str | None:
    """What changes with a file's bytes: size, mtime and inode (local); ETag or version id (object storage)."""
    local = source.local_path
    if local is not None:
        try:
            return local_validator(os.stat(local))
        except OSError:
            return None

    path = storage_path(source.location)
    try:
        return object_validator(path.fs.info(path.path))
    except Exception:
        return None


def complete_run(operator: LedgerOperator, context: Mapping[str, Any], finished: FinishedWait) -> FinishedWait:
    """
    ``finished`` with the ledger's part done: reused rows merged back, every input recorded,
    ``"reused"`` on each row and ``"counts"`` on a batch XCom. Unchanged when the ledger is off.

    :param operator: the operator (in deferrable mode, the new instance of ``execute_complete``).
    :param finished: the finished wait of the inputs sent this run.
    """
    run: LedgerRun | None = getattr(operator, "_ledger_run", None)
    if run is None:
        run = LedgerRun.load(operator, context)
    if run is None:
        return finished
    single = operator.wait.name == "task"
    value = run.complete(finished.value, single=single, force=operator.force)
    run.forget(context)
    if run.unpaid and isinstance(value.get(MANIFEST_KEY), str):
        append_manifest(value[MANIFEST_KEY], [_manifest_row(item, row) for item, row in run.unpaid])
    summary = dict(finished.summary)
    reused = sum(1 for _, row in run.unpaid if row.get("state") == "done")
    summary["documents"] = len(run.items)
    summary["done"] = int(summary.get("done") or 0) + reused
    summary["failed"] = int(summary.get("failed") or 0) + len(run.unpaid) - reused
    summary["reused"] = reused
    summary.setdefault("pages", 0)
    summary.setdefault("output_path", str(run.store.root))
    if run.tombstones:
        summary["tombstones"] = [t.folder for t in run.tombstones]
        _announce(operator, context, run, finished)
    return replace(finished, value=value, summary=summary)


def _announce(operator: LedgerOperator, context: Mapping[str, Any], run: LedgerRun, finished: FinishedWait) -> None:
    """One asset event per tombstone through the outlets' aliases; kept for the next try when this one fails."""
    added = emit_tombstone_events(context, operator.outlets, run.store.files.given, run.tombstones)
    if not added:
        operator.log.info(
            "MinerU ledger sync: %d tombstones; add an AssetAlias (DatasetAlias on Airflow 2) to outlets for one "
            "asset event per tombstone (the run's event lists them in extra['tombstones'])",
            len(run.tombstones),
        )
    if finished.error is None:
        try:
            PendingTombstones(run.store, run.owner).forget()
        except Exception as exc:
            log.debug("Could not remove the pending tombstones: %s", exc)


def _manifest_row(item: PlanItem, row: Mapping[str, Any]) -> ManifestRow:
    """The run manifest's line of an input that sent nothing: reused (or copied), or skipped."""
    outcome = "reused" if row.get("state") == "done" else "failed"
    if item.action is Action.SKIP:
        outcome = "skipped_attempts"
    return ManifestRow(
        input=item.input.source,
        outcome=outcome,
        pages=0,
        data_id=row.get("data_id"),
        task_id=row.get("task_id"),
        batch_id=row.get("batch_id"),
        error=row.get("err_msg"),
        output=row.get("output_path"),
    )


def release_after_failure(operator: LedgerOperator, context: Mapping[str, Any], error: BaseException) -> None:
    """
    Release the claims of a try that failed, so another task instance meeting the same content
    does not wait for them to expire (the expiry stays the fallback after a crash).

    Kept only while they still protect a payment: a retry will follow (not the last try, not
    ``AirflowFailException``) and the try's submission record names MinerU tasks or batches that the
    retry resumes; another task instance then waits for that result instead of paying a second time.
    A retry never waits for its own claims (the same owner). Never raises: the task's error is the story.

    :param operator: the operator whose ``execute`` or ``execute_complete`` raised.
    :param context: the task context (its task instance: the claims' owner, the try number).
    :param error: what it raised.
    """
    run: LedgerRun | None = getattr(operator, "_ledger_run", None)
    if run is None:  # execute_complete, or a try that failed before planning (then there is no plan)
        try:
            run = LedgerRun.load(operator, context, warn=False)
        except Exception as exc:  # no connection, no output_path: nothing was claimed
            log.debug("No MinerU ledger plan to release claims from: %s", exc)
            return
    if run is None or not run.sends:
        return
    try:
        if _retry_resumes(operator, context, error):
            operator.log.info(
                "MinerU ledger: this try failed after sending its documents; its claims are kept for the retry, "
                "which resumes them (another task instance waits for that result instead of paying again)"
            )
            return
        for index in run.sends:
            run.store.release(run.items[index].input.key, run.owner)
        operator.log.info("MinerU ledger: this try failed; its %d claims are released", len(run.sends))
    except Exception as exc:
        log.warning("MinerU ledger: could not release the claims of the failed try (%s); they expire on their own", exc)


def _retry_resumes(operator: LedgerOperator, context: Mapping[str, Any], error: BaseException) -> bool:
    """Whether a retry of this task instance will resume a MinerU submission this try (or an earlier one) made."""
    if type(error).__name__ in ("AirflowFailException", "AirflowSkipException"):
        return False
    ti = context.get("ti")
    if ti is None or getattr(ti, "try_number", 1) > (operator.retries or 0):
        return False
    # the submission record: what a retry resumes (imported on this failure path only)
    from airflow_provider_mineru.submission.store import SubmissionStore

    submission = SubmissionStore(context).load_submission(Identity.from_context(context), operator.hook.config.token)
    return submission is not None and bool(submission.ids)
