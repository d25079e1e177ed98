"""
Verify MinerU's callback POSTs: ``{"checksum": sha256(uid + seed + content), "content": "<JSON>"}``.

The comparison is constant-time (:func:`hmac.compare_digest`), and a payload seen before can be
refused by passing the set of checksums already accepted.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, MutableSet
from typing import Any

from airflow_provider_mineru.exceptions import MinerUError
from airflow_provider_mineru.models import DocumentResult


class MinerUCallbackError(MinerUError):
    """A callback payload is malformed, forged (wrong checksum, uid or seed) or replayed."""


def callback_checksum(uid: str, seed: str, content: str) -> str:
    """The hex SHA-256 MinerU signs a callback with: ``sha256(uid + seed + content)``."""
    return hashlib.sha256(f"{uid}{seed}{content}".encode()).hexdigest()


def verify_callback(
    payload: Mapping[str, Any] | str | bytes,
    *,
    uid: str,
    seed: str,
    seen_checksums: MutableSet[str] | None = None,
) -> DocumentResult:
    """
    Check a callback's checksum and return the task state it carries.

    :param payload: the POSTed JSON body, parsed or raw.
    :param uid: your MinerU account uid (the ``uid`` extra of the connection).
    :param seed: the ``seed`` sent with the task.
    :param seen_checksums: checksums already accepted; a repeat is refused as a replay, and an
        accepted checksum is added.
    :raises MinerUCallbackError: when the payload is malformed, does not verify, or is a replay.
    """
    if isinstance(payload, (bytes, str)):
        try:
            payload = json.loads(payload)
        except (ValueError, RecursionError):  # invalid UTF-8 is a ValueError; deep nesting a RecursionError
            raise MinerUCallbackError("callback body is not JSON (or nests too deep)") from None
    if not isinstance(payload, Mapping):
        raise MinerUCallbackError("callback body must be a JSON object with checksum and content")
    checksum, content = payload.get("checksum"), payload.get("content")
    if not isinstance(checksum, str) or not isinstance(content, str):
        raise MinerUCallbackError("callback body must carry string fields 'checksum' and 'content'")
    try:
        expected = callback_checksum(uid, seed, content)
    except UnicodeEncodeError:  # a lone surrogate (JSON "\ud800") has no UTF-8 form
        raise MinerUCallbackError("callback content is not valid Unicode") from None
    if not hmac.compare_digest(expected.encode(), checksum.strip().lower().encode()):
        raise MinerUCallbackError("callback checksum does not match sha256(uid + seed + content)")
    if seen_checksums is not None:
        if expected in seen_checksums:
            raise MinerUCallbackError("callback already received (replay)")
        seen_checksums.add(expected)
    try:
        data = json.loads(content)
    except (ValueError, RecursionError):
        raise MinerUCallbackError("callback content is not a JSON string (or nests too deep)") from None
    if not isinstance(data, dict):
        raise MinerUCallbackError("callback content must be a JSON object (the task state)")
    return DocumentResult.from_api(data)
