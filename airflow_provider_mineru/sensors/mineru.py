"""
Sensors that wait for MinerU documents submitted elsewhere (another task, another system).

Both return the final state in the same XCom shape as the operators, can download the results,
and in deferrable mode poke once and then wait in the triggerer.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_mineru.connection_fields import DEFAULT_CONN_ID
from airflow_provider_mineru.polling import min_defer_default
from airflow_provider_mineru.version_compat import BaseSensorOperator, conf

if TYPE_CHECKING:
    from airflow_provider_mineru.hooks.mineru import MinerUHook
    from airflow_provider_mineru.version_compat import Context


class _MinerUSensor(BaseSensorOperator):
    """
    Shared by the MinerU sensors.

    :param mineru_conn_id: the ``mineru`` connection.
    :param output_path: where to extract ``done`` results (local, ``s3://…`` or ``ObjectStoragePath``).
    :param fail_on_file_error: fail when a document failed (after saving the others).
    :param deferrable: wait in the triggerer (default: ``[operators] default_deferrable``).
    :param min_defer_seconds: in deferrable mode, the least time between deferring and resuming
        (default ``[mineru] min_defer_seconds``, 10 s): Airflow 3 can fail a task resumed within
        seconds of its deferral (apache/airflow#66374, #71580, #72716).
    """

    template_fields: Sequence[str] = ("output_path",)
    kind = "task"

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

    @cached_property
    def hook(self) -> MinerUHook:
        from airflow_provider_mineru.hooks.mineru import MinerUHook

        return MinerUHook(mineru_conn_id=self.mineru_conn_id)

    def _ids(self) -> list[str]:
        raise NotImplementedError

    def _fetch(self, item_id: str) -> Any:
        return self.hook.get_task(item_id) if self.kind == "task" else self.hook.get_batch(item_id)

    def _poller(self) -> Any:
        from airflow_provider_mineru.polling import MinerUPoller

        return MinerUPoller(kind=self.kind, ids=self._ids())

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
        outcome = poll_once(self._poller(), self._fetch, end_time=end_time, log=self.log)
        if outcome is not None:
            return self._finish(context, outcome)
        self.defer(trigger=self._trigger(end_time), method_name="execute_complete")

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Resume after the trigger fired."""
        return self._finish(context, event)

    def _trigger(self, end_time: float) -> Any:
        raise NotImplementedError

    def _finish(self, context: Context, event: dict[str, Any] | None) -> Any:
        from airflow_provider_mineru.outcome import finish_in_task

        return finish_in_task(
            context,
            self.outlets,
            event=event,
            ids=self._ids(),
            kind=self.kind,
            hook=self.hook,
            output_path=self.output_path,
            fail_on_file_error=self.fail_on_file_error,
            log=self.log,
        )


class MinerUTaskSensor(_MinerUSensor):
    """
    Wait until a MinerU task is ``done`` (or fail when it is ``failed``).

    Returns ``{"task_id", "data_id", "state", "full_zip_url", "err_msg", "output_path"}``.

    :param mineru_task_id: the MinerU task id (e.g. ``{{ ti.xcom_pull('submit')['task_id'] }}``). Templated.
    """

    template_fields: Sequence[str] = (*_MinerUSensor.template_fields, "mineru_task_id")
    kind = "task"

    def __init__(self, *, mineru_task_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mineru_task_id = mineru_task_id

    def _ids(self) -> list[str]:
        return [self.mineru_task_id]

    def _trigger(self, end_time: float) -> Any:
        from airflow_provider_mineru.triggers.mineru import MinerUTaskTrigger

        return MinerUTaskTrigger(
            mineru_task_id=self.mineru_task_id,
            end_time=end_time,
            mineru_conn_id=self.mineru_conn_id,
            poll_interval=float(self.poke_interval),
            first_poll_delay=float(self.poke_interval),
            not_before=time.time() + self.min_defer_seconds,
        )


class MinerUBatchSensor(_MinerUSensor):
    """
    Wait until every file of a MinerU batch is ``done`` or ``failed``.

    Returns ``{"batch_ids": [...], "results": [...]}``.

    :param batch_id: a MinerU batch id, a list of them, or the whole XCom of a batch operator
        (``batch_id=upload.output``). Templated.
    """

    template_fields: Sequence[str] = (*_MinerUSensor.template_fields, "batch_id")
    kind = "batch"

    def __init__(self, *, batch_id: str | Sequence[str] | dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.batch_id = batch_id

    def _batch_value(self) -> Any:
        from airflow_provider_mineru.outcome import parse_rendered_xcom

        return parse_rendered_xcom(self.batch_id)

    def _ids(self) -> list[str]:
        value = self._batch_value()
        if isinstance(value, dict):  # the XCom of a batch operator
            return [str(i) for i in value["batch_ids"]]
        if isinstance(value, str):
            return [value.strip()]
        return [str(i) for i in value]

    def _expected_files(self) -> list[int] | None:
        """Files per batch, known when given a batch operator's XCom (so a partial listing is not taken as done)."""
        value = self._batch_value()
        if not isinstance(value, dict) or not value.get("results"):
            return None
        counts = [sum(1 for r in value["results"] if r.get("batch_id") == bid) for bid in value["batch_ids"]]
        return counts if all(counts) else None

    def _poller(self) -> Any:
        from airflow_provider_mineru.polling import MinerUPoller

        return MinerUPoller(kind=self.kind, ids=self._ids(), expected_files=self._expected_files())

    def _trigger(self, end_time: float) -> Any:
        from airflow_provider_mineru.triggers.mineru import MinerUBatchTrigger

        return MinerUBatchTrigger(
            batch_ids=self._ids(),
            expected_files=self._expected_files(),
            end_time=end_time,
            mineru_conn_id=self.mineru_conn_id,
            poll_interval=float(self.poke_interval),
            first_poll_delay=float(self.poke_interval),
            not_before=time.time() + self.min_defer_seconds,
        )
