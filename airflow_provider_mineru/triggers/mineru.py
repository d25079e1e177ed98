"""
Deferrable waits on MinerU: poll with the async hook in the triggerer, never submit.

Both triggers share one ``aiohttp`` session per triggerer event loop, poll each batch with one
request (never one per file), stop polling what is already finished, retry transient errors by
themselves, and fire exactly one event: ``done`` (everything terminal), ``timeout`` or ``error``
(an error that must not be retried). The payload is a
:class:`~airflow_provider_mineru.waiting.events.WaitOutcome` built by
:class:`~airflow_provider_mineru.waiting.polling.MinerUPoller`, the same object the blocking path uses; the
two triggers differ only in what they wait on (a :class:`~airflow_provider_mineru.waiting.waits.MinerUWait`)
and their serialized arguments.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_mineru.connection.form import DEFAULT_CONN_ID
from airflow_provider_mineru.exceptions import MinerUError
from airflow_provider_mineru.waiting.events import ERROR, WaitOutcome, outcome_event
from airflow_provider_mineru.waiting.polling import MinerUPoller
from airflow_provider_mineru.waiting.waits import BATCH_WAIT, TASK_WAIT, MinerUWait

if TYPE_CHECKING:
    from airflow_provider_mineru.hooks.mineru import MinerUHook


#: Imported in a thread before a trigger's first request (each blocked the loop when imported there).
_FIRST_RUN_IMPORTS = (
    "aiohttp",
    "asgiref.sync",  # the async connection lookup's first call
    "airflow.providers.common.compat.connection",
    "airflow.sdk.execution_time.context",  # Airflow 3: the connection lookup and its cache
    "airflow.sdk.execution_time.cache",
    "airflow_provider_mineru.hooks.mineru",
    "airflow_provider_mineru.transport.aio",  # the transport's async face (workers never import it)
)


def _load_hook_class() -> type[MinerUHook]:
    """
    Import the hook and everything its first async call needs. Run in a thread: importing these
    in the triggerer's event loop blocked it 0.25-0.38 s.
    """
    for name in _FIRST_RUN_IMPORTS:
        try:
            importlib.import_module(name)
        except ImportError:  # a module of the other Airflow line
            continue
    from airflow_provider_mineru.hooks.mineru import MinerUHook  # in this thread: see above (a triggerer's first run)

    return MinerUHook


class _MinerUPollTrigger(BaseTrigger):
    """
    Poll until every document is terminal, ``end_time`` passes, or a permanent error.

    :param end_time: epoch seconds after which the wait ends with a ``timeout`` event.
    :param mineru_conn_id: the ``mineru`` connection.
    :param poll_interval: seconds between polls.
    :param first_poll_delay: seconds to wait before the first poll (the operator polled just before
        deferring, so polling again at once would only cost a request).
    :param not_before: epoch seconds before which no event is fired, even when the wait is over
        sooner. Airflow 3 can fail a task whose trigger fires within seconds of its deferral
        (apache/airflow#66374, #71580, #72716: the executor's late "success" of the deferring try
        meets the resumed try); the operators set it to the deferral time plus
        ``min_defer_seconds``. None: fire as soon as the wait is over.
    :param min_defer_seconds: the ``min_defer_seconds`` ``not_before`` was set from, named in the
        log line that says why the event is held.
    :param sources: per input document, the URL or path it was submitted from; the event carries
        them back to the task (:class:`~airflow_provider_mineru.waiting.events.WaitOutcome`), so resuming
        needs nothing but the event.
    :param submitted_at: when the operator submitted the documents (epoch seconds): the trigger's queue
        times (``mineru.queue_time``) start there. None: not known, or already sent by the operator.
    :param model_version: the operator's ``model_version`` (the ``model`` tag of the trigger's metrics).

    No attribute of a MinerU trigger has a name that :class:`~airflow.triggers.base.BaseTrigger`
    owns (``task_id``, ``task_instance``, ``trigger_id``, ``template_fields``…): the triggerer
    assigns those after building the trigger.
    """

    def __init__(
        self,
        *,
        end_time: float,
        mineru_conn_id: str = DEFAULT_CONN_ID,
        poll_interval: float = 10.0,
        first_poll_delay: float = 0.0,
        not_before: float | None = None,
        min_defer_seconds: float | None = None,
        sources: Sequence[str | None] | None = None,
        submitted_at: float | None = None,
        model_version: str | None = None,
    ) -> None:
        super().__init__()
        self.mineru_conn_id = mineru_conn_id
        self.poll_interval = float(poll_interval)
        self.end_time = float(end_time)
        self.first_poll_delay = float(first_poll_delay)
        self.not_before = None if not_before is None else float(not_before)
        self.min_defer_seconds = None if min_defer_seconds is None else float(min_defer_seconds)
        self.sources = list(sources or ())
        self.submitted_at = None if submitted_at is None else float(submitted_at)
        self.model_version = model_version

    def _common_kwargs(self) -> dict[str, Any]:
        return {
            "end_time": self.end_time,
            "mineru_conn_id": self.mineru_conn_id,
            "poll_interval": self.poll_interval,
            "first_poll_delay": self.first_poll_delay,
            "not_before": self.not_before,
            "min_defer_seconds": self.min_defer_seconds,
            "sources": self.sources,
            "submitted_at": self.submitted_at,
            "model_version": self.model_version,
        }

    #: What this trigger waits on.
    wait: MinerUWait

    @classmethod
    def from_poller(cls, poller: MinerUPoller, **kwargs: Any) -> _MinerUPollTrigger:
        """This trigger for ``poller``'s ids (and, for batches, sizes, local failures and slots)."""
        raise NotImplementedError

    def _poller(self) -> MinerUPoller:
        raise NotImplementedError

    async def _fetch(self, hook: Any, item_id: str) -> Any:
        return await self.wait.afetch(hook, item_id)

    async def _fetch_all(self, hook: Any, pending: list[str]) -> list[Any]:
        """One request per pending id (concurrently when there are several); errors are returned, not raised."""
        if len(pending) == 1:  # the common case: no task per poll
            try:
                return [await self._fetch(hook, pending[0])]
            except Exception as exc:
                return [exc]
        return await asyncio.gather(*(self._fetch(hook, i) for i in pending), return_exceptions=True)

    async def _fire(self, outcome: WaitOutcome) -> TriggerEvent:
        """The event carrying ``outcome``, once ``not_before`` has passed (the log says why it is held)."""
        if self.not_before is not None and (early := self.not_before - time.time()) > 0:
            guard = "min_defer_seconds" + ("" if self.min_defer_seconds is None else f"={self.min_defer_seconds:g}")
            self.log.info(
                "MinerU %s wait %s; holding the event %.1f s more (%s: Airflow 3 can fail a task resumed "
                "within seconds of deferring, see apache/airflow#66374, #71580, #72716)",
                outcome.kind,
                outcome.status,
                early,
                guard,
            )
            await asyncio.sleep(early)
        return outcome_event(outcome)  # logged by the triggerer as one summary line

    async def run(self) -> AsyncIterator[TriggerEvent]:
        poller = self._poller()
        try:
            hook = (await asyncio.to_thread(_load_hook_class))(mineru_conn_id=self.mineru_conn_id)
            pacing = await hook.await_pacing()  # the triggerer's waits share its polls (account)
            if self.first_poll_delay > 0:  # the operator has just polled before deferring
                await asyncio.sleep(max(0.0, min(self.first_poll_delay, self.end_time - time.time())))
            async with hook.async_session():
                poller.watcher = hook.state_watcher(  # queue and parse times (account)
                    submitted_at=self.submitted_at, model=self.model_version
                )
                with pacing.waiting():  # counted among the triggerer's waits (account)
                    while True:
                        pending = poller.pending_ids()
                        await pacing.before_round(len(pending))
                        answers = await self._fetch_all(hook, pending)
                        for item_id, answer in zip(pending, answers, strict=True):
                            if isinstance(answer, BaseException) and not isinstance(answer, MinerUError):
                                raise answer
                            if (failed := poller.absorb(item_id, answer, self.log)) is not None:
                                yield await self._fire(failed)
                                return
                            await asyncio.sleep(0)  # one batch's answer at a time: other triggers run between
                        now = time.time()
                        if (over := poller.finished(now, self.end_time)) is not None:
                            yield await self._fire(over)
                            return
                        await asyncio.sleep(max(0.0, min(pacing.interval(self.poll_interval), self.end_time - now)))
        except Exception as exc:  # anything unexpected ends the wait with a clear error event
            error = exc if isinstance(exc, MinerUError) else MinerUError(f"{type(exc).__name__}: {exc}")
            yield await self._fire(poller.outcome(ERROR, str(error), error))


