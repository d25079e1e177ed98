"""
Tasks and files of the emulated ``mineru-api`` server, kept in memory like the real one. No HTTP.

:class:`MinerUApiState` is the server's memory: the tasks, the ids of their output files, the
retention, a restart. A task's files are parsed one after another (``concurrency`` 1): each spends ``Timings.per_file``
seconds ``running``; states are computed lazily from timestamps, so no thread runs per task. What a
file becomes is decided when it is submitted (:func:`parse_document`): a result (Markdown, blocks,
images) or a per-file error, as the real flash tier decides it from the bytes.
"""

from __future__ import annotations

import base64
import csv
import io
import re
import threading
import zipfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

#: Types the flash tier parses without model weights (``mineru.filetypes``: flash-only).
FLASH_ONLY = frozenset(
    "csv doc docx epub htm html mht mhtml odp ods odt ofd ppt pptx rtf shtml tsv xls xlsx".split()  # noqa: SIM905
)
#: Types that need a quality tier (PDFs) or OCR weights (images).
NEEDS_TIER = frozenset("bmp gif jp2 jpeg jpg pdf png tiff webp".split())  # noqa: SIM905
IMAGES = NEEDS_TIER - {"pdf"}
#: Fewer characters of text layer per selected page than this and the flash tier takes the PDF
#: for a scan and tries OCR (the real server sends a PDF with a line or two per page to OCR).
MIN_TEXT_PER_PAGE = 100
PARSEABLE = FLASH_ONLY | NEEDS_TIER
TERMINAL = frozenset({"completed", "partial", "failed", "canceled"})
_WEIGHTS_ERROR = (
    "[E1020] Connection failed: cannot download the OCR model weights (OpenDataLab/MinerU-4_models_onnx): "
    "this server has no network access"
)


@dataclass
class Timings:
    """
    Seconds each phase takes in the emulated server.

    :param queued: a task's time in ``queued``.
    :param per_file: ``running`` time of each parseable file.
    :param ocr_failure: ``running`` time of a file that needs OCR weights before it fails (~20 s live).
    """

    queued: float = 0.2
    per_file: float = 0.3
    ocr_failure: float = 1.0

    @classmethod
    def fast(cls) -> Timings:
        return cls(queued=0.02, per_file=0.03, ocr_failure=0.05)


@dataclass
class Outcome:
    """What parsing one file gives: Markdown and blocks per page, images, or an error."""

    markdown: str = ""
    pages: list[list[dict[str, Any]]] = field(default_factory=list)
    images: dict[str, bytes] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    slow: bool = False  # fails only after the OCR-weights attempt


@dataclass
class FileRecord:
    name: str
    file_id: str | None
    page_range: str
    outcome: Outcome
    output_ids: dict[str, str] = field(default_factory=dict)


@dataclass
class TaskRecord:
    task_id: str
    created: float
    tier: str
    ocr_mode: str
    output_formats: list[str]
    files: list[FileRecord]
    canceled_at: float | None = None

    def durations(self, timings: Timings) -> list[float]:
        return [timings.ocr_failure if f.outcome.slow else timings.per_file for f in self.files]

    def file_status(self, index: int, now: float, timings: Timings) -> str:
        """``queued``, ``running``, ``completed`` or ``failed`` of file ``index`` at ``now``."""
        start = self.created + timings.queued + sum(self.durations(timings)[:index])
        end = start + self.durations(timings)[index]
        cut = self.canceled_at if self.canceled_at is not None else float("inf")
        if now < start or cut < start:
            return "queued"
        if now < end or cut < end:
            return "running"
        return "failed" if self.files[index].outcome.error else "completed"

    def status(self, now: float, timings: Timings) -> str:
        states = [self.file_status(i, now, timings) for i in range(len(self.files))]
        if self.canceled_at is not None and any(s in ("queued", "running") for s in states):
            return "canceled"
        if all(s == "queued" for s in states):
            return "queued"
        if any(s in ("queued", "running") for s in states):
            return "running"
        failed = states.count("failed")
        return "completed" if not failed else ("failed" if failed == len(states) else "partial")

    def finished_at(self, timings: Timings) -> float:
        return self.created + timings.queued + sum(self.durations(timings))


