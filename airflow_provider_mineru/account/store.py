"""
The account store: small JSON documents with compare-and-swap, shared by every process of a deployment.

Why not Airflow's own storage: on Airflow 3 workers and triggers do not reach the metadata database
(the Task SDK talks to the api-server), Variables have no compare-and-swap (two workers reading 990
of 1,000 pages and each writing back 995 both "win"), and pools cap concurrency, not rates
(apache/airflow#15082). What every process of a deployment can reach with an atomic update is a
directory on one machine (``fcntl.flock`` + atomic rename) or an object store with conditional
writes (S3 ``If-Match``/``If-None-Match: *``). The ``account_store`` extra names one of them:

- a local directory (``/var/lib/airflow/mineru-account`` or ``file:///…``): one machine
  (LocalExecutor, a single-host Celery, the tests);
- ``s3://[aws_conn_id@]bucket/prefix``: any number of machines; the credentials are an Airflow
  ``aws`` connection (``aws_default`` when the URL names none), reached through the amazon
  provider's ``S3Hook``.

Every update is read → change → conditional write, retried on a conflict; a change is a pure
function of the document, so a retry recomputes it from what another process wrote.

Failure modes (see ``docs/operations.md``): an unreachable store raises
:class:`AccountStoreUnavailable`, and callers fail closed (no paid request without a reservation).
An update whose write was sent but whose answer was lost is not known to have happened: the
error says so, and the caller treats it as spent (reservations) or not given (leases), both on the
safe side.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import random
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from airflow_provider_mineru.exceptions import MinerUError

T = TypeVar("T")

#: A document's key: a few path components of ``[A-Za-z0-9_.=-]`` (conn ids and UTC days fit).
_KEY_RE = re.compile(r"^[A-Za-z0-9_.=-]+(/[A-Za-z0-9_.=-]+)*$")


class AccountStoreUnavailable(MinerUError):
    """The account store could not be read or written (or stayed contended): nothing was granted."""

    retryable = True


@dataclass(frozen=True)
class Versioned:
    """A stored document's bytes and the version a conditional write must name."""

    body: bytes
    version: str


class CasBackend(Protocol):
    """Where documents live: a read, and a write that happens only if nobody wrote since."""

    #: Human words for logs and errors (no credentials).
    where: str
    #: Whether processes on other machines see the same documents.
    shared_across_machines: bool

    def read(self, key: str) -> Versioned | None:
        """The document under ``key``, or None when there is none."""
        ...

    def write(self, key: str, body: bytes, *, expected: str | None) -> bool:
        """
        Write ``body`` if the stored version is still ``expected`` (None: only if no document exists).

        :returns: False on a conflict (someone wrote first); raises on any other failure.
        """
        ...


def key_part(text: str) -> str:
    """``text`` (a conn id) as one key component: itself when safe, else a readable prefix and a hash."""
    if re.match(r"^[A-Za-z0-9_.-]{1,100}$", text) and text not in (".", ".."):
        return text
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:40].strip(".")
    return f"{readable}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def check_key(key: str) -> str:
    """``key`` unchanged, or ``ValueError`` when it could escape its folder or bucket prefix."""
    if not _KEY_RE.match(key) or any(part in (".", "..") for part in key.split("/")):
        raise ValueError(f"invalid account store key {key!r}")
    return key


class LocalBackend:
    """
    Documents as files in a local directory: ``fcntl.flock`` serialises writers, atomic rename
    lets readers see whole files only. A lock is released by the kernel when its process dies.

    :param root: the directory (created when missing).
    """

    shared_across_machines = False

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = os.path.abspath(os.fspath(root))
        self.where = self.root
        os.makedirs(self.root, exist_ok=True)

    def _path(self, key: str) -> str:
        return os.path.join(self.root, *check_key(key).split("/")) + ".json"

    @staticmethod
    def _version(body: bytes) -> str:
        return hashlib.sha256(body).hexdigest()

    def read(self, key: str) -> Versioned | None:
        try:
            with open(self._path(key), "rb") as handle:
                body = handle.read()
        except FileNotFoundError:
            return None
        return Versioned(body, self._version(body))

    @contextlib.contextmanager
    def _locked(self, path: str) -> Iterator[None]:
        # One lock file per document; flock on a fresh descriptor excludes threads of this process too.
        with open(path + ".lock", "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def write(self, key: str, body: bytes, *, expected: str | None) -> bool:
        path = self._path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with self._locked(path):
            current = self.read(key)
            if (current.version if current else None) != expected:
                return False
            fd, temp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(body)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temp, path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp)
                raise
        return True


class MemoryBackend:
    """Documents in this process's memory: for tests and simulations only (nothing is shared)."""

    shared_across_machines = False
    where = "memory"

    def __init__(self) -> None:
        self._docs: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self.writes = 0

    def read(self, key: str) -> Versioned | None:
        with self._lock:
            body = self._docs.get(check_key(key))
        return None if body is None else Versioned(body, hashlib.sha256(body).hexdigest())

    def write(self, key: str, body: bytes, *, expected: str | None) -> bool:
        with self._lock:
            current = self._docs.get(check_key(key))
            if (hashlib.sha256(current).hexdigest() if current is not None else None) != expected:
                return False
            self._docs[key] = body
            self.writes += 1
            return True


