"""
Sensors that wait for MinerU documents submitted elsewhere (another task, another system).

Both return the final state in the same XCom shape as the operators, can download the results,
and in deferrable mode poke once and then wait in the triggerer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_mineru.results.xcom import parse_rendered_xcom
from airflow_provider_mineru.sensors.base import MinerUBaseSensor
from airflow_provider_mineru.waiting.waits import BATCH_WAIT, TASK_WAIT

__all__ = ["MinerUBaseSensor", "MinerUBatchSensor", "MinerUTaskSensor"]


class MinerUTaskSensor(MinerUBaseSensor):
    """
    Wait until a MinerU task is ``done`` (or fail when it is ``failed``).

    Returns ``{"task_id", "data_id", "state", "full_zip_url", "err_msg", "output_path"}``.

    :param mineru_task_id: the MinerU task id (e.g. ``{{ ti.xcom_pull('submit')['task_id'] }}``). Templated.
    """

    template_fields: Sequence[str] = (*MinerUBaseSensor.template_fields, "mineru_task_id")
    wait = TASK_WAIT

    def __init__(self, *, mineru_task_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mineru_task_id = mineru_task_id

    def _ids(self) -> list[str]:
        return [self.mineru_task_id]


class MinerUBatchSensor(MinerUBaseSensor):
    """
    Wait until every file of a MinerU batch is ``done`` or ``failed``.

    Returns ``{"batch_ids": [...], "results": [...]}``.

    :param batch_id: a MinerU batch id, a list of them, or the whole XCom of a batch operator
        (``batch_id=upload.output``). Templated.
    """

    template_fields: Sequence[str] = (*MinerUBaseSensor.template_fields, "batch_id")
    wait = BATCH_WAIT

    def __init__(self, *, batch_id: str | Sequence[str] | dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.batch_id = batch_id

    def _batch_value(self) -> Any:
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
