"""
The cloud flavor's connection Test: one request for a made-up task id (no quota), a short
timeout, and one sentence a person understands (:func:`check_connection`). Its client,
:class:`~airflow_provider_mineru.clients.cloud.CloudClient`, hands the form's Test button here.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from dataclasses import replace
from typing import Any

from airflow_provider_mineru.connection.config import MinerUConnectionConfig, token_expiry_warning
from airflow_provider_mineru.exceptions import MinerUConnectionError, MinerURefusedResponseError
from airflow_provider_mineru.transport import Request, Transport
from airflow_provider_mineru.transport.policy import reason, where
from airflow_provider_mineru.utils.retries import RetryPolicy

#: Seconds the Test waits to connect, and then for the answer: one attempt, no retries.
TEST_TIMEOUT = 4.0
#: The Test answers within this many seconds whatever the server does (slow DNS included).
TEST_DEADLINE = 9.0
#: MinerU's answer to a task id it does not know: proof that it read and accepted the token.
_NOT_FOUND_CODE = "-60012"
_AUTH_CODES = ("A0202", "A0211")
_log = logging.getLogger(__name__)


def _envelope(body: bytes) -> dict[str, Any] | None:
    """MinerU's JSON envelope (``code`` or ``msgCode``, ``msg``, a trace id or ``data``), else None."""
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(payload, dict):
        return None
    has_code = "code" in payload or "msgCode" in payload
    has_rest = "msg" in payload and any(k in payload for k in ("trace_id", "traceId", "data"))
    return payload if has_code and has_rest else None


def _classify(config: MinerUConnectionConfig, status: int, body: bytes) -> tuple[bool, str]:
    """Judge one HTTP answer to the probe: only MinerU's envelope proves (or refuses) the token."""
    server, base = where(config.base_url), config.base_url
    payload = _envelope(body)
    if payload is None:
        if status == 404:
            return False, (
                f"No MinerU API at {base}: it answered HTTP 404 without MinerU's JSON. "
                "Check the base URL (e.g. https://mineru.net/api/v4, or your gateway's http://host:port/api/v1)."
            )
        if status in (401, 403):
            return False, (
                f"{server} refused the request with HTTP {status}, but not in MinerU's words: "
                f"a proxy or gateway in front of {base}?"
            )
        if status in (301, 302, 303, 307, 308):
            return False, f"{base} redirects (HTTP {status}); use the URL it redirects to as the base URL."
        return False, f"No MinerU API at {base}: it answered HTTP {status} without MinerU's JSON."
    code = payload.get("code", payload.get("msgCode"))
    code_text = None if code is None else str(int(code) if isinstance(code, float) else code).strip()
    message = payload.get("msg")
    if isinstance(message, dict):
        message = message.get("en") or message.get("zh") or json.dumps(message, ensure_ascii=False)
    message = " ".join(str(message or "").split())[:200]
    if code_text == _NOT_FOUND_CODE or (code_text in ("0", "200") and status < 400):
        warning = token_expiry_warning(config.token)
        text = f"Connected to MinerU at {base}; the token is valid."
        return True, f"{text} {warning}" if warning else text
    if code_text in _AUTH_CODES:
        return False, f"MinerU at {base} refused the token ({code_text}: {message})."
    if status == 404:
        return False, f"MinerU answered at {server}, but {base} is not its API path ({code_text}: {message})."
    return False, f"MinerU at {base} answered {code_text}: {message} (HTTP {status})."


def _probe_once(config: MinerUConnectionConfig, timeout: float) -> tuple[bool, str]:
    """One attempt through the transport (no retries, ``timeout`` for the whole request)."""
    probe = Transport(
        replace(config, timeout=timeout, retry=RetryPolicy(max_retries=0)), conn_id="(connection test)", log=_log
    )
    url = probe.url(f"extract/task/connection-test-{uuid.uuid4()}")
    try:
        answer = probe.send(Request("GET", url, "GET extract/task/connection-test"), lambda answer: answer)
    except MinerUConnectionError as exc:
        return False, str(getattr(exc, "sentence", None) or exc.message)
    except MinerURefusedResponseError as exc:
        status = exc.http_status
        if status is not None and 300 <= status < 400:
            target = getattr(exc, "redirect_to", "another URL")
            return False, (
                f"{config.base_url} redirects (HTTP {status}) to {target}; nothing was sent there. "
                "Use the URL it redirects to as the base URL."
            )
        return False, f"No MinerU API at {config.base_url}: {exc.message}."
    finally:
        probe.sync.close()
    return _classify(config, answer.status, answer.body)


def check_connection(
    config: MinerUConnectionConfig, *, timeout: float = TEST_TIMEOUT, deadline: float = TEST_DEADLINE
) -> tuple[bool, str]:
    """
    The connection form's Test: one request, a short timeout, and one sentence a person understands.

    It asks for a made-up task id, which costs no quota. Only MinerU's own JSON envelope counts:
    ``-60012`` (task not found) proves the token, ``A0202``/``A0211`` refuse it, and a plain 404
    (a web server, a wrong path prefix) means there is no MinerU API at that URL. The answer comes
    within ``deadline`` seconds whatever the server does (refuses, accepts and stays silent, a DNS
    lookup that hangs). The connection's retries are not used: a Test makes one attempt.

    :param config: the parsed connection.
    :param timeout: seconds to connect, and then to wait for the answer.
    :param deadline: seconds after which the Test gives up, whatever it is waiting for.
    """
    if not config.token:
        return False, "The connection has no API token: put it in the API token (password) field."
    outcome: list[tuple[bool, str]] = []

    def run() -> None:
        try:
            outcome.append(_probe_once(config, min(timeout, config.timeout)))
        except Exception as exc:  # never let the form see a traceback
            outcome.append((False, f"cannot test {where(config.base_url)}: {type(exc).__name__}: {reason(exc)}"))

    worker = threading.Thread(target=run, name="mineru-connection-test", daemon=True)
    worker.start()
    worker.join(deadline)
    if outcome:
        return outcome[0]
    return False, f"no answer from {where(config.base_url)} within {deadline:.0f} s"
