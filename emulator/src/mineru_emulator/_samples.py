"""
The sample documents and the built-in stand-ins for MinerU's public demo URLs.

Everything here is generated (deterministically) by :mod:`._pdf`, so the emulator can serve
the samples at ``GET /samples/<name>`` from an installed wheel, and
``scripts/make_sample_documents.py`` writes the very same bytes into ``dags/sample_documents/``.
"""

from __future__ import annotations

from functools import cache

from mineru_emulator._pdf import make_pdf, make_png

#: Text of each sample PDF: a list of pages, each a list of lines.
SAMPLE_PDF_TEXT: dict[str, list[list[str]]] = {
    "annual_report.pdf": [
        [
            "Northwind Traders Annual Report 2024",
            "Letter from the chair to our shareholders.",
            "In 2024 Northwind Traders grew revenue by twelve percent to 48.2 million euros.",
            "Our online channel now accounts for more than a third of all orders.",
            "We opened two distribution centres, in Rotterdam and in Lyon.",
            "Customer satisfaction reached its highest level since we began measuring it.",
        ],
        [
            "Financial highlights",
            "Operating margin improved from 8.1 percent to 9.4 percent.",
            "Free cash flow was 5.6 million euros after capital expenditure.",
            "The board proposes a dividend of 0.42 euros per share.",
            "Net debt fell to 0.7 times earnings before interest, tax and depreciation.",
        ],
        [
            "Outlook for 2025",
            "We expect revenue growth between eight and ten percent next year.",
            "Investment will focus on warehouse automation and supplier diversity.",
            "Thank you to our employees, customers and partners for a remarkable year.",
        ],
    ],
    "research_paper.pdf": [
        [
            "Adaptive Batching for Document Parsing Pipelines",
            "Abstract",
            "We study how batch size affects the throughput of a remote document parser.",
            "Small batches waste round trips while large batches delay the first result.",
            "An adaptive policy halves the median completion time in our experiments.",
        ],
        [
            "1 Introduction",
            "Document parsing services turn PDF files into structured Markdown and JSON.",
            "Clients usually submit one file at a time and poll each task separately.",
            "This paper measures the cost of that habit on a corpus of ten thousand reports.",
        ],
        [
            "2 Method",
            "Files are grouped into batches of at most two hundred documents.",
            "The scheduler polls one batch endpoint instead of every individual task.",
            "Back-off follows the Retry-After header whenever the service answers 429.",
        ],
        [
            "3 Results and conclusion",
            "Adaptive batching reduced requests per document from eleven to under two.",
            "Throughput rose by a factor of three with no increase in failed tasks.",
            "We conclude that batch-level polling should be the default for such clients.",
        ],
    ],
    "invoice.pdf": [
        [
            "Invoice INV-2024-0042",
            "Issued by Contoso Document Services, 12 Harbour Street, Dublin.",
            "Billed to Fabrikam Research Ltd, attention of the accounts department.",
            "Description | Quantity | Unit price | Amount",
            "Document parsing credits | 10 | 12.00 | 120.00",
            "Priority support plan | 1 | 45.00 | 45.00",
            "Total due | | | 165.00",
        ],
        [
            "Payment terms",
            "Payment is due within thirty days of the invoice date.",
            "Please quote the invoice number INV-2024-0042 with your transfer.",
            "Late payments may incur interest at two percent per month.",
        ],
    ],
}

#: Page counts of the sample PDFs, for tests and docs.
SAMPLE_PAGE_COUNTS: dict[str, int] = {name: len(pages) for name, pages in SAMPLE_PDF_TEXT.items()}

#: Text of the built-in stand-ins for MinerU's public demo documents (used when offline).
DEMO_PDF_TEXT: dict[str, list[list[str]]] = {
    "https://cdn-mineru.openxlab.org.cn/demo/example.pdf": [
        [
            "MinerU Example Document",
            "This is the emulator's stand-in for the public MinerU example PDF.",
            "MinerU converts PDF files into Markdown and JSON for downstream use.",
        ],
        [
            "Features",
            "Headings, paragraphs, tables and formulas are recognised on every page.",
            "The result zip carries full.md, a content list and the original PDF.",
        ],
    ],
    "https://static.openxlab.org.cn/opendatalab/pdf/demo.pdf": [
        [
            "OpenDataLab Demo PDF",
            "This is the emulator's stand-in for the OpenDataLab demo document.",
            "It has three short pages of plain English text.",
        ],
        [
            "Section two",
            "Document intelligence turns scanned pages into structured data.",
        ],
        [
            "Section three",
            "The end of the demo document.",
        ],
    ],
}

SAMPLE_PNG_NAME = "scanned_receipt.png"


def _receipt_pixel(x: int, y: int) -> tuple[int, int, int]:
    """A 200x100 'receipt': white paper, a dark border and grey bars for lines of print."""
    if x < 2 or y < 2 or x >= 198 or y >= 98:
        return (40, 40, 40)
    if 10 <= y < 18 and 20 <= x < 120:  # shop name
        return (20, 20, 20)
    for row, length in ((30, 150), (42, 130), (54, 160), (66, 110)):
        if row <= y < row + 5 and 20 <= x < 20 + length:
            return (110, 110, 110)
    if 80 <= y < 88 and 120 <= x < 180:  # total
        return (20, 20, 20)
    return (250, 250, 245)


@cache
def sample_document(name: str) -> bytes | None:
    """The bytes of the sample document ``name``, or None when there is no such sample."""
    if name in SAMPLE_PDF_TEXT:
        return make_pdf(SAMPLE_PDF_TEXT[name])
    if name == SAMPLE_PNG_NAME:
        return make_png(200, 100, _receipt_pixel)
    return None


def sample_names() -> list[str]:
    """The names of all sample documents."""
    return [*SAMPLE_PDF_TEXT, SAMPLE_PNG_NAME]


@cache
def demo_document(url: str) -> bytes | None:
    """The built-in stand-in for one of MinerU's public demo URLs, or None."""
    pages = DEMO_PDF_TEXT.get(url)
    return make_pdf(pages) if pages is not None else None
