"""
The long-document stage of an upload operator's run: split before sending, stitch after the wait.

**Before sending** (:func:`expand_long_documents`, called when the upload operator resolves its
inputs, before any request): a local PDF over the connection's ``max_pages`` is planned
(:func:`~.plan.plan_document`) and split (:func:`~.split.split_pdf`) into one file per slice in a
temporary folder; each slice becomes one more document of the same batch(es). A PDF that cannot
be split safely raises :class:`~airflow_provider_mineru.exceptions.MinerUCannotSplitError` naming the
file and the limit. With ``split_long_documents=False`` nothing is split (the page check refuses the
file as before).

**Across a deferral or a retry**: a slice's *source* (what the submission record and the trigger
event carry per document) is its input's location with the slice's pages appended,
``/data/report.pdf#mineru-pages=201-400`` (:func:`slice_source`). ``execute_complete`` runs on a new
operator instance that resolves nothing: it recovers each slice's input and page range from that
source alone (:func:`parse_slice_source`), so no extra state crosses the deferral. A slice's
fingerprint is its input's (location, name, size, modification time, options) plus its pages, so a
retry resumes per slice: a ``done`` slice is waited for (and its landed result kept), a failed one
is sent again alone (:mod:`airflow_provider_mineru.submission.resume` works per document).

**After the wait** (:func:`land_and_stitch`, called by
:func:`~airflow_provider_mineru.waiting.finish.finish_wait`): every slice lands in
``<output_path>/<input>/parts/<index>-<first>-<last>/`` (with its own completion marker); when every
slice of an input is ``done``, :func:`~.stitch.stitch_parts` writes the input's one result beside
``parts/``. The wait's documents become one document per input: a split input's state is
:func:`~.parts.input_state` of its slices, and its XCom row gets ``parts``
(:meth:`StitchedWait.with_parts`). Object storage: slices land and are stitched in a local temporary
folder, then the folder is written to its place with the landing module's object-storage path
(marker last).
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
import shutil
import tempfile
import weakref
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_mineru.exceptions import MinerUError, MinerUResultError
from airflow_provider_mineru.inputs.pdf_pages import count_pdf_pages_in
from airflow_provider_mineru.inputs.sources import SourceFile
from airflow_provider_mineru.inputs.validation import document_extension
from airflow_provider_mineru.long_documents.parts import PartResult, input_state, parts_to_xcom
from airflow_provider_mineru.long_documents.plan import (
    LearnedLimits,
    PageSlice,
    SlicePlan,
    plan_document,
    stated_limit,
    uncountable_refusal_message,
)
from airflow_provider_mineru.long_documents.stitch import PARTS_DIR, part_folder, stitch_parts
from airflow_provider_mineru.models import DocumentResult, MinerUState
from airflow_provider_mineru.results.downloads import ResultDownloader, document_stem
from airflow_provider_mineru.results.landing import MARKER_NAME, land_result
from airflow_provider_mineru.utils.safe_zip import ExtractedResult
from airflow_provider_mineru.utils.storage_paths import (
    is_local_location,
    is_local_path,
    join_relative,
    local_path_text,
    safe_name,
)
from airflow_provider_mineru.waiting.waits import WaitedDocuments

if TYPE_CHECKING:
    from airflow_provider_mineru.submission.record import SubmittedInput

__all__ = [
    "SLICE_MARK",
    "DocumentGroup",
    "LongDocumentInputs",
    "SliceOf",
    "StitchedWait",
    "count_source_pages",
    "describe_document",
    "expand_long_documents",
    "explain_page_refusal",
    "fewer_files_per_request",
    "group_documents",
    "input_locations",
    "land_and_stitch",
    "parse_slice_source",
    "slice_data_id",
    "slice_source",
]

log = logging.getLogger(__name__)

#: What separates an input's location from a slice's pages in the slice's source.
SLICE_MARK = "#mineru-pages="
_RANGE_RE = re.compile(r"^(\d+)-(\d+)$")
#: What ends a slice's ``data_id``: ``<input data_id or stem>.pages-<first>-<last>``.
_DATA_ID_RE = re.compile(r"^(.*)\.pages-\d+-\d+$")
_MAX_DATA_ID = 128


def slice_source(location: str, piece: PageSlice) -> str:
    """A slice's source: ``<input location>#mineru-pages=<first>-<last>``."""
    return f"{location}{SLICE_MARK}{piece.page_ranges}"


