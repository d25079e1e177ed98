"""
What is waited on: one MinerU task, or MinerU batches. Two small classes, no ``kind`` switch.

Everything that differs between a task and a batch lives here, once: how to fetch its state
(sync and async), how to ask again for the documents of an XCom, the XCom a wait ends with, the
ids of its asset event and the words of its failure. Operators, sensors, the poller, the
triggers and the finishing step hold a :class:`MinerUWait` and ask it; none of them branches on
a string. Which trigger waits for each kind is :func:`airflow_provider_mineru.triggers.mineru.trigger_for`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from airflow_provider_mineru.models import BatchResult, DocumentResult
from airflow_provider_mineru.results.xcom import batch_entry, spill_large_xcom, task_xcom


@dataclass(frozen=True)
class WaitedDocuments:
    """
    The documents one wait was on, in input order.

    :param ids: the MinerU task id, or the batch ids in submission order.
    :param documents: each input document's latest state.
    :param batch_of: per document, the task or batch id it belongs to (empty: not known).
    :param sources: per document, the URL or path it was submitted from (empty: not known).
    """

    ids: Sequence[str]
    documents: Sequence[DocumentResult]
    batch_of: Sequence[str | None] = ()
    sources: Sequence[str | None] = ()

    def batch_at(self, index: int) -> str | None:
        """The task or batch id of document ``index``, when known."""
        return self.batch_of[index] if index < len(self.batch_of) else None

    def source_at(self, index: int) -> str | None:
        """The URL or path of document ``index``, when known."""
        return self.sources[index] if index < len(self.sources) else None


class MinerUWait:
    """
    The kind of thing a wait is on. Subclasses supply the data; callers never branch on the kind.

    :cvar name: the kind's name in JSON (submission records, trigger events, lineage facets).
    """

    name: ClassVar[str]

    @property
    def ids_xcom_key(self) -> str:
        """The XCom key the submit operators push the MinerU ids under (``mineru_task_ids``, ``mineru_batch_ids``)."""
        return f"mineru_{self.name}_ids"

    def fetch(self, hook: Any, item_id: str) -> DocumentResult | BatchResult:
        """One state check with the sync hook."""
        raise NotImplementedError

    async def afetch(self, hook: Any, item_id: str) -> DocumentResult | BatchResult:
        """One state check with the async hook (in the triggerer)."""
        raise NotImplementedError

    def refresh(self, hook: Any, value: Mapping[str, Any]) -> WaitedDocuments:
        """Ask MinerU for the current state of every document of one XCom value of this kind."""
        raise NotImplementedError

    def xcom(self, waited: WaitedDocuments, outputs: Sequence[str | None]) -> dict[str, Any]:
        """
        The XCom value of a finished wait (see :mod:`airflow_provider_mineru.results.xcom`).

        :param waited: the documents, in input order.
        :param outputs: per document, the folder its result landed in (None: not downloaded).
        """
        raise NotImplementedError

    def shrink(self, value: dict[str, Any], root: Any, *, done: int, failed: int, log: Any) -> dict[str, Any]:
        """``value`` as the XCom keeps it: a batch XCom over 1 MB goes to a JSONL file beside ``root``."""
        return value

    def ids_summary(self, ids: Sequence[str]) -> dict[str, Any]:
        """The ids in an asset event's ``extra``."""
        raise NotImplementedError

    def failure(self, ids: Sequence[str], failed: Sequence[DocumentResult], total: int) -> str:
        """The start of the error message when documents failed (each one's ``err_msg`` follows)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class TaskWait(MinerUWait):
    """A wait on one MinerU task (``GET /extract/task/{task_id}``): one document."""

    name = "task"

    def fetch(self, hook: Any, item_id: str) -> DocumentResult:
        return hook.get_task(item_id)

    async def afetch(self, hook: Any, item_id: str) -> DocumentResult:
        return await hook.aget_task(item_id)

    def refresh(self, hook: Any, value: Mapping[str, Any]) -> WaitedDocuments:
        task_id = value["task_id"]
        return WaitedDocuments([task_id], [hook.get_task(task_id)], [task_id], [value.get("source")])

    def xcom(self, waited: WaitedDocuments, outputs: Sequence[str | None]) -> dict[str, Any]:
        return task_xcom(waited.documents[0], outputs[0], waited.source_at(0))

    def ids_summary(self, ids: Sequence[str]) -> dict[str, Any]:
        return {"task_id": ids[0]}

    def failure(self, ids: Sequence[str], failed: Sequence[DocumentResult], total: int) -> str:
        return f"MinerU task {ids[0]} failed"


class BatchWait(MinerUWait):
    """A wait on one or more MinerU batches (``GET /extract-results/batch/{batch_id}``): one request per batch."""

    name = "batch"

    def fetch(self, hook: Any, item_id: str) -> BatchResult:
        return hook.get_batch(item_id)

    async def afetch(self, hook: Any, item_id: str) -> BatchResult:
        return await hook.aget_batch(item_id)

    def refresh(self, hook: Any, value: Mapping[str, Any]) -> WaitedDocuments:
        documents: list[DocumentResult] = []
        batch_of: list[str | None] = []
        for batch_id in value["batch_ids"]:
            batch = hook.get_batch(batch_id)
            documents.extend(batch.files)
            batch_of.extend([batch_id] * len(batch.files))
        return WaitedDocuments(list(value["batch_ids"]), documents, batch_of)

    def xcom(self, waited: WaitedDocuments, outputs: Sequence[str | None]) -> dict[str, Any]:
        return {
            "batch_ids": list(waited.ids),
            "results": [batch_entry(doc, outputs[i], waited.batch_at(i)) for i, doc in enumerate(waited.documents)],
        }

    def shrink(self, value: dict[str, Any], root: Any, *, done: int, failed: int, log: Any) -> dict[str, Any]:
        return spill_large_xcom(value, root, done=done, failed=failed, log=log)

    def ids_summary(self, ids: Sequence[str]) -> dict[str, Any]:
        return {"batch_ids": list(ids)}

    def failure(self, ids: Sequence[str], failed: Sequence[DocumentResult], total: int) -> str:
        return f"{len(failed)} of {total} files failed"


TASK_WAIT = TaskWait()
BATCH_WAIT = BatchWait()

#: Every kind of wait, by its JSON name.
WAITS: Mapping[str, MinerUWait] = {wait.name: wait for wait in (TASK_WAIT, BATCH_WAIT)}


def wait_of_xcom(value: Mapping[str, Any]) -> MinerUWait:
    """The wait an operator's or sensor's XCom came from: a task's has ``task_id``, a batch's ``batch_ids``."""
    return TASK_WAIT if "task_id" in value else BATCH_WAIT
