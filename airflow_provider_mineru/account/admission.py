"""
What a task does with its documents once the budget has answered: ``on_budget_exhausted``.

A pure function of the documents' page counts, the reservation and the policy, so the blocking and
the deferrable paths (and the tests) decide the same way:

- ``"defer"`` (default): what was reserved is sent now; the rest waits, with no worker slot held,
  until the budget resets (:attr:`Admission.resume_at`), and is reserved again then. A task whose
  inputs need several days' budget makes a day's progress each day.
- ``"skip"``: what was reserved is sent; the rest is reported with the outcome ``"deferred_budget"``.
- ``"fail"``: unless everything was reserved, nothing is sent, the reservation is released, and the
  task fails with :attr:`Admission.message`.

In every policy a document with more pages than the whole daily budget can never fit; it is named
in :attr:`Admission.never_fits` (reported as failed, never waited for).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass

from airflow_provider_mineru.account.budget import Reservation
from airflow_provider_mineru.exceptions import MinerUValidationError

#: The outcome written in the rows, the ``counts`` and the manifest of a document the budget skipped.
OUTCOME_DEFERRED_BUDGET = "deferred_budget"


class OnBudgetExhausted(str, enum.Enum):
    """The operator parameter ``on_budget_exhausted``."""

    DEFER = "defer"
    SKIP = "skip"
    FAIL = "fail"

    @classmethod
    def parse(cls, value: str | OnBudgetExhausted) -> OnBudgetExhausted:
        """The policy named by ``value``, or a validation error naming the parameter."""
        try:
            return cls(value)
        except ValueError:
            raise MinerUValidationError(
                "on_budget_exhausted", value, f"must be one of {[p.value for p in cls]}"
            ) from None


class AdmissionAction(str, enum.Enum):
    """What the task does next."""

    SUBMIT = "submit"  #: send :attr:`Admission.send` (maybe nothing, when all were skipped)
    DEFER = "defer"  #: send :attr:`Admission.send`, then wait until :attr:`Admission.resume_at` for the rest
    FAIL = "fail"  #: release the reservation, send nothing, fail with :attr:`Admission.message`


@dataclass(frozen=True)
class Admission:
    """
    The decision for one task's documents (indices into its list of inputs).

    :param action: submit, defer or fail.
    :param send: the documents to send now (reserved).
    :param later: the documents that wait for :attr:`resume_at` (``defer``).
    :param skipped: the documents reported as ``deferred_budget`` (``skip``).
    :param never_fits: documents larger than the whole daily page budget.
    :param resume_at: when the budget resets (``defer`` with documents left).
    :param release_reservation: the caller must release the whole reservation (``fail``).
    :param message: why, in words, when not everything is sent.
    """

    action: AdmissionAction
    send: tuple[int, ...]
    later: tuple[int, ...] = ()
    skipped: tuple[int, ...] = ()
    never_fits: tuple[int, ...] = ()
    resume_at: dt.datetime | None = None
    release_reservation: bool = False
    message: str = ""


def decide_admission(
    page_counts: Sequence[int],
    reservation: Reservation,
    policy: OnBudgetExhausted,
    daily_page_budget: int | None,
) -> Admission:
    """
    The admission decision (pure).

    :param page_counts: estimated pages of each document, in the task's order.
    :param reservation: what :meth:`DailyBudget.reserve_documents` granted for ``page_counts``.
    :param policy: the operator's ``on_budget_exhausted``.
    :param daily_page_budget: the connection's page budget (None: unlimited).
    """
    admitted = set(reservation.admitted)
    send = tuple(sorted(admitted))
    never = tuple(
        i
        for i, count in enumerate(page_counts)
        if i not in admitted and daily_page_budget is not None and count > daily_page_budget
    )
    rest = tuple(i for i in range(len(page_counts)) if i not in admitted and i not in never)
    if not rest and not never:
        return Admission(AdmissionAction.SUBMIT, send)
    reset = reservation.resets_at.strftime("%Y-%m-%d %H:%M UTC")
    words = (
        f"{len(rest) + len(never)} of {len(page_counts)} documents do not fit in today's MinerU budget "
        f"({reservation.pages_remaining if reservation.pages_remaining is not None else 'unlimited'} pages, "
        f"{reservation.files_remaining if reservation.files_remaining is not None else 'unlimited'} files left "
        f"after this reservation; it resets at {reset})"
    )
    if never:
        words += f"; {len(never)} have more pages than the whole daily budget ({daily_page_budget})"
    if policy is OnBudgetExhausted.FAIL:
        return Admission(
            AdmissionAction.FAIL, (), never_fits=never, release_reservation=bool(send), message=words + "."
        )
    if policy is OnBudgetExhausted.SKIP:
        return Admission(AdmissionAction.SUBMIT, send, skipped=rest, never_fits=never, message=words + ".")
    if not rest:
        return Admission(AdmissionAction.SUBMIT, send, never_fits=never, message=words + ".")
    return Admission(
        AdmissionAction.DEFER,
        send,
        later=rest,
        never_fits=never,
        resume_at=reservation.resets_at,
        message=words + f"; the rest waits until {reset}.",
    )
