"""What a plan does with each input (:class:`Action`) and why, in a DAG author's words (:class:`Reason`)."""

from __future__ import annotations

from enum import Enum

__all__ = ["Action", "Reason"]


class Action(str, Enum):
    """What happens to one input this run."""

    #: Its result is already in its folder: no request, no upload, 0 pages.
    REUSE = "reuse"
    #: Its result is in another input's folder (a copy or a rename): copied into its own, 0 pages.
    COPY = "copy"
    #: Sent to MinerU (paid).
    PARSE = "parse"
    #: Not sent: it failed ``max_attempts_per_document`` times already.
    SKIP = "skip"
    #: Not sent: another task instance holds its claim and is parsing it; its result is taken
    #: (reused or copied, 0 pages) once this run's own inputs are landed.
    AWAIT = "await"


class Reason(str, Enum):
    """Why an input is parsed, reused, copied or skipped; the value is what the log says."""

    NEW = "new"
    CONTENT_CHANGED = "content changed"
    OPTIONS_CHANGED = "options changed"
    FORCED = "forced"
    EARLIER_FAILURE = "earlier failure"
    #: A URL whose server gives no ETag or Last-Modified: a change cannot be told, so it is parsed.
    UNVERIFIABLE = "cannot tell whether it changed"
    #: The ledger has a result, but its folder is gone or holds another result now.
    RESULT_GONE = "earlier result gone"
    UNCHANGED = "unchanged"
    SAME_CONTENT = "same content as another input"
    ATTEMPTS_EXHAUSTED = "failed too often"
    #: Another task instance claimed the same content first.
    CLAIMED_ELSEWHERE = "being parsed by another task instance"

    def __str__(self) -> str:
        return self.value
