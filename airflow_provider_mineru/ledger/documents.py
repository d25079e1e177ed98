"""Stable document ids for RAG stores: the same content, options and page give the same id on every run."""

from __future__ import annotations

import hashlib

from airflow_provider_mineru.ledger.key import LedgerKey

__all__ = ["document_id"]


def document_id(key: LedgerKey | str, page: int, *, source: str | None = None) -> str:
    """
    A 32-hex-digit id of page ``page`` of the result of ``key`` (a key, or its :attr:`~LedgerKey.id`:
    the ``"ledger_key"`` of an operator's XCom row).

    Stable across runs, so downstream upserts replace and deletes are exact. Two inputs with the
    same bytes (a copy) share ids; pass ``source`` to tell their pages apart when a RAG store must
    keep both (a tombstone of one would otherwise delete the other's pages downstream).
    """
    key_id = key if isinstance(key, str) else key.id
    text = f"{key_id}\0{int(page)}" if source is None else f"{key_id}\0{int(page)}\0{source}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
