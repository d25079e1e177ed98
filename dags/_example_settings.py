"""Settings shared by the example DAGs (not a DAG itself)."""

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

#: Wait in the triggerer (the default) or hold the worker slot (``MINERU_EXAMPLE_DEFERRABLE=false``).
DEFERRABLE = os.environ.get("MINERU_EXAMPLE_DEFERRABLE", "true").lower() != "false"