class MinerUTaskTrigger(_MinerUPollTrigger):
    """
    Wait for one MinerU task (``GET /extract/task/{task_id}``) to be ``done`` or ``failed``.

    :param mineru_task_id: the MinerU task id (never kept in ``self.task_id``, which the triggerer
        overwrites with the Airflow task id).
    :param kwargs: ``end_time`` (required), ``mineru_conn_id``, ``poll_interval``,
        ``first_poll_delay``, ``not_before``, ``min_defer_seconds`` and ``sources``, as for every
        MinerU trigger.
    """

    wait = TASK_WAIT

    def __init__(self, *, mineru_task_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not mineru_task_id:
            raise ValueError("MinerUTaskTrigger needs mineru_task_id (the MinerU task id)")
        self.mineru_task_id = mineru_task_id

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "airflow_provider_mineru.triggers.mineru.MinerUTaskTrigger",
            {"mineru_task_id": self.mineru_task_id, **self._common_kwargs()},
        )

    @classmethod
    def from_poller(cls, poller: MinerUPoller, **kwargs: Any) -> MinerUTaskTrigger:
        return cls(mineru_task_id=poller.ids[0], sources=poller.sources, **kwargs)

    def _poller(self) -> MinerUPoller:
        return MinerUPoller(wait=self.wait, ids=[self.mineru_task_id], sources=self.sources)


