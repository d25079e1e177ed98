"""
Sealing records we keep (the submission record between tries, the ledger's files) with the
connection's API token.

A record is plain JSON plus ``"mac"``: an HMAC-SHA256 over its canonical JSON, keyed by a secret
derived from the token and the record's domain (``mineru-submission``, ``mineru-ledger/entry``, …),
so a MAC of one kind is never valid for another. Someone who can write to ``output_path`` but does not hold
the token cannot plant an entry the ledger trusts; an entry written under another connection's
token (another account) is foreign and ignored. A connection without a token (a self-hosted server
that needs none) seals with the empty secret: such seals prove nothing, see ``docs/incremental.md``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["canonical_json", "seal", "unseal"]


def canonical_json(value: Any) -> str:
    """The one JSON text of ``value``: sorted keys, no spaces, non-ASCII kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _mac(body: Mapping[str, Any], token: str | None, domain: str) -> str:
    secret = hashlib.sha256(f"{domain}\0".encode() + (token or "").encode("utf-8")).digest()
    return hmac.new(secret, canonical_json(body).encode("utf-8"), hashlib.sha256).hexdigest()


def seal(body: Mapping[str, Any], token: str | None, domain: str) -> dict[str, Any]:
    """``body`` plus its ``"mac"``; ``domain`` names the record kind (``mineru-ledger/entry``, …)."""
    data = dict(body)
    data.pop("mac", None)
    data["mac"] = _mac(data, token, domain)
    return data


def unseal(data: Any, token: str | None, domain: str) -> tuple[dict[str, Any] | None, str]:
    """The body of a sealed record without its ``"mac"``, or None and why it was refused."""
    if not isinstance(data, Mapping):
        return None, "it is not a JSON object"
    body = {k: v for k, v in data.items() if k != "mac"}
    if not hmac.compare_digest(str(data.get("mac") or ""), _mac(body, token, domain)):
        return None, "its seal does not match (written by another connection's token, or by hand)"
    return body, ""
