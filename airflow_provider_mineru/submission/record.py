"""
What a task try sent to MinerU, as one typed, versioned record: :class:`Submission`.

A later try of the same task instance reads it to resume instead of paying again (the task
resumed after a deferral needs none: its trigger's event carries each input's source). A record
is used only when it provably describes the current inputs:

- it names the same DAG, run, task and map index (:class:`Identity`);
- it carries a MAC made with the connection's API token, so a record crafted by someone who can
  edit Airflow Variables (the store on Airflow < 3.3) but does not hold the token is ignored;
- the parsing options are the same, and per input its fingerprint (URL or file name, per-file
  options, ``page_ranges``; for files also size and modification time) matches: unchanged inputs
  resume, changed ones are sent anew.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from airflow_provider_mineru.models import DocumentResult, MinerUState
from airflow_provider_mineru.results.downloads import document_stem
from airflow_provider_mineru.utils.sealing import seal, unseal
from airflow_provider_mineru.utils.storage_paths import is_local_location, local_path_text
from airflow_provider_mineru.waiting.polling import MinerUPoller
from airflow_provider_mineru.waiting.waits import WAITS, MinerUWait

#: Version of the JSON form written by :meth:`Submission.to_dict`.
SUBMISSION_VERSION = 1


#: The seal domain of a submission record (see :mod:`airflow_provider_mineru.utils.sealing`).
SEAL_DOMAIN = "mineru-submission"


def _digest(value: Any) -> str:
    """A short stable hash of plain JSON data."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class Identity:
    """
    The Airflow task instance a submission belongs to.

    :param dag_id: the DAG id.
    :param run_id: the DAG run id.
    :param task_id: the Airflow task id.
    :param map_index: the map index (-1 when the task is not mapped).
    """

    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> Identity:
        """The identity of the running task instance, from the Airflow context."""
        ti = context.get("ti") or context.get("task_instance")
        map_index = getattr(ti, "map_index", -1)
        return cls(
            dag_id=str(getattr(ti, "dag_id", "") or ""),
            run_id=str(context.get("run_id") or getattr(ti, "run_id", "") or ""),
            task_id=str(getattr(ti, "task_id", "") or ""),
            map_index=-1 if map_index is None else int(map_index),
        )


@dataclass
class SubmittedInput:
    """
    One input document and where its latest submission lives.

    :param source: the URL or the file location (local path or object-storage URL).
    :param name: the file name MinerU sees (uploads) or the URL's last path component.
    :param output_name: the folder the result is extracted into (``data_id`` or file stem).
    :param fingerprint: hash of everything that decides what MinerU parses for this input.
    :param slot: ``[batch index, position in that batch]``, or None while not (yet) sent.
    """

    source: str
    name: str
    output_name: str
    fingerprint: str
    slot: list[int] | None = None


@dataclass(frozen=True)
class SentBatch:
    """
    What one send made at MinerU: a task or a batch, and the inputs it holds.

    An upload batch is sent twice: first with ``failures`` None as soon as its upload URLs are
    granted (so it is recorded before the first byte can be parsed and billed), then with the
    files that failed.

    :param id: the MinerU task or batch id.
    :param indices: the input documents it holds (indices into the operator's inputs), in its order.
    :param failures: ``{file name: error}`` for its files that never reached MinerU; None while
        nothing is sent yet.
    """

    id: str
    indices: tuple[int, ...]
    failures: Mapping[str, str] | None = None