def parse_slice_source(source: str | None) -> tuple[str, int, int] | None:
    """``(input location, first page, last page)`` of a slice's source; None for any other source."""
    if not source or SLICE_MARK not in source:
        return None
    location, _, pages = source.rpartition(SLICE_MARK)
    match = _RANGE_RE.match(pages)
    if not location or match is None:
        return None
    first, last = int(match.group(1)), int(match.group(2))
    return (location, first, last) if 1 <= first <= last else None


def input_locations(sources: Sequence[str | None]) -> list[str | None]:
    """Per input, its location: each split input's slices' sources become its one location (for lineage)."""
    out: list[str | None] = []
    for group in group_documents(sources, len(sources)):
        out.append(group.location if group.is_split else sources[group.indices[0]])
    return out


def slice_data_id(data_id: str | None, name: str, piece: PageSlice) -> str:
    """
    The slice's ``data_id`` (its MinerU id in the batch): the input's ``data_id`` or stem, and its pages.

    :param data_id: the input's own ``data_id``, if any.
    :param name: the input's file name (its stem is used without a ``data_id``).
    :param piece: the slice.
    """
    suffix = f".pages-{piece.first_page}-{piece.last_page}"
    base = data_id or safe_name(posixpath.splitext(name)[0]).strip("._") or "document"
    return base[: _MAX_DATA_ID - len(suffix)] + suffix


@dataclass(frozen=True)
class SliceOf:
    """
    A document that is one slice of an input.

    :param location: the input's location.
    :param name: the input's file name.
    :param size: the input's size in bytes.
    :param piece: the slice.
    """

    location: str
    name: str
    size: int
    piece: PageSlice


@dataclass
class LongDocumentInputs:
    """
    An upload operator's documents after splitting: the inputs, with each long PDF replaced by its slices.

    :param items: ``(source file, per-file options)`` per document to send, in input order.
    :param slices: per document, the input it is a slice of (None: sent as it is).
    :param plans: the plans of the inputs that were split, by input location.
    """

    items: list[tuple[SourceFile, dict[str, Any]]]
    slices: list[SliceOf | None]
    plans: dict[str, SlicePlan] = field(default_factory=dict)

    def source_of(self, index: int) -> str:
        """Document ``index``'s source as the submission records it (a slice's names its pages)."""
        found = self.slices[index]
        if found is None:
            return self.items[index][0].location
        return slice_source(found.location, found.piece)

    def input_location(self, index: int) -> str:
        """The location of the input document ``index`` belongs to (a slice's: the whole file's)."""
        found = self.slices[index]
        return self.items[index][0].location if found is None else found.location

    def keep(self, locations: Collection[str]) -> LongDocumentInputs:
        """Only the documents of the inputs at ``locations`` (the others' results are reused)."""
        chosen = [i for i in range(len(self.items)) if self.input_location(i) in locations]
        return LongDocumentInputs(
            [self.items[i] for i in chosen],
            [self.slices[i] for i in chosen],
            {location: plan for location, plan in self.plans.items() if location in locations},
        )


def describe_document(documents: LongDocumentInputs, index: int) -> SubmittedInput:
    """
    Document ``index`` as the submission records it. A slice's fingerprint is its input's (location,
    name, size, modification time, options) with its pages, so a retry resumes each slice on its own.

    :param documents: the operator's documents.
    :param index: which one.
    """
    # here, not at the top: waiting/finish.py imports this module, and submission/ stands above waiting/
    from airflow_provider_mineru.submission.record import SubmittedInput, file_fingerprint, output_stem

    source, options = documents.items[index]
    found = documents.slices[index]
    if found is None:
        return SubmittedInput(
            source.location,
            source.name,
            output_stem(source.name, options.get("data_id")),
            file_fingerprint(source.location, source.name, source.size, options),
        )
    per_file = {**options, "page_ranges": found.piece.page_ranges}
    return SubmittedInput(
        slice_source(found.location, found.piece),
        source.name,
        output_stem(source.name, options.get("data_id")),
        file_fingerprint(found.location, found.name, found.size, per_file),
    )