class MinerUBatchTrigger(_MinerUPollTrigger):
    """
    Wait for every file of one or more MinerU batches to be ``done`` or ``failed``.

    Each poll costs one request per unfinished batch, whatever the number of files in it.

    :param batch_ids: MinerU batch ids, in submission order.
    :param expected_files: per batch, how many files were submitted (so a batch that does not list
        all its files yet is not taken as finished).
    :param failed_files: per batch, files whose upload failed, with the error (counted as failed).
    :param slots: per input document, ``[batch index, position]`` of its latest submission (after a
        retry resubmitted some documents); None when the inputs are the batches' files in order.
    :param kwargs: ``end_time`` (required), ``mineru_conn_id``, ``poll_interval``,
        ``first_poll_delay``, ``not_before``, ``min_defer_seconds`` and ``sources``, as for every
        MinerU trigger.
    """

    wait = BATCH_WAIT

    def __init__(
        self,
        *,
        batch_ids: Sequence[str],
        expected_files: Sequence[int] | None = None,
        failed_files: dict[str, dict[str, str]] | None = None,
        slots: Sequence[Sequence[int]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.batch_ids = list(batch_ids)
        self.expected_files = None if expected_files is None else [int(n) for n in expected_files]
        self.failed_files = failed_files or None
        self.slots = None if slots is None else [list(slot) for slot in slots]

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "airflow_provider_mineru.triggers.mineru.MinerUBatchTrigger",
            {
                "batch_ids": self.batch_ids,
                "expected_files": self.expected_files,
                "failed_files": self.failed_files,
                "slots": self.slots,
                **self._common_kwargs(),
            },
        )

    @classmethod
    def from_poller(cls, poller: MinerUPoller, **kwargs: Any) -> MinerUBatchTrigger:
        return cls(
            batch_ids=poller.ids,
            expected_files=poller.expected_files,
            failed_files=poller.failed_files,
            slots=poller.slots,
            sources=poller.sources,
            **kwargs,
        )

    def _poller(self) -> MinerUPoller:
        return MinerUPoller(
            wait=self.wait,
            ids=self.batch_ids,
            expected_files=self.expected_files,
            failed_files=self.failed_files,
            slots=self.slots,
            sources=self.sources,
        )


def trigger_for(poller: MinerUPoller, **kwargs: Any) -> _MinerUPollTrigger:
    """
    The trigger that waits, in the triggerer, for what ``poller`` waits on.

    :param poller: the wait as the operator or sensor set it up (its ids, sizes, failures, slots,
        sources).
    :param kwargs: ``end_time`` (required), ``mineru_conn_id``, ``poll_interval``,
        ``first_poll_delay``, ``not_before``, ``min_defer_seconds``, ``submitted_at`` and ``model_version``.
    """
    chosen = next(trigger for trigger in (MinerUTaskTrigger, MinerUBatchTrigger) if trigger.wait is poller.wait)
    return chosen.from_poller(poller, **kwargs)
