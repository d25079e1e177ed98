"""
Client-side checks of everything MinerU would refuse, run before any request so no quota is spent.

Each check raises :class:`~airflow_provider_mineru.exceptions.MinerUValidationError` naming the
field, the value and the limit. The limits that move over time live in :class:`MinerULimits`
and can be set per connection.
"""

from __future__ import annotations

import difflib
import os
import posixpath
import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlparse

from airflow_provider_mineru.connection.config import MIB, MinerULimits
from airflow_provider_mineru.exceptions import MinerUValidationError
from airflow_provider_mineru.inputs.pdf_pages import count_pdf_pages as count

#: File types MinerU parses (judged by the URL path or the file name, case-insensitive).
SUPPORTED_EXTENSIONS: frozenset[str] = frozenset({".pdf", ".doc", ".docx", ".ppt", ".pptx", ".png", ".jpg", ".jpeg"})
#: Extra types accepted with ``model_version="MinerU-HTML"``.
HTML_EXTENSIONS: frozenset[str] = frozenset({".html", ".htm"})
EXTRA_FORMATS: frozenset[str] = frozenset({"docx", "html", "latex"})
MODEL_VERSIONS: frozenset[str] = frozenset({"pipeline", "vlm", "MinerU-HTML"})
#: The extension profile of the open-source ``mineru-api`` server (connection ``api_flavor``).
SELF_HOSTED_PROFILE = "mineru-api"
#: File types ``mineru-api`` 4.0 parses (``mineru.filetypes.PARSEABLE_EXTENSIONS``).
SELF_HOSTED_EXTENSIONS: frozenset[str] = frozenset(
    "." + ext
    for ext in [
        "bmp",
        "csv",
        "doc",
        "docx",
        "epub",
        "gif",
        "htm",
        "html",
        "jp2",
        "jpeg",
        "jpg",
        "mht",
        "mhtml",
        "odp",
        "ods",
        "odt",
        "ofd",
        "pdf",
        "png",
        "ppt",
        "pptx",
        "rtf",
        "shtml",
        "tiff",
        "tsv",
        "webp",
        "xls",
        "xlsx",
    ]
)


def allowed_extensions(model_version: str | None = None) -> frozenset[str]:
    """
    The file types accepted: MinerU cloud's, plus HTML with ``model_version="MinerU-HTML"``, or
    :data:`SELF_HOSTED_EXTENSIONS` for the profile :data:`SELF_HOSTED_PROFILE`.
    """
    if model_version == SELF_HOSTED_PROFILE:
        return SELF_HOSTED_EXTENSIONS
    return SUPPORTED_EXTENSIONS | (HTML_EXTENSIONS if model_version == "MinerU-HTML" else frozenset())


#: ``language``: the PP-OCRv5 codes MinerU's API reference points to ("PaddleOCR Multi Languages",
#: seeds/000: https://www.paddleocr.ai/latest/en/version3.x/algorithm/PP-OCRv5/PP-OCRv5_multi_languages.html
#: section 4, "Supported Languages and Abbreviations"; PaddlePaddle/PaddleOCR
#: docs/version3.x/algorithm/PP-OCRv5/PP-OCRv5_multi_languages.en.md).
PADDLEOCR_LANGUAGES: frozenset[str] = frozenset(
    """
    ch en fr de japan korean chinese_cht af it es bs pt cs cy da et ga hr uz ru uk hu rs_latin id oc is
    lt mi ms nl no pl sk sl sq sv sw tl tr la be th el az ku lv mt pi ro vi fi eu gl lb rm ca qu te sr
    bg mn ab ady kbd av dar inh ce lki lez tab kk ky tg mk tt cv ba mhr mo udm kv os bua xal tyv sah
    kaa ar fa ug ur ps sd bal hi mr ne bh mai ang bho mah sck new gom sa bgc ta
    """.split()  # noqa: SIM905 (a list of codes reads better as words)
)
#: ``language``: what MinerU's own OCR takes besides (opendatalab/MinerU: the language choices of
#: ``mineru/cli/gradio_app.py``, ``other_lang`` + ``add_lang``, and the aliases it maps to a model in
#: ``mineru/model/ocr/pytorch_paddle.py``: ``latin_lang``, ``arabic_lang``, ``cyrillic_lang``,
#: ``east_slavic_lang``, ``devanagari_lang``).
MINERU_OCR_LANGUAGES: frozenset[str] = frozenset(
    """
    ch ch_server ch_lite en korean japan chinese_cht ta te ka th el latin arabic east_slavic cyrillic
    devanagari french german rs_cyrillic abq ava che lbe
    """.split()  # noqa: SIM905 (a list of codes reads better as words)
)
#: Every ``language`` accepted: a value outside it is refused before any request.
LANGUAGES: frozenset[str] = PADDLEOCR_LANGUAGES | MINERU_OCR_LANGUAGES
#: Names people write instead of a code, and the code they mean (for the error's suggestion only).
_LANGUAGE_HINTS = {
    "zh": "ch",
    "cn": "ch",
    "chinese": "ch",
    "zh-cn": "ch",
    "zh_cn": "ch",
    "zh-hans": "ch",
    "zh-tw": "chinese_cht",
    "zh_tw": "chinese_cht",
    "zh-hant": "chinese_cht",
    "english": "en",
    "ja": "japan",
    "jp": "japan",
    "japanese": "japan",
    "ko": "korean",
    "kr": "korean",
    "russian": "ru",
    "spanish": "es",
    "arabic": "arabic",
    "hindi": "hi",
    "greek": "el",
    "thai": "th",
    "tamil": "ta",
    "telugu": "te",
    "kannada": "ka",
}

