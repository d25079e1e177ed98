"""
Safe extraction of MinerU result zips to a local folder or to object storage (one zip, one folder).

Landing a whole result atomically, with its completion marker, is :mod:`airflow_provider_mineru.results.landing`.

A result zip (``full_zip_url``) holds ``full.md``, ``images/``, ``<id>_content_list.json``,
``<id>_content_list_v2.json``, ``layout.json``, ``<id>_model.json`` and ``<id>_origin.pdf``.
The member list is treated as untrusted data:

* a member never lands outside the target: absolute names, drive letters, ``..`` components
  (with ``/`` or ``\\``), NUL bytes and empty names are skipped and reported;
* symbolic links and other special files are skipped, never created;
* a name seen twice, or a file that collides with a directory, keeps the first member only
  (names are compared case-insensitively, as a macOS or Windows disk would, but never folded:
  ``Strasse.md`` and ``Straße.md`` are two files); every skipped member is logged and listed;
* a member more than :attr:`ZipLimits.max_depth` folders deep refuses the whole zip;
* the central directory is bounded and its entries counted before :mod:`zipfile` reads it, so
  an entry count that lies costs neither memory nor time;
* sizes are checked twice: the declared sizes before anything is written (so an obvious bomb
  writes nothing), then the bytes actually produced while streaming, against
  :class:`ZipLimits`;
* members are streamed in 1 MiB chunks, so memory stays bounded whatever their size.
  Only *stored* and *deflate* members are accepted: Python's :mod:`zipfile` decompresses a
  bzip2/LZMA block in one go, which a small hostile member can turn into gigabytes of memory.

Hostile archives raise :class:`~airflow_provider_mineru.exceptions.UnsafeResultZipError`; a zip
that is not a zip, truncated or corrupt raises
:class:`~airflow_provider_mineru.exceptions.MinerUResultError`.
"""

from __future__ import annotations

import errno
import logging
import os
import pathlib
import posixpath
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Any

from airflow_provider_mineru.exceptions import MinerUResultError, UnsafeResultZipError
from airflow_provider_mineru.utils.storage_paths import is_local_path, join_relative, storage_path

__all__ = [
    "CHUNK_SIZE",
    "DEFAULT_LIMITS",
    "RATIO_CHECK_MIN_BYTES",
    "ExtractedResult",
    "UnsafeResultZipError",
    "ZipLimits",
    "extract_result_zip",
    "find_member",
    "safe_member_path",
]

log = logging.getLogger(__name__)

#: Bytes read from a member and written to the target per step.
CHUNK_SIZE = 1024 * 1024

#: The compression ratio limit applies only to members larger than this (small files such as
#: an all-blank JSON compress far better than real data and are harmless).
RATIO_CHECK_MIN_BYTES = 1024 * 1024

#: Compression methods that :mod:`zipfile` decompresses with bounded memory.
_STREAMABLE_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})
_METHOD_NAMES = {0: "stored", 8: "deflate", 9: "deflate64", 12: "bzip2", 14: "lzma", 93: "zstandard", 99: "AES"}

#: A Windows drive at the start of a path component: ``C:``, and any other one character and a colon
#: (``0:``), which ``PureWindowsPath`` also takes for a drive.
_DRIVE_RE = re.compile(r"^.:", re.DOTALL)
#: OS errors meaning "this name cannot exist on this filesystem": the member is skipped.
_BAD_NAME_ERRNOS = frozenset({errno.ENAMETOOLONG, errno.EILSEQ, errno.EINVAL})

#: What reading a broken member raises: zipfile's own errors, zlib's, a truncated stream.
_READ_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    RuntimeError,
    NotImplementedError,
    ValueError,
)

#: Individual "skipped member" warnings logged per archive before summarising the rest.
_MAX_SKIP_WARNINGS = 20


