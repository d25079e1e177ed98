"""
One ledger entry: what is known about the result of one :class:`~.key.LedgerKey`.

An entry is small JSON (``to_dict``), sealed when stored (``utils/sealing.py``). It names the outputs that
hold the result: one folder per input name that landed it (a copy or a rename lands the same result
again in its own folder), each with the fingerprint of its completion marker when it was recorded,
so a re-check can tell the folder unchanged without reading it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from airflow_provider_mineru.ledger.key import LedgerKey

__all__ = ["ENTRY_VERSION", "EntryState", "LedgerEntry", "Output", "utc_now"]

ENTRY_VERSION = 1


def utc_now() -> str:
    """Now, UTC, ISO 8601 to the second (the entries' time stamps)."""
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


class EntryState(str, Enum):
    """Where a key stands: its result is landed, its last attempt failed, or its outputs were tombstoned."""

    DONE = "done"
    FAILED = "failed"
    DELETED = "deleted"


@dataclass(frozen=True)
class Output:
    """
    One folder holding a key's result.

    :param source: where the input was read (local path, ``s3://…``, or the URL).
    :param name: the input's name (file name or URL), for logs.
    :param folder: the folder, relative to ``output_path`` (``report`` or ``2024/report``).
    :param marker: the fingerprint of the folder's completion marker when it was recorded.
    """

    source: str
    name: str
    folder: str
    marker: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "name": self.name, "folder": self.folder, "marker": self.marker}

    @classmethod
    def from_dict(cls, data: Any) -> Output | None:
        if not isinstance(data, Mapping):
            return None
        source, name, folder, marker = (data.get(k) for k in ("source", "name", "folder", "marker"))
        if not all(isinstance(v, str) for v in (source, name, folder)) or not (
            marker is None or isinstance(marker, str)
        ):
            return None
        if folder.startswith("/") or ".." in folder.split("/") or not folder:
            return None
        return cls(source, name, folder, marker)


@dataclass(frozen=True)
class LedgerEntry:
    """
    What the ledger knows about one key's result.

    :param key: what decides the result.
    :param state: done, failed or deleted.
    :param attempts: paid attempts since the last ``force`` (each submit that reached MinerU).
    :param last_error_code: MinerU's error code of the last failure (or the provider's), None when done.
    :param last_error_message: its message.
    :param pages: pages MinerU parsed (None when unknown).
    :param task_id: MinerU's task id of the result (the completion marker's identity names it too).
    :param batch_id: MinerU's batch id, when it came from a batch.
    :param trace_id: MinerU's trace id of the submit.
    :param identity: the completion marker's identity (``{"task_id", "url"}``) of the result.
    :param outputs: the folders holding the result, one per input name.
    :param first_seen: when the key was first recorded (UTC, ISO 8601).
    :param last_seen: when it was last recorded.
    """

    key: LedgerKey
    state: EntryState
    attempts: int = 0
    last_error_code: str | None = None
    last_error_message: str | None = None
    pages: int | None = None
    task_id: str | None = None
    batch_id: str | None = None
    trace_id: str | None = None
    identity: Mapping[str, Any] | None = None
    outputs: tuple[Output, ...] = ()
    first_seen: str = field(default_factory=utc_now)
    last_seen: str = field(default_factory=utc_now)
    version: int = ENTRY_VERSION

    @property
    def output_folder(self) -> str | None:
        """The first folder holding the result."""
        return self.outputs[0].folder if self.outputs else None

    @property
    def source_name(self) -> str | None:
        """The name of the first input that landed the result."""
        return self.outputs[0].name if self.outputs else None

    def output_for(self, folder: str) -> Output | None:
        """The output in ``folder``, or None."""
        return next((o for o in self.outputs if o.folder == folder), None)

    def with_output(self, output: Output) -> LedgerEntry:
        """This entry with ``output`` added (replacing one in the same folder)."""
        kept = tuple(o for o in self.outputs if o.folder != output.folder)
        return replace(self, outputs=(*kept, output))

    def without_output(self, folder: str) -> LedgerEntry:
        """This entry without the output in ``folder``; deleted when none is left."""
        kept = tuple(o for o in self.outputs if o.folder != folder)
        state = self.state if kept or self.state is not EntryState.DONE else EntryState.DELETED
        return replace(self, outputs=kept, state=state, last_seen=utc_now())

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "key": self.key.to_dict(),
            "key_id": self.key.id,
            "state": self.state.value,
            "attempts": self.attempts,
            "last_error_code": self.last_error_code,
            "last_error_message": self.last_error_message,
            "pages": self.pages,
            "task_id": self.task_id,
            "batch_id": self.batch_id,
            "trace_id": self.trace_id,
            "identity": dict(self.identity) if self.identity is not None else None,
            "outputs": [o.to_dict() for o in self.outputs],
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
        }

    @classmethod
    def from_dict(cls, data: Any) -> LedgerEntry | None:
        """The entry of :meth:`to_dict`'s output, or None for anything malformed or of another version."""
        if not isinstance(data, Mapping) or data.get("version") != ENTRY_VERSION:
            return None
        key = LedgerKey.from_dict(data.get("key"))
        if key is None or data.get("key_id") != key.id:
            return None
        try:
            state = EntryState(data.get("state"))
        except ValueError:
            return None
        outputs = [Output.from_dict(o) for o in data.get("outputs") or ()]
        if any(o is None for o in outputs):
            return None
        attempts, pages, identity = data.get("attempts"), data.get("pages"), data.get("identity")
        if not isinstance(attempts, int) or not (pages is None or isinstance(pages, int)):
            return None
        if identity is not None and not isinstance(identity, Mapping):
            return None

        def text(name: str) -> str | None:
            value = data.get(name)
            return value if isinstance(value, str) else None

        return cls(
            key=key,
            state=state,
            attempts=attempts,
            last_error_code=text("last_error_code"),
            last_error_message=text("last_error_message"),
            pages=pages,
            task_id=text("task_id"),
            batch_id=text("batch_id"),
            trace_id=text("trace_id"),
            identity=dict(identity) if identity is not None else None,
            outputs=tuple(o for o in outputs if o is not None),
            first_seen=text("first_seen") or "",
            last_seen=text("last_seen") or "",
        )
