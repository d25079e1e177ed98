"""
Callback delivery: POST a task's terminal state to its callback URL, with retries, and log
every attempt. What to post and when is the flavor's; this module only delivers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

logger = logging.getLogger("mineru_emulator")

#: Attempts per callback; attempt *n* waits ``backoff * n`` before the next.
CALLBACK_ATTEMPTS = 5


def signed_body(view: dict[str, Any], uid: str, seed: str) -> bytes:
    """
    The MinerU callback body: ``{"checksum": sha256(uid + seed + content), "content": <JSON text>}``.

    :param view: the task-state ``data`` to send.
    :param uid: the account uid.
    :param seed: the task's ``seed`` option ("" when none).
    """
    content = json.dumps(view, ensure_ascii=False)
    checksum = hashlib.sha256((uid + seed + content).encode("utf-8")).hexdigest()
    return json.dumps({"checksum": checksum, "content": content}).encode("utf-8")


class CallbackDelivery:
    """
    Posts callbacks and remembers each attempt.

    :param lock: the lock guarding the attempt log (the emulator's).
    :param stop_event: set when the emulator stops (pending retries are dropped).
    :param backoff: the current retry backoff, in seconds.
    """

    def __init__(self, lock: threading.RLock, stop_event: threading.Event, backoff: Callable[[], float]) -> None:
        self._lock = lock
        self._stop_event = stop_event
        self._backoff = backoff
        self.log: list[dict[str, Any]] = []

    def snapshot(self) -> list[dict[str, Any]]:
        """Every attempt: ``{url, task_id, attempt, status, error, time}`` (copies)."""
        with self._lock:
            return [dict(item) for item in self.log]

    def deliver(self, url: str, body: bytes, task_id: str, is_current: Callable[[], bool]) -> None:
        """
        POST ``body`` to ``url`` until it answers 200, up to :data:`CALLBACK_ATTEMPTS` times.

        :param url: the callback URL.
        :param body: the JSON body.
        :param task_id: the task it is about (for the log).
        :param is_current: False once the emulator was reset (delivery stops).
        """
        import urllib.error
        import urllib.request

        for attempt in range(1, CALLBACK_ATTEMPTS + 1):
            if not is_current():
                return  # the emulator was reset
            status: int | None = None
            error: str | None = None
            try:
                request = urllib.request.Request(
                    url, data=body, method="POST", headers={"Content-Type": "application/json"}
                )
                with urllib.request.urlopen(request, timeout=5) as response:
                    response.read()
                    status = response.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
            with self._lock:
                self.log.append(
                    {
                        "url": url,
                        "task_id": task_id,
                        "attempt": attempt,
                        "status": status,
                        "error": error,
                        "time": time.time(),
                    }
                )
            logger.info("callback %s attempt %d -> %s", urlsplit(url).path or "/", attempt, status or error)
            if status == 200:
                return
            if attempt < CALLBACK_ATTEMPTS and self._stop_event.wait(self._backoff() * attempt):
                return
