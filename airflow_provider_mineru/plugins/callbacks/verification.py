"""
What a callback request must be before it is trusted: its shape, then its checksum. No I/O.

Every reason not to trust a well-shaped body (no such connection id, an id Airflow could not hold,
a connection that is not ``mineru`` or lacks ``uid`` / ``callback_secret``, a wrong checksum) gets
the one answer :data:`NOT_VERIFIED` (403), and costs the same SHA-256: the endpoint tells nobody
which connections exist. A body of the wrong shape gets 400 with a reason that depends on the body
alone, whatever the connection id.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from dataclasses import dataclass
from typing import Any, NamedTuple

from airflow_provider_mineru.models import DocumentResult
from airflow_provider_mineru.utils.callback_checksum import MinerUCallbackError, callback_checksum, verify_callback

log = logging.getLogger(__name__)

#: The answer to every callback that does not verify, whatever the reason (no existence oracle).
NOT_VERIFIED = {"detail": "the callback does not verify for this connection"}

#: A connection id Airflow can hold (and a secrets backend can be asked about); anything else
#: cannot take callbacks and is never looked up.
_CONN_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,250}$")
#: Checked against when there are no credentials, so a refusal costs what a wrong checksum costs.
_NO_CREDENTIALS = ("", secrets.token_hex(16))


class Answer(NamedTuple):
    """An HTTP answer of the endpoint: status and JSON body."""

    status: int
    body: dict[str, Any]


@dataclass(frozen=True)
class Verified:
    """A callback whose checksum verifies: the task state it carries and its checksum."""

    result: DocumentResult
    checksum: str


def is_valid_conn_id(conn_id: str) -> bool:
    """Whether ``conn_id`` could name an Airflow connection (only those are ever looked up)."""
    return bool(_CONN_ID.match(conn_id))


def loggable(conn_id: str) -> str:
    """``conn_id`` for a log line: a path segment from anyone may hold newlines or be very long."""
    return conn_id if is_valid_conn_id(conn_id) else "(an invalid connection id)"


def shape_error(body: bytes) -> str | None:
    """
    Why ``body`` is not ``{"checksum": "<hex>", "content": "<JSON object>"}``, or None.

    Never raises: invalid UTF-8, JSON nested too deep and lone surrogates are reasons too.
    """
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return "the body is not JSON (or nests too deep)"
    if not isinstance(payload, dict):
        return "the body must be a JSON object with checksum and content"
    checksum, content = payload.get("checksum"), payload.get("content")
    if not isinstance(checksum, str) or not isinstance(content, str):
        return "the body must carry string fields checksum and content"
    if len(checksum) > 128 or not checksum.isascii():
        return "checksum must be a hex SHA-256"
    try:
        content.encode("utf-8")
        state = json.loads(content)
    except UnicodeEncodeError:
        return "content is not valid Unicode (a lone surrogate)"
    except (ValueError, RecursionError):
        return "content is not a JSON string (or nests too deep)"
    if not isinstance(state, dict):
        return "content must be a JSON object (the task state)"
    return None


def verify(conn_id: str, body: bytes, credentials: tuple[str, str] | None) -> Verified | Answer:
    """
    Check a well-shaped ``body`` (see :func:`shape_error`) against the connection's ``(uid, secret)``.

    :param credentials: the connection's callback settings; None when it cannot take callbacks.
    :return: the verified callback, or the 403 :data:`NOT_VERIFIED` answer.
    """
    uid, secret = credentials or _NO_CREDENTIALS
    try:
        result = verify_callback(body, uid=uid, seed=secret)  # constant time; also without credentials
    except MinerUCallbackError:
        if credentials is None:
            log.info(
                "MinerU callback for connection %s refused (403): the connection cannot take callbacks",
                loggable(conn_id),
            )
        else:
            log.warning("MinerU callback for connection %s refused (403): the checksum does not verify", conn_id)
        return Answer(403, NOT_VERIFIED)
    if credentials is None:  # a checksum over a random secret: never, but never trust it either
        return Answer(403, NOT_VERIFIED)
    return Verified(result, callback_checksum(uid, secret, json.loads(body)["content"]))