def _workdir(owner: object) -> Path:
    """A temporary folder for the parts, removed when ``owner`` (the operator) goes or the process ends."""
    path = Path(tempfile.mkdtemp(prefix="mineru-slices-"))
    weakref.finalize(owner, shutil.rmtree, str(path), True)
    return path


def expand_long_documents(
    resolved: Sequence[tuple[SourceFile, dict[str, Any]]],
    max_pages: int,
    *,
    split: bool,
    owner: object,
    plans: Mapping[str, SlicePlan] | None = None,
) -> LongDocumentInputs:
    """
    Replace each local PDF over ``max_pages`` by its slices, written as PDFs of their own.

    Not split: other types (no page count before parsing: MinerU judges them), PDFs whose pages
    could not be counted, and inputs with their own ``page_ranges`` (the pages are the user's choice).
    A PDF on object storage is counted with ranged reads (:func:`count_source_pages`); when it is
    over the limit it is copied to a local temporary folder (streamed) and split there.

    :param resolved: the checked inputs, in order.
    :param max_pages: the connection's ``max_pages``.
    :param split: ``split_long_documents``; False returns the inputs as they are.
    :param owner: the part files live as long as this object (the operator instance).
    :param plans: plans made earlier, by input location (:mod:`.adapt`: re-planned smaller after MinerU
        refused at a lower page limit); these inputs are cut as their plan says (one slice: sent as it is).
    :raises MinerUCannotSplitError: a PDF over the limit that cannot be split safely.
    """
    # pypdf (~60 ms to import) is loaded only when a PDF is over the limit
    from airflow_provider_mineru.long_documents.split import split_pdf

    out = LongDocumentInputs([], [])
    workdir: Path | None = None
    for source, options in resolved:
        plan = (plans or {}).get(source.location)
        if plan is None:
            pages = count_source_pages(source) if split and not options.get("page_ranges") else None
            if pages is not None and pages > max_pages:
                plan = plan_document(source.name, pages, max_pages)
        if plan is None or not plan.is_split:
            out.items.append((source, options))
            out.slices.append(None)
            continue
        pages = plan.total_pages or 0
        workdir = workdir or _workdir(owner)
        folder = workdir / str(len(out.plans))
        folder.mkdir()
        local = source.local_path or _local_copy(source, folder)
        parts = split_pdf(local, plan, folder)
        if source.local_path is None:  # the object's copy: only its parts are sent
            shutil.rmtree(os.path.dirname(local), ignore_errors=True)
        log.info(
            "%s has %d pages, over MinerU's limit of %d per file: sent as %d slices (pages %s)",
            source.name,
            pages,
            plan.max_pages,
            len(parts),
            ", ".join(p.slice.page_ranges for p in parts),
        )
        out.plans[source.location] = plan
        for part in parts:
            stat = part.path.stat()
            item = SourceFile(str(part.path), part.path.name, part.size, stat.st_mtime_ns)
            sliced = {**options, "data_id": slice_data_id(options.get("data_id"), source.name, part.slice)}
            out.items.append((item, sliced))
            out.slices.append(SliceOf(source.location, source.name, source.size, part.slice))
    return out


def count_source_pages(source: SourceFile) -> int | None:
    """
    Pages of a PDF to upload, None when unknown: a local one with bounded reads of its page tree; one on
    object storage with the same bounded reads made as ranged requests (its trailer and page tree only).

    :param source: the file.
    """
    if source.local_path is not None:
        return source.page_count()
    if document_extension(source.name) != ".pdf":
        return None
    try:
        with source.open() as handle:
            return count_pdf_pages_in(handle, source.size)
    except (OSError, ValueError) as error:
        log.warning("Cannot count the pages of %s: %s", source.location, error)
        return None


