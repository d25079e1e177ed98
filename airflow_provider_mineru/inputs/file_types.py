"""
Is a file what its extension says? Judged by its first bytes (its "magic"), before it is uploaded.

MinerU judges a file by its name, takes the upload, and only then fails a ``.pdf`` that is not a
PDF (``-60002``/``-60003``) — after the upload, and possibly after billing. :func:`check_head`
refuses it first. Only the first :data:`HEAD_BYTES` bytes are read (by the caller: see
:meth:`airflow_provider_mineru.inputs.sources.SourceFile.head`); nothing here does I/O.

The rules, per extension (an extension without a rule is not checked):

======================================  =============================================================
extension                               the first bytes must be
======================================  =============================================================
``.pdf``                                ``%PDF-`` within the first 1,024 bytes (PDF readers, and the
                                        PDF spec's implementation notes, allow junk before the header)
``.docx .pptx .xlsx``                   a zip archive: ``PK\\x03\\x04`` (Office Open XML)
``.odt .ods .odp .epub .ofd``           a zip archive: ``PK\\x03\\x04``
``.doc .ppt .xls``                      an OLE2 compound file ``D0 CF 11 E0 A1 B1 1A E1``; also a zip
                                        (an OOXML file saved under the old extension), and for ``.doc``
                                        and ``.xls`` RTF (``{\\rtf``, ``.doc``) or markup (``<`` after an
                                        optional BOM and whitespace: Word/Excel 2003 XML, or the HTML
                                        that web exports name ``.xls``): Office and LibreOffice, which
                                        MinerU converts with, open them all
``.rtf``                                ``{\\rtf``
``.png``                                ``\\x89PNG\\r\\n\\x1a\\n``
``.jpg .jpeg``                          ``FF D8 FF``
``.gif``                                ``GIF87a`` or ``GIF89a``
``.bmp``                                ``BM``
``.tif .tiff``                          ``II*\\x00`` or ``MM\\x00*``
``.webp``                               ``RIFF`` + 4 bytes + ``WEBP``
``.jp2``                                the JPEG 2000 signature box or a bare codestream (``FF 4F FF 51``)
``.html .htm .shtml .mht .mhtml``       text, leniently: no NUL byte (UTF-16 with a byte-order mark is
``.csv .tsv``                           text too). The encoding is not checked: a legacy code page passes
======================================  =============================================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

#: Bytes read from the start of each file: enough for every rule above.
HEAD_BYTES = 1024

PDF_MAGIC = b"%PDF-"
ZIP_MAGIC = b"PK\x03\x04"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
RTF_MAGIC = b"{\\rtf"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
_JP2_MAGIC = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
_J2K_MAGIC = b"\xff\x4f\xff\x51"
_GIF_MAGIC = (b"GIF87a", b"GIF89a")
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*")
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def _is_markup(head: bytes) -> bool:
    """``<`` after an optional UTF-8 byte-order mark and whitespace (XML, HTML)."""
    return head.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n").startswith(b"<")


def _is_text(head: bytes) -> bool:
    """Lenient: text unless a NUL byte shows it is binary (UTF-16 with a byte-order mark is text)."""
    return head.startswith(_UTF16_BOMS) or b"\x00" not in head


@dataclass(frozen=True)
class FileType:
    """
    What files of some extensions must start with.

    :param expected: the rule in words, for the error message.
    :param matches: whether a file's first bytes follow the rule.
    """

    expected: str
    matches: Callable[[bytes], bool]


_PDF = FileType("a PDF: '%PDF-' within its first 1024 bytes", lambda h: PDF_MAGIC in h[:HEAD_BYTES])
_ZIP = FileType(
    "a zip archive (Office Open XML / OpenDocument): it starts with 'PK\\x03\\x04'", lambda h: h.startswith(ZIP_MAGIC)
)
_LEGACY_OFFICE = FileType(
    "a legacy Office file: an OLE2 compound file (D0 CF 11 E0 A1 B1 1A E1), or a zip (OOXML)",
    lambda h: h.startswith((OLE2_MAGIC, ZIP_MAGIC)),
)
_DOC = FileType(
    "a Word document: an OLE2 compound file (D0 CF 11 E0 A1 B1 1A E1), a zip (OOXML), RTF ('{\\rtf') or markup",
    lambda h: h.startswith((OLE2_MAGIC, ZIP_MAGIC, RTF_MAGIC)) or _is_markup(h),
)
_XLS = FileType(
    "an Excel workbook: an OLE2 compound file (D0 CF 11 E0 A1 B1 1A E1), a zip (OOXML) or markup (XML, HTML)",
    lambda h: h.startswith((OLE2_MAGIC, ZIP_MAGIC)) or _is_markup(h),
)
_TEXT = FileType("text (no NUL bytes, unless UTF-16 with a byte-order mark)", _is_text)

#: The rule of each extension MinerU (cloud or ``mineru-api``) takes; see the module's table.
FILE_TYPES: dict[str, FileType] = {
    ".pdf": _PDF,
    **dict.fromkeys((".docx", ".pptx", ".xlsx", ".odt", ".ods", ".odp", ".epub", ".ofd"), _ZIP),
    ".doc": _DOC,
    ".ppt": _LEGACY_OFFICE,
    ".xls": _XLS,
    ".rtf": FileType("RTF: it starts with '{\\rtf'", lambda h: h.startswith(RTF_MAGIC)),
    ".png": FileType("a PNG image: it starts with 89 50 4E 47 0D 0A 1A 0A", lambda h: h.startswith(PNG_MAGIC)),
    **dict.fromkeys(
        (".jpg", ".jpeg"), FileType("a JPEG image: it starts with FF D8 FF", lambda h: h.startswith(JPEG_MAGIC))
    ),
    ".gif": FileType("a GIF image: it starts with 'GIF87a' or 'GIF89a'", lambda h: h.startswith(_GIF_MAGIC)),
    ".bmp": FileType("a BMP image: it starts with 'BM'", lambda h: h.startswith(b"BM")),
    **dict.fromkeys(
        (".tif", ".tiff"),
        FileType("a TIFF image: it starts with 'II*\\x00' or 'MM\\x00*'", lambda h: h.startswith(_TIFF_MAGIC)),
    ),
    ".webp": FileType("a WebP image: 'RIFF', 4 bytes, 'WEBP'", lambda h: h[:4] == b"RIFF" and h[8:12] == b"WEBP"),
    ".jp2": FileType("a JPEG 2000 image", lambda h: h.startswith((_JP2_MAGIC, _J2K_MAGIC))),
    **dict.fromkeys((".html", ".htm", ".shtml", ".mht", ".mhtml", ".csv", ".tsv"), _TEXT),
}

#: What a file's first bytes say it is, tried in order (for the error message only).
_LOOKS_LIKE: tuple[tuple[str, Callable[[bytes], bool]], ...] = (
    ("a PDF", lambda h: PDF_MAGIC in h),
    ("a zip archive", lambda h: h.startswith(ZIP_MAGIC)),
    ("an OLE2 file (legacy Office)", lambda h: h.startswith(OLE2_MAGIC)),
    ("a PNG image", lambda h: h.startswith(PNG_MAGIC)),
    ("a JPEG image", lambda h: h.startswith(JPEG_MAGIC)),
    ("a GIF image", lambda h: h.startswith(_GIF_MAGIC)),
    ("RTF", lambda h: h.startswith(RTF_MAGIC)),
    ("gzip data", lambda h: h.startswith(b"\x1f\x8b")),
    ("HTML or XML", _is_markup),
    ("text", _is_text),
)


def looks_like(head: bytes) -> str:
    """A guess at what the bytes are (``a PNG image``, ``HTML or XML``, ``text``, ``binary data``)."""
    return next((name for name, test in _LOOKS_LIKE if test(head)), "binary data")


def check_head(extension: str, head: bytes) -> str | None:
    """
    Why a file of ``extension`` starting with ``head`` is not what its extension says, or None.

    :param extension: the lower-case extension with its dot (``.pdf``); one without a rule passes.
    :param head: the file's first bytes (at least :data:`HEAD_BYTES` of them when the file is that long).
    :return: e.g. ``"a .pdf file must be a PDF: '%PDF-' within its first 1024 bytes; this one looks like
        HTML or XML (starts with b'<html><body>Not')"``.
    """
    rule = FILE_TYPES.get(extension)
    if rule is None or rule.matches(head):
        return None
    return (
        f"a {extension} file must be {rule.expected}; this one looks like {looks_like(head)} "
        f"(starts with {head[:16]!r}). Not uploaded: MinerU would refuse it only after the upload"
    )
