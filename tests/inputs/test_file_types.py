"""Every file type MinerU takes, judged by its first bytes (``file_types.py``): what passes, what is refused."""

from __future__ import annotations

import pytest

from airflow_provider_mineru.inputs.file_types import FILE_TYPES, HEAD_BYTES, check_head, looks_like
from airflow_provider_mineru.inputs.validation import HTML_EXTENSIONS, SELF_HOSTED_EXTENSIONS, SUPPORTED_EXTENSIONS
from mineru_emulator._pdf import make_pdf, make_png

OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 40
ZIP = b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 40
PNG = make_png(2, 2, lambda x, y: (255, 255, 255))
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 40
HTML = b"\xef\xbb\xbf  \n<!DOCTYPE html><html><body>hi</body></html>"

GOOD: dict[str, list[bytes]] = {
    ".pdf": [make_pdf([["one page"]]), b"\r\n" * 100 + b"%PDF-1.7\n"],
    ".docx": [ZIP],
    ".pptx": [ZIP],
    ".xlsx": [ZIP],
    ".odt": [ZIP],
    ".ods": [ZIP],
    ".odp": [ZIP],
    ".epub": [ZIP],
    ".ofd": [ZIP],
    ".doc": [OLE2, ZIP, b"{\\rtf1\\ansi hello}", b'<?xml version="1.0"?><w:wordDocument>'],
    ".ppt": [OLE2, ZIP],
    ".xls": [OLE2, ZIP, b"\xef\xbb\xbf\r\n<html><table><tr><td>1</td></tr>", b"<?xml version='1.0'?><Workbook>"],
    ".rtf": [b"{\\rtf1\\ansi hello}"],
    ".png": [PNG],
    ".jpg": [JPEG],
    ".jpeg": [JPEG],
    ".gif": [b"GIF89a\x01\x00\x01\x00", b"GIF87a\x01\x00"],
    ".bmp": [b"BM" + b"\x00" * 40],
    ".tiff": [b"II*\x00" + b"\x00" * 8, b"MM\x00*" + b"\x00" * 8],
    ".webp": [b"RIFF\x24\x00\x00\x00WEBPVP8 "],
    ".jp2": [b"\x00\x00\x00\x0cjP  \r\n\x87\n\x00", b"\xff\x4f\xff\x51\x00"],
    ".html": [HTML, "<p>naïve</p>".encode("utf-16"), b"plain text, no tag", "<p>caf\xe9</p>".encode("latin-1")],
    ".htm": [HTML],
    ".shtml": [HTML],
    ".mht": [b"From: <Saved by Blink>\r\nMIME-Version: 1.0\r\n"],
    ".mhtml": [b"MIME-Version: 1.0\r\n"],
    ".csv": [b"a,b\n1,2\n"],
    ".tsv": [b"a\tb\n1\t2\n"],
}


def test_every_extension_minerU_takes_has_a_rule():
    every = SUPPORTED_EXTENSIONS | HTML_EXTENSIONS | SELF_HOSTED_EXTENSIONS
    assert every <= set(FILE_TYPES), sorted(every - set(FILE_TYPES))
    assert every <= set(GOOD), sorted(every - set(GOOD))


@pytest.mark.parametrize(("extension", "head"), [(e, h) for e, heads in GOOD.items() for h in heads])
def test_files_that_are_what_their_extension_says_pass(extension, head):
    assert check_head(extension, head[:HEAD_BYTES]) is None


@pytest.mark.parametrize(
    ("extension", "head", "expected", "found"),
    [
        (".pdf", b"<html><body>403 Forbidden</body></html>", "a PDF", "HTML or XML"),
        (".pdf", PNG, "a PDF", "a PNG image"),
        (".pdf", b"\r\n" * 600 + b"%PDF-1.7", "a PDF", "text"),  # the header past the first 1024 bytes
        (".docx", OLE2, "a zip archive", "an OLE2 file"),
        (".pptx", b"%PDF-1.4\n", "a zip archive", "a PDF"),
        (".xlsx", b"a,b\n1,2\n", "a zip archive", "text"),
        (".doc", b"%PDF-1.4\n", "a Word document", "a PDF"),
        (".ppt", b"{\\rtf1}", "a legacy Office file", "RTF"),
        (".ppt", b"<html>", "a legacy Office file", "HTML or XML"),
        (".xls", b"%PDF-1.4\n", "an Excel workbook", "a PDF"),
        (".doc", b"hello, plain text", "a Word document", "text"),
        (".png", JPEG, "a PNG image", "a JPEG image"),
        (".jpg", PNG, "a JPEG image", "a PNG image"),
        (".jpeg", b"GIF89a", "a JPEG image", "a GIF image"),
        (".html", ZIP, "text", "a zip archive"),
        (".htm", b"\x1f\x8b\x08\x00" + b"\x00" * 20, "text", "gzip data"),
        (".csv", b"\x00\x01\x02\x03", "text", "binary data"),
        (".webp", b"RIFF\x24\x00\x00\x00WAVEfmt ", "a WebP image", "binary data"),
    ],
)
def test_a_file_that_is_not_what_its_extension_says_is_refused_with_what_was_expected(extension, head, expected, found):
    problem = check_head(extension, head[:HEAD_BYTES])  # the caller reads at most HEAD_BYTES
    assert problem is not None
    assert problem.startswith(f"a {extension} file must be {expected}")
    assert f"this one looks like {found}" in problem
    assert "Not uploaded" in problem


def test_an_extension_without_a_rule_is_not_checked_and_guesses_are_short():
    assert check_head(".xyz", b"\x00\x01") is None
    assert looks_like(b"") == "text"
    problem = check_head(".pdf", b"A" * 5000)
    assert problem is not None and "b'AAAAAAAAAAAAAAAA'" in problem and "A" * 17 not in problem


def test_the_sample_documents_and_the_generators_pass(tmp_path):
    from pathlib import Path

    from airflow_provider_mineru.inputs.file_types import check_head
    from airflow_provider_mineru.inputs.validation import document_extension
    from mineru_emulator._samples import sample_document, sample_names
    from tests.helpers.selfhosted_samples import write_samples

    samples = Path(__file__).resolve().parents[2] / "dags" / "sample_documents"
    shipped = sorted(samples.iterdir())
    assert shipped, "dags/sample_documents is empty"
    for path in shipped:
        assert check_head(path.suffix.lower(), path.read_bytes()[:HEAD_BYTES]) is None, path.name
    for name in sample_names():
        assert check_head(document_extension(name), (sample_document(name) or b"")[:HEAD_BYTES]) is None, name
    write_samples(tmp_path)
    for path in sorted(tmp_path.iterdir()):
        assert check_head(path.suffix.lower(), path.read_bytes()[:HEAD_BYTES]) is None, path.name
