"""
``max_attempts_per_document``: a document that keeps failing is not resubmitted by later runs.

Every paid attempt that failed is counted in its entry (:meth:`~.store.LedgerStore.record_failure`);
once the count reaches the limit, later runs skip the document until ``force=True``, which parses it
and starts the count again. MinerU itself refuses a file after :data:`MINERU_REFUSAL_ATTEMPTS`
failed attempts, so a limit above that only buys refusals.
"""

from __future__ import annotations

from airflow_provider_mineru.exceptions import MinerUValidationError
from airflow_provider_mineru.ledger.entry import EntryState, LedgerEntry

__all__ = ["DEFAULT_MAX_ATTEMPTS", "MINERU_REFUSAL_ATTEMPTS", "attempts_exhausted", "validate_max_attempts"]

DEFAULT_MAX_ATTEMPTS = 3
#: MinerU refuses a file after this many failed attempts.
MINERU_REFUSAL_ATTEMPTS = 5


def validate_max_attempts(value: object, field: str = "max_attempts_per_document") -> int:
    """An int from 1 to :data:`MINERU_REFUSAL_ATTEMPTS`, or a validation error naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MINERU_REFUSAL_ATTEMPTS:
        raise MinerUValidationError(
            field,
            value,
            f"must be a whole number from 1 to {MINERU_REFUSAL_ATTEMPTS} (MinerU refuses a file after that)",
        )
    return value


def attempts_exhausted(entry: LedgerEntry | None, max_attempts: int, *, force: bool = False) -> bool:
    """Whether a failed ``entry`` has used up its attempts (never with ``force``, never when done)."""
    return not force and entry is not None and entry.state is EntryState.FAILED and entry.attempts >= max_attempts
