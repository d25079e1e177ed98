"""
An account's limits, from the connection's extras: daily budgets, request rates, and where the
shared counters live.

:data:`ACCOUNT_CONN_FIELDS` (plain data in :mod:`airflow_provider_mineru.connection.form`, part
of the connection form's ``CONN_FIELDS``); :meth:`AccountLimits.from_extra` checks the same rules
with the same words, for connections made elsewhere (CLI, environment, secrets backends), and
applies the defaults.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_mineru.connection.config import validate_extras
from airflow_provider_mineru.connection.form import ACCOUNT_CONN_FIELDS, DEFAULT_QUERY_RPM, DEFAULT_SUBMIT_RPM
from airflow_provider_mineru.exceptions import MinerUValidationError

__all__ = ["ACCOUNT_CONN_FIELDS", "DEFAULT_QUERY_RPM", "DEFAULT_SUBMIT_RPM", "AccountLimits", "default_store"]

#: Where the counters live when ``account_store`` is unset: one machine only (see docs/operations.md).
DEFAULT_STORE_FOLDER = "mineru-account"

#: ``s3://[aws_conn_id@]bucket[/prefix]``.
S3_STORE_PATTERN = r"^s3://([A-Za-z0-9_.-]+@)?[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9_.=/-]*)?$"


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _whole(extra: Mapping[str, Any], name: str) -> int | None:
    """A whole-number extra (already checked against its schema), None when blank."""
    value = extra.get(name)
    return None if _blank(value) else int(float(str(value).strip()))


def default_store() -> str:
    """``$AIRFLOW_HOME/mineru-account``: the store of an unset ``account_store`` (this machine only)."""
    home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
    return os.path.join(home, DEFAULT_STORE_FOLDER)


def _store(value: Any) -> str:
    """The ``account_store`` location, normalised (blank: the default local folder)."""
    if _blank(value):
        return default_store()
    if not isinstance(value, str):
        raise MinerUValidationError("connection extra account_store", value, "must be text")
    text = value.strip()
    if text.startswith("s3://"):
        if not re.match(S3_STORE_PATTERN, text):
            raise MinerUValidationError(
                "connection extra account_store", value, "must be s3://[aws_conn_id@]bucket[/prefix]"
            )
        return text.rstrip("/")
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]+://", text) and not text.startswith("file://"):
        raise MinerUValidationError(
            "connection extra account_store",
            value,
            "must be an s3:// URL or a local directory (other object stores are not supported yet)",
        )
    path = os.path.expanduser(text.removeprefix("file://"))
    if not os.path.isabs(path):
        raise MinerUValidationError("connection extra account_store", value, "must be an absolute directory path")
    return path


@dataclass(frozen=True)
class AccountLimits:
    """
    One connection's account limits.

    :param daily_page_budget: pages per UTC day for the deployment; None is unlimited.
    :param daily_file_budget: files per UTC day for the deployment; None is unlimited.
    :param submit_rpm: submits (and upload-URL requests) per minute for the deployment.
    :param query_rpm: state queries per minute for the deployment.
    :param account_store: where the shared counters live: an ``s3://`` URL or a local directory.
    """

    daily_page_budget: int | None = None
    daily_file_budget: int | None = None
    submit_rpm: int = DEFAULT_SUBMIT_RPM
    query_rpm: int = DEFAULT_QUERY_RPM
    account_store: str = field(default_factory=default_store)

    @property
    def store_is_shared_across_machines(self) -> bool:
        """Whether processes on other machines count against the same budget (an ``s3://`` store)."""
        return self.account_store.startswith("s3://")

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any]) -> AccountLimits:
        """
        Read and check the account extras; blank values keep the defaults.

        :raises MinerUValidationError: naming the extra, its value and the rule it breaks.
        """
        validate_extras(extra, ACCOUNT_CONN_FIELDS)  # the connection's schema checks, the same words
        submit = _whole(extra, "submit_rpm")
        query = _whole(extra, "query_rpm")
        return cls(
            daily_page_budget=_whole(extra, "daily_page_budget"),
            daily_file_budget=_whole(extra, "daily_file_budget"),
            submit_rpm=DEFAULT_SUBMIT_RPM if submit is None else submit,
            query_rpm=DEFAULT_QUERY_RPM if query is None else query,
            account_store=_store(extra.get("account_store")),
        )
