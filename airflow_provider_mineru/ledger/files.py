"""
The few file operations the ledger needs, on local disk or object storage, and what each store guarantees.

Every ledger file is small JSON read and written whole. On local disk a write goes to a temporary
file renamed over the target (a reader sees the old or the new bytes, never half), and an
exclusive create writes a temporary file and hard-links it to the target name (``link`` fails when
the name exists, and a reader never sees an empty claim, which ``O_EXCL`` alone would allow). On
object storage a PUT replaces an object whole; an exclusive create is a PUT with
``If-None-Match: *`` where the backend is known to send it (s3fs, :data:`EXCLUSIVE_PROTOCOLS`).
Anywhere else an exclusive create is "check, write, read back": two writers that both pass the
check within one round trip of each other may both believe they won (see ``docs/incremental.md``,
"Races").

Reads on object storage go straight to the object (``cat_file``), never through s3fs's listing
cache, so a file another worker rewrote is read as it is now. :attr:`LedgerFiles.reads` counts
reads (the benchmark's "store reads").
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import uuid
from typing import Any

from airflow_provider_mineru.utils.storage_paths import is_local_path, join_relative, storage_path

__all__ = ["EXCLUSIVE_PROTOCOLS", "LedgerFiles"]

#: Object-storage protocols whose exclusive create is atomic on the server (``If-None-Match: *``).
EXCLUSIVE_PROTOCOLS = frozenset({"s3", "s3a"})


def _protocol(path: Any) -> str:
    protocol = getattr(path, "protocol", "") or ""
    if isinstance(protocol, (tuple, list)):
        protocol = protocol[0] if protocol else ""
    return str(protocol)


class LedgerFiles:
    """
    Small whole-file reads and writes under one root folder (local or object storage).

    :param root: the folder (text, ``pathlib.Path`` or ``ObjectStoragePath``).
    :param exclusive: force (True) or refuse (False) atomic exclusive creates; None: by protocol.
    """

    def __init__(self, root: Any, *, exclusive: bool | None = None) -> None:
        self.root = storage_path(root, "output_path")
        #: the root as given (what the operators' XCom rows are written under)
        self.given = self.root
        if not is_local_path(self.root) and _protocol(self.root) in ("file", "local"):
            # an ObjectStoragePath("file://…"): the same local folder, with its atomic renames and links
            self.root = pathlib.Path(self.root.path)
        self.local = is_local_path(self.root)
        self.protocol = "file" if self.local else _protocol(self.root)
        self.atomic_create = (self.local or self.protocol in EXCLUSIVE_PROTOCOLS) if exclusive is None else exclusive
        self.reads = 0

    def path(self, relative: str) -> Any:
        """``root / relative`` (``relative`` uses ``/``)."""
        return join_relative(self.root, relative)

    # -- object storage plumbing ---------------------------------------------------------------

    def _fs(self, relative: str) -> tuple[Any, str]:
        target = self.path(relative)
        return target.fs, target.path

    # -- reads ----------------------------------------------------------------------------------

    def read(self, relative: str) -> bytes | None:
        """The file's bytes, or None when it does not exist (other errors raise ``OSError``)."""
        self.reads += 1
        if self.local:
            try:
                return self.path(relative).read_bytes()
            except (FileNotFoundError, NotADirectoryError):
                return None
        fs, path = self._fs(relative)
        try:
            return fs.cat_file(path)
        except FileNotFoundError:
            return None

    def read_many(self, relatives: list[str]) -> dict[str, bytes | Exception | None]:
        """
        :meth:`read` of many files: ``{relative: bytes, None when missing, or the error}``.

        Object storage: fetched concurrently by the filesystem (``fs.cat`` of a list: s3fs sends
        them together on its event loop), so a re-check is not one round trip per document.
        """
        self.reads += len(relatives)
        found: dict[str, bytes | Exception | None] = {}
        if self.local or len(relatives) < 2:
            for relative in relatives:
                self.reads -= 1
                try:
                    found[relative] = self.read(relative)
                except Exception as exc:
                    found[relative] = exc
            return found
        by_path = {self.path(r).path: r for r in relatives}
        fs = self.root.fs
        answers = fs.cat(list(by_path), on_error="return")
        for path, relative in by_path.items():
            answer = answers.get(path, FileNotFoundError(path))
            found[relative] = None if isinstance(answer, FileNotFoundError) else answer
        return found

    def names(self, relative: str) -> list[str]:
        """Names of the files directly in folder ``relative`` (sorted; empty when it does not exist)."""
        if self.local:
            try:
                with os.scandir(self.path(relative)) as found:
                    return sorted(e.name for e in found if e.is_file() and not e.name.startswith(".tmp-"))
            except (FileNotFoundError, NotADirectoryError):
                return []
        fs, path = self._fs(relative)
        with contextlib.suppress(Exception):
            fs.invalidate_cache(path)
        try:
            found = fs.ls(path, detail=True)
        except FileNotFoundError:
            return []
        return sorted(
            str(item["name"]).rstrip("/").rsplit("/", 1)[-1] for item in found if item.get("type") != "directory"
        )

    def fingerprint(self, target: Any) -> str | None:
        """
        What changes whenever the file ``target`` (a path object) is rewritten, or None when it is missing.

        Local disk: size, modification time and inode. Object storage: the ETag (or version id),
        else size and modification time.
        """
        if is_local_path(target):
            try:
                st = target.stat()
            except (FileNotFoundError, NotADirectoryError):
                return None
            return f"local:{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"
        fs, path = target.fs, target.path
        with contextlib.suppress(Exception):
            fs.invalidate_cache(path)
        try:
            info = fs.info(path)
        except FileNotFoundError:
            return None
        return object_fingerprint(info)

    def fingerprints_of(self, file_name: str) -> dict[str, str]:
        """
        ``{folder: fingerprint}`` of every file named ``file_name`` under the root, from one listing.

        Object storage: one recursive listing (1,000 keys per request on S3) instead of a HEAD per
        folder. Folders whose name starts with ``.`` (the ledger, tombstones, landing's staging
        folders) are left out.
        """
        found: dict[str, str] = {}
        if self.local:
            for folder, dirs, files in os.walk(self.root):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                if file_name in files:
                    relative = pathlib.Path(folder).relative_to(self.root).as_posix()
                    fingerprint = self.fingerprint(pathlib.Path(folder) / file_name)
                    if fingerprint is not None and relative != ".":
                        found[relative] = fingerprint
            return found
        fs, base = self.root.fs, self.root.path.rstrip("/")
        with contextlib.suppress(Exception):
            fs.invalidate_cache(base)
        try:
            listing = fs.find(base, detail=True)
        except FileNotFoundError:
            return found
        for path, info in listing.items():
            relative = str(path)[len(base) + 1 :] if str(path).startswith(base + "/") else None
            if relative is None or not relative.endswith("/" + file_name):
                continue
            folder = relative[: -len(file_name) - 1]
            if any(part.startswith(".") for part in folder.split("/")):
                continue
            fingerprint = object_fingerprint(info)
            if fingerprint is not None:
                found[folder] = fingerprint
        return found

    # -- writes ---------------------------------------------------------------------------------

    def write(self, relative: str, data: bytes) -> None:
        """Replace the file whole (a reader sees the old or the new bytes)."""
        target = self.path(relative)
        if self.local:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.parent / f".tmp-{uuid.uuid4().hex}"
            try:
                tmp.write_bytes(data)
                os.replace(tmp, target)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
            return
        fs, path = target.fs, target.path
        fs.pipe_file(path, data)

    def create(self, relative: str, data: bytes) -> bool:
        """
        Create the file only if it does not exist; True when this call created it.

        Atomic on local disk and on :data:`EXCLUSIVE_PROTOCOLS`; elsewhere check, write and read back.
        """
        target = self.path(relative)
        if self.local and self.atomic_create:
            return _create_local(target, data)
        if self.atomic_create:
            fs, path = target.fs, target.path
            try:
                fs.pipe_file(path, data, mode="create")
            except FileExistsError:
                return False
            return True
        if self.read(relative) is not None:
            return False
        self.write(relative, data)
        return self.read(relative) == data

    def delete(self, relative: str) -> None:
        """Remove the file; a missing file is no error."""
        target = self.path(relative)
        if self.local:
            with contextlib.suppress(FileNotFoundError):
                target.unlink()
            return
        fs, path = target.fs, target.path
        with contextlib.suppress(FileNotFoundError):
            fs.rm_file(path)

    # -- folders (tombstones and copies) --------------------------------------------------------

    def walk(self, relative: str) -> list[str]:
        """Every file under folder ``relative``, as paths relative to it (sorted; empty when missing)."""
        folder = self.path(relative)
        if self.local:
            if not folder.is_dir():
                return []
            return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        fs, path = folder.fs, folder.path.rstrip("/")
        with contextlib.suppress(Exception):
            fs.invalidate_cache(path)
        try:
            found = fs.find(path)
        except FileNotFoundError:
            return []
        return sorted(str(p)[len(path) + 1 :] for p in found if str(p).startswith(path + "/"))

    def copy_file(self, source: Any, dest: Any) -> int:
        """Stream ``source`` into ``dest`` (path objects of any store); the bytes copied."""
        if is_local_path(dest):
            dest.parent.mkdir(parents=True, exist_ok=True)
        with source.open("rb") as reader, dest.open("wb") as writer:
            shutil.copyfileobj(reader, writer, 1024 * 1024)
        return _size(dest)

    def move_folder(self, relative: str, dest_relative: str, *, last: str) -> None:
        """
        Move folder ``relative`` to ``dest_relative`` (which must not exist).

        Local disk: one rename. Object storage: ``last`` (the completion marker) is removed from the
        source first and written to the destination last, so neither looks complete half-way.
        """
        source, dest = self.path(relative), self.path(dest_relative)
        if self.local:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.rename(source, dest)
            return
        names = self.walk(relative)
        marker = self.read(f"{relative}/{last}") if last in names else None
        if marker is not None:
            self.delete(f"{relative}/{last}")
        for name in names:
            if name != last:
                self.copy_file(join_relative(source, name), join_relative(dest, name))
        if marker is not None:
            self.write(f"{dest_relative}/{last}", marker)
        for name in names:
            if name != last:
                self.delete(f"{relative}/{name}")

    def exists(self, relative: str) -> bool:
        """Whether anything (file or folder) is at ``relative``."""
        target = self.path(relative)
        if self.local:
            return target.exists()
        with contextlib.suppress(Exception):
            target.fs.invalidate_cache(target.path)
        return bool(target.fs.exists(target.path))


def _create_local(target: pathlib.Path, data: bytes) -> bool:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".tmp-{uuid.uuid4().hex}"
    tmp.write_bytes(data)
    try:
        os.link(tmp, target)
    except FileExistsError:
        return False
    finally:
        tmp.unlink()
    return True


def object_fingerprint(info: Any) -> str | None:
    """The change-telling part of an object's ``info``/listing entry: ETag, version id, else size and mtime."""
    if not isinstance(info, dict):
        return None
    lowered = {str(k).lower(): v for k, v in info.items()}
    for name in ("etag", "versionid", "version_id", "generation", "md5_hash"):
        value = lowered.get(name)
        if value:
            return f"{name}:{str(value).strip(chr(34))}"
    size, mtime = lowered.get("size"), lowered.get("lastmodified") or lowered.get("mtime") or lowered.get("updated")
    if size is None or mtime is None:
        return None
    return f"size-mtime:{size}:{mtime}"


def _size(path: Any) -> int:
    try:
        return int(path.stat().st_size)
    except AttributeError:
        return int(path.stat()["size"])
