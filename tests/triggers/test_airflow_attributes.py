"""
Our triggers, sensors and operators never keep state in an attribute an Airflow base class owns.

The real triggerer builds a trigger from its kwargs and then assigns ``trigger.task_instance = ti``;
``BaseTrigger``'s setter (Airflow 3) sets ``self.task_id = ti.task_id``. A MinerU trigger that kept
its MinerU task id in ``self.task_id`` polled ``/extract/task/<Airflow task id>`` in every real
deployment, while ``dag.test()`` (which never sets ``task_instance``) stayed green.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
import time
from types import SimpleNamespace

import pytest

from airflow_provider_mineru.hooks.mineru import MinerUHook
from airflow_provider_mineru.operators import mineru as operators
from airflow_provider_mineru.sensors import mineru as sensors
from airflow_provider_mineru.triggers import mineru as triggers
from airflow_provider_mineru.version_compat import BaseOperator, BaseSensorOperator
from tests.helpers import sample_url

BaseTrigger = triggers.BaseTrigger


def _assigned_attributes(cls: type) -> set[str]:
    """Every ``self.<name> = …`` in the methods ``cls`` itself defines."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    names = set()
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        for target in targets:
            if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
                names.add(target.attr)
    return names


def _owned_by(base: type, instance: object) -> set[str]:
    """Names a base class owns: its class attributes and what its ``__init__`` assigns."""
    return set(dir(base)) | set(vars(instance))


def _ours(module: object, base: type) -> list[type]:
    return [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, base) and obj.__module__ == module.__name__
    ]


#: Base-class attributes our classes set on purpose, with the base class's own meaning.
INTENDED = {"template_fields", "ui_color"}


@pytest.mark.parametrize(
    ("module", "base", "instance"),
    [
        pytest.param(triggers, BaseTrigger, None, id="triggers"),
        pytest.param(sensors, BaseSensorOperator, None, id="sensors"),
        pytest.param(operators, BaseOperator, None, id="operators"),
    ],
)
def test_no_attribute_clashes_with_airflow_base_classes(module, base, instance):
    if base is BaseTrigger:

        class _Plain(BaseTrigger):
            def serialize(self):  # pragma: no cover - never called
                return "", {}

            async def run(self):  # pragma: no cover - never called
                yield None

        instance = _Plain()
    elif base is BaseSensorOperator:
        instance = BaseSensorOperator(task_id="probe")
    else:
        instance = BaseOperator(task_id="probe")
    owned = _owned_by(base, instance)
    clashes = {cls.__name__: sorted((_assigned_attributes(cls) & owned) - INTENDED) for cls in _ours(module, base)}
    assert not any(clashes.values()), f"attributes an Airflow base class owns: {clashes}"


def _as_the_triggerer_does(trigger: BaseTrigger) -> BaseTrigger:
    """Rebuild from the serialized kwargs, then assign a task instance as the real triggerer does."""
    from tests.triggers.test_triggers import rebuild

    trigger = rebuild(trigger)
    trigger.task_instance = SimpleNamespace(task_id="submit", dag_id="d", run_id="r", map_index=-1, try_number=1)
    return trigger


def test_task_trigger_keeps_the_mineru_id_when_the_triggerer_assigns_a_task_instance():
    trigger = _as_the_triggerer_does(triggers.MinerUTaskTrigger(mineru_task_id="mineru-123", end_time=9.0))
    assert trigger.serialize()[1]["mineru_task_id"] == "mineru-123"
    assert trigger._poller().ids == ["mineru-123"]


#: The kwargs the triggers serialized before they carried ``sources`` and ``min_defer_seconds``
#: (commit be6a402): triggers stored in a database with them still load, and poll the same ids.
STORED_KWARGS = {
    "airflow_provider_mineru.triggers.mineru.MinerUTaskTrigger": {
        "mineru_task_id": "mineru-123",
        "end_time": 9.0,
        "mineru_conn_id": "mineru_default",
        "poll_interval": 10.0,
        "first_poll_delay": 10.0,
        "not_before": 5.0,
    },
    "airflow_provider_mineru.triggers.mineru.MinerUBatchTrigger": {
        "batch_ids": ["b-1", "b-2"],
        "expected_files": [2, 1],
        "failed_files": {"b-1": {"a.pdf": "upload failed"}},
        "slots": [[0, 0], [0, 1], [1, 0]],
        "end_time": 9.0,
        "mineru_conn_id": "mineru_default",
        "poll_interval": 10.0,
        "first_poll_delay": 10.0,
        "not_before": None,
    },
}


@pytest.mark.parametrize("classpath", sorted(STORED_KWARGS))
def test_triggers_stored_with_their_serialized_kwargs_still_load(classpath):
    import importlib

    module, name = classpath.rsplit(".", 1)
    stored = STORED_KWARGS[classpath]
    trigger = getattr(importlib.import_module(module), name)(**stored)
    path, kwargs = trigger.serialize()
    assert path == classpath
    assert {k: v for k, v in kwargs.items() if k in stored} == stored
    assert kwargs["sources"] == [] and kwargs["min_defer_seconds"] is None
    assert list(trigger._poller().ids) == stored.get("batch_ids", ["mineru-123"])


async def test_task_trigger_with_a_task_instance_polls_the_mineru_task(mineru_conn):
    task_id = MinerUHook().submit_task(sample_url(mineru_conn, "invoice.pdf"), data_id="inv")
    trigger = _as_the_triggerer_does(
        triggers.MinerUTaskTrigger(mineru_task_id=task_id, end_time=time.time() + 30, poll_interval=0.05)
    )
    (event,) = [e.payload async for e in trigger.run()]
    assert event["status"] == "done", event
    assert event["ids"] == [task_id]
    assert not any("/extract/task/submit" in r.path for r in mineru_conn.requests)
