"""
One connection's account in this process: the store, the budget and the two limiters, made once.

What the integration step calls from the hook, the operators and the triggers:
``account_for(conn_id, limits)``. The store (an S3 client is not cheap) and the limiters (their
leases must be shared by every task and trigger of the process) are kept per process; a forked
child makes its own.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from airflow_provider_mineru.account.budget import DailyBudget
from airflow_provider_mineru.account.limits import AccountLimits
from airflow_provider_mineru.account.rates import QUERY, SUBMIT, RateLimiter, forget_limiters, shared_limiter
from airflow_provider_mineru.account.store import JsonStore, backend_for


@dataclass(frozen=True)
class Account:
    """
    :param conn_id: the connection.
    :param limits: its limits.
    :param store: the account store its counters live in.
    :param budget: pages and files per UTC day.
    :param submits: the deployment's submit limiter (submits and upload-URL requests).
    :param queries: the deployment's query limiter (state polls).
    """

    conn_id: str
    limits: AccountLimits
    store: JsonStore
    budget: DailyBudget
    submits: RateLimiter
    queries: RateLimiter


_stores: dict[str, JsonStore] = {}
_lock = threading.Lock()


def forget_accounts() -> None:
    """
    Drop this process's stores and limiters: the next :func:`account_for` starts from what the
    store holds (the test suite calls it between tests, each with an empty store of its own).
    """
    _stores.clear()
    forget_limiters()


os.register_at_fork(after_in_child=forget_accounts)


def store_for(location: str) -> JsonStore:
    """This process's store for an ``account_store`` location (made on first use)."""
    with _lock:
        store = _stores.get(location)
        if store is None:
            store = _stores[location] = JsonStore(backend_for(location))
        return store


def account_for(conn_id: str, limits: AccountLimits) -> Account:
    """The account of ``conn_id`` in this process (the limiters are shared; the budget reads ``limits``)."""
    store = store_for(limits.account_store)
    return Account(
        conn_id=conn_id,
        limits=limits,
        store=store,
        budget=DailyBudget(store, conn_id, limits),
        submits=shared_limiter(store, limits.account_store, conn_id, SUBMIT, limits.submit_rpm),
        queries=shared_limiter(store, limits.account_store, conn_id, QUERY, limits.query_rpm),
    )