_DATA_ID_RE = re.compile(r"[A-Za-z0-9_.\-]{1,128}")
_SEED_RE = re.compile(r"[A-Za-z0-9_]{1,64}")
# ASCII digits and spaces only: ``\d`` alone would take ``１-３`` (full-width digits).
_PAGE_NUMBER = r"-?[0-9]+"
_PAGE_ITEM_RE = re.compile(rf"[ \t]*({_PAGE_NUMBER})[ \t]*(?:(-)[ \t]*({_PAGE_NUMBER})?[ \t]*)?", re.ASCII)
#: An id MinerU gives (task, batch) as it may appear in a URL path: no ``/ ? # %``, no dot segments.
_PATH_ID_RE = re.compile(r"[A-Za-z0-9_.\-]{1,256}", re.ASCII)
#: Characters that reorder how text is displayed (Trojan-source style names) or mark direction.
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def validate_data_id(value: str, field: str = "data_id") -> str:
    """``data_id``: 1–128 characters of letters, digits, ``_``, ``-`` and ``.``."""
    if not isinstance(value, str) or not _DATA_ID_RE.fullmatch(value):
        raise MinerUValidationError(field, value, "must be 1-128 characters of A-Z a-z 0-9 _ - .")
    return value


def validate_path_id(value: str, field: str) -> str:
    """
    A MinerU id that goes into a URL path (``task_id``, ``batch_id``): 1-256 of ``[A-Za-z0-9_.-]``,
    not ``.`` or ``..``, so it can neither change the path nor add a query or fragment.
    """
    if not isinstance(value, str) or not _PATH_ID_RE.fullmatch(value) or value.strip(".") == "":
        raise MinerUValidationError(
            field, value, "must be a MinerU id: 1-256 characters of A-Z a-z 0-9 _ - . (not '.' or '..')"
        )
    return value


def _unsafe_character(value: str) -> str | None:
    """The first control or bidi-override character of ``value`` as ``U+XXXX``, or None."""
    for char in value:
        if char in BIDI_CONTROLS or unicodedata.category(char) == "Cc":
            return f"U+{ord(char):04X}"
    return None


def validate_file_name(value: str, field: str) -> str:
    """A file name sent to MinerU (and logged): no control characters, no bidi overrides."""
    bad = _unsafe_character(value) if isinstance(value, str) else None
    if bad:
        raise MinerUValidationError(
            field, value, f"the file name contains the control or bidi-override character {bad}; rename the file"
        )
    return value


def _refuse_url_controls(value: str, field: str) -> None:
    bad = _unsafe_character(value)
    if bad or " " in value:
        raise MinerUValidationError(
            field, value, f"the URL contains {bad or 'a space'}; percent-encode it (e.g. %0A, %20)"
        )


