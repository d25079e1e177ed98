"""Every example DAG end to end with real Airflow (``dag.test()``), against the emulator over real sockets."""

from __future__ import annotations

import importlib.util
import sys
import uuid
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"


def load_example(name: str, *, deferrable: bool, output: Path, monkeypatch) -> object:
    """Import an example DAG file fresh, with the example settings taken from the environment."""
    monkeypatch.setenv("MINERU_EXAMPLE_DEFERRABLE", str(deferrable).lower())
    monkeypatch.setenv("MINERU_EXAMPLE_OUTPUT", str(output))
    monkeypatch.setenv("MINERU_EXAMPLE_POLL_INTERVAL", "0.2")
    monkeypatch.syspath_prepend(str(DAGS))
    sys.modules.pop("_example_settings", None)
    spec = importlib.util.spec_from_file_location(f"example_{name}_{uuid.uuid4().hex}", DAGS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


def run_dag(dag, **kwargs):
    run = dag.test(**kwargs)
    state = getattr(run, "state", None)
    return run, str(state).rsplit(".", 1)[-1].lower()


MODES = [pytest.param(True, id="deferrable"), pytest.param(False, id="blocking")]


@pytest.mark.usefixtures("airflow_db")
class TestExampleDags:
    @pytest.mark.parametrize("deferrable", MODES)
    def test_parse_files(self, mineru_conn, tmp_path, monkeypatch, deferrable):
        dag = load_example("mineru_parse_files", deferrable=deferrable, output=tmp_path, monkeypatch=monkeypatch)
        _, state = run_dag(dag, run_conf={"output_path": str(tmp_path)})
        assert state == "success"
        report = (tmp_path / "annual_report" / "full.md").read_text()
        assert "Northwind Traders Annual Report 2024" in report
        assert "Adaptive Batching" in (tmp_path / "research_paper" / "full.md").read_text()
        assert (tmp_path / "scanned_receipt" / "images").is_dir()
        # one batch: one file-urls call, four PUTs, batch polls (never per-file polls)
        assert len(mineru_conn.requests_to("file_urls")) == 1
        assert len(mineru_conn.requests_to("upload")) == 4
        assert mineru_conn.requests_to("get_task") == []

    @pytest.mark.parametrize("deferrable", MODES)
    def test_parse_urls_keeps_partial_results(self, mineru_conn, tmp_path, monkeypatch, deferrable):
        dag = load_example("mineru_parse_urls", deferrable=deferrable, output=tmp_path, monkeypatch=monkeypatch)
        _, state = run_dag(dag)
        assert state == "success"
        assert (tmp_path / "urls" / "demo-example" / "full.md").is_file()
        assert (tmp_path / "urls" / "demo-paper" / "full.md").is_file()
        assert not (tmp_path / "urls" / "missing-document").exists()
        assert len(mineru_conn.requests_to("submit_batch")) == 1

    @pytest.mark.parametrize("deferrable", MODES)
    def test_task_then_sensor(self, mineru_conn, tmp_path, monkeypatch, deferrable):
        dag = load_example("mineru_task_then_sensor", deferrable=deferrable, output=tmp_path, monkeypatch=monkeypatch)
        _, state = run_dag(dag)
        assert state == "success"
        assert "MinerU" in (tmp_path / "sensor" / "sensor-example" / "full.md").read_text()
        assert len(mineru_conn.requests_to("submit_task")) == 1

    @pytest.mark.parametrize("deferrable", MODES)
    def test_mapped(self, mineru_conn, tmp_path, monkeypatch, deferrable):
        dag = load_example("mineru_mapped", deferrable=deferrable, output=tmp_path, monkeypatch=monkeypatch)
        _, state = run_dag(dag)
        assert state == "success"
        assert sorted(p.name for p in (tmp_path / "mapped").iterdir()) == ["demo", "example"]
        assert len(mineru_conn.requests_to("submit_task")) == 2
