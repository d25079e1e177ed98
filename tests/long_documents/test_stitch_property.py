"""
Property: over random page counts and slice sizes, stitching the emulator's result of each slice
gives the emulator's unsplit result (blocks and text equal, page_idx 0..N-1 with no gaps), for
both ways a slice reaches MinerU (``page_ranges`` over the whole file, or a locally split part).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_mineru.long_documents.plan import plan_slices
from airflow_provider_mineru.long_documents.stitch import stitch_parts
from tests.long_documents.emulated import land_slices, text_pdf, unsplit
from tests.long_documents.test_stitch import check_against_unsplit


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    total=st.integers(1, 40),
    max_pages=st.integers(1, 15),
    seed=st.integers(0, 10),
    strategy=st.sampled_from(["page_ranges", "split"]),
)
def test_stitched_slices_equal_the_unsplit_result(total, max_pages, seed, strategy):
    work = Path(tempfile.mkdtemp(prefix="mineru-stitch-"))
    try:
        source = text_pdf(work / "doc.pdf", total, seed)
        whole = unsplit(source, total, work / "whole", prefix="doc")
        plan = plan_slices("doc.pdf", total, max_pages)
        target = work / "stitched"
        land_slices(source, plan, target, strategy=strategy, workdir=work)
        result = stitch_parts(target, plan, stem="doc")
        assert result.pages == total
        check_against_unsplit(target, whole, plan)
    finally:
        shutil.rmtree(work, ignore_errors=True)