@dataclass(frozen=True)
class ZipLimits:
    """
    Limits applied while extracting one result zip; exceeding any raises :class:`UnsafeResultZipError`.

    :param max_total_bytes: uncompressed bytes written for the whole zip.
    :param max_member_bytes: uncompressed bytes written for one member.
    :param max_entries: entries (files, directories, skipped members) in the zip.
    :param max_ratio: uncompressed / compressed size of one member; checked only for members
        larger than :data:`RATIO_CHECK_MIN_BYTES` (1 MiB). Deflate cannot exceed about 1032:1.
    :param max_depth: folders above one member (``images/a.jpg`` is 1 deep). A deeper member
        makes the whole zip refused before anything is written.
    :param max_central_directory_bytes: size of the zip's central directory (its table of
        contents), which is read into memory; checked, and its entries counted against
        ``max_entries``, before :mod:`zipfile` parses it, whatever count the zip declares.
    """

    max_total_bytes: int = 4 * 1024**3
    max_member_bytes: int = 2 * 1024**3
    max_entries: int = 20_000
    max_ratio: float = 1000.0
    max_depth: int = 64
    max_central_directory_bytes: int = 32 * 1024**2

    def __post_init__(self) -> None:
        for field in (
            "max_total_bytes",
            "max_member_bytes",
            "max_entries",
            "max_ratio",
            "max_depth",
            "max_central_directory_bytes",
        ):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"ZipLimits.{field} must be a positive number, got {value!r}")


#: The limits used when the caller passes none.
DEFAULT_LIMITS = ZipLimits()


@dataclass(frozen=True)
class ExtractedResult:
    """
    What :func:`extract_result_zip` wrote.

    Paths are relative POSIX paths under :attr:`target`; join them with ``/`` on the target.

    :param target: ``str()`` of the folder the members landed in.
    :param files: relative paths written, in zip order.
    :param skipped: ``(member name as in the zip, reason)`` for every member skipped safely;
        directory entries that were created are not listed.
    :param total_bytes: uncompressed bytes written.
    :param markdown: ``full.md`` (or the first ``*.md`` at top level), if present.
    :param content_list: ``*_content_list.json`` (not the ``_v2`` one), if present.
    :param content_list_v2: ``*_content_list_v2.json``, if present.
    :param model_json: ``*_model.json``, if present.
    :param layout_json: ``layout.json``, if present.
    :param origin_pdf: ``*_origin.pdf``, if present.
    """

    target: str
    files: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]
    total_bytes: int
    markdown: str | None
    content_list: str | None
    content_list_v2: str | None
    model_json: str | None
    layout_json: str | None
    origin_pdf: str | None

    @classmethod
    def of(
        cls, target: str, files: tuple[str, ...], skipped: tuple[tuple[str, str], ...], total_bytes: int
    ) -> ExtractedResult:
        """The result of ``files`` written under ``target``, its well-known members found by name."""
        return cls(
            target=target,
            files=files,
            skipped=skipped,
            total_bytes=total_bytes,
            markdown=find_markdown(files),
            content_list=find_member(files, "_content_list.json"),
            content_list_v2=find_member(files, "_content_list_v2.json"),
            model_json=find_member(files, "_model.json"),
            layout_json=find_basename(files, "layout.json"),
            origin_pdf=find_member(files, "_origin.pdf"),
        )


def _short(name: str, limit: int = 200) -> str:
    """``repr`` of a member name, cut to ``limit`` characters (hostile names can be 64 KiB)."""
    return repr(name) if len(name) <= limit else repr(name[:limit]) + f"... ({len(name)} characters)"


def _unsafe(message: str) -> Exception:
    return UnsafeResultZipError(message)


def _result_error(message: str) -> Exception:
    return MinerUResultError(message)


# --------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------


