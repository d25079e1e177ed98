"""
Where the ledger lives: small sealed JSON files under ``<output_path>/.mineru-ledger/``.

Layout (one file per key, so an entry is inspectable with ``cat`` and updated alone)::

    <output_path>/.mineru-ledger/entries/<key id>.json        a LedgerEntry, sealed
    <output_path>/.mineru-ledger/claims/<key id>/<n>.json     claim generation n, sealed
    <output_path>/.mineru-ledger/sources/<sha256 of source>.json   the key last recorded for a source, sealed
    <output_path>/.mineru-ledger/content/<0-f>.json           the content index (content_index.py)
    <output_path>/.mineru-tombstones/<YYYY-MM-DD>/<folder>/   outputs whose source is gone (sync.py)

Trust: an entry is used only when its seal holds (the connection's token), it is stored under its
own key id, and its folder's completion marker is the one recorded (:meth:`LedgerStore.verify`).
Anything else is ignored with a warning and the input is parsed again: the ledger may save money,
never report a result for other content. An entry says ``done`` only after its folder's marker
exists (:meth:`LedgerStore.record_done` reads it first).

Claims: before paying for a key a task instance calls :meth:`LedgerStore.claim`; claim files are
numbered generations, each created exclusively (:meth:`LedgerFiles.create`), so of two claimers
exactly one creates generation n+1. A claim expires after its ``ttl``; a released or expired claim
is superseded by the next generation, never overwritten.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from airflow_provider_mineru.exceptions import MinerUResultError
from airflow_provider_mineru.ledger.entry import EntryState, LedgerEntry, Output, utc_now
from airflow_provider_mineru.ledger.files import LedgerFiles
from airflow_provider_mineru.ledger.key import LedgerKey
from airflow_provider_mineru.results.landing import MARKER_NAME, land_result, read_marker
from airflow_provider_mineru.utils.safe_zip import ExtractedResult
from airflow_provider_mineru.utils.sealing import canonical_json, seal, unseal
from airflow_provider_mineru.utils.storage_paths import join_relative, safe_name

__all__ = ["LEDGER_DIR", "TOMBSTONE_DIR", "LedgerSnapshot", "LedgerStore", "MinerULedgerError"]

log = logging.getLogger(__name__)

LEDGER_DIR = ".mineru-ledger"
TOMBSTONE_DIR = ".mineru-tombstones"
_ENTRIES = f"{LEDGER_DIR}/entries"
_CLAIMS = f"{LEDGER_DIR}/claims"
_SOURCES = f"{LEDGER_DIR}/sources"
_MAX_RECORD_BYTES = 1024 * 1024


def _checked_folder(folder: str) -> str:
    """``folder`` when it is a plain relative path inside ``output_path`` (no ``..``, no leading ``/`` or ``.``)."""
    parts = folder.split("/")
    if not folder or folder.startswith("/") or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        raise MinerULedgerError(f"not a result folder inside output_path: {folder!r}")
    return folder


class MinerULedgerError(MinerUResultError):
    """The ledger refused a write that would make it say something untrue (``done`` without a complete folder)."""


@dataclass(frozen=True)
class LedgerSnapshot:
    """
    Every readable entry, read once: what a plan and a sync consult (one store read per entry).

    :param entries: by key id.
    """

    entries: Mapping[str, LedgerEntry]

    def get(self, key: LedgerKey) -> LedgerEntry | None:
        return self.entries.get(key.id)

    @functools.cached_property
    def _by_source(self) -> dict[str, list[LedgerEntry]]:
        index: dict[str, list[LedgerEntry]] = {}
        for entry in self.entries.values():
            for output in entry.outputs:
                index.setdefault(output.source, []).append(entry)
        for found in index.values():
            found.sort(key=lambda e: e.last_seen, reverse=True)
        return index

    def for_source(self, source: str) -> list[LedgerEntry]:
        """Entries with an output read from ``source`` (latest first)."""
        return list(self._by_source.get(source, ()))

    def previous(self, source: str) -> LedgerEntry | None:
        """The latest entry recorded for ``source``, whatever its key (to tell why an input is parsed again)."""
        found = self._by_source.get(source)
        return found[0] if found else None


class LedgerStore:
    """
    The ledger of one ``output_path``.

    :param output_path: the operators' ``output_path`` (local or object storage).
    :param token: the connection's API token: entries are sealed with it and only entries sealed
        with it are trusted.
    :param exclusive: see :class:`~.files.LedgerFiles` (None: by the store's protocol).
    :param clock: seconds since the epoch (tests move it to expire claims).
    """

    def __init__(
        self,
        output_path: Any,
        token: str | None,
        *,
        exclusive: bool | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.files = LedgerFiles(output_path, exclusive=exclusive)
        self._token = token
        self._clock = clock

    @property
    def root(self) -> Any:
        """``output_path`` as a path object."""
        return self.files.root

    @property
    def atomic_claims(self) -> bool:
        """Whether claims use an atomic exclusive create (else the read-back lease and its window)."""
        return self.files.atomic_create

    # -- entries ----------------------------------------------------------------------------------

    def get(self, key: LedgerKey) -> LedgerEntry | None:
        """The trusted entry of ``key``, or None (missing, or ignored with a warning)."""
        return self._load(key.id)

    def _load(self, key_id: str) -> LedgerEntry | None:
        where = f"{_ENTRIES}/{key_id}.json"
        try:
            raw: bytes | Exception | None = self.files.read(where)
        except Exception as exc:
            raw = exc
        return self._trusted(key_id, raw)

    def get_many(self, keys: Iterable[LedgerKey]) -> dict[str, LedgerEntry | None]:
        """:meth:`get` of many keys, read together (concurrently on object storage): ``{key id: entry or None}``."""
        ids = list(dict.fromkeys(key.id for key in keys))
        answers = self.files.read_many([f"{_ENTRIES}/{key_id}.json" for key_id in ids])
        return {key_id: self._trusted(key_id, answers[f"{_ENTRIES}/{key_id}.json"]) for key_id in ids}

    def _trusted(self, key_id: str, raw: bytes | Exception | None) -> LedgerEntry | None:
        where = f"{_ENTRIES}/{key_id}.json"
        if isinstance(raw, Exception):
            log.warning("Ignoring the MinerU ledger entry %s: it cannot be read (%s); parsing again.", where, raw)
            return None
        if raw is None:
            return None
        entry, why = self._decode(raw)
        if entry is not None and entry.key.id != key_id:
            entry, why = None, f"it is stored under another key's name (it describes {entry.key.id})"
        if entry is None:
            log.warning("Ignoring the MinerU ledger entry %s: %s; its input is parsed again.", where, why)
        return entry

    def _decode(self, raw: bytes) -> tuple[LedgerEntry | None, str]:
        if len(raw) > _MAX_RECORD_BYTES:
            return None, "it is larger than any entry the provider writes"
        try:
            data = json.loads(raw)
        except ValueError:
            return None, "it is not JSON"
        body, why = unseal(data, self._token, "mineru-ledger/entry")
        if body is None:
            return None, why
        entry = LedgerEntry.from_dict(body)
        if entry is None:
            return None, "its format is not one this provider version reads"
        return entry, ""

    def _save(self, entry: LedgerEntry) -> LedgerEntry:
        data = canonical_json(seal(entry.to_dict(), self._token, "mineru-ledger/entry")).encode("utf-8")
        self.files.write(f"{_ENTRIES}/{entry.key.id}.json", data)
        return entry

    def entries(self) -> Iterable[LedgerEntry]:
        """Every trusted entry (one read each; ignored ones are logged)."""
        for name in self.files.names(_ENTRIES):
            if name.endswith(".json"):
                entry = self._load(name[: -len(".json")])
                if entry is not None:
                    yield entry

    def snapshot(self) -> LedgerSnapshot:
        """:meth:`entries`, read once, for a plan and a sync."""
        return LedgerSnapshot({e.key.id: e for e in self.entries()})

    def _source_rel(self, source: str) -> str:
        return f"{_SOURCES}/{hashlib.sha256(source.encode('utf-8')).hexdigest()}.json"

    def _point(self, source: str, key: LedgerKey) -> None:
        body = {"source": source, "key_id": key.id}
        self.files.write(
            self._source_rel(source), canonical_json(seal(body, self._token, "mineru-ledger/source")).encode("utf-8")
        )

    def previous(self, source: str) -> LedgerEntry | None:
        """
        The entry last recorded for ``source``, whatever its key (two reads; only for inputs whose
        own key has no entry, to tell "content changed" and "options changed" from "new").
        """
        try:
            raw = self.files.read(self._source_rel(source))
            body, _ = unseal(json.loads(raw or b"null"), self._token, "mineru-ledger/source")
        except Exception:
            return None
        if body is None or body.get("source") != source or not isinstance(body.get("key_id"), str):
            return None
        return self._load(body["key_id"])

    def write_sealed(self, relative: str, body: Mapping[str, Any], kind: str) -> None:
        """Write ``body`` at ``relative`` (under ``output_path``), sealed for record kind ``kind``."""
        self.files.write(relative, canonical_json(seal(dict(body), self._token, kind)).encode("utf-8"))

    def read_sealed(self, relative: str, kind: str) -> tuple[dict[str, Any] | None, str]:
        """The body :meth:`write_sealed` wrote, or ``(None, why)`` (missing, unreadable, or its seal fails)."""
        try:
            raw = self.files.read(relative)
            if raw is None:
                return None, "it does not exist"
            if len(raw) > _MAX_RECORD_BYTES * 64:
                return None, "it is larger than any record the provider writes"
            return unseal(json.loads(raw), self._token, kind)
        except Exception as exc:
            return None, f"it cannot be read ({exc})"

    # -- trust ------------------------------------------------------------------------------------

    def marker_fingerprints(self) -> dict[str, str]:
        """
        ``{folder: fingerprint}`` of every completion marker under ``output_path``, from one listing:
        hand it to :meth:`verify` / :func:`~.plan.plan` so a re-check on object storage costs no
        request per document for its folder.
        """
        return self.files.fingerprints_of(MARKER_NAME)

    def verify(self, entry: LedgerEntry, folder: str, *, markers: Mapping[str, str] | None = None) -> bool:
        """
        Whether ``folder`` (relative to ``output_path``) still holds ``entry``'s complete result.

        True when the entry is ``done``, names ``folder``, and the folder's completion marker is
        the one recorded: the same fingerprint (no read), or, when the marker was rewritten, a
        marker naming the same MinerU result with every file it lists present. A missing or
        different marker makes the entry stale: logged, and False (the input is parsed again).

        :param markers: :meth:`marker_fingerprints`, listed once; without it the marker is looked
            at directly (a ``stat``, or a HEAD on object storage).
        """
        output = entry.output_for(folder)
        if entry.state is not EntryState.DONE or output is None:
            return False
        target = join_relative(self.root, folder)
        fingerprint = markers.get(folder) if markers is not None else self.files.fingerprint(target / MARKER_NAME)
        if fingerprint is None:
            log.warning(
                "The MinerU ledger says %s is done in %s, but the folder has no completion marker; parsing again.",
                output.name,
                folder,
            )
            return False
        if fingerprint == output.marker:
            return True
        if entry.identity is not None and read_marker(target, dict(entry.identity)) is not None:
            return True
        log.warning(
            "The MinerU ledger entry of %s is stale: %s now holds another result (its completion marker "
            "changed); parsing again.",
            output.name,
            folder,
        )
        return False

    def _read_marker_identity(self, folder: str) -> tuple[dict[str, Any], str, ExtractedResult]:
        target = join_relative(self.root, folder)
        before = self.files.fingerprint(target / MARKER_NAME)
        extracted = read_marker(target)
        raw = self.files.read(f"{folder}/{MARKER_NAME}") if extracted is not None else None
        after = self.files.fingerprint(target / MARKER_NAME)
        if extracted is None or raw is None or before is None or before != after:
            raise MinerULedgerError(
                f"not recording {folder} as done: it has no complete result (no completion marker "
                f"{MARKER_NAME}, a file it lists is missing, or it changed while it was read)"
            )
        identity = json.loads(raw).get("identity")
        return (dict(identity) if isinstance(identity, Mapping) else {}), before, extracted

    # -- writes -----------------------------------------------------------------------------------

    def record_done(
        self,
        key: LedgerKey,
        folder: str,
        *,
        source: str,
        name: str,
        task_id: str | None = None,
        batch_id: str | None = None,
        trace_id: str | None = None,
        pages: int | None = None,
    ) -> LedgerEntry:
        """
        Record that ``folder`` (relative to ``output_path``) holds ``key``'s complete result.

        Reads the folder's completion marker first and refuses without it; the marker's identity
        and fingerprint go into the entry. Call it after landing, never before.

        :param source: where the input was read (local path, ``s3://…`` or the URL): what sync compares.
        :param name: the input's name (for logs).
        :param task_id: MinerU's task id; when given, the marker must name it.
        :raises MinerULedgerError: the folder holds no complete result, or another task's.
        """
        identity, fingerprint, _ = self._read_marker_identity(_checked_folder(folder))
        if task_id is not None and identity.get("task_id") not in (None, task_id):
            raise MinerULedgerError(
                f"not recording {folder} as done for MinerU task {task_id}: its completion marker names "
                f"task {identity.get('task_id')}"
            )
        now = utc_now()
        earlier = self.previous(source)
        if earlier is not None and earlier.key.id != key.id and earlier.output_for(folder) is not None:
            self._save(earlier.without_output(folder))  # the folder holds this key's result now
        current = self.get(key)
        output = Output(source=source, name=name, folder=folder, marker=fingerprint)
        base = current if current is not None and current.identity == identity else None
        entry = LedgerEntry(
            key=key,
            state=EntryState.DONE,
            attempts=(current.attempts if current else 0) + 1,
            pages=pages,
            task_id=task_id or identity.get("task_id"),
            batch_id=batch_id,
            trace_id=trace_id,
            identity=identity,
            outputs=(base.outputs if base else ()),
            first_seen=current.first_seen if current else now,
            last_seen=now,
        ).with_output(output)
        self._save(entry)
        self._point(source, key)
        return entry

    def record_failure(
        self,
        key: LedgerKey,
        *,
        source: str,
        name: str,
        code: str | None,
        message: str | None,
        task_id: str | None = None,
        trace_id: str | None = None,
        folder: str | None = None,
        reset: bool = False,
    ) -> LedgerEntry:
        """
        Record a paid attempt of ``key`` that failed (counted against ``max_attempts_per_document``).

        An entry already ``done`` stays done (its folder is still good); only its attempts grow.

        :param folder: the folder its result would land in (default: ``name`` made safe).
        :param reset: the attempt was forced (``force=True``): the count starts again at 1.
        """
        now = utc_now()
        current = self.get(key)
        attempts = 1 if reset or current is None else current.attempts + 1
        if current is not None and current.state is EntryState.DONE:
            return self._save(replace(current, attempts=attempts, last_seen=now))
        entry = LedgerEntry(
            key=key,
            state=EntryState.FAILED,
            attempts=attempts,
            last_error_code=code,
            last_error_message=(message or "")[:2000] or None,
            task_id=task_id,
            trace_id=trace_id,
            outputs=(Output(source=source, name=name, folder=folder or safe_name(name) or "document"),),
            first_seen=current.first_seen if current else now,
            last_seen=now,
        )
        self._save(entry)
        self._point(source, key)
        return entry

    def copy_result(
        self, entry: LedgerEntry, from_folder: str, to_folder: str, *, source: str, name: str
    ) -> LedgerEntry:
        """
        Land ``entry``'s result again in ``to_folder`` by copying ``from_folder`` (0 pages), and record it.

        The copy is landed like a download (:func:`~airflow_provider_mineru.results.landing.land_result`):
        complete with its marker, or not at all. ``from_folder`` must verify first.

        :raises MinerULedgerError: ``from_folder`` no longer holds the entry's result.
        """

        _checked_folder(to_folder)
        if not self.verify(entry, from_folder):
            raise MinerULedgerError(f"cannot copy {from_folder}: it no longer holds the recorded result")
        source_root = join_relative(self.root, from_folder)
        extracted = read_marker(source_root, dict(entry.identity or {}))
        if extracted is None:
            raise MinerULedgerError(f"cannot copy {from_folder}: its completion marker is gone")

        def copy(dest: Any) -> ExtractedResult:
            for member in extracted.files:
                self.files.copy_file(join_relative(source_root, member), join_relative(dest, member))
            return ExtractedResult.of(str(dest), extracted.files, extracted.skipped, extracted.total_bytes)

        land_result(copy, join_relative(self.root, to_folder), identity=dict(entry.identity or {}))
        _, fingerprint, _ = self._read_marker_identity(to_folder)
        current = self.get(entry.key) or entry
        updated = replace(current, last_seen=utc_now()).with_output(
            Output(source=source, name=name, folder=to_folder, marker=fingerprint)
        )
        self._save(updated)
        self._point(source, entry.key)
        return updated

    def tombstone(self, entry: LedgerEntry, folder: str, *, today: dt.date | None = None) -> str | None:
        """
        Move ``folder`` to ``.mineru-tombstones/<YYYY-MM-DD>/<folder>/`` and drop it from ``entry``.

        The entry becomes ``deleted`` when no output is left. A folder already gone is only
        dropped from the entry.

        :return: the tombstone folder (relative to ``output_path``), or None when there was no folder.
        """
        _checked_folder(folder)
        day = (today or dt.datetime.now(dt.timezone.utc).date()).isoformat()
        dest: str | None = None
        if self.files.exists(folder):
            dest = f"{TOMBSTONE_DIR}/{day}/{folder}"
            suffix = 1
            while self.files.exists(dest):
                suffix += 1
                dest = f"{TOMBSTONE_DIR}/{day}/{folder}-{suffix}"
            self.files.move_folder(folder, dest, last=MARKER_NAME)
        current = self.get(entry.key) or entry
        self._save(current.without_output(folder))
        return dest

    # -- claims -----------------------------------------------------------------------------------

    def _claims(self, key: LedgerKey) -> list[int]:
        folder = f"{_CLAIMS}/{key.id}"
        return sorted(int(n[:-5]) for n in self.files.names(folder) if n.endswith(".json") and n[:-5].isdigit())

    def _read_claim(self, key: LedgerKey, generation: int) -> dict[str, Any] | None:
        """
        The body of claim ``generation``, or None when it is foreign or planted (it blocks nothing).

        :raises OSError: the claim could not be read (a store error): who holds it is unknown.
        """
        raw = self.files.read(f"{_CLAIMS}/{key.id}/{generation:010d}.json")
        if not raw:  # listed, but gone or still being written (local O_EXCL create, then write)
            raise FileNotFoundError(f"claim {generation} of {key.id} is not readable yet")
        try:
            body, _ = unseal(json.loads(raw or b"null"), self._token, "mineru-ledger/claim")
        except Exception:
            return None
        if body is None or body.get("key_id") != key.id:
            return None  # a planted claim blocks nothing
        return body

    def _new_claim(self, key: LedgerKey, generation: int, owner: str, expires_at: float) -> bool:
        body = {"key_id": key.id, "generation": generation, "owner": owner, "expires_at": expires_at}
        data = canonical_json(seal(body, self._token, "mineru-ledger/claim")).encode("utf-8")
        return self.files.create(f"{_CLAIMS}/{key.id}/{generation:010d}.json", data)

    def claim(self, key: LedgerKey, owner: str, ttl: float) -> bool:
        """
        Claim ``key`` for ``owner`` (this task instance is about to pay for it) for ``ttl`` seconds.

        True for exactly one of any number of concurrent claimers on a store with an atomic
        exclusive create (:attr:`atomic_claims`); True again for the same ``owner`` while its claim
        holds (an Airflow retry). False while another owner's claim holds. After a True, read the
        entry again (:meth:`get`): the owner of the previous claim may have finished meanwhile.
        """
        generations = self._claims(key)
        latest = generations[-1] if generations else 0
        if latest:
            try:
                current = self._read_claim(key, latest)
            except Exception:  # listed but not readable yet: do not supersede a claim nobody read
                return False
            if current is not None and float(current.get("expires_at") or 0) > self._clock():
                return current.get("owner") == owner
        if not self._new_claim(key, latest + 1, owner, self._clock() + ttl):
            return False
        for old in generations[:-1]:  # generations below the superseded one are history
            self.files.delete(f"{_CLAIMS}/{key.id}/{old:010d}.json")
        return True

    def release(self, key: LedgerKey, owner: str) -> None:
        """End ``owner``'s claim of ``key`` early (the result is recorded, or the submit was refused)."""
        generations = self._claims(key)
        if not generations:
            return
        try:
            current = self._read_claim(key, generations[-1])
        except OSError:
            return  # it expires on its own
        if current is not None and current.get("owner") == owner:
            self._new_claim(key, generations[-1] + 1, f"released by {owner}", 0.0)
