"""
:class:`MinerUBaseSensor`: the flow both MinerU sensors share (poke, or poke once then defer).

The concrete sensors are in :mod:`airflow_provider_mineru.sensors.mineru`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_mineru.connection.form import DEFAULT_CONN_ID
from airflow_provider_mineru.mixins import MinerUWaitMixin
from airflow_provider_mineru.version_compat import BaseSensorOperator, PokeReturnValue, conf
from airflow_provider_mineru.waiting.polling import MinerUPoller, min_defer_default, poll_once
from airflow_provider_mineru.waiting.waits import TASK_WAIT, MinerUWait

if TYPE_CHECKING:
    from airflow_provider_mineru.version_compat import Context
    from airflow_provider_mineru.waiting.events import WaitOutcome

__all__ = ["MinerUBaseSensor"]


class MinerUBaseSensor(MinerUWaitMixin, BaseSensorOperator):
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
        return MinerUPoller(wait=self.wait, ids=self._ids(), expected_files=self._expected_files())

    def poke(self, context: Context) -> Any:
        outcome = poll_once(self._poller(), self._fetch, end_time=float("inf"), log=self.log)
        if outcome is None:
            return False
        return PokeReturnValue(is_done=True, xcom_value=self._finish(context, outcome))

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        timeout = self.timeout.total_seconds() if hasattr(self.timeout, "total_seconds") else float(self.timeout)
        end_time = time.time() + timeout
        poller = self._poller()
        outcome = poll_once(poller, self._fetch, end_time=end_time, log=self.log)
        if outcome is not None:
            return self._finish(context, outcome)
        trigger = self._trigger(poller, end_time=end_time, poll_interval=float(self.poke_interval))
        self.defer(trigger=trigger, method_name="execute_complete")

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Resume after the trigger fired: its event is the whole outcome of the wait."""
        return self._finish(context, event)

    def _finish(self, context: Context, event: WaitOutcome | dict[str, Any] | None) -> Any:
        return self._finished(event).deliver(context, self.outlets)