@dataclass
class Submission:
    """
    Everything a later try or the resumed task needs about what was sent to MinerU.

    :param kind: the :class:`~airflow_provider_mineru.waiting.waits.MinerUWait`'s name: ``"task"`` (``ids``
        holds one task id) or ``"batch"``.
    :param identity: the task instance that made it.
    :param options_fingerprint: hash of the operator class and its batch-wide parsing options.
    :param inputs: per input document, in input order.
    :param ids: the MinerU task id, or the batch ids in creation order.
    :param expected_files: per batch, how many files it holds.
    :param failed_files: per batch id, ``{file name: error}`` for files that never reached MinerU.
    :param unanswered: inputs (by index) whose submit may have reached MinerU although its answer
        was lost: a later try sends them again (at most one duplicate each) and says so.
    """

    kind: str
    identity: Identity
    options_fingerprint: str
    inputs: list[SubmittedInput]
    ids: list[str] = field(default_factory=list)
    expected_files: list[int] = field(default_factory=list)
    failed_files: dict[str, dict[str, str]] = field(default_factory=dict)
    unanswered: list[int] = field(default_factory=list)
    version: int = SUBMISSION_VERSION

    # -- building ------------------------------------------------------------------------------

    def add_batch(self, batch_id: str, indices: Sequence[int]) -> int:
        """Record that MinerU batch ``batch_id`` holds the inputs at ``indices``, in order; return its index."""
        position = len(self.ids)
        self.ids.append(batch_id)
        self.expected_files.append(len(indices))
        for offset, index in enumerate(indices):
            self.inputs[index].slot = [position, offset]
        self.unanswered = [i for i in self.unanswered if i not in set(indices)]
        return position

    def record_sent(self, sent: SentBatch) -> bool:
        """Record what one send made; True when ``sent`` is a batch not recorded yet (not its failures again)."""
        new = not self.ids or self.ids[-1] != sent.id
        if new:
            self.add_batch(sent.id, sent.indices)
        if sent.failures:
            self.add_failures(sent.id, sent.failures)
        return new

    def add_failures(self, batch_id: str, failures: Mapping[str, str]) -> None:
        """Record files of ``batch_id`` that never reached MinerU, with their error."""
        if failures:
            self.failed_files.setdefault(batch_id, {}).update({k: str(v) for k, v in failures.items()})

    def slots(self) -> list[list[int]] | None:
        """Per input, ``[batch index, position]`` (None for an input not sent yet)."""
        return [list(item.slot) if item.slot is not None else None for item in self.inputs]  # type: ignore[misc]

    def unsent(self) -> list[int]:
        """Indices of the inputs that have no MinerU submission yet."""
        return [i for i, item in enumerate(self.inputs) if item.slot is None]

    def sources(self) -> list[str | None]:
        """Per input, its URL or path (for output folder names)."""
        return [item.source for item in self.inputs]

    def poller(self, wait: MinerUWait) -> MinerUPoller:
        """
        The poller of everything sent (its batches, their sizes, local failures, slots, sources);
        inputs never sent (the budget skipped them) are not waited on.
        """
        sent = [item for item in self.inputs if item.slot is not None]
        return MinerUPoller(
            wait=wait,
            ids=self.ids,
            expected_files=self.expected_files,
            failed_files=self.failed_files or None,
            slots=[list(item.slot) for item in sent],  # type: ignore[arg-type]
            sources=[item.source for item in sent],
        )

    # -- JSON ----------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (see :meth:`from_dict`)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Submission | None:
        """
        The submission ``data`` describes, or None when it is not a submission of this version
        (another format, anything crafted that does not parse).
        """
        if not isinstance(data, Mapping) or data.get("version") != SUBMISSION_VERSION:
            return None
        try:
            identity = Identity(**data["identity"])
            inputs = [SubmittedInput(**item) for item in data["inputs"]]
            submission = cls(
                kind=str(data["kind"]),
                identity=identity,
                options_fingerprint=str(data["options_fingerprint"]),
                inputs=inputs,
                ids=[str(i) for i in data["ids"]],
                expected_files=[int(n) for n in data["expected_files"]],
                failed_files={str(k): dict(v) for k, v in dict(data["failed_files"]).items()},
                unanswered=[int(i) for i in data["unanswered"]],
            )
        except (KeyError, TypeError, ValueError):
            return None
        if submission.kind not in WAITS or len(submission.expected_files) != len(submission.ids):
            return None
        for item in submission.inputs:
            slot = item.slot
            if slot is not None and (len(slot) != 2 or not 0 <= slot[0] < len(submission.ids) or slot[1] < 0):
                return None
        return submission

    def sealed(self, key: str | None) -> dict[str, Any]:
        """:meth:`to_dict` plus a MAC over it made with ``key`` (the API token): what the store keeps."""
        return seal(self.to_dict(), key, SEAL_DOMAIN)

    @classmethod
    def unseal(cls, data: Any, key: str | None) -> tuple[Submission | None, str]:
        """
        The submission of a stored record and why it was refused when it was: a bad or missing MAC
        (crafted, or made with another token), or a format this version does not read.
        """
        if not isinstance(data, Mapping):
            return None, "it is not a MinerU submission record"
        body, _ = unseal(data, key, SEAL_DOMAIN)
        if body is None:
            return None, "its signature does not match (written by another connection, an older version, or by hand)"
        submission = cls.from_dict(body)
        if submission is None:
            return None, f"its format is not version {SUBMISSION_VERSION}"
        return submission, ""


def options_fingerprint(operator: str, options: Mapping[str, Any]) -> str:
    """Fingerprint of an operator's batch-wide parsing options."""
    return _digest({"operator": operator, "options": dict(options)})


def url_fingerprint(url: str, per_file: Mapping[str, Any] | None = None) -> str:
    """Fingerprint of one URL input: the URL and its per-file options (``is_ocr``, ``data_id``, ``page_ranges``)."""
    return _digest({"url": url, "options": dict(per_file or {})})


def file_fingerprint(location: str, name: str, size: int, per_file: Mapping[str, Any] | None = None) -> str:
    """
    Fingerprint of one file input: location, name, size, per-file options and, for local files,
    the modification time (object storage: size only, to not cost a request per file).
    """
    mtime: int | None = None
    if is_local_location(location):
        try:
            mtime = os.stat(local_path_text(location)).st_mtime_ns
        except OSError:
            mtime = None
    return _digest({"location": location, "name": name, "size": size, "mtime": mtime, "options": dict(per_file or {})})


def output_stem(name: str, data_id: str | None) -> str:
    """The folder name an input's result is extracted into (before de-duplication)."""
    return document_stem(DocumentResult(state=MinerUState.DONE, raw_state="done", data_id=data_id, file_name=name))