def validate_seed(value: str, field: str = "seed") -> str:
    """``seed``: 1–64 characters of letters, digits and ``_``."""
    if not isinstance(value, str) or not _SEED_RE.fullmatch(value):
        raise MinerUValidationError(field, value, "must be 1-64 characters of A-Z a-z 0-9 _")
    return value


def parse_page_ranges(value: str, field: str = "page_ranges") -> list[tuple[int, int | None]]:
    """
    Parse a MinerU page selection into ``(start, end)`` items; ``end`` is None for an open range.

    Items are comma-separated: ``N``, ``N-M`` or ``N-``; a negative number counts from the end
    (``-2`` is the next-to-last page), so ``2--2`` and ``2 - -2`` mean "page 2 to the next-to-last".
    Page 0 does not exist.
    """
    if not isinstance(value, str) or not value.strip():
        raise MinerUValidationError(field, value, "must be a non-empty string such as '1-5,8' or '2--2'")
    items: list[tuple[int, int | None]] = []
    for item in value.split(","):
        match = _PAGE_ITEM_RE.fullmatch(item)
        if not match:
            raise MinerUValidationError(
                field, value, f"item {item.strip()!r} is not N, N-M or N- (negative N counts from the end)"
            )
        start = int(match.group(1))
        end: int | None = start
        if match.group(2):
            end = int(match.group(3)) if match.group(3) is not None else None
        if start == 0 or end == 0:
            raise MinerUValidationError(field, value, "pages are numbered from 1 (or -1 for the last page)")
        if end is not None and start > 0 and end > 0 and end < start:
            raise MinerUValidationError(field, value, f"range {start}-{end} ends before it starts")
        items.append((start, end))
    return items


def select_pages(ranges: Sequence[tuple[int, int | None]], total_pages: int) -> list[int]:
    """The 1-based page numbers a parsed selection picks from a document of ``total_pages``."""

    def resolve(number: int) -> int:
        return number if number > 0 else total_pages + 1 + number

    pages: list[int] = []
    for start, end in ranges:
        first = resolve(start)
        last = total_pages if end is None else resolve(end)
        pages.extend(p for p in range(max(first, 1), min(last, total_pages) + 1) if p not in pages)
    return pages


def validate_page_ranges(value: str, field: str = "page_ranges") -> str:
    """Check ``page_ranges`` syntax and return it stripped."""
    parse_page_ranges(value, field)
    return value.strip()


def validate_extra_formats(value: Iterable[str], field: str = "extra_formats") -> list[str]:
    if isinstance(value, str):
        raise MinerUValidationError(field, value, "must be a list, e.g. ['docx', 'html']")
    formats = list(value)
    unknown = [f for f in formats if f not in EXTRA_FORMATS]
    if unknown:
        raise MinerUValidationError(field, formats, f"each item must be one of {sorted(EXTRA_FORMATS)}")
    return formats


def validate_model_version(value: str, field: str = "model_version") -> str:
    if value not in MODEL_VERSIONS:
        raise MinerUValidationError(field, value, f"must be one of {sorted(MODEL_VERSIONS)}")
    return value


def language_suggestions(value: str) -> list[str]:
    """Up to three codes of :data:`LANGUAGES` close to ``value`` (``"EN"`` → ``en``, ``"japanese"`` → ``japan``)."""
    text = value.strip().lower()
    close = difflib.get_close_matches(text, sorted(LANGUAGES | _LANGUAGE_HINTS.keys()), n=3, cutoff=0.6)
    found = [_LANGUAGE_HINTS.get(word, word) for word in ([text] if text in LANGUAGES else []) + close]
    if text in _LANGUAGE_HINTS:
        found.insert(0, _LANGUAGE_HINTS[text])
    return list(dict.fromkeys(found))[:3]


def validate_language(value: str, field: str = "language") -> str:
    """
    ``language``: one of :data:`LANGUAGES` (PaddleOCR's PP-OCRv5 codes and MinerU's OCR languages);
    the error suggests close matches.
    """
    if not isinstance(value, str) or not value.strip():
        raise MinerUValidationError(field, value, "must be a non-empty PaddleOCR language code such as 'ch' or 'en'")
    code = value.strip()
    if code not in LANGUAGES:
        close = language_suggestions(code)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
        raise MinerUValidationError(
            field,
            value,
            f"not a language MinerU knows. {hint}Use a PaddleOCR language code such as 'ch' (Chinese and English, "
            "the default), 'en', 'japan', 'korean', 'chinese_cht', 'fr', 'de', 'latin', 'arabic', 'cyrillic' "
            "(the full list: airflow_provider_mineru.inputs.validation.LANGUAGES)",
        )
    return code


