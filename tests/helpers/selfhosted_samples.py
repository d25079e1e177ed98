"""
Small documents for the self-hosted suites, written on the fly: DOCX, HTML (with an embedded
image), CSV, a text PDF and a "scanned" PNG; each carries its own words so a test can check that
the Markdown of each document holds that document's text.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

#: The words each sample carries, by file name.
TEXTS = {
    "memo.docx": "Quarterly memo about zebra migration",
    "page.html": "The lighthouse keeper logs weather daily",
    "table.csv": "Reykjavik",
    "report.pdf": "Glacier survey of the northern fjords",
}
SCAN = "scan.png"
#: The text PDF's two pages: enough text per page that mineru-api's flash tier reads its text layer
#: (a page with a line or two is taken for a scan and sent to OCR).
REPORT_PAGES = [
    [
        TEXTS["report.pdf"],
        "The survey team measured the retreat of eleven glaciers between May and August.",
        "Each glacier front was mapped with a handheld GPS receiver and photographed from fixed points.",
        "Meltwater discharge was recorded twice a day at the outlet of every valley.",
        "The results show an average retreat of forty metres compared with the previous season.",
    ],
    [
        "Methods and equipment",
        "Temperatures were logged every ten minutes by sensors placed on the ice surface.",
        "Snow depth was probed along transects of one hundred metres on each glacier.",
        "All measurements are archived with the regional environmental agency for public use.",
    ],
]

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    'officeDocument" Target="word/document.xml"/></Relationships>'
)


def make_docx(path: Path, *paragraphs: str) -> Path:
    """A minimal Word document (one ``w:p`` per paragraph) that python-docx and MinerU read."""
    body = "".join(f"<w:p><w:r><w:t>{p}</w:t></w:r></w:p>" for p in paragraphs)
    document = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        f"<w:body>{body}</w:body></w:document>"
    )
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _RELS)
        archive.writestr("word/document.xml", document)
    return path


def _png() -> bytes:
    from mineru_emulator._samples import sample_document

    data = sample_document("scanned_receipt.png")
    assert data is not None
    return data


def write_samples(folder: Path, *, scan: bool = True) -> dict[str, str]:
    """Write the samples into ``folder``; return ``{file name: the words it carries}``."""
    from mineru_emulator._pdf import make_pdf

    folder.mkdir(parents=True, exist_ok=True)
    make_docx(folder / "memo.docx", TEXTS["memo.docx"], "Second paragraph of the memo.")
    image = base64.b64encode(_png()).decode("ascii")
    (folder / "page.html").write_text(
        "<html><body><h1>Lighthouse keepers</h1>"
        f"<p>{TEXTS['page.html']}.</p>"
        f'<img src="data:image/png;base64,{image}" alt="a receipt">'
        "<p>After the picture.</p></body></html>",
        "utf-8",
    )
    (folder / "table.csv").write_text("city,population\nReykjavik,131000\nNuuk,19000\n", "utf-8")
    (folder / "report.pdf").write_bytes(make_pdf(REPORT_PAGES))
    if scan:
        (folder / SCAN).write_bytes(_png())
    return dict(TEXTS)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def file_server(folder: Path) -> Iterator[str]:
    """Serve ``folder`` on a free loopback port (plain HTTP); yields its root URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
