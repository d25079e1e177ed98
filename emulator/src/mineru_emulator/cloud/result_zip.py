"""
Build MinerU-like result zips.

Members, as the live service writes them: ``full.md``, ``images/<sha256>.jpg``,
``<prefix>_content_list.json``, ``layout.json``, ``<prefix>_model.json``,
``<prefix>_origin.pdf`` and, when asked, ``<prefix>.docx`` / ``.html`` / ``.tex``.

For a PDF the text is the document's own, extracted page by page with pypdf (imported lazily):
every non-empty line becomes a paragraph, the first line of the document becomes the ``#``
title, and runs of two or more lines containing ``" | "`` become an HTML table (MinerU writes
tables as HTML).
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import zipfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from mineru_emulator._pdf import make_pdf

_TABLE_SEPARATOR = " | "
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass
class Block:
    """One reading-order block of the result."""

    type: str  # "title" | "text" | "table" | "image"
    page_idx: int
    text: str = ""
    rows: list[list[str]] = field(default_factory=list)  # tables
    img_path: str = ""  # images


@dataclass
class ResultSpec:
    """Everything needed to build one result zip."""

    source_path: str
    kind: str  # "pdf" | "image" | "office" | "html"
    file_name: str
    member_prefix: str
    pages: list[int]  # 0-based selected pages (PDF); [0] otherwise
    total_pages: int
    size: int
    extra_formats: list[str]
    model_version: str = "pipeline"


# -- reading the input ---------------------------------------------------------------------------


def _lines_to_blocks(lines: list[str], page_idx: int, *, first_is_title: bool) -> list[Block]:
    blocks: list[Block] = []
    table: list[list[str]] = []

    def flush_table() -> None:
        if len(table) >= 2:
            blocks.append(Block("table", page_idx, rows=[row[:] for row in table]))
        else:
            blocks.extend(Block("text", page_idx, text=" | ".join(row)) for row in table)
        table.clear()

    for index, line in enumerate(lines):
        if _TABLE_SEPARATOR in line:
            table.append([cell.strip() for cell in line.split("|")])
            continue
        flush_table()
        kind = "title" if first_is_title and index == 0 else "text"
        blocks.append(Block(kind, page_idx, text=line))
    flush_table()
    return blocks


def pdf_page_texts(path: str, pages: list[int]) -> list[tuple[int, list[str]]]:
    """The non-empty, stripped text lines of each selected page (pypdf, imported lazily)."""
    from pypdf import PdfReader

    reader = PdfReader(path)
    out: list[tuple[int, list[str]]] = []
    for index in pages:
        try:
            text = reader.pages[index].extract_text() or ""
        except Exception:  # a page pypdf cannot read yields no text, not a failed task
            text = ""
        out.append((index, [line.strip() for line in text.splitlines() if line.strip()]))
    return out


class _HtmlText(HTMLParser):
    """Collect headings and paragraphs of an HTML page."""

    _BLOCK_TAGS = frozenset({"p", "li", "h1", "h2", "h3", "h4", "h5", "h6", "td", "th", "title", "div"})

    def __init__(self) -> None:
        super().__init__()
        self.items: list[tuple[str, str]] = []
        self._stack: list[str] = []
        self._buffer: list[str] = []
        self._skip = 0

    def _flush(self) -> None:
        text = " ".join("".join(self._buffer).split())
        if text:
            tag = self._stack[-1] if self._stack else "p"
            self.items.append((tag, text))
        self._buffer = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in self._BLOCK_TAGS:
            self._flush()
            self._stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif tag in self._BLOCK_TAGS:
            self._flush()
            if self._stack:
                self._stack.pop()

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self._buffer.append(data)


def _blocks_for(spec: ResultSpec, images: dict[str, bytes]) -> list[Block]:
    if spec.kind == "pdf":
        blocks: list[Block] = []
        first = True
        for page_idx, lines in pdf_page_texts(spec.source_path, spec.pages):
            blocks += _lines_to_blocks(lines, page_idx, first_is_title=first and bool(lines))
            first = first and not lines
        return blocks
    if spec.kind == "image":
        with open(spec.source_path, "rb") as handle:
            data = handle.read()
        name = f"images/{hashlib.sha256(data).hexdigest()}.jpg"
        images[name] = data
        return [
            Block("image", 0, img_path=name),
            Block("text", 0, text=f"Text recognised in {spec.file_name} ({spec.size} bytes)."),
        ]
    if spec.kind == "html":
        parser = _HtmlText()
        with open(spec.source_path, encoding="utf-8", errors="replace") as handle:
            parser.feed(handle.read())
        parser.close()
        out = [Block("title" if tag in ("title", "h1") else "text", 0, text=text) for tag, text in parser.items]
        return out or [Block("title", 0, text=spec.file_name)]
    return [
        Block("title", 0, text=spec.file_name),
        Block("text", 0, text=f"Office document {spec.file_name} ({spec.size} bytes), converted to PDF."),
    ]


# -- rendering -----------------------------------------------------------------------------------


def _table_html(rows: list[list[str]]) -> str:
    head, *body = rows
    cells = "".join(f"<th>{html.escape(cell)}</th>" for cell in head)
    out = [f"<table><tr>{cells}</tr>"]
    for row in body:
        out.append("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>")
    out.append("</table>")
    return "".join(out)


def _markdown(blocks: list[Block]) -> str:
    parts: list[str] = []
    for block in blocks:
        if block.type == "title":
            parts.append(f"# {block.text}")
        elif block.type == "table":
            parts.append(_table_html(block.rows))
        elif block.type == "image":
            parts.append(f"![]({block.img_path})")
        else:
            parts.append(block.text)
    return "\n\n".join(parts) + "\n"


def _bboxes(blocks: list[Block]) -> list[list[int]]:
    """Plausible boxes in MinerU's 0-1000 page coordinates, top to bottom per page."""
    boxes: list[list[int]] = []
    row: dict[int, int] = {}
    for block in blocks:
        k = row.get(block.page_idx, 0)
        row[block.page_idx] = k + 1
        height = 30 * max(1, len(block.rows)) if block.type == "table" else (200 if block.type == "image" else 24)
        top = min(900, 80 + 40 * k)
        boxes.append([110, top, 890, min(990, top + height)])
    return boxes


