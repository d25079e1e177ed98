"""Settings and helpers shared by the example DAGs (not a DAG itself)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

#: The bundled sample documents: a few small real PDFs and one PNG.
SAMPLE_DOCUMENTS = Path(__file__).resolve().parent / "sample_documents"

#: Where results land unless the DAG run's ``output_path`` param says otherwise.
DEFAULT_OUTPUT = os.environ.get("MINERU_EXAMPLE_OUTPUT", os.path.join(tempfile.gettempdir(), "mineru-output"))

#: Public MinerU demo documents (the emulator serves built-in copies when offline).
DEMO_URLS = [
    "https://cdn-mineru.openxlab.org.cn/demo/example.pdf",
    "https://static.openxlab.org.cn/opendatalab/pdf/demo.pdf",
]
#: A document that does not exist: shows how one failed file is reported.
MISSING_URL = "https://cdn-mineru.openxlab.org.cn/demo/this-document-does-not-exist.pdf"

#: Poll quickly against the emulator; a few seconds is plenty for the real service too.
POLL_INTERVAL = float(os.environ.get("MINERU_EXAMPLE_POLL_INTERVAL", "5"))

#: The schedule of ``mineru_incremental`` (daily); ``MINERU_EXAMPLE_SCHEDULE=`` (empty) for none: the test
#: deployments trigger its runs through the REST API rather than let the scheduler start one at start-up.
INCREMENTAL_SCHEDULE = os.environ.get("MINERU_EXAMPLE_SCHEDULE", "@daily") or None

#: Wait in the triggerer (the default) or hold the worker slot (``MINERU_EXAMPLE_DEFERRABLE=false``).
DEFERRABLE = os.environ.get("MINERU_EXAMPLE_DEFERRABLE", "true").lower() != "false"


def summarize_results(result: dict) -> list[dict]:
    """Read each parsed document's Markdown (local or object storage) and print a one-line summary."""
    from airflow_provider_mineru.results.downloads import output_root

    summaries = []
    for entry in result["results"]:
        if not entry["output_path"]:
            continue
        markdown_path = output_root(entry["output_path"]) / "full.md"
        markdown = markdown_path.read_text(encoding="utf-8")
        title = next((line.lstrip("# ").strip() for line in markdown.splitlines() if line.strip()), "")
        summary = {"file": entry["file_name"], "title": title, "words": len(markdown.split())}
        print(f"{entry['file_name']}: {summary['words']} words, '{title}' -> {markdown_path}")
        summaries.append(summary)
    return summaries