def _check_member_path(name: str) -> tuple[str | None, str]:
    """Return ``(normalised path, "")`` for a safe name, or ``(None, reason)``."""
    if "\x00" in name:
        return None, "name contains a NUL byte"
    unified = name.replace("\\", "/")
    if unified.startswith("/"):
        return None, "absolute path"
    parts = []
    for part in unified.split("/"):
        if part in ("", "."):
            continue
        if _DRIVE_RE.match(part):
            return None, "drive letter"
        # "..", and names Windows would trim to ".." or "." (".. ", "...").
        if part.strip(". ") == "":
            return None, "parent-directory component"
        parts.append(part)
    if not parts:
        return None, "empty name"
    return "/".join(parts), ""


def safe_member_path(name: str) -> str | None:
    """
    Normalise a zip member name to a relative POSIX path that cannot leave the target.

    Backslashes count as separators; empty and ``.`` components are dropped (``./a//b`` ->
    ``a/b``). Returns None when the name is absolute (``/x``, ``\\x``), has a drive letter
    (``C:x``, ``C:\\x``) in any component, has a ``..`` component (or one made only of dots and
    spaces, which Windows trims to ``..``), contains NUL, or is empty after normalising.

    :param name: the member name as stored in the zip.
    """
    return _check_member_path(name)[0]


def _is_ignorable(name: str) -> bool:
    """macOS resource-fork noise: anything under ``__MACOSX/`` and AppleDouble ``._x`` files."""
    parts = [p for p in name.replace("\\", "/").split("/") if p]
    return not parts or "__MACOSX" in parts or parts[-1].startswith("._")


def find_member(names: Iterable[str], suffix: str) -> str | None:
    """
    Return the first name ending with ``suffix`` (case-insensitive), or None.

    MinerU prefixes its JSON members with a server-side id, so find them by suffix
    (``_content_list.json``, ``_model.json``, ``_origin.pdf``). Directory entries, anything
    under ``__MACOSX/`` and AppleDouble ``._*`` files are ignored. ``_content_list.json`` does
    not match ``*_content_list_v2.json``.

    :param names: member names (``ZipFile.namelist()``) or relative paths
        (:attr:`ExtractedResult.files`).
    :param suffix: the ending to look for, e.g. ``"_content_list.json"``.
    """
    wanted = suffix.lower()
    for name in names:
        if name.endswith(("/", "\\")) or _is_ignorable(name):
            continue
        if name.lower().endswith(wanted):
            return name
    return None


def find_basename(files: Iterable[str], basename: str) -> str | None:
    """The shallowest file named ``basename`` (case-insensitive), first in zip order on ties."""
    wanted = basename.lower()
    matches = [f for f in files if posixpath.basename(f).lower() == wanted and not _is_ignorable(f)]
    return min(matches, key=lambda f: f.count("/")) if matches else None


def find_markdown(files: tuple[str, ...]) -> str | None:
    found = find_basename(files, "full.md")
    if found is not None:
        return found
    for name in files:
        if "/" not in name and name.lower().endswith(".md") and not _is_ignorable(name):
            return name
    return None


# --------------------------------------------------------------------------------------------
# Source and target
# --------------------------------------------------------------------------------------------


def _describe_source(zip_file: Any) -> str:
    if isinstance(zip_file, (str, os.PathLike)):
        return repr(os.fsdecode(zip_file))
    name = getattr(zip_file, "name", None)
    if isinstance(name, (str, bytes)):
        return repr(os.fsdecode(name))
    return f"<{type(zip_file).__name__} object>"


