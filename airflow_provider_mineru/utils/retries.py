"""
Retrying transient errors: whether an answer was lost after sending, and how long to wait.

Which requests must never be re-sent (the paid submits) is each client class's fact
(``paid_submit_paths``); the loop that applies both is :class:`airflow_provider_mineru.transport.policy.Attempts`.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_mineru.connection.form import DEFAULT_MAX_RETRIES, DEFAULT_RETRY_BACKOFF
from airflow_provider_mineru.exceptions import MinerUConnectionError, MinerUProtocolError, MinerUValidationError


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def answer_lost(error: BaseException) -> bool:
    """
    Whether ``error`` means the request was sent and its answer lost: a read time-out or a reset
    after sending (the transport marks those ``ambiguous``), or a ``2xx``/``3xx`` answer whose body
    is not MinerU's envelope (cut short, not JSON, no ``data``). Answers with an HTTP error status
    (429, 5xx) and errors before the request was sent (refused, DNS) are not lost answers.
    """
    if isinstance(error, MinerUConnectionError):
        return bool(getattr(error, "ambiguous", False))
    if isinstance(error, MinerUProtocolError):
        return error.http_status is None or error.http_status < 400
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """
    How transient errors are retried: exponential backoff with jitter, honouring ``Retry-After``.

    Retry ``n`` (from 0) waits a random time between half and all of ``min(max_backoff, backoff * 2**n)``,
    or what ``Retry-After`` asked for, capped at ``max_retry_after``.

    :param max_retries: retries after the first attempt (0 disables retrying).
    :param backoff: base delay in seconds; attempt ``n`` waits up to ``backoff * 2**n``.
    :param max_backoff: cap of one computed wait.
    :param max_retry_after: cap of a server-requested ``Retry-After`` wait.
    """

    max_retries: int = DEFAULT_MAX_RETRIES
    backoff: float = DEFAULT_RETRY_BACKOFF
    max_backoff: float = 30.0
    max_retry_after: float = 300.0

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any]) -> RetryPolicy:
        """
        Read ``max_retries``, ``retry_backoff``, ``retry_max_backoff`` and ``retry_max_after`` from
        connection extras; a missing or blank value keeps the default.
        """
        default = cls()

        def read(key: str, fallback: float) -> float:
            value = extra.get(key)
            if value is None or (isinstance(value, str) and not value.strip()):
                return fallback
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise MinerUValidationError(f"connection extra {key}", value, "must be a number") from None
            if number < 0:
                raise MinerUValidationError(f"connection extra {key}", value, "must be 0 or more")
            return number

        return cls(
            max_retries=int(read("max_retries", default.max_retries)),
            backoff=read("retry_backoff", default.backoff),
            max_backoff=read("retry_max_backoff", default.max_backoff),
            max_retry_after=read("retry_max_after", default.max_retry_after),
        )

    def delay(self, attempt: int, error: BaseException) -> float | None:
        """
        Seconds to wait before retry number ``attempt + 1``, or None to give up and raise ``error``.

        :param attempt: 0 for the first failure.
        """
        if not getattr(error, "retryable", False) or attempt >= self.max_retries:
            return None
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return min(float(retry_after), self.max_retry_after)
        ceiling = min(self.max_backoff, self.backoff * (2**attempt))
        return random.uniform(ceiling / 2, ceiling)
