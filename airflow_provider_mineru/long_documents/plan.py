"""
Slicing rules: which pages of a long document go to MinerU together, and how the plan shrinks
when MinerU refuses at a lower limit than configured.

Numbering, once for the whole package:

* pages are **1-based and inclusive**, as MinerU's ``page_ranges`` writes them: the slice
  ``PageSlice(index=1, first_page=201, last_page=400)`` is ``page_ranges="201-400"``;
* a result's ``page_idx`` is **0-based** (page number − 1): that slice's pages are
  ``page_idx`` 200..399 of the stitched result (:attr:`PageSlice.page_offset` is 200);
* a slice's :attr:`~PageSlice.index` is its 0-based position in the plan.

An input of ``pages`` pages within ``max_pages`` is one slice (sent as it is); over it, it
becomes ⌈pages / max_pages⌉ slices of ``max_pages`` pages, the last one taking the rest (1,000
pages at 200: five slices of 200; 450 at 200: 200, 200, 50). Equal leading slices keep a slice's
absolute page numbers apart from its relative ones (slice *k* ≥ 1 starts at page
*k* · ``max_pages`` + 1), which the stitcher relies on to tell which numbering a server used.

A request MinerU refuses is not billed, so a refusal at a lower limit than configured is
learned (:class:`LearnedLimits`), logged once, kept for the rest of the task, and the work is
re-planned smaller (:func:`replan_smaller`, :func:`request_groups`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from airflow_provider_mineru.exceptions import MinerUCannotSplitError, MinerUInvalidRequestError

__all__ = [
    "LearnedLimits",
    "PageSlice",
    "SlicePlan",
    "cannot_split_message",
    "plan_document",
    "plan_slices",
    "replan_smaller",
    "request_groups",
    "stated_limit",
    "uncountable_refusal_message",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class PageSlice:
    """
    One part of a document sent to MinerU on its own.

    :param index: 0-based position in its plan.
    :param first_page: first page, 1-based, inclusive.
    :param last_page: last page, 1-based, inclusive.
    """

    index: int
    first_page: int
    last_page: int

    def __post_init__(self) -> None:
        if self.index < 0 or self.first_page < 1 or self.last_page < self.first_page:
            raise ValueError(f"not a slice: index {self.index}, pages {self.first_page}-{self.last_page}")

    @property
    def pages(self) -> int:
        """How many pages the slice holds."""
        return self.last_page - self.first_page + 1

    @property
    def page_ranges(self) -> str:
        """MinerU's ``page_ranges`` for the slice (``"201-400"``; ``"7-7"`` for one page)."""
        return f"{self.first_page}-{self.last_page}"

    @property
    def page_offset(self) -> int:
        """The stitched result's ``page_idx`` of the slice's first page (``first_page - 1``)."""
        return self.first_page - 1

    @property
    def folder_name(self) -> str:
        """The slice's folder under ``parts/``: ``<index>-<first_page>-<last_page>``."""
        return f"{self.index}-{self.first_page}-{self.last_page}"


@dataclass(frozen=True)
class SlicePlan:
    """
    How one input is sent: one slice (not split) or several.

    :param name: the input's name (for messages and logs).
    :param total_pages: its page count; None when it cannot be counted (then it is not split).
    :param max_pages: the pages-per-file limit the plan was made for.
    :param slices: the slices, in page order, covering every page exactly once; empty when the
        pages are unknown (the input is sent whole).
    """

    name: str
    total_pages: int | None
    max_pages: int
    slices: tuple[PageSlice, ...]

    @property
    def is_split(self) -> bool:
        """True when the input is sent as more than one slice (its XCom row then has ``parts``)."""
        return len(self.slices) > 1

    def slice_for(self, page_range: str) -> PageSlice | None:
        """The slice whose ``page_ranges`` is ``page_range``, or None."""
        return next((s for s in self.slices if s.page_ranges == page_range), None)


def _cut(first_page: int, last_page: int, max_pages: int) -> list[tuple[int, int]]:
    return [(start, min(start + max_pages - 1, last_page)) for start in range(first_page, last_page + 1, max_pages)]


