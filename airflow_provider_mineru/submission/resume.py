"""
Where a retry resumes: which inputs of an earlier try's :class:`~airflow_provider_mineru.submission.record.Submission`
provably describe the current inputs, and so are waited for instead of paid for again.

Where the submission is kept between tries is :mod:`airflow_provider_mineru.submission.store`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from airflow_provider_mineru.exceptions import MinerUNotFoundError
from airflow_provider_mineru.models import BatchResult, DocumentResult, MinerUState
from airflow_provider_mineru.submission.record import Submission, SubmittedInput, output_stem
from airflow_provider_mineru.waiting.polling import MinerUPoller
from airflow_provider_mineru.waiting.waits import MinerUWait


def resume_submission(
    earlier: Submission | None,
    current: Submission,
    *,
    wait: MinerUWait,
    fetch: Callable[[str], DocumentResult | BatchResult],
    names_by_file: bool,
    log: Any,
) -> Submission:
    """
    Carry over from ``earlier`` (an earlier try's record) what provably describes the current
    inputs; the rest of ``current`` is left unsent.

    Per input: unchanged (same fingerprint) and still in progress or done at MinerU resumes;
    changed, failed, never sent or never uploaded is sent anew; the log says which and why.
    Nothing resumes when the record is missing, the parsing options changed, or MinerU no longer
    knows an id (``-60012``). Any other error while checking is raised: the next retry checks
    again rather than paying twice.

    :param earlier: the earlier try's submission, or None.
    :param current: the current inputs, nothing sent yet; filled in and returned.
    :param wait: what the operator waits on (a task or batches).
    :param fetch: one state check with the sync hook.
    :param names_by_file: MinerU names the documents by file name (uploads): another file name at
        the same place means another document.
    :param log: where the decision is logged.
    """
    if earlier is None:
        return current
    if earlier.unanswered:
        names = [earlier.inputs[i].output_name for i in earlier.unanswered if i < len(earlier.inputs)]
        log.warning(
            "The earlier try's submit of %d documents got no answer; MinerU may have accepted it, so "
            "sending them again may create one duplicate task each: %s",
            len(names),
            ", ".join(names[:10]),
        )
    if earlier.kind != current.kind or earlier.options_fingerprint != current.options_fingerprint:
        log.warning("The parsing options changed since the earlier try; submitting every input anew.")
        return current
    if not earlier.ids:
        return current
    poller = earlier.poller(wait)
    for item_id in poller.ids:
        try:
            poller.record(item_id, fetch(item_id))
        except MinerUNotFoundError as error:  # MinerU lost it: only then is paying again right
            log.warning("Cannot resume the earlier submission (%s); submitting again.", error)
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
        elif document is not None and _foreign(document, item, names_by_file):
            again["changed"].append(item.name)
        else:
            kept[index] = old.slot
    if not kept:
        if any(again.values()):
            log.warning("Nothing of the earlier submission resumes (%s); submitting again.", _why(again))
        return current
    _carry_over(earlier, current, kept, poller)
    if any(again.values()):
        log.info(
            "Sending again %d of %d documents (%s); the rest resume.",
            len(current.unsent()),
            len(current.inputs),
            _why(again),
        )
    return current


def _carry_over(earlier: Submission, current: Submission, kept: dict[int, list[int]], poller: MinerUPoller) -> None:
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


def _listed(poller: MinerUPoller, slot: Sequence[int]) -> DocumentResult | None:
    """The document at ``[batch index, position]`` as MinerU listed it, or None when not listed (yet)."""
    if not 0 <= slot[0] < len(poller.ids):
        return None
    listed = poller.results.get(poller.ids[slot[0]], [])
    return listed[slot[1]] if 0 <= slot[1] < len(listed) else None


def _foreign(document: DocumentResult, item: SubmittedInput, names_by_file: bool) -> bool:
    """Whether MinerU's document is visibly not ``item``'s (another ``data_id`` or, for uploads, file name)."""
    if document.data_id and output_stem(item.name, document.data_id) != item.output_name:
        return True
    return names_by_file and bool(document.file_name) and document.file_name != item.name


def _why(again: dict[str, list[str]]) -> str:
    """``"changed: b.pdf; failed: c.pdf"`` for the log of a resume."""
    parts = []
    for reason, names in again.items():
        if names:
            more = f" and {len(names) - 10} more" if len(names) > 10 else ""
            parts.append(f"{reason}: {', '.join(names[:10])}{more}")
    return "; ".join(parts)