def _content_list(blocks: list[Block], boxes: list[list[int]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for block, bbox in zip(blocks, boxes, strict=True):
        if block.type == "table":
            item: dict[str, Any] = {
                "type": "table",
                "img_path": "",
                "table_caption": [],
                "table_footnote": [],
                "table_body": _table_html(block.rows),
            }
        elif block.type == "image":
            item = {"type": "image", "img_path": block.img_path, "image_caption": [], "image_footnote": []}
        elif block.type == "title":
            item = {"type": "text", "text": block.text, "text_level": 1}
        else:
            item = {"type": "text", "text": block.text}
        item["bbox"] = bbox
        item["page_idx"] = block.page_idx
        out.append(item)
    return out


_CATEGORY = {"title": 0, "text": 1, "image": 3, "table": 5}


def _model_json(blocks: list[Block], boxes: list[list[int]], pages: list[int]) -> list[dict[str, Any]]:
    per_page: dict[int, list[dict[str, Any]]] = {page: [] for page in pages}
    for block, (x0, y0, x1, y1) in zip(blocks, boxes, strict=True):
        per_page.setdefault(block.page_idx, []).append(
            {
                "category_id": _CATEGORY[block.type],
                "poly": [x0, y0, x1, y0, x1, y1, x0, y1],
                "score": 0.97,
            }
        )
    return [
        {"layout_dets": dets, "page_info": {"page_no": page, "width": 612, "height": 792}}
        for page, dets in sorted(per_page.items())
    ]


def _layout_json(blocks: list[Block], boxes: list[list[int]], pages: list[int], model_version: str) -> dict[str, Any]:
    per_page: dict[int, list[dict[str, Any]]] = {page: [] for page in pages}
    for index, (block, bbox) in enumerate(zip(blocks, boxes, strict=True)):
        content = block.text or (_table_html(block.rows) if block.rows else block.img_path)
        span_type = {"table": "table", "image": "image"}.get(block.type, "text")
        per_page.setdefault(block.page_idx, []).append(
            {
                "type": block.type,
                "bbox": bbox,
                "index": index,
                "lines": [{"bbox": bbox, "spans": [{"bbox": bbox, "type": span_type, "content": content}]}],
            }
        )
    return {
        "pdf_info": [
            {"page_idx": page, "page_size": [612, 792], "para_blocks": items, "discarded_blocks": []}
            for page, items in sorted(per_page.items())
        ],
        "_backend": model_version,
        "_version_name": "emulator",
    }


def _xml_text(text: str) -> str:
    return html.escape(_INVALID_XML.sub("", text), quote=False)


def _docx(blocks: list[Block]) -> bytes:
    """A minimal but valid Office Open XML document with the text of ``blocks``."""
    import io

    paragraphs: list[str] = []
    for block in blocks:
        if block.type == "table":
            texts = [" | ".join(row) for row in block.rows]
        elif block.type == "image":
            texts = [f"[image {block.img_path}]"]
        else:
            texts = [block.text]
        for text in texts:
            props = '<w:rPr><w:b/><w:sz w:val="32"/></w:rPr>' if block.type == "title" else ""
            paragraphs.append(f'<w:p><w:r>{props}<w:t xml:space="preserve">{_xml_text(text)}</w:t></w:r></w:p>')
    document = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
        + "".join(paragraphs)
        + "<w:sectPr/></w:body></w:document>"
    )
    content_types = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/word/document.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
    )
    rels = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/officeDocument" Target="word/document.xml"/></Relationships>'
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", content_types)
        zf.writestr("_rels/.rels", rels)
        zf.writestr("word/document.xml", document)
    return buffer.getvalue()