def plan_slices(name: str, total_pages: int, max_pages: int) -> SlicePlan:
    """
    Slice a document of ``total_pages`` pages into ⌈total_pages / max_pages⌉ slices.

    :param name: the input's name.
    :param total_pages: its page count (≥ 1).
    :param max_pages: most pages per slice (≥ 1).
    """
    if max_pages < 1:
        raise ValueError(f"max_pages must be at least 1, got {max_pages}")
    if total_pages < 1:
        raise ValueError(f"{name}: a document has at least one page, got {total_pages}")
    ranges = _cut(1, total_pages, max_pages)
    return SlicePlan(name, total_pages, max_pages, tuple(PageSlice(i, a, b) for i, (a, b) in enumerate(ranges)))


def plan_document(name: str, total_pages: int | None, max_pages: int, *, split: bool = True) -> SlicePlan:
    """
    The plan for one input: split when it is over ``max_pages`` and its pages were counted.

    A document whose pages cannot be counted (Office files, a PDF whose structure cannot be read
    cheaply) is sent whole: its plan has ``total_pages=None`` and no slices. MinerU judges it, and
    a refusal for its page count is explained by :func:`uncountable_refusal_message`.

    :param name: the input's name.
    :param total_pages: its page count, or None when unknown.
    :param max_pages: most pages per file.
    :param split: False restores the refusal of a document over the limit (``split_long_documents``).
    :raises MinerUCannotSplitError: over the limit with ``split=False``.
    """
    if total_pages is None:
        return SlicePlan(name, None, max_pages, ())
    if total_pages > max_pages and not split:
        raise MinerUCannotSplitError(
            f"{name} has {total_pages} pages, more than MinerU's limit of {max_pages} pages per file (-60006), "
            "and split_long_documents is False: set it to True to send the document in slices, "
            "or select at most that many pages with page_ranges."
        )
    return plan_slices(name, total_pages, max_pages)


def replan_smaller(plan: SlicePlan, max_pages: int) -> SlicePlan:
    """
    The plan re-cut for a lower pages-per-file limit; slices already within it are kept as they are.

    Slices are matched across plans by their page range (a slice's index changes when an earlier
    one is cut), so results of kept slices stay valid (:func:`~.parts.slices_to_send`).

    :param plan: the plan MinerU refused a slice of.
    :param max_pages: the limit learned (:attr:`LearnedLimits.pages_per_file`).
    """
    if max_pages < 1:
        raise ValueError(f"max_pages must be at least 1, got {max_pages}")
    if plan.total_pages is None:
        raise MinerUCannotSplitError(cannot_split_message(plan.name, max_pages, "its page count is unknown"))
    ranges: list[tuple[int, int]] = []
    for piece in plan.slices:
        ranges += (
            [(piece.first_page, piece.last_page)]
            if piece.pages <= max_pages
            else _cut(piece.first_page, piece.last_page, max_pages)
        )
    slices = tuple(PageSlice(i, a, b) for i, (a, b) in enumerate(ranges))
    return SlicePlan(plan.name, plan.total_pages, min(plan.max_pages, max_pages), slices)


def request_groups(items: Sequence[T], files_per_request: int) -> list[list[T]]:
    """``items`` in order, cut into requests of at most ``files_per_request`` files."""
    if files_per_request < 1:
        raise ValueError(f"files_per_request must be at least 1, got {files_per_request}")
    return [list(items[i : i + files_per_request]) for i in range(0, len(items), files_per_request)]


_STATED = (
    re.compile(r"limit is (\d+)", re.IGNORECASE),
    re.compile(r"at most (\d+)", re.IGNORECASE),
    re.compile(r"maximum[^0-9]{0,30}(\d+)", re.IGNORECASE),
    re.compile(r"\((\d+) (?:pages|files)\)", re.IGNORECASE),
)


def stated_limit(message: str | None) -> int | None:
    """The limit a refusal states (``"... the limit is 200"``, ``"at most 50 files"``), or None."""
    for pattern in _STATED:
        match = pattern.search(message or "")
        if match:
            return int(match.group(1))
    return None