class MinerUApiState:
    """
    What the server remembers (until a restart): tasks and the output files they name.

    :param lock: the lock guarding it (the emulator's); callers hold it around a read-modify-write.
    :param timings: how long tasks stay queued and files running.
    :param retention_seconds: finished tasks are forgotten this long after they finished.
    """

    def __init__(self, lock: threading.RLock, timings: Timings, retention_seconds: float) -> None:
        self.lock = lock
        self.timings = timings
        self.retention_seconds = retention_seconds
        self.restarts = 0
        self._forget_all()

    def _forget_all(self) -> None:
        self.tasks: dict[str, TaskRecord] = {}
        self.file_ids: dict[str, dict[tuple[int, str], str]] = {}
        self._outputs: dict[str, tuple[str, int, str]] = {}

    def restart(self) -> None:
        """What a restart of the real server does: every task and file is forgotten."""
        with self.lock:
            self._forget_all()
            self.restarts += 1

    def add(self, task: TaskRecord) -> None:
        """Keep a new task and name its output files (one per file and output format)."""
        with self.lock:
            self.tasks[task.task_id] = task
            ids: dict[tuple[int, str], str] = {}
            for index in range(len(task.files)):
                for fmt in task.output_formats:
                    file_id = f"file-{task.task_id[4:16]}{index:04d}{fmt[:2]}"
                    ids[(index, fmt)] = file_id
                    self._outputs[file_id] = (task.task_id, index, fmt)
            self.file_ids[task.task_id] = ids

    def _collect_expired(self, now: float) -> None:
        for task_id, task in list(self.tasks.items()):
            if (
                task.status(now, self.timings) in TERMINAL
                and task.finished_at(self.timings) + self.retention_seconds <= now
            ):
                del self.tasks[task_id]
                for file_id in self.file_ids.pop(task_id, {}).values():
                    self._outputs.pop(file_id, None)

    def task(self, task_id: str, now: float) -> TaskRecord | None:
        """The task, unless unknown or past its retention at ``now``."""
        with self.lock:
            self._collect_expired(now)
            return self.tasks.get(task_id)

    def output(self, file_id: str, now: float) -> tuple[TaskRecord, int, str] | None:
        """``(task, file index, format)`` of an output file whose file is completed at ``now``, else None."""
        with self.lock:
            self._collect_expired(now)
            owner = self._outputs.get(file_id)
            task = self.tasks.get(owner[0]) if owner else None
            if owner is None or task is None or task.file_status(owner[1], now, self.timings) != "completed":
                return None
            return task, owner[1], owner[2]


def extension(name: str) -> str:
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def _error(code: str, message: str, error_type: str = "engine_error") -> dict[str, Any]:
    return {"type": error_type, "code": code, "message": message, "param": None}


def _blocks_from_lines(lines: list[str], *, title_first: bool) -> list[dict[str, Any]]:
    blocks = []
    for index, line in enumerate(lines):
        if index == 0 and title_first:
            blocks.append({"type": "doc_title", "level": 1, "content": line})
        else:
            blocks.append({"type": "text", "content": line})
    return blocks


class _Html(HTMLParser):
    _BLOCKS = frozenset({"p", "li", "h1", "h2", "h3", "h4", "h5", "h6", "td", "th", "div", "title"})

    def __init__(self) -> None:
        super().__init__()
        self.blocks: list[dict[str, Any]] = []
        self.images: dict[str, bytes] = {}
        self._tag = "p"
        self._buffer: list[str] = []
        self._skip = 0

    def _flush(self) -> None:
        text = " ".join("".join(self._buffer).split())
        self._buffer = []
        if not text:
            return
        if self._tag[:1] == "h" and self._tag[1:].isdigit():
            level = int(self._tag[1:])
            self.blocks.append(
                {"type": "doc_title" if level == 1 else "paragraph_title", "level": level, "content": text}
            )
        elif self._tag != "title":
            self.blocks.append({"type": "text", "content": text})

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in self._BLOCKS:
            self._flush()
            self._tag = tag
        elif tag == "img":
            src = dict(attrs).get("src") or ""
            match = re.match(r"data:image/(\w+);base64,(.*)", src, re.S)
            if match:
                self._flush()
                path = f"images/page_0_image_{len(self.blocks)}.{match.group(1).replace('jpeg', 'jpg')}"
                self.images[path] = base64.b64decode(match.group(2))
                alt = dict(attrs).get("alt") or ""
                self.blocks.append(
                    {
                        "type": "image",
                        "content": "",
                        "captions": [{"content": alt}] if alt else [],
                        "footnotes": [],
                        "image_source": path,
                    }
                )

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif tag in self._BLOCKS:
            self._flush()
            self._tag = "p"

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self._buffer.append(data)