def validate_callback(value: str, field: str = "callback") -> str:
    parsed = urlparse(value) if isinstance(value, str) else None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise MinerUValidationError(field, value, "must be an http:// or https:// URL")
    _refuse_url_controls(value, field)
    return value


def validate_bool(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise MinerUValidationError(field, value, "must be true or false")
    return value


def validate_cache_tolerance(value: Any, field: str = "cache_tolerance") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MinerUValidationError(field, value, "must be a whole number of seconds, 0 or more")
    return value


def document_extension(name_or_url: str) -> str:
    """The lower-case extension of a file name or of a URL's path (query and fragment ignored)."""
    path = urlparse(name_or_url).path if "://" in name_or_url else name_or_url
    return posixpath.splitext(path.replace("\\", "/").rstrip("/"))[1].lower()


def validate_extension(name_or_url: str, field: str, model_version: str | None = None) -> str:
    """Check the file type MinerU will judge by the name or URL path."""
    if not isinstance(name_or_url, str) or not name_or_url.strip():
        raise MinerUValidationError(field, name_or_url, "must be a non-empty file name or URL")
    allowed = allowed_extensions(model_version)
    extension = document_extension(name_or_url)
    if extension not in allowed:
        raise MinerUValidationError(
            field, name_or_url, f"unsupported file type {extension or '(none)'!r}; MinerU takes {sorted(allowed)}"
        )
    return name_or_url


def validate_url(value: str, field: str = "url", model_version: str | None = None) -> str:
    """A document URL: http(s), with a supported extension on its path."""
    parsed = urlparse(value) if isinstance(value, str) else None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise MinerUValidationError(field, value, "must be an http:// or https:// URL MinerU can fetch")
    _refuse_url_controls(value.strip(), field)
    validate_extension(value, field, model_version)
    return value.strip()


def validate_batch_size(count: int, limits: MinerULimits, field: str = "files") -> None:
    if count == 0:
        raise MinerUValidationError(field, count, "a batch needs at least one file")
    if count > limits.max_batch_files:
        raise MinerUValidationError(
            field, f"{count} files", f"at most {limits.max_batch_files} files per MinerU batch call"
        )


def validate_unique_names(names: Sequence[str], field: str = "files") -> None:
    """Two files of one upload batch must not share a name: MinerU reports results by file name."""
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        if name in seen:
            raise MinerUValidationError(
                f"{field}[{index}].name", name, f"duplicate of {field}[{seen[name]}]: names in one batch must be unique"
            )
        seen[name] = index


def validate_file_size(size: int, limits: MinerULimits, field: str) -> None:
    if size <= 0:
        raise MinerUValidationError(field, f"{size} bytes", "the file is empty; MinerU rejects empty files (-60004)")
    if size > limits.max_file_bytes:
        raise MinerUValidationError(
            field,
            f"{size / MIB:.1f} MB",
            f"larger than MinerU's limit of {limits.max_file_bytes / MIB:g} MB per file (-60005)",
        )


def count_pdf_pages(path: str | os.PathLike[str]) -> int | None:
    """
    Page count of a local PDF, or None when it cannot be read cheaply (MinerU will judge it).

    Bounded reads of the trailer and page tree only: see :mod:`airflow_provider_mineru.inputs.pdf_pages`.

    :param path: the PDF.
    """

    return count(path)


def validate_page_count(pages: int | None, limits: MinerULimits, field: str, page_ranges: str | None = None) -> None:
    """A document over ``max_pages`` is refused unless ``page_ranges`` selects few enough pages."""
    if pages is None or pages <= limits.max_pages:
        return
    if page_ranges:
        selected = len(select_pages(parse_page_ranges(page_ranges), pages))
        if selected <= limits.max_pages:
            return
    raise MinerUValidationError(
        field, f"{pages} pages", f"more than MinerU's limit of {limits.max_pages} pages per document (-60006)"
    )
