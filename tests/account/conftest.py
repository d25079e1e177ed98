"""Fixtures of the account tests: the moto S3 server of ``tests/objectstorage`` and a fresh bucket."""

from __future__ import annotations

import logging
import uuid

import pytest

from tests.objectstorage.conftest import AWS_CONN_ID, aws_conn, moto_endpoint  # noqa: F401 (fixtures)


@pytest.fixture
def s3_client(moto_endpoint):  # noqa: F811
    import boto3

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    return boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )


@pytest.fixture
def s3_bucket(s3_client) -> str:
    name = f"account-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=name)
    return name


class FakeClock:
    """Epoch seconds that move only when told to."""

    def __init__(self, now: float = 1_796_083_200.0) -> None:  # 2026-12-01 00:00 UTC
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
