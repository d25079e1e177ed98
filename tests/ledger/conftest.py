"""Ledger test helpers: a store on a temporary folder, results landed with a real completion marker."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_mineru.ledger import LedgerKey, LedgerStore
from airflow_provider_mineru.results.landing import land_result
from airflow_provider_mineru.utils.safe_zip import ExtractedResult
from airflow_provider_mineru.utils.storage_paths import join_relative, storage_path
from tests.objectstorage.conftest import aws_conn, bucket, moto_endpoint  # noqa: F401  (the moto S3 server)

TOKEN = "token-of-the-connection"


def land(root: Any, folder: str, task_id: str, text: bytes = b"# result") -> None:
    """Land a one-file result for MinerU task ``task_id`` in ``root/folder``, completion marker included."""

    def extract(dest: Any) -> ExtractedResult:
        if hasattr(dest, "mkdir") and not hasattr(dest, "protocol"):
            dest.mkdir(parents=True, exist_ok=True)
        with (dest / "full.md").open("wb") as handle:
            handle.write(text)
        return ExtractedResult.of(str(dest), ("full.md",), (), len(text))

    land_result(
        extract,
        join_relative(storage_path(root), folder),
        identity={"task_id": task_id, "url": f"https://cdn/{task_id}.zip"},
    )


def file_key(content: bytes = b"pdf bytes", flavor: str = "cloud", **options: Any) -> LedgerKey:
    import hashlib

    return LedgerKey.for_file(hashlib.sha256(content).hexdigest(), options, flavor)


@pytest.fixture
def store(tmp_path) -> LedgerStore:
    return LedgerStore(tmp_path / "out", TOKEN)
