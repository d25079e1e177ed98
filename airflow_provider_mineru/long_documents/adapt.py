"""
MinerU's page limit is lower than the connection says: re-plan what it refused and send it again.

A file over MinerU's page limit fails with ``-60006`` ("File page count exceeds limit (200 pages)").
When the connection's ``max_pages`` (600, the contract's) is higher than the server's (200, per
2026 copies of MinerU's documentation), a 450-page PDF is sent whole and refused. A refused
document is not billed, so after the wait the upload operator re-plans it
(:func:`replan_refused`): the limit is learned from the refusal (:class:`~.plan.LearnedLimits`: the
limit MinerU states when lower than what was sent, else half; logged once per change and kept for
the rest of the task), the refused document (or slice) is cut with :func:`~.plan.replan_smaller`
(slices within the limit are kept, so their results are not paid again), the parts are sent in a new
batch, and the operator waits again (blocking or deferred) and stitches as for any split input.

What the wait already holds is carried over as it is (:func:`carry_sent`): done and failed
documents keep their batch and position, so nothing but the refused documents' new slices is sent,
and a document that failed for another reason is not sent again. Only what this module can count
is re-planned: a local PDF (its pages are counted with bounded reads) or a slice (its pages are in its
source). Anything else (an Office file, a URL) keeps MinerU's error with what to do
(:func:`~.run.explain_page_refusal`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import posixpath
import tempfile
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from airflow_provider_mineru.exceptions import MinerUCannotSplitError, MinerUError
from airflow_provider_mineru.inputs.pdf_pages import count_pdf_pages
from airflow_provider_mineru.long_documents.plan import (
    LearnedLimits,
    SlicePlan,
    plan_slices,
    replan_smaller,
    stated_limit,
)
from airflow_provider_mineru.long_documents.run import group_documents, slice_data_id, slice_source
from airflow_provider_mineru.models import DocumentResult, MinerUState
from airflow_provider_mineru.submission.record import Submission
from airflow_provider_mineru.waiting.waits import WaitedDocuments

__all__ = [
    "PAGE_REFUSAL",
    "Replan",
    "any_page_refusal",
    "carry_sent",
    "is_page_refusal",
    "replan_refused",
    "slice_url_entries",
    "url_page_count",
]

log = logging.getLogger(__name__)

#: MinerU's code for a file over its page limit.
PAGE_REFUSAL = "-60006"


def is_page_refusal(document: DocumentResult) -> bool:
    """Whether MinerU failed ``document`` for its page count (``-60006`` in its ``err_msg``)."""
    return document.state is MinerUState.FAILED and PAGE_REFUSAL in (document.err_msg or "")


def any_page_refusal(waited: WaitedDocuments) -> bool:
    """
    Whether a finished wait holds a document MinerU refused for its page count: only then is
    anything re-planned (and the inputs looked at again; they may be gone after a deferral).
    """
    return any(is_page_refusal(document) for document in waited.documents)


@dataclass(frozen=True)
class Replan:
    """
    How the inputs of a wait are sent again after page refusals.

    :param plans: per input location of the wait, its plan (re-cut for the refused ones; as sent for
        the others; a plan without slices: sent whole, as before).
    :param refused: the sources of the refused documents that are replaced by smaller slices.
    :param pages_per_file: the limit learned.
    """

    plans: Mapping[str, SlicePlan]
    refused: frozenset[str]
    pages_per_file: int


def _name(location: str) -> str:
    return posixpath.basename(location.replace("\\", "/").rstrip("/")) or "document"


def replan_refused(
    waited: WaitedDocuments, limits: LearnedLimits, page_count: Callable[[str], int | None]
) -> Replan | None:
    """
    The plans to send a finished wait's inputs again with, when MinerU refused uploaded documents for
    their page count at a lower limit than they were planned for; None when nothing can be re-planned.

    :param waited: the finished wait's documents and their sources (a slice's names its pages).
    :param limits: the task's limits; lowered by each refusal (logged once per change).
    :param page_count: pages of a whole input by its location (None: unknown, not re-planned).
    """
    documents, sources = waited.documents, waited.sources
    plans: dict[str, SlicePlan] = {}
    refused: dict[str, list[tuple[str, int]]] = {}  # input location -> (source, pages) refused
    for group in group_documents(sources, len(documents)):
        if group.is_split:
            location = group.location or ""
            pieces = tuple(group.pieces)
            plans[location] = SlicePlan(_name(location), pieces[-1].last_page, max(p.pages for p in pieces), pieces)
            for piece, index in zip(group.pieces, group.indices, strict=True):
                if is_page_refusal(documents[index]):
                    refused.setdefault(location, []).append((str(sources[index]), piece.pages))
            continue
        index = group.indices[0]
        source = waited.source_at(index)
        if source is None:
            continue
        plans[source] = SlicePlan(_name(source), None, limits.pages_per_file, ())
        if is_page_refusal(documents[index]):
            pages = page_count(source)
            if pages is not None:
                plans[source] = plan_slices(_name(source), pages, pages)
                refused.setdefault(source, []).append((source, pages))
    messages = {str(sources[i]): documents[i].err_msg for i in range(len(documents)) if i < len(sources)}
    for location, pieces in list(refused.items()):
        stated = [stated_limit(messages.get(source)) for source, _ in pieces]
        pieces = [(s, p) for (s, p), limit in zip(pieces, stated, strict=True) if limit is None or p > limit]
        refused[location] = pieces  # a slice within the limit MinerU states: its page_ranges do not count (left failed)
        for source, pages in pieces:
            try:
                limits.refused_pages(pages, messages.get(source), name=_name(location))
            except MinerUCannotSplitError:  # one page refused: not about the page count; the error stays
                continue
    again: set[str] = set()
    for location, pieces in refused.items():
        over = [source for source, pages in pieces if pages > limits.pages_per_file]
        if over:
            plans[location] = replan_smaller(plans[location], limits.pages_per_file)
            again.update(over)
    if not again:
        return None
    log.info(
        "MinerU refused %d documents for their page count (not billed): sending them again in slices of at most "
        "%d pages (%s); set the connection extra max_pages to %d to split them before the first request",
        len(again),
        limits.pages_per_file,
        ", ".join(
            sorted(_name(location) for location, pieces in refused.items() if any(s in again for s, _ in pieces))
        ),
        limits.pages_per_file,
    )
    return Replan(plans, frozenset(again), limits.pages_per_file)


def carry_sent(earlier: Submission, current: Submission, refused: Collection[str]) -> Submission:
    """
    ``current`` (the re-planned inputs, nothing sent) with everything ``earlier`` sent that it still
    holds: every earlier document with the same fingerprint keeps its batch and position, whatever
    its state, except the ``refused`` ones (replaced by smaller slices, which stay unsent).

    :param earlier: the submission the wait was on.
    :param current: the re-planned inputs; filled in and returned.
    :param refused: sources of the refused documents.
    """
    by_fingerprint: dict[str, list[list[int]]] = {}
    for item in earlier.inputs:
        if item.slot is not None and item.source not in refused:
            by_fingerprint.setdefault(item.fingerprint, []).append(list(item.slot))
    current.ids = list(earlier.ids)
    current.expected_files = list(earlier.expected_files)
    current.failed_files = {key: dict(value) for key, value in earlier.failed_files.items()}
    for item in current.inputs:
        slots = by_fingerprint.get(item.fingerprint)
        if slots:
            item.slot = slots.pop(0)
    return current


# -- URL documents ------------------------------------------------------------------------------


class _Downloads(Protocol):
    """What :func:`url_page_count` needs of the hook's transport: one bounded download without the token."""

    def download(self, url: str, destination: Path, *, max_bytes: int) -> Path: ...