class S3Backend:
    """
    Documents as S3 objects, written with conditional puts: ``If-None-Match: *`` creates,
    ``If-Match: <ETag>`` replaces. S3 (since 2024-11), MinIO and moto 5 answer a lost race with
    412 ``PreconditionFailed`` (or 409 ``ConditionalRequestConflict`` for two writes in flight).

    :param client: a botocore S3 client (``S3Hook(...).get_conn()``).
    :param bucket: the bucket.
    :param prefix: the key prefix, without a trailing ``/``.
    """

    shared_across_machines = True

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.where = f"s3://{bucket}/{self.prefix}".rstrip("/")

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}.json" if self.prefix else f"{key}.json"

    @staticmethod
    def _code(error: Exception) -> tuple[str, int]:
        response = getattr(error, "response", None) or {}
        code = str(response.get("Error", {}).get("Code", ""))
        status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return code, status

    def read(self, key: str) -> Versioned | None:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as error:
            code, status = self._code(error)
            if code in ("NoSuchKey", "404") or status == 404:
                return None
            raise
        body = answer["Body"].read()
        return Versioned(body, answer["ETag"])

    def write(self, key: str, body: bytes, *, expected: str | None) -> bool:
        condition = {"IfNoneMatch": "*"} if expected is None else {"IfMatch": expected}
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=self._key(key), Body=body, ContentType="application/json", **condition
            )
        except Exception as error:
            code, status = self._code(error)
            if status in (409, 412) or code in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            raise
        return True


def parse_s3_url(url: str) -> tuple[str | None, str, str]:
    """``s3://[conn_id@]bucket[/prefix]`` → (conn id or None, bucket, prefix)."""
    match = re.match(r"^s3://(?:([^@/]+)@)?([^/]+)(?:/(.*))?$", url.strip())
    if not match:
        raise ValueError(f"not an s3:// URL: {url!r}")
    return match.group(1), match.group(2), (match.group(3) or "").strip("/")


def backend_for(location: str) -> CasBackend:
    """
    The backend an ``account_store`` location names (already validated by
    :func:`airflow_provider_mineru.account.limits.AccountLimits.from_extra`).
    """
    if location.startswith("s3://"):
        conn_id, bucket, prefix = parse_s3_url(location)
        # The amazon provider is optional: imported only when an s3:// store is configured.
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        client = S3Hook(aws_conn_id=conn_id or "aws_default").get_conn()
        return S3Backend(client, bucket, prefix)
    return LocalBackend(os.path.expanduser(location.removeprefix("file://")))


class JsonStore:
    """
    Atomic read-modify-write of JSON documents over a :class:`CasBackend`.

    :param backend: where the documents live.
    :param attempts: conditional writes tried before giving up on a contended document.
    :param sleep: how to wait between conflicting attempts (tests and simulations inject one).
    """

    def __init__(self, backend: CasBackend, *, attempts: int = 64, sleep: Callable[[float], None] = time.sleep) -> None:
        self.backend = backend
        self.attempts = attempts
        self._sleep = sleep
        self.round_trips = 0

    def read(self, key: str) -> dict[str, Any] | None:
        """The document under ``key`` (None when there is none)."""
        try:
            current = self.backend.read(key)
        except Exception as error:
            raise AccountStoreUnavailable(
                f"cannot read {key} from the account store {self.backend.where}: {error}"
            ) from error
        return None if current is None else self._decode(key, current.body)

    def _decode(self, key: str, body: bytes) -> dict[str, Any]:
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise AccountStoreUnavailable(
                f"{key} in the account store {self.backend.where} is not a JSON object: delete it to reset that counter"
            )
        return document

    def update(self, key: str, change: Callable[[dict[str, Any] | None], tuple[dict[str, Any] | None, T]]) -> T:
        """
        Apply ``change`` atomically: it gets the current document (None when there is none) and returns
        the new document (None: leave it as it is, no write) and a result. It may run several times
        (once per conflict): keep it pure.

        :returns: the result of the run whose write won.
        :raises AccountStoreUnavailable: the store failed, or stayed contended for ``attempts`` tries.
        """
        for attempt in range(self.attempts):
            self.round_trips += 1
            try:
                current = self.backend.read(key)
                document, result = change(None if current is None else self._decode(key, current.body))
                if document is None:  # nothing to change: no write
                    return result
                body = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
                if self.backend.write(key, body, expected=current.version if current else None):
                    return result
            except (AccountStoreUnavailable, ValueError, TypeError):
                raise
            except Exception as error:
                raise AccountStoreUnavailable(
                    f"cannot update {key} in the account store {self.backend.where}: {type(error).__name__}: {error}"
                ) from error
            self._sleep(random.uniform(0, min(0.05, 0.002 * 2**attempt)))
        raise AccountStoreUnavailable(
            f"{key} in the account store {self.backend.where} stayed contended for {self.attempts} attempts"
        )
