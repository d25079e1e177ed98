"""
What decides a document's result: :class:`LedgerKey`, and hashing an input's bytes in bounded memory.

A key holds three things, and its :attr:`LedgerKey.id` (the sha256 of its canonical JSON) names the
ledger entry:

- **content**: for a file, the sha256 of its bytes; for a URL, the URL plus the validators its
  server gave to a HEAD request (``ETag``, ``Last-Modified``). A URL whose server gives neither
  cannot be told unchanged (:attr:`LedgerKey.verifiable` is False) and is never reused.
- **options**: the parsing options that change MinerU's output (:data:`OUTPUT_OPTIONS`), after the
  per-file ones (``is_ocr``, ``page_ranges``) are applied. Derived from
  :class:`~airflow_provider_mineru.clients.v4_wire.ParseOptions`: every field counts unless it is
  listed in :data:`NON_OUTPUT_OPTIONS` with the reason, so a new option is safe by default (it
  re-parses). An option left unset (None, MinerU's default) and the same value set explicitly are
  different keys: MinerU's defaults may change, and a needless re-parse costs pages, never a wrong
  answer.
- **flavor**: the connection's ``api_flavor`` (the cloud and a ``mineru-api`` server give different
  results for the same bytes).

Nothing here does I/O except :func:`sha256_of_stream` and :func:`sha256_of_file`.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import IO, Any

from airflow_provider_mineru.clients.v4_wire import OPTION_NAMES, ParseOptions
from airflow_provider_mineru.utils.sealing import canonical_json
from airflow_provider_mineru.utils.storage_paths import storage_path

__all__ = [
    "KEY_VERSION",
    "NON_OUTPUT_OPTIONS",
    "OUTPUT_OPTIONS",
    "LedgerKey",
    "output_options",
    "sha256_of_file",
    "sha256_of_stream",
    "url_validators",
]

#: Bumped when the key's canonical form changes: every entry of an older form is then "new".
KEY_VERSION = 1

#: Options that do not change what MinerU returns for given content, and why.
NON_OUTPUT_OPTIONS: Mapping[str, str] = {
    "callback": "where MinerU posts the finished result; the result is the same",
    "seed": "signs the callback; the result is the same",
    "no_cache": "whether MinerU re-fetches a URL; the key already names the content it fetches (URL and validators)",
    "cache_tolerance": "how long MinerU keeps a fetched URL; as no_cache",
}

#: Per-file options that change the output (``data_id`` does not: it names the folder only).
PER_FILE_OUTPUT_OPTIONS: tuple[str, ...] = ("is_ocr", "page_ranges")

#: Every option that changes MinerU's output: :data:`OPTION_NAMES` minus :data:`NON_OUTPUT_OPTIONS`, plus page_ranges.
OUTPUT_OPTIONS: tuple[str, ...] = tuple(
    dict.fromkeys([n for n in OPTION_NAMES if n not in NON_OUTPUT_OPTIONS] + list(PER_FILE_OUTPUT_OPTIONS))
)

#: The response headers a URL's content is identified by, besides the URL.
VALIDATOR_HEADERS: tuple[str, ...] = ("etag", "last-modified")

_CHUNK = 1024 * 1024


def _normal(name: str, value: Any) -> Any:
    if name == "extra_formats":
        return sorted({str(v) for v in value})
    if name == "page_ranges":
        return "".join(str(value).split())
    if isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def output_options(
    options: ParseOptions | Mapping[str, Any] | None, per_file: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """
    The options of one input that change its result, in canonical form (unset ones left out).

    :param options: the batch-wide options (a :class:`ParseOptions` or a mapping of its fields).
    :param per_file: the input's own ``is_ocr`` / ``page_ranges`` (they override the batch's);
        ``data_id`` and other keys that do not change the output are ignored.
    """
    if options is None:
        merged: dict[str, Any] = {}
    elif isinstance(options, ParseOptions):
        merged = {f.name: getattr(options, f.name) for f in fields(options)}
    else:
        merged = dict(options)
    for name in PER_FILE_OUTPUT_OPTIONS:
        if per_file and per_file.get(name) is not None:
            merged[name] = per_file[name]
    return {n: _normal(n, merged[n]) for n in OUTPUT_OPTIONS if merged.get(n) is not None}


def url_validators(headers: Mapping[str, str] | None) -> dict[str, str]:
    """The ``ETag`` and ``Last-Modified`` of a HEAD answer (header names in any case); weak ETags kept as given."""
    lowered = {str(k).lower(): str(v).strip() for k, v in (headers or {}).items()}
    return {name: lowered[name] for name in VALIDATOR_HEADERS if lowered.get(name)}


@dataclass(frozen=True)
class LedgerKey:
    """
    What decides one document's result; :attr:`id` names its ledger entry.

    Build one with :meth:`for_file` or :meth:`for_url`.

    :param kind: ``"file"`` or ``"url"``.
    :param content: the sha256 (hex) of a file's bytes, or the URL.
    :param validators: a URL's ``etag`` / ``last-modified`` as ``((name, value), ...)``; empty for files.
    :param options: :func:`output_options` as ``((name, value), ...)``, sorted.
    :param flavor: the connection's ``api_flavor``.
    """

    kind: str
    content: str
    validators: tuple[tuple[str, str], ...]
    options: tuple[tuple[str, Any], ...]
    flavor: str
    version: int = KEY_VERSION

    @classmethod
    def for_file(
        cls,
        sha256: str,
        options: ParseOptions | Mapping[str, Any] | None,
        flavor: str,
        per_file: Mapping[str, Any] | None = None,
    ) -> LedgerKey:
        """The key of a file whose bytes hash to ``sha256`` (see :func:`sha256_of_file`)."""
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a lowercase sha256 hex digest: {sha256!r}")
        return cls("file", sha256, (), _pairs(output_options(options, per_file)), flavor)

    @classmethod
    def for_url(
        cls,
        url: str,
        head_headers: Mapping[str, str] | None,
        options: ParseOptions | Mapping[str, Any] | None,
        flavor: str,
        per_file: Mapping[str, Any] | None = None,
    ) -> LedgerKey:
        """
        The key of a document URL.

        :param head_headers: the headers of the caller's HEAD request to ``url`` (None when it
            failed): only ``ETag`` and ``Last-Modified`` are kept.
        """
        return cls("url", url, _pairs(url_validators(head_headers)), _pairs(output_options(options, per_file)), flavor)

    @property
    def verifiable(self) -> bool:
        """Whether an unchanged content can be told: always for files; for URLs, when the server gave a validator."""
        return self.kind == "file" or bool(self.validators)

    def same_content(self, other: LedgerKey) -> bool:
        """Whether ``other`` names the same content (whatever the options)."""
        return (self.kind, self.content, self.validators) == (other.kind, other.content, other.validators)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "kind": self.kind,
            "content": self.content,
            "validators": dict(self.validators),
            "options": dict(self.options),
            "flavor": self.flavor,
        }

    @classmethod
    def from_dict(cls, data: Any) -> LedgerKey | None:
        """The key of :meth:`to_dict`'s output, or None for anything else (another version included)."""
        if not isinstance(data, Mapping) or data.get("version") != KEY_VERSION:
            return None
        kind, content, flavor = data.get("kind"), data.get("content"), data.get("flavor")
        validators, options = data.get("validators"), data.get("options")
        if kind not in ("file", "url") or not all(isinstance(v, str) for v in (content, flavor)):
            return None
        if not isinstance(validators, Mapping) or not isinstance(options, Mapping):
            return None
        return cls(kind, content, _pairs(validators), _pairs(options), flavor)

    @functools.cached_property
    def id(self) -> str:
        """The sha256 (hex) of the key's canonical JSON: the entry's file name."""
        return hashlib.sha256(canonical_json(self.to_dict()).encode("utf-8")).hexdigest()

    def describe(self) -> str:
        """A short text for logs: the content and the options."""
        what = f"sha256 {self.content[:12]}…" if self.kind == "file" else self.content
        return f"{what} with {dict(self.options) or 'default options'} ({self.flavor})"


def _pairs(mapping: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((str(k), _freeze(v)) for k, v in mapping.items()))


def _freeze(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def sha256_of_stream(handle: IO[bytes], chunk_size: int = _CHUNK) -> str:
    """The sha256 (hex) of everything left in ``handle``, read ``chunk_size`` bytes at a time."""
    digest = hashlib.sha256()
    while True:
        block = handle.read(chunk_size)
        if not block:
            return digest.hexdigest()
        digest.update(block)


def sha256_of_file(location: Any, chunk_size: int = _CHUNK) -> str:
    """The sha256 (hex) of a local or object-storage file, streamed in ``chunk_size`` reads (bounded memory)."""
    with storage_path(location, "location").open("rb") as handle:
        return sha256_of_stream(handle, chunk_size)