def _is_within(path: pathlib.Path, root: pathlib.Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def remove_quietly(path: Any) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except Exception:  # best effort: the original error matters more
        log.warning("Could not remove the partly written %s", path, exc_info=True)


def _open_archive(zip_file: Any, source: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(zip_file)
    except FileNotFoundError as exc:
        raise _result_error(f"result zip {source} does not exist") from exc
    except UnicodeDecodeError as exc:
        raise _result_error(f"result zip {source} has a member name flagged UTF-8 that is not") from exc
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as exc:
        raise _result_error(f"result zip {source} is not a readable zip archive (truncated?): {exc}") from exc


def _declared_entry_count(archive_fp: IO[bytes] | None) -> int | None:
    """Entry count from the end-of-central-directory record, read before zipfile parses everything."""
    end_rec_data = getattr(zipfile, "_EndRecData", None)
    index = getattr(zipfile, "_ECD_ENTRIES_TOTAL", None)
    if archive_fp is None or end_rec_data is None or index is None:
        return None
    try:
        endrec = end_rec_data(archive_fp)
        return int(endrec[index]) if endrec else None
    except Exception:  # a private helper: never let it decide anything but this early check
        return None


_CENTRAL_HEADER = struct.Struct("<4s4B4HL2L5H2L")
_CENTRAL_SIGNATURE = b"PK\x01\x02"


def _check_central_directory(archive_fp: IO[bytes] | None, limits: ZipLimits, source: str) -> None:
    """
    Bound the central directory before :mod:`zipfile` reads it whole and builds one object per entry.

    The end record's entry count is only a claim: the directory's size is checked against
    ``max_central_directory_bytes`` and its records are counted (a walk over the headers, no
    objects built) against ``max_entries``. Anything this cannot read is left to :mod:`zipfile`.
    """
    end_rec_data = getattr(zipfile, "_EndRecData", None)
    if archive_fp is None or end_rec_data is None:
        return
    try:
        endrec = end_rec_data(archive_fp)
        if not endrec:
            return
        size_cd, offset_cd, location = int(endrec[5]), int(endrec[6]), int(endrec[9])
        concat = location - size_cd - offset_cd
        if endrec[0] == getattr(zipfile, "stringEndArchive64", b"PK\x06\x06"):
            concat -= getattr(zipfile, "sizeEndCentDir64", 56) + getattr(zipfile, "sizeEndCentDir64Locator", 20)
    except Exception:  # unreadable end record: zipfile reports it in its own words
        return
    if size_cd > limits.max_central_directory_bytes:
        raise _unsafe(
            f"result zip {source} has a central directory of {size_cd} bytes, over "
            f"max_central_directory_bytes={limits.max_central_directory_bytes}; nothing was written"
        )
    start = offset_cd + concat
    if start < 0:
        return
    archive_fp.seek(start)
    data = archive_fp.read(size_cd)
    position, count, unpack = 0, 0, _CENTRAL_HEADER.unpack_from
    while position + _CENTRAL_HEADER.size <= len(data) and count <= limits.max_entries:
        header = unpack(data, position)
        if header[0] != _CENTRAL_SIGNATURE:
            break  # zipfile raises "Bad magic number" on it
        count += 1
        position += _CENTRAL_HEADER.size + header[12] + header[13] + header[14]
    del data
    if count > limits.max_entries:
        raise _unsafe(
            f"result zip {source} has at least {count} entries, over max_entries={limits.max_entries} (its end "
            f"record declares {int(endrec[4])}); nothing was written"
        )
    archive_fp.seek(0)


# --------------------------------------------------------------------------------------------
# Extraction
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Planned:
    info: zipfile.ZipInfo
    path: str


class _Skips:
    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[tuple[str, str]] = []

    def add(self, name: str, reason: str) -> None:
        self.items.append((name, reason))
        if len(self.items) <= _MAX_SKIP_WARNINGS:
            log.warning("Skipping member %r of result zip %s: %s", name, self.source, reason)

    def summarise(self) -> None:
        if len(self.items) > _MAX_SKIP_WARNINGS:
            log.warning(
                "Skipped %d more members of result zip %s (see ExtractedResult.skipped)",
                len(self.items) - _MAX_SKIP_WARNINGS,
                self.source,
            )


def _plan(
    infos: list[zipfile.ZipInfo], limits: ZipLimits, source: str, skips: _Skips
) -> tuple[list[str], list[_Planned]]:
    """Decide what to write; raise before anything is written when the declared sizes are too big."""
    files: dict[str, str] = {}  # lower-cased path -> path, for files kept
    dirs: dict[str, str] = {}  # lower-cased path -> path, for directories implied or explicit
    offsets: dict[int, str] = {}
    dirs_to_create: list[str] = []
    planned: list[_Planned] = []
    declared_total = 0

    for info in infos:
        name = info.filename
        path, reason = _check_member_path(name)
        if path is None:
            skips.add(name, f"unsafe path ({reason})")
            continue
        depth = path.count("/")
        if depth > limits.max_depth:
            raise _unsafe(
                f"member {_short(name)} of result zip {source} is {depth} folders deep, over "
                f"max_depth={limits.max_depth}; nothing was written"
            )
        file_type = stat.S_IFMT(info.external_attr >> 16)
        if file_type == stat.S_IFLNK:
            skips.add(name, "symbolic link")
            continue
        is_dir = info.is_dir() or file_type == stat.S_IFDIR
        if file_type and file_type not in (stat.S_IFREG, stat.S_IFDIR):
            skips.add(name, f"special file (mode {oct(info.external_attr >> 16)})")
            continue
        if not is_dir:
            earlier = offsets.get(info.header_offset)
            if earlier is not None:
                skips.add(name, f"shares its data with earlier member {earlier!r} (overlapping entries)")
                continue

        # lower(), not casefold(): casefold() maps "ß" to "ss" and would drop Straße.md as a
        # duplicate of Strasse.md; filesystems that ignore case do not fold that way either.
        key = path.lower()
        parts = key.split("/")
        clash = next((files[p] for p in ("/".join(parts[:i]) for i in range(1, len(parts))) if p in files), None)
        if clash is not None:
            skips.add(name, f"needs a directory where earlier file {clash!r} is")
            continue
        if key in files:
            what = "directory collides with" if is_dir else "duplicate of"
            skips.add(name, f"{what} earlier file {files[key]!r}")
            continue
        if is_dir:
            if key not in dirs:
                dirs_to_create.append(path)
            for i in range(1, len(parts) + 1):
                dirs.setdefault("/".join(parts[:i]), path)
            continue
        if key in dirs:
            skips.add(name, f"collides with earlier directory {path!r}")
            continue

        if info.flag_bits & 0x1:
            raise _result_error(f"member {name!r} of result zip {source} is encrypted")
        if info.compress_type not in _STREAMABLE_METHODS:
            method = _METHOD_NAMES.get(info.compress_type, str(info.compress_type))
            raise _result_error(
                f"member {name!r} of result zip {source} uses compression method {method}; only stored "
                "and deflate members can be extracted with bounded memory"
            )
        if info.file_size > limits.max_member_bytes:
            raise _unsafe(
                f"member {name!r} of result zip {source} declares {info.file_size} bytes, over "
                f"max_member_bytes={limits.max_member_bytes}; nothing was written"
            )
        ratio_cap = limits.max_ratio * max(info.compress_size, 1)
        if info.file_size > RATIO_CHECK_MIN_BYTES and info.file_size > ratio_cap:
            raise _unsafe(
                f"member {name!r} of result zip {source} declares {info.file_size} bytes from "
                f"{info.compress_size} compressed, over max_ratio={limits.max_ratio}; nothing was written"
            )
        declared_total += info.file_size
        if declared_total > limits.max_total_bytes:
            raise _unsafe(
                f"result zip {source} declares more than max_total_bytes={limits.max_total_bytes} "
                f"uncompressed bytes (reached at member {name!r}); nothing was written"
            )
        offsets[info.header_offset] = name
        files[key] = path
        for i in range(1, len(parts)):
            dirs.setdefault("/".join(parts[:i]), path)
        planned.append(_Planned(info, path))
    return dirs_to_create, planned


class _Writer:
    """Streams planned members to the target, counting the bytes actually produced."""

    def __init__(self, archive: zipfile.ZipFile, root: Any, limits: ZipLimits, source: str) -> None:
        self.archive = archive
        self.root = root
        self.limits = limits
        self.source = source
        self.total = 0
        self.local_root: pathlib.Path | None = root.resolve() if is_local_path(root) else None
        self._made_dirs: set[str] = set()

    def destination(self, relative: str) -> tuple[Any, str]:
        """The target path for ``relative``, or ``(None, reason)`` when it would resolve elsewhere."""
        dest = join_relative(self.root, relative)
        if self.local_root is not None and not _is_within(dest.resolve(), self.local_root):
            # Only possible through a symlink that was already in the target folder.
            return None, "resolves outside the target (a symlink already in the target folder?)"
        return dest, ""

    def make_dir(self, relative: str) -> None:
        if not relative or relative in self._made_dirs:
            return
        dest = join_relative(self.root, relative)
        try:
            dest.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            if is_local_path(dest):
                raise _result_error(f"cannot create directory {dest}: a file is in the way") from None
        self._made_dirs.add(relative)

    def write(self, planned: _Planned, skips: _Skips) -> int | None:
        """Write one member; return its size, or None when it was skipped."""
        info, relative = planned.info, planned.path
        dest, reason = self.destination(relative)
        if dest is None:
            skips.add(info.filename, reason)
            return None
        try:
            self.make_dir(posixpath.dirname(relative))
            out = dest.open("wb")
        except OSError as exc:
            if exc.errno in _BAD_NAME_ERRNOS:
                skips.add(info.filename, f"name not valid on the target filesystem ({exc.strerror})")
                return None
            raise _result_error(f"cannot write member {info.filename!r} to {dest}: {exc}") from exc
        try:
            with out:
                return self._stream(info, out, dest)
        except BaseException:
            remove_quietly(dest)
            raise

    def _stream(self, info: zipfile.ZipInfo, out: IO[bytes], dest: Any) -> int:
        name, limits = info.filename, self.limits
        where = f"member {name!r} of result zip {self.source}"
        try:
            src = self.archive.open(info)
        except _READ_ERRORS as exc:
            raise _result_error(f"cannot read {where}: {exc}") from exc
        written = 0
        with src:
            while True:
                try:
                    chunk = src.read(CHUNK_SIZE)
                except _READ_ERRORS as exc:
                    raise _result_error(f"cannot read {where} (corrupt or truncated): {exc}") from exc
                if not chunk:
                    break
                written += len(chunk)
                if written > limits.max_member_bytes:
                    raise _unsafe(f"{where} exceeds max_member_bytes={limits.max_member_bytes}")
                if self.total + written > limits.max_total_bytes:
                    raise _unsafe(f"{where} brings the total over max_total_bytes={limits.max_total_bytes}")
                if written > RATIO_CHECK_MIN_BYTES and written > limits.max_ratio * max(info.compress_size, 1):
                    raise _unsafe(f"{where} exceeds max_ratio={limits.max_ratio}")
                if written > info.file_size:
                    raise _unsafe(f"{where} is larger than its declared size {info.file_size}")
                try:
                    out.write(chunk)
                except OSError as exc:
                    raise _result_error(f"cannot write {where} to {dest}: {exc}") from exc
        if written != info.file_size:
            raise _result_error(f"{where} is truncated: {written} of {info.file_size} declared bytes")
        self.total += written
        return written


def extract_result_zip(zip_file: Any, target: Any, *, limits: ZipLimits = DEFAULT_LIMITS) -> ExtractedResult:
    """
    Extract a MinerU result zip under ``target``, safely, streaming each member.

    Unsafe members (absolute or ``..`` paths, drive letters, NUL, symlinks and other special
    files, duplicates, files colliding with directories) are skipped, logged and listed in
    :attr:`ExtractedResult.skipped`; the rest of the result is kept. Size limits are checked on
    the declared sizes before anything is written and again on the bytes actually produced.

    :param zip_file: a local path (``str`` / ``os.PathLike``) or a seekable binary file object.
    :param target: a local folder (``str``, ``os.PathLike``, :class:`pathlib.Path`), a URL string
        (``s3://bucket/prefix``, wrapped in Airflow's ``ObjectStoragePath``), or any path object
        with the pathlib API (``ObjectStoragePath``, ``UPath``). Created if missing.
    :param limits: size and count limits; see :class:`ZipLimits`.
    :raises UnsafeResultZipError: too many entries, a size limit exceeded (the partly written
        member is removed), or no member was safe to write.
    :raises MinerUResultError: not a zip, truncated or corrupt (CRC) data, an encrypted or
        bzip2/LZMA member, no files at all, or the target could not be written.
    """
    if isinstance(zip_file, (bytes, bytearray, memoryview)):
        raise TypeError("zip_file must be a path or a binary file object; wrap zip bytes in io.BytesIO")
    source = _describe_source(zip_file)
    root = storage_path(target, "target")

    own_fp: IO[bytes] | None = None
    try:
        if isinstance(zip_file, (str, os.PathLike)):
            try:
                own_fp = open(zip_file, "rb")  # noqa: SIM115 - closed in the finally below
            except FileNotFoundError as exc:
                raise _result_error(f"result zip {source} does not exist") from exc
            except OSError as exc:
                raise _result_error(f"cannot open result zip {source}: {exc}") from exc
            archive_fp: IO[bytes] | None = own_fp
        else:
            archive_fp = zip_file if callable(getattr(zip_file, "seek", None)) else None

        declared = _declared_entry_count(archive_fp)
        if declared is not None and declared > limits.max_entries:
            raise _unsafe(
                f"result zip {source} declares {declared} entries, over max_entries={limits.max_entries}; "
                "nothing was written"
            )
        _check_central_directory(archive_fp, limits, source)
        with _open_archive(zip_file if archive_fp is None else archive_fp, source) as archive:
            try:
                return _extract(archive, root, limits, source)
            except RecursionError as exc:  # a path library recursing over a hostile name
                raise _unsafe(f"result zip {source} has a member path too deep to handle") from exc
    finally:
        if own_fp is not None:
            own_fp.close()


def _extract(archive: zipfile.ZipFile, root: Any, limits: ZipLimits, source: str) -> ExtractedResult:
    infos = archive.infolist()
    if len(infos) > limits.max_entries:
        raise _unsafe(
            f"result zip {source} has {len(infos)} entries, over max_entries={limits.max_entries}; "
            + "nothing was written"
        )
    skips = _Skips(source)
    dirs_to_create, planned = _plan(infos, limits, source, skips)
    if not planned:
        skips.summarise()
        if skips.items:
            raise _unsafe(
                f"result zip {source} has no member that is safe to extract; skipped: "
                + "; ".join(f"{name!r} ({reason})" for name, reason in skips.items[:5])
                + (" ..." if len(skips.items) > 5 else "")
            )
        raise _result_error(f"result zip {source} contains no files")

    writer = _Writer(archive, root, limits, source)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        if is_local_path(root):
            raise _result_error(f"target {root} exists and is not a directory") from None
    except OSError as exc:
        raise _result_error(f"cannot create target {root}: {exc}") from exc
    for relative in dirs_to_create:
        writer.make_dir(relative)

    written: list[str] = []
    for item in planned:
        if writer.write(item, skips) is not None:
            written.append(item.path)
    skips.summarise()
    if not written:
        raise _unsafe(f"result zip {source}: no member could be written to {root}")

    files = tuple(written)
    log.info("Extracted %d files (%d bytes) from result zip %s to %s", len(files), writer.total, source, root)
    return ExtractedResult.of(str(root), files, tuple(skips.items), writer.total)
