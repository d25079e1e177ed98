"""
A real S3-compatible server for the object-storage tests: moto's standalone server on loopback.

The server runs for the whole session in a thread of the test process (so ``dag.test()`` tasks
and triggers, which run in-process too, reach it). Airflow reaches it through an ``aws``
connection, ``aws_moto``, whose ``endpoint_url`` extra the amazon provider's object-storage
filesystem (``airflow/providers/amazon/aws/fs/s3.py``: ``get_service_endpoint_url("s3")``) hands to
s3fs. Each test gets its own bucket holding the sample PDFs under ``incoming/``.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from tests.helpers import SAMPLES

SAMPLE_PDFS = sorted(SAMPLES.glob("*.pdf"))
AWS_CONN_ID = "aws_moto"
INPUT_PREFIX = "incoming/"


@pytest.fixture(scope="session")
def moto_endpoint() -> Any:
    """``http://127.0.0.1:PORT`` of a started moto server (any free port)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def aws_conn(moto_endpoint: str) -> Any:
    """The ``aws_moto`` Airflow connection (environment variable), pointed at the moto server."""
    conn = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": moto_endpoint, "region_name": "us-east-1"},
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(f"AIRFLOW_CONN_{AWS_CONN_ID.upper()}", json.dumps(conn))
        yield AWS_CONN_ID


@dataclass
class Bucket:
    """A bucket on the moto server, read and written with plain boto3 (not through Airflow)."""

    name: str
    client: Any

    def url(self, key: str = "") -> str:
        """``s3://aws_moto@<bucket>/<key>``: ObjectStoragePath takes the connection id from the URL."""
        return f"s3://{AWS_CONN_ID}@{self.name}/{key}"

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()

    def size(self, key: str) -> int:
        return self.client.head_object(Bucket=self.name, Key=key)["ContentLength"]


@pytest.fixture
def bucket(moto_endpoint: str, aws_conn: str) -> Bucket:
    """A fresh bucket with the sample PDFs under ``incoming/`` (and a non-document that is skipped)."""
    import boto3

    # The server thread logs every request through werkzeug; Airflow's logging setup may have reset it.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    client = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    name = f"mineru-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    for pdf in SAMPLE_PDFS:
        client.upload_file(str(pdf), name, f"{INPUT_PREFIX}{pdf.name}")
    client.put_object(Bucket=name, Key=f"{INPUT_PREFIX}README.txt", Body=b"not a document MinerU parses")
    return Bucket(name=name, client=client)