def _local_copy(source: SourceFile, folder: Path) -> str:
    """An object-storage PDF copied into ``folder`` (streamed, bounded memory) to be split; its path."""
    (folder / "source").mkdir()
    target = folder / "source" / (safe_name(source.name) or "document.pdf")  # the parts are named after it
    with source.open() as handle, open(target, "wb") as out:
        shutil.copyfileobj(handle, out, 1024 * 1024)
    return str(target)


_TOO_MANY_FILES = re.compile(r"too many files|files per request|files? (?:count )?exceeds?", re.IGNORECASE)


def fewer_files_per_request(error: MinerUError, tried: int) -> int | None:
    """
    The files per request to send with after MinerU refused a request of ``tried`` files for their
    number (``-10002`` "at most 50 files per request"): the limit it states when lower, else half.
    None when the refusal is about something else (the error is raised as it is). A refused request
    is not billed; the limit learned is logged and used for the rest of the task's submits.

    :param error: MinerU's refusal.
    :param tried: files in the refused request.
    """
    if error.code != "-10002" or not _TOO_MANY_FILES.search(error.message or "") or tried <= 1:
        return None
    return LearnedLimits(pages_per_file=1, files_per_request=tried).refused_files(tried, error.message)


# -- after the wait -------------------------------------------------------------------------------


@dataclass(frozen=True)
class StitchedWait:
    """
    A wait's documents as the inputs the user gave: one document (and one result folder) per input.

    :param waited: one document per input, in input order (a split input's is its slices' one state).
    :param outputs: per input, the folder its result landed in (None: not downloaded, or a slice failed).
    :param parts: per input index, its ``parts`` XCom list (split inputs only).
    """

    waited: WaitedDocuments
    outputs: list[str | None]
    parts: Mapping[int, list[dict[str, Any]]] = field(default_factory=dict)

    def with_parts(self, value: dict[str, Any]) -> dict[str, Any]:
        """The batch XCom ``value`` with ``parts`` in each split input's row (an unsplit row has none)."""
        rows = value.get("results")
        if not self.parts or not isinstance(rows, list):
            return value
        for index, parts in self.parts.items():
            rows[index]["parts"] = parts
        return value


@dataclass
class DocumentGroup:
    """
    One input of a wait: a document sent as it is, or a split input's slices.

    :param indices: its documents' positions in the wait (a slice per page range, in page order).
    :param location: a split input's location (None: not split).
    :param pieces: a split input's slices, as their sources name them.
    """

    indices: list[int]
    location: str | None = None
    pieces: list[PageSlice] = field(default_factory=list)

    @property
    def is_split(self) -> bool:
        """Whether the input was sent as slices."""
        return self.location is not None


def group_documents(sources: Sequence[str | None], count: int) -> list[DocumentGroup]:
    """
    The inputs behind a wait's documents: each slice source joins the slices of its input before it
    (same location, pages going on); any other document is an input of its own.

    :param sources: per document, its source (:func:`slice_source` for a slice).
    :param count: how many documents.
    """
    groups: list[DocumentGroup] = []
    for index in range(count):
        parsed = parse_slice_source(sources[index] if index < len(sources) else None)
        if parsed is None:
            groups.append(DocumentGroup([index]))
            continue
        location, first, last = parsed
        if not groups or groups[-1].location != location or groups[-1].pieces[-1].last_page >= first:
            groups.append(DocumentGroup([], location))
        group = groups[-1]
        group.pieces.append(PageSlice(len(group.pieces), first, last))
        group.indices.append(index)
    return groups


def _plan(group: DocumentGroup) -> SlicePlan:
    pieces = tuple(group.pieces)
    name = posixpath.basename((group.location or "").rstrip("/")) or "document"
    return SlicePlan(name, pieces[-1].last_page, max(p.pages for p in pieces), pieces)


def _input_data_id(slice_doc: DocumentResult, name: str) -> str | None:
    """The input's own ``data_id`` from a slice's (None when the slice's was made from the file's stem)."""
    match = _DATA_ID_RE.match(slice_doc.data_id or "")
    if match is None:
        return None
    base = match.group(1)
    auto = safe_name(posixpath.splitext(name)[0]).strip("._") or "document"
    return None if base == auto[: len(base)] else base


