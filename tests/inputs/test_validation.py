"""Client-side validation, property-based, and checked against the emulator's own rules."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_mineru.connection.config import MinerULimits
from airflow_provider_mineru.exceptions import MinerUValidationError
from airflow_provider_mineru.inputs.validation import (
    parse_page_ranges,
    select_pages,
    validate_data_id,
    validate_extension,
    validate_file_size,
    validate_page_count,
    validate_seed,
)
from mineru_emulator.cloud import contract as server_rules

page_number = st.integers(min_value=-700, max_value=700).filter(lambda n: n != 0)
spaces = st.sampled_from(["", " ", "  "])


@st.composite
def page_item(draw):
    start = draw(page_number)
    kind = draw(st.sampled_from(["single", "range", "open"]))
    if kind == "single":
        return f"{draw(spaces)}{start}{draw(spaces)}"
    if kind == "open":
        return f"{start}{draw(spaces)}-"
    end = draw(page_number)
    if start > 0 and end > 0 and end < start:
        start, end = end, start
    return f"{start}{draw(spaces)}-{draw(spaces)}{end}"


page_ranges = st.lists(page_item(), min_size=1, max_size=6).map(",".join)


@given(page_ranges, st.integers(min_value=1, max_value=700))
def test_valid_page_ranges_parse_and_select_the_same_pages_as_the_server(spec, total):
    ours = select_pages(parse_page_ranges(spec), total)
    theirs = [i + 1 for i in server_rules.resolve_page_ranges(spec, total)]
    assert sorted(ours) == theirs


@settings(max_examples=300)
@given(st.text(alphabet="0123456789-, x.", max_size=12))
def test_what_the_server_refuses_is_refused_before_sending(spec):
    try:
        server_rules.check_page_ranges(spec)
        server_ok = spec.strip() != ""
    except server_rules.ApiError:
        server_ok = False
    try:
        parse_page_ranges(spec)
        ours_ok = True
    except MinerUValidationError as error:
        assert error.field == "page_ranges"
        ours_ok = False
    if not server_ok:
        assert not ours_ok


@given(st.text(max_size=140))
def test_data_id_matches_the_server(value):
    try:
        server_rules.check_data_id(value)
        server_ok = True
    except server_rules.ApiError:
        server_ok = False
    try:
        validate_data_id(value)
        ours_ok = True
    except MinerUValidationError:
        ours_ok = False
    assert ours_ok == server_ok


@given(st.text(max_size=70))
def test_seed_rule(value):
    import re

    expected = re.fullmatch(r"[A-Za-z0-9_]{1,64}", value) is not None
    try:
        validate_seed(value)
        assert expected
    except MinerUValidationError as error:
        assert not expected
        assert error.field == "seed"


@pytest.mark.parametrize(
    "name", ["a.PDF", "b.Docx", "c.PPT", "d.pptx", "e.PNG", "f.jpg", "g.JPEG", "dir/h.pdf", "ünïcode ñame.pdf"]
)
def test_supported_extensions_any_case(name):
    assert validate_extension(name, "name") == name


@pytest.mark.parametrize("name", ["a.txt", "b.PDF.zip", "c", "d.", ".pdf.exe", "e.html", "f.TIFF"])
def test_unsupported_extensions(name):
    with pytest.raises(MinerUValidationError, match="unsupported file type"):
        validate_extension(name, "name")


def test_html_only_with_mineru_html():
    assert validate_extension("page.html", "name", "MinerU-HTML") == "page.html"


def test_size_limits_exact_and_over():
    limits = MinerULimits()
    validate_file_size(200 * 1024 * 1024, limits, "f")
    with pytest.raises(MinerUValidationError, match="200 MB"):
        validate_file_size(200 * 1024 * 1024 + 1, limits, "f")
    with pytest.raises(MinerUValidationError, match="empty"):
        validate_file_size(0, limits, "f")


def test_page_limits_exact_and_over():
    limits = MinerULimits()
    validate_page_count(600, limits, "f")
    with pytest.raises(MinerUValidationError, match="600 pages"):
        validate_page_count(601, limits, "f")
    validate_page_count(601, limits, "f", page_ranges="1-600")


def test_limits_from_connection_extras():
    limits = MinerULimits.from_extra({"max_file_mb": 10, "max_pages": 50, "max_batch_files": "20"})
    assert (limits.max_file_bytes, limits.max_pages, limits.max_batch_files) == (10 * 1024 * 1024, 50, 20)


# -- hostile inputs (issue 12): refused before any request, naming the field ----------------------


@pytest.mark.parametrize("value", ["１-３", "٣", "1-５", "1\u00a0-\u00a02", "1-\n3"])
def test_page_ranges_take_ascii_digits_only(value):
    from airflow_provider_mineru.inputs.validation import validate_page_ranges

    with pytest.raises(MinerUValidationError, match="page_ranges"):
        validate_page_ranges(value)


@pytest.mark.parametrize(
    "url",
    [
        "https://example.org/a\n.pdf",
        "https://example.org/a.pdf\r\nX-Injected: 1",
        "https://example.org/a\x00.pdf",
        "https://example.org/a b.pdf",
        "https://example.org/\u202efdp.pdf",
        "https://example.org/a\x85.pdf",
    ],
)
def test_urls_with_control_characters_are_refused(url):
    from airflow_provider_mineru.inputs.validation import validate_callback, validate_url

    with pytest.raises(MinerUValidationError, match="url"):
        validate_url(url)
    with pytest.raises(MinerUValidationError, match="callback"):
        validate_callback(url.replace(".pdf", ""), "callback")


@pytest.mark.parametrize(
    "name", ["a\nb.pdf", "report\x07.pdf", "invoice\u202efdp.exe.pdf", "x\u2066y.pdf", "tab\there.pdf", "del\x7f.pdf"]
)
def test_file_names_with_control_or_bidi_characters_are_refused(name):
    from airflow_provider_mineru.inputs.validation import validate_file_name

    with pytest.raises(MinerUValidationError, match="U\\+"):
        validate_file_name(name, "files[0].name")


def test_hostile_inputs_are_refused_before_any_request(mineru_conn):
    from airflow_provider_mineru.hooks.mineru import MinerUHook

    hook = MinerUHook()
    with pytest.raises(MinerUValidationError, match="page_ranges"):
        hook.submit_task("https://example.org/a.pdf", page_ranges="１-３")
    with pytest.raises(MinerUValidationError, match=r"files\[1\]\.page_ranges"):
        hook.submit_batch(["https://example.org/a.pdf", {"url": "https://example.org/b.pdf", "page_ranges": "２"}])
    with pytest.raises(MinerUValidationError, match="url"):
        hook.submit_task("https://example.org/a\n.pdf")
    with pytest.raises(MinerUValidationError, match=r"files\[0\]\.name"):
        hook.request_upload_urls(["invoice\u202efdp.exe.pdf"])
    with pytest.raises(MinerUValidationError, match=r"files\[0\]\.name"):
        hook.request_upload_urls([{"name": "line\nbreak.pdf"}])
    for endpoint in ("submit_task", "submit_batch", "file_urls"):
        assert mineru_conn.requests_to(endpoint) == []


def test_ascii_page_ranges_still_pass():
    from airflow_provider_mineru.inputs.validation import validate_page_ranges

    assert validate_page_ranges(" 1-3, 5 ,-2 ") == "1-3, 5 ,-2"
    assert validate_page_ranges("2--2") == "2--2"


# -- language --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    # MinerU's own list (ch_server, ch_lite, the script groups) and PaddleOCR PP-OCRv5 codes
    [
        "ch",
        "ch_server",
        "ch_lite",
        "en",
        "korean",
        "japan",
        "chinese_cht",
        "ta",
        "te",
        "ka",
        "latin",
        "arabic",
        "east_slavic",
        "cyrillic",
        "devanagari",
        "th",
        "el",
        "fr",
        "de",
        "german",
        "ru",
        "uk",
        "rs_latin",
        "hi",
        "vi",
    ],
)
def test_every_language_minerU_lists_is_accepted(code):
    from airflow_provider_mineru.inputs.validation import LANGUAGES, validate_language

    assert code in LANGUAGES
    assert validate_language(code) == code
    assert validate_language(f" {code} ") == code


@pytest.mark.parametrize(
    ("value", "suggested"),
    [
        ("english", "'en'"),
        ("EN", "'en'"),
        ("zh", "'ch'"),
        ("japanese", "'japan'"),
        ("chinese_cth", "'chinese_cht'"),
        ("frnch", "'french'"),
        ("koren", "'korean'"),
    ],
)
def test_an_unknown_language_is_refused_naming_the_field_the_value_and_close_matches(value, suggested):
    from airflow_provider_mineru.inputs.validation import validate_language

    with pytest.raises(MinerUValidationError) as raised:
        validate_language(value)
    error = raised.value
    assert (error.field, error.value) == ("language", value)
    assert f"invalid language={value!r}" in str(error)
    assert f"did you mean {suggested}" in str(error)


def test_a_language_with_nothing_close_still_says_what_is_expected():
    from airflow_provider_mineru.inputs.validation import validate_language

    with pytest.raises(MinerUValidationError, match=r"language='qqqq'.*not a language MinerU knows\. Use") as raised:
        validate_language("qqqq")
    assert "did you mean" not in str(raised.value)
    with pytest.raises(MinerUValidationError, match="non-empty"):
        validate_language(" ")


def test_both_api_flavors_refuse_an_unknown_language_before_any_request():
    from airflow_provider_mineru.clients.cloud import CloudClient
    from airflow_provider_mineru.clients.mineru_api import MinerUApiClient
    from airflow_provider_mineru.clients.v4_wire import ParseOptions

    bad = ParseOptions(language="english")
    with pytest.raises(MinerUValidationError, match="did you mean 'en'"):
        CloudClient().task_body("https://x.test/a.pdf", bad)
    with pytest.raises(MinerUValidationError, match="did you mean 'en'"):
        CloudClient().batch_body(["https://x.test/a.pdf"], bad, key="url", limits=MinerULimits())
    with pytest.raises(MinerUValidationError, match="did you mean 'en'"):
        MinerUApiClient().job_options(bad)
    assert MinerUApiClient().job_options(ParseOptions(language="en"))  # known: ignored by mineru-api, not refused


@pytest.mark.usefixtures("mineru_conn")
def test_the_operator_refuses_an_unknown_language_before_any_request(mineru_conn):
    from airflow_provider_mineru.operators.mineru import MinerUSubmitTaskOperator

    url = f"{mineru_conn.root_url}/samples/invoice.pdf"
    operator = MinerUSubmitTaskOperator(task_id="t", url=url, language="Englsh")
    with pytest.raises(MinerUValidationError, match=r"invalid language='Englsh'.*did you mean 'en'"):
        operator.prepare()
    assert mineru_conn.requests == []
