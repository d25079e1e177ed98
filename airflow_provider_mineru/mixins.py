"""
What the MinerU operators and sensors share, so that neither role imports the other (as the
Amazon provider's ``utils/mixins.py``): the hook of ``mineru_conn_id``, the trigger a wait defers
to, and ending a wait inside the task.

Imported at DAG-parse time by both roles: everything a task only needs when it runs is imported
where it is used, each with its reason.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_mineru.waiting.events import WaitOutcome, validate_wait_event

if TYPE_CHECKING:
    from airflow.triggers.base import BaseTrigger

    from airflow_provider_mineru.hooks.mineru import MinerUHook
    from airflow_provider_mineru.waiting.finish import FinishedWait
    from airflow_provider_mineru.waiting.polling import MinerUPoller
    from airflow_provider_mineru.waiting.waits import MinerUWait

__all__ = ["MinerUHookMixin", "MinerUWaitMixin"]


class MinerUHookMixin:
    """
    What every MinerU operator and sensor shares: ``mineru_conn_id`` and its hook, made on first
    use (never at DAG-parse time, so parsing a DAG reads no connection and imports no HTTP library).
    """

    mineru_conn_id: str

    @cached_property
    def hook(self) -> MinerUHook:
        """The :class:`~airflow_provider_mineru.hooks.mineru.MinerUHook` of ``mineru_conn_id``."""
        from airflow_provider_mineru.hooks.mineru import MinerUHook  # not at DAG-parse time: it loads requests

        return MinerUHook(mineru_conn_id=self.mineru_conn_id)


class MinerUWaitMixin(MinerUHookMixin):
    """
    Waiting and finishing, for the operators and sensors that wait on MinerU documents.

    The class says what it waits on (:attr:`wait`); instances carry ``mineru_conn_id``,
    ``min_defer_seconds``, ``output_path``, ``fail_on_file_error`` and Airflow's ``log``.
    """

    #: What is waited on: a task or batches.
    wait: ClassVar[MinerUWait]
    min_defer_seconds: float
    output_path: Any
    fail_on_file_error: bool
    log: Any

    def _trigger(
        self,
        poller: MinerUPoller,
        *,
        end_time: float,
        poll_interval: float,
        submitted_at: float | None = None,
        model_version: str | None = None,
    ) -> BaseTrigger:
        """
        The trigger to defer to: it holds its event until ``min_defer_seconds`` after now.

        :param submitted_at: when the documents were submitted (the trigger's queue times), None when not known.
        :param model_version: the ``model`` tag of the trigger's metrics.
        """
        from airflow_provider_mineru.triggers.mineru import trigger_for  # not at DAG-parse time: ~80 ms

        return trigger_for(
            poller,
            end_time=end_time,
            mineru_conn_id=self.mineru_conn_id,
            poll_interval=poll_interval,
            first_poll_delay=poll_interval,
            not_before=time.time() + self.min_defer_seconds,
            min_defer_seconds=self.min_defer_seconds,
            submitted_at=submitted_at,
            model_version=model_version,
        )

    def _finished(self, event: WaitOutcome | Mapping[str, Any] | None) -> FinishedWait:
        """
        The end of a wait, from its outcome (the blocking wait's, or a trigger event's payload):
        checked first (:func:`~airflow_provider_mineru.waiting.events.validate_wait_event`), then finished
        (:func:`~airflow_provider_mineru.waiting.finish.finish_outcome`).
        """
        # not at DAG-parse time: finish loads the downloads, the landing and the zip extraction
        from airflow_provider_mineru.results.downloads import ResultDownloader
        from airflow_provider_mineru.waiting.finish import finish_outcome

        outcome = validate_wait_event(event)
        downloader = ResultDownloader(self.hook, self.output_path, self.log)
        return finish_outcome(self.wait, outcome, downloader, fail_on_file_error=self.fail_on_file_error)