@dataclass
class LearnedLimits:
    """
    The limits MinerU enforced during one task; they only go down.

    Start it from the connection's limits. On a refusal, :meth:`refused_pages` or
    :meth:`refused_files` lowers the limit (to the one the refusal states when it is lower than
    what was tried, else to half of what was tried), logs it once per change, and returns it.

    :param pages_per_file: most pages per file (the connection's ``max_pages``).
    :param files_per_request: most files per batch request (``max_batch_files``).
    :param changes: what was learned, in order: ``(what, refused, now used)``.
    """

    pages_per_file: int
    files_per_request: int
    changes: list[tuple[str, int, int]] = field(default_factory=list)

    @staticmethod
    def _lower(tried: int, message: str | None) -> int:
        stated = stated_limit(message)
        if stated is not None and 0 < stated < tried:
            return stated
        return tried // 2

    def refused_pages(self, tried: int, message: str | None = None, *, name: str = "a document") -> int:
        """
        MinerU refused a file of ``tried`` pages for its page count (-60006): the new pages-per-file limit.

        :param tried: pages of the refused file.
        :param message: MinerU's ``err_msg`` or error message (a stated limit is used when lower).
        :param name: the input, for the error when nothing smaller can be sent.
        :raises MinerUCannotSplitError: a one-page file was refused.
        """
        new = self._lower(tried, message)
        if new < 1:
            raise MinerUCannotSplitError(
                f"MinerU refused {name} for its page count although it was sent one page at a time "
                f"({message or '-60006'}): the refusal is not about the page count the provider can change. "
                "Check the document, or the page limit of the account."
            )
        if new < self.pages_per_file:
            log.warning("MinerU refused %d pages per file; using %d for the rest of this task", tried, new)
            self.changes.append(("pages_per_file", tried, new))
            self.pages_per_file = new
        return self.pages_per_file

    def refused_files(self, tried: int, message: str | None = None) -> int:
        """
        MinerU refused a batch request of ``tried`` files for their number: the new files-per-request limit.

        :raises MinerUInvalidRequestError: a one-file request was refused.
        """
        new = self._lower(tried, message)
        if new < 1:
            raise MinerUInvalidRequestError(
                f"MinerU refused a request of one file for its number of files ({message}); nothing smaller can be sent"
            )
        if new < self.files_per_request:
            log.warning("MinerU refused %d files per request; using %d for the rest of this task", tried, new)
            self.changes.append(("files_per_request", tried, new))
            self.files_per_request = new
        return self.files_per_request


def cannot_split_message(name: str, max_pages: int, reason: str) -> str:
    """
    Why a PDF over the limit is not split, and what to do.

    :param name: the file.
    :param max_pages: the pages-per-file limit.
    :param reason: what made it unsafe (``"its cross-reference table cannot be read"``).
    """
    return (
        f"{name} is not split into parts of at most {max_pages} pages (MinerU's page limit per file, -60006): "
        f"{reason}, and the provider splits only PDFs it can read safely with bounded memory. "
        f"Repair or rewrite it (for example `qpdf {name} fixed.pdf`) and send the new file, "
        f"or split it yourself into files of at most {max_pages} pages."
    )


def uncountable_refusal_message(name: str, max_pages: int, err_msg: str) -> str:
    """
    The sentence for a document MinerU refused for its page count that the provider could not count.

    Office files have no page count before they are parsed, so they are sent whole.

    :param name: the file or URL.
    :param max_pages: the pages-per-file limit.
    :param err_msg: MinerU's error (kept as it is).
    """
    return (
        f"MinerU refused {name} for its page count ({err_msg}). The provider splits only PDFs whose pages it "
        f"can count before sending; this document has no page count before it is parsed (Office files) "
        f"or its page tree could not be read. Convert it to PDF (for example "
        f"`soffice --headless --convert-to pdf {name}`) and send the PDF: it will be split into parts of at "
        f"most {max_pages} pages. Or split it yourself into files of at most {max_pages} pages."
    )
