"""
Kept for old imports: the result-zip builder is public now, in :mod:`mineru_emulator.results`.
"""

from __future__ import annotations

from mineru_emulator.results import (
    Block,
    ResultSpec,
    build_result_zip,
    member_stem,
    pdf_page_texts,
)

__all__ = ["Block", "ResultSpec", "build_result_zip", "member_stem", "pdf_page_texts"]
