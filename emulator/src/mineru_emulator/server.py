"""
The MinerU API emulator: a local, stdlib-only HTTP server speaking MinerU's v4 API.

One :class:`MinerUEmulator` serves the API under a configurable prefix, presigned-style upload
URLs (``/api-upload/...``), result zips (``/cdn/pdf/<id>.zip``), the bundled sample documents
(``/samples/<name>``) and an admin API (``/__emulator__/...``) for fault injection and request
inspection.

:class:`MinerUEmulator` is a facade: the HTTP plumbing is :mod:`.http`, the state machine
:mod:`.cloud.state`, the handlers :mod:`.cloud.responses`, the route table :mod:`.cloud.routes`,
faults :mod:`.faults`, callbacks :mod:`.callbacks` and the admin API :mod:`.admin`.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

from mineru_emulator.admin import AdminApi
from mineru_emulator.callbacks import CallbackDelivery
from mineru_emulator.cloud import documents
from mineru_emulator.cloud.account import Account, AccountLimits
from mineru_emulator.cloud.contract import err_msg
from mineru_emulator.cloud.responses import CloudResponses
from mineru_emulator.cloud.routes import cloud_routes
from mineru_emulator.cloud.state import TERMINAL_STATES, CloudState, Limits, Timings
from mineru_emulator.faults import ENDPOINTS, WILDCARD_ENDPOINTS, Fault, FaultBook, Rule
from mineru_emulator.http import EmulatorHTTPServer, HTTPService, RecordedRequest

#: The server class (``bench/`` tunes its backlog and wraps it in TLS).
_Server = EmulatorHTTPServer

__all__ = [
    "ENDPOINTS",
    "WILDCARD_ENDPOINTS",
    "AccountLimits",
    "Fault",
    "MinerUEmulator",
    "RecordedRequest",
    "Timings",
]


def _counter(name: str, doc: str) -> Any:
    """A read-only property showing one of the state's counters."""
    return property(lambda self: getattr(self._state, name), doc=doc)


#: The bearer token an emulator accepts unless told otherwise (the pytest fixtures' too).
DEFAULT_TOKEN = "test-token"