def explain_page_refusal(document: DocumentResult, max_pages: int | None, source: str | None = None) -> DocumentResult:
    """
    ``document`` with what to do in its ``err_msg`` when MinerU refused it for its page count (-60006).

    :param document: one document as MinerU listed it (returned as it is unless refused so).
    :param max_pages: the connection's ``max_pages`` (None: unknown, nothing added).
    :param source: where it was sent from (a URL is explained as a URL; None: an upload).
    """
    message = document.err_msg or ""
    if document.state is not MinerUState.FAILED or "-60006" not in message or max_pages is None:
        return document
    url = None if source is None or _uploaded(source) else parse_slice_source(source) or (source, 0, 0)
    name = document.file_name or (posixpath.basename(str(url[0]).split("?", 1)[0]) if url else "") or document.name
    if document_extension(name) != ".pdf":
        return replace(document, err_msg=uncountable_refusal_message(name, max_pages, message))
    if url is not None:
        return replace(
            document,
            err_msg=(
                f"{message}. MinerU refused this URL document for its page count and it could not be sent again "
                f"in parts (MinerU counts the whole document's pages whatever page_ranges selects, or its pages "
                f"could not be counted): download it and send the file with MinerUUploadFilesOperator, which "
                f"splits PDFs into parts of at most max_pages ({max_pages}) pages."
            ),
        )
    stated = stated_limit(message)
    lower = f" ({stated} pages)" if stated is not None else ""
    return replace(
        document,
        err_msg=(
            f"{message}. MinerU's page limit{lower} is lower than the connection's max_pages ({max_pages}): "
            "set the connection extra max_pages to MinerU's limit, and the PDF is split into parts of at most "
            "that many pages."
        ),
    )


def land_and_stitch(waited: WaitedDocuments, downloader: ResultDownloader) -> StitchedWait:
    """
    Land every ``done`` document; stitch each split input whose slices are all ``done``.

    Without slices among the sources this is :meth:`ResultDownloader.download_all` as it is.

    :param waited: the documents of the wait, in the order they were sent (slices of one input together).
    :param downloader: where results land (its log gets the progress).
    :raises MinerUResultError: a result could not be landed or stitched (after every other one was).
    """
    max_pages = _max_pages(downloader)
    sources = [waited.source_at(i) for i in range(len(waited.documents))]  # unknown (a sensor): left as it is
    documents = [
        explain_page_refusal(d, max_pages, s) if s else d for d, s in zip(waited.documents, sources, strict=True)
    ]
    groups = group_documents(waited.sources, len(documents))
    if not any(group.is_split for group in groups):
        waited = replace(waited, documents=documents)
        return StitchedWait(waited, downloader.download_all(documents, waited.sources))

    remote = downloader.root is not None and not is_local_path(downloader.root)
    staging = Path(tempfile.mkdtemp(prefix="mineru-stitch-")) if remote else None
    try:
        targets: list[Any] = [None] * len(documents)
        folders: dict[int, Any] = {}  # group index -> the input's folder (where it is stitched)
        merged: list[DocumentResult] = []
        for number, group in enumerate(groups):
            if not group.is_split:
                index = group.indices[0]
                targets[index] = downloader.target_for(documents[index], waited.source_at(index))
                merged.append(documents[index])
                continue
            plan = _plan(group)
            first = documents[group.indices[0]]
            data_id = _input_data_id(first, plan.name)
            merged.append(replace(first, file_name=plan.name, data_id=data_id, full_zip_url=None, task_id=None))
            folder = downloader.unique_folder(document_stem(merged[-1], group.location))
            if folder is None:
                continue
            folders[number] = folder
            local = staging / folder.name if staging is not None else folder
            for piece, index in zip(group.pieces, group.indices, strict=True):
                if documents[index].state is MinerUState.DONE and documents[index].full_zip_url:
                    targets[index] = part_folder(local, piece)
        outputs = downloader.land_all(documents, targets)
        result_outputs: list[str | None] = []
        parts_rows: dict[int, list[dict[str, Any]]] = {}
        errors: list[str] = []
        for number, group in enumerate(groups):
            if not group.is_split:
                result_outputs.append(outputs[group.indices[0]])
                continue
            plan = _plan(group)
            slice_docs = [documents[i] for i in group.indices]
            parts = [
                PartResult.of(piece, doc.raw_state or doc.state.value, doc.err_msg or "", data_id=doc.data_id)
                for piece, doc in zip(plan.slices, slice_docs, strict=True)
            ]
            state, err_msg = input_state(parts, plan)
            merged[number] = _merged_state(merged[number], slice_docs, state, err_msg)
            rows = parts_to_xcom(parts)
            for row, index in zip(rows, group.indices, strict=True):
                row["batch_id"] = waited.batch_at(index)
            parts_rows[number] = rows
            folder = folders.get(number)
            output: str | None = None
            if folder is not None:
                try:
                    output = _stitch_one(folder, plan, group, slice_docs, staging, state, downloader)
                except MinerUError as exc:
                    errors.append(f"{plan.name}: {exc}")
            result_outputs.append(output)
        if errors:
            raise MinerUResultError("; ".join(errors))
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    inputs = WaitedDocuments(
        waited.ids,
        merged,
        [waited.batch_at(group.indices[0]) for group in groups],
        [group.location if group.is_split else waited.source_at(group.indices[0]) for group in groups],
    )
    return StitchedWait(inputs, result_outputs, parts_rows)


