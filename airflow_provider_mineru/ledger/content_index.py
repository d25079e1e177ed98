"""
The content index: (input location, its store's validator) → sha256 of its bytes, so an unchanged
input is not read again to compute its :class:`~.key.LedgerKey`.

The validator is what the input's own store says changes with its bytes: an object's ETag or
version id (from the listing that found it, so no extra request), or for a local file its size,
modification time and inode. A different validator is a miss and the bytes are hashed again; a
lost index costs a re-read, never a wrong key.

Stored as 16 sealed shards, ``.mineru-ledger/content/<0-f>.json`` (by the first hex digit of the
sha256 of the location): a re-check of N inputs reads at most 16 files, and :meth:`flush` writes
only the shards that changed, merged with what is stored then. Two task instances flushing the
same shard at once may lose one's additions (last writer wins): the loser's inputs are hashed again
on a later run. A shard whose seal does not hold is ignored (a planted mapping could otherwise make
other content look unchanged).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import IO, Any

from airflow_provider_mineru.ledger.files import LedgerFiles, object_fingerprint
from airflow_provider_mineru.ledger.key import sha256_of_stream
from airflow_provider_mineru.ledger.store import LEDGER_DIR
from airflow_provider_mineru.utils.sealing import canonical_json, seal, unseal

__all__ = ["ContentIndex", "local_validator", "object_validator"]

log = logging.getLogger(__name__)

_CONTENT = f"{LEDGER_DIR}/content"
_VERSION = 1


def local_validator(stat: os.stat_result) -> str:
    """A local file's validator: size, modification time (ns) and inode."""
    return f"local:{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ino}"


def object_validator(info: Mapping[str, Any]) -> str | None:
    """An object's validator from its listing or ``info`` entry (ETag, version id, else size and mtime)."""
    return object_fingerprint(dict(info))


class ContentIndex:
    """
    Location + validator → sha256, sealed with the connection's token.

    :param files: the ledger's files (``LedgerStore.files``).
    :param token: the connection's API token.
    """

    def __init__(self, files: LedgerFiles, token: str | None) -> None:
        self._files = files
        self._token = token
        self._shards: dict[str, dict[str, list[str]]] = {}
        self._dirty: dict[str, dict[str, list[str]]] = {}
        self.hashed = 0

    @staticmethod
    def _shard_of(location: str) -> str:
        return hashlib.sha256(location.encode("utf-8")).hexdigest()[0]

    def _shard(self, shard: str) -> dict[str, list[str]]:
        if shard not in self._shards:
            self._shards[shard] = self._read(shard)
        return self._shards[shard]

    def _read(self, shard: str) -> dict[str, list[str]]:
        try:
            raw: bytes | Exception | None = self._files.read(f"{_CONTENT}/{shard}.json")
        except Exception as exc:
            raw = exc
        return self._decode(shard, raw)

    def _decode(self, shard: str, raw: bytes | Exception | None) -> dict[str, list[str]]:
        where = f"{_CONTENT}/{shard}.json"
        if raw is None:
            return {}
        try:
            if isinstance(raw, Exception):
                raise raw
            body, why = unseal(json.loads(raw), self._token, "mineru-ledger/content")
        except Exception as exc:
            body, why = None, f"it cannot be read ({exc})"
        if body is None or body.get("version") != _VERSION or not isinstance(body.get("items"), dict):
            log.warning(
                "Ignoring the MinerU content index %s: %s; its inputs are hashed again.", where, why or "format"
            )
            return {}
        return {
            k: v
            for k, v in body["items"].items()
            if isinstance(v, list) and len(v) == 2 and all(isinstance(x, str) for x in v)
        }

    def prefetch(self, locations: Iterable[str]) -> None:
        """Read the shards ``locations`` fall in, together (concurrently on object storage)."""
        wanted = sorted({self._shard_of(loc) for loc in locations} - set(self._shards))
        answers = self._files.read_many([f"{_CONTENT}/{shard}.json" for shard in wanted])
        for shard in wanted:
            self._shards[shard] = self._decode(shard, answers[f"{_CONTENT}/{shard}.json"])

    def lookup(self, location: str, validator: str | None) -> str | None:
        """The sha256 recorded for ``location`` with this ``validator``, or None."""
        if not validator:
            return None
        found = self._shard(self._shard_of(location)).get(location)
        return found[1] if found and found[0] == validator else None

    def remember(self, location: str, validator: str | None, sha256: str) -> None:
        """Record ``sha256`` for ``location`` at ``validator`` (kept in memory until :meth:`flush`)."""
        if not validator:
            return
        shard = self._shard_of(location)
        self._shard(shard)[location] = [validator, sha256]
        self._dirty.setdefault(shard, {})[location] = [validator, sha256]

    def sha256(self, location: str, validator: str | None, open_bytes: Callable[[], IO[bytes]]) -> str:
        """
        The sha256 of ``location``'s bytes: from the index when ``validator`` matches, else by
        streaming ``open_bytes()`` (bounded memory) and remembering it.
        """
        known = self.lookup(location, validator)
        if known is not None:
            return known
        with open_bytes() as handle:
            digest = sha256_of_stream(handle)
        self.hashed += 1
        self.remember(location, validator, digest)
        return digest

    def flush(self) -> None:
        """Write the changed shards, each merged with what is stored now."""
        for shard, changes in sorted(self._dirty.items()):
            items = {**self._read(shard), **changes}
            body = {"version": _VERSION, "items": dict(sorted(items.items()))}
            data = canonical_json(seal(body, self._token, "mineru-ledger/content")).encode("utf-8")
            self._files.write(f"{_CONTENT}/{shard}.json", data)
            self._shards[shard] = items
        self._dirty.clear()
