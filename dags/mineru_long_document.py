"""
Parse a document longer than MinerU's page limit: it is split, sent in slices, and stitched back.

MinerU refuses a file over its page limit (``-60006``; the connection extra ``max_pages``, 600 by
default). ``MinerUUploadFilesOperator`` splits such a PDF locally into slices of at most
``max_pages`` pages, sends them in the same batch as the other files, and stitches their results
into one folder, ``<output_path>/<file stem>/``, that reads like an unsplit result: ``full.md`` in
page order, ``page_idx`` 0..N-1 in the JSON, each slice's own result under ``parts/``. The XCom
has one row per file; a split file's row lists its slices under ``parts``.

The first task writes a long text PDF (``pages`` pages, 1,300 by default: three slices at 600) so
the example needs no large file; point ``paths`` at your own reports, manuals or books instead.
"""

from __future__ import annotations

import pendulum
from _example_settings import DEFAULT_OUTPUT, DEFERRABLE, POLL_INTERVAL
from airflow.providers.common.compat.sdk import DAG, Param, task

from airflow_provider_mineru.operators.mineru import MinerUUploadFilesOperator

with DAG(
    dag_id="mineru_long_document",
    description="Parse a PDF longer than MinerU's page limit: split, sent in slices, stitched into one result.",
    doc_md=__doc__,
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["mineru", "example"],
    params={
        "pages": Param(1300, type="integer", minimum=1, description="Pages of the generated PDF"),
        "output_path": Param(DEFAULT_OUTPUT, type="string", description="Where the Markdown lands"),
    },
) as dag:

    @task
    def write_long_pdf(pages: int, output_path: str) -> str:
        """Write a text PDF of ``pages`` pages (one heading line and two lines of text per page)."""
        import os

        from pypdf import PdfWriter
        from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

        writer = PdfWriter()
        helvetica = {"/Type": "/Font", "/Subtype": "/Type1", "/BaseFont": "/Helvetica"}
        font = DictionaryObject({NameObject(k): NameObject(v) for k, v in helvetica.items()})
        for number in range(1, int(pages) + 1):
            page = writer.add_blank_page(612, 792)
            page[NameObject("/Resources")] = DictionaryObject(
                {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
            )
            lines = [f"Chapter {number}", f"Page {number} of the long manual.", f"Section {number}.1 begins here."]
            text = " ".join(f"({line}) Tj 0 -18 Td" for line in lines)
            stream = DecodedStreamObject()
            stream.set_data(f"BT /F1 12 Tf 72 720 Td {text} ET".encode("latin-1"))
            page.replace_contents(stream)
        folder = os.path.join(output_path, "long-input")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, "long_manual.pdf")
        with open(path, "wb") as handle:
            writer.write(handle)
        return path

    source = write_long_pdf(pages="{{ params.pages }}", output_path="{{ params.output_path }}")

    # [START howto_operator_mineru_long_document]
    parse = MinerUUploadFilesOperator(
        task_id="parse_long_document",
        paths=source,
        output_path="{{ params.output_path }}/long",
        split_long_documents=True,  # the default: a PDF over max_pages is split and stitched
        language="en",
        deferrable=DEFERRABLE,
        poll_interval=POLL_INTERVAL,
    )
    # [END howto_operator_mineru_long_document]

    @task
    def check_stitched(result: dict) -> dict:
        """One row for the file, its slices under ``parts``, and one folder with every page in order."""
        import json

        from airflow_provider_mineru.results.downloads import output_root

        (row,) = result["results"]
        folder = output_root(row["output_path"])
        pages = json.loads((folder / "layout.json").read_text(encoding="utf-8"))["pdf_info"]
        indices = [page["page_idx"] for page in pages]
        if indices != list(range(len(indices))):
            raise ValueError(f"page_idx is not 0..{len(indices) - 1} in order in {folder}")
        summary = {
            "file": row["file_name"],
            "pages": len(indices),
            "slices": [p["page_range"] for p in row.get("parts", [])],
        }
        print(f"{summary['file']}: {summary['pages']} pages stitched from slices {summary['slices']} -> {folder}")
        return summary

    check_stitched(parse.output)
