"""
MinerU-like results, public: what the emulator's result zips contain, for tests of clients.

::

    from mineru_emulator.results import ResultSpec, build_result_zip, make_pdf

    pdf = make_pdf([["Annual report", "Revenue grew."], ["Second page"]])
    ...  # write it to a file, then
    build_result_zip(ResultSpec.for_pdf("report.pdf", path), "report.zip")

Members, as the live service writes them: ``full.md``, ``images/<sha256>.jpg``,
``<prefix>_content_list.json``, ``layout.json``, ``<prefix>_model.json``,
``<prefix>_origin.pdf`` and, when asked, ``<prefix>.docx`` / ``.html`` / ``.tex``.

For a PDF the text is the document's own, extracted page by page with pypdf (imported lazily):
every non-empty line becomes a paragraph; a line set in a bold font or in a font clearly larger
than the page's body text becomes a ``#`` title (judged on that page alone, so a slice of a
document has the titles the whole document has on those pages); runs of two or more lines
containing ``" | "`` become an HTML table (MinerU writes tables as HTML). With
``images_per_page``, every page with text also gets that many figures, named as MinerU names
them: ``images/<sha256 of "<page_idx>_<x0>_<y0>_<x1>_<y1>">.jpg``, so two parses whose
``page_idx`` start at 0 (the parts of a locally split PDF) give the same names to different
images, as the live service does.
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

from mineru_emulator._pdf import make_pdf, make_png

__all__ = [
    "Block",
    "ResultSpec",
    "build_result_zip",
    "make_pdf",
    "make_png",
    "member_stem",
    "mineru_image_name",
    "page_lines",
    "pdf_page_lines",
]

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
    bbox: list[int] | None = None  # where it must sit (figures named after their box)


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
    images_per_page: int = 0  # PDF: figures added to every page that has text

    @classmethod
    def for_pdf(
        cls,
        file_name: str,
        source_path: str,
        *,
        pages: list[int] | None = None,
        images_per_page: int = 0,
        extra_formats: list[str] | None = None,
        member_prefix: str | None = None,
    ) -> ResultSpec:
        """The spec of a PDF's result: every page (or the 0-based ``pages``), the input's stem as prefix."""
        from pypdf import PdfReader

        total = len(PdfReader(source_path).pages)
        return cls(
            source_path=source_path,
            kind="pdf",
            file_name=file_name,
            member_prefix=member_prefix or member_stem(file_name, "result"),
            pages=list(range(total)) if pages is None else list(pages),
            total_pages=total,
            size=os.path.getsize(source_path),
            extra_formats=list(extra_formats or []),
            images_per_page=images_per_page,
        )


# -- reading the input ---------------------------------------------------------------------------


def _lines_to_blocks(lines: list[tuple[str, bool]], page_idx: int) -> list[Block]:
    """One page's blocks from its ``(text, is_heading)`` lines."""
    blocks: list[Block] = []
    table: list[list[str]] = []

    def flush_table() -> None:
        if len(table) >= 2:
            blocks.append(Block("table", page_idx, rows=[row[:] for row in table]))
        else:
            blocks.extend(Block("text", page_idx, text=" | ".join(row)) for row in table)
        table.clear()

    for line, heading in lines:
        if _TABLE_SEPARATOR in line:
            table.append([cell.strip() for cell in line.split("|")])
            continue
        flush_table()
        blocks.append(Block("title" if heading else "text", page_idx, text=line))
    flush_table()
    return blocks


#: A fragment in a font this much larger than the page's body text is a heading.
_HEADING_SCALE = 1.25


def page_lines(page: Any) -> list[tuple[str, bool]]:
    """
    One pypdf page's non-empty, stripped lines, each with whether it is a heading.

    A heading is a line whose every fragment is set in a bold font, or in a font at least
    :data:`_HEADING_SCALE` times the page's body size (the size of most of its characters).
    Judged on the page alone: the same page gives the same titles in any slice of its document.
    """
    fragments: list[tuple[str, float, bool]] = []

    def visit(text: str, cm: Any, tm: Any, font: Any, size: float) -> None:
        if text.strip():
            name = str(font.get("/BaseFont", "")) if font else ""
            scale = abs(float(tm[3])) if tm and tm[3] else 1.0
            fragments.append((text.strip(), float(size or 0) * scale, "bold" in name.lower()))

    try:
        text = page.extract_text(visitor_text=visit) or ""
    except Exception:  # a page pypdf cannot read yields no text, not a failed task
        return []
    weights: dict[float, int] = {}
    for fragment, size, _ in fragments:
        weights[size] = weights.get(size, 0) + len(fragment)
    body = max(weights, key=lambda size: (weights[size], -size)) if weights else 0.0
    verdicts: dict[str, bool] = {}
    for fragment, size, bold in fragments:
        heading = bold or (body > 0 and size >= body * _HEADING_SCALE)
        verdicts[fragment] = verdicts.get(fragment, True) and heading
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return [(line, verdicts.get(line, False)) for line in lines]


def pdf_page_lines(path: str, pages: list[int]) -> list[tuple[int, list[tuple[str, bool]]]]:
    """The ``(text, is_heading)`` lines of each selected page (0-based), in the order of ``pages``."""
    from pypdf import PdfReader

    reader = PdfReader(path)
    return [(index, page_lines(reader.pages[index])) for index in pages]


def pdf_page_texts(path: str, pages: list[int]) -> list[tuple[int, list[str]]]:
    """The non-empty, stripped text lines of each selected page (pypdf, imported lazily)."""
    return [(index, [text for text, _ in lines]) for index, lines in pdf_page_lines(path, pages)]


#: Where the figures of ``images_per_page`` sit, in MinerU's 0-1000 page coordinates.
def _figure_bbox(number: int) -> list[int]:
    top = 520 + 110 * (number % 4)
    return [300, top, 700, top + 100]


def mineru_image_name(page_idx: int, bbox: list[int]) -> str:
    """MinerU's name of a figure: the SHA-256 of ``"<page_idx>_<x0>_<y0>_<x1>_<y1>"``, ``.jpg``."""
    key = f"{page_idx}_{bbox[0]}_{bbox[1]}_{bbox[2]}_{bbox[3]}"
    return f"images/{hashlib.sha256(key.encode()).hexdigest()}.jpg"


def _figure(lines: list[tuple[str, bool]], page_idx: int, number: int) -> bytes:
    """A small image whose pixels depend on the page's text: different pages, different bytes."""
    seed = hashlib.sha256("\n".join(text for text, _ in lines).encode() + b"#%d" % number).digest()
    return make_png(8, 8, lambda x, y: (seed[(x + 8 * y) % 32], seed[(x * 3 + y) % 32], seed[(y * 5 + x) % 32]))


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
        for page_idx, lines in pdf_page_lines(spec.source_path, spec.pages):
            blocks += _lines_to_blocks(lines, page_idx)
            for number in range(spec.images_per_page if lines else 0):
                bbox = _figure_bbox(number)
                name = mineru_image_name(page_idx, bbox)
                images[name] = _figure(lines, page_idx, number)
                blocks.append(Block("image", page_idx, img_path=name, bbox=bbox))
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
        if block.bbox is not None:
            boxes.append(list(block.bbox))
            continue
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
    for block, bbox in zip(blocks, boxes, strict=True):
        content = block.text or (_table_html(block.rows) if block.rows else block.img_path)
        span_type = {"table": "table", "image": "image"}.get(block.type, "text")
        items = per_page.setdefault(block.page_idx, [])
        items.append(
            {
                "type": block.type,
                "bbox": bbox,
                "index": len(items),  # numbered per page, as MinerU numbers them
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