def _uploaded(source: str | None) -> bool:
    """Whether a document was uploaded from a file (local or object storage), not sent as a URL."""
    return bool(source) and not str(source).lower().startswith(("http://", "https://"))


def _max_pages(downloader: ResultDownloader) -> int | None:
    try:
        return int(downloader.hook.config.limits.max_pages)
    except (AttributeError, TypeError, ValueError):
        return None


def _merged_state(base: DocumentResult, slices: Sequence[DocumentResult], state: str, err_msg: str) -> DocumentResult:
    """The input's one document: the state of its slices (:func:`~.parts.input_state`) and its error."""
    like = next((doc for doc in slices if (doc.raw_state or doc.state.value) == state), slices[0])
    return replace(base, state=like.state, raw_state=like.raw_state, err_msg=err_msg or None)


def _stitch_one(
    folder: Any,
    plan: SlicePlan,
    group: DocumentGroup,
    slices: Sequence[DocumentResult],
    staging: Path | None,
    state: str,
    downloader: ResultDownloader,
) -> str | None:
    """Stitch one input whose slices are all ``done``; on object storage, write the local folder in its place."""
    local = staging / folder.name if staging is not None else Path(folder)
    if state != MinerUState.DONE.value:
        if staging is not None:  # keep the done slices' results, as on a local disk
            for piece, doc in zip(plan.slices, slices, strict=True):
                if doc.state is MinerUState.DONE and part_folder(local, piece).is_dir():
                    _publish(part_folder(local, piece), join_relative(folder, f"{PARTS_DIR}/{piece.folder_name}"))
        return None
    origin = None
    location = group.location or ""
    if is_local_location(location) and os.path.isfile(local_path_text(location)):
        origin = local_path_text(location)
    identity = {"stitched": [(doc.full_zip_url or "").split("?", 1)[0] for doc in slices]}
    stem = document_stem(replace(slices[0], file_name=plan.name, data_id=None))
    stitched = stitch_parts(local, plan, stem=stem, identity=identity, origin_pdf=origin)
    downloader.log.info(
        "Stitched %s from %d slices: %d pages in %s", plan.name, len(plan.slices), stitched.pages, folder
    )
    if staging is not None:
        _publish(local, folder, identity)
    return str(folder)


def _publish(local: Path, target: Any, identity: dict[str, Any] | None = None) -> None:
    """Write a local result folder to object storage with the landing module's object-storage path (marker last)."""
    files = sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file())
    files = [rel for rel in files if rel != MARKER_NAME]

    def copy(root: Any) -> ExtractedResult:
        total = 0
        for rel in files:
            destination = join_relative(root, rel)
            with open(local / rel, "rb") as source, destination.open("wb") as out:
                shutil.copyfileobj(source, out, 1024 * 1024)
            total += (local / rel).stat().st_size
        return ExtractedResult.of(str(root), tuple(files), (), total)

    land_result(copy, target, identity=identity)
