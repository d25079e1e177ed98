"""What a person reads: the providers page description, the example DAGs' docs, the form's schema."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from airflow_provider_mineru.connection.form import CONN_FIELDS
from airflow_provider_mineru.get_provider_info import get_provider_info

DAGS = Path(__file__).resolve().parent.parent / "dags"


def test_description_reads_the_same_on_the_providers_page():
    description = get_provider_info()["description"]
    # Airflow 3's providers page shows re.sub("[`_<>]", "", description.strip(" \n.")).
    shown = re.sub("[`_<>]", "", description.strip(" \n."))
    assert shown == description.strip(" \n.")
    assert "https://mineru.net" in shown and "mineru.net/document" not in shown


def _dag_calls(path: Path) -> list[ast.Call]:
    tree = ast.parse(path.read_text())
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "DAG"]


@pytest.mark.parametrize("path", sorted(DAGS.glob("mineru_*.py")), ids=lambda p: p.stem)
def test_every_example_dag_has_docs_and_a_description(path):
    calls = _dag_calls(path)
    assert calls, path
    for call in calls:
        keywords = {k.arg: k.value for k in call.keywords}
        assert isinstance(keywords.get("doc_md"), ast.Name) and keywords["doc_md"].id == "__doc__"
        description = keywords.get("description")
        assert isinstance(description, ast.Constant) and 20 < len(description.value) <= 200


def test_example_dags_show_their_docs(airflow_db, monkeypatch):
    monkeypatch.syspath_prepend(str(DAGS))  # Airflow puts the DAGs folder on sys.path the same way
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 2
        from airflow.models.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert not bag.import_errors, bag.import_errors
    for dag_id, dag in bag.dags.items():
        assert dag.description, dag_id
        assert dag.doc_md and len(dag.doc_md) > 50, dag_id


def test_form_schema_bounds():
    schema = {name: spec["schema"] for name, spec in CONN_FIELDS.items()}
    assert (schema["max_retries"]["minimum"], schema["max_retries"]["type"][0]) == (0, "integer")
    assert (schema["max_batch_files"]["minimum"], schema["max_batch_files"]["maximum"]) == (1, 200)
    assert schema["max_pages"]["maximum"] == 600 and schema["max_file_mb"]["maximum"] == 200
    assert schema["callback_secret"]["format"] == "password"
    assert not re.search(schema["callback_secret"]["pattern"], "has spaces")
    assert re.search(schema["callback_secret"]["pattern"], "Good_secret_1")
    assert "ca_bundle" in CONN_FIELDS


def test_conn_fields_reach_airflow_with_their_rules():
    fields = get_provider_info()["connection-types"][0]["conn-fields"]
    assert fields["max_batch_files"]["schema"]["maximum"] == 200
    assert fields["callback_secret"]["schema"]["format"] == "password"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, True),
        ({"verify": False, "ca_bundle": "/ca.pem"}, False),
        ({"verify": "false"}, False),
        ({"ca_bundle": "/ca.pem"}, "/ca.pem"),
        ({"verify": True, "ca_bundle": "/ca.pem"}, "/ca.pem"),
        ({"verify": "/legacy/ca.pem"}, "/legacy/ca.pem"),  # the older spelling still works
        ({"verify": "", "ca_bundle": ""}, True),
    ],
)
def test_tls_verify(extra, expected):
    from airflow_provider_mineru.connection.config import tls_verify, validate_extras

    validate_extras(extra)
    assert tls_verify(extra) == expected


def test_uri_form_strings_are_accepted():
    from airflow_provider_mineru.connection.config import validate_extras

    validate_extras({"max_retries": "3", "timeout": "0.3", "verify": "false", "max_batch_files": "20"})
    validate_extras({"max_retries": 2.0})  # a whole number written as a float


def test_hook_refuses_instead_of_truncating(monkeypatch):
    import json

    from airflow_provider_mineru.exceptions import MinerUValidationError
    from airflow_provider_mineru.hooks.mineru import MinerUHook

    conn = {"conn_type": "mineru", "host": "http://127.0.0.1:9/api/v4", "password": "t", "extra": {"max_retries": 2.5}}
    monkeypatch.setenv("AIRFLOW_CONN_MINERU_DEFAULT", json.dumps(conn))
    with pytest.raises(MinerUValidationError, match=r"max_retries=2.5: must be a whole number from 0 to 20"):
        MinerUHook().config  # noqa: B018


def test_outcome_event_logs_a_summary_not_every_url():
    from airflow_provider_mineru.waiting.events import describe_outcome, outcome_event

    payload = {
        "status": "done",
        "kind": "batch",
        "ids": ["b-1"],
        "results": [{"state": "done", "full_zip_url": f"https://cdn.example/{i}.zip?sig=secret"} for i in range(30)]
        + [{"state": "failed", "err_msg": "blurry"}],
        "batch_of": ["b-1"] * 31,
        "message": "",
        "sources": [],
    }
    from airflow_provider_mineru.waiting.events import validate_wait_event

    event = outcome_event(validate_wait_event(payload))
    assert validate_wait_event(event.payload) == validate_wait_event(payload)  # what the task receives
    assert repr(event) == "TriggerEvent<MinerU batch wait done: 31 documents, 30 done, 1 failed (batch b-1)>"
    assert "zip" not in describe_outcome(payload)


def test_task_without_data_id_is_not_named_twice():
    from airflow_provider_mineru.models import DocumentResult, MinerUState
    from airflow_provider_mineru.waiting.polling import MinerUPoller
    from airflow_provider_mineru.waiting.waits import TASK_WAIT

    lines: list[str] = []

    class Log:
        def info(self, fmt, *args):
            lines.append(fmt % args)

    poller = MinerUPoller(wait=TASK_WAIT, ids=["t-123"])
    poller.absorb("t-123", DocumentResult(state=MinerUState.DONE, raw_state="done", task_id="t-123"), Log())
    assert lines == ["MinerU task t-123: done"]


def test_transport_errors_name_the_request_once():
    import requests

    from airflow_provider_mineru.transport.policy import Origin, transport_error

    origin = Origin("mineru_default", "http://127.0.0.1:9/api/v4", 30)
    error = transport_error(requests.ConnectionError("refused"), "POST file-urls/batch", origin)
    assert "POST POST" not in str(error)
    assert "POST file-urls/batch: cannot reach 127.0.0.1:9: connection refused (ConnectionError: refused)" in str(error)