def _office_text(data: bytes) -> list[str]:
    """Paragraph texts of an Office Open XML / ODF document (``w:p``/``a:p``/``text:p`` elements)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = [n for n in archive.namelist() if n.endswith(".xml")]
        preferred = [n for n in names if n in ("word/document.xml", "content.xml")] or sorted(
            n for n in names if n.startswith(("ppt/slides/slide", "xl/sharedStrings"))
        )
        lines: list[str] = []
        for name in preferred:
            xml = archive.read(name).decode("utf-8", "replace")
            for paragraph in re.findall(r"<(?:w|a|text):p[ >].*?</(?:w|a|text):p>|<si>.*?</si>", xml, re.S):
                text = "".join(re.findall(r"<(?:w:t|a:t|t)(?: [^>]*)?>([^<]*)</", paragraph)) or re.sub(
                    r"<[^>]+>", "", paragraph
                )
                if text.strip():
                    lines.append(text.strip())
        return lines


def _pdf_pages(data: bytes) -> list[list[str]]:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    pages = []
    for page in reader.pages:
        try:
            text = page.extract_text() or ""
        except Exception:
            text = ""
        pages.append([line.strip() for line in text.splitlines() if line.strip()])
    return pages


def _select(pages: list[list[str]], page_range: str) -> list[tuple[int, list[str]]]:
    """The pages a V1 ``page_range`` (``1-5,8,r3-r1``, ``all``) selects, sorted and deduplicated."""
    total = len(pages)
    if not page_range or page_range == "all":
        return list(enumerate(pages))

    def number(text: str) -> int:
        return total + 1 - int(text[1:]) if text.startswith("r") else int(text)

    chosen: set[int] = set()
    for item in page_range.split(","):
        first, _, last = item.strip().partition("-")
        for page in range(number(first), number(last or first) + 1):
            if 1 <= page <= total:
                chosen.add(page)
    return [(p - 1, pages[p - 1]) for p in sorted(chosen)]


def parse_document(name: str, data: bytes, *, page_range: str, ocr_mode: str) -> Outcome:
    """Parse one file as the flash tier without model weights would."""
    ext = extension(name)
    if ext not in PARSEABLE:
        return Outcome(error=_error("parse_failed", f"Unsupported file type: {name}"))
    if ext in IMAGES or ocr_mode == "ocr":
        return Outcome(error=_error("parse_failed", _WEIGHTS_ERROR), slow=True)
    try:
        if ext == "pdf":
            chosen = _select(_pdf_pages(data), page_range)
            text = sum(len(" ".join(lines)) for _, lines in chosen)
            selected = [(i, lines) for i, lines in chosen if lines]
            if not selected or text < MIN_TEXT_PER_PAGE * len(chosen):  # no usable text layer: OCR needed
                return Outcome(error=_error("parse_failed", _WEIGHTS_ERROR), slow=True)
            pages = [_blocks_from_lines(lines, title_first=i == 0) for i, lines in selected]
            images: dict[str, bytes] = {}
        elif ext in ("html", "htm", "shtml", "mht", "mhtml"):
            parser = _Html()
            parser.feed(data.decode("utf-8", "replace"))
            parser.close()
            parser._flush()
            pages, images = [parser.blocks], parser.images
        elif ext in ("csv", "tsv"):
            rows = list(
                csv.reader(io.StringIO(data.decode("utf-8-sig", "replace")), delimiter="\t" if ext == "tsv" else ",")
            )
            table = {"type": "table", "content": _table_markdown(rows), "captions": [], "footnotes": []}
            pages, images = [[table]], {}
        else:
            pages, images = [_blocks_from_lines(_office_text(data), title_first=False)], {}
    except Exception as exc:  # a corrupt file fails that file only, as on the real server
        return Outcome(error=_error("parse_failed", f"{type(exc).__name__}: {exc}"))
    return Outcome(markdown=render_markdown(pages), pages=pages, images=images)


def _table_markdown(rows: list[list[str]]) -> str:
    if not rows:
        return ""
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    lines = ["| " + " | ".join(rows[0]) + " |", "| " + " | ".join(["---"] * width) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines)


def render_markdown(pages: list[list[dict[str, Any]]]) -> str:
    parts = []
    for blocks in pages:
        for block in blocks:
            if block["type"] in ("doc_title", "paragraph_title"):
                parts.append("#" * int(block.get("level") or 1) + " " + block["content"])
            elif block["type"] == "image":
                captions = "".join(f"\n\n{c['content']}" for c in block.get("captions") or [])
                parts.append(f"![]({block['image_source']})" + captions)
            else:
                parts.append(block["content"])
    return "\n\n".join(parts)
