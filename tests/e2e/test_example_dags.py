"""Every example DAG end to end with real Airflow (``dag.test()``), against the emulator over real sockets."""

from __future__ import annotations

import pytest

from tests.helpers import load_example, run_dag


def run_example(name: str, *, deferrable: bool, output, monkeypatch, **kwargs) -> set[str]:
    """Run one example DAG with ``dag.test()``; return the set of its task states."""
    dag = load_example(name, deferrable=deferrable, output=output, monkeypatch=monkeypatch).dag
    states, _ = run_dag(dag, **kwargs)
    return set(states.values())


MODES = [pytest.param(True, id="deferrable"), pytest.param(False, id="blocking")]


@pytest.mark.usefixtures("airflow_db")
class TestExampleDags:
    @pytest.mark.parametrize("deferrable", MODES)
    def test_parse_files(self, mineru_conn, tmp_path, monkeypatch, deferrable):
        states = run_example(
            "mineru_parse_files",
            deferrable=deferrable,
            output=tmp_path,
            monkeypatch=monkeypatch,
            run_conf={"output_path": str(tmp_path)},
        )
        assert states == {"success"}
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
        states = run_example("mineru_parse_urls", deferrable=deferrable, output=tmp_path, monkeypatch=monkeypatch)
        assert states == {"success"}
        assert (tmp_path / "urls" / "demo-example" / "full.md").is_file()
        assert (tmp_path / "urls" / "demo-paper" / "full.md").is_file()
        assert not (tmp_path / "urls" / "missing-document").exists()
        assert len(mineru_conn.requests_to("submit_batch")) == 1

    @pytest.mark.parametrize("deferrable", MODES)
    def test_task_then_sensor(self, mineru_conn, tmp_path, monkeypatch, deferrable):
        states = run_example("mineru_task_then_sensor", deferrable=deferrable, output=tmp_path, monkeypatch=monkeypatch)
        assert states == {"success"}
        assert "MinerU" in (tmp_path / "sensor" / "sensor-example" / "full.md").read_text()
        assert len(mineru_conn.requests_to("submit_task")) == 1

    @pytest.mark.parametrize("deferrable", MODES)
    def test_mapped(self, mineru_conn, tmp_path, monkeypatch, deferrable):
        states = run_example("mineru_mapped", deferrable=deferrable, output=tmp_path, monkeypatch=monkeypatch)
        assert states == {"success"}
        # the two results, the run manifests of the two mapped task instances, the ledger
        found = sorted(p.name for p in (tmp_path / "mapped").iterdir())
        assert found == [".mineru-ledger", ".mineru-manifests", "demo", "example"]
        assert len(mineru_conn.requests_to("submit_task")) == 2

    @pytest.mark.parametrize("deferrable", MODES)
    def test_long_document(self, mineru_conn, tmp_path, monkeypatch, deferrable):
        import json
        import os

        # a connection at 100 pages per file: the same split and stitch as at 600, in a tenth of the pages
        conn = json.loads(os.environ["AIRFLOW_CONN_MINERU_DEFAULT"])
        conn["extra"]["max_pages"] = 100
        monkeypatch.setenv("AIRFLOW_CONN_MINERU_DEFAULT", json.dumps(conn))
        states = run_example(
            "mineru_long_document",
            deferrable=deferrable,
            output=tmp_path,
            monkeypatch=monkeypatch,
            run_conf={"output_path": str(tmp_path), "pages": 150},
        )
        assert states == {"success"}
        folder = tmp_path / "long" / "long_manual"
        assert sorted(p.name for p in (folder / "parts").iterdir()) == ["0-1-100", "1-101-150"]
        markdown = (folder / "full.md").read_text()
        assert markdown.index("Page 1 of the long manual") < markdown.index("Page 150 of the long manual")
        (request,) = mineru_conn.requests_to("file_urls")  # one batch for the two slices
        assert [f["name"] for f in request.json["files"]] == [
            "long_manual.pages-1-100.pdf",
            "long_manual.pages-101-150.pdf",
        ]


@pytest.mark.usefixtures("airflow_db")
@pytest.mark.parametrize("deferrable", MODES)
def test_incremental_second_run_pays_nothing(mineru_conn, tmp_path, monkeypatch, deferrable):
    """``mineru_incremental`` twice over the samples: the second run sends no request that costs, no upload."""
    from tests.helpers import xcom

    for run in range(2):
        dag = load_example("mineru_incremental", deferrable=deferrable, output=tmp_path, monkeypatch=monkeypatch).dag
        states, _ = run_dag(dag, run_conf={"output_path": str(tmp_path / "incremental")})
        assert set(states.values()) == {"success"}, run
    assert len(mineru_conn.requests_to("file_urls")) == 1
    assert len(mineru_conn.requests_to("upload")) == 4
    assert xcom(dag, "report") == {"parsed": 0, "reused": 4, "failed": 0, "skipped_attempts": 0, "tombstoned": 0}
    assert "Northwind Traders" in (tmp_path / "incremental" / "annual_report" / "full.md").read_text()