def _html_page(blocks: list[Block], title: str) -> str:
    body: list[str] = []
    for block in blocks:
        if block.type == "title":
            body.append(f"<h1>{html.escape(block.text)}</h1>")
        elif block.type == "table":
            body.append(_table_html(block.rows))
        elif block.type == "image":
            body.append(f'<img src="{html.escape(block.img_path)}" alt="">')
        else:
            body.append(f"<p>{html.escape(block.text)}</p>")
    return (
        '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )


_TEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def _tex_escape(text: str) -> str:
    return "".join(_TEX_SPECIAL.get(char, char) for char in text)


def _latex(blocks: list[Block]) -> str:
    body: list[str] = []
    for block in blocks:
        if block.type == "title":
            body.append(f"\\section*{{{_tex_escape(block.text)}}}")
        elif block.type == "table":
            columns = max(len(row) for row in block.rows)
            lines = [" & ".join(_tex_escape(cell) for cell in row) + r" \\" for row in block.rows]
            body.append(f"\\begin{{tabular}}{{{'l' * columns}}}\n" + "\n".join(lines) + "\n\\end{tabular}")
        elif block.type == "image":
            body.append(f"% image: {block.img_path}")
        else:
            body.append(_tex_escape(block.text))
    return (
        "\\documentclass{article}\n\\usepackage[utf8]{inputenc}\n\\begin{document}\n\n"
        + "\n\n".join(body)
        + "\n\n\\end{document}\n"
    )


def build_result_zip(spec: ResultSpec, out_path: str) -> None:
    """Write the result zip of ``spec`` to ``out_path`` (atomically: a temp file, then rename)."""
    images: dict[str, bytes] = {}
    blocks = _blocks_for(spec, images)
    boxes = _bboxes(blocks)
    prefix = spec.member_prefix
    pages = spec.pages or [0]
    tmp_path = out_path + ".part"
    with zipfile.ZipFile(tmp_path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("full.md", _markdown(blocks))
        for name, data in images.items():
            zf.writestr(name, data)
        zf.writestr(f"{prefix}_content_list.json", json.dumps(_content_list(blocks, boxes), ensure_ascii=False))
        zf.writestr("layout.json", json.dumps(_layout_json(blocks, boxes, pages, spec.model_version)))
        zf.writestr(f"{prefix}_model.json", json.dumps(_model_json(blocks, boxes, pages)))
        if spec.kind == "pdf":
            zf.write(spec.source_path, f"{prefix}_origin.pdf")
        else:
            lines = [block.text or block.img_path or " | ".join(block.rows[0]) for block in blocks]
            zf.writestr(f"{prefix}_origin.pdf", make_pdf([lines[:45]]))
        if "docx" in spec.extra_formats:
            zf.writestr(f"{prefix}.docx", _docx(blocks))
        if "html" in spec.extra_formats:
            zf.writestr(f"{prefix}.html", _html_page(blocks, spec.file_name))
        if "latex" in spec.extra_formats:
            zf.writestr(f"{prefix}.tex", _latex(blocks))
    os.replace(tmp_path, out_path)


_UNSAFE_STEM = re.compile(r"[\x00-\x1f/\\:*?\"<>|]+")


def member_stem(file_name: str, fallback: str) -> str:
    """A safe member-name prefix from an input's name: its stem without path or odd characters."""
    last = file_name.replace("\\", "/").rsplit("/", 1)[-1]
    stem = os.path.splitext(last)[0]
    stem = _UNSAFE_STEM.sub("_", stem).strip(". ")
    return stem or fallback