def url_page_count(transport: _Downloads, url: str, max_bytes: int) -> int | None:
    """
    Pages of the PDF at ``url``: one bounded download with the hook's transport (its file session:
    no token, no header of ours), counted with bounded reads, then removed. None when it is not a
    PDF whose pages can be counted, is over ``max_bytes``, or cannot be fetched.

    :param transport: the hook's transport.
    :param url: the document's URL.
    :param max_bytes: the most to read (the connection's ``max_file_bytes``: MinerU takes no more).
    """
    folder = tempfile.mkdtemp(prefix="mineru-count-")
    path = Path(folder) / "document.pdf"
    try:
        transport.download(url, path, max_bytes=max_bytes)
        return count_pdf_pages(path)
    except (MinerUError, OSError) as error:
        log.warning("Cannot count the pages of %s to split it: %s", url.split("?", 1)[0], error)
        return None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        with contextlib.suppress(OSError):
            os.rmdir(folder)


def slice_url_entries(
    entries: Sequence[str | Mapping[str, Any]], plans: Mapping[str, SlicePlan]
) -> tuple[list[str | dict[str, Any]], dict[int, str]]:
    """
    A URL batch's entries with each split URL replaced by one entry per slice (``page_ranges`` on
    the same URL); entries whose URL is not in ``plans`` (not in the wait: the ledger reused them)
    are left out.

    :param entries: the operator's ``urls`` (strings or dicts with ``url`` and per-file options).
    :param plans: per URL, its plan (:attr:`Replan.plans`).
    :return: the entries, and per sliced entry's index its source (:func:`~.run.slice_source`).
    """
    out: list[str | dict[str, Any]] = []
    sources: dict[int, str] = {}
    for entry in entries:
        url = entry if isinstance(entry, str) else str(entry.get("url"))
        plan = plans.get(url)
        if plan is None:
            continue
        per_file = {} if isinstance(entry, str) else {k: v for k, v in entry.items() if k != "url"}
        if not plan.is_split or per_file.get("page_ranges"):
            out.append(entry if isinstance(entry, str) else dict(entry))
            continue
        for piece in plan.slices:
            sources[len(out)] = slice_source(url, piece)
            data_id = slice_data_id(per_file.get("data_id"), plan.name, piece)
            out.append({**per_file, "url": url, "page_ranges": piece.page_ranges, "data_id": data_id})
    return out, sources
