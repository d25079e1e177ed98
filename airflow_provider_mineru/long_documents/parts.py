"""
What became of each slice of a split input: its typed record, the XCom ``parts`` list, the
input's one state, and which slices a retry sends again.

A slice is identified by its page range (``"201-400"``), not by its index: a plan re-cut for a
lower limit (:func:`~.plan.replan_smaller`) renumbers slices but keeps the page ranges of the
ones it did not cut, so their results stay valid.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider_mineru.long_documents.plan import PageSlice, SlicePlan

__all__ = ["PartResult", "input_state", "parts_from_xcom", "parts_to_xcom", "slices_to_send"]

#: MinerU's terminal states.
DONE = "done"
FAILED = "failed"


@dataclass(frozen=True)
class PartResult:
    """
    One slice's outcome, as MinerU reported it.

    :param page_range: the slice's ``page_ranges`` (1-based, inclusive: ``"201-400"``).
    :param state: MinerU's state of the slice (``done``, ``failed``, or one still in progress).
    :param err_msg: MinerU's ``err_msg`` when failed, else ``""``.
    :param task_id: the slice's MinerU ``task_id`` (URL tasks), when known.
    :param data_id: the slice's ``data_id`` (batch files), when known.
    """

    page_range: str
    state: str
    err_msg: str = ""
    task_id: str | None = None
    data_id: str | None = None

    @classmethod
    def of(
        cls, piece: PageSlice, state: str, err_msg: str = "", *, task_id: str | None = None, data_id: str | None = None
    ) -> PartResult:
        """The result of ``piece``."""
        return cls(piece.page_ranges, state, err_msg or "", task_id, data_id)

    @property
    def is_done(self) -> bool:
        return self.state == DONE

    @property
    def is_failed(self) -> bool:
        return self.state == FAILED

    def to_xcom(self) -> dict[str, Any]:
        """``{"page_range", "state", "err_msg"}`` and whichever of ``task_id`` / ``data_id`` is known."""
        row: dict[str, Any] = {"page_range": self.page_range, "state": self.state, "err_msg": self.err_msg}
        if self.task_id is not None:
            row["task_id"] = self.task_id
        if self.data_id is not None:
            row["data_id"] = self.data_id
        return row


def parts_to_xcom(parts: Iterable[PartResult]) -> list[dict[str, Any]]:
    """The XCom row's ``parts`` list, in page order. An unsplit input has no ``parts`` key at all."""
    return [part.to_xcom() for part in sorted(parts, key=lambda p: _first_page(p.page_range))]


def parts_from_xcom(rows: Iterable[Mapping[str, Any]]) -> list[PartResult]:
    """Read an earlier try's ``parts`` list back (rows that are not part rows are ignored)."""
    out: list[PartResult] = []
    for row in rows:
        page_range, state = row.get("page_range"), row.get("state")
        if not isinstance(page_range, str) or not isinstance(state, str):
            continue
        task_id, data_id = row.get("task_id"), row.get("data_id")
        out.append(
            PartResult(
                page_range,
                state,
                str(row.get("err_msg") or ""),
                task_id if isinstance(task_id, str) else None,
                data_id if isinstance(data_id, str) else None,
            )
        )
    return out


def _first_page(page_range: str) -> int:
    head = page_range.split("-", 1)[0]
    return int(head) if head.isdigit() else 0


def slices_to_send(plan: SlicePlan, earlier: Iterable[PartResult], *, landed: Iterable[str] = ()) -> list[PageSlice]:
    """
    The slices of ``plan`` that must be sent (again): every slice without a ``done`` result.

    A slice that failed, never finished, or is not in ``earlier`` at all is sent; a ``done``
    slice is sent again only when ``landed`` is given and does not name it (its result is not on
    disk). Nothing else is billed twice.

    :param plan: the current plan (possibly re-cut smaller than the earlier try's).
    :param earlier: the earlier try's part results.
    :param landed: page ranges whose results are complete on disk (each part folder's
        completion marker); empty means "not checked".
    """
    done = {part.page_range for part in earlier if part.is_done}
    on_disk = set(landed)
    if on_disk:
        done &= on_disk
    return [piece for piece in plan.slices if piece.page_ranges not in done]


def input_state(parts: Sequence[PartResult], plan: SlicePlan | None = None) -> tuple[str, str]:
    """
    The split input's one ``(state, err_msg)``: ``done`` when every slice is; ``failed`` as soon as
    one failed (with the first failed slice's error, its pages named) and nothing is still
    running; otherwise the least advanced slice's state.

    :param parts: the slices' results.
    :param plan: when given, a slice of the plan with no result counts as ``pending``.
    """
    by_range = {part.page_range: part for part in parts}
    ranges = [s.page_ranges for s in plan.slices] if plan is not None else sorted(by_range, key=_first_page)
    states = [by_range[r].state if r in by_range else "pending" for r in ranges]
    if states and all(state == DONE for state in states):
        return DONE, ""
    in_progress = [state for state in states if state not in (DONE, FAILED)]
    if in_progress:
        return in_progress[0], ""
    failed = next(by_range[r] for r in ranges if r in by_range and by_range[r].is_failed)
    return FAILED, f"pages {failed.page_range}: {failed.err_msg}"
