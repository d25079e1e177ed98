"""The ledger key changes with content, output-changing options and flavor, and with nothing else."""

from __future__ import annotations

import dataclasses
import io

import pytest

from airflow_provider_mineru.clients.v4_wire import OPTION_NAMES, ParseOptions
from airflow_provider_mineru.ledger import LedgerKey, output_options, sha256_of_file
from airflow_provider_mineru.ledger.key import NON_OUTPUT_OPTIONS, OUTPUT_OPTIONS, sha256_of_stream
from tests.ledger.conftest import file_key


def test_the_key_changes_with_the_content_the_options_and_the_flavor() -> None:
    base = file_key(b"a", model_version="vlm")
    assert file_key(b"a", model_version="vlm").id == base.id
    assert file_key(b"b", model_version="vlm").id != base.id
    assert file_key(b"a", model_version="pipeline").id != base.id
    assert file_key(b"a", flavor="mineru-api", model_version="vlm").id != base.id
    for name, value in [
        ("is_ocr", True),
        ("enable_formula", False),
        ("enable_table", False),
        ("language", "en"),
        ("page_ranges", "1-3"),
        ("extra_formats", ["docx"]),
        ("tier", "flash"),
    ]:
        assert file_key(b"a", model_version="vlm", **{name: value}).id != base.id, name


def test_options_that_do_not_change_the_output_do_not_change_the_key() -> None:
    base = file_key(b"a")
    noise = file_key(b"a", callback="https://hook.example/x", seed="s1", no_cache=True, cache_tolerance=60)
    assert noise.id == base.id


def test_every_parse_option_is_either_in_the_key_or_excluded_with_a_reason() -> None:
    assert set(OPTION_NAMES) <= set(OUTPUT_OPTIONS) | set(NON_OUTPUT_OPTIONS)
    assert not set(OUTPUT_OPTIONS) & set(NON_OUTPUT_OPTIONS)
    assert all(NON_OUTPUT_OPTIONS.values())


def test_a_new_parse_option_counts_by_default(monkeypatch) -> None:
    from airflow_provider_mineru.ledger import key as key_module

    names = (*OPTION_NAMES, "future_option")
    monkeypatch.setattr(
        key_module, "OUTPUT_OPTIONS", (*(n for n in names if n not in NON_OUTPUT_OPTIONS), "page_ranges")
    )
    assert key_module.output_options({"future_option": 1}) == {"future_option": 1}


def test_per_file_options_override_the_batch_and_data_id_does_not_count() -> None:
    options = ParseOptions(is_ocr=False, language="en")
    merged = output_options(options, {"is_ocr": True, "page_ranges": "2-4", "data_id": "x"})
    assert merged == {"is_ocr": True, "language": "en", "page_ranges": "2-4"}
    assert output_options(dataclasses.asdict(options)) == output_options(options)


def test_equivalent_spellings_give_one_key() -> None:
    assert file_key(extra_formats=["html", "docx"]).id == file_key(extra_formats=("docx", "html", "docx")).id
    assert file_key(page_ranges="1-3, 5").id == file_key(page_ranges="1-3,5").id


def test_a_url_key_names_the_url_and_its_validators() -> None:
    head = {"ETag": '"v1"', "Last-Modified": "Mon, 01 Jan 2026 00:00:00 GMT", "Content-Length": "9"}
    key = LedgerKey.for_url("https://example.com/a.pdf", head, None, "cloud")
    assert key.verifiable
    assert dict(key.validators) == {"etag": '"v1"', "last-modified": "Mon, 01 Jan 2026 00:00:00 GMT"}
    assert LedgerKey.for_url("https://example.com/a.pdf", {**head, "ETag": '"v2"'}, None, "cloud").id != key.id
    assert LedgerKey.for_url("https://example.com/a.pdf", {**head, "Content-Length": "10"}, None, "cloud").id == key.id
    assert not LedgerKey.for_url("https://example.com/a.pdf", {}, None, "cloud").verifiable
    assert not LedgerKey.for_url("https://example.com/a.pdf", None, None, "cloud").verifiable


def test_a_key_survives_json_and_other_versions_are_not_read() -> None:
    key = file_key(extra_formats=["docx"], is_ocr=True)
    assert LedgerKey.from_dict(key.to_dict()) == key
    assert LedgerKey.from_dict(key.to_dict()).id == key.id
    assert LedgerKey.from_dict({**key.to_dict(), "version": 99}) is None
    with pytest.raises(ValueError, match="not a lowercase sha256"):
        LedgerKey.for_file("not-a-digest", None, "cloud")


def test_hashing_streams_in_bounded_reads(tmp_path) -> None:
    data = bytes(range(256)) * 40_000  # 10 MB
    path = tmp_path / "big.pdf"
    path.write_bytes(data)
    import hashlib

    assert sha256_of_file(path) == hashlib.sha256(data).hexdigest()
    sizes: list[int] = []

    class Counting(io.BytesIO):
        def read(self, size: int = -1) -> bytes:
            sizes.append(size)
            return super().read(size)

    assert sha256_of_stream(Counting(data), chunk_size=65536) == hashlib.sha256(data).hexdigest()
    assert max(sizes) == 65536 and len(sizes) == len(data) // 65536 + 2
