"""
:class:`MinerUBaseSensor`: the flow both MinerU sensors share (poke, or poke once then defer).

The concrete sensors are in :mod:`airflow_provider_mineru.sensors.mineru`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_mineru.connection_form import DEFAULT_CONN_ID
from airflow_provider_mineru.operators.base import MinerUHookMixin
from airflow_provider_mineru.polling import min_defer_default
from airflow_provider_mineru.version_compat import BaseSensorOperator, conf
from airflow_provider_mineru.waits import TASK_WAIT, MinerUWait

if TYPE_CHECKING:
    from airflow_provider_mineru.events import WaitOutcome
    from airflow_provider_mineru.polling import MinerUPoller
    from airflow_provider_mineru.version_compat import Context

__all__ = ["MinerUBaseSensor"]


class MinerUBaseSensor(MinerUHookMixin, BaseSensorOperator):
    """
    The MinerU sensors' base: poke once per ``poke_interval``, or poke once and defer.

    A subclass says what it waits on (:attr:`wait`) and which ids (:meth:`_ids`); the rest (the
    poller, the trigger, finishing) never branches on the kind.

    :param mineru_conn_id: the ``mineru`` connection.
    :param output_path: where to extract ``done`` results (local, ``s3://…`` or ``ObjectStoragePath``).
    :param fail_on_file_error: fail when a document failed (after saving the others).
    :param deferrable: wait in the triggerer (default: ``[operators] default_deferrable``).
    :param min_defer_seconds: in deferrable mode, the least time between deferring and resuming
        (default ``[mineru] min_defer_seconds``, 10 s): Airflow 3 can fail a task resumed within
        seconds of its deferral (apache/airflow#66374, #71580, #72716).
    """

    template_fields: Sequence[str] = ("output_path",)
    #: What the sensor waits on: a task or batches.
    wait: ClassVar[MinerUWait] = TASK_WAIT

    def __init__(
        self,
        *,
        mineru_conn_id: str = DEFAULT_CONN_ID,
        output_path: Any = None,
        fail_on_file_error: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        min_defer_seconds: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.min_defer_seconds = min_defer_default() if min_defer_seconds is None else float(min_defer_seconds)
        self.mineru_conn_id = mineru_conn_id
        self.output_path = output_path
        self.fail_on_file_error = fail_on_file_error
        self.deferrable = deferrable

    def _ids(self) -> list[str]:
        """The MinerU ids waited on."""
        raise NotImplementedError

    def _expected_files(self) -> list[int] | None:
        """Per batch, how many files it holds, when known (so a partial listing is not taken as done)."""
        return None

    def _fetch(self, item_id: str) -> Any:
        return self.wait.fetch(self.hook, item_id)

    def _poller(self) -> MinerUPoller:
        from airflow_provider_mineru.polling import MinerUPoller

        return MinerUPoller(wait=self.wait, ids=self._ids(), expected_files=self._expected_files())

    def poke(self, context: Context) -> Any:
        from airflow_provider_mineru.polling import poll_once

        outcome = poll_once(self._poller(), self._fetch, end_time=float("inf"), log=self.log)
        if outcome is None:
            return False
        from airflow_provider_mineru.version_compat import PokeReturnValue

        return PokeReturnValue(is_done=True, xcom_value=self._finish(context, outcome))

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        from airflow_provider_mineru.polling import poll_once

        timeout = self.timeout.total_seconds() if hasattr(self.timeout, "total_seconds") else float(self.timeout)
        end_time = time.time() + timeout
        poller = self._poller()
        outcome = poll_once(poller, self._fetch, end_time=end_time, log=self.log)
        if outcome is not None:
            return self._finish(context, outcome)
        self.defer(trigger=self._trigger(poller, end_time), method_name="execute_complete")

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Resume after the trigger fired."""
        return self._finish(context, event)

    def _trigger(self, poller: MinerUPoller, end_time: float) -> Any:
        from airflow_provider_mineru.triggers.mineru import trigger_for

        return trigger_for(
            poller,
            end_time=end_time,
            mineru_conn_id=self.mineru_conn_id,
            poll_interval=float(self.poke_interval),
            first_poll_delay=float(self.poke_interval),
            not_before=time.time() + self.min_defer_seconds,
        )

    def _finish(self, context: Context, event: WaitOutcome | dict[str, Any] | None) -> Any:
        from airflow_provider_mineru.finish import finish_in_task

        return finish_in_task(
            context,
            self.outlets,
            event=event,
            ids=self._ids(),
            wait=self.wait,
            hook=self.hook,
            output_path=self.output_path,
            fail_on_file_error=self.fail_on_file_error,
            log=self.log,
        )
