"""How long a transient error waits before its retry, and when an answer counts as lost."""

from __future__ import annotations

import email.utils
import time

import pytest

from airflow_provider_mineru.exceptions import MinerUAuthError, MinerUTransientError, MinerUValidationError
from airflow_provider_mineru.utils.retries import parse_retry_after


def test_retry_after_in_seconds_or_as_a_date():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" -3 ") == 0.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    later = email.utils.formatdate(time.time() + 60, usegmt=True)
    assert 55 <= (parse_retry_after(later) or 0) <= 60


class TestRetryPolicyFromExtras:
    def test_blank_values_keep_defaults(self):
        from airflow_provider_mineru.utils.retries import RetryPolicy

        assert RetryPolicy.from_extra({"max_retries": "", "retry_backoff": None}) == RetryPolicy()

    def test_bad_value_is_named(self):
        from airflow_provider_mineru.utils.retries import RetryPolicy

        with pytest.raises(MinerUValidationError, match="retry_backoff"):
            RetryPolicy.from_extra({"retry_backoff": "soon"})

    def test_delay_bounds(self):
        from airflow_provider_mineru.utils.retries import RetryPolicy

        policy = RetryPolicy(max_retries=3, backoff=1.0, max_backoff=4.0)
        error = MinerUTransientError("busy")
        assert all(0.5 <= policy.delay(0, error) <= 1.0 for _ in range(50))
        assert all(2.0 <= policy.delay(5 - 3, error) <= 4.0 for _ in range(50))
        assert policy.delay(3, error) is None
        assert policy.delay(0, MinerUAuthError("no")) is None
        assert policy.delay(0, MinerUTransientError("wait", retry_after=7.0)) == 7.0
