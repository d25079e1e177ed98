"""
The document ledger: never pay twice across runs (issue 21).

One sealed JSON entry per :class:`LedgerKey` (content, output-changing options, API flavor) under
``<output_path>/.mineru-ledger/``, written only after the result's completion marker, verified
against it before it is trusted. What the operators will call, one job per module:

- :mod:`.key`: :class:`LedgerKey`, :func:`sha256_of_file`
- :mod:`.content_index`: :class:`ContentIndex` (location + validator → sha256, no re-read)
- :mod:`.store`: :class:`LedgerStore` (get, snapshot, verify, record_done, record_failure,
  copy_result, tombstone, claim, release)
- :mod:`.plan`: :func:`plan` → :class:`PlanItem` per input (:class:`Action`, :class:`Reason`)
- :mod:`.attempts`: ``max_attempts_per_document``
- :mod:`.sync`: :func:`plan_sync`, :func:`apply_sync` (scoped sync and its safety valve)
- :mod:`.documents`: :func:`document_id`
- :mod:`.run`: the ledger in an operator's run (``LedgerRun.start`` after ``prepare()``,
  ``complete_run`` when the wait ends); the operators import it when a task runs.

See ``docs/incremental.md``.
"""

from __future__ import annotations

from airflow_provider_mineru.ledger.attempts import DEFAULT_MAX_ATTEMPTS, attempts_exhausted, validate_max_attempts
from airflow_provider_mineru.ledger.content_index import ContentIndex, local_validator, object_validator
from airflow_provider_mineru.ledger.documents import document_id
from airflow_provider_mineru.ledger.entry import EntryState, LedgerEntry, Output
from airflow_provider_mineru.ledger.key import OUTPUT_OPTIONS, LedgerKey, output_options, sha256_of_file
from airflow_provider_mineru.ledger.plan import PlanInput, PlanItem, plan
from airflow_provider_mineru.ledger.reasons import Action, Reason
from airflow_provider_mineru.ledger.store import LedgerSnapshot, LedgerStore, MinerULedgerError
from airflow_provider_mineru.ledger.sync import (
    DEFAULT_MAX_DELETE_FRACTION,
    Listing,
    SyncPlan,
    Tombstone,
    TombstoneResult,
    apply_sync,
    plan_sync,
)

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_DELETE_FRACTION",
    "OUTPUT_OPTIONS",
    "Action",
    "ContentIndex",
    "EntryState",
    "LedgerEntry",
    "LedgerKey",
    "LedgerSnapshot",
    "LedgerStore",
    "Listing",
    "MinerULedgerError",
    "Output",
    "PlanInput",
    "PlanItem",
    "Reason",
    "SyncPlan",
    "Tombstone",
    "TombstoneResult",
    "apply_sync",
    "attempts_exhausted",
    "document_id",
    "local_validator",
    "object_validator",
    "output_options",
    "plan",
    "plan_sync",
    "sha256_of_file",
    "validate_max_attempts",
]
