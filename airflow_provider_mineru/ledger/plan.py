"""
The plan of a run: per input, reuse its result, copy it from another folder, parse it, or skip it; and why.

:func:`plan` reads, per input, its own entry (one store read; none when given a snapshot, which a
scoped sync reads anyway), and for an input without one the entry last recorded for its source
(to say why it is parsed); per result it reuses, the fingerprint of its folder's completion
marker (:meth:`~.store.LedgerStore.verify`: one ``stat`` on local disk, one HEAD on S3). It writes
nothing: the operators pay, land, then record (:meth:`~.store.LedgerStore.record_done`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from airflow_provider_mineru.ledger.attempts import DEFAULT_MAX_ATTEMPTS, attempts_exhausted
from airflow_provider_mineru.ledger.entry import EntryState, LedgerEntry
from airflow_provider_mineru.ledger.key import LedgerKey
from airflow_provider_mineru.ledger.reasons import Action, Reason
from airflow_provider_mineru.ledger.store import LedgerSnapshot, LedgerStore

__all__ = ["LedgerLookup", "PlanInput", "PlanItem", "plan"]


@dataclass(frozen=True)
class PlanInput:
    """
    One input of a run.

    :param name: its name (file name or URL), for logs.
    :param source: where it is read (local path, ``s3://…`` or the URL): what sync compares.
    :param key: its :class:`~.key.LedgerKey`.
    :param folder: the folder its result lands in, relative to ``output_path``.
    """

    name: str
    source: str
    key: LedgerKey
    folder: str


@dataclass(frozen=True)
class PlanItem:
    """
    What happens to one input, and why.

    :param input: the input.
    :param action: reuse, copy, parse, skip or await.
    :param reason: why, in a DAG author's words.
    :param entry: the ledger entry the decision rests on (None for a new input).
    :param copy_from: for a copy, the folder holding the result (None while ``after`` is parsed).
    :param after: for a copy, the name of the input of this run whose parse it waits for.
    """

    input: PlanInput
    action: Action
    reason: Reason
    entry: LedgerEntry | None = None
    copy_from: str | None = None
    after: str | None = None

    @property
    def pays(self) -> bool:
        """Whether this input is sent to MinerU."""
        return self.action is Action.PARSE

    def describe(self) -> str:
        """The log line: ``report.pdf: parse (content changed)``."""
        name = self.input.name
        if self.action is Action.REUSE and self.reason is not Reason.SAME_CONTENT:
            return f"{name}: reused, unchanged since {self.entry.last_seen if self.entry else '?'} (0 pages)"
        if self.action is Action.COPY or self.reason is Reason.SAME_CONTENT:  # to copy, or copied already
            origin = self.after or (self.copy_from or "?")
            return f"{name}: same content as {origin}; its result is copied into {self.input.folder} (0 pages)"
        if self.action is Action.AWAIT:
            return f"{name}: being parsed by another task instance; its result is taken when it lands (0 pages)"
        if self.action is Action.SKIP:
            tries = self.entry.attempts if self.entry else "?"
            error = self.entry.last_error_message if self.entry else None
            return (
                f"{name}: skipped, it failed {tries} times (last: {error or 'no message'}); force=True parses it again"
            )
        return f"{name}: parsed ({self.reason.value})"


class LedgerLookup(Protocol):
    """What a plan reads: a :class:`LedgerStore` (per input) or a :class:`LedgerSnapshot` (read once)."""

    def get(self, key: LedgerKey) -> LedgerEntry | None: ...

    def previous(self, source: str) -> LedgerEntry | None: ...


class _Prefetched:
    """The entries of a run's inputs, read together (:meth:`LedgerStore.get_many`), then looked up."""

    def __init__(self, ledger: LedgerStore, inputs: Sequence[PlanInput]) -> None:
        self._ledger = ledger
        self._entries = ledger.get_many(item.key for item in inputs)

    def get(self, key: LedgerKey) -> LedgerEntry | None:
        return self._entries.get(key.id)

    def previous(self, source: str) -> LedgerEntry | None:
        return self._ledger.previous(source)


def _reason_for_new(item: PlanInput, lookup: LedgerLookup) -> Reason:
    earlier = lookup.previous(item.source)
    if earlier is None or earlier.key.id == item.key.id:
        return Reason.NEW
    return Reason.OPTIONS_CHANGED if earlier.key.same_content(item.key) else Reason.CONTENT_CHANGED


def plan(
    inputs: Sequence[PlanInput],
    ledger: LedgerStore,
    snapshot: LedgerSnapshot | None = None,
    *,
    force: bool = False,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    markers: Mapping[str, str] | None = None,
) -> list[PlanItem]:
    """
    Decide, per input in order, whether this run reuses, copies, parses or skips it.

    - ``force``: every input is parsed (reason "forced"), except a second input with the same
      key in this run, which is copied after the first lands.
    - No trusted entry: parsed, "new", "content changed" or "options changed" (by the latest
      entry of the same source); a URL without validators is always parsed.
    - A failed entry: parsed ("earlier failure") until ``max_attempts`` failures, then skipped.
    - A done entry whose folder for this input verifies: reused. Else one of its other folders
      that verifies is copied (a copy or a rename, 0 pages); else parsed ("earlier result gone").

    :param snapshot: the ledger read once (:meth:`LedgerStore.snapshot`), e.g. when a scoped sync
        needs it too; without one, each input's entry is read from ``ledger``.
    :param markers: :meth:`LedgerStore.marker_fingerprints` (one listing), so reusing a result
        costs no request for its folder on object storage.
    """
    lookup: LedgerLookup = snapshot if snapshot is not None else _Prefetched(ledger, inputs)
    parsing: dict[str, str] = {}
    verified: dict[tuple[str, str], bool] = {}
    items: list[PlanItem] = []

    def holds(entry: LedgerEntry, folder: str) -> bool:
        known = verified.get((entry.key.id, folder))
        if known is None:
            known = verified[(entry.key.id, folder)] = ledger.verify(entry, folder, markers=markers)
        return known

    for item in inputs:
        entry = lookup.get(item.key)
        first = parsing.get(item.key.id)
        if first is not None:
            items.append(PlanItem(item, Action.COPY, Reason.SAME_CONTENT, entry, after=first))
            continue

        def parse(reason: Reason, entry: LedgerEntry | None = entry, item: PlanInput = item) -> None:
            parsing[item.key.id] = item.name
            items.append(PlanItem(item, Action.PARSE, reason, entry))

        if force:
            parse(Reason.FORCED)
        elif not item.key.verifiable:
            parse(Reason.UNVERIFIABLE)
        elif entry is None:
            parse(_reason_for_new(item, lookup))
        elif entry.state is EntryState.FAILED:
            if attempts_exhausted(entry, max_attempts):
                items.append(PlanItem(item, Action.SKIP, Reason.ATTEMPTS_EXHAUSTED, entry))
            else:
                parse(Reason.EARLIER_FAILURE)
        elif entry.state is EntryState.DELETED:
            parse(_reason_for_new(item, lookup))
        elif entry.output_for(item.folder) is not None and holds(entry, item.folder):
            items.append(PlanItem(item, Action.REUSE, Reason.UNCHANGED, entry, copy_from=item.folder))
        else:
            origin = next((o.folder for o in entry.outputs if o.folder != item.folder and holds(entry, o.folder)), None)
            if origin is not None:
                items.append(PlanItem(item, Action.COPY, Reason.SAME_CONTENT, entry, copy_from=origin))
            else:
                parse(Reason.RESULT_GONE)
    return items
