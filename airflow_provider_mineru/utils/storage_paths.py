"""
Local disk or object storage: the one rule every module uses to tell them apart.

- A string with a URL scheme of two or more letters (``s3://``, ``gs://``, ``memory://``) is object
  storage; ``file://…`` and plain paths are local disk (one letter before ``:`` is a drive).
- An ``ObjectStoragePath``, ``UPath`` or alike is object storage, also on Airflow 2, whose
  ``ObjectStoragePath`` subclasses ``pathlib.Path``: the ``protocol`` attribute tells.
"""

from __future__ import annotations

import os
import pathlib
import re
from typing import Any

#: A URL scheme (``s3://``, ``file://``, ``memory://``); one letter is a drive, not a scheme.
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]+://")


def is_local_location(text: str) -> bool:
    """Whether a location written as text is on local disk (a plain path or a ``file://`` URL)."""
    return not _SCHEME_RE.match(text) or text.startswith("file://")


def local_path_text(text: str) -> str:
    """A local location as a plain path: ``file://`` dropped (``~`` is left to the caller)."""
    return text.removeprefix("file://")


def is_object_storage_path(value: Any) -> bool:
    """Whether ``value`` is a path object of object storage (``ObjectStoragePath``, ``UPath``…), not text."""
    if isinstance(value, (str, bytes)):
        return False
    if getattr(value, "protocol", None):
        return True
    return not isinstance(value, os.PathLike) and hasattr(value, "open") and hasattr(value, "stat")


def is_local_path(value: Any) -> bool:
    """Whether ``value`` is a plain local ``pathlib.Path`` (not a ``UPath`` or Airflow 2 ``ObjectStoragePath``)."""
    return isinstance(value, pathlib.Path) and not hasattr(value, "protocol")


def storage_path(value: Any, field: str = "path") -> Any:
    """
    A local ``pathlib.Path`` (``~`` expanded) or an ``ObjectStoragePath`` for ``value``; None stays None.

    :param value: text, ``os.PathLike``, or a path object with the pathlib API (returned as it is).
    :param field: what ``value`` is, for the error message.
    :raises TypeError: ``value`` is none of these.
    """
    if value is None:
        return None
    if isinstance(value, bytes):
        value = os.fsdecode(value)
    if not isinstance(value, (str, os.PathLike)):
        if all(callable(getattr(value, attr, None)) for attr in ("open", "mkdir", "__truediv__")):
            return value  # ObjectStoragePath, UPath, ...
        raise TypeError(f"{field} must be text, a path or a path object, not {type(value).__name__}")
    if isinstance(value, pathlib.Path):
        return value
    text = os.fsdecode(os.fspath(value))
    if not is_local_location(text):
        # lazy: Airflow's ObjectStoragePath costs ~100 ms at DAG-parse time and is needed only for object storage
        from airflow_provider_mineru.version_compat import ObjectStoragePath

        return ObjectStoragePath(text)
    return pathlib.Path(local_path_text(text)).expanduser()


def relative_key(path: Any, root: Any) -> str | None:
    """
    ``path`` relative to ``root`` as ``a/b.md``, or None when it cannot be told.

    Compared as the paths' bucket-and-key text: Airflow 2.11's ``ObjectStoragePath.relative_to``
    answers differently from 3.x's, which once made every new file look stale.
    """

    def key(value: Any) -> str:
        text = getattr(value, "path", None)
        return str(text if isinstance(text, str) else value).rstrip("/")

    base, full = key(root) + "/", key(path)
    return full[len(base) :] if full.startswith(base) else None


def join_relative(root: Any, relative: str) -> Any:
    """``root / "a" / "b.md"`` for ``relative`` ``"a/b.md"`` (one ``/`` per component, for any path type)."""
    dest = root
    for part in relative.split("/"):
        dest = dest / part
    return dest


#: Characters never used in a folder or file name we make.
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.\-]+")


def safe_name(text: str, limit: int = 120) -> str:
    """``text`` with every run of characters outside ``[A-Za-z0-9_.-]`` replaced by ``_``, cut to ``limit``."""
    return _UNSAFE_NAME_CHARS.sub("_", text)[:limit]