class MinerUEmulator(HTTPService):
    """
    A local MinerU API server for tests, demos and offline development.

    :param token: the accepted bearer token.
    :param prefix: API path prefix (``/api/v4``, ``/api/v1`` or ``""``).
    :param host: interface to bind; ``port=0`` picks a free port.
    :param timings: state durations.
    :param uid: the account uid used in callback checksums.
    :param page_quota: pages allowed in total (None = unlimited); see ``-60017``.
    :param upload_url_ttl: seconds an upload URL stays valid.
    :param auth_error_style: ``"http401"`` (live: HTTP 401 ``{"msgCode": ..., "success": false}``)
        or ``"envelope"`` (HTTP 200 ``{"code": "A0202", ...}``).
    :param max_file_bytes: largest accepted document.
    :param max_pages: most pages per document.
    :param max_batch_files: most files per batch call.
    :param member_prefix: zip member prefix: ``"stem"`` (the input's stem) or ``"id"``
        (a server-side id, like the live service).
    :param expired_tokens: tokens answered with ``A0211``.
    :param fetch_demo_urls: try the network for MinerU's public demo URLs before falling back
        to the built-in stand-ins (False: always use the stand-ins, deterministic and offline).
    :param account: the account's rates, daily page budget, tasks a day and queue
        (:class:`AccountLimits`; default: none of them).
    :param clock: the account's wall clock (default ``time.time``): UTC days and rate windows;
        :meth:`advance_clock` moves it forward.
    :param page_ranges_count_for_limit: ``max_pages`` applies to the pages ``page_ranges``
        selects (default False: to the whole file; the live service does not document it).
    :param images_per_page: figures added to every PDF page with text in result zips.
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        prefix: str = "/api/v4",
        host: str = "127.0.0.1",
        port: int = 0,
        timings: Timings | None = None,
        uid: str = "emulator-uid",
        page_quota: int | None = None,
        upload_url_ttl: float = 86400.0,
        auth_error_style: str = "http401",
        max_file_bytes: int = 200 * 1024 * 1024,
        max_pages: int = 600,
        max_batch_files: int = 200,
        member_prefix: str = "stem",
        expired_tokens: Iterable[str] = (),
        fetch_demo_urls: bool = True,
        account: AccountLimits | None = None,
        clock: Callable[[], float] | None = None,
        page_ranges_count_for_limit: bool = False,
        images_per_page: int = 0,
    ) -> None:
        if auth_error_style not in ("http401", "envelope"):
            raise ValueError("auth_error_style must be 'http401' or 'envelope'")
        if member_prefix not in ("stem", "id"):
            raise ValueError("member_prefix must be 'stem' or 'id'")
        super().__init__(host, port, threading.RLock())
        self.token = token
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self.timings = timings or Timings()
        self.uid = uid
        self.page_quota = page_quota
        self.upload_url_ttl = upload_url_ttl
        self.auth_error_style = auth_error_style
        self.max_file_bytes = max_file_bytes
        self.max_pages = max_pages
        self.max_batch_files = max_batch_files
        self.member_prefix = member_prefix
        self.expired_tokens = frozenset(expired_tokens)
        self.fetch_demo_urls = fetch_demo_urls
        self.images_per_page = images_per_page
        self.account = Account(account or AccountLimits(), clock)
        self._secret = os.urandom(32)

        self.fault_book = FaultBook(self._lock)
        self._callbacks = CallbackDelivery(self._lock, self._stop_event, lambda: self.timings.callback_backoff)
        self._state = CloudState(
            lock=self._lock,
            timings=self.timings,
            limits=Limits(page_quota, max_file_bytes, max_pages, fetch_demo_urls, page_ranges_count_for_limit),
            uid=uid,
            fault_book=self.fault_book,
            callbacks=self._callbacks,
            stop_event=self._stop_event,
            workdir=self._dir,
            root_url=lambda: self.root_url,
            fetch=documents.fetch,
            account=self.account,
        )
        self.answers = CloudResponses(self._state, self)
        admin = AdminApi(self, self._health, default_fail_msg=err_msg(-60010))
        self.routes = cloud_routes(self.prefix, self.answers, admin)

    def start(self) -> MinerUEmulator:
        """Bind and serve in a daemon thread; returns ``self``."""
        return super().start()

    def __enter__(self) -> MinerUEmulator:
        return self.start()

    # -- addresses -------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The API base URL, e.g. ``http://127.0.0.1:PORT/api/v4``."""
        return self.root_url + self.prefix

    def sample_url(self, name: str) -> str:
        """URL of a bundled sample document served by this emulator (no auth needed)."""
        return f"{self.root_url}/samples/{quote(name)}"

    def connection_json(self) -> str:
        """JSON for ``AIRFLOW_CONN_MINERU_DEFAULT`` pointing at this emulator."""
        return json.dumps(
            {"conn_type": "mineru", "host": self.base_url, "password": self.token, "extra": {"uid": self.uid}}
        )

    def connection_uri(self) -> str:
        """URI form: ``mineru://:<token>@127.0.0.1:PORT/api%2Fv4?scheme=http&uid=<uid>``."""
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start() first")
        schema = quote(self.prefix.lstrip("/"), safe="")
        return (
            f"mineru://:{quote(self.token, safe='')}@{self._public_host}:{self.port}/{schema}"
            f"?scheme=http&uid={quote(self.uid, safe='')}"
        )

    # -- counters --------------------------------------------------------------------------------

    task_count = _counter("task_count", "Single-URL tasks submitted.")
    batch_count = _counter("batch_count", "Batches created (URL batches and upload-URL batches).")
    file_count = _counter("file_count", "Tasks created, single and in batches.")
    pages_used = _counter("pages_used", "Pages charged to the quota.")

    # -- the account's limits --------------------------------------------------------------------

    @property
    def account_limits(self) -> AccountLimits:
        """The account's limits in force (change them with :meth:`set_account_limits`)."""
        return self.account.limits

    def set_account_limits(self, **changes: Any) -> AccountLimits:
        """Change some account limits at run time, e.g. ``set_account_limits(submit_rpm=10)``."""
        with self._lock:
            self.account.limits.update(changes)
            return self.account.limits

    def account_usage(self) -> dict[str, Any]:
        """
        The limits and counters: ``day``, ``today`` (``pages_billed``, ``priority_pages``,
        ``low_priority_pages``, ``priority_pages_left``, ``tasks_created``), the same per UTC day,
        ``http_429`` per kind, ``refusals`` and ``failed_tasks`` per error code.
        """
        with self._lock:
            return self.account.usage()

    def queued_tasks(self) -> int:
        """Start the tasks whose pending time is over (billing their pages in queue order); how many still wait."""
        with self._lock:
            return self._state.queued_count()

    def advance_clock(self, seconds: float) -> None:
        """Move the account's clock forward: past a rate window (60 s), to the next UTC day."""
        with self._lock:
            self.account.advance(seconds)

    def next_day(self) -> None:
        """Move the account's clock to the start of the next UTC day."""
        with self._lock:
            self.account.advance(self.account.seconds_to_next_day())

    # -- inspection and scripting ----------------------------------------------------------------

    @property
    def callbacks(self) -> list[dict[str, Any]]:
        """Every callback attempt: ``{url, task_id, attempt, status, error, time}`` (a snapshot)."""
        return self._callbacks.snapshot()

    @property
    def faults(self) -> list[Fault]:
        with self._lock:
            return list(self.fault_book.faults)

    def inject(self, fault: Fault) -> Fault:
        """Add a fault (checked in order of injection); returns it so tests can read ``fired``."""
        with self._lock:
            self.fault_book.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self.fault_book.faults.clear()

    def fail_next_tasks(self, err_msg: str, count: int = 1, match: str | None = None) -> None:
        """The next ``count`` tasks (URL or file name containing ``match``) end ``failed``."""
        with self._lock:
            self.fault_book.fail_rules.append(Rule(err_msg, count, match))

    def stick(self, state: str, count: int = 1, match: str | None = None) -> None:
        """The next ``count`` tasks (matching ``match``) stay in ``state`` forever."""
        if state in TERMINAL_STATES:
            raise ValueError("stick() takes a non-terminal state; use fail_next_tasks() for failures")
        with self._lock:
            self.fault_book.stick_rules.append(Rule(state, count, match))

    def reset(self) -> None:
        """Forget all tasks, batches, faults, rules, callbacks, the request log and the account's usage."""
        with self._lock:
            self._state.reset()
            self.fault_book.clear()
            self._callbacks.log.clear()
            self._requests.clear()
            workdir = self._workdir
        if workdir:
            for sub in ("docs", "zips"):
                shutil.rmtree(os.path.join(workdir, sub), ignore_errors=True)

    def task_state(self, task_id: str) -> dict[str, Any] | None:
        """The task-state ``data`` of a task (as GET would answer), or None if unknown."""
        state = self._state
        with self._lock:
            task = state.tasks.get(task_id)
            if task is None:
                return None
            state.advance(task, time.time())
            return state.task_view(task)

    def batch_task_ids(self, batch_id: str) -> list[str]:
        """The internal task ids of a batch (useful with :meth:`task_state`)."""
        with self._lock:
            batch = self._state.batches.get(batch_id)
            return list(batch.task_ids) if batch else []

    def _health(self) -> dict[str, Any]:
        with self._lock:
            return {
                "status": "ok",
                "base_url": self.base_url,
                "tasks": len(self._state.tasks),
                "batches": len(self._state.batches),
            }
