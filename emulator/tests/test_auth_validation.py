"""Authentication and request validation, with the cloud's error codes."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from emulator_client import TOKEN, Api
from hypothesis import given
from hypothesis import strategies as st

from mineru_emulator import MinerUEmulator
from mineru_emulator.cloud.contract import parse_page_ranges, resolve_page_ranges

PDF_URL = "https://example.com/files/report.pdf"


def error(response: requests.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["code"] != 0
    assert len(payload["trace_id"]) == 32
    assert payload["msg"]
    return payload


# -- auth ------------------------------------------------------------------------------------------


def test_no_token_is_plain_text_login_required(emu: MinerUEmulator) -> None:
    response = requests.get(emu.base_url + "/extract/task/whatever", timeout=5)
    assert response.status_code == 401
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.text == "login required"


@pytest.mark.parametrize(("token", "code"), [("wrong", "A0202"), ("old-token", "A0211")])
def test_bad_token_http401_style(mineru_emulator_factory, token: str, code: str) -> None:
    emu = mineru_emulator_factory(expired_tokens=["old-token"])
    response = Api(emu, token=token).get("/extract/task/abc")
    assert response.status_code == 401
    payload = response.json()
    assert payload["msgCode"] == code
    assert payload["success"] is False
    assert payload["msg"]
    assert "code" not in payload


@pytest.mark.parametrize(("token", "code"), [("wrong", "A0202"), ("old-token", "A0211")])
def test_bad_token_envelope_style(mineru_emulator_factory, token: str, code: str) -> None:
    emu = mineru_emulator_factory(expired_tokens=["old-token"], auth_error_style="envelope")
    payload = error(Api(emu, token=token).post("/extract/task", {"url": PDF_URL}))
    assert payload["code"] == code


def test_not_bearer_scheme_is_a_token_error(emu: MinerUEmulator) -> None:
    response = requests.get(emu.base_url + "/extract/task/x", headers={"Authorization": TOKEN}, timeout=5)
    assert response.status_code == 401
    assert response.json()["msgCode"] == "A0202"


def test_cheap_token_check_answers_task_not_found(api: Api) -> None:
    payload = error(api.get("/extract/task/made-up-id"))
    assert payload["code"] == -60012
    assert api.emu.task_count == 0


def test_unknown_batch_is_not_found(api: Api) -> None:
    assert error(api.get("/extract-results/batch/nope"))["code"] == -60012


# -- body shape ------------------------------------------------------------------------------------


def test_body_not_json_is_minus_500(api: Api) -> None:
    response = api.session.post(
        api.base + "/extract/task", data="{oops", headers={"Content-Type": "application/json"}, timeout=5
    )
    assert error(response)["code"] == -500


def test_wrong_content_type_is_minus_500(api: Api) -> None:
    response = api.session.post(api.base + "/extract/task", data={"url": PDF_URL}, timeout=5)
    assert error(response)["code"] == -500


def test_json_array_body_is_minus_500(api: Api) -> None:
    assert error(api.post("/file-urls/batch", [{"name": "a.pdf"}]))["code"] == -500


# -- required fields and options -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/extract/task", {}),
        ("/extract/task", {"url": ""}),
        ("/extract/task", {"url": "ftp://host/a.pdf"}),
        ("/file-urls/batch", {}),
        ("/file-urls/batch", {"files": []}),
        ("/file-urls/batch", {"files": [{"data_id": "x"}]}),
        ("/file-urls/batch", {"files": ["a.pdf"]}),
        ("/extract/task/batch", {"files": [{"name": "a.pdf"}]}),
    ],
)
def test_missing_required_fields_are_minus_10002(api: Api, path: str, body: dict[str, Any]) -> None:
    assert error(api.post(path, body))["code"] == -10002


@pytest.mark.parametrize(
    "options",
    [
        {"data_id": ""},
        {"data_id": "a" * 129},
        {"data_id": "has space"},
        {"data_id": "slash/no"},
        {"seed": "a" * 65, "callback": "http://127.0.0.1/cb"},
        {"seed": "bad-seed", "callback": "http://127.0.0.1/cb"},
        {"seed": ""},
        {"callback": "http://127.0.0.1/cb"},
        {"callback": "ftp://127.0.0.1/cb", "seed": "abc"},
        {"page_ranges": "1-"},  # valid: control, see below
        {"page_ranges": "a-b"},
        {"page_ranges": "1,,2"},
        {"page_ranges": "0"},
        {"page_ranges": "--2"},
        {"page_ranges": "1-2-3"},
        {"page_ranges": 5},
        {"extra_formats": ["pdf"]},
        {"extra_formats": "docx"},
        {"model_version": "v2"},
        {"is_ocr": "yes"},
        {"enable_formula": 1},
        {"no_cache": "true"},
        {"cache_tolerance": -1},
        {"language": 7},
    ],
)
def test_invalid_options_are_minus_10002(api: Api, options: dict[str, Any]) -> None:
    response = api.post("/extract/task", {"url": PDF_URL, **options})
    if options == {"page_ranges": "1-"}:
        api.ok(response)
        return
    assert error(response)["code"] == -10002


def test_valid_options_are_accepted(api: Api) -> None:
    options = {
        "is_ocr": True,
        "enable_formula": False,
        "enable_table": False,
        "language": "en",
        "data_id": "A-z_0.9" + "x" * 121,
        "callback": "https://example.com/cb?x=1",
        "seed": "S" * 64,
        "extra_formats": ["docx", "html", "latex"],
        "page_ranges": "2 - -2,4-6, 1 ,15-,-1",
        "model_version": "vlm",
        "no_cache": True,
        "cache_tolerance": 60,
    }
    api.ok(api.post("/extract/task", {"url": PDF_URL, **options}))
    api.ok(api.post("/extract/task/batch", {"files": [{"url": PDF_URL, "page_ranges": "2--2"}], **options}))
    files = [{"name": "a.pdf", "is_ocr": False, "data_id": "d1", "page_ranges": "1-3"}]
    api.ok(api.post("/file-urls/batch", {"files": files, **options}))


def test_batch_file_options_are_validated(api: Api) -> None:
    bad = [
        {"files": [{"name": "a.pdf", "data_id": "no spaces"}]},
        {"files": [{"name": "a.pdf", "page_ranges": "x"}]},
        {"files": [{"name": "a.pdf", "is_ocr": "no"}]},
        {"files": [{"name": "a.pdf"}], "model_version": "nope"},
    ]
    for body in bad:
        assert error(api.post("/file-urls/batch", body))["code"] == -10002, body


@pytest.mark.parametrize("endpoint", ["/file-urls/batch", "/extract/task/batch"])
def test_too_many_files_names_the_limit(api: Api, endpoint: str) -> None:
    missing = api.emu.root_url + "/samples/missing-{}.pdf"
    key, value = ("name", "f{}.pdf") if endpoint == "/file-urls/batch" else ("url", missing)
    body = {"files": [{key: value.format(i)} for i in range(201)]}
    payload = error(api.post(endpoint, body))
    assert payload["code"] == -10002
    assert "200" in payload["msg"]
    body["files"] = body["files"][:200]
    api.ok(api.post(endpoint, body))


def test_max_batch_files_is_configurable(mineru_emulator_factory) -> None:
    api = Api(mineru_emulator_factory(max_batch_files=2))
    payload = error(api.post("/file-urls/batch", {"files": [{"name": f"{i}.pdf"} for i in range(3)]}))
    assert "2" in payload["msg"]


# -- file types ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://h/a.PDF",
        "https://h/a.doc",
        "https://h/a.docx",
        "https://h/a.ppt",
        "https://h/a.pptx",
        "https://h/a.png",
        "https://h/a.JPG",
        "https://h/a.jpeg",
        "https://h/dir/a.pdf?download=1&name=x.txt",
    ],
)
def test_supported_extensions(api: Api, url: str) -> None:
    api.ok(api.post("/extract/task", {"url": url}))


@pytest.mark.parametrize("url", ["https://h/a.txt", "https://h/a", "https://h/a.pdf.zip", "https://h/a.html"])
def test_unsupported_extension_is_minus_60002(api: Api, url: str) -> None:
    assert error(api.post("/extract/task", {"url": url}))["code"] == -60002


def test_unsupported_name_in_batches_is_minus_60002(api: Api) -> None:
    assert error(api.post("/file-urls/batch", {"files": [{"name": "a.pdf"}, {"name": "b.xlsx"}]}))["code"] == -60002
    files = [{"url": "https://h/b.gif"}]
    assert error(api.post("/extract/task/batch", {"files": files}))["code"] == -60002


def test_html_needs_mineru_html_model(api: Api) -> None:
    for url in ("https://h/page.html", "https://h/page.HTM"):
        assert error(api.post("/extract/task", {"url": url}))["code"] == -60002
        api.ok(api.post("/extract/task", {"url": url, "model_version": "MinerU-HTML"}))


def test_rejected_submits_create_no_task(api: Api) -> None:
    api.post("/extract/task", {"url": "https://h/a.txt"})
    api.post("/file-urls/batch", {"files": [{"name": "a.exe"}]})
    assert api.emu.task_count == 0
    assert api.emu.batch_count == 0


# -- page ranges -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "total", "pages"),
    [
        ("2,4-6", 10, [2, 4, 5, 6]),
        ("2--2", 10, list(range(2, 10))),
        ("2 - -2", 10, list(range(2, 10))),
        ("-2", 10, [9]),
        ("-1", 10, [10]),
        ("15-", 20, list(range(15, 21))),
        ("-3-", 10, [8, 9, 10]),
        ("1-600", 3, [1, 2, 3]),
        ("5,1", 5, [1, 5]),
        ("7-9", 5, []),
        ("3-1", 5, []),
        (" 1 , 3 ", 4, [1, 3]),
        (None, 3, [1, 2, 3]),
        ("", 3, [1, 2, 3]),
    ],
)
def test_resolve_page_ranges(spec: str | None, total: int, pages: list[int]) -> None:
    assert [p + 1 for p in resolve_page_ranges(spec, total)] == pages


@pytest.mark.parametrize("spec", ["a", "1-a", "1,", ",1", "1 2", "--1", "1--", "0", "0-3", "1-0", "1.5", "-"])
def test_parse_page_ranges_rejects(spec: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - any syntax error
        parse_page_ranges(spec)


_numbers = st.integers(min_value=-30, max_value=30).filter(lambda n: n != 0)
_items = st.one_of(
    _numbers.map(str),
    st.tuples(_numbers, _numbers).map(lambda t: f"{t[0]}-{t[1]}"),
    _numbers.map(lambda n: f"{n}-"),
)


@given(
    items=st.lists(st.tuples(_items, st.sampled_from(["", " ", "  "])), min_size=1, max_size=6),
    total=st.integers(min_value=1, max_value=40),
)
def test_page_ranges_property(items: list[tuple[str, str]], total: int) -> None:
    spec = ",".join(
        f"{pad}{item.replace('-', pad + '-' + pad, 1) if not item.startswith('-') else item}{pad}"
        for item, pad in items
    )
    pages = resolve_page_ranges(spec, total)
    assert pages == sorted(set(pages))
    assert all(0 <= p < total for p in pages)

    def absolute(n: int) -> int:
        return n if n > 0 else total + n + 1

    expected: set[int] = set()
    for item in parse_page_ranges(spec):
        first = absolute(item.start)
        last = first if not item.is_range else (total if item.end is None else absolute(item.end))
        expected |= {p - 1 for p in range(first, last + 1) if 1 <= p <= total}
    assert set(pages) == expected
